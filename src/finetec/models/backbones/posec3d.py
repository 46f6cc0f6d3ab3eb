"""PoseC3D (Duan et al., "Revisiting skeleton-based action recognition", CVPR 2022), as PYSKL's ``slowonly_r50``
PoseC3D configs: keypoints -> pseudo-heatmap volume -> SlowOnly 3D-CNN -> global pool, dropout, linear.

The input is the GCN input ``x [N, M, T, V, C]`` (C = 3: ``x, y`` in [-1, 1] and the score; C = 2: no score), so the
same data pipeline and corruption apply; the heatmaps are drawn inside ``forward`` (vectorised, on the input's
device):

1. **PoseCompact** (PYSKL's ``PoseCompact(padding=0.25, hw_ratio=1, allow_imgpad=True)``, :func:`pose_compact`):
   per sample, the box around all valid joints (every person and frame), enlarged by ``padding`` on each side and
   made square, is mapped onto the ``grid x grid`` image; a sample whose joints span less than ``compact_min``
   (normalised units) in x or y keeps the whole image (PYSKL's ``threshold``).
2. **Pseudo heatmaps**, one channel per joint (``'joint'``, Eq. 1, :func:`joint_heatmaps`) or per bone of the
   layout (``'limb'``, Eq. 2, :func:`limb_heatmaps`), persons combined by the pixel-wise maximum
   (:func:`pseudo_heatmap_volume`). PYSKL's ``GeneratePoseTarget`` details are kept: pixel ``i`` sits at coordinate
   ``i``, Gaussians are cut to the window ``[trunc(mu - 3 sigma), trunc(mu + 3 sigma)]`` per axis (limbs: the
   segment's box +- 3 sigma), scores below 1e-3 draw nothing, a limb shorter than one pixel draws the Gaussian of
   its first joint with that joint's score. Values below ``exp(-72)`` are set to 0 (PYSKL keeps them; here they
   would be denormal floats, which make CPU convolutions very slow).
3. **SlowOnly** (PYSKL's ``ResNet3dSlowOnly``: ``base_channels=32, num_stages=3, stage_blocks=(4, 6, 3),
   conv1_stride=(1, 1), pool1_stride=(1, 1), inflate=(0, 1, 1), spatial_strides=(2, 2, 2),
   temporal_strides=(1, 1, 2)``): stem 1x7x7 conv + BN + ReLU and a stride-1 1x3x3 max-pool, then bottleneck
   blocks (1x1x1 or, in inflated stages, 3x1x1 -> 1x3x3 (strided) -> 1x1x1 x4), widths 32/64/128 -> 512 channels;
   I3DHead: global average pool, dropout 0.5, linear (std 0.01).

Choices: the grid is ``56`` in ``'standard'`` (PYSKL trains on 56x56 crops; its 64x64 test resize is not
reproduced) and ``32`` in ``'slim'`` (with base width 8, i.e. 1/4, 128 output channels); ``sigma`` is given in
PYSKL's 56-pixel units and scaled by ``grid / 56``. Coordinates are mapped with PYSKL's resize convention
``u = (x' + 1) / 2 * grid`` (``x'`` in [-1, 1] after the compact box). The compact box is square in *normalised*
units (the model does not know the image aspect ratio) and is computed without gradient. Limbs are the layout's
``bone_pairs`` without the root's self pair (for coco17 these differ from PYSKL's 17 COCO limbs:
``5-11, 6-12, 11-12`` are ``11-0, 12-0`` here; pass ``limbs=`` to use another list). Without a score channel (C = 2)
or with ``use_score=False`` a joint counts with value 1 when it is valid (a score > 0, or, for C = 2, not at the
exact origin where missing joints are put). PYSKL's random crop and flip augmentations are data transforms and
are not part of the model. Layers are kept in ``channels_last_3d`` memory (about 2x faster 3D convolutions on CPU).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..heads.cls_head import ClsHead
from ..recognizer import check_input
from ..registry import register_model
from .common import FusableMixin, fold_bn

__all__ = [
    "POSEC3D_WIDTHS",
    "joint_heatmaps",
    "limb_heatmaps",
    "pose_compact",
    "pseudo_heatmap_volume",
    "ConvBN3d",
    "Bottleneck3d",
    "SlowOnly",
    "PoseC3D",
    "build_posec3d",
    "build_posec3d_limb",
]

EPS = 1e-3  # PYSKL: keypoints / limbs with a smaller score draw nothing
MAX_EXP = 72.0  # Gaussian values below exp(-72) are set to 0: no denormal floats (slow on CPU) even times EPS
SIGMA_GRID = 56  # PYSKL's sigma=0.6 is in pixels of its 56x56 training heatmaps

# standard = PYSKL's posec3d SlowOnly-R50 on 56x56 heatmaps; slim = 1/4 of the width on 32x32 heatmaps
POSEC3D_WIDTHS: dict[str, dict[str, Any]] = {
    "standard": dict(base_channels=32, grid=56),
    "slim": dict(base_channels=8, grid=32),
}
_CL3 = torch.channels_last_3d


# ---------------------------------------------------------------------------------------------- pseudo heatmaps
def _window(lo: torch.Tensor, hi: torch.Tensor, pix: torch.Tensor, sigma: float) -> torch.Tensor:
    """PYSKL's patch: pixel ``i`` is drawn when ``trunc(lo - 3 sigma) <= i <= trunc(hi + 3 sigma)``."""
    return (pix >= torch.trunc(lo - 3 * sigma)[..., None]) & (pix <= torch.trunc(hi + 3 * sigma)[..., None])


def joint_heatmaps(uv: torch.Tensor, value: torch.Tensor, grid: int, sigma: float) -> torch.Tensor:
    """Eq. 1 of PoseC3D: ``J_k(i, j) = exp(-((j - u_k)^2 + (i - v_k)^2) / (2 sigma^2)) * c_k``.

    ``uv [..., V, 2]`` grid coordinates (pixels; ``u`` along the width), ``value [..., V]`` the scores ``c_k``;
    returns ``[..., V, grid, grid]`` (rows ``i`` = y). Values below 1e-3 draw nothing.
    """
    pix = torch.arange(grid, device=uv.device, dtype=uv.dtype)
    arg = (pix - uv[..., None]) ** 2 / (2 * sigma**2)  # [..., V, 2, G]
    g = torch.exp(-arg) * (_window(uv, uv, pix, sigma) & (arg <= MAX_EXP / 2))
    value = torch.where(value >= EPS, value, torch.zeros_like(value))
    return (g[..., 1, :, None] * value[..., None, None]) * g[..., 0, None, :]  # Eq. 1


def limb_heatmaps(uv: torch.Tensor, value: torch.Tensor, limbs: Sequence[tuple[int, int]], grid: int,
                  sigma: float) -> torch.Tensor:
    """Eq. 2 of PoseC3D: ``L_k(i, j) = exp(-D((j, i), seg[a_k, b_k])^2 / (2 sigma^2)) * min(c_a, c_b)``.

    ``uv [..., V, 2]`` grid coordinates, ``value [..., V]`` scores, ``limbs`` the ``(a, b)`` joint pairs; returns
    ``[..., L, grid, grid]``. ``D`` is the distance to the segment (to the nearer end beyond its ends). As PYSKL: a
    limb whose weaker joint scores below 1e-3 draws nothing; one shorter than a pixel draws Eq. 1 for joint ``a``.
    """
    ia = torch.tensor([a for a, _ in limbs], device=uv.device)
    ib = torch.tensor([b for _, b in limbs], device=uv.device)
    a, b = uv[..., ia, :], uv[..., ib, :]  # [..., L, 2]
    sa, sb = value[..., ia], value[..., ib]
    e = b - a
    l2 = (e * e).sum(-1)
    short = l2 < 1.0
    weak = torch.minimum(sa, sb)
    coeff = torch.where(weak >= EPS, torch.where(short, sa, weak), torch.zeros_like(weak))
    pix = torch.arange(grid, device=uv.device, dtype=uv.dtype)
    dx = (pix - a[..., 0, None])[..., None, :]  # [..., L, 1, W]
    dy = (pix - a[..., 1, None])[..., :, None]  # [..., L, H, 1]
    ex, ey = e[..., 0, None, None], e[..., 1, None, None]
    # projection of the pixel on the segment, as a fraction of its length (0 = a, 1 = b)
    t = ((dx * ex + dy * ey) / torch.where(short, torch.ones_like(l2), l2)[..., None, None]).clamp(0.0, 1.0)
    t = t * (~short)[..., None, None]
    arg = ((dx - t * ex) ** 2 + (dy - t * ey) ** 2) / (2 * sigma**2)
    lo = torch.where(short[..., None], a, torch.minimum(a, b))
    hi = torch.where(short[..., None], a, torch.maximum(a, b))
    win = _window(lo, hi, pix, sigma)  # [..., L, 2, G]
    mask = win[..., 1, :, None] & win[..., 0, None, :] & (arg <= MAX_EXP)
    return torch.exp(-arg) * mask * coeff[..., None, None]  # Eq. 2


def pose_compact(xy: torch.Tensor, valid: torch.Tensor, padding: float = 0.25,
                 min_extent: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """PYSKL's ``PoseCompact`` (hw_ratio 1, image padding allowed) on normalised coordinates.

    ``xy [N, ..., 2]``, ``valid [N, ...]`` bool; returns the box centre ``[N, 2]`` and half side ``[N]``: the box of
    the valid joints, each half extent times ``1 + padding``, the larger one for both axes. Samples without valid
    joints, or spanning less than ``min_extent`` in x or y, get the whole image (centre 0, half side 1).
    """
    N = xy.shape[0]
    xy = xy.detach().reshape(N, -1, 2)
    valid = valid.reshape(N, -1, 1)
    inf = torch.full_like(xy, math.inf)
    lo = torch.where(valid, xy, inf).amin(1)
    hi = torch.where(valid, xy, -inf).amax(1)
    ext = hi - lo  # inf / nan without valid joints
    ok = torch.isfinite(ext).all(-1) & (ext >= min_extent).all(-1)
    centre = torch.where(ok[:, None], (lo + hi) / 2, torch.zeros_like(lo))
    half = torch.where(ok, (ext / 2 * (1 + padding)).amax(-1), torch.ones_like(ok, dtype=xy.dtype))
    return centre, half


def pseudo_heatmap_volume(x: torch.Tensor, grid: int, sigma: float = 0.6, mode: str = "joint",
                          limbs: Sequence[tuple[int, int]] = (), use_score: bool = True, compact: bool = True,
                          padding: float = 0.25, min_extent: float = 0.02) -> torch.Tensor:
    """``x [N, M, T, V, C]`` -> pseudo-heatmap volume ``[N, K, T, grid, grid]`` float32 (``channels_last_3d``).

    ``K = V`` for ``mode='joint'`` (Eq. 1), ``len(limbs)`` for ``'limb'`` (Eq. 2); persons are combined by the
    pixel-wise maximum. ``sigma`` is in PYSKL's 56-pixel units (scaled by ``grid / 56``).
    """
    if mode not in ("joint", "limb"):
        raise ValueError(f"heatmap mode must be 'joint' or 'limb', got {mode!r}")
    N, M, T, V, C = x.shape
    xy = x[..., :2].float()
    if C >= 3:
        score = x[..., 2].float()
        valid = score > 0
        value = score if use_score else valid.float()
    else:
        valid = (xy != 0).any(-1)
        value = valid.float()
    if compact:
        centre, half = pose_compact(xy, valid, padding, min_extent)
        xy = (xy - centre[:, None, None, None]) / half[:, None, None, None, None]
    uv = (xy + 1) * (grid / 2)
    s = sigma * grid / SIGMA_GRID
    hm = joint_heatmaps(uv, value, grid, s) if mode == "joint" else limb_heatmaps(uv, value, limbs, grid, s)
    hm = hm.amax(1) if M > 1 else hm[:, 0]  # [N, T, K, H, W]
    return hm.permute(0, 2, 1, 3, 4).contiguous(memory_format=_CL3)


# ---------------------------------------------------------------------------------------------- SlowOnly
class ConvBN3d(FusableMixin, nn.Module):
    """``Conv3d`` (no bias) + ``BatchNorm3d`` (+ ReLU), mmcv's ``ConvModule`` as used by PYSKL's ResNet3d.

    With ``enable_fusion`` (eval mode, autograd off) the BatchNorm is folded into the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_fused():
            f = self.fused()
            y = F.conv3d(x, f["w"], f["b"], self.conv.stride, self.conv.padding)
        else:
            y = self.bn(self.conv(x))
        return F.relu(y, inplace=True) if self.act else y

    def _compute_fused(self) -> dict[str, Any]:
        w, b = fold_bn(self.conv.weight, None, self.bn)
        return {"w": w.contiguous(memory_format=_CL3), "b": b}


class Bottleneck3d(nn.Module):
    """PYSKL's ``Bottleneck3d`` ('pytorch' style, inflate style 3x1x1):
    ``relu(conv3(conv2(conv1(x))) + downsample(x))``, ``conv1`` 1x1x1 (3x1x1 when ``inflate``), ``conv2`` 1x3x3
    with the ``(temporal, spatial)`` stride, ``conv3`` 1x1x1 to ``4 * planes`` channels."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: tuple[int, int] = (1, 1), inflate: bool = False) -> None:
        super().__init__()
        st, ss = stride
        out = planes * self.expansion
        self.conv1 = ConvBN3d(in_channels, planes, (3, 1, 1) if inflate else 1, padding=(1, 0, 0) if inflate else 0)
        self.conv2 = ConvBN3d(planes, planes, (1, 3, 3), stride=(st, ss, ss), padding=(0, 1, 1))
        self.conv3 = ConvBN3d(planes, out, 1, act=False)
        self.downsample = (ConvBN3d(in_channels, out, 1, stride=(st, ss, ss), act=False)
                           if (st, ss) != (1, 1) or in_channels != out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)), inplace=True)


class SlowOnly(nn.Module):
    """PYSKL's ``ResNet3dSlowOnly`` as configured for PoseC3D: ``[N, K, T, H, W]`` -> ``[N, C', T', H', W']``.

    Stage ``i`` has ``stage_blocks[i]`` bottlenecks of ``base_channels * 2**i`` planes; its first block strides by
    ``(temporal_strides[i], spatial_strides[i])``; ``inflate[i]`` switches the 3x1x1 temporal kernels on.
    Initialisation as PYSKL: Kaiming-normal (fan-out) convolutions, BN weight 1 / bias 0, and the last BN of each
    block zero (``zero_init_residual``).
    """

    def __init__(self, in_channels: int, base_channels: int = 32, stage_blocks: Sequence[int] = (4, 6, 3),
                 spatial_strides: Sequence[int] = (2, 2, 2), temporal_strides: Sequence[int] = (1, 1, 2),
                 inflate: Sequence[int] = (0, 1, 1)) -> None:
        super().__init__()
        n = len(stage_blocks)
        if not (len(spatial_strides) == len(temporal_strides) == len(inflate) == n) or n < 1:
            raise ValueError(f"SlowOnly: stage_blocks {tuple(stage_blocks)}, spatial_strides {tuple(spatial_strides)}, "
                             f"temporal_strides {tuple(temporal_strides)} and inflate {tuple(inflate)} must have one "
                             "entry per stage")
        if in_channels < 1 or base_channels < 1 or min(stage_blocks) < 1:
            raise ValueError(f"SlowOnly: in_channels ({in_channels}), base_channels ({base_channels}) and "
                             f"stage_blocks {tuple(stage_blocks)} must be positive")
        self.stem = ConvBN3d(in_channels, base_channels, (1, 7, 7), padding=(0, 3, 3))
        self.pool = nn.MaxPool3d((1, 3, 3), stride=1, padding=(0, 1, 1))
        stages = []
        cin = base_channels
        for i, nb in enumerate(stage_blocks):
            planes = base_channels * 2**i
            blocks = [Bottleneck3d(cin if j == 0 else planes * 4, planes,
                                   (int(temporal_strides[i]), int(spatial_strides[i])) if j == 0 else (1, 1),
                                   bool(inflate[i])) for j in range(nb)]
            stages.append(nn.Sequential(*blocks))
            cin = planes * Bottleneck3d.expansion
        self.stages = nn.Sequential(*stages)
        self.in_channels, self.out_channels = in_channels, cin
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0.0)
        for m in self.modules():
            if isinstance(m, Bottleneck3d):
                nn.init.constant_(m.conv3.bn.weight, 0.0)
        self.to(memory_format=_CL3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.pool(self.stem(x.contiguous(memory_format=_CL3))))


# ---------------------------------------------------------------------------------------------- recognizer
class PoseC3D(nn.Module):
    """``x [N, M, T, V, C]`` -> logits ``[N, num_classes]`` through pseudo heatmaps and a SlowOnly 3D-CNN.

    Args:
        num_classes, layout: classes and skeleton (``V = layout.num_joints``).
        in_channels: C of the input: 3 (``x, y, score``) or 2 (``x, y``).
        width: ``'standard'`` (base 32, 56x56 grid) or ``'slim'`` (base 8, 32x32 grid); ``base_channels`` and
            ``grid`` override it.
        heatmap: ``'joint'`` (PoseC3D-J, one channel per joint) or ``'limb'`` (PoseC3D-L, one per limb).
        limbs: ``(a, b)`` joint pairs for ``'limb'`` (default: the layout's bones).
        sigma: Gaussian width in PYSKL's 56-pixel units. use_score: weight the Gaussians by the score.
        compact: PoseCompact box (``compact_padding``, ``compact_min``); False maps the whole image.
        dropout: head dropout (PYSKL's I3DHead: 0.5).
        stage_blocks, spatial_strides, temporal_strides, inflate: the SlowOnly stages (PYSKL's defaults).
    """

    needs_mask = False
    returns_aux = False

    def __init__(
        self,
        num_classes: int,
        layout: Layout,
        in_channels: int = 3,
        width: str = "standard",
        heatmap: str = "joint",
        base_channels: int | None = None,
        grid: int | None = None,
        sigma: float = 0.6,
        use_score: bool = True,
        compact: bool = True,
        compact_padding: float = 0.25,
        compact_min: float = 0.02,
        limbs: Sequence[Sequence[int]] | None = None,
        dropout: float = 0.5,
        stage_blocks: Sequence[int] = (4, 6, 3),
        spatial_strides: Sequence[int] = (2, 2, 2),
        temporal_strides: Sequence[int] = (1, 1, 2),
        inflate: Sequence[int] = (0, 1, 1),
        name: str = "posec3d",
    ) -> None:
        super().__init__()
        if width not in POSEC3D_WIDTHS:
            raise ValueError(f"{name}: unknown width {width!r}; choose one of {sorted(POSEC3D_WIDTHS)}")
        if heatmap not in ("joint", "limb"):
            raise ValueError(f"{name}: heatmap must be 'joint' or 'limb', got {heatmap!r}")
        if in_channels not in (2, 3):
            raise ValueError(f"{name}: in_channels must be 2 (x, y) or 3 (x, y, score) of 2D keypoints, got "
                             f"{in_channels}")
        cfg = dict(POSEC3D_WIDTHS[width])
        cfg.update({k: v for k, v in (("base_channels", base_channels), ("grid", grid)) if v is not None})
        if int(cfg["grid"]) < 8:
            raise ValueError(f"{name}: grid must be >= 8 pixels, got {cfg['grid']}")
        if not sigma > 0:
            raise ValueError(f"{name}: sigma must be > 0, got {sigma}")
        if compact_padding < 0 or compact_min < 0:
            raise ValueError(f"{name}: compact_padding ({compact_padding}) and compact_min ({compact_min}) must be "
                             ">= 0")
        V = layout.num_joints
        if limbs is None:
            limbs = [(a, b) for a, b in layout.bone_pairs if a != b]
        limbs = [tuple(int(j) for j in p) for p in limbs]
        bad = [p for p in limbs if len(p) != 2 or not all(0 <= j < V for j in p)]
        if bad or (heatmap == "limb" and not limbs):
            raise ValueError(f"{name}: limbs must be (a, b) joint pairs with joints in 0..{V - 1}, got "
                             f"{bad or 'an empty list'}")
        self.name, self.layout_name = name, layout.name
        self.num_classes, self.num_joints, self.in_channels = num_classes, V, in_channels
        self.heatmap, self.grid, self.sigma, self.use_score = heatmap, int(cfg["grid"]), float(sigma), use_score
        self.compact, self.compact_padding, self.compact_min = compact, float(compact_padding), float(compact_min)
        self.limbs = tuple(limbs)
        self.heatmap_channels = V if heatmap == "joint" else len(self.limbs)
        self.backbone = SlowOnly(self.heatmap_channels, int(cfg["base_channels"]), stage_blocks, spatial_strides,
                                 temporal_strides, inflate)
        self.out_channels = self.backbone.out_channels
        self.head = ClsHead(self.out_channels, num_classes, dropout)

    def _check(self, x: torch.Tensor) -> None:
        check_input(self.name, x, self.num_joints, self.in_channels)

    def heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """The pseudo-heatmap volume ``[N, K, T, grid, grid]`` (float32, ``channels_last_3d``) of ``x``."""
        self._check(x)
        return pseudo_heatmap_volume(x, self.grid, self.sigma, self.heatmap, self.limbs, self.use_score,
                                     self.compact, self.compact_padding, self.compact_min)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """SlowOnly features ``[N, C', T', H', W']``."""
        return self.backbone(self.heatmaps(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.extract_features(x)
        return self.head(feat.flatten(3)[:, None])  # ClsHead pools [N, 1, C', T', H'W']

    def fuse_for_inference(self, enabled: bool = True) -> "PoseC3D":
        """Fold every BatchNorm into its convolution for evaluation (eval mode, autograd off); returns ``self``."""
        for m in self.modules():
            if m is not self and callable(getattr(m, "enable_fusion", None)):
                m.enable_fusion(enabled)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, num_classes={self.num_classes}, heatmap={self.heatmap!r}, "
                f"channels={self.heatmap_channels}, grid={self.grid}")


_DOC = """
    Options: ``width`` ('standard': base 32, 56x56 heatmaps, 512 features; 'slim': base 8, 32x32, 128),
    ``dropout`` (0.5 as PYSKL's I3DHead), and the :class:`PoseC3D` arguments ``base_channels, grid, sigma,
    use_score, compact, compact_padding, compact_min, limbs, stage_blocks, spatial_strides, temporal_strides,
    inflate``.
"""


@register_model("posec3d")
def build_posec3d(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                  heatmap: str = "joint", dropout: float = 0.5, base_channels: int | None = None,
                  grid: int | None = None, sigma: float = 0.6, use_score: bool = True, compact: bool = True,
                  compact_padding: float = 0.25, compact_min: float = 0.02,
                  limbs: Sequence[Sequence[int]] | None = None, stage_blocks: Sequence[int] = (4, 6, 3),
                  spatial_strides: Sequence[int] = (2, 2, 2), temporal_strides: Sequence[int] = (1, 1, 2),
                  inflate: Sequence[int] = (0, 1, 1)) -> PoseC3D:
    """PoseC3D recognizer (PYSKL's SlowOnly-R50 PoseC3D; ``heatmap='joint'`` = PoseC3D-J, ``'limb'`` = PoseC3D-L)."""
    return PoseC3D(num_classes, layout, in_channels, width, heatmap, base_channels, grid, sigma, use_score, compact,
                   compact_padding, compact_min, limbs, dropout, stage_blocks, spatial_strides, temporal_strides,
                   inflate, name="posec3d" if heatmap == "joint" else "posec3d_limb")


@register_model("posec3d_limb")
def build_posec3d_limb(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                       dropout: float = 0.5, base_channels: int | None = None, grid: int | None = None,
                       sigma: float = 0.6, use_score: bool = True, compact: bool = True,
                       compact_padding: float = 0.25, compact_min: float = 0.02,
                       limbs: Sequence[Sequence[int]] | None = None, stage_blocks: Sequence[int] = (4, 6, 3),
                       spatial_strides: Sequence[int] = (2, 2, 2), temporal_strides: Sequence[int] = (1, 1, 2),
                       inflate: Sequence[int] = (0, 1, 1)) -> PoseC3D:
    """PoseC3D-L: :func:`build_posec3d` with ``heatmap='limb'`` (one heatmap channel per limb)."""
    return build_posec3d(num_classes, layout, in_channels, width, "limb", dropout, base_channels, grid, sigma,
                         use_score, compact, compact_padding, compact_min, limbs, stage_blocks, spatial_strides,
                         temporal_strides, inflate)


build_posec3d.__doc__ = (build_posec3d.__doc__ or "") + _DOC
build_posec3d_limb.__doc__ = (build_posec3d_limb.__doc__ or "") + _DOC
