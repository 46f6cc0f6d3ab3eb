"""``finetec viz ...`` through ``finetec.viz.cli.add_commands`` on a fresh parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import load_samples, save_annotations
from finetec.viz.cli import add_commands
from finetec.viz.video import video_info, write_video


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="finetec")
    add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)


@pytest.fixture
def pickle_path(tmp_path):
    data = synthetic_annotations(num_classes=2, per_class=(1, 1), frames=(12, 16), img_shape=(64, 96))
    path = tmp_path / "syn.pkl"
    save_annotations(data, path)
    return path


def test_skeleton_gif_mp4_and_video(pickle_path, tmp_path, capsys):
    s = load_samples(pickle_path)[0][1]
    assert _main(["viz", "skeleton", str(pickle_path), "--index", "1", "--out", str(tmp_path / "a.gif")]) == 0
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == s.num_frames and im.size == (96, 64)
    assert _main(["viz", "skeleton", str(pickle_path), "--frame-dir", s.id, "--level", "severe", "--scale", "2",
                  "--out", str(tmp_path / "b.mp4")]) == 0
    info = video_info(tmp_path / "b.mp4")
    assert info["frames"] == s.num_frames and (info["height"], info["width"]) == (128, 192)
    assert "frames kept" in capsys.readouterr().out
    write_video([np.full((64, 96, 3), 90, np.uint8)] * 20, tmp_path / "bg.mp4", fps=25)
    assert _main(["viz", "skeleton", str(pickle_path), "--index", "1", "--video", str(tmp_path / "bg.mp4"),
                  "--out", str(tmp_path / "c.mp4")]) == 0
    info = video_info(tmp_path / "c.mp4")
    assert info["frames"] == s.num_frames and info["fps"] == pytest.approx(25)


def test_skeleton_errors(pickle_path, tmp_path, capsys):
    assert _main(["viz", "skeleton", str(pickle_path), "--frame-dir", "nope", "--out", str(tmp_path / "a.gif")]) == 2
    assert "no sample with frame_dir 'nope'" in capsys.readouterr().err
    assert _main(["viz", "skeleton", str(pickle_path), "--index", "9", "--out", str(tmp_path / "a.gif")]) == 2
    assert "--index 9 out of range: " in capsys.readouterr().err
    assert _main(["viz", "skeleton", str(pickle_path), "--index", "0", "--out", str(tmp_path / "a.avi")]) == 2
    assert "use a .mp4 or .gif file" in capsys.readouterr().err
    write_video([np.zeros((32, 32, 3), np.uint8)] * 20, tmp_path / "small.mp4")
    assert _main(["viz", "skeleton", str(pickle_path), "--index", "0", "--video", str(tmp_path / "small.mp4"),
                  "--out", str(tmp_path / "a.gif")]) == 2
    assert "is 32x32 but the sample's img_shape is 64x96" in capsys.readouterr().err
    assert not (tmp_path / "a.gif").exists()


def test_compare(pickle_path, tmp_path, capsys):
    s = load_samples(pickle_path)[0][0]
    assert _main(["viz", "compare", str(pickle_path), "--index", "0", "--level", "moderate",
                  "--out", str(tmp_path / "c.gif")]) == 0
    with Image.open(tmp_path / "c.gif") as im:
        assert im.n_frames == s.num_frames and im.size[0] == 3 * 96 + 2 * 6
    assert "completed by interpolation" in capsys.readouterr().out
    assert _main(["viz", "compare", str(pickle_path), "--index", "0", "--level", "moderate", "--completer", "x",
                  "--out", str(tmp_path / "d.gif")]) == 2
    assert "unknown completer 'x'" in capsys.readouterr().err


def test_confusion_and_curves(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "test").mkdir(parents=True)
    np.savez(run / "test" / "clean.npz", label=np.array([0, 1, 1]), scores=np.eye(2)[[0, 1, 0]].astype(np.float32))
    (run / "test" / "metrics.json").write_text(json.dumps({"clean": {"top1": 0.67}, "severe": {"top1": 0.5}}))
    names = tmp_path / "classes.txt"
    names.write_text("walk\nrun\n")
    assert _main(["viz", "confusion", str(run), "--classes", str(names), "--out", str(tmp_path / "cm.png")]) == 0
    assert (tmp_path / "cm.png").is_file() and (tmp_path / "cm_per_class.png").is_file()
    assert _main(["viz", "curves", str(run), str(run), "--labels", "a", "b", "--out", str(tmp_path / "k.png")]) == 0
    assert (tmp_path / "k.png").is_file()
    capsys.readouterr()
    assert _main(["viz", "confusion", str(run), "--level", "minor", "--out", str(tmp_path / "x.png")]) == 2
    assert "no test scores for level 'minor'" in capsys.readouterr().err
    assert _main(["viz", "curves", str(run), "--out", str(tmp_path / "k.jpg")]) == 2
    assert "use a .png file" in capsys.readouterr().err
