"""Class-aware contrastive learning (multimodal paper Sec. 3.3): FIFO memory bank, Eq. 10, the four negative
sampling strategies of Table 5 on hand-made banks, InfoNCE (Eq. 12) by hand, and the ``ctrgcn_cl`` recognizer."""

from __future__ import annotations

import math

import pytest
import torch

from finetec.models.multimodal.contrastive import (CTRGCNContrastive, MemoryBank, class_mean_similarity, info_nce,
                                                   sample_negatives, sample_positives)
from finetec.models import create_model
from finetec.models.recognizer import Recognizer


def unit(*degrees: float) -> torch.Tensor:
    a = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    return torch.stack([a.cos(), a.sin()], 1).float()


# ---------------------------------------------------------------------------------------------------- memory bank
def test_memory_bank_fifo_wraps_and_keeps_the_last_rows_of_an_oversize_batch():
    bank = MemoryBank(5, 2)
    assert bank.labels.tolist() == [-1] * 5 and int(bank.ptr) == 0 and not bank.valid.any()
    a = torch.tensor([[3.0, 4.0], [0.0, 2.0], [-1.0, 0.0]], requires_grad=True)
    bank.enqueue(a, torch.tensor([0, 1, 2]))
    assert bank.labels.tolist() == [0, 1, 2, -1, -1] and int(bank.ptr) == 3
    assert bank.valid.tolist() == [True, True, True, False, False]
    assert torch.allclose(bank.features[:3], torch.tensor([[0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]]))  # normalised
    assert not bank.features.requires_grad and torch.equal(bank.features[3:], torch.zeros(2, 2))
    bank.enqueue(unit(10, 20, 30), torch.tensor([3, 4, 5]))  # slots 3, 4, then wraps to 0
    assert bank.labels.tolist() == [5, 1, 2, 3, 4] and int(bank.ptr) == 1
    assert torch.allclose(bank.features[[3, 4, 0]], unit(10, 20, 30), atol=1e-6)
    assert torch.allclose(bank.features[1], torch.tensor([0.0, 1.0]))
    assert bank.age().tolist() == [0, 4, 3, 2, 1]  # slot 0 is the newest
    # 7 rows into 5 slots from ptr 1: as if written one by one (rows 10, 11 overwritten by 15, 16)
    bank.enqueue(unit(*range(100, 170, 10)), torch.arange(10, 17))
    assert bank.labels.tolist() == [14, 15, 16, 12, 13] and int(bank.ptr) == 3
    assert torch.allclose(bank.features[[3, 4, 0, 1, 2]], unit(120, 130, 140, 150, 160), atol=1e-6)
    sd = bank.state_dict()
    assert set(sd) == {"features", "labels", "ptr"}
    other = MemoryBank(5, 2)
    other.load_state_dict(sd)
    assert torch.equal(other.labels, bank.labels) and int(other.ptr) == 3


def test_memory_bank_errors():
    bank = MemoryBank(4, 3)
    with pytest.raises(ValueError, match=r"features must be \[\*, 3\]"):
        bank.enqueue(torch.zeros(2, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be \[2\]"):
        bank.enqueue(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        bank.enqueue(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="size and dim"):
        MemoryBank(0, 3)


# ---------------------------------------------------------------------------------------------------- Eq. 10
def test_class_mean_similarity_by_hand():
    # class 0 at 0 and 90 deg, class 1 at 60 and 120, class 2 at 180 (scaled: cosine, not dot), class 3 empty;
    # an empty slot (-1) at 0 deg is ignored
    bank = torch.cat([unit(0, 90, 60, 120), 3 * unit(180), unit(0)])
    labels = torch.tensor([0, 0, 1, 1, 2, -1])
    anchors = torch.cat([unit(0), 2 * unit(90)])
    h = class_mean_similarity(anchors, bank, labels, 4)
    s = math.sin(math.radians(60))
    expected = torch.tensor([[0.5, 0.0, -1.0], [0.5, s, 0.0]])
    assert h.shape == (2, 4) and h.dtype == torch.float32
    assert torch.allclose(h[:, :3], expected, atol=1e-6)
    assert torch.isinf(h[:, 3]).all() and (h[:, 3] < 0).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.allclose(class_mean_similarity(anchors, bank, labels, 4)[:, :3], expected, atol=1e-6)
    with pytest.raises(ValueError, match="bank_labels"):
        class_mean_similarity(anchors, bank, torch.tensor([0, 0, 1, 1, 4, -1]), 4)


# ---------------------------------------------------------------------------------------------------- sampling
# slot: 0    1    2   3    4    5      6    7    8   9
# class 3    2    0   1    2    empty  1    2    0   3
# angle 150  35   0   60   10   12     30   20   5   170
BANK_ANGLES = (150, 35, 0, 60, 10, 12, 30, 20, 5, 170)
BANK_LABELS = torch.tensor([3, 2, 0, 1, 2, -1, 1, 2, 0, 3])
CANDIDATES_OF_0 = {0, 1, 3, 4, 6, 7, 9}  # different label, not empty


def _neg(strategy, nc, anchors=(0,), labels=(0,), generator=None):
    idx, valid = sample_negatives(unit(*anchors), torch.tensor(labels), unit(*BANK_ANGLES), BANK_LABELS, nc,
                                  strategy, 4, generator)
    assert idx.shape == valid.shape == (len(anchors), nc) and idx.dtype == torch.long and valid.dtype == torch.bool
    return idx, valid


def test_class_aware_takes_the_most_similar_classes_first():
    # anchor at 0 deg, class 0: h_2 = mean cos(10, 20, 35) = 0.91 > h_1 = mean cos(30, 60) = 0.68 > h_3 < 0
    idx, valid = _neg("class_aware", 3)
    assert valid.all() and idx[0].tolist() == [4, 7, 1]  # all of class 2, although class 1's 30 deg beats 35 deg
    idx, valid = _neg("class_aware", 5)
    assert valid.all() and idx[0].tolist() == [4, 7, 1, 6, 3]  # class 2 first, then class 1
    idx, valid = _neg("class_aware", 9)
    assert valid[0].tolist() == [True] * 7 + [False] * 2  # only 7 negatives exist
    assert idx[0, :7].tolist() == [4, 7, 1, 6, 3, 0, 9]  # never class 0 (slots 2, 8) or the empty slot 5
    # two anchors at once: anchor at 30 deg with label 2 ranks class 1 (0.93) above class 0 (0.89)
    idx, valid = _neg("class_aware", 4, anchors=(0, 30), labels=(0, 2))
    assert valid.all() and idx.tolist() == [[4, 7, 1, 6], [6, 3, 8, 2]]


def test_hard_takes_the_most_similar_entries_individually():
    idx, valid = _neg("hard", 3)
    assert valid.all() and idx[0].tolist() == [4, 7, 6]  # 10, 20, 30 deg (classes 2, 2, 1)
    idx, valid = _neg("hard", 8)
    assert idx[0, :7].tolist() == [4, 7, 6, 1, 3, 0, 9] and valid[0].tolist() == [True] * 7 + [False]


def test_random_draws_distinct_other_label_entries_from_the_generator():
    draws = set()
    for seed in range(6):
        idx, valid = _neg("random", 4, generator=torch.Generator().manual_seed(seed))
        assert valid.all() and set(idx[0].tolist()) <= CANDIDATES_OF_0 and len(set(idx[0].tolist())) == 4
        again, _ = _neg("random", 4, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(idx, again)
        draws.add(tuple(idx[0].tolist()))
    assert len(draws) > 1  # depends on the generator
    idx, valid = _neg("random", 9, generator=torch.Generator().manual_seed(0))
    assert valid[0].tolist() == [True] * 7 + [False] * 2 and set(idx[0, :7].tolist()) == CANDIDATES_OF_0


def test_random_plus_class_aware_halves_do_not_repeat():
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        idx, valid = _neg("random+class_aware", 5, generator=g)  # ceil(5/2) = 3 class-aware, 2 random
        assert valid.all() and idx[0, :3].tolist() == [4, 7, 1]
        assert set(idx[0, 3:].tolist()) <= {6, 3, 0, 9} and len(set(idx[0].tolist())) == 5
    idx, valid = _neg("random+class_aware", 9, generator=torch.Generator().manual_seed(0))
    assert idx[0, :5].tolist() == [4, 7, 1, 6, 3]
    assert valid[0].tolist() == [True] * 7 + [False] * 2 and set(idx[0, :7].tolist()) == CANDIDATES_OF_0
    idx, valid = _neg("random+class_aware", 1)
    assert idx.tolist() == [[4]] and valid.all()


def test_sampling_errors():
    with pytest.raises(ValueError, match="strategy"):
        _neg("semi_hard", 2)
    with pytest.raises(ValueError, match="num_negatives"):
        _neg("hard", 0)
    with pytest.raises(ValueError, match="anchor_labels"):
        _neg("hard", 2, labels=(4,))
    with pytest.raises(ValueError, match="num_classes"):
        sample_negatives(unit(0), torch.tensor([0]), unit(*BANK_ANGLES), BANK_LABELS, 2, "class_aware")


def test_positives_are_the_most_recent_same_label_entries():
    bank = MemoryBank(6, 2)
    bank.enqueue(unit(0, 10, 20, 30), torch.tensor([1, 0, 1, 1]))
    bank.enqueue(unit(40, 50, 60), torch.tensor([1, 2, 0]))  # wraps: slot 0 <- 60 deg (label 0)
    idx, valid = sample_positives(torch.tensor([1, 0, 2, 3]), bank.labels, bank.age(), 3)
    assert idx.shape == (4, 3)
    assert idx[0].tolist() == [4, 3, 2] and valid[0].all()  # newest first: 40, 30, 20 deg
    assert idx[1, :2].tolist() == [0, 1] and valid[1].tolist() == [True, True, False]
    assert valid[2].tolist() == [True, False, False] and int(idx[2, 0]) == 5
    assert not valid[3].any()


# ---------------------------------------------------------------------------------------------------- Eq. 12
def _pairs(a_deg, pos_deg, neg_deg):
    return unit(a_deg), unit(*pos_deg)[None], unit(*neg_deg)[None]


def test_info_nce_by_hand_and_masking():
    tau = 0.5
    a, p, n = _pairs(0, [60], [90, 180])  # cosines 0.5 | 0, -1
    loss = info_nce(a, p, torch.ones(1, 1, dtype=torch.bool), n, torch.ones(1, 2, dtype=torch.bool), tau)
    s_pos, s_neg = 0.5 / tau, [0.0, -1.0 / tau]
    expected = -math.log(math.exp(s_pos) / (math.exp(s_pos) + sum(math.exp(s) for s in s_neg)))
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(expected, rel=1e-6)
    # an invalid positive (0 deg) and an invalid negative (0 deg) change nothing
    _, p2, n2 = _pairs(0, [60, 0], [90, 0, 180])
    masked = info_nce(a, p2, torch.tensor([[True, False]]), n2, torch.tensor([[True, False, True]]), tau)
    assert masked.item() == pytest.approx(expected, rel=1e-6)
    # two valid positives: the mean of their two terms
    l2 = info_nce(a, p2, torch.tensor([[True, True]]), n2, torch.tensor([[True, False, True]]), tau)
    e2 = -math.log(math.exp(2.0) / (math.exp(2.0) + sum(math.exp(s) for s in s_neg)))
    assert l2.item() == pytest.approx((expected + e2) / 2, rel=1e-6)
    # a second anchor without valid positive contributes nothing; without valid negatives a pair costs 0
    aa = torch.cat([a, unit(45)])
    pp = torch.cat([p2, unit(50, 60)[None]])
    nn_ = torch.cat([n2, unit(0, 0, 0)[None]])
    both = info_nce(aa, pp, torch.tensor([[True, False], [False, False]]), nn_,
                    torch.tensor([[True, False, True], [True, True, True]]), tau)
    assert both.item() == pytest.approx(expected, rel=1e-6)
    no_neg = info_nce(aa, pp, torch.tensor([[True, False], [True, True]]), nn_,
                      torch.tensor([[True, False, True], [False, False, False]]), tau)
    assert no_neg.item() == pytest.approx(expected / 3, rel=1e-6)


def test_info_nce_zero_without_pairs_keeps_a_graph():
    a = unit(0).requires_grad_()
    _, p, n = _pairs(0, [60], [90])
    loss = info_nce(a, p, torch.zeros(1, 1, dtype=torch.bool), n, torch.ones(1, 1, dtype=torch.bool), 0.8)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(a.grad, torch.zeros_like(a))
    b = unit(0).requires_grad_()
    info_nce(b, p, torch.ones(1, 1, dtype=torch.bool), n, torch.zeros(1, 1, dtype=torch.bool), 0.8).backward()
    assert torch.isfinite(b.grad).all()  # no NaN from an all-masked logsumexp


def test_info_nce_gradient_pulls_the_positive_closer():
    a = unit(30).requires_grad_()
    _, p, n = _pairs(0, [90], [0, 20])
    ones = torch.ones(1, 1, dtype=torch.bool)
    cos_before = torch.cosine_similarity(a, p[0]).item()
    opt = torch.optim.SGD([a], lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        info_nce(a, p, ones, n, torch.ones(1, 2, dtype=torch.bool), 0.8).backward()
        opt.step()
    assert torch.cosine_similarity(a, p[0]).item() > cos_before + 0.05
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = info_nce(a.bfloat16(), p.bfloat16(), ones, n.bfloat16(), torch.ones(1, 2, dtype=torch.bool), 0.8)
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_info_nce_errors():
    a, p, n = _pairs(0, [60], [90])
    ones = torch.ones(1, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(a, p, ones, n, ones, 0.0)
    with pytest.raises(ValueError, match=r"positives must be \[1, \*, 2\]"):
        info_nce(a, p[0], ones, n, ones, 0.8)
    with pytest.raises(ValueError, match="negatives mask"):
        info_nce(a, p, ones, n, ones.float(), 0.8)


# ---------------------------------------------------------------------------------------------------- ctrgcn_cl
OPTS = dict(width="slim", bank_size=16, num_positive=4, num_negative=6, proj_dim=16)


def _model(layout="coco17", **kw):
    torch.manual_seed(0)
    return create_model("ctrgcn_cl", 3, layout, **{**OPTS, **kw})


def _batch(V=17, M=1, N=4):
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, M, 12, V, 3, generator=g), torch.tensor([0, 1, 2, 1])[:N]


def test_ctrgcn_cl_training_fills_the_bank_and_backpropagates():
    model = _model()
    assert isinstance(model, CTRGCNContrastive)
    assert model.needs_label and model.returns_aux and not model.needs_mask
    x, y = _batch()
    logits, aux = model(x, y)
    assert logits.shape == (4, 3) and aux["loss_nce"].item() == 0.0  # empty bank: no pair yet
    assert model.bank.labels[:4].tolist() == [0, 1, 2, 1] and int(model.bank.ptr) == 4
    assert not model.bank.labels[4:].ge(0).any()
    model.zero_grad()
    logits, aux = model(x + 0.1, y)
    loss = aux["loss_nce"]
    assert torch.isfinite(loss) and loss.item() > 0 and int(model.bank.ptr) == 8
    loss.backward()
    assert model.projection.fc1.weight.grad.abs().sum() > 0 and model.projection.fc2.weight.grad.abs().sum() > 0
    assert model.model.backbone.blocks[0].gcn.weight3.grad.abs().sum() > 0  # the encoder too
    assert model.model.head.fc.weight.grad is None  # L_NCE does not touch the classifier


def test_ctrgcn_cl_eval_leaves_the_bank_and_matches_inference_model():
    model = _model("penn13")
    x, y = _batch(V=13, M=2)
    model(x, y)
    state = {k: v.clone() for k, v in model.bank.state_dict().items()}
    model.eval()
    logits, aux = model(x, y)
    assert aux == {} and logits.shape == (4, 3)
    assert all(torch.equal(v, model.bank.state_dict()[k]) for k, v in state.items())
    model.train()
    _, aux = model(x)  # no labels: no loss, bank untouched
    assert aux == {} and all(torch.equal(v, model.bank.state_dict()[k]) for k, v in state.items())
    plain = model.inference_model()
    assert isinstance(plain, Recognizer) and not any("bank" in k or "projection" in k for k in plain.state_dict())
    assert plain.num_parameters() == model.model.num_parameters() < model.num_parameters()
    model.eval()
    assert torch.allclose(plain.eval()(x), model(x)[0], atol=1e-6)


def test_ctrgcn_cl_bf16_autocast_and_single_sample_batch():
    model = _model()
    x, y = _batch()
    model(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, aux = model(x, y)
    assert torch.isfinite(logits.float()).all() and aux["loss_nce"].dtype == torch.float32
    assert torch.isfinite(aux["loss_nce"]) and aux["loss_nce"].item() > 0
    aux["loss_nce"].backward()
    _, aux = model(x[:1], y[:1])  # BatchNorm of the projection falls back to its running statistics
    assert torch.isfinite(aux["loss_nce"])


def test_ctrgcn_cl_loss_weight_scales_and_checkpoint_carries_the_bank():
    x, y = _batch()
    losses = []
    for w in (1.0, 0.25):
        m = _model(loss_weight=w)
        m(x, y)
        losses.append(m(x, y)[1]["loss_nce"].item())
    assert losses[1] == pytest.approx(0.25 * losses[0], rel=1e-5)
    other = _model()
    other.load_state_dict(m.state_dict())
    assert torch.equal(other.bank.features, m.bank.features) and int(other.bank.ptr) == 8


@pytest.mark.parametrize("sampling", ["hard", "random", "random+class_aware"])
def test_ctrgcn_cl_other_strategies(sampling):
    model = _model(sampling=sampling)
    x, y = _batch()
    model(x, y)
    assert torch.isfinite(model(x, y)[1]["loss_nce"])


def test_ctrgcn_cl_errors():
    model = _model()
    x, y = _batch()
    with pytest.raises(ValueError, match=r"label must be \[4\]"):
        model(x, y[:3])
    with pytest.raises(ValueError, match=r"label must lie in \[0, 3\)"):
        model(x, torch.tensor([0, 1, 3, 1]))
    with pytest.raises(TypeError, match="integer"):
        model(x, y.float())
    with pytest.raises(ValueError, match="V=17"):
        model(torch.randn(4, 1, 12, 13, 3), y)
    with pytest.raises(TypeError, match="unknown option"):
        create_model("ctrgcn_cl", 3, "coco17", width="slim", temprature=0.5)
    with pytest.raises(ValueError, match="sampling"):
        create_model("ctrgcn_cl", 3, "coco17", width="slim", sampling="hardest")
    with pytest.raises(ValueError, match="temperature"):
        create_model("ctrgcn_cl", 3, "coco17", width="slim", temperature=0)
