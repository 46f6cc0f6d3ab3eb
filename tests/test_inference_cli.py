"""``finetec predict`` / ``finetec stream`` end to end: pickle, COCO keypoint JSON, a real Florence clip (poses by
MediaPipe in the pose environment), bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finetec.cli import main
from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.engine.config import load_config
from finetec.engine.runner import train
from finetec.pose.cli import pose_python

REPO = Path(__file__).resolve().parents[1]
FLORENCE = REPO.parent / "shared" / "data" / "florence3d" / "videos"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    ann = root / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(6, 3), seed=1), ann)
    cfg = load_config(REPO / "configs" / "tiny" / "tiny.yaml",
                      [f"data.ann_file={ann}", f"trainer.work_dir={root / 'work'}", "optim.epochs=1",
                       "trainer.val_every_n_epochs=0"])
    return ann, Path(train(cfg)["ckpt"])


def test_predict_pickle_prints_and_writes_json(trained, tmp_path, capsys):
    ann, ckpt = trained
    out = tmp_path / "pred.json"
    assert main(["predict", str(ann), "--ckpt", str(ckpt), "--topk", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "top-1 on the 27 labelled samples" in text
    res = json.loads(out.read_text())
    assert len(res["predictions"]) == 27 and len(res["predictions"][0]["topk"]) == 2
    assert main(["predict", str(ann), "--ckpt", str(ckpt), "--index", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_predict_coco_keypoint_json_in_another_layout(trained, tmp_path, capsys):
    _, ckpt = trained
    rng = np.random.default_rng(0)
    items = []
    for t in range(20):
        if t in (4, 5):
            continue  # no person in these frames: missing frames
        kp = np.concatenate([rng.uniform(100, 400, (17, 2)), np.full((17, 1), 0.9)], 1)
        items.append({"image_id": t, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": 0.9})
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(items))
    assert main(["predict", str(path), "--ckpt", str(ckpt), "--img-shape", "480,640"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("clip: ") and len(line.split(",")) == 3  # top-5 asked, the model has 3 classes

def test_predict_bad_input(trained, tmp_path, capsys):
    _, ckpt = trained
    assert main(["predict", str(tmp_path / "nope.mp4"), "--ckpt", str(ckpt)]) == 2
    assert "input not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["predict", str(bad), "--ckpt", str(ckpt)]) == 2
    assert main(["predict", str(bad), "--ckpt", str(tmp_path / "missing.pth")]) == 2


@pytest.mark.skipif(pose_python() is None, reason="no pose environment (.venv-pose): `make test` builds it")
@pytest.mark.skipif(not any(FLORENCE.glob("*.mp4")), reason="../shared/data/florence3d not beside the repository")
def test_predict_and_stream_real_florence_clip(trained, tmp_path, capsys):
    _, ckpt = trained
    clip = sorted(FLORENCE.glob("*.mp4"))[0]
    assert main(["predict", str(clip), "--ckpt", str(ckpt), "--topk", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(clip.stem + ": ")
    assert out[0].split(": ")[1].rsplit(" ", 1)[0] in {"class0", "class1", "class2"}  # the checkpoint's classes
    js = tmp_path / "stream.json"
    assert main(["stream", str(clip), "--ckpt", str(ckpt), "--window", "8", "--stride", "4", "--out", str(js)]) == 0
    text = capsys.readouterr().out
    res = json.loads(js.read_text())
    assert res["windows"] and res["windows"][0]["start"] == 0 and res["windows"][0]["end"] == 7
    assert all(w["latency_ms"] > 0 for w in res["windows"] if w["topk"]) and "ms/window" in text
