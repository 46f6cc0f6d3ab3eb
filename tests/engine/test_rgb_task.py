"""Config ``task: rgb``: training and testing an RGB recognizer (TSM) on videos guided by their skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.engine import test as run_test
from finetec.engine import train
from finetec.data.sample import SampleError
from finetec.engine.checkpoint import CheckpointError
from finetec.engine.config import ConfigError, load_config
from finetec.inference import Predictor


def _cfg(tiny_videos, tmp_path, *extra):
    return load_config(None, [
        "task=rgb", f"data.ann_file={tiny_videos}", f"data.video.root={tiny_videos.parent / 'videos'}",
        "data.video.size=32", "data.video.num_segments=4", "data.batch_size=4", "data.num_workers=0",
        "data.num_clips_test=2", "test.levels=[clean]", "model.name=tsm", "model.width=slim", "optim.epochs=1",
        "optim.lr=0.01", "trainer.progress_bar=false", "trainer.val_every_n_epochs=0",
        f"trainer.work_dir={tmp_path / 'work'}", *extra])


def test_train_and_test_rgb(tiny_videos, tmp_path):
    cfg = _cfg(tiny_videos, tmp_path)
    out = train(cfg)
    m = out["metrics"]
    assert m["num_samples"] == 6 and 0.0 <= m["top1"] <= 1.0
    z = np.load(tmp_path / "work" / "test" / "clean.npz")
    assert z["scores"].shape == (6, 3) and np.allclose(z["scores"].sum(1), 1, atol=1e-5)
    again = run_test(cfg, out["ckpt"], ["clean"], out_dir=tmp_path / "again")
    assert again["clean"]["top1"] == pytest.approx(m["top1"])
    with pytest.raises(ValueError, match="clean video only"):
        run_test(cfg, out["ckpt"], ["severe"])
    # the skeleton Predictor refuses an RGB checkpoint at load, naming the one to use
    with pytest.raises(CheckpointError, match="'rgb' model .*skeleton sequences only.*RGBPredictor"):
        Predictor(out["ckpt"])


def test_rgb_predictor_and_fusion_with_a_skeleton_model(tiny_videos, tmp_path, capsys):
    import json
    import pickle

    from finetec.cli import main
    from finetec.inference import RGBPredictor, fused_predictions, open_predictor

    root = tiny_videos.parent / "videos"
    rgb = train(_cfg(tiny_videos, tmp_path / "rgb"))["ckpt"]
    skel_cfg = load_config(None, [f"data.ann_file={tiny_videos}", "model.name=stgcn", "model.width=slim",
                                  "data.clip_len=8", "data.batch_size=4", "data.num_workers=0", "optim.epochs=1",
                                  "test.levels=[clean]", "trainer.progress_bar=false", "trainer.val_every_n_epochs=0",
                                  f"trainer.work_dir={tmp_path / 'skel'}"])
    skel = train(skel_cfg)["ckpt"]
    p_rgb, p_skel = open_predictor(rgb), open_predictor(skel)
    assert isinstance(p_rgb, RGBPredictor) and isinstance(p_skel, Predictor)
    with pytest.raises(CheckpointError, match="a skeleton model"):
        RGBPredictor(skel)
    # the RGB predictor answers as evaluation did, clip for clip
    saved = np.load(tmp_path / "rgb" / "work" / "test" / "clean.npz")
    anns = {a["frame_dir"]: a for a in pickle.loads(tiny_videos.read_bytes())["annotations"]}
    items = [anns[f] for f in saved["frame_dir"]]
    assert np.allclose(p_rgb.scores(items), saved["scores"], atol=1e-5)
    # Eq. 14 over the two models (on the clips with a skeleton: one test clip has no joint at all)
    seen = [a for a in items if (a["keypoint_score"] > 0).any()]
    assert 0 < len(seen) < len(items)
    preds, (s_rgb, s_skel) = fused_predictions([p_rgb, p_skel], seen, weights=[0.3, 0.7], topk=2)
    assert np.allclose([p.scores for p in preds], 0.3 * s_rgb + 0.7 * s_skel)
    assert [p.label for p in preds] == [a["label"] for a in seen] and len(preds[0].topk) == 2
    with pytest.raises(SampleError, match="no joint is visible"):
        fused_predictions([p_rgb, p_skel], items)
    # the command: a pickle whose videos are under --video-root, both models, weights, JSON with each model's scores
    out = tmp_path / "pred.json"
    assert main(["predict", str(tiny_videos), "--ckpt", str(skel), "--ckpt", str(rgb), "--weights", "7", "3",
                 "--video-root", str(root), "--topk", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skeleton: " in text and "rgb: " in text and "fused (skeleton " in text and "(no answer" in text
    res = json.loads(out.read_text())
    assert res["weights"] == pytest.approx([0.7, 0.3]) and len(res["predictions"]) == len(anns)
    per = res["predictions"][0]["per_model"]
    assert [m["input"] for m in per] == ["skeleton", "rgb"]
    assert main(["predict", str(tiny_videos), "--ckpt", str(skel), "--ckpt", str(rgb), "--weights", "1"]) == 2
    assert "one per --ckpt" in capsys.readouterr().err


def test_rgb_config_errors(tiny_videos, tmp_path):
    with pytest.raises(ConfigError, match="corruption levels do not apply"):
        load_config(None, ["task=rgb", "model.name=tsm"])  # test.levels defaults to every corruption level
    with pytest.raises(ConfigError, match="data.video.size"):
        _cfg(tiny_videos, tmp_path, "data.video.size=0")


def test_trained_weights_do_not_need_the_imagenet_file(tiny_videos, tmp_path):
    from finetec.engine.lit import build_model
    from finetec.engine.runner import model_config

    cfg = _cfg(tiny_videos, tmp_path, f"model.pretrained={tmp_path / 'gone.pth'}")
    assert model_config(cfg)["pretrained"] == str(tmp_path / "gone.pth")  # training starts from it
    mc = model_config(cfg, for_weights=True)
    assert "pretrained" not in mc
    assert build_model(mc, num_classes=3, layout="coco17", in_channels=3) is not None
    with pytest.raises(FileNotFoundError):
        build_model(model_config(cfg), num_classes=3, layout="coco17", in_channels=3)
