"""Config ``task: rgb``: training and testing an RGB recognizer (TSM) on videos guided by their skeletons."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.engine import test as run_test
from finetec.engine import train
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
    # the skeleton Predictor refuses an RGB checkpoint at load, naming the way to evaluate it
    with pytest.raises(CheckpointError, match="'rgb' model .*skeleton sequences only.*finetec test"):
        Predictor(out["ckpt"])


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
