"""Sparse ST-GCN (Xie et al., "Are Spatial-Temporal Graph Convolution Networks for Human Action Recognition
Over-Parameterized?", CVPR 2025): the registry's ST-GCN trained sparse, with a fixed fraction of the weights of its
graph and temporal convolutions pruned by binary masks that are updated during training.

Following Xie et al.: a sparse ST-GCN trained from a randomly initialised dense network (no dense pre-training,
no lottery-ticket rewinding), unstructured masks over the convolution weights, a fixed overall sparsity
(``sparsity=0.6``: 60 % of the masked weights are zero), masks that evolve while the weights train.

Simplified: Xie et al.'s learned sparse-structure generator and their multi-level ensemble of several sparsities
are not reproduced. The masks follow RigL (Evci et al., ICML 2020) instead: Erdos-Renyi-Kernel initial densities
(:func:`erk_densities`, or uniform), and every ``update_interval`` steps until ``update_end * total_steps`` a
prune-and-regrow (:meth:`SparseSTGCN.update_masks`): per layer, the ``f(t)`` fraction of active weights with the
smallest magnitude is dropped and as many inactive connections with the largest dense-gradient magnitude
(``regrow='gradient'``, RigL) or chosen at random (``'random'``, SET) are grown, initialised to zero. ``f(t)`` is
RigL's cosine decay :func:`drop_fraction_schedule`. Layer sizes never change, so the sparsity stays exact.

Masked weights: the GCN mixing weights of every ``UnitGCN`` and the convolution / linear weights of every TCN unit
(``UnitTCN``, residual ``UnitTCN``, ``MSTCN``); biases, BatchNorms, the adjacency and its importance weights, the
data BN and the classifier stay dense. Each masked parameter ``w`` becomes ``w_orig`` (parameter) and ``w_mask``
(bool buffer, in the state dict); a forward pre-hook on the unit sets the plain attribute ``w = w_orig * w_mask``,
so the unit's training path and its folded-BatchNorm inference path (``fuse_for_inference``) both use the masked
weights, and the gradient of ``w_orig`` is zero on pruned connections.

Choices: ``on_train_step(step, total_steps)`` is meant to be called once per optimiser step, after it (the engine's
``on_train_batch_end``), with ``step`` the number of optimiser steps done; it zeroes the stored pruned weights
(a stale optimiser momentum may have moved them) and updates the masks when ``step`` is a positive multiple of
``update_interval`` below ``update_end * total_steps``. The dense gradient used for regrowing is the one of the
latest backward pass (kept per layer); without one the regrowth is random. RigL's defaults: ``update_interval=100``,
``drop_fraction=0.3``, ``update_end=0.75``. The mask tensors are drawn with torch's global generator (they follow
``torch.manual_seed``, like the weight initialisation).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import MSTCN, UnitGCN, UnitTCN
from .stgcn import build_stgcn

__all__ = ["erk_densities", "drop_fraction_schedule", "SparseSTGCN", "build_sparse_stgcn"]

_SPARSE_UNITS = (UnitGCN, UnitTCN, MSTCN)


# ---------------------------------------------------------------------------------------------- RigL pieces
def erk_densities(shapes: Sequence[Sequence[int]], density: float) -> list[float]:
    """RigL's Erdos-Renyi-Kernel densities: ``d_l = eps * sum(shape_l) / prod(shape_l)``, capped at 1.

    ``eps`` is solved so that ``sum_l d_l * n_l = density * sum_l n_l``; layers whose density would exceed 1 are
    dense and the rest is solved again (RigL, Sec. 3 "Sparsity distribution").
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    sizes = [math.prod(s) for s in shapes]
    raw = [sum(s) / n for s, n in zip(shapes, sizes)]
    dense: set[int] = set()
    while True:
        budget = density * sum(sizes) - sum(sizes[i] for i in dense)
        free = [i for i in range(len(shapes)) if i not in dense]
        if not free:
            return [1.0] * len(shapes)
        eps = budget / sum(raw[i] * sizes[i] for i in free)
        over = {i for i in free if eps * raw[i] > 1.0}
        if not over:
            return [1.0 if i in dense else eps * raw[i] for i in range(len(shapes))]
        dense |= over


def drop_fraction_schedule(step: int, end_step: float, drop_fraction: float) -> float:
    """RigL's cosine update schedule ``f(t) = alpha / 2 * (1 + cos(pi * t / T_end))`` (0 from ``T_end`` on)."""
    if step >= end_step:
        return 0.0
    return drop_fraction / 2 * (1 + math.cos(math.pi * step / end_step))


def _keep_counts(sizes: Sequence[int], densities: Sequence[float], total_keep: int) -> list[int]:
    """Integer kept counts per layer, as close to ``densities`` as possible and summing to ``total_keep``."""
    keep = [min(n, max(1, round(d * n))) for n, d in zip(sizes, densities)]
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])  # adjust the largest layers first
    diff = total_keep - sum(keep)
    while diff != 0:
        step = 1 if diff > 0 else -1
        moved = False
        for i in order:
            if diff == 0:
                break
            room = sizes[i] - keep[i] if step > 0 else keep[i] - 1
            if room > 0:
                k = min(room, abs(diff), max(1, abs(diff) // len(sizes)))
                keep[i] += step * k
                diff -= step * k
                moved = True
        if not moved:
            raise ValueError(f"cannot keep {total_keep} weights in layers of sizes {list(sizes)}")
    return keep


# ---------------------------------------------------------------------------------------------- masking hooks
def _resolve(unit: nn.Module, path: str) -> tuple[nn.Module, str]:
    owner, _, name = path.rpartition(".")
    return (unit.get_submodule(owner) if owner else unit), name


class _StoreDenseGrad:
    """Tensor hook keeping the dense gradient of a masked weight (RigL's regrowth criterion)."""

    def __init__(self, owner: nn.Module, name: str) -> None:
        self.owner, self.name = owner, name

    def __call__(self, grad: torch.Tensor) -> None:
        self.owner.__dict__[f"{self.name}_dense_grad"] = grad.detach()


def _apply_masks_hook(unit: nn.Module, args: Any) -> None:
    """Forward pre-hook: ``w = w_orig * w_mask`` for every masked weight of ``unit`` (a plain attribute)."""
    grad = torch.is_grad_enabled()
    for path in unit._sparse_params:
        owner, name = _resolve(unit, path)
        orig, mask = owner._parameters[f"{name}_orig"], owner._buffers[f"{name}_mask"]
        if grad and orig.requires_grad:
            w = orig * mask
            w.register_hook(_StoreDenseGrad(owner, name))
        else:
            # reuse the masked weight while neither tensor changed (keeps the fused caches of the unit valid)
            key = None if orig.is_inference() or mask.is_inference() else (
                id(orig), orig.data_ptr(), orig._version, orig.dtype, id(mask), mask.data_ptr(), mask._version,
                torch.is_inference_mode_enabled())
            if key is not None and owner.__dict__.get(f"_{name}_key") == key:
                continue
            with torch.no_grad():
                w = orig * mask
            owner.__dict__[f"_{name}_key"] = key
        owner.__dict__[name] = w


def _detach_hook(unit: nn.Module, args: Any, output: Any) -> None:
    """Forward hook: keep only a detached masked weight as attribute (the autograd graph holds its own)."""
    for path in unit._sparse_params:
        owner, name = _resolve(unit, path)
        w = owner.__dict__.get(name)
        if isinstance(w, torch.Tensor) and w.requires_grad:
            owner.__dict__[name] = w.detach()
            owner.__dict__.pop(f"_{name}_key", None)


def _masked_paths(unit: nn.Module) -> list[str]:
    """Names (relative to ``unit``) of the convolution / linear weights of a GCN or TCN unit."""
    if isinstance(unit, UnitGCN):
        return ["weight"] + (["down.weight"] if unit.down is not None else [])
    return [f"{n}.weight" for n, m in unit.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _make_sparse(unit: nn.Module) -> None:
    paths = _masked_paths(unit)
    for path in paths:
        owner, name = _resolve(unit, path)
        p = owner._parameters.pop(name)
        owner.register_parameter(f"{name}_orig", p)  # same tensor: memory format and init kept
        owner.register_buffer(f"{name}_mask", torch.ones_like(p, dtype=torch.bool))
        owner.__dict__[name] = p.detach()
    unit._sparse_params = tuple(paths)
    unit.register_forward_pre_hook(_apply_masks_hook)
    unit.register_forward_hook(_detach_hook, always_call=True)


# ---------------------------------------------------------------------------------------------- model
class SparseSTGCN(Recognizer):
    """An ST-GCN :class:`~finetec.models.Recognizer` with sparse GCN/TCN convolution weights (see module doc).

    Args:
        base: the dense ST-GCN recognizer (``build_stgcn``); its backbone and head are taken over.
        sparsity: fraction of the masked weights that are zero, in [0, 1).
        mask_init: ``'erk'`` (Erdos-Renyi-Kernel layer densities) or ``'uniform'`` (the same density per layer).
        regrow: ``'gradient'`` (RigL) or ``'random'`` (SET).
        update_interval: optimiser steps between mask updates (RigL's Delta T).
        drop_fraction: initial fraction of each layer's active weights replaced at an update (RigL's alpha).
        update_end: fraction of the training steps after which the masks are fixed (RigL's T_end).
    """

    def __init__(self, base: Recognizer, sparsity: float = 0.6, mask_init: str = "erk", regrow: str = "gradient",
                 update_interval: int = 100, drop_fraction: float = 0.3, update_end: float = 0.75,
                 name: str = "sparse_stgcn") -> None:
        if not isinstance(base, Recognizer):
            raise TypeError(f"{name}: base must be an ST-GCN Recognizer, got {type(base).__name__}")
        if isinstance(sparsity, bool) or not 0.0 <= float(sparsity) < 1.0:
            raise ValueError(f"{name}: sparsity must be in [0, 1), got {sparsity!r}")
        if mask_init not in ("erk", "uniform"):
            raise ValueError(f"{name}: mask_init must be 'erk' or 'uniform', got {mask_init!r}")
        if regrow not in ("gradient", "random"):
            raise ValueError(f"{name}: regrow must be 'gradient' or 'random', got {regrow!r}")
        if isinstance(update_interval, bool) or not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError(f"{name}: update_interval must be a positive int, got {update_interval!r}")
        if not 0.0 <= drop_fraction <= 1.0:
            raise ValueError(f"{name}: drop_fraction must be in [0, 1], got {drop_fraction}")
        if not 0.0 < update_end <= 1.0:
            raise ValueError(f"{name}: update_end must be in (0, 1], got {update_end}")
        super().__init__(base.backbone, base.num_classes, name=name)
        self.head = base.head
        self.sparsity, self.mask_init, self.regrow = float(sparsity), mask_init, regrow
        self.update_interval, self.drop_fraction, self.update_end = update_interval, float(drop_fraction), update_end
        units = [m for m in self.backbone.modules() if isinstance(m, _SPARSE_UNITS)]
        if not units:
            raise TypeError(f"{name}: the backbone {type(base.backbone).__name__} has no GCN/TCN units to sparsify")
        for unit in units:
            _make_sparse(unit)
        self.reset_masks()

    # ------------------------------------------------------------------ masks
    def masked_weights(self) -> Iterator[tuple[str, nn.Module, str]]:
        """``(qualified name, owner module, weight name)`` of every masked weight, in module order."""
        for uname, unit in self.named_modules():
            for path in getattr(unit, "_sparse_params", ()):
                owner, name = _resolve(unit, path)
                yield f"{uname}.{path}", owner, name

    def effective_weight(self, owner: nn.Module, name: str) -> torch.Tensor:
        """The masked weight ``w_orig * w_mask`` (detached)."""
        with torch.no_grad():
            return owner._parameters[f"{name}_orig"] * owner._buffers[f"{name}_mask"]

    def sparsity_stats(self) -> dict[str, float]:
        """Fraction of zero entries in each mask, and ``'total'`` over all masked weights."""
        out, zeros, total = {}, 0, 0
        for qname, owner, name in self.masked_weights():
            m = owner._buffers[f"{name}_mask"]
            z = int(m.numel() - m.sum())
            out[qname] = z / m.numel()
            zeros, total = zeros + z, total + m.numel()
        out["total"] = zeros / max(total, 1)
        return out

    @torch.no_grad()
    def reset_masks(self) -> None:
        """Draw new random masks at ``sparsity`` (ERK or uniform layer densities) and zero the pruned weights."""
        targets = list(self.masked_weights())
        shapes = [tuple(owner._parameters[f"{n}_orig"].shape) for _, owner, n in targets]
        sizes = [math.prod(s) for s in shapes]
        density = 1.0 - self.sparsity
        dens = erk_densities(shapes, density) if self.mask_init == "erk" else [density] * len(shapes)
        keep = _keep_counts(sizes, dens, round(density * sum(sizes)))
        for (_, owner, name), k in zip(targets, keep):
            mask = owner._buffers[f"{name}_mask"]
            idx = torch.rand(mask.numel(), device=mask.device).topk(k).indices
            flat = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
            flat[idx] = True
            mask.copy_(flat.view(mask.shape))
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero the stored weights of pruned connections and refresh the masked weight attributes."""
        for _, owner, name in self.masked_weights():
            orig, mask = owner._parameters[f"{name}_orig"], owner._buffers[f"{name}_mask"]
            orig.mul_(mask)
            owner.__dict__[name] = orig * mask
            owner.__dict__.pop(f"_{name}_key", None)

    @torch.no_grad()
    def update_masks(self, fraction: float) -> int:
        """One prune-and-regrow: per layer, drop ``floor(fraction * active)`` active weights of smallest magnitude
        and grow as many inactive connections (largest dense-gradient magnitude, or random), set to zero.

        Returns the number of newly activated connections.
        """
        grown = 0
        for _, owner, name in self.masked_weights():
            orig, mask = owner._parameters[f"{name}_orig"], owner._buffers[f"{name}_mask"]
            active = mask.reshape(-1)
            n_drop = int(fraction * int(active.sum()))
            if n_drop == 0:
                continue
            w = orig.detach().reshape(-1).abs().float()
            drop_score = torch.where(active, w, torch.full_like(w, math.inf))
            after_drop = active.clone()
            after_drop[drop_score.topk(n_drop, largest=False).indices] = False
            g = owner.__dict__.get(f"{name}_dense_grad")
            if (self.regrow == "gradient" and isinstance(g, torch.Tensor) and g.shape == orig.shape
                    and g.device == orig.device):
                grow_score = g.reshape(-1).abs().float()
            else:
                grow_score = torch.rand(w.shape, device=w.device)
            # candidates: every connection inactive after the drop; a just-dropped one that is grown again keeps
            # its value (RigL's reinit_when_same=False), a newly activated one starts at zero
            grow_score = torch.where(after_drop, torch.full_like(grow_score, -math.inf), grow_score)
            new = after_drop.clone()
            new[grow_score.topk(n_drop).indices] = True
            fresh = new & ~active
            grown += int(fresh.sum())
            orig.masked_fill_(fresh.view(orig.shape), 0.0)
            mask.copy_(new.view(mask.shape))
        self.apply_masks()
        return grown

    def on_train_step(self, step: int, total_steps: int) -> int:
        """Called by the engine after optimiser step ``step`` (steps done so far) of ``total_steps``.

        Zeroes the stored pruned weights; at every positive multiple of ``update_interval`` before
        ``update_end * total_steps`` runs :meth:`update_masks` with RigL's cosine drop fraction. Returns the number
        of regrown connections (0 when no update ran).
        """
        if step < 0 or total_steps < 1:
            raise ValueError(f"{self.name}: on_train_step needs step >= 0 and total_steps >= 1, got {step}, "
                             f"{total_steps}")
        self.apply_masks()
        end = self.update_end * total_steps
        if step == 0 or step % self.update_interval or step >= end:
            return 0
        return self.update_masks(drop_fraction_schedule(step, end, self.drop_fraction))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, sparsity={self.sparsity}, mask_init={self.mask_init!r}, "
                f"regrow={self.regrow!r}")


_STGCN_OPTIONS = [p for p in inspect.signature(build_stgcn).parameters
                  if p not in ("num_classes", "layout", "in_channels", "width", "dropout")]


@register_model("sparse_stgcn")
def build_sparse_stgcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                       dropout: float = 0.0, sparsity: float = 0.6, mask_init: str = "erk",
                       regrow: str = "gradient", update_interval: int = 100, drop_fraction: float = 0.3,
                       update_end: float = 0.75, **stgcn_options: Any) -> SparseSTGCN:
    """Sparse ST-GCN: ``build_stgcn(...)`` (any of its options) with 60 % of the GCN/TCN weights masked.

    Options: ``width``, ``dropout``, the sparse-training options of :class:`SparseSTGCN` (``sparsity, mask_init,
    regrow, update_interval, drop_fraction, update_end``) and the ST-GCN options of ``build_stgcn``.
    """
    unknown = sorted(set(stgcn_options) - set(_STGCN_OPTIONS))
    if unknown:
        accepted = ["width", "dropout", "sparsity", "mask_init", "regrow", "update_interval", "drop_fraction",
                    "update_end", *_STGCN_OPTIONS]
        raise TypeError(f"create_model('sparse_stgcn'): unknown option(s) {unknown}; accepted: {accepted}")
    base = build_stgcn(num_classes, layout, in_channels, width=width, dropout=dropout, **stgcn_options)
    return SparseSTGCN(base, sparsity, mask_init, regrow, update_interval, drop_fraction, update_end)
