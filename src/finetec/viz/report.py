"""Robustness reports: one markdown table + CSV + a PNG of accuracy vs corruption level."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from finetec.corruption.presets import LEVELS
from finetec.utils.io import atomic_write, atomic_write_text

__all__ = ["LEVEL_ORDER", "results_table", "write_csv", "plot_accuracy_vs_corruption", "write_report"]

LEVEL_ORDER = tuple(LEVELS)  # the paper's levels, mildest first
_FIELDS = ("model", "train", "test", "top1", "top5", "mean_class", "n", "train_s")


def _sorted(rows: Iterable[Mapping]) -> list[Mapping]:
    order = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    return sorted(rows, key=lambda r: (str(r["model"]), r["train"] != "clean", order.get(r["train"], 9),
                                       order.get(r["test"], 9)))


def results_table(rows: Iterable[Mapping]) -> str:
    """Markdown table: one row per (model, trained on, tested on)."""
    lines = [
        "| model | trained on | tested on | top-1 | top-5 | mean-class | test clips | train time (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in _sorted(rows):
        lines.append(
            f"| {r['model']} | {r['train']} | {r['test']} | {r['top1']:.3f} | {r['top5']:.3f} | "
            f"{r['mean_class']:.3f} | {r.get('n', '')} | {r.get('train_s', 0):.0f} |"
        )
    return "\n".join(lines) + "\n"


def write_csv(rows: Iterable[Mapping], path: str | Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(_FIELDS), extrasaction="ignore")
    w.writeheader()
    for r in _sorted(rows):
        w.writerow(r)
    atomic_write_text(path, buf.getvalue())


def plot_accuracy_vs_corruption(rows: Sequence[Mapping], path: str | Path, *, metric: str = "top1",
                                title: str = "") -> None:
    """Top-1 (or another metric) vs test corruption level; solid = trained at that level, dashed = trained clean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({str(r["model"]) for r in rows})
    x = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, m in enumerate(models):
        c = colors[k % len(colors)]
        matched = sorted((x[r["test"]], r[metric]) for r in rows
                         if r["model"] == m and r["train"] == r["test"] and r["test"] in x)
        clean = sorted((x[r["test"]], r[metric]) for r in rows
                       if r["model"] == m and r["train"] == "clean" and r["test"] in x)
        if matched:
            ax.plot(*zip(*matched), "-o", color=c, label=f"{m} (trained at the test level)")
        if clean:
            ax.plot(*zip(*clean), "--s", color=c, alpha=0.7, label=f"{m} (trained clean)")
    ax.set_xticks(range(len(LEVEL_ORDER)))
    ax.set_xticklabels([f"{lv}\n({LEVELS[lv].drop_ratio:.0%} dropped)" for lv in LEVEL_ORDER])
    ax.set_ylabel({"top1": "top-1 accuracy", "mean_class": "mean-class accuracy"}.get(metric, metric))
    ax.set_xlabel("test corruption level")
    ax.grid(alpha=0.3)
    ax.set_title(title or "Accuracy vs temporal corruption")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def write_report(rows: Sequence[Mapping], out_dir: str | Path, *, title: str, preamble: str = "") -> Path:
    """``report.md``, ``results.csv`` and ``accuracy_vs_corruption.png`` in ``out_dir``; returns the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / "results.csv")
    plot_accuracy_vs_corruption(rows, out_dir / "accuracy_vs_corruption.png", title=title)
    text = f"# {title}\n\n{preamble}\n{results_table(rows)}\n![accuracy vs corruption](accuracy_vs_corruption.png)\n"
    path = out_dir / "report.md"
    atomic_write_text(path, text)
    return path
