"""Predictor and StreamRecognizer on a tiny trained run: same scores as evaluation, layouts, missing frames, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.data.sample import SampleError, SkeletonSample
from finetec.engine.checkpoint import CheckpointError
from finetec.engine.config import load_config
from finetec.engine.runner import train
from finetec.inference import Predictor, StreamRecognizer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    ann = root / "tiny.pkl"
    data = synthetic_annotations(num_classes=3, per_class=(6, 3), seed=0)
    save_annotations(data, ann)
    cfg = load_config(REPO / "configs" / "tiny" / "tiny.yaml",
                      [f"data.ann_file={ann}", f"trainer.work_dir={root / 'work'}", "optim.epochs=1",
                       "trainer.val_every_n_epochs=0", "model.sfhead={mode: auxiliary}"])
    out = train(cfg)
    return data, Path(out["ckpt"]), Path(out["work_dir"])


def test_predict_matches_evaluation_scores(run):
    data, ckpt, wd = run
    p = Predictor(ckpt)
    assert "sfhead" not in type(p.model).__name__.lower()  # auxiliary SF-Head dropped for inference
    saved = np.load(wd / "test" / "clean.npz")
    anns = {a["frame_dir"]: a for a in data["annotations"]}
    preds = p.predict([anns[f] for f in saved["frame_dir"]], topk=2)
    got = np.stack([q.scores for q in preds])
    assert np.allclose(got, saved["scores"], atol=1e-4)  # fused inference path: equal up to rounding
    assert [q.label for q in preds] == saved["label"].tolist()
    assert len(preds[0].topk) == 2 and preds[0].topk[0][1] >= preds[0].topk[1][1]
    assert preds[0].as_dict()["top1"] == preds[0].top1


def test_missing_frames_and_bad_input(run):
    data, ckpt, _ = run
    p = Predictor(ckpt)
    a = dict(data["annotations"][0])
    a["frame_mask"] = np.zeros(a["keypoint"].shape[1], bool)
    with pytest.raises(SampleError, match="all"):
        p.predict([a])
    b = dict(data["annotations"][0])
    b["keypoint"] = b["keypoint"][:, :, :5]
    b["keypoint_score"] = b["keypoint_score"][:, :, :5]
    with pytest.raises(SampleError):
        p.predict([b])
    with pytest.raises(TypeError):
        p.predict([42])


def test_bad_checkpoint(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="x.pth"):
        Predictor(bad)


def test_stream_windows_and_missing_frames(run):
    data, ckpt, _ = run
    p = Predictor(ckpt)
    a = data["annotations"][0]
    kp, sc = a["keypoint"][0], a["keypoint_score"][0]
    s = StreamRecognizer(p, window=8, stride=4, img_shape=a["img_shape"], topk=2)
    results = []
    for t in range(16):
        r = s.push(None if t in (2, 5) else kp[t % kp.shape[0]], sc[t % kp.shape[0]])
        if r is not None:
            results.append(r)
    assert [(r.start, r.end) for r in results] == [(0, 7), (4, 11), (8, 15)]
    assert results[0].valid_frames == 6 and results[2].valid_frames == 8
    assert results[0].label in p.classes and results[0].latency_ms > 0
    # the window's answer equals predicting the same frames as a sequence with those frames missing
    frames = np.stack([kp[t % kp.shape[0]] for t in range(8)])
    scores = np.stack([sc[t % kp.shape[0]] for t in range(8)])
    mask = np.ones(8, bool)
    mask[[2, 5]] = False
    frames[~mask], scores[~mask] = 0, 0
    ref = p.predict([SkeletonSample(frames[None], score=scores[None], mask=mask, id="w",
                                    img_shape=a["img_shape"], layout=p.layout.name)], topk=2)[0]
    assert results[0].topk[0][0] == ref.topk[0][0]
    assert results[0].topk[0][1] == pytest.approx(ref.topk[0][1], abs=1e-5)
    empty = StreamRecognizer(p, window=4, stride=4)
    outs = [empty.push(None) for _ in range(4)]
    assert outs[-1].label is None and outs[-1].valid_frames == 0
    with pytest.raises(ValueError, match="keypoints must be"):
        s.push(np.zeros((3, 2)))


def test_frame_stream_with_a_backend(run):
    from finetec.inference import FrameStream
    from finetec.pose.base import PersonPose, PoseBackend

    data, ckpt, _ = run
    p = Predictor(ckpt)
    a = data["annotations"][0]
    kp, sc = a["keypoint"][0], a["keypoint_score"][0]

    class Replay(PoseBackend):  # the sample's own joints, one frame per call; nobody on every third frame
        name, layout = "replay", p.layout.name

        def __init__(self):
            self.t = 0

        def process(self, frame, roi=None):
            t, self.t = self.t, self.t + 1
            return [] if t % 3 == 2 else [PersonPose(kp[t], np.maximum(sc[t], 0.1), layout=self.layout)]

    fs = FrameStream(Replay(), p, window=8, stride=8)
    frame = np.zeros((480, 640, 3), np.uint8)
    out = [fs.push(frame) for _ in range(16)]
    answers = [r for r in out if r is not None]
    assert [(r.start, r.end) for r in answers] == [(0, 7), (8, 15)]
    assert answers[0].valid_frames == 6 and answers[0].label in p.classes
    with pytest.raises(ValueError, match="RGB uint8"):
        fs.push(np.zeros((4, 4), np.uint8))
