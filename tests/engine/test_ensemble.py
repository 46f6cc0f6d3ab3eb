"""Multi-stream ensembles: weighted score fusion (hand values, sample matching, errors) and per-stream training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from finetec.data.io import save_annotations
from finetec.data.dataset import synthetic_annotations
from finetec.engine.config import load_config
from finetec.engine.ensemble import EnsembleError, fuse_scores, load_scores, train_streams

REPO = Path(__file__).resolve().parents[2]


def _write(run: Path, frame_dirs, labels, scores, level="clean"):
    (run / "test").mkdir(parents=True, exist_ok=True)
    np.savez(run / "test" / f"{level}.npz", frame_dir=np.array(frame_dirs), label=np.array(labels),
             scores=np.array(scores, dtype=np.float32), index=np.arange(len(labels)))
    return run


def test_weighted_fusion_hand_values(tmp_path):
    # sample a (label 0), b (label 1); stream j alone gets a wrong, stream b alone gets b wrong
    j = _write(tmp_path / "j", ["a", "b"], [0, 1], [[0.4, 0.6], [0.1, 0.9]])
    b = _write(tmp_path / "b", ["b", "a"], [1, 0], [[0.7, 0.3], [0.9, 0.1]])  # other order: matched by frame_dir
    res = fuse_scores([j, b], [2, 1])
    # fused a: 2*[.4,.6] + [.9,.1] = [1.7, 1.3] -> 0 right; b: 2*[.1,.9] + [.7,.3] = [.9, 2.1] -> 1 right
    assert res["fused"]["top1"] == 1.0
    assert [r["top1"] for r in res["runs"]] == [0.5, 0.5]
    res = fuse_scores([j, b], [1, 3])  # a: [3.1, .9] right; b: [2.2, 1.8] wrong
    assert res["fused"]["top1"] == 0.5


def test_fusion_errors(tmp_path):
    j = _write(tmp_path / "j", ["a", "b"], [0, 1], [[0.4, 0.6], [0.1, 0.9]])
    other = _write(tmp_path / "o", ["a", "c"], [0, 1], [[0.4, 0.6], [0.1, 0.9]])
    relabel = _write(tmp_path / "r", ["a", "b"], [1, 1], [[0.4, 0.6], [0.1, 0.9]])
    with pytest.raises(EnsembleError, match="different set of samples"):
        fuse_scores([j, other])
    with pytest.raises(EnsembleError, match="labels differ"):
        fuse_scores([j, relabel])
    with pytest.raises(EnsembleError, match="2 runs but 1 weights"):
        fuse_scores([j, j], [1])
    with pytest.raises(EnsembleError, match="no scores at"):
        load_scores(tmp_path / "missing")
    (tmp_path / "bad" / "test").mkdir(parents=True)
    np.savez(tmp_path / "bad" / "test" / "clean.npz", scores=np.zeros((2, 2)))
    with pytest.raises(EnsembleError, match="not a finetec score file"):
        load_scores(tmp_path / "bad")


def test_fusion_weights_fitted_on_validation_scores(tmp_path):
    # validation: run r is right on a and c, run s only on b; with weights fitted there, test fusion follows r
    r = _write(tmp_path / "r", ["a", "b", "c"], [0, 1, 0], [[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]], level="x")
    s = _write(tmp_path / "s", ["a", "b", "c"], [0, 1, 0], [[0.3, 0.7], [0.2, 0.8], [0.4, 0.6]], level="x")
    for run in (r, s):
        (run / "test" / "x.npz").rename(run / "test" / "val.npz")
        (run / "val").mkdir()
        (run / "test" / "val.npz").rename(run / "val" / "clean.npz")
    _write(r, ["t1", "t2"], [0, 1], [[0.8, 0.2], [0.45, 0.55]])
    _write(s, ["t1", "t2"], [0, 1], [[0.1, 0.9], [0.4, 0.6]])
    res = fuse_scores([r, s], level="clean", fit_on="val")
    w = res["weights"]
    assert res["fitted_on"] == "val" and sum(w) == pytest.approx(1.0)
    # all three validation samples are right iff 1/3 < w_r < 3/4 (a: 1.2 w > .4, b: .6 > .8 w, c: .6 w > .2);
    # among those grid points the fused probabilities' NLL decides
    assert 1 / 3 < w[0] < 0.75
    P = np.array([[[0.9, 0.1], [0.6, 0.4], [0.7, 0.3]], [[0.3, 0.7], [0.2, 0.8], [0.4, 0.6]]])
    y = np.array([0, 1, 0])

    def nll(wr):
        f = wr * P[0] + (1 - wr) * P[1]
        return -np.log(f[np.arange(3), y]).mean()

    feasible = [k / 20 for k in range(7, 15)]
    assert nll(w[0]) == pytest.approx(min(nll(v) for v in feasible))
    assert w[0] > 0.58 and res["fused"]["top1"] == 1.0  # test: t1 is right iff w_r > 4/7 (t2 always)
    assert fuse_scores([r, s])["fused"]["top1"] == 0.5  # equal weights get t1 wrong
    with pytest.raises(EnsembleError, match="either weights or fit_on"):
        fuse_scores([r, s], [1, 1], fit_on="val")
    with pytest.raises(EnsembleError, match="no scores at"):
        fuse_scores([r, s], fit_on="nowhere")


def test_train_streams_trains_each_and_fuses(tmp_path):
    ann = tmp_path / "tiny.pkl"
    save_annotations(synthetic_annotations(num_classes=3, per_class=(6, 3), seed=0), ann)
    cfg = load_config(REPO / "configs" / "tiny" / "tiny.yaml",
                      [f"data.ann_file={ann}", "optim.epochs=1", "trainer.val_every_n_epochs=0"])
    res = train_streams(cfg, tmp_path / "ens", ["j", "b"])
    assert set(res["streams"]) == {"j", "b"}
    assert "j+b (1:1)" in res["fusions"] and "j+b+jm+bm (2:2:1:1)" not in res["fusions"]
    j_cfg = (tmp_path / "ens" / "j" / "config.yaml").read_text()
    assert "feats:\n  - j" in j_cfg or "feats: [j]" in j_cfg
    on_disk = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert on_disk["fusions"]["j+b (1:1)"]["num_samples"] == 9
    mtime = (tmp_path / "ens" / "j" / "model.pth").stat().st_mtime
    train_streams(cfg, tmp_path / "ens", ["j", "b"])  # finished streams are reused, not retrained
    assert (tmp_path / "ens" / "j" / "model.pth").stat().st_mtime == mtime
    changed = load_config(REPO / "configs" / "tiny" / "tiny.yaml",
                          [f"data.ann_file={ann}", "optim.epochs=1", "trainer.val_every_n_epochs=0", "optim.lr=0.01"])
    train_streams(changed, tmp_path / "ens", ["j"])  # a changed config retrains the stream
    assert (tmp_path / "ens" / "j" / "model.pth").stat().st_mtime > mtime
    with pytest.raises(EnsembleError, match="subset of"):
        train_streams(cfg, tmp_path / "ens", ["x"])
