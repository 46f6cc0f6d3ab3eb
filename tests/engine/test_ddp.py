"""DDP on 2 CPU processes (gloo): trains, tests, and reports metrics over the whole test set exactly once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.engine.config import load_config
from finetec.engine.datamodule import EpochSampler, EvalSampler
from finetec.engine.runner import test as run_test
from finetec.metrics import mean_class_accuracy, top_k_accuracy

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"


def test_eval_sampler_covers_each_sample_once():
    shards = [list(EvalSampler(9, 2, r)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(9)) and len(shards[0]) == 5 and len(shards[1]) == 4
    with pytest.raises(ValueError, match="cannot be split"):
        EvalSampler(1, 2, 0)


def test_train_sampler_shards_pads_and_resumes():
    a, b = EpochSampler(10, seed=3, num_replicas=2, rank=0), EpochSampler(10, seed=3, num_replicas=2, rank=1)
    a.set_epoch(1)
    b.set_epoch(1)
    ia, ib = [i for i, _ in a], [i for i, _ in b]
    assert len(ia) == len(ib) == len(a) == 5 and sorted(set(ia + ib)) == list(range(10))
    assert all(e == 1 for _, e in a)
    a.set_epoch(2)
    assert [i for i, _ in a] != ia  # a new order each epoch
    c = EpochSampler(7, seed=3, num_replicas=2, rank=1)
    assert len(list(c)) == 4  # 7 samples padded to 8 by wrapping
    c.resume(1, 3)
    assert [i for i, _ in c] == c.order(1)[3:].tolist()  # resume skips what was trained
    assert len(list(c)) == 4  # only the first iteration after resume skips


def test_ddp_two_cpu_processes(tmp_path):
    ann = tmp_path / "tiny.pkl"
    # 9 test samples: two processes get 5 and 4; a padding sampler would count one twice
    save_annotations(synthetic_annotations(num_classes=3, per_class=(8, 3), seed=4), ann)
    wd = tmp_path / "work"
    overrides = [f"data.ann_file={ann}", f"trainer.work_dir={wd}", "optim.epochs=1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "finetec", "train", str(TINY), *overrides,
         "trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    m = out["metrics"]
    assert m["num_samples"] == 9
    z = np.load(wd / "test" / "clean.npz")
    assert sorted(z["frame_dir"].tolist()) == sorted(f"syn_c{c}_test{i:03d}" for c in range(3) for i in range(3))
    assert top_k_accuracy(z["scores"], z["label"])[0] == pytest.approx(m["top1"])
    assert mean_class_accuracy(z["scores"], z["label"]) == pytest.approx(m["mean_class_accuracy"])
    # the same weights evaluated by one process give the same numbers and scores
    cfg = load_config(TINY, overrides)
    single = run_test(cfg, out["ckpt"], ["clean"], out_dir=tmp_path / "single")["clean"]
    assert single == pytest.approx(m)
    assert np.allclose(np.load(tmp_path / "single" / "clean.npz")["scores"], z["scores"], atol=1e-6)
