"""The skeleton bank of FineTec's context-aware sequence completion: bank sequences, their joint weights, S_prior.

Choices: ``S_prior`` -- "the average prior sequence obtained via temporal averaging" -- is read as the mean over
the bank's K sequences taken at each time step, weighted by joint visibility:
``S_prior[t, v] = sum_k w[k, t, v] S[k, t, v] / sum_k w[k, t, v]`` (0 where no bank sequence sees the joint), so it
is a [T, V, 2] sequence like the query it is paired with. ``nearest`` uses the mean squared distance over the joints
both sequences see (weight ``qweight * w_k``); a bank entry sharing no visible joint with the query is never
nearest unless no entry shares any (then entry 0). The bank is a fixed set of buffers (not parameters); ``load``
may change K (the constructor's ``size`` is the initial K), and loading a state dict adopts its K.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

__all__ = ["SkeletonBank", "EMPTY_BANK_HINT"]

EMPTY_BANK_HINT = ("the skeleton bank is empty: load one with model.bank.load(sequences, weights), e.g. from "
                   "finetec.data.bank.build_skeleton_bank(pickle, layout=..., clip_len=..., size=...)")


class SkeletonBank(nn.Module):
    """Buffers ``sequences [K, T, V, 2]``, ``weights [K, T, V]`` (1 = joint visible) and ``prior [T, V, 2]``.

    Built empty (all zeros) with ``(size, clip_len, num_joints)``; fill it with :meth:`load`.
    """

    def __init__(self, size: int, clip_len: int, num_joints: int) -> None:
        super().__init__()
        if int(size) < 1 or int(clip_len) < 1 or int(num_joints) < 1:
            raise ValueError(f"SkeletonBank: size, clip_len and num_joints must be >= 1, got "
                             f"{size}, {clip_len}, {num_joints}")
        self.clip_len = int(clip_len)
        self.num_joints = int(num_joints)
        T, V = self.clip_len, self.num_joints
        self.register_buffer("sequences", torch.zeros(int(size), T, V, 2))
        self.register_buffer("weights", torch.zeros(int(size), T, V))
        self.register_buffer("prior", torch.zeros(T, V, 2))

    @property
    def size(self) -> int:
        return self.sequences.shape[0]

    @property
    def is_empty(self) -> bool:
        """True until a bank with at least one visible joint is loaded."""
        return not bool(self.weights.any())

    def extra_repr(self) -> str:
        return f"size={self.size}, clip_len={self.clip_len}, num_joints={self.num_joints}, empty={self.is_empty}"

    def check_loaded(self) -> None:
        """Raise ``RuntimeError`` with loading instructions when the bank is empty."""
        if self.is_empty:
            raise RuntimeError(EMPTY_BANK_HINT)

    @staticmethod
    def compute_prior(sequences: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """S_prior: the visibility-weighted mean over the bank at each time step, ``[T, V, 2]``."""
        w = weights.float()
        num = (w[..., None] * sequences.float()).sum(0)
        den = w.sum(0)[..., None]
        return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))

    @torch.no_grad()
    def load(self, sequences: Any, weights: Any) -> "SkeletonBank":
        """Copy in ``sequences [K, T, V, 2]`` and ``weights [K, T, V]`` (numpy or torch) and recompute the prior.

        K may differ from the constructor's ``size``; T and V must match. Invisible joints' coordinates are filled
        per joint from the joint's visible frames (0 for a joint never visible).
        """
        s = torch.as_tensor(sequences)
        w = torch.as_tensor(weights)
        T, V = self.clip_len, self.num_joints
        if s.dim() != 4 or s.shape[1:] != (T, V, 2) or s.shape[0] < 1:
            raise ValueError(f"SkeletonBank.load: sequences must be [K, T={T}, V={V}, 2] with K >= 1, got "
                             f"{tuple(s.shape)}")
        if w.shape != s.shape[:3]:
            raise ValueError(f"SkeletonBank.load: weights must be [K, T, V] = {tuple(s.shape[:3])}, got "
                             f"{tuple(w.shape)}")
        if not (s.is_floating_point() and torch.isfinite(s).all() and torch.isfinite(w.float()).all()):
            raise ValueError("SkeletonBank.load: sequences and weights must be finite floating-point values")
        if bool((w < 0).any()):
            raise ValueError("SkeletonBank.load: weights must be >= 0")
        if not bool(w.any()):
            raise ValueError("SkeletonBank.load: the bank has no visible joint (all weights are 0)")
        from ..completion.classic import fill_missing_joints

        dev, dt = self.sequences.device, self.sequences.dtype
        w = w.to(device=dev, dtype=dt)
        s = s.to(device=dev, dtype=dt) * (w > 0)[..., None]
        # joints invisible in a bank frame are filled from the same joint's other frames, as query inputs are
        # (fill_missing_joints); the weights still mark them, for nearest(), the prior and the losses
        s = fill_missing_joints(s, w > 0, torch.ones(s.shape[:2], dtype=torch.bool, device=dev))
        self.sequences = s.contiguous()
        self.weights = w.contiguous()
        self.prior = self.compute_prior(s, w)
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # adopt the stored bank size K (T and V must still match; a mismatch is reported by the default loader)
        s, w = state_dict.get(prefix + "sequences"), state_dict.get(prefix + "weights")
        if isinstance(s, torch.Tensor) and isinstance(w, torch.Tensor) and s.dim() == 4 \
                and s.shape[1:] == self.sequences.shape[1:] and w.shape == s.shape[:3]:
            self.sequences = torch.zeros_like(self.sequences[:1]).expand(s.shape[0], -1, -1, -1).clone()
            self.weights = torch.zeros_like(self.weights[:1]).expand(w.shape[0], -1, -1).clone()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def sample(self, B: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``B`` bank indices drawn uniformly with replacement, ``[B]`` long on the bank's device."""
        self.check_loaded()
        return torch.randint(self.size, (int(B),), generator=generator, device=self.sequences.device)

    def nearest(self, query: torch.Tensor, qweight: torch.Tensor | None = None) -> torch.Tensor:
        """Index ``[B]`` of the bank entry closest to each ``query [B, T, V, 2]`` in weighted mean squared distance
        over the joints visible in both (``qweight [B, T, V]``, default all 1)."""
        self.check_loaded()
        T, V = self.clip_len, self.num_joints
        if query.dim() != 4 or query.shape[1:] != (T, V, 2):
            raise ValueError(f"SkeletonBank.nearest: query must be [B, T={T}, V={V}, 2], got {tuple(query.shape)}")
        if qweight is None:
            qweight = torch.ones(query.shape[:3], device=query.device)
        if qweight.shape != query.shape[:3]:
            raise ValueError(f"SkeletonBank.nearest: qweight must be {tuple(query.shape[:3])}, got "
                             f"{tuple(qweight.shape)}")
        with torch.autocast(device_type=query.device.type, enabled=False):
            q, qw = query.float(), qweight.float()
            s, w = self.sequences.float(), self.weights.float()
            # sum_tv qw w |q - s|^2 expanded so no [B, K, T, V, 2] tensor is formed
            d = (torch.einsum("btv,ktv->bk", qw * q.pow(2).sum(-1), w)
                 + torch.einsum("btv,ktv->bk", qw, w * s.pow(2).sum(-1))
                 - 2 * torch.einsum("btvc,ktvc->bk", qw[..., None] * q, w[..., None] * s))
            den = torch.einsum("btv,ktv->bk", qw, w)
            d = torch.where(den > 0, d.clamp_min(0) / den.clamp_min(1e-12), torch.full_like(d, float("inf")))
        return d.argmin(1)
