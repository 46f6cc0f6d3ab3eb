"""SF-Head (Huang et al., ACCV 2024), Sec. 3.2: Synchronized Spatial-Temporal Extraction (SSTE, Eq. 1) and Adaptive
Cross-dimensional Feature Aggregation (AC-FA: ACDA Eq. 2-3, ATDA Eq. 4-5, ASDA Eq. 6-7, C-FA Eq. 8-9).

Input ``X [B, C, T, V]`` is split into ``g`` channel groups that share the module's parameters (the groups are
folded into the batch, so nothing loops over them); each group ``X_k`` is split four ways ``X_k1..X_k4`` of
``C / 4g`` channels:

* SSTE: ``f_t = sigmoid(phi_t(GP(X_k1))) * X_k1`` and ``f_s = sigmoid(phi_s(GN(X_k3))) * X_k3``, where ``phi`` is a
  per-channel affine map starting at weight 0, bias 1 (Eq. 1);
* AC-FA: ``f_c = X_k2`` weighted by ACDA (Z-pool over channels), ``f_t`` by ATDA (Z-pool over time), ``f_s`` by
  ASDA (Z-pool over joints); each gate is a 7x7 convolution of the 2-channel Z-pool, batch norm and a sigmoid;
  the branches and the identity term are summed with ``eta = softmax`` of four learnable scalars (Eq. 8-9): ``f_r``;
* output: ``[f_t, f_s, f_r, f_o]`` (``f_o = X_k4``) concatenated per group, then a channel shuffle with 2 groups:
  the same shape as ``X``.

Choices (the paper is vague; the authors' public module file settles most of them, see docs/sfhead.md):
the identity term of Eq. 8 (``eta_o``) multiplies ``f_c`` (the module file) rather than ``X_k4`` (the paper's
notation); the ATDA gate is a map over ``(C', V)`` broadcast over time and the ASDA gate a map over ``(T, C')``
broadcast over joints (rotating the tensor, pooling over the leading dimension and rotating back, as in the paper,
gives exactly these). :meth:`SFHead.forward` with ``return_features=True`` also returns the per-sample features the
losses need (:mod:`finetec.models.sfhead.losses`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["SFHead", "SFHeadFeatures", "SSTE", "AttentionGate", "z_pool", "channel_shuffle"]

BRANCHES = ("acda", "atda", "asda")


class SFHeadFeatures(NamedTuple):
    """Per-group features ``[B*g, C/4g, T, V]`` of one SF-Head call (inputs of F-RL and F-CL)."""

    f_t: torch.Tensor  # SSTE temporal feature
    f_s: torch.Tensor  # SSTE spatial feature
    f_c: torch.Tensor  # identity feature X_k2
    f_o: torch.Tensor  # original feature X_k4
    f_a: torch.Tensor  # AC-FA aggregated feature (f_r in the module file)
    batch: int  # B: features of sample i are rows [i*g, (i+1)*g)


def z_pool(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Max and mean over ``dim``, stacked as 2 channels at dim 1 (Eq. 2, 4, 6: concat(MP, AP))."""
    return torch.stack((x.amax(dim), x.mean(dim)), 1)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle of ``[B, C, ...]`` with ``groups`` groups."""
    B, C = x.shape[:2]
    return x.reshape(B, groups, C // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class AttentionGate(nn.Module):
    """``sigmoid(BN(Conv7x7(zpool)))``: a 1-channel weight map from a 2-channel Z-pool (Eq. 3, 5, 7)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        # channels_last input: oneDNN's 2->1-channel 7x7 conv (and its backward) runs ~3x faster than on NCHW
        return torch.sigmoid(self.bn(self.conv(pooled.contiguous(memory_format=torch.channels_last))))


class SSTE(nn.Module):
    """Synchronized Spatial-Temporal Extraction (Eq. 1) on ``C'``-channel group slices."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        shape = (1, channels, 1, 1)
        self.t_weight = nn.Parameter(torch.zeros(shape))  # phi_t, weight 0 / bias 1 at start (module file)
        self.t_bias = nn.Parameter(torch.ones(shape))
        self.s_weight = nn.Parameter(torch.zeros(shape))  # phi_s
        self.s_bias = nn.Parameter(torch.ones(shape))
        self.gn = nn.GroupNorm(channels, channels)

    def forward(self, x_t: torch.Tensor, x_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f_t = x_t * torch.sigmoid(self.t_weight * x_t.mean((2, 3), keepdim=True) + self.t_bias)  # Eq. 1, f_t
        f_s = x_s * torch.sigmoid(self.s_weight * self.gn(x_s) + self.s_bias)  # Eq. 1, f_s
        return f_t, f_s


class SFHead(nn.Module):
    """SF-Head on ``[B, C, T, V]`` -> same shape.

    Args:
        channels: C; must be divisible by ``4 * groups``.
        groups: g, the channel groups sharing the parameters (the authors use 8).
        branches: the AC-FA dimensions used, a subset of ``('acda', 'atda', 'asda')`` (Table 3 ablation); a
            branch left out keeps its input unweighted in Eq. 8.
        sste: False replaces SSTE by the identity (``f_t = X_k1``, ``f_s = X_k3``; Table 2 ablation).
        acfa: False replaces AC-FA by the identity term alone (``f_r = f_c``; Table 2 ablation).
    """

    def __init__(self, channels: int, groups: int = 8, branches: tuple[str, ...] | list[str] = BRANCHES,
                 sste: bool = True, acfa: bool = True) -> None:
        super().__init__()
        if groups < 1 or channels % (4 * groups):
            raise ValueError(f"SFHead: channels ({channels}) must be divisible by 4 * groups (4 * {groups})")
        unknown = sorted(set(branches) - set(BRANCHES))
        if unknown:
            raise ValueError(f"SFHead: unknown AC-FA branch(es) {unknown}; choose from {list(BRANCHES)}")
        self.channels, self.groups = channels, groups
        self.branches = tuple(b for b in BRANCHES if b in branches)
        cg = channels // (4 * groups)
        self.sste = SSTE(cg) if sste else None
        self.acfa = bool(acfa)
        self.gates = nn.ModuleDict({b: AttentionGate() for b in self.branches}) if acfa else nn.ModuleDict()
        # C-FA weights, softmax-normalised (Eq. 8); none without AC-FA (no unused parameters, e.g. for DDP)
        self.eta = nn.Parameter(torch.ones(4)) if acfa else None

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, groups={self.groups}, sste={self.sste is not None}, acfa={self.acfa}, "
                f"branches={self.branches}")

    def aggregate(self, f_c: torch.Tensor, f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
        """Adaptive Cross-dimensional Feature Aggregation: ``f_a = sum_i eta_i y_i`` (Eq. 8-9)."""
        if not self.acfa:
            return f_c
        g = self.gates
        y_c = f_c * g["acda"](z_pool(f_c, 1)) if "acda" in g else f_c  # Eq. 2-3, weight over (T, V)
        y_t = f_t * g["atda"](z_pool(f_t, 2)).squeeze(1).unsqueeze(2) if "atda" in g else f_t  # Eq. 4-5, (C', V)
        if "asda" in g:  # Eq. 6-7: pool over joints, gate over (T, C'), broadcast back over V
            w = g["asda"](z_pool(f_s, 3).transpose(2, 3))  # [Bg, 1, T, C']
            y_s = f_s * w.squeeze(1).transpose(1, 2).unsqueeze(-1)
        else:
            y_s = f_s
        eta = torch.softmax(self.eta.float(), 0).to(f_c.dtype)
        return eta[0] * y_t + eta[1] * y_s + eta[2] * y_c + eta[3] * f_c  # Eq. 9

    def forward(self, x: torch.Tensor, return_features: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, SFHeadFeatures]:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SFHead: expected [B, {self.channels}, T, V], got {tuple(x.shape)}")
        B, C, T, V = x.shape
        xg = x.reshape(B * self.groups, C // self.groups, T, V)
        x1, x2, x3, x4 = xg.chunk(4, dim=1)
        f_t, f_s = self.sste(x1, x3) if self.sste is not None else (x1, x3)
        f_a = self.aggregate(x2, f_t, f_s)
        out = channel_shuffle(torch.cat((f_t, f_s, f_a, x4), 1).reshape(B, C, T, V), 2)
        if return_features:
            return out, SFHeadFeatures(f_t, f_s, x2, x4, f_a, B)
        return out
