"""The finetec command: subcommands, and one-line errors with exit status 2 for bad input."""

import json
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from finetec.cli import main
from finetec.data.dataset import synthetic_annotations
from finetec.data.io import load_annotations, save_annotations

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"


@pytest.fixture
def ann(tmp_path):
    path = tmp_path / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(4, 2), seed=5), path)
    return path


def _error_line(capsys):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("finetec: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_data_info(ann, capsys):
    assert main(["data", "info", str(ann)]) == 0
    out = capsys.readouterr().out
    assert "samples:     18" in out and "penn13" in out and "train 12" in out


def test_data_prepare_penn_action(penn_dir, tmp_path, capsys):
    src = tmp_path / "labels"
    src.mkdir()
    for f in sorted(penn_dir.glob("*.mat"))[:3]:
        (src / f.name).symlink_to(f)
    out = tmp_path / "penn.pkl"
    assert main(["data", "prepare", "penn-action", str(src), str(out)]) == 0
    assert "samples:     3" in capsys.readouterr().out
    data = load_annotations(out)
    assert data["meta"]["layout"] == "penn13" and len(data["annotations"]) == 3


def test_corrupt_inplace_and_compact(ann, tmp_path):
    src = load_annotations(ann)
    runs = {}
    for mode in ("inplace", "compact"):
        out = tmp_path / f"{mode}.pkl"
        assert main(["corrupt", str(ann), str(out), "--level", "severe", "--mode", mode, "--seed", "3"]) == 0
        runs[mode] = load_annotations(out)
        assert runs[mode]["split"] == src["split"]
        assert runs[mode]["meta"]["corruption"] == {"level": "severe", "mode": mode, "seed": 3}
    for a, ip, cp in zip(src["annotations"], runs["inplace"]["annotations"], runs["compact"]["annotations"]):
        T = a["total_frames"]
        kept = T - int(np.floor(0.75 * T + 0.5))  # 75 % of the valid frames dropped (round half up)
        assert ip["total_frames"] == cp["total_frames"] == T
        assert int(ip["frame_mask"].sum()) == int(cp["frame_mask"].sum()) == kept
        # in place: kept frames untouched where they were; compact: the same frames, in order, at the front
        assert np.array_equal(ip["keypoint"][:, ip["frame_mask"]], a["keypoint"][:, ip["frame_mask"]])
        assert cp["frame_mask"][:kept].all() and not cp["frame_mask"][kept:].any()
        assert np.array_equal(cp["keypoint"][:, :kept], a["keypoint"][:, ip["frame_mask"]])
    again = tmp_path / "again.pkl"
    main(["corrupt", str(ann), str(again), "--level", "severe", "--mode", "compact", "--seed", "3"])
    assert all(np.array_equal(x["keypoint"], y["keypoint"]) for x, y in
               zip(runs["compact"]["annotations"], load_annotations(again)["annotations"]))


def test_train_then_test_all(ann, tmp_path, capsys):
    wd = tmp_path / "work"
    ov = [f"data.ann_file={ann}", f"trainer.work_dir={wd}", "optim.epochs=1"]
    assert main(["train", str(TINY), *ov]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"]["num_samples"] == 6 and Path(out["ckpt"]).is_file()
    assert main(["test", str(TINY), "--ckpt", out["ckpt"], "--corruption", "all", *ov]) == 0
    table = capsys.readouterr().out
    for level in ("clean", "minor", "moderate", "severe"):
        assert level in table
    assert set(json.loads((wd / "test" / "metrics.json").read_text())) == {"clean", "minor", "moderate", "severe"}


def test_errors_are_one_line_exit_2(ann, tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing.pkl")]) == 2
    assert "missing.pkl" in _error_line(capsys)

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"annotations": [], "x": Path("/")}))
    assert main(["data", "info", str(evil)]) == 2
    assert "refusing to load global" in _error_line(capsys)

    bad = load_annotations(ann)
    bad["annotations"][1]["frame_mask"] = np.zeros(bad["annotations"][1]["total_frames"], bool)
    bad_path = tmp_path / "bad.pkl"
    save_annotations(bad, bad_path)
    assert main(["corrupt", str(bad_path), str(tmp_path / "o.pkl"), "--level", "minor"]) == 2
    assert "all" in _error_line(capsys)

    assert main(["train", str(TINY), "optim.lrr=1"]) == 2
    assert "unknown key 'optim.lrr'" in _error_line(capsys)
    assert main(["train", str(TINY), f"data.ann_file={ann}", "model.name=nope"]) == 2
    assert "model.name 'nope' is not a registered model" in _error_line(capsys)
    assert main(["train", str(TINY), f"data.ann_file={ann}", "model.bogus=1"]) == 2
    assert "unknown option(s) ['bogus']" in _error_line(capsys)
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in _error_line(capsys)
    assert main(["train", str(TINY), f"data.ann_file={tmp_path / 'none.pkl'}"]) == 2
    assert "none.pkl" in _error_line(capsys)
    assert main(["test", str(TINY), f"data.ann_file={ann}", "--ckpt", str(tmp_path / "no.pth")]) == 2
    assert "checkpoint not found" in _error_line(capsys)
    assert main(["corrupt", str(ann), str(tmp_path / "o.pkl"), "--level", "awful"]) == 2
    assert "unknown corruption preset" in _error_line(capsys)
    with pytest.raises(SystemExit) as e:
        main(["corrupt", str(ann)])
    assert e.value.code == 2  # argparse usage error


def test_demo_passes_arguments(monkeypatch):
    seen = {}
    fake = types.ModuleType("finetec.demo")
    fake.main = lambda argv: seen.setdefault("argv", argv) and 0
    monkeypatch.setitem(sys.modules, "finetec.demo", fake)
    monkeypatch.setattr("finetec.demo", fake, raising=False)
    assert main(["demo", "--quick", "--help", "x"]) == 0
    assert seen["argv"] == ["--quick", "--help", "x"]
