"""``finetec data extract`` through add_commands on a fresh parser; the pose-environment fallback messages."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("av")

from pose_helpers import write_blob_video  # noqa: E402

from finetec.data.io import load_annotations  # noqa: E402
from finetec.pose import cli as pose_cli  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="finetec")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data")
    pose_cli.add_commands(d.add_subparsers(dest="data_command", required=True))
    return p


def test_extract_command_end_to_end(tmp_path, capsys):
    v = write_blob_video(tmp_path / "walk.mp4", [{"white": (10 + t, 20)} if t != 2 else {} for t in range(6)])
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,actor\nwalk.mp4,walk,4\n")
    out = tmp_path / "d.pkl"
    args = parser().parse_args(["data", "extract", str(v), "--labels", str(labels), "--out", str(out),
                                "--backend", "pose_helpers:BlobBackend", "--no-progress", "--test-actors", "none"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "1 videos (1 extracted" in text and "6 frames, 5 with a person (83.3%), 1 missing" in text
    assert "walk" in text.splitlines()[-2]
    data = load_annotations(out)
    assert data["annotations"][0]["frame_mask"].tolist() == [True, True, False, True, True, True]
    assert data["split"] == {} and data["meta"]["classes"] == ["walk"]


def test_bad_input_is_one_line_error(tmp_path, capsys):
    args = parser().parse_args(["data", "extract", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o.pkl"),
                                "--backend", "pose_helpers:BlobBackend"])
    assert args.func(args) == 2
    assert "none.mp4: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["data", "extract", "x.mp4", "--out", "o.pkl", "--box", "5,5,1,1"])


def test_argv_round_trip():
    p = parser()
    argv = ["data", "extract", "a.mp4", "dir", "--out", "o.pkl", "--labels", "l.csv", "--workers", "2",
            "--test-actors", "8,9,10", "--box", "1,2,30,40", "--max-frames", "7", "--parts", "pp",
            "--min-detection-confidence", "0.3", "--no-progress", "--label-column", "class_name"]
    a = p.parse_args(argv)
    b = p.parse_args(["data", "extract", *pose_cli._argv(a)])
    assert vars(a) == vars(b)


def test_missing_mediapipe_says_make_pose_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("finetec.pose.mediapipe_backend.mediapipe_available", lambda: False)
    monkeypatch.setattr(pose_cli, "pose_python", lambda: None)
    monkeypatch.delenv("FINETEC_POSE_CHILD", raising=False)
    args = parser().parse_args(["data", "extract", "a.mp4", "--out", str(tmp_path / "o.pkl")])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "make pose-env" in err and "FINETEC_POSE_PYTHON" in err
    monkeypatch.setenv("FINETEC_POSE_CHILD", "1")  # already re-run once: no loop
    assert args.func(args) == 2
    assert "not importable" in capsys.readouterr().err


def test_pose_python_prefers_the_environment_variable(tmp_path, monkeypatch):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("FINETEC_POSE_PYTHON", str(fake))
    assert pose_cli.pose_python() == str(fake)
    assert not pose_cli._has_mediapipe(str(fake))


def test_all_videos_unreadable_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 500)
    out = tmp_path / "o.pkl"
    args = parser().parse_args(["data", "extract", str(bad), "--out", str(out), "--backend",
                                "pose_helpers:BlobBackend", "--no-progress"])
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert "bad.mp4: cannot open" in err and "not written" in err and not out.exists()


def test_negative_box_survives_the_re_run_command_line():
    args = parser().parse_args(["data", "extract", "a.mp4", "--out", "o.pkl", "--box=-3,-2.5,100,200"])
    again = parser().parse_args(["data", "extract", *pose_cli._argv(args)])
    assert tuple(again.box) == (-3.0, -2.5, 100.0, 200.0)


def test_one_failing_video_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    from finetec.pose import extract as ex

    good = write_blob_video(tmp_path / "good.mp4", [{"white": (10 + t, 20)} for t in range(4)])
    bad = write_blob_video(tmp_path / "bad.mp4", [{"white": (10 + t, 20)} for t in range(4)])
    real = ex.extract_video

    def flaky(path, *a, **k):
        if "bad" in str(path):
            raise RuntimeError("backend crashed")
        return real(path, *a, **k)

    monkeypatch.setattr(ex, "extract_video", flaky)
    out = tmp_path / "d.pkl"
    args = parser().parse_args(["data", "extract", str(good), str(bad), "--out", str(out), "--backend",
                                "pose_helpers:BlobBackend", "--no-progress", "--test-actors", "none"])
    assert args.func(args) == 1  # a failed video is reported (exit 1) but the others are written
    assert "backend crashed" in capsys.readouterr().err
    assert [a["frame_dir"] for a in load_annotations(out)["annotations"]] == ["good"]
