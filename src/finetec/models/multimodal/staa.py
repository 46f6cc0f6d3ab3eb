"""STAA, the paper's Spatio-Temporal Attention and Aggregation (Sec. 3.2): Motion Attention (MA, Eq. 3-5) then
Temporal Aggregation (TA, Eq. 6-8), on per-frame features ``[N*T, C, H, W]`` of clips of ``T`` frames (TSM's
layout: the frames of a clip are consecutive rows).

Choices (the paper leaves these open):

- MA, Eq. 3: ``F(t) = M(t+1) - M(t)`` for ``t < T``; the missing last step ``F(T)`` is zeros, so ``F`` has ``T`` steps.
  That zero step takes part in the temporal max of Eq. 4, so the mask is never below ``sigmoid(0) = 0.5``: a channel
  without motion is halved, not switched off (and a clip of one frame gets the mask 0.5 everywhere).
- MA, Eq. 4: one mask value per (clip, channel), the spatial then temporal max of ``F`` (signed differences, no
  absolute value), sigmoid computed in float32.
- MA, Eq. 5: ``phi`` is a full 3x3 convolution (``C -> C``, no bias) followed by a BatchNorm whose weight starts at 0,
  so at initialisation ``M_map = M * F_mask`` exactly and a network loaded with ImageNet weights starts from features
  it knows (each channel only rescaled by a factor in [0.5, 1]).
- TA, Eq. 6: ChannelSplit is a 1x1 convolution (``C -> C``, no bias, no BN) initialised to the identity, then an even
  split into 4 fragments (``C % 4 == 0`` required).
- TA, Eq. 7: per fragment 2..4 its own ``Conv_sc`` (3x3 spatial, ``C/4 -> C/4``, no bias, identity (Dirac) init),
  then ``Conv_dep`` (depthwise temporal conv, kernel 3 along T, groups ``C/4``, zero-padded in time so each clip
  only sees its own frames, no bias, initialised to the temporal identity: centre tap 1), then BatchNorm (weight 1,
  bias 0) and ReLU, as Res2Net's per-fragment conv-BN-ReLU. At initialisation (BN in eval with fresh statistics,
  non-negative input) TA therefore gives ``q1 = v1, q2 = v2, q3 = v3 + v2, q4 = v4 + v3 + v2``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MotionAttention", "TemporalAggregation", "STAA", "STAA_MODES"]

STAA_MODES = ("staa", "ma")


def check_num_frames(num_frames: "int | torch.Tensor", where: str) -> None:
    """A positive int (or, while tracing for export, the 0-dim integer tensor a traced size becomes)."""
    if isinstance(num_frames, torch.Tensor) and num_frames.dim() == 0 and not num_frames.is_floating_point() \
            and torch.jit.is_tracing():
        return
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"{where}: num_frames must be a positive int, got {num_frames!r}")


def _clips(x: torch.Tensor, num_frames: int, where: str) -> torch.Tensor:
    """``[N*T, C, H, W]`` -> the view ``[N, T, C, H, W]`` (clear errors for a wrong shape or ``T``)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{where}: input must be a [N*T, C, H, W] tensor, got {shape}")
    check_num_frames(num_frames, where)
    if x.shape[0] % num_frames != 0 or x.shape[0] == 0:
        raise ValueError(f"{where}: the batch dimension {x.shape[0]} of {tuple(x.shape)} is not a positive multiple "
                         f"of num_frames={num_frames}")
    return x.view(x.shape[0] // num_frames, num_frames, *x.shape[1:])


def _check_channels(x: torch.Tensor, channels: int, where: str) -> None:
    if x.shape[1] != channels:
        raise ValueError(f"{where}: built for C={channels} channels, input [N*T, C, H, W] = {tuple(x.shape)}")


class MotionAttention(nn.Module):
    """MA (Eq. 3-5): ``M_map = M * sigmoid(TemporalPool(SpatialPool(F))) + phi(M)``, ``F`` the frame differences."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"MotionAttention: channels must be a positive int, got {channels!r}")
        self.channels = channels
        self.phi = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.phi_bn = nn.BatchNorm2d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.phi.weight, mode="fan_out", nonlinearity="relu")
        self.phi_bn.reset_parameters()
        nn.init.zeros_(self.phi_bn.weight)  # start at M * F_mask

    @staticmethod
    def motion(m: torch.Tensor) -> torch.Tensor:
        """Eq. 3 on ``m [N, T, C, H, W]``: ``F(t) = M(t+1) - M(t)``, the last step zeros; ``[N, T, C, H, W]``."""
        return F.pad(m[:, 1:] - m[:, :-1], (0, 0, 0, 0, 0, 0, 0, 1))  # Eq. 3

    def mask(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``F_mask [N, C]`` (float32) of ``x [N*T, C, H, W]``."""
        m = _clips(x, num_frames, "MotionAttention")
        _check_channels(x, self.channels, "MotionAttention")
        f = self.motion(m)
        return torch.sigmoid(f.amax(dim=(3, 4)).amax(dim=1).float())  # Eq. 4: spatial max, temporal max

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``x [N*T, C, H, W]`` -> ``M_map [N*T, C, H, W]``."""
        mask = self.mask(x, num_frames).to(x.dtype)
        N = mask.shape[0]
        weighted = (x.view(N, num_frames, *x.shape[1:]) * mask[:, None, :, None, None]).view(x.shape)
        return weighted + self.phi_bn(self.phi(x))  # Eq. 5


class _Fragment(nn.Module):
    """One fragment's ``Conv_dep(Conv_sc(.))`` of Eq. 7, then BN and ReLU, on ``[N*T, c, H, W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_sc = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv_dep = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.dirac_(self.conv_sc.weight)
        with torch.no_grad():
            self.conv_dep.weight.zero_()
            self.conv_dep.weight[:, :, 1] = 1.0
        self.bn.reset_parameters()

    def temporal(self, y: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``Conv_dep``: depthwise kernel-3 conv along T of ``y [N*T, c, H, W]``, zero-padded per clip."""
        NT, c, H, W = y.shape
        N = NT // num_frames
        z = y.view(N, num_frames, c, H * W).transpose(1, 2)  # [N, c, T, H*W]
        z = self.conv_dep(z)
        return z.transpose(1, 2).reshape(NT, c, H, W)

    def forward(self, y: torch.Tensor, num_frames: int) -> torch.Tensor:
        return F.relu(self.bn(self.temporal(self.conv_sc(y), num_frames)))


class TemporalAggregation(nn.Module):
    """TA (Eq. 6-8): ChannelSplit into ``[v1..v4]``, the Res2Net-like chain of Eq. 7, concatenation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 4 or channels % 4:
            raise ValueError(f"TemporalAggregation: channels must be a positive multiple of 4 (four even fragments), "
                             f"got {channels!r}")
        self.channels = channels
        self.split = nn.Conv2d(channels, channels, 1, bias=False)
        self.fragments = nn.ModuleList(_Fragment(channels // 4) for _ in range(3))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.dirac_(self.split.weight)
        for f in self.fragments:
            f.reset_parameters()

    def channel_split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Eq. 6: 1x1 conv, then four equal channel fragments ``v1..v4``."""
        return self.split(x).chunk(4, dim=1)  # Eq. 6

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``M_map [N*T, C, H, W]`` -> ``Q [N*T, C, H, W]``."""
        _clips(x, num_frames, "TemporalAggregation")
        _check_channels(x, self.channels, "TemporalAggregation")
        v = self.channel_split(x)
        q = [v[0]]  # Eq. 7: q1 = v1
        for i, frag in enumerate(self.fragments):  # Eq. 7: q2 from v2 alone, q3 from v3 + q2, q4 from v4 + q3
            q.append(frag(v[i + 1] if i == 0 else v[i + 1] + q[-1], num_frames))
        return torch.cat(q, dim=1)  # Eq. 8


class STAA(nn.Module):
    """STAA: MA then TA (``mode='staa'``), or MA only (``mode='ma'``, Table 4's "+MA"); ``[N*T, C, H, W]`` in/out."""

    def __init__(self, channels: int, mode: str = "staa") -> None:
        super().__init__()
        if mode not in STAA_MODES:
            raise ValueError(f"STAA: mode must be one of {STAA_MODES}, got {mode!r}")
        self.mode, self.channels = mode, channels
        self.ma = MotionAttention(channels)
        self.ta = TemporalAggregation(channels) if mode == "staa" else None

    def reset_parameters(self) -> None:
        self.ma.reset_parameters()
        if self.ta is not None:
            self.ta.reset_parameters()

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = self.ma(x, num_frames)
        return y if self.ta is None else self.ta(y, num_frames)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}"
