"""Plugging SF-Head into any registered GCN between its spatial (``gcn``) and temporal (``tcn``) layers.

:func:`attach_sfhead` wraps ``block.gcn`` of every chosen :class:`~finetec.models.backbones.common.Block` in an
:class:`SFHeadSlot` and returns an :class:`SFHeadRecognizer` that adds the feature losses of Eq. 17 to the
auxiliary dict (``loss_con = lambda_con * L_con``, ``loss_red = lambda_red * L_red``, each averaged over the slots).
The backbone's code is not edited; ``create_model(name, ..., sfhead={...})`` and a config's ``model.sfhead`` call it.

Two readings of the paper (Sec. 3.2 transforms the features; Sec. 1 says SF-Head "is only used during training"):

* ``inline``: the features pass through SF-Head (``tcn(sfhead(gcn(x)))``), in training and at inference;
* ``auxiliary``: ``tcn(gcn(x))`` unchanged; in training SF-Head runs on the side on ``gcn(x)`` and only feeds the
  losses (its gradients reach the backbone through them). :meth:`SFHeadRecognizer.inference_model` drops it: the
  result is the bare backbone recognizer, with exactly its parameter count, for evaluation and export.
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
import torch.nn as nn

from ..backbones.common import Block
from .losses import DEFAULTS, feature_consistency_loss, feature_redundancy_loss
from .module import BRANCHES, SFHead, SFHeadFeatures

__all__ = ["SFHeadSlot", "SFHeadRecognizer", "attach_sfhead", "MODES"]

MODES = ("inline", "auxiliary")


class SFHeadSlot(nn.Module):
    """``gcn`` followed by SF-Head (``inline``) or with SF-Head beside it in training (``auxiliary``).

    In training the slot keeps the last call's :class:`SFHeadFeatures` in ``features`` for the losses (the
    recognizer takes and clears them after each forward).
    """

    def __init__(self, gcn: nn.Module, head: SFHead, mode: str) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"SF-Head mode must be one of {MODES}, got {mode!r}")
        self.gcn, self.head, self.mode = gcn, head, mode
        self.features: SFHeadFeatures | None = None

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gcn(x)
        collect = self.training and torch.is_grad_enabled()
        if self.mode == "inline":
            if collect:
                out, self.features = self.head(y, return_features=True)
                return out
            return self.head(y)
        if collect:
            _, self.features = self.head(y, return_features=True)
        return y


class SFHeadRecognizer(nn.Module):
    """A recognizer with SF-Head slots; ``x -> (logits, aux)`` with the F-RL / F-CL terms in training.

    ``needs_mask`` and an inner ``(logits, aux)`` output (e.g. FineTec's) are passed through; ``rcl=False`` turns
    both losses off (Table 2's "w/o F-RCL").
    """

    returns_aux = True

    def __init__(self, model: nn.Module, slots: Sequence[SFHeadSlot], mode: str, rcl: bool = True,
                 alpha: float = DEFAULTS["alpha"], tau: float = DEFAULTS["tau"], m: float = DEFAULTS["m"],
                 gamma: float = DEFAULTS["gamma"], eps: float = DEFAULTS["eps"],
                 lambda_con: float = DEFAULTS["lambda_con"], lambda_red: float = DEFAULTS["lambda_red"]) -> None:
        super().__init__()
        self.model = model
        self._slots = list(slots)  # plain list: the slots are registered inside ``model`` already
        self.mode, self.rcl = mode, bool(rcl)
        self.loss_cfg = dict(alpha=float(alpha), tau=float(tau), m=float(m), gamma=float(gamma), eps=float(eps))
        self.lambda_con, self.lambda_red = float(lambda_con), float(lambda_red)
        self.needs_mask = bool(getattr(model, "needs_mask", False))
        self._inner_aux = bool(getattr(model, "returns_aux", False))
        self.num_classes = getattr(model, "num_classes", None)
        self.name = f"{getattr(model, 'name', type(model).__name__.lower())}+sfhead"

    def extra_repr(self) -> str:
        return (f"mode={self.mode!r}, slots={len(self._slots)}, rcl={self.rcl}, lambda_con={self.lambda_con}, "
                f"lambda_red={self.lambda_red}, {self.loss_cfg}")

    def feature_losses(self, feats: Sequence[SFHeadFeatures], num_samples: int | None = None
                       ) -> dict[str, torch.Tensor]:
        """``{'loss_con': lambda_con L_con, 'loss_red': lambda_red L_red}``, each the mean over the slots (Eq. 17).

        A sample is a clip: its persons' features (rows ``n*M .. n*M+M-1`` of the backbone batch) are flattened
        together, so ``num_samples`` = N of the input ``[N, M, T, V, C]`` (default: every backbone row a sample).
        """
        c = self.loss_cfg
        red = con = None
        for f in feats:  # one term per slot (a few blocks)
            n = num_samples or f.batch
            if f.batch % n:
                raise ValueError(f"SF-Head: {f.batch} backbone rows do not split into {n} samples")
            r = feature_redundancy_loss(f.f_s.reshape(n, -1), f.f_t.reshape(n, -1), c["alpha"], c["tau"], c["m"])
            k = feature_consistency_loss(f.f_a.reshape(n, -1),
                                         [o.reshape(n, -1) for o in (f.f_c, f.f_t, f.f_s, f.f_o)],
                                         c["alpha"], c["m"], c["gamma"], c["eps"])
            red = r if red is None else red + r
            con = k if con is None else con + k
        n = len(feats)
        return {"loss_con": self.lambda_con * con / n, "loss_red": self.lambda_red * red / n}

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.model(x, mask=mask) if self.needs_mask else self.model(x)
        logits, aux = out if self._inner_aux else (out, {})
        aux = dict(aux)
        feats = [s.features for s in self._slots if s.features is not None]
        for s in self._slots:
            s.features = None
        if feats and self.rcl:
            aux.update(self.feature_losses(feats, x.shape[0]))
        return logits, aux

    # ------------------------------------------------------------------ delegation
    def on_train_step(self, step: int, total_steps: int) -> None:
        fn = getattr(self.model, "on_train_step", None)
        if callable(fn):
            fn(step, total_steps)

    def fuse_for_inference(self, enabled: bool = True) -> "SFHeadRecognizer":
        fn = getattr(self.model, "fuse_for_inference", None)
        if callable(fn):
            fn(enabled)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def inference_model(self) -> nn.Module:
        """The model to evaluate and export, ``x -> logits``: a copy of the inner recognizer, with the slots
        replaced by their ``gcn`` in ``auxiliary`` mode (the bare backbone recognizer) and kept in ``inline`` mode."""
        model = copy.deepcopy(self.model)
        if self.mode == "auxiliary":
            for blk in model.modules():
                if isinstance(blk, Block) and isinstance(blk.gcn, SFHeadSlot):
                    blk.gcn = blk.gcn.gcn
        return model


def _channels(block: Block, index: int) -> int:
    for owner, attr in ((block.gcn, "out_channels"), (block.tcn, "in_channels")):
        c = getattr(owner, attr, None)
        if isinstance(c, int):
            return c
    raise ValueError(f"SF-Head: cannot tell the channels of block {index} ({type(block.gcn).__name__} has no "
                     "out_channels, {type(block.tcn).__name__} no in_channels)")


def attach_sfhead(model: nn.Module, mode: str = "inline", blocks: "str | Sequence[int]" = "all", groups: int = 8,
                  branches: Sequence[str] = BRANCHES, sste: bool = True, acfa: bool = True, rcl: bool = True,
                  **loss_kw: float) -> SFHeadRecognizer:
    """Insert SF-Head between ``gcn`` and ``tcn`` of ``model``'s GCN blocks (in place) and wrap it.

    Args:
        model: a recognizer whose backbone is made of :class:`Block` (every GCN in the registry, FineTec too).
        mode: ``'inline'`` or ``'auxiliary'`` (see the module docstring).
        blocks: ``'all'`` (default: every block, the paper's "between GCN and TCN layers"), ``'last'`` or a list
            of block indices (0-based, negative from the end).
        groups: g; each chosen block's channels must be divisible by ``4 * groups``.
        branches, sste, acfa: the module's ablation switches (:class:`SFHead`); ``rcl``: the two losses.
        loss_kw: ``alpha, tau, m, gamma, eps, lambda_con, lambda_red`` (defaults in ``losses.DEFAULTS``).
    """
    if mode not in MODES:
        raise ValueError(f"sfhead.mode must be one of {MODES}, got {mode!r}")
    if mode == "auxiliary" and not rcl:
        raise ValueError("sfhead: mode 'auxiliary' with rcl=false does nothing (the branch only feeds the losses); "
                         "use mode 'inline' for the module without its losses")
    unknown = sorted(set(loss_kw) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"sfhead: unknown option(s) {unknown}; loss options are {sorted(DEFAULTS)}")
    if isinstance(model, SFHeadRecognizer) or any(isinstance(m, SFHeadSlot) for m in model.modules()):
        raise ValueError("sfhead: the model already has SF-Head slots")
    found = [m for m in model.modules() if isinstance(m, Block)]
    if not found:
        raise ValueError(f"sfhead: {type(model).__name__} has no GCN blocks (gcn -> tcn) to plug SF-Head into")
    if blocks == "all":
        chosen = list(range(len(found)))
    elif blocks == "last":
        chosen = [len(found) - 1]
    elif isinstance(blocks, str):
        raise ValueError(f"sfhead.blocks must be 'all', 'last' or a list of indices, got {blocks!r}")
    else:
        chosen = []
        for i in blocks:
            if isinstance(i, bool) or not isinstance(i, int) or not -len(found) <= i < len(found):
                raise ValueError(f"sfhead.blocks: index {i!r} out of range for {len(found)} blocks")
            chosen.append(i % len(found))
        chosen = sorted(set(chosen))
        if not chosen:
            raise ValueError("sfhead.blocks: empty list")
    slots = []
    for i in chosen:
        blk = found[i]
        C = _channels(blk, i)
        if C % (4 * groups):
            raise ValueError(f"sfhead: block {i} has {C} channels, not divisible by 4 * groups = {4 * groups}; "
                             "choose a smaller sfhead.groups")
        slot = SFHeadSlot(blk.gcn, SFHead(C, groups, tuple(branches), sste, acfa), mode)
        blk.gcn = slot
        slots.append(slot)
    return SFHeadRecognizer(model, slots, mode, rcl, **loss_kw)
