"""Skeleton-based spatial decomposition (FineTec, Eq. 2-3).

The joints are grouped into the five regions of the layout (head, left arm, right arm, left leg, right leg;
``Layout.region_index``, -1 = no region). Per sequence the regional motion intensity (Eq. 3, the mean over a
region's joints of the average frame displacement of Eq. 2) picks the ``k = 2`` most dynamic regions. ``S_dyna`` is
``S_base`` with the dynamic regions' joints taken from a strongly (temporally) perturbed copy, ``S_stat`` is
``S_base`` with the static regions' joints taken from a weakly (spatially) perturbed copy, and the three are fused
into ``S_pred``. Shapes: ``S [B, T, V, 2]`` channels-last, joint weights ``weight [B, T, V]`` (> 0 = visible).

Choices (the paper leaves these open):

* Eq. 2 counts a displacement only when the joint is visible at ``t`` and ``t + 1`` and averages over the counted
  ones (0 when there are none); Eq. 3 averages over all joints of the region (``1/|G_j|``), regions without joints
  have intensity 0. Top-k ties go to the lower region index. The selection is discrete, so it runs without
  gradient.
* Strong perturbation, per sequence with probability ``p_crop`` (0.5) a temporal crop, else frame dropping:
  the crop keeps a window of ``u * (T - 1)`` frames, ``u ~ U[0.7, 1]``, at a uniformly random start and resamples
  it to ``T`` frames by linear interpolation; dropping removes each inner frame with probability ``drop_rate``
  (0.3; the first and last frames are kept so that every dropped frame lies between two kept ones) and refills
  the dropped frames by linear interpolation between the nearest kept frames. Both are one gather + lerp.
  A resampled joint is visible when every frame it is interpolated from is visible (else it is 0, weight 0).
* Weak perturbation, per sequence: with probability ``p_flip`` (0.5) a horizontal flip ``x -> 2 c_x - x`` about
  the sequence centre ``c`` (mean of the visible joint coordinates over all frames) with left/right joints swapped
  by ``flip_index``; then always a random scale ``s ~ U[0.9, 1.1]`` about ``c``.
* Replacement takes a joint from the perturbed copy only where that copy has it visible; elsewhere ``S_base``'s
  value stays (no zeros are injected). Joints outside every region are never replaced.
* Fusion of ``S_base``, ``S_dyna`` and ``S_stat`` into ``S_pred`` (the paper says only "fused"): in training, each
  sequence's ``S_pred`` is one of the three, drawn uniformly among the enabled ones (``parts['choice']``); all three
  still feed the physics module and L_Ac. A learned per-joint blend was our first version; a review measured that it
  moves training inputs 0.06 per joint on average away from ``S_base`` (blends of flipped and unflipped limbs) while
  the evaluation input is ``S_base``, so the blend weights had no effect at test and the recognizer saw a different
  distribution. Drawing one variant keeps every training input a plausible skeleton. ``use_dyna``/``use_stat``
  False remove a variant (Table 5).
* The perturbations are training-time augmentation: in eval mode (or with both branches disabled)
  ``S_dyna = S_stat = S_base`` and ``S_pred`` is ``S_base`` itself.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "NUM_REGIONS",
    "average_frame_displacement",
    "regional_motion_intensity",
    "dynamic_regions",
    "strong_perturbation",
    "weak_perturbation",
    "SpatialDecomposition",
]

NUM_REGIONS = 5
SOURCES = ("base", "dyna", "stat")


def _check_positions(S: torch.Tensor, where: str) -> None:
    if not isinstance(S, torch.Tensor):
        raise TypeError(f"{where}: S must be a torch.Tensor, got {type(S).__name__}")
    if S.dim() != 4 or S.shape[-1] != 2:
        raise ValueError(f"{where}: S must be [B, T, V, 2], got shape {tuple(S.shape)}")
    if S.shape[1] < 1 or S.shape[2] < 1:
        raise ValueError(f"{where}: S needs at least one frame and one joint, got shape {tuple(S.shape)}")


def _weight_or_ones(S: torch.Tensor, weight: torch.Tensor | None, where: str) -> torch.Tensor:
    if weight is None:
        return torch.ones(S.shape[:3], dtype=torch.float32, device=S.device)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{where}: weight must be a torch.Tensor or None, got {type(weight).__name__}")
    if tuple(weight.shape) != tuple(S.shape[:3]):
        raise ValueError(f"{where}: weight must be [B, T, V] = {tuple(S.shape[:3])}, got {tuple(weight.shape)}")
    return weight.float()


def _check_range(name: str, r: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    a, b = (float(x) for x in r)
    if not lo <= a <= b <= hi:
        raise ValueError(f"{name} must satisfy {lo} <= low <= high <= {hi}, got {tuple(r)}")
    return a, b


def _index_tensor(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.dim() != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{name} must be a 1-D integer array, got dtype {t.dtype} and shape {tuple(t.shape)}")
    return t.long()


def average_frame_displacement(S: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``D_avg [B, V]``: mean over ``t`` of ``||S[t+1, i] - S[t, i]||_2`` where joint ``i`` is visible at both."""
    _check_positions(S, "average_frame_displacement")
    w = _weight_or_ones(S, weight, "average_frame_displacement")
    Sf = S.float()
    step = torch.linalg.vector_norm(Sf[:, 1:] - Sf[:, :-1], dim=-1)  # [B, T-1, V]
    counted = ((w[:, 1:] > 0) & (w[:, :-1] > 0)).float()
    n = counted.sum(1)
    # Eq. 2
    return (step * counted).sum(1) / n.clamp(min=1.0)


def regional_motion_intensity(D_avg: torch.Tensor, region_index: torch.Tensor) -> torch.Tensor:
    """``[B, 5]``: mean of ``D_avg [B, V]`` over each region's joints (``region_index [V]``, -1 = ignored)."""
    if not isinstance(D_avg, torch.Tensor) or D_avg.dim() != 2:
        raise ValueError(f"regional_motion_intensity: D_avg must be [B, V], got "
                         f"{tuple(D_avg.shape) if isinstance(D_avg, torch.Tensor) else type(D_avg).__name__}")
    region_index = _index_tensor(region_index, "region_index").to(D_avg.device)
    if region_index.numel() != D_avg.shape[1]:
        raise ValueError(f"regional_motion_intensity: region_index has {region_index.numel()} joints, "
                         f"D_avg has {D_avg.shape[1]}")
    if region_index.numel() and (region_index.min() < -1 or region_index.max() >= NUM_REGIONS):
        raise ValueError(f"regional_motion_intensity: region ids must lie in -1..{NUM_REGIONS - 1}, "
                         f"got {region_index.tolist()}")
    onehot = (region_index[:, None] == torch.arange(NUM_REGIONS, device=D_avg.device)).to(D_avg.dtype)  # [V, 5]
    # Eq. 3
    return (D_avg @ onehot) / onehot.sum(0).clamp(min=1.0)


def dynamic_regions(intensity: torch.Tensor, k: int = 2) -> torch.Tensor:
    """``bool [B, 5]``: True for the ``k`` regions of highest intensity (ties: lower region index first)."""
    if not isinstance(intensity, torch.Tensor) or intensity.dim() != 2:
        raise ValueError(f"dynamic_regions: intensity must be [B, R], got "
                         f"{tuple(intensity.shape) if isinstance(intensity, torch.Tensor) else type(intensity)}")
    R = intensity.shape[1]
    if not 0 <= int(k) <= R:
        raise ValueError(f"dynamic_regions: k must lie in 0..{R}, got {k}")
    order = torch.sort(intensity, dim=1, descending=True, stable=True).indices[:, : int(k)]
    out = torch.zeros(intensity.shape, dtype=torch.bool, device=intensity.device)
    return out.scatter(1, order, True)


def _resample(S: torch.Tensor, w: torch.Tensor, idx0: torch.Tensor, idx1: torch.Tensor,
              frac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame ``t`` of the output = lerp(S[idx0[b, t]], S[idx1[b, t]], frac[b, t]) (a gather + lerp)."""
    B, T, V, C = S.shape
    g0 = idx0[:, :, None].expand(B, T, V)
    g1 = idx1[:, :, None].expand(B, T, V)
    S0 = S.gather(1, g0[..., None].expand(B, T, V, C))
    S1 = S.gather(1, g1[..., None].expand(B, T, V, C))
    f = frac[:, :, None, None].to(S.dtype)
    out = (1 - f) * S0 + f * S1
    w0, w1 = w.gather(1, g0), w.gather(1, g1)
    w_out = torch.where(frac[:, :, None] > 0, torch.minimum(w0, w1), w0)
    return out * (w_out > 0)[..., None].to(out.dtype), w_out


def strong_perturbation(
    S: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    crop_range: Sequence[float] = (0.7, 1.0),
    drop_rate: float = 0.3,
    p_crop: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Strong spatial-temporal perturbation: per sequence a random temporal crop (resampled to ``T`` frames) or
    random frame dropping refilled by linear interpolation. Returns ``(S_aug [B, T, V, 2], weight_aug [B, T, V])``.
    """
    _check_positions(S, "strong_perturbation")
    w = _weight_or_ones(S, weight, "strong_perturbation")
    lo, hi = _check_range("crop_range", crop_range, 0.0, 1.0)
    if not 0.0 <= float(drop_rate) < 1.0:
        raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate}")
    if not 0.0 <= float(p_crop) <= 1.0:
        raise ValueError(f"p_crop must lie in [0, 1], got {p_crop}")
    B, T = S.shape[:2]
    dev = S.device
    t = torch.arange(T, device=dev)
    last = max(T - 1, 0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=dev, generator=generator)

    # temporal crop: source time tau_t = start + t * L / (T - 1) with L = u * (T - 1)
    length = (lo + (hi - lo) * rand(B)) * last
    start = rand(B) * (last - length)
    tau = (start[:, None] + t[None].float() * (length[:, None] / max(last, 1))).clamp(0, last)
    c0 = tau.floor().long().clamp(0, last)
    c1 = (c0 + 1).clamp(max=last)
    cf = torch.where(c1 > c0, tau - c0.float(), torch.zeros_like(tau))

    # random dropping: inner frames dropped with probability drop_rate, refilled between nearest kept frames
    keep = rand(B, T) >= float(drop_rate)
    keep[:, 0] = True
    keep[:, -1] = True
    prev = torch.where(keep, t, torch.zeros_like(t)).cummax(1).values
    nxt = torch.where(keep, t, torch.full_like(t, last)).flip(1).cummin(1).values.flip(1)
    span = (nxt - prev).float()
    df = torch.where(nxt > prev, (t[None] - prev).float() / span.clamp(min=1), torch.zeros_like(span))

    crop = (rand(B) < float(p_crop))[:, None]
    idx0 = torch.where(crop, c0, prev)
    idx1 = torch.where(crop, c1, nxt)
    frac = torch.where(crop, cf, df)
    return _resample(S, w, idx0, idx1, frac)


def weak_perturbation(
    S: torch.Tensor,
    flip_index: torch.Tensor | Sequence[int],
    weight: torch.Tensor | None = None,
    *,
    p_flip: float = 0.5,
    scale_range: Sequence[float] = (0.9, 1.1),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weak spatial perturbation: per sequence, with probability ``p_flip`` a horizontal flip about the sequence
    centre (left/right joints swapped by ``flip_index``), then a random scale about the centre.
    Returns ``(S_aug [B, T, V, 2], weight_aug [B, T, V])``."""
    _check_positions(S, "weak_perturbation")
    w = _weight_or_ones(S, weight, "weak_perturbation")
    flip_index = _index_tensor(flip_index, "flip_index").to(S.device)
    V = S.shape[2]
    if flip_index.numel() != V or not torch.equal(flip_index.sort().values, torch.arange(V, device=S.device)):
        raise ValueError(f"weak_perturbation: flip_index must be a permutation of 0..{V - 1}, "
                         f"got {flip_index.tolist()}")
    if not 0.0 <= float(p_flip) <= 1.0:
        raise ValueError(f"p_flip must lie in [0, 1], got {p_flip}")
    lo, hi = _check_range("scale_range", scale_range, 0.0, float("inf"))
    B = S.shape[0]
    dev = S.device
    vis = (w > 0).to(S.dtype)[..., None]
    centre = (S * vis).sum((1, 2)) / vis.sum((1, 2)).clamp(min=1)  # [B, 2]
    c = centre[:, None, None, :]
    mirror = torch.tensor([-1.0, 1.0], device=dev, dtype=S.dtype)
    offset = torch.stack([2 * centre[:, 0], torch.zeros_like(centre[:, 0])], -1)[:, None, None, :]
    S_flip = S[:, :, flip_index] * mirror + offset
    flip = torch.rand(B, device=dev, generator=generator) < float(p_flip)
    S_sel = torch.where(flip[:, None, None, None], S_flip, S)
    w_sel = torch.where(flip[:, None, None], w[:, :, flip_index], w)
    scale = (lo + (hi - lo) * torch.rand(B, device=dev, generator=generator)).to(S.dtype)
    out = c + scale[:, None, None, None] * (S_sel - c)
    return out * (w_sel > 0)[..., None].to(out.dtype), w_sel


class SpatialDecomposition(nn.Module):
    """Skeleton-based spatial decomposition: ``forward(S_base, weight) -> (S_pred, parts)``.

    ``parts`` holds ``S_base``, ``S_dyna``, ``S_stat`` (all ``[B, T, V, 2]``) and ``dynamic`` (``bool [B, 5]``,
    the regions chosen as dynamic). ``strong_kw`` / ``weak_kw`` go to :func:`strong_perturbation` /
    :func:`weak_perturbation`.
    """

    def __init__(
        self,
        region_index: torch.Tensor | Sequence[int],
        flip_index: torch.Tensor | Sequence[int],
        k: int = 2,
        use_dyna: bool = True,
        use_stat: bool = True,
        strong_kw: dict[str, Any] | None = None,
        weak_kw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        region_index = _index_tensor(region_index, "region_index")
        flip_index = _index_tensor(flip_index, "flip_index")
        V = region_index.numel()
        if region_index.min() < -1 or region_index.max() >= NUM_REGIONS:
            raise ValueError(f"region_index values must lie in -1..{NUM_REGIONS - 1}, got {region_index.tolist()}")
        if flip_index.numel() != V or not torch.equal(flip_index.sort().values, torch.arange(V)):
            raise ValueError(f"flip_index must be a permutation of 0..{V - 1}, got {flip_index.tolist()}")
        if not 0 <= int(k) <= NUM_REGIONS:
            raise ValueError(f"k must lie in 0..{NUM_REGIONS}, got {k}")
        self.num_joints = V
        self.k = int(k)
        self.use_dyna = bool(use_dyna)
        self.use_stat = bool(use_stat)
        self.strong_kw = dict(strong_kw or {})
        self.weak_kw = dict(weak_kw or {})
        self.register_buffer("region_index", region_index, persistent=False)
        self.register_buffer("flip_index", flip_index, persistent=False)

    def extra_repr(self) -> str:
        return f"num_joints={self.num_joints}, k={self.k}, use_dyna={self.use_dyna}, use_stat={self.use_stat}"

    def forward(self, S_base: torch.Tensor,
                weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _check_positions(S_base, "SpatialDecomposition")
        if S_base.shape[2] != self.num_joints:
            raise ValueError(f"SpatialDecomposition: S_base has {S_base.shape[2]} joints, the module was built "
                             f"for {self.num_joints}")
        w = _weight_or_ones(S_base, weight, "SpatialDecomposition")
        with torch.no_grad():
            intensity = regional_motion_intensity(average_frame_displacement(S_base, w), self.region_index)
            dynamic = dynamic_regions(intensity, self.k)
        parts: dict[str, torch.Tensor] = {"S_base": S_base, "S_dyna": S_base, "S_stat": S_base, "dynamic": dynamic}
        if not self.training or not (self.use_dyna or self.use_stat):
            return S_base, parts

        in_region = (self.region_index >= 0)[None]
        joint_dynamic = dynamic[:, self.region_index.clamp(min=0)] & in_region  # [B, V]
        joint_static = ~dynamic[:, self.region_index.clamp(min=0)] & in_region
        if self.use_dyna:
            S_s, w_s = strong_perturbation(S_base, w, **self.strong_kw)
            take = joint_dynamic[:, None, :] & (w_s > 0)
            parts["S_dyna"] = torch.where(take[..., None], S_s, S_base)
        if self.use_stat:
            S_w, w_w = weak_perturbation(S_base, self.flip_index, w, **self.weak_kw)
            take = joint_static[:, None, :] & (w_w > 0)
            parts["S_stat"] = torch.where(take[..., None], S_w, S_base)
        # S_pred: per sequence one of the enabled variants, drawn uniformly (see "Fusion" in the module docstring)
        enabled = torch.tensor([True, self.use_dyna, self.use_stat], device=S_base.device)
        probs = enabled.float()[None].expand(S_base.shape[0], 3)
        choice = torch.multinomial(probs, 1).squeeze(1)  # [B]
        stacked = torch.stack([parts[f"S_{k}"] for k in SOURCES], dim=0)  # [3, B, T, V, 2]; choice indexes SOURCES
        S_pred = stacked[choice, torch.arange(S_base.shape[0], device=S_base.device)]
        parts["choice"] = choice
        return S_pred, parts
