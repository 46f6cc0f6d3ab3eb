"""Sparse ST-GCN: exact sparsity, masks applied in training and in the fused path, optimiser steps keep pruned
weights at zero, RigL prune-and-regrow driven by on_train_step, ERK densities, schedule, serialisation, errors."""

from __future__ import annotations

import copy
import io
import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from finetec.models import create_model, list_models
from finetec.models.backbones.common import UnitGCN, UnitTCN
from finetec.models.backbones.sparse_stgcn import SparseSTGCN, drop_fraction_schedule, erk_densities
from model_helpers import check_shapes_grads_and_fused_eval, randomize


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return create_model("sparse_stgcn", num_classes=5, layout="coco17", width="slim", **kw)


def _x(N=2, M=2, T=12, seed=1):
    return torch.randn(N, M, T, 17, 3, generator=torch.Generator().manual_seed(seed))


def _params(model):
    """(qualified name, orig, mask) of every masked weight."""
    return [(q, o._parameters[f"{n}_orig"], o._buffers[f"{n}_mask"]) for q, o, n in model.masked_weights()]


def _total_sparsity(model):
    z = sum(int((~m).sum()) for _, _, m in _params(model))
    return z / sum(m.numel() for _, _, m in _params(model))


def test_registered_and_masks_cover_gcn_and_tcn_convs():
    assert "sparse_stgcn" in list_models()
    model = _model()
    assert isinstance(model, SparseSTGCN) and model.needs_mask is False and model.returns_aux is False
    names = [q for q, _, _ in _params(model)]
    n_blocks = len(model.backbone.blocks)
    assert sum(q.endswith("gcn.weight") for q in names) == n_blocks
    assert sum(q.endswith("tcn.conv.weight") for q in names) == n_blocks
    assert sum(q.endswith("residual.conv.weight") for q in names) == 2  # the two strided residuals of slim
    # every conv weight of the units is masked; nothing else is
    for m in model.backbone.modules():
        if isinstance(m, UnitGCN):
            assert "weight" not in m._parameters and m.weight_mask.dtype == torch.bool
        if isinstance(m, UnitTCN):
            assert "weight" not in m.conv._parameters and m.conv.weight_mask.shape == m.conv.weight_orig.shape
    assert "weight" in model.head.fc._parameters and "weight" in model.backbone.data_bn.bn._parameters
    assert all(p.requires_grad for p in model.parameters())


def test_shapes_gradients_and_fused_eval():
    check_shapes_grads_and_fused_eval("sparse_stgcn", "coco17", 3, 2)


@pytest.mark.parametrize("mask_init", ["erk", "uniform"])
@pytest.mark.parametrize("sparsity", [0.6, 0.9])
def test_sparsity_is_exact_after_init(mask_init, sparsity):
    model = _model(sparsity=sparsity, mask_init=mask_init)
    assert _total_sparsity(model) == pytest.approx(sparsity, abs=1e-5)
    assert model.sparsity_stats()["total"] == pytest.approx(sparsity, abs=1e-5)
    per_layer = {q: float((~m).float().mean()) for q, _, m in _params(model)}
    if mask_init == "uniform":
        assert all(abs(s - sparsity) < 0.01 for s in per_layer.values())
    else:  # ERK: the small GCN mixings stay denser than the large temporal convolutions
        assert per_layer["backbone.blocks.5.gcn.weight"] < per_layer["backbone.blocks.5.tcn.conv.weight"]
    # the stored weights of pruned connections are zero; the masks differ between layers and seeds
    assert all((o[~m] == 0).all() for _, o, m in _params(model))
    other = _model(seed=1, sparsity=sparsity, mask_init=mask_init)
    assert not torch.equal(_params(model)[-1][2], _params(other)[-1][2])


def test_masks_are_applied_in_forward_and_backward():
    model = _model()
    x = _x()
    out = model(x)
    F.cross_entropy(out, torch.tensor([0, 3])).backward()
    for q, o, m in _params(model):
        assert (o.grad[~m] == 0).all(), q  # no gradient through pruned connections
        assert o.grad[m].abs().sum() > 0, q
    owner = model.backbone.blocks[2].tcn.conv
    assert (owner.weight[~owner.weight_mask] == 0).all()  # the attribute used by the convolution is masked
    assert owner.weight_dense_grad.shape == owner.weight_orig.shape  # RigL's criterion is kept
    assert owner.weight_dense_grad[~owner.weight_mask].abs().sum() > 0
    # changing pruned entries of the stored weights does not change the output; changing kept ones does
    model.eval()
    with torch.no_grad():
        ref = model(x)
        for _, o, m in _params(model):
            o.add_(torch.randn_like(o) * (~m))
        assert torch.allclose(model(x), ref)
        _params(model)[3][1].add_(_params(model)[3][2].float())
        assert not torch.allclose(model(x), ref)


def test_pruned_weights_stay_zero_after_optimizer_steps():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    before = [o.detach().clone() for _, o, _ in _params(model)]
    for step in range(1, 4):
        opt.zero_grad()
        F.cross_entropy(model(_x(seed=step)), torch.tensor([1, 2])).backward()
        opt.step()
        for q, o, m in _params(model):
            assert (o[~m] == 0).all(), q  # zero gradient, zero decay, zero momentum on pruned entries
        assert model.on_train_step(step, 1000) == 0  # no mask update before update_interval
    for (q, o, m), b in zip(_params(model), before):
        assert not torch.equal(o[m], b[m]), q
    assert _total_sparsity(model) == pytest.approx(0.6, abs=1e-5)


def test_prune_and_regrow_rigl():
    model = _model()
    F.cross_entropy(model(_x()), torch.tensor([0, 4])).backward()
    old = [(q, o.detach().clone(), m.clone()) for q, o, m in _params(model)]
    grads = [o_.__dict__[f"{n}_dense_grad"].clone() for _, o_, n in model.masked_weights()]
    for step in (0, 50, 101, 800):  # not an update step, or past update_end * total_steps = 750
        assert model.on_train_step(step, 1000) == 0
    assert all(torch.equal(m, m0) for (_, _, m), (_, _, m0) in zip(_params(model), old))
    grown = model.on_train_step(100, 1000)
    frac = drop_fraction_schedule(100, 750, 0.3)
    assert _total_sparsity(model) == pytest.approx(0.6, abs=1e-5)
    total_drop = total_new = 0
    for (q, o, m), (_, o0, m0), g in zip(_params(model), old, grads):
        assert int(m.sum()) == int(m0.sum()), q  # per-layer density kept
        n_drop = int(frac * int(m0.sum()))
        total_drop += n_drop
        # drop: the n_drop active weights of smallest magnitude
        score = torch.where(m0, o0.abs(), torch.full_like(o0, math.inf)).flatten()
        drop = torch.zeros(m0.numel(), dtype=torch.bool)
        drop[score.argsort()[:n_drop]] = True
        drop = drop.view(m0.shape)
        after_drop = m0 & ~drop
        # grow: n_drop connections inactive after the drop with the largest dense gradient
        grow = m & ~after_drop
        assert int(grow.sum()) == n_drop and (m | ~after_drop).all(), q
        rest = ~after_drop & ~grow
        if n_drop and rest.any():
            assert g[grow].abs().min() >= g[rest].abs().max(), q
        # newly activated connections start at zero; active ones (even dropped and grown again) keep their value
        fresh = m & ~m0
        total_new += int(fresh.sum())
        assert (o[fresh] == 0).all() and (o[~m] == 0).all(), q
        assert torch.equal(o[m & m0], o0[m & m0]), q
    assert grown == total_new > 0 and total_drop > total_new


def test_random_regrow_and_fused_path_after_update():
    model = _model(regrow="random", update_interval=5)
    randomize(model)
    model.apply_masks()
    x = _x(N=3, M=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step in range(1, 6):
        opt.zero_grad()
        F.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
        opt.step()
        grown = model.on_train_step(step, 20)
    assert grown > 0 and _total_sparsity(model) == pytest.approx(0.6, abs=1e-5)
    model.eval()
    with torch.inference_mode():
        plain = model(x)
        model.fuse_for_inference()
        fused = model(x)
    assert torch.allclose(fused, plain, atol=1e-4 * plain.abs().max().item() + 1e-5, rtol=1e-4)
    # the fused caches follow a later mask update
    model.train()
    model.update_masks(0.5)
    model.eval()
    with torch.inference_mode():
        fused2 = model(x)
        plain2 = model.fuse_for_inference(False)(x)
    assert not torch.allclose(plain2, plain)
    assert torch.allclose(fused2, plain2, atol=1e-4 * plain2.abs().max().item() + 1e-5, rtol=1e-4)


def test_state_dict_roundtrip_and_serialisation():
    model = _model()
    randomize(model)
    model.apply_masks()
    x = _x()
    model(x).sum().backward()  # leaves masked-weight attributes and dense gradients behind
    keys = model.state_dict().keys()
    assert "backbone.blocks.0.gcn.weight_orig" in keys and "backbone.blocks.0.gcn.weight_mask" in keys
    assert "backbone.blocks.0.gcn.weight" not in keys
    other = _model(seed=5)
    other.load_state_dict(model.state_dict(), strict=True)
    model.eval(), other.eval()
    with torch.no_grad():
        ref = model(x)
        assert torch.allclose(other(x), ref)
        assert torch.allclose(copy.deepcopy(model)(x), ref)
        assert torch.allclose(pickle.loads(pickle.dumps(model))(x), ref)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf, weights_only=True))


def test_bf16_autocast():
    model = _model()
    x = _x(N=4, M=1)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        out.float().logsumexp(-1).mean().backward()
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
    assert all(o.grad is not None and (o.grad[~m] == 0).all() for _, o, m in _params(model))


def test_erk_densities_and_schedule_by_hand():
    # raw sum/prod: 20/100 and 4/4; eps = 52/24 makes the second layer dense, then eps = 48/20
    assert erk_densities([(10, 10), (2, 2)], 0.5) == pytest.approx([0.48, 1.0])
    d = erk_densities([(64, 32, 9, 1), (96, 32), (128, 64, 9, 1)], 0.4)
    sizes = [64 * 32 * 9, 96 * 32, 128 * 64 * 9]
    assert sum(di * n for di, n in zip(d, sizes)) == pytest.approx(0.4 * sum(sizes))
    assert erk_densities([(4, 4)], 1.0) == [1.0]
    assert drop_fraction_schedule(0, 750, 0.3) == pytest.approx(0.3)
    assert drop_fraction_schedule(375, 750, 0.3) == pytest.approx(0.15)
    assert drop_fraction_schedule(750, 750, 0.3) == 0.0
    assert drop_fraction_schedule(700, 750, 0.3) == pytest.approx(0.15 * (1 + math.cos(math.pi * 700 / 750)))


def test_bad_options():
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        _model(sparsity=1.0)
    with pytest.raises(ValueError, match="mask_init"):
        _model(mask_init="lottery")
    with pytest.raises(ValueError, match="regrow"):
        _model(regrow="momentum")
    with pytest.raises(ValueError, match="update_interval"):
        _model(update_interval=0)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['sparsity_level'\]"):
        _model(sparsity_level=0.5)
    with pytest.raises(ValueError, match="step >= 0"):
        _model().on_train_step(-1, 10)
    # ST-GCN options pass through
    model = _model(tcn_type="mstcn", gcn_with_res=True)
    assert any(q.endswith("transform.weight") for q, _, _ in _params(model))
    assert any(q.endswith("gcn.down.weight") for q, _, _ in _params(model))
    assert _total_sparsity(model) == pytest.approx(0.6, abs=1e-5)
    assert model(_x(M=1)).shape == (2, 5)
