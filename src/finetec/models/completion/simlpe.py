"""siMLPe completion baseline (Table 3), after Guo et al., "Back to MLP: A Simple Baseline for Human Motion
Prediction" (WACV 2023), adapted from prediction to completion.

Pipeline per sequence: DCT over time -> spatial FC (features -> ``dim``) -> ``hidden_blocks`` x [temporal FC over the
T DCT coefficients -> LayerNorm over the feature dim -> residual] -> spatial FC (``dim`` -> V*C) -> IDCT, added to
the input. As in siMLPe, the blocks mix only time; features are mixed by the input and output FCs.

Choices:

* Input: the corrupted sequence pre-filled by L-R copy (siMLPe's "repeat the last observed frame" padding, extended
  to gaps; compact survivors placed by ``place_on_time_axis``), flattened to V*C features per frame, plus one channel
  with the observed-frame indicator on the time axis.
* Output = filled input + predicted residual on every frame (observed frames too: in compact mode their times are
  only a guess). The output FC is zero-initialised, so an untrained model returns exactly the L-R copy fill; the
  temporal FCs start near zero (xavier gain 1e-8) as in siMLPe, so each block starts near the identity.
* DCT: orthonormal DCT-II matrix over all ``clip_len`` frames (non-persistent buffer; IDCT = its transpose), no
  truncation of coefficients; ``clip_len`` is fixed by the temporal FCs.
* Loss: weighted MSE on positions + ``velocity_weight`` x weighted MSE on velocities (siMLPe's L_re + L_v with
  squared instead of plain L2 errors); MSE = mean over coordinates of the joints with weight > 0; a velocity has
  weight ``w_t * w_{t+1}``; with no valid joint a term is 0 (no NaN).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from . import register_completer
from .classic import lr_fill, place_on_time_axis

__all__ = ["SiMLPe", "dct_matrix"]


def dct_matrix(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II matrix ``D [n, n]`` (``D[k, t] = c_k cos(pi (2t + 1) k / (2n))``); ``D^T D = I``."""
    t = torch.arange(n, dtype=torch.float64)
    k = t[:, None]
    d = torch.cos(math.pi * (2 * t[None, :] + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype)


class TemporalMLPBlock(nn.Module):
    """siMLPe block on ``h [B, T, D]``: ``h + LN_D(W_t h + b)`` with ``W_t [T, T]`` mixing the time coefficients."""

    def __init__(self, clip_len: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.fc = nn.Linear(clip_len, clip_len)
        self.norm = nn.LayerNorm(dim, eps=eps)
        nn.init.xavier_uniform_(self.fc.weight, gain=1e-8)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.norm(self.fc(h.transpose(1, 2)).transpose(1, 2))


def _weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over coordinates of the joints with weight > 0 of ``w * (pred - target)^2`` (0 when none)."""
    valid = (weight > 0)[..., None]
    sq = torch.where(valid, pred - target, torch.zeros_like(pred)).square().sum(-1)
    den = weight.sum() * pred.shape[-1]
    return (weight * sq).sum() / torch.where(den > 0, den, torch.ones_like(den))


@register_completer("simlpe")
class SiMLPe(nn.Module):
    """siMLPe completer: ``forward(x [B, T, V, C], mask [B, T], mode) -> [B, T, V, C]`` with ``T == clip_len``."""

    def __init__(
        self,
        clip_len: int,
        num_joints: int,
        channels: int = 2,
        hidden_blocks: int = 8,
        dim: int | None = None,
        velocity_weight: float = 1.0,
    ) -> None:
        super().__init__()
        for what, v in (("clip_len", clip_len), ("num_joints", num_joints), ("channels", channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SiMLPe: {what} must be a positive int, got {v!r}")
        if clip_len < 2:
            raise ValueError(f"SiMLPe: clip_len must be >= 2, got {clip_len}")
        if isinstance(hidden_blocks, bool) or not isinstance(hidden_blocks, int) or hidden_blocks < 0:
            raise ValueError(f"SiMLPe: hidden_blocks must be an int >= 0, got {hidden_blocks!r}")
        self.clip_len, self.num_joints, self.channels = clip_len, num_joints, channels
        self.velocity_weight = float(velocity_weight)
        feat = num_joints * channels
        self.dim = int(dim) if dim is not None else feat
        self.register_buffer("dct", dct_matrix(clip_len), persistent=False)
        self.fc_in = nn.Linear(feat + 1, self.dim)
        self.blocks = nn.Sequential(*[TemporalMLPBlock(clip_len, self.dim) for _ in range(hidden_blocks)])
        self.fc_out = nn.Linear(self.dim, feat)
        nn.init.zeros_(self.fc_out.weight)
        nn.init.zeros_(self.fc_out.bias)

    def _check(self, x: torch.Tensor) -> None:
        want = (self.clip_len, self.num_joints, self.channels)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != want:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"SiMLPe: x must be [B, {want[0]}, {want[1]}, {want[2]}] (B, clip_len, num_joints, "
                             f"channels), got {got}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mode: str = "compact") -> torch.Tensor:
        self._check(x)
        y, observed = place_on_time_axis(x, mask, mode)
        filled = lr_fill(y, observed)
        B, T, V, C = filled.shape
        feats = torch.cat([filled.reshape(B, T, V * C), observed[..., None].to(filled.dtype)], dim=-1)
        dct = self.dct.to(filled.dtype)
        h = self.fc_in(torch.matmul(dct, feats))  # DCT over time, then spatial FC
        h = self.fc_out(self.blocks(h))
        residual = torch.matmul(self.dct.t().to(h.dtype), h)  # IDCT
        return filled + residual.reshape(B, T, V, C).to(filled.dtype)

    def compute_loss(
        self, x: torch.Tensor, mask: torch.Tensor, mode: str, target: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(S, {'loss', 'loss_pos', 'loss_vel'})``: weighted MSE of positions and of velocities against
        ``target [B, T, V, C]`` with joint weights ``weight [B, T, V]`` (0 = excluded)."""
        s = self(x, mask, mode)
        if tuple(target.shape) != tuple(s.shape):
            raise ValueError(f"SiMLPe.compute_loss: target must be {tuple(s.shape)}, got {tuple(target.shape)}")
        if tuple(weight.shape) != tuple(s.shape[:3]):
            raise ValueError(f"SiMLPe.compute_loss: weight must be {tuple(s.shape[:3])}, got {tuple(weight.shape)}")
        sf, tf, w = s.float(), target.float(), weight.float()
        loss_pos = _weighted_mse(sf, tf, w)
        loss_vel = _weighted_mse(sf[:, 1:] - sf[:, :-1], tf[:, 1:] - tf[:, :-1], w[:, 1:] * w[:, :-1])
        loss = loss_pos + self.velocity_weight * loss_vel
        return s, {"loss": loss, "loss_pos": loss_pos.detach(), "loss_vel": loss_vel.detach()}
