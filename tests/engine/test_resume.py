"""A run killed mid-epoch and resumed ends with the same weights and metrics as an uninterrupted run."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from finetec.data.dataset import synthetic_annotations
from finetec.data.io import save_annotations
from finetec.engine.config import load_config
from finetec.engine.runner import latest_checkpoint, train

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"
# 24 training samples, batch 4: 6 steps per epoch, 18 in all; checkpoints every 4 steps and at each epoch end.
# Dropout and augmentation make the result depend on the random streams, not only on the data order.
OVERRIDES = ["optim.epochs=3", "trainer.ckpt_every_n_steps=4", "model.dropout=0.5", "trainer.deterministic=true"]


@pytest.fixture(scope="module")
def ann(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(8, 3), seed=2), path)
    return path


def _cfg(ann, work_dir, *extra):
    return load_config(TINY, [f"data.ann_file={ann}", f"trainer.work_dir={work_dir}", *OVERRIDES, *extra])


@pytest.fixture(scope="module")
def reference(ann, tmp_path_factory):
    out = train(_cfg(ann, tmp_path_factory.mktemp("ref")))
    return out, torch.load(out["ckpt"], weights_only=True)["state_dict"]


def _same(reference, out):
    ref_out, ref_sd = reference
    sd = torch.load(out["ckpt"], weights_only=True)["state_dict"]
    assert sd.keys() == ref_sd.keys()
    for k in sd:
        assert torch.equal(sd[k], ref_sd[k]), k
    assert out["metrics"] == ref_out["metrics"]


class _Crash(pl.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


# crash after step 5: resume from step 4 (epoch 0, batch 4 of 6); after 7: from the end of epoch 0 (step 6);
# after 13: from step 12, which is both a step and an end-of-epoch checkpoint
@pytest.mark.parametrize("crash_step, expect", [(5, "step0000004"), (7, "epoch000-step0000006"),
                                                (13, "epoch001-step0000012")])
def test_crash_and_resume(ann, tmp_path, reference, crash_step, expect):
    cfg = _cfg(ann, tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, callbacks=[_Crash(crash_step)])
    assert latest_checkpoint(tmp_path).stem == expect
    _same(reference, train(cfg, resume="auto"))


@pytest.fixture(scope="module")
def limited_reference(ann, tmp_path_factory):
    out = train(_cfg(ann, tmp_path_factory.mktemp("ref_limited"), "trainer.limit_train_batches=4"))
    return out, torch.load(out["ckpt"], weights_only=True)["state_dict"]


# epochs cut to 4 of 6 batches: step 4 is the last batch of epoch 0; both its step checkpoint (saved before
# validation) and its end-of-epoch checkpoint (after validation) must resume at the start of epoch 1
@pytest.mark.parametrize("which", ["step0000004.ckpt", "epoch000-step0000004.ckpt"])
def test_resume_after_last_batch_of_limited_epoch(ann, tmp_path, limited_reference, which):
    cfg = _cfg(ann, tmp_path, "trainer.limit_train_batches=4")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, callbacks=[_Crash(5)])
    _same(limited_reference, train(cfg, resume=tmp_path / "checkpoints" / which))


def test_sigkill_mid_epoch_and_resume(ann, tmp_path, reference):
    """SIGKILL a training subprocess once its mid-epoch checkpoint exists (step 8 = epoch 1, batch 2 of 6)."""
    marker = tmp_path / "HANGING"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import lightning.pytorch as pl
        from finetec.engine.config import load_config
        from finetec.engine.runner import train

        class Hang(pl.Callback):  # stop making progress after step 9, so the parent can kill us there
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step == 9:
                    open({str(marker)!r}, "w").close()
                    time.sleep(300)

        cfg = load_config({str(TINY)!r}, {[f"data.ann_file={ann}", f"trainer.work_dir={tmp_path}", *OVERRIDES]!r})
        train(cfg, callbacks=[Hang()])
    """))
    log = tmp_path / "stderr.txt"  # a file, not a pipe nobody reads while we wait
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"training subprocess exited early: {log.read_text()[-2000:]}")
            assert time.monotonic() < deadline, "training subprocess did not reach step 9"
            time.sleep(0.05)
        assert (tmp_path / "checkpoints" / "step0000008.ckpt").is_file()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "model.pth").exists()
    assert latest_checkpoint(tmp_path).name == "step0000008.ckpt"
    _same(reference, train(_cfg(ann, tmp_path), resume="auto"))
