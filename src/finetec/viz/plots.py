"""Plots of test runs: confusion matrix, per-class accuracy, accuracy vs corruption across runs (PNG, matplotlib Agg,
written atomically).

A run directory is what ``finetec train`` / ``finetec test`` leave: ``test/<level>.npz`` (``frame_dir``, ``label``,
``scores [N, num_classes]``) and ``test/metrics.json`` (``{level: {top1, top5, mean_class_accuracy, ...}}``).

Choices:

* The prediction of a clip is the arg-max of its (clip-averaged) scores; ties go to the lower class index.
* The confusion matrix is drawn row-normalised (each true class sums to 1; the cell text is the percentage, and the
  count in brackets when the matrix is small enough to read, at most 20 classes); a class without test samples
  has an empty row. Per-class accuracy is the diagonal over the row sums (PYSKL's mean-class accuracy is their
  mean, drawn as a dashed line).
* Class names: given explicitly, else ``meta['classes']`` of the run's ``model.pth``, else ``class 0 .. C-1``.
* Curves: by default the x axis holds the paper's levels (``clean``, ``minor``, ``moderate``, ``severe``) that any
  run has, in that order; other presets (Table 6's ``severe+S-low`` ...) are not points on that ordered axis and
  appear only when asked for (``levels``). A run lacking a level has a gap there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from finetec.utils.io import atomic_write

from .report import LEVEL_ORDER

__all__ = [
    "PlotError", "load_test_scores", "confusion_matrix", "per_class_accuracy", "plot_confusion",
    "plot_per_class_accuracy", "run_classes", "plot_run_confusion", "load_run_metrics", "plot_accuracy_curves",
]

METRIC_NAMES = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "mean_class_accuracy": "mean-class accuracy"}


class PlotError(ValueError):
    """A run directory, score file or metrics file is missing or malformed; the message names it."""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: "str | os.PathLike", dpi: int) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise PlotError(f"{path}: plots are written as PNG; give a .png path")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    _plt().close(fig)
    return path


# ---------------------------------------------------------------------------------------------------- scores
def _score_file(run: "str | os.PathLike", level: str | None) -> Path:
    run = Path(run)
    if run.is_file():
        return run
    test = run / "test"
    if not test.is_dir():
        raise PlotError(f"{run}: not a run directory (no test/ folder) and not a score file")
    have = sorted(p.stem for p in test.glob("*.npz"))
    if level is None:
        order = [lv for lv in LEVEL_ORDER if lv in have] + [lv for lv in have if lv not in LEVEL_ORDER]
        if not order:
            raise PlotError(f"{test}: no <level>.npz score files (run `finetec test` first)")
        level = order[0]
    path = test / f"{level}.npz"
    if not path.is_file():
        raise PlotError(f"{run}: no test scores for level {level!r}; available: {have or 'none'}")
    return path


def load_test_scores(run: "str | os.PathLike", level: str | None = None) -> dict[str, Any]:
    """``{'frame_dir', 'label' [N], 'scores' [N, C], 'level', 'path'}`` from ``run/test/<level>.npz`` (or an
    ``.npz`` path). ``level=None``: the mildest level present (clean, minor, ...)."""
    path = _score_file(run, level)
    try:
        with np.load(path, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
    except (OSError, ValueError) as e:
        raise PlotError(f"{path}: cannot read scores: {e}") from e
    for key in ("label", "scores"):
        if key not in data:
            raise PlotError(f"{path}: lacks {key!r} (has {sorted(data)})")
    label, scores = np.asarray(data["label"]), np.asarray(data["scores"])
    if scores.ndim != 2 or label.shape != (scores.shape[0],):
        raise PlotError(f"{path}: need label [N] and scores [N, C]; got {label.shape} and {scores.shape}")
    C = scores.shape[1]
    if not np.issubdtype(label.dtype, np.integer) or (label.size and (label.min() < 0 or label.max() >= C)):
        raise PlotError(f"{path}: labels must be integers in 0..{scores.shape[1] - 1}")
    return {"frame_dir": data.get("frame_dir"), "label": label.astype(np.int64), "scores": scores,
            "level": path.stem, "path": path}


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``[C, C]`` int64 counts; row = true class, column = predicted class."""
    labels, preds = np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)
    if labels.shape != preds.shape or labels.ndim != 1:
        raise ValueError(f"confusion_matrix: labels and preds must be equal-length vectors, got {labels.shape} and "
                         f"{preds.shape}")
    bad = (labels < 0) | (labels >= num_classes) | (preds < 0) | (preds >= num_classes)
    if bad.any():
        raise ValueError(f"confusion_matrix: {int(bad.sum())} label/prediction(s) outside 0..{num_classes - 1}")
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class ``[C]`` (NaN for a class without samples)."""
    cm = np.asarray(cm)
    n = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.diag(cm) / np.maximum(n, 1), np.nan)


def _names(class_names: Sequence[str] | None, C: int) -> list[str]:
    if class_names is None:
        return [f"class {i}" for i in range(C)]
    if len(class_names) != C:
        raise PlotError(f"{len(class_names)} class names for {C} classes")
    return [str(c) for c in class_names]


def plot_confusion(cm: np.ndarray, path: "str | os.PathLike", *, class_names: Sequence[str] | None = None,
                   title: str = "", dpi: int = 120) -> Path:
    """Row-normalised confusion matrix ``cm [C, C]`` (counts) as a PNG."""
    plt = _plt()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise PlotError(f"confusion matrix must be square [C, C], got {cm.shape}")
    C = cm.shape[0]
    names = _names(class_names, C)
    n = cm.sum(1, keepdims=True)
    frac = np.where(n > 0, cm / np.maximum(n, 1), 0.0)
    side = min(22.0, max(5.0, 0.45 * C + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(C))
    ax.set_yticks(range(C))
    fs = max(4, min(9, int(160 / max(C, 1))))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=fs)
    ax.set_yticklabels(names, fontsize=fs)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if C <= 30:
        r, c = np.nonzero(cm)
        for i, j in zip(r, c):
            txt = f"{100 * frac[i, j]:.0f}" + (f"\n({cm[i, j]})" if C <= 20 else "")
            ax.text(j, i, txt, ha="center", va="center", fontsize=max(4, fs - 2),
                    color="white" if frac[i, j] > 0.55 else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title + ': ' if title else ''}top-1 {acc:.1%} ({int(cm.sum())} clips)")
    fig.tight_layout()
    return _save(fig, path, dpi)


def plot_per_class_accuracy(cm: np.ndarray, path: "str | os.PathLike", *, class_names: Sequence[str] | None = None,
                            title: str = "", dpi: int = 120) -> Path:
    """Bar chart of the per-class accuracy of ``cm [C, C]``, with the mean-class accuracy as a dashed line."""
    plt = _plt()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise PlotError(f"confusion matrix must be square [C, C], got {cm.shape}")
    C = cm.shape[0]
    names = _names(class_names, C)
    acc = per_class_accuracy(cm)
    n = cm.sum(1)
    fig, ax = plt.subplots(figsize=(min(24.0, max(6.0, 0.42 * C + 2)), 4.8))
    x = np.arange(C)
    ax.bar(x, np.nan_to_num(acc), color=plt.cm.viridis(np.nan_to_num(acc) * 0.85), edgecolor="black", linewidth=0.4)
    mean = float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")
    ax.axhline(mean, ls="--", color="tab:red", lw=1)
    if C <= 40:
        for i in range(C):
            ax.text(i, (0 if np.isnan(acc[i]) else acc[i]) + 0.01, "n/a" if np.isnan(acc[i]) else f"{acc[i]:.0%}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{nm} ({k})" for nm, k in zip(names, n)] if C <= 40 else names, rotation=60, ha="right",
                       fontsize=max(4, min(9, int(200 / max(C, 1)))))
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy (recall) of the class")
    ax.set_title(f"{title + chr(10) if title else ''}per-class accuracy (test clips in brackets); dashed line: "
                 f"mean-class accuracy {mean:.1%}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path, dpi)


def run_classes(run: "str | os.PathLike") -> list[str] | None:
    """``meta['classes']`` of ``run/model.pth`` (None when there is no such file or entry)."""
    path = Path(run) / "model.pth"
    if not path.is_file():
        return None
    from finetec.engine.checkpoint import load_weights

    _, meta, _ = load_weights(path)
    classes = meta.get("classes")
    return [str(c) for c in classes] if classes else None


def plot_run_confusion(run: "str | os.PathLike", out: "str | os.PathLike", *, level: str | None = None,
                       class_names: Sequence[str] | None = None, per_class_out: "str | os.PathLike | None" = None,
                       title: str | None = None) -> tuple[Path, Path]:
    """Confusion matrix (``out``) and per-class accuracy (``per_class_out``, default ``<out stem>_per_class.png``)
    of a run's ``test/<level>.npz``; returns both paths."""
    d = load_test_scores(run, level)
    C = d["scores"].shape[1]
    if class_names is None and Path(run).is_dir():
        class_names = run_classes(run)
    names = _names(class_names, C)
    cm = confusion_matrix(d["label"], np.argmax(d["scores"], axis=1), C)
    out = Path(out)
    per_class_out = Path(per_class_out) if per_class_out is not None else out.with_name(f"{out.stem}_per_class.png")
    title = title if title is not None else f"{Path(run).name} @ {d['level']}"
    return (plot_confusion(cm, out, class_names=names, title=title),
            plot_per_class_accuracy(cm, per_class_out, class_names=names, title=title))


# ---------------------------------------------------------------------------------------------------- curves
def load_run_metrics(run: "str | os.PathLike") -> dict[str, dict[str, float]]:
    """``{level: {metric: value}}`` from ``run/test/metrics.json`` (or a metrics.json path)."""
    run = Path(run)
    path = run if run.is_file() else run / "test" / "metrics.json"
    if not path.is_file():
        raise PlotError(f"{run}: no test/metrics.json (run `finetec test` first)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PlotError(f"{path}: cannot read metrics: {e}") from e
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        raise PlotError(f"{path}: expected {{level: {{metric: value}}}}, got {type(data).__name__}")
    return {str(k): dict(v) for k, v in data.items()}


def plot_accuracy_curves(runs: Sequence["str | os.PathLike"], path: "str | os.PathLike", *, metric: str = "top1",
                         labels: Sequence[str] | None = None, levels: Sequence[str] | None = None, title: str = "",
                         dpi: int = 120) -> Path:
    """One line per run: ``metric`` at each test corruption level (``levels``, default the paper's levels any run
    has) of its ``test/metrics.json``."""
    from finetec.corruption.presets import LEVELS

    plt = _plt()
    if not runs:
        raise PlotError("plot_accuracy_curves: no runs")
    if labels is not None and len(labels) != len(runs):
        raise PlotError(f"plot_accuracy_curves: {len(runs)} runs but {len(labels)} labels")
    names = list(labels) if labels is not None else [Path(r).name if Path(r).is_dir() else str(r) for r in runs]
    metrics = [load_run_metrics(r) for r in runs]
    seen = list(dict.fromkeys(lv for m in metrics for lv in m))
    if levels is None:
        levels = [lv for lv in LEVEL_ORDER if lv in seen]
        if not levels:
            raise PlotError(f"the runs have none of the levels {list(LEVEL_ORDER)} (they have {seen}); pass levels")
    else:
        levels = list(dict.fromkeys(levels))
        unknown = [lv for lv in levels if lv not in seen]
        if unknown:
            raise PlotError(f"no run has metrics for {unknown}; they have {seen}")
    x = {lv: i for i, lv in enumerate(levels)}
    for r, m in zip(runs, metrics):
        bad = [lv for lv, v in m.items() if lv in x and metric not in v]
        if bad:
            raise PlotError(f"{r}: metrics for {bad} lack {metric!r} (have {sorted(m[bad[0]])})")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(levels) + 3), 4.5))
    markers = "osD^vP*Xh<>"
    for k, (name, m) in enumerate(zip(names, metrics)):
        ys = np.full(len(levels), np.nan)
        for lv, v in m.items():
            if lv in x:
                ys[x[lv]] = float(v[metric])
        ax.plot(range(len(levels)), ys, marker=markers[k % len(markers)], label=name)
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([f"{lv}\n({LEVELS[lv].drop_ratio:.0%} dropped)" if lv in LEVELS else lv for lv in levels])
    ax.set_xlabel("test corruption level")
    ax.set_ylabel(METRIC_NAMES.get(metric, metric))
    ax.grid(alpha=0.3)
    ax.set_title(title or f"{METRIC_NAMES.get(metric, metric)} vs temporal corruption")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi)
