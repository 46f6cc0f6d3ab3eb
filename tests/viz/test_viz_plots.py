"""Confusion matrix, per-class accuracy and accuracy-vs-corruption plots from run directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from finetec.viz.plots import (
    PlotError, confusion_matrix, load_test_scores, per_class_accuracy, plot_accuracy_curves, plot_confusion,
    plot_run_confusion,
)


def _run(tmp_path, name: str, metrics: dict, scores: dict | None = None):
    run = tmp_path / name
    (run / "test").mkdir(parents=True)
    (run / "test" / "metrics.json").write_text(json.dumps(metrics))
    for level, (label, sc) in (scores or {}).items():
        np.savez(run / "test" / f"{level}.npz", frame_dir=np.array([f"s{i}" for i in range(len(label))]),
                 label=np.asarray(label), scores=np.asarray(sc, np.float32), index=np.arange(len(label)))
    return run


def test_confusion_matrix_and_per_class_by_hand():
    cm = confusion_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], 4)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(cm)
    np.testing.assert_allclose(acc[:3], [0.5, 2 / 3, 1.0])
    assert np.isnan(acc[3])
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        confusion_matrix([0, 4], [0, 0], 4)
    with pytest.raises(ValueError, match="equal-length"):
        confusion_matrix([0, 1], [0], 4)


def test_run_confusion_pngs(tmp_path):
    label = [0, 0, 1, 2, 2, 2]
    sc = np.eye(3)[[0, 1, 1, 2, 2, 0]]
    run = _run(tmp_path, "r1", {"minor": {"top1": 0.6}}, {"minor": (label, sc), "severe": (label, sc)})
    d = load_test_scores(run)  # mildest level present
    assert d["level"] == "minor" and d["scores"].shape == (6, 3)
    a, b = plot_run_confusion(run, tmp_path / "out" / "cm.png", class_names=["a", "b", "c"])
    assert b.name == "cm_per_class.png"
    for p in (a, b):
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 300
    with Image.open(plot_confusion(np.eye(2, dtype=int), tmp_path / "x.png", dpi=50)) as im:
        assert im.size == (int(6.2 * 50), 5 * 50)  # figsize (side + 1.2, side) with side = 5 for 2 classes
    with pytest.raises(PlotError, match=r"no test scores for level 'clean'; available: \['minor', 'severe'\]"):
        plot_run_confusion(run, tmp_path / "y.png", level="clean")
    with pytest.raises(PlotError, match="2 class names for 3 classes"):
        plot_run_confusion(run, tmp_path / "y.png", class_names=["a", "b"])
    with pytest.raises(PlotError, match="give a .png path"):
        plot_run_confusion(run, tmp_path / "y.jpg")
    with pytest.raises(PlotError, match="not a run directory"):
        load_test_scores(tmp_path / "nothing")
    bad = _run(tmp_path, "bad", {}, {"clean": ([0, 5], np.ones((2, 3)))})
    with pytest.raises(PlotError, match=r"labels must be integers in 0\.\.2"):
        load_test_scores(bad)


def test_accuracy_curves(tmp_path):
    r1 = _run(tmp_path, "a", {"minor": {"top1": 0.8}, "severe": {"top1": 0.6}, "severe+S-low": {"top1": 0.5}})
    r2 = _run(tmp_path, "b", {"minor": {"top1": 0.7}, "moderate": {"top1": 0.65}})
    out = plot_accuracy_curves([r1, r2], tmp_path / "c.png", dpi=50)
    with Image.open(out) as im:
        assert im.size == (int(max(6.0, 1.3 * 3 + 3) * 50), int(4.5 * 50))  # 3 paper levels: minor, moderate, severe
    out = plot_accuracy_curves([r1], tmp_path / "d.png", levels=["severe", "severe+S-low"], dpi=50)
    assert out.is_file()
    with pytest.raises(PlotError, match=r"no run has metrics for \['clean'\]"):
        plot_accuracy_curves([r1, r2], tmp_path / "e.png", levels=["clean"])
    with pytest.raises(PlotError, match="lack 'top5'"):
        plot_accuracy_curves([r1], tmp_path / "e.png", metric="top5")
    with pytest.raises(PlotError, match="2 runs but 1 labels"):
        plot_accuracy_curves([r1, r2], tmp_path / "e.png", labels=["x"])
    with pytest.raises(PlotError, match="no test/metrics.json"):
        plot_accuracy_curves([tmp_path], tmp_path / "e.png")
    only = _run(tmp_path, "p", {"T-low": {"top1": 0.1}})
    with pytest.raises(PlotError, match="none of the levels"):
        plot_accuracy_curves([only], tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
