"""Skeleton restoration metrics of the paper's Table 3: MPJPE, N-MPJPE and MPJVE.

Tensors: ``pred`` / ``gt`` ``[B, T, V, C]`` (B sequences, both on the ground truth's full time axis),
``weight [B, T, V]`` (0 = joint excluded, e.g. not visible in the ground truth; default all 1) and
``frames [B, T]`` bool (the frames to score, e.g. the missing frames ``~kept``; default all).

Each metric is a weighted mean of a per-joint Euclidean error over the selected (sequence, frame, joint) entries:
``sum(w * e) / sum(w)``. With the project's 0/1 weights this is the plain mean over valid joints x selected frames x
sequences, pooled over the batch (not a mean of per-sequence means).

Choices:

* N-MPJPE (Rhodin et al. 2018, "normalised" MPJPE as used by Skeleton-in-Context) rescales the prediction by the
  least-squares scale ``s = <pred, gt> / <pred, pred>``. By default ``s`` is fitted once per *sequence*, over all its
  valid joints in *all* frames (weight > 0), not only over the selected frames, so that the scale of the missing
  frames is not fitted on the frames being scored. ``scale_per='frame'`` fits one scale per frame instead (the
  per-pose variant of VideoPose3D's ``n_mpjpe``). Where ``<pred, pred> = 0`` the scale is 1.
* MPJVE is the MPJPE of first-order temporal differences ``v_t = S_{t+1} - S_t`` (t = 0..T-2). A velocity counts
  with weight ``w_t * w_{t+1}`` (so only when the joint is valid in both frames) and is selected when frame ``t``
  *or* frame ``t+1`` is selected: every velocity that touches a missing frame is scored.
* Errors are computed in float32 (float64 inputs stay float64) and summed in float64. Entries with weight 0 never
  reach a sum, so NaN/inf there cannot leak into a result.
* ``RestorationMetrics.compute()`` reports NaN for a number nothing was accumulated for (e.g. the missing-frame
  numbers when no frame was dropped); the functions with ``reduction='mean'`` raise ``ValueError`` instead.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

__all__ = ["mpjpe", "n_mpjpe", "mpjve", "optimal_scale", "RestorationMetrics"]

_REDUCTIONS = ("mean", "sum")
_SCALE_PER = ("sequence", "frame")


def _prepare(
    name: str, pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None, frames: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checks shapes; returns ``pred, gt`` (float), ``weight [B,T,V]`` (float, >= 0) and ``frames [B,T]`` bool."""
    for what, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: {what} must be a torch.Tensor, got {type(t).__name__}")
    if pred.ndim != 4:
        raise ValueError(f"{name}: pred must be [B, T, V, C], got shape {tuple(pred.shape)}")
    if gt.shape != pred.shape:
        raise ValueError(f"{name}: gt shape {tuple(gt.shape)} differs from pred shape {tuple(pred.shape)}")
    B, T, V, _ = pred.shape
    dtype = torch.promote_types(torch.promote_types(pred.dtype, gt.dtype), torch.float32)
    pred, gt = pred.to(dtype), gt.to(dtype)
    if weight is None:
        weight = torch.ones(B, T, V, dtype=dtype, device=pred.device)
    else:
        if tuple(weight.shape) != (B, T, V):
            raise ValueError(f"{name}: weight must be [B, T, V] = {(B, T, V)}, got {tuple(weight.shape)}")
        weight = weight.to(device=pred.device, dtype=dtype)
        if bool((weight < 0).any()) or bool(torch.isnan(weight).any()):
            raise ValueError(f"{name}: weight must be >= 0 (0 = excluded), got negative or NaN entries")
    if frames is None:
        frames = torch.ones(B, T, dtype=torch.bool, device=pred.device)
    else:
        if frames.dtype != torch.bool:
            raise TypeError(f"{name}: frames must be a bool tensor [B, T], got dtype {frames.dtype}")
        if tuple(frames.shape) != (B, T):
            raise ValueError(f"{name}: frames must be [B, T] = {(B, T)}, got {tuple(frames.shape)}")
        frames = frames.to(pred.device)
    return pred, gt, weight, frames


def _reduce(name: str, err: torch.Tensor, w: torch.Tensor, reduction: str):
    """``sum(w * err) / sum(w)`` (``'mean'``) or ``(sum(w * err), sum(w))`` in float64 (``'sum'``)."""
    valid = w > 0
    total = torch.where(valid, err, torch.zeros_like(err)).mul(w).sum(dtype=torch.float64)
    count = w.sum(dtype=torch.float64)
    if reduction == "sum":
        return total, count
    if not count > 0:
        raise ValueError(f"{name}: nothing to average (no joint with weight > 0 in the selected frames)")
    return (total / count).to(err.dtype)


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")


def _joint_error(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per joint ``[B, T, V]``; entries with ``valid`` False are 0 (never NaN)."""
    diff = torch.where(valid[..., None], pred - gt, torch.zeros_like(pred))
    return torch.linalg.vector_norm(diff, dim=-1)


def mpjpe(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: torch.Tensor | None = None,
    frames: torch.Tensor | None = None,
    reduction: str = "mean",
):
    """Mean Per Joint Position Error: weighted mean of ``||pred - gt||_2`` over joints x selected frames x sequences.

    ``reduction='mean'`` returns a 0-dim tensor (``ValueError`` when nothing is selected); ``'sum'`` returns
    ``(sum, count)`` float64 tensors for accumulation.
    """
    _check_reduction("mpjpe", reduction)
    pred, gt, w, frames = _prepare("mpjpe", pred, gt, weight, frames)
    w = w * frames[..., None]
    return _reduce("mpjpe", _joint_error(pred, gt, w > 0), w, reduction)


def optimal_scale(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None, scale_per: str = "sequence"
) -> torch.Tensor:
    """Least-squares scale ``s = <pred, gt>_w / <pred, pred>_w`` per sequence ``[B,1,1,1]`` or per frame
    ``[B,T,1,1]`` (``scale_per``), over the joints with weight > 0; 1 where ``<pred, pred>_w = 0``."""
    if scale_per not in _SCALE_PER:
        raise ValueError(f"optimal_scale: scale_per must be one of {list(_SCALE_PER)}, got {scale_per!r}")
    pred, gt, w, _ = _prepare("optimal_scale", pred, gt, weight, None)
    valid = (w > 0)[..., None]
    p = torch.where(valid, pred, torch.zeros_like(pred))
    g = torch.where(valid, gt, torch.zeros_like(gt))
    wc = w[..., None]
    dims = (1, 2, 3) if scale_per == "sequence" else (2, 3)
    num = (wc * p * g).sum(dims, keepdim=True)
    den = (wc * p * p).sum(dims, keepdim=True)
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.ones_like(den))


def n_mpjpe(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: torch.Tensor | None = None,
    frames: torch.Tensor | None = None,
    reduction: str = "mean",
    scale_per: str = "sequence",
):
    """Normalised MPJPE: MPJPE of ``s * pred`` with the least-squares scale ``s`` (see :func:`optimal_scale`).

    The scale is fitted on all valid joints of the whole sequence (``scale_per='sequence'``, default) -- not only on
    the selected ``frames`` -- or per frame (``scale_per='frame'``). Reductions as in :func:`mpjpe`.
    """
    _check_reduction("n_mpjpe", reduction)
    pred, gt, w, frames = _prepare("n_mpjpe", pred, gt, weight, frames)
    s = optimal_scale(pred, gt, w, scale_per)
    ws = w * frames[..., None]
    return _reduce("n_mpjpe", _joint_error(s * pred, gt, ws > 0), ws, reduction)


def mpjve(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: torch.Tensor | None = None,
    frames: torch.Tensor | None = None,
    reduction: str = "mean",
):
    """Mean Per Joint Velocity Error: MPJPE of ``S_{t+1} - S_t`` (t = 0..T-2).

    A velocity has weight ``w_t * w_{t+1}`` and is selected when frame t or t+1 is selected. Reductions as in
    :func:`mpjpe` (``ValueError`` for T < 2 with ``'mean'``).
    """
    _check_reduction("mpjve", reduction)
    pred, gt, w, frames = _prepare("mpjve", pred, gt, weight, frames)
    valid = w > 0
    pred = torch.where(valid[..., None], pred, torch.zeros_like(pred))
    gt = torch.where(valid[..., None], gt, torch.zeros_like(gt))
    vel_w = w[:, 1:] * w[:, :-1] * (frames[:, 1:] | frames[:, :-1])[..., None]
    err = _joint_error(pred[:, 1:] - pred[:, :-1], gt[:, 1:] - gt[:, :-1], vel_w > 0)
    return _reduce("mpjve", err, vel_w, reduction)


class RestorationMetrics(Metric):
    """Accumulates ``{mpjpe, n_mpjpe, mpjve} x {all, missing}`` over batches (sum/count states, DDP-summed).

    ``update(pred, gt, weight=None, kept=None)``: ``kept [B, T]`` bool marks the ground-truth frames that survived
    the corruption; "missing" scores the frames ``~kept`` (nothing when ``kept`` is None). ``compute()`` returns
    floats keyed ``'{metric}_{all|missing}'``, NaN where nothing was accumulated.
    """

    full_state_update = False
    METRICS = ("mpjpe", "n_mpjpe", "mpjve")
    SUBSETS = ("all", "missing")

    def __init__(self, scale_per: str = "sequence", **kwargs) -> None:
        super().__init__(**kwargs)
        if scale_per not in _SCALE_PER:
            raise ValueError(f"RestorationMetrics: scale_per must be one of {list(_SCALE_PER)}, got {scale_per!r}")
        self.scale_per = scale_per
        for key in self.keys():
            self.add_state(f"{key}_sum", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{key}_count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    @classmethod
    def keys(cls) -> list[str]:
        return [f"{m}_{s}" for s in cls.SUBSETS for m in cls.METRICS]

    def update(  # type: ignore[override]
        self,
        pred: torch.Tensor,
        gt: torch.Tensor,
        weight: torch.Tensor | None = None,
        kept: torch.Tensor | None = None,
    ) -> None:
        pred, gt = pred.detach(), gt.detach()
        weight = None if weight is None else weight.detach()
        subsets = {"all": None}
        if kept is not None:
            if kept.dtype != torch.bool or tuple(kept.shape) != tuple(pred.shape[:2]):
                raise ValueError(f"RestorationMetrics.update: kept must be a bool [B, T] = {tuple(pred.shape[:2])}, "
                                 f"got {kept.dtype} {tuple(kept.shape)}")
            subsets["missing"] = ~kept
        fns = {"mpjpe": mpjpe, "mpjve": mpjve,
               "n_mpjpe": lambda *a, **k: n_mpjpe(*a, scale_per=self.scale_per, **k)}
        for subset, frames in subsets.items():
            for m in self.METRICS:
                total, count = fns[m](pred, gt, weight, frames, reduction="sum")
                key = f"{m}_{subset}"
                setattr(self, f"{key}_sum", getattr(self, f"{key}_sum") + total.to(self.device))
                setattr(self, f"{key}_count", getattr(self, f"{key}_count") + count.to(self.device))

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        out = {}
        for key in self.keys():
            count = float(getattr(self, f"{key}_count"))
            out[key] = float(getattr(self, f"{key}_sum")) / count if count > 0 else float("nan")
        return out
