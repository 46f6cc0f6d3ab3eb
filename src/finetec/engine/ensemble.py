"""Multi-stream ensembles (PYSKL's convention; SF-Head Sec. 4.6): streams trained separately, scores fused by weights.

:func:`train_streams` trains one config once per stream (``data.feats = [stream]``, work dir ``OUT/<stream>``,
reusing a stream whose scores are already there) and :func:`fuse_scores` sums the per-sample class probabilities
each run saved (``work_dir/test/<level>.npz``) with weights: PYSKL's 1:1 for joint + bone and 2:2:1:1 for joint,
bone, joint motion, bone motion (:data:`CONVENTIONS`). ``finetec ensemble`` runs both. The same fusion joins
modalities (RGB + skeleton, the multimodal paper's Eq. 14, :mod:`finetec.models.multimodal.fusion`); its weights can
be fitted on validation scores (``fit_on``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..metrics.classification import mean_class_accuracy, top_k_accuracy
from ..utils.io import atomic_write_text
from .config import apply_overrides

__all__ = ["STREAMS", "CONVENTIONS", "load_scores", "fuse_scores", "fit_weights", "train_streams", "EnsembleError"]

STREAMS = ("j", "b", "jm", "bm")
CONVENTIONS: dict[str, dict[str, float]] = {"j+b (1:1)": {"j": 1, "b": 1},
                                            "j+b+jm+bm (2:2:1:1)": {"j": 2, "b": 2, "jm": 1, "bm": 1}}


class EnsembleError(ValueError):
    """Score files that cannot be fused (missing, malformed, different samples or labels)."""


def load_scores(run: "str | os.PathLike", level: str = "clean") -> dict[str, np.ndarray]:
    """``{'frame_dir', 'label', 'scores'}`` of a run dir (``<run>/test/<level>.npz``) or an ``.npz`` path."""
    p = Path(run)
    path = p if p.suffix == ".npz" else p / "test" / f"{level}.npz"
    if not path.is_file():
        raise EnsembleError(f"no scores at {path}: run `finetec test` on that run (or train it) first")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in ("frame_dir", "label", "scores")}
    except (KeyError, ValueError, OSError) as e:
        raise EnsembleError(f"{path}: not a finetec score file ({type(e).__name__}: {e})") from e
    s = out["scores"]
    if s.ndim != 2 or len(s) != len(out["label"]) or len(s) != len(out["frame_dir"]) or not np.isfinite(s).all():
        raise EnsembleError(f"{path}: scores {s.shape}, labels {out['label'].shape}, frame_dir "
                            f"{out['frame_dir'].shape} do not fit (or scores are not finite)")
    return out


def _aligned(runs: Sequence["str | os.PathLike"], loaded: Sequence[Mapping[str, np.ndarray]]
             ) -> tuple[list[np.ndarray], np.ndarray]:
    """The runs' scores ordered by ``frame_dir`` and the common labels; every run must score the same samples."""
    ref = loaded[0]
    order_ref = np.argsort(ref["frame_dir"], kind="stable")
    labels = ref["label"][order_ref]
    out = []
    for run, d in zip(runs, loaded):
        order = np.argsort(d["frame_dir"], kind="stable")
        if len(d["frame_dir"]) != len(ref["frame_dir"]) or not np.array_equal(d["frame_dir"][order],
                                                                               ref["frame_dir"][order_ref]):
            raise EnsembleError(f"{run}: scores a different set of samples than {runs[0]}")
        if not np.array_equal(d["label"][order], labels):
            raise EnsembleError(f"{run}: labels differ from {runs[0]} for the same samples")
        if d["scores"].shape[1] != ref["scores"].shape[1]:
            raise EnsembleError(f"{run}: {d['scores'].shape[1]} classes, {runs[0]} has {ref['scores'].shape[1]}")
        out.append(d["scores"][order].astype(np.float64))
    return out, labels


def fit_weights(runs: Sequence["str | os.PathLike"], fit_on: str, level: str = "clean",
                step: float = 0.05) -> list[float]:
    """Fusion weights fitted on each run's validation scores ``<run>/<fit_on>/<level>.npz`` (written by
    ``finetec test CONFIG --ckpt ... data.split_test=val --out-dir <run>/<fit_on>``)."""
    from ..models.multimodal.fusion import fit_fusion_weights

    loaded = [load_scores(Path(r) / fit_on / f"{level}.npz") for r in runs]
    scores, labels = _aligned([Path(r) / fit_on for r in runs], loaded)
    return [float(x) for x in fit_fusion_weights(scores, labels, step)]


def fuse_scores(runs: Sequence["str | os.PathLike"], weights: Sequence[float] | None = None,
                level: str = "clean", fit_on: str | None = None) -> dict[str, Any]:
    """Weighted sum ``sum_s w_s p_s`` of the runs' class probabilities (Eq. 14 of the multimodal paper); returns
    metrics per run and fused. ``fit_on``: fit the weights on the runs' validation scores (:func:`fit_weights`)
    instead of giving them.

    Samples are matched by ``frame_dir`` (any order); every run must score the same samples with the same labels.
    """
    from ..models.multimodal.fusion import score_fusion

    if not runs:
        raise EnsembleError("no runs to fuse")
    if fit_on is not None:
        if weights is not None:
            raise EnsembleError("give either weights or fit_on, not both")
        weights = fit_weights(runs, fit_on, level)
    w = [1.0] * len(runs) if weights is None else [float(x) for x in weights]
    if len(w) != len(runs):
        raise EnsembleError(f"{len(runs)} runs but {len(w)} weights")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise EnsembleError(f"weights must be >= 0 with a positive sum, got {w}")
    loaded = [load_scores(r, level) for r in runs]
    scores, labels = _aligned(runs, loaded)
    fused = score_fusion(scores, w)
    per_run = [{"run": str(run), "weight": wi, **_metrics(s, labels)} for run, s, wi in zip(runs, scores, w)]
    return {"level": level, "num_samples": int(len(labels)), "runs": per_run, "fused": _metrics(fused, labels),
            "weights": w, "fitted_on": fit_on}


def _metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    top1, top5 = top_k_accuracy(scores, labels, (1, min(5, scores.shape[1])))
    return {"top1": top1, "top5": top5, "mean_class_accuracy": mean_class_accuracy(scores, labels)}


def train_streams(cfg: Mapping[str, Any], out: "str | os.PathLike", streams: Sequence[str] = STREAMS,
                  level: str | None = None) -> dict[str, Any]:
    """Train ``cfg`` once per stream into ``out/<stream>`` (kept when its scores exist and come from the same
    resolved config), then fuse by the PYSKL
    conventions whose streams were trained and by equal weights over all; writes ``out/ensemble.json``."""
    from .runner import train

    bad = [s for s in streams if s not in STREAMS]
    if bad or not streams:
        raise EnsembleError(f"streams must be a non-empty subset of {list(STREAMS)}, got {list(streams)}")
    out = Path(out)
    level = level or cfg["data"]["corruption"]["test"] or "clean"
    dirs = {}
    for s in streams:
        wd = out / s
        scfg = apply_overrides(cfg, [f"data.feats=[{s}]", f"trainer.work_dir={wd}"])
        key = hashlib.sha256(json.dumps(scfg, sort_keys=True, default=str).encode()).hexdigest()
        stamp = wd / "ensemble_key.txt"  # the config the stream's scores come from: a changed config retrains
        if not ((wd / "test" / f"{level}.npz").is_file() and stamp.is_file() and stamp.read_text().strip() == key):
            train(scfg, resume="auto" if stamp.is_file() and stamp.read_text().strip() == key else None)
            atomic_write_text(stamp, key + "\n")
        dirs[s] = wd
    combos = dict(CONVENTIONS)
    combos[f"{'+'.join(streams)} (equal)"] = {s: 1.0 for s in streams}
    result: dict[str, Any] = {"level": level, "streams": {s: str(d) for s, d in dirs.items()}, "fusions": {}}
    for name, wts in combos.items():
        if all(s in dirs for s in wts):
            result["fusions"][name] = fuse_scores([dirs[s] for s in wts], list(wts.values()), level)
    atomic_write_text(out / "ensemble.json", json.dumps(result, indent=2) + "\n")
    return result
