"""train / test entry points on a tiny synthetic dataset; checkpoint export and safe loading."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.engine.checkpoint import CheckpointError, SafeCheckpointIO, export_model, load_weights
from finetec.engine.config import load_config
from finetec.engine.runner import latest_checkpoint, resolve_resume, train
from finetec.engine.runner import test as run_test
from finetec.metrics import mean_class_accuracy, top_k_accuracy

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner")
    ann = root / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(8, 3), seed=0), ann)
    cfg = load_config(TINY, [f"data.ann_file={ann}", f"trainer.work_dir={root / 'work'}",
                             "trainer.ckpt_every_n_steps=4", "optim.epochs=2"])
    return cfg, train(cfg)


def test_train_writes_everything(run):
    cfg, out = run
    wd = Path(out["work_dir"])
    assert Path(out["ckpt"]).is_file() and (wd / "model.yaml").is_file()
    assert (wd / "checkpoints" / "last.ckpt").is_file()
    assert (wd / "checkpoints" / "step0000012.ckpt").is_file()  # 24 samples / batch 4 = 6 steps x 2 epochs
    assert (wd / "checkpoints" / "epoch001-step0000012.ckpt").is_file()
    assert load_config(wd / "config.yaml") == cfg
    m = out["metrics"]
    assert set(m) == {"top1", "top5", "mean_class_accuracy", "num_samples"} and m["num_samples"] == 9
    assert json.loads((wd / "test" / "metrics.json").read_text())["clean"] == m
    assert list((wd / "logs").glob("version_*/metrics.csv"))


def test_saved_scores_reproduce_metrics(run):
    cfg, out = run
    z = np.load(Path(out["work_dir"]) / "test" / "clean.npz")
    assert z["scores"].shape == (9, 3) and np.allclose(z["scores"].sum(1), 1.0, atol=1e-5)
    assert len(set(z["frame_dir"].tolist())) == 9
    t1, t5 = top_k_accuracy(z["scores"], z["label"], (1, 3))
    assert t1 == pytest.approx(out["metrics"]["top1"]) and t5 == pytest.approx(out["metrics"]["top5"])
    assert mean_class_accuracy(z["scores"], z["label"]) == pytest.approx(out["metrics"]["mean_class_accuracy"])


def test_test_exported_and_lightning_ckpt_agree(run, tmp_path):
    cfg, out = run
    res = run_test(cfg, out["ckpt"], ["clean", "severe"], out_dir=tmp_path / "a")
    assert res["clean"] == out["metrics"]
    assert res["severe"]["num_samples"] == 9
    res2 = run_test(cfg, Path(out["work_dir"]) / "checkpoints" / "last.ckpt", ["clean"], out_dir=tmp_path / "b")
    assert res2["clean"] == res["clean"]
    a, b = np.load(tmp_path / "a" / "clean.npz"), np.load(tmp_path / "b" / "clean.npz")
    assert np.array_equal(a["scores"], b["scores"])
    # evaluation (frame sampling + corruption) is a pure function of the sample id: a second run is identical
    res3 = run_test(cfg, out["ckpt"], ["severe"], out_dir=tmp_path / "c")
    assert res3["severe"] == res["severe"]
    assert np.array_equal(np.load(tmp_path / "a" / "severe.npz")["scores"],
                          np.load(tmp_path / "c" / "severe.npz")["scores"])


def test_wrong_weights_rejected(run, tmp_path):
    cfg, out = run
    state, meta, _ = load_weights(out["ckpt"])
    bad = tmp_path / "bad.pth"
    export_model(torch.nn.Linear(2, 2), {**meta, "num_classes": 5}, cfg, bad)
    with pytest.raises(CheckpointError, match="num_classes=5"):
        run_test(cfg, bad, ["clean"])
    export_model(torch.nn.Linear(2, 2), meta, cfg, bad)
    with pytest.raises(CheckpointError, match="do not fit model"):
        run_test(cfg, bad, ["clean"])
    with pytest.raises(CheckpointError, match="not found"):
        run_test(cfg, tmp_path / "missing.pth", ["clean"])
    with pytest.raises(ValueError, match="unknown corruption preset"):
        run_test(cfg, out["ckpt"], ["awful"])


def test_train_and_test_in_bf16_mixed(tmp_path):
    ann = tmp_path / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(4, 2), seed=1), ann)
    cfg = load_config(TINY, [f"data.ann_file={ann}", f"trainer.work_dir={tmp_path / 'work'}",
                             "trainer.precision=bf16-mixed", "optim.epochs=1", "optim.warmup_epochs=0"])
    assert load_config(TINY)["trainer"]["precision"] == "32" and cfg["trainer"]["precision"] == "bf16-mixed"
    out = train(cfg)
    assert out["metrics"]["num_samples"] == 6 and 0 <= out["metrics"]["top1"] <= 1
    assert load_config(Path(out["work_dir"]) / "config.yaml")["trainer"]["precision"] == "bf16-mixed"
    z = np.load(Path(out["work_dir"]) / "test" / "clean.npz")
    assert z["scores"].dtype == np.float32 and np.isfinite(z["scores"]).all()
    assert np.allclose(z["scores"].sum(1), 1.0, atol=1e-3)


def test_export_roundtrip_and_weights_only(tmp_path):
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    p = export_model(m, {"num_classes": 4}, {"model": {"name": "x"}}, tmp_path / "w.pth")
    sd, meta, cfg = load_weights(p)
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())
    assert meta == {"num_classes": 4} and cfg == {"model": {"name": "x"}}
    assert (tmp_path / "w.yaml").is_file()
    # a pickle that needs arbitrary globals is refused by our loading and by the Lightning plugin
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "obj": Path("x")}, evil)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_weights(evil)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        SafeCheckpointIO().load_checkpoint(evil, weights_only=False)
    SafeCheckpointIO().save_checkpoint({"a": torch.ones(2)}, tmp_path / "sub" / "c.ckpt")
    assert torch.equal(SafeCheckpointIO().load_checkpoint(tmp_path / "sub" / "c.ckpt")["a"], torch.ones(2))
    assert not [f for f in (tmp_path / "sub").iterdir() if f.name.endswith(".tmp")]


def test_resume_resolution(tmp_path):
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    assert resolve_resume("auto", tmp_path) is None and resolve_resume(None, tmp_path) is None
    (ck / "last.ckpt").write_bytes(b"")
    assert latest_checkpoint(tmp_path) == ck / "last.ckpt"
    for name in ("epoch000-step0000006.ckpt", "step0000004.ckpt"):
        (ck / name).write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "epoch000-step0000006.ckpt"
    (ck / "step0000006.ckpt").write_bytes(b"")
    assert latest_checkpoint(tmp_path).name == "epoch000-step0000006.ckpt"  # tie: the end-of-epoch one
    (ck / "step0000008.ckpt").write_bytes(b"")
    assert resolve_resume("auto", tmp_path) == str(ck / "step0000008.ckpt")
    with pytest.raises(CheckpointError, match="resume checkpoint not found"):
        resolve_resume(tmp_path / "nope.ckpt", tmp_path)
