"""LitRecognizer: mask / aux-loss handling, clip averaging, metrics, RNG state in checkpoints."""

import pytest
import torch
import torch.nn.functional as F

from finetec.engine.lit import LitRecognizer

K = 4


class Plain(torch.nn.Module):
    """Logits from the mean of the input; forward takes no mask (passing one would raise TypeError)."""

    needs_mask = False
    returns_aux = False

    def __init__(self, C=3):
        super().__init__()
        self.fc = torch.nn.Linear(C, K)

    def forward(self, x):
        return self.fc(x.mean((1, 2, 3)))


class Masked(Plain):
    needs_mask = True

    def forward(self, x, mask=None):
        self.seen_mask = mask
        w = mask.float()[:, None, :, None, None]  # mean over valid frames only
        return self.fc((x * w).sum((1, 2, 3)) / (w.sum((1, 2, 3)) * x.shape[1] * x.shape[3]))


class WithAux(Plain):
    returns_aux = True

    def forward(self, x):
        logits = super().forward(x)
        return logits, {"loss_extra": logits.pow(2).mean(), "feature": logits, "accel": torch.ones(3)}


def _batch(N=2, nc=3, T=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(N, nc, T, dtype=torch.bool)
    mask[:, :, 5:] = False
    return {"keypoint": torch.randn(N, nc, 1, T, 5, 3, generator=g), "mask": mask,
            "label": torch.tensor([1, 3][:N]), "index": torch.arange(N), "frame_dir": [f"s{i}" for i in range(N)]}


def _lit(model):
    return LitRecognizer(model, num_classes=K, layout="penn13", in_channels=3, optim={"lr": 0.1})


def test_plain_model_gets_no_mask_and_ce_over_clips():
    lit = _lit(Plain())
    b = _batch()
    loss, logs = lit.compute_loss(b)
    x = b["keypoint"].flatten(0, 1)
    expect = F.cross_entropy(lit.model(x), b["label"].repeat_interleave(3))
    assert torch.allclose(loss, expect) and set(logs) == {"loss_cls", "loss", "top1"}


def test_mask_reaches_mask_models_flattened():
    lit = _lit(Masked())
    b = _batch()
    lit.compute_loss(b)
    assert torch.equal(lit.model.seen_mask, b["mask"].flatten(0, 1))
    assert lit.model.seen_mask.shape == (6, 8)


def test_aux_losses_added_other_entries_ignored():
    lit = _lit(WithAux())
    b = _batch()
    loss, logs = lit.compute_loss(b)
    logits = Plain.forward(lit.model, b["keypoint"].flatten(0, 1))
    ce = F.cross_entropy(logits, b["label"].repeat_interleave(3))
    assert torch.allclose(loss, ce + logits.pow(2).mean())
    assert "loss_extra" in logs and "feature" not in logs and "accel" not in logs


def test_bad_aux_output_is_reported():
    class Liar(Plain):
        returns_aux = True

    with pytest.raises(TypeError, match="sets returns_aux but returned Tensor"):
        _lit(Liar()).compute_loss(_batch())


def test_eval_averages_softmax_over_clips_and_accumulates():
    lit = _lit(Plain()).eval()
    b = _batch(N=2, nc=3)
    with torch.no_grad():
        scores = lit._scores(b)
        per_clip = lit.model(b["keypoint"].flatten(0, 1)).softmax(-1).view(2, 3, K)
    assert torch.allclose(scores, per_clip.mean(1)) and torch.allclose(scores.sum(-1), torch.ones(2))
    with pytest.raises(ValueError, match=r"\[N, num_clips, M, T, V, C\]"):
        lit._scores({**b, "keypoint": b["keypoint"][:, 0]})
    lit.on_test_epoch_start()
    with torch.no_grad():
        lit.test_metrics.update(scores, b["label"])
        lit.test_scores.update(b["index"], scores, b["label"])
    out = lit.test_metrics.compute()
    expect_top1 = (scores.argmax(-1) == b["label"]).float().mean()
    assert torch.isclose(out["top1"], expect_top1)
    assert torch.equal(lit.test_scores.compute()["scores"], scores)


def test_rng_state_travels_in_checkpoint():
    lit = _lit(Plain())
    ckpt = {}
    lit.on_save_checkpoint(ckpt)
    expected = torch.rand(5)  # the draws a resumed run must repeat
    torch.rand(7)  # the process moves on (or dies)
    lit2 = _lit(Plain())
    lit2.on_load_checkpoint(ckpt)

    class _T:  # the only trainer attribute on_train_start reads
        global_rank = 0

    lit2._trainer = _T()
    lit2.on_train_start()
    assert torch.equal(torch.rand(5), expected)


class WithLabel(Plain):
    """Records the labels it is given (the class-aware contrastive model's contract)."""

    needs_label = True
    returns_aux = True

    def forward(self, x, label=None):
        self.seen_label = label
        return super().forward(x), {}


def test_label_reaches_models_that_need_it_in_training_only():
    lit = _lit(WithLabel())
    b = _batch()
    lit.compute_loss(b)
    assert lit.model.seen_label.tolist() == [1, 1, 1, 3, 3, 3]  # one label per clip
    lit.model.seen_label = "untouched"
    lit._scores(b)
    assert lit.model.seen_label is None  # evaluation never passes labels
    plain = _lit(Plain())
    plain.compute_loss(b)  # a model without needs_label is called without label= (TypeError otherwise)


def test_rgb_input_key():
    class RGB(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, K)

        def forward(self, x):  # [B, T, 3, H, W]
            return self.fc(x.mean((1, 3, 4)))

    lit = LitRecognizer(RGB(), num_classes=K, layout="coco17", in_channels=3, optim={"lr": 0.1}, input_key="imgs")
    b = {"imgs": torch.rand(2, 2, 4, 3, 8, 8), "label": torch.tensor([0, 2]), "index": torch.arange(2),
         "frame_dir": ["a", "b"]}
    loss, _ = lit.compute_loss(b)
    assert torch.isfinite(loss)
    assert lit._scores(b).shape == (2, K)
    with pytest.raises(KeyError, match="no 'imgs'"):
        lit.compute_loss(_batch())
    with pytest.raises(ValueError, match=r"\[N, num_clips, T, 3, H, W\]"):
        lit.compute_loss({**b, "imgs": torch.rand(2, 4, 3, 8, 8)})
