"""Fusion of the fused skeleton sequence ``S_pred`` and the fused acceleration ``a`` (FineTec, recognition stage).

The paper integrates ``S_pred`` and ``a`` "through a cross-attention module" before the GCN and compares it with an
MLP-based integration (CA vs MLP ablation). Both modules here map ``S_pred [B, T, V, C]`` and ``a [B, T, V, C]``
to per-joint features ``[B, T, V, dim]`` (channels-last) and expose ``out_channels``.

Choices:

* Tokens: per joint, the ``T`` frames are the tokens (``B * V`` sequences of length ``T``), so attention runs
  along time and the GCN that follows keeps the joint structure. Queries = linear embedding of ``S_pred``, keys and
  values = linear embedding of ``a``, both plus a fixed sinusoidal time encoding (no parameters, any ``T``).
  Output = LayerNorm(query embedding + multi-head attention output).
* ``score [B, T, V]`` (optional): key frames with ``score <= 0`` (or False) are masked out of the attention; a
  joint whose keys are all masked gets a zero attention output (no NaN). In :class:`MLPFusion` the same score zeroes
  ``a`` at those joint-frames, so masked accelerations never reach the output either.
* :class:`MLPFusion`: a two-layer MLP (hidden ``2 * dim``) on the concatenated ``[S_pred, a]`` per joint-frame,
  then LayerNorm.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["CrossAttentionFusion", "MLPFusion", "sinusoidal_encoding"]


def sinusoidal_encoding(T: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """``[T, dim]`` float32 sinusoidal time encoding (sin on even, cos on odd channels)."""
    pos = torch.arange(T, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(T, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


def _check_inputs(S_pred: torch.Tensor, a: torch.Tensor, score: torch.Tensor | None, C: int, where: str) -> None:
    for name, x in (("S_pred", S_pred), ("a", a)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[-1] != C:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{where}: {name} must be [B, T, V, {C}], got {got}")
    if S_pred.shape != a.shape:
        raise ValueError(f"{where}: S_pred {tuple(S_pred.shape)} and a {tuple(a.shape)} differ in shape")
    if score is not None and tuple(score.shape) != tuple(a.shape[:3]):
        raise ValueError(f"{where}: score must be [B, T, V] = {tuple(a.shape[:3])}, got {tuple(score.shape)}")


def _keep(score: torch.Tensor) -> torch.Tensor:
    return score if score.dtype == torch.bool else score > 0


class CrossAttentionFusion(nn.Module):
    """Temporal cross-attention per joint: queries from ``S_pred``, keys/values from ``a``.

    ``forward(S_pred [B, T, V, C], a [B, T, V, C], score=None) -> [B, T, V, dim]``.
    """

    def __init__(self, channels_in: int = 2, dim: int = 16, heads: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if channels_in < 1 or dim < 1 or heads < 1 or dim % heads:
            raise ValueError(f"CrossAttentionFusion: need positive channels_in/dim/heads with dim divisible by "
                             f"heads, got channels_in={channels_in}, dim={dim}, heads={heads}")
        self.channels_in, self.dim, self.heads, self.dropout = int(channels_in), int(dim), int(heads), float(dropout)
        self.embed_q = nn.Linear(channels_in, dim)
        self.embed_kv = nn.Linear(channels_in, dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    @property
    def out_channels(self) -> int:
        return self.dim

    def extra_repr(self) -> str:
        return f"channels_in={self.channels_in}, dim={self.dim}, heads={self.heads}, dropout={self.dropout}"

    def forward(self, S_pred: torch.Tensor, a: torch.Tensor, score: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs(S_pred, a, score, self.channels_in, "CrossAttentionFusion")
        B, T, V, _ = S_pred.shape
        N, h, hd = B * V, self.heads, self.dim // self.heads
        pe = sinusoidal_encoding(T, self.dim, S_pred.device)[:, None, :]  # [T, 1, dim]
        xq = self.embed_q(S_pred.float()) + pe        # [B, T, V, dim]
        xk = self.embed_kv(a.float()) + pe

        def heads_of(x: torch.Tensor) -> torch.Tensor:  # [B, T, V, dim] -> [B*V, h, T, hd]
            return x.permute(0, 2, 1, 3).reshape(N, T, h, hd).transpose(1, 2)

        q, k, v = heads_of(self.q(xq)), heads_of(self.k(xk)), heads_of(self.v(xk))
        mask = None
        has_key = None
        if score is not None:
            keep = _keep(score).permute(0, 2, 1).reshape(N, T)
            has_key = keep.any(-1)
            mask = (keep | ~has_key[:, None])[:, None, None, :]  # [N, 1, 1, T]
        drop = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v.to(q.dtype), attn_mask=mask, dropout_p=drop)
        if has_key is not None:
            att = att * has_key[:, None, None, None].to(att.dtype)
        att = att.transpose(1, 2).reshape(B, V, T, self.dim).permute(0, 2, 1, 3)
        return self.norm(xq + self.proj(att).to(xq.dtype))


class MLPFusion(nn.Module):
    """MLP on the concatenated per-joint ``[S_pred, a]`` (the ablation of the cross-attention fusion).

    ``forward(S_pred [B, T, V, C], a [B, T, V, C], score=None) -> [B, T, V, dim]``.
    """

    def __init__(self, channels_in: int = 2, dim: int = 16, hidden: int | None = None) -> None:
        super().__init__()
        if channels_in < 1 or dim < 1:
            raise ValueError(f"MLPFusion: channels_in and dim must be positive, got {channels_in}, {dim}")
        self.channels_in, self.dim = int(channels_in), int(dim)
        hidden = int(hidden or 2 * dim)
        self.net = nn.Sequential(nn.Linear(2 * channels_in, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    @property
    def out_channels(self) -> int:
        return self.dim

    def forward(self, S_pred: torch.Tensor, a: torch.Tensor, score: torch.Tensor | None = None) -> torch.Tensor:
        _check_inputs(S_pred, a, score, self.channels_in, "MLPFusion")
        a = a.float()
        if score is not None:
            a = a * _keep(score)[..., None].float()
        return self.norm(self.net(torch.cat([S_pred.float(), a], -1)))
