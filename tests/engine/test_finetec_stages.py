"""FineTec's two stages through the engine on a tiny synthetic dataset: completion (task: completion) -> recognizer
initialised from it; non-learned completers evaluated without weights."""

import json
from pathlib import Path

import pytest
import torch

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.engine.checkpoint import CheckpointError, load_weights
from finetec.engine.config import ConfigError, load_config
from finetec.engine.runner import test as run_test
from finetec.engine.runner import train

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"
RESTORATION_KEYS = {f"{m}_{f}" for m in ("mpjpe", "n_mpjpe", "mpjve") for f in ("all", "missing")}


def _cfg(root: Path, ann: Path, name: str, *extra: str):
    return load_config(TINY, [f"data.ann_file={ann}", f"trainer.work_dir={root / name}", "optim.epochs=1",
                              "trainer.val_every_n_epochs=0", "data.corruption.train=[moderate, severe]",
                              "data.corruption.test=severe", "test.levels=[moderate, severe]", *extra])


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetec_stages")
    ann = root / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(6, 3), seed=0), ann)
    cfg = _cfg(root, ann, "completion", "task=completion", "model={name: finetec, dim: 32, depth: 1}",
               "optim.type=adamw", "optim.lr=0.001", "bank.size=8")
    return root, ann, cfg, train(cfg)


def test_completion_stage_trains_exports_and_tests(stage1):
    root, ann, cfg, out = stage1
    assert set(out["metrics"]) == RESTORATION_KEYS
    assert all(v == v and v >= 0 for v in out["metrics"].values())  # finite, not NaN
    state, meta, _ = load_weights(out["ckpt"])
    assert meta["task"] == "completion" and meta["mode"] == "compact"
    assert state["bank.sequences"].shape[0] == 8 and state["bank.weights"].sum() > 0  # the bank was filled
    res = run_test(cfg, out["ckpt"], ["clean", "moderate", "severe"])
    assert set(res) == {"moderate", "severe"}  # clean has nothing to restore
    assert res["severe"] == pytest.approx(out["metrics"])
    assert json.loads((Path(out["work_dir"]) / "test" / "metrics.json").read_text())["moderate"]
    with pytest.raises(CheckpointError, match="learned"):
        run_test(cfg, None, ["severe"])


def test_non_learned_completer_needs_no_weights(stage1):
    root, ann, _, _ = stage1
    cfg = _cfg(root, ann, "interp", "task=completion", "model={name: interpolation}")
    res = run_test(cfg, None, ["severe"])
    assert set(res["severe"]) == RESTORATION_KEYS
    with pytest.raises(ValueError, match="nothing to train"):
        train(cfg)
    with pytest.raises(ConfigError, match="not a registered completer"):
        run_test(_cfg(root, ann, "x", "task=completion", "model={name: nosuch}"), None, ["severe"])


def test_stage2_loads_frozen_completion_and_trains(stage1):
    root, ann, _, out1 = stage1
    model = ("model={name: finetec, backbone: stgcn, width: slim, fusion_dim: 8, "
             "completion_kw: {dim: 32, depth: 1}}")
    cfg = _cfg(root, ann, "stage2", model, f"init.ckpt={out1['ckpt']}", "init.into=completion", "init.freeze=true",
               "bank.size=8")
    out = train(cfg)
    assert set(out["metrics"]) == {"top1", "top5", "mean_class_accuracy", "num_samples"}
    s1, _, _ = load_weights(out1["ckpt"])
    s2, _, _ = load_weights(out["ckpt"])
    for k, v in s1.items():  # frozen: the completion is exactly stage 1's
        assert torch.equal(s2[f"completion.{k}"], v), k
    res = run_test(cfg, out["ckpt"], ["severe"])
    assert res["severe"]["num_samples"] == 9
    bad = _cfg(root, ann, "bad", model, f"init.ckpt={out1['ckpt']}", "init.into=fusion")
    with pytest.raises(CheckpointError, match="do not fit fusion"):
        train(bad)
