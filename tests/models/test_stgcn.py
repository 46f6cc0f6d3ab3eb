"""ST-GCN: shapes on several layouts, PYSKL equivalence of the units, gradients, bf16, fused eval, size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize
from finetec.models.backbones.common import DataBN, UnitGCN, UnitTCN, stage_plan


def ref_unit_gcn(m: UnitGCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    """PYSKL ``unit_gcn`` (conv_pos='pre'), written the straightforward way on [N, C, T, V]."""
    n, _, t, v = x.shape
    A = m.effective_A()
    z = F.conv2d(x, m.weight[:, :, None, None], m.bias).view(n, m.num_subsets, -1, t, v)
    y = bn_ref(m.bn, torch.einsum("nkctv,kvw->nctw", z, A), training)
    if m.with_res:
        y = y + (bn_ref(m.down_bn, F.conv2d(x, m.down.weight[:, :, None, None], m.down.bias), training)
                 if m.down is not None else x)
    return F.relu(y)


@pytest.mark.parametrize("adaptive", [None, "importance", "offset", "init"])
@pytest.mark.parametrize("cin,cout,order", [(3, 8, "auto"), (8, 8, "pre"), (8, 8, "post"), (6, 16, "pre")])
@pytest.mark.parametrize("with_res", [False, True])
def test_unit_gcn_equals_pyskl(adaptive, cin, cout, order, with_res):
    torch.manual_seed(0)
    A = torch.from_numpy(get_layout("coco17").adjacency("spatial"))
    m = UnitGCN(cin, cout, A, adaptive=adaptive, with_res=with_res, order=order)
    randomize(m)
    x = torch.randn(3, cin, 7, 17)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_unit_gcn(m, x, training), atol=1e-5, rtol=1e-4)


def test_unit_tcn_equals_conv_bn_and_accepts_any_memory_format():
    torch.manual_seed(0)
    m = UnitTCN(8, 8, 9, stride=2)
    randomize(m)
    x = torch.randn(2, 8, 11, 5)
    for training in (True, False):
        m.train(training)
        ref = bn_ref(m.bn, m.conv(x), training)
        assert torch.allclose(m(x), ref, atol=1e-5)
        assert torch.allclose(m(x.contiguous(memory_format=torch.channels_last)), ref, atol=1e-5)
    assert m(x).shape == (2, 8, 6, 5)


def test_block_and_backbone_equal_pyskl_composition():
    """Whole ST-GCN (slim) against data BN + relu(tcn(gcn(x)) + res(x)) with the reference units."""
    torch.manual_seed(0)
    model = create_model("stgcn", num_classes=5, layout="penn13", width="slim")
    randomize(model)
    model.eval()
    x = torch.randn(2, 2, 12, 13, 3)
    N, M, T, V, C = x.shape
    bn = model.backbone.data_bn.bn
    h = bn_ref(bn, x.permute(0, 1, 3, 4, 2).reshape(N * M, V * C, T), False)
    h = h.view(N * M, V, C, T).permute(0, 2, 3, 1)
    for blk in model.backbone.blocks:
        y = bn_ref(blk.tcn.bn, blk.tcn.conv(ref_unit_gcn(blk.gcn, h, False)), False)
        if blk.res_mode == "identity":
            y = y + h
        elif blk.res_mode == "module":
            y = y + bn_ref(blk.residual.bn, blk.residual.conv(h), False)
        h = F.relu(y)
    logits = model.head.fc(h.mean((2, 3)).view(N, M, -1).mean(1))
    with torch.no_grad():
        assert torch.allclose(model(x), logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout,C", [("coco17", 3), ("penn13", 2), ("nturgbd25", 3), ("coco17", 6)])
@pytest.mark.parametrize("M", [1, 2])
def test_shapes_on_layouts(layout, C, M):
    V = get_layout(layout).num_joints
    model = create_model("stgcn", num_classes=7, layout=layout, in_channels=C, width="slim")
    x = torch.randn(2, M, 10, V, C)
    assert model(x).shape == (2, 7)
    assert model.extract_features(x).shape == (2, M, 128, 3, V)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = create_model("stgcn", num_classes=4, layout="coco17", width="slim", dropout=0.2, tcn_dropout=0.1)
    x = torch.randn(3, 2, 8, 17, 3)
    F.cross_entropy(model(x), torch.tensor([0, 1, 3])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if not name.endswith("PA"):  # importance weights of absent edges get no gradient, as in PYSKL
            assert p.grad.abs().sum() > 0, name


def test_bf16_autocast_trains_and_matches_fp32():
    torch.manual_seed(0)
    model = create_model("stgcn", num_classes=4, layout="coco17", width="slim")
    x = torch.randn(4, 1, 12, 17, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = out.float().logsumexp(-1).mean()
    loss.backward()
    assert out.dtype == torch.bfloat16
    assert all(p.grad is not None for p in model.parameters())
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)


@pytest.mark.parametrize("M", [1, 2])
def test_fused_inference_equals_eval(M):
    torch.manual_seed(0)
    model = create_model("stgcn", num_classes=6, layout="coco17", width="slim")
    randomize(model)
    model.eval()
    x = torch.randn(3, M, 16, 17, 3)
    with torch.inference_mode():
        plain = model(x)
        model.fuse_for_inference()
        fused = model(x)
        fused1 = model(x[:1])
    assert torch.allclose(fused, plain, atol=1e-4, rtol=1e-4)
    assert torch.allclose(fused1, plain[:1], atol=1e-4, rtol=1e-4)
    # folded weights follow parameter changes; training and autograd never use them
    with torch.no_grad():
        model.backbone.blocks[1].tcn.bn.weight.mul_(2)
        plain2 = model.fuse_for_inference(False)(x)
        fused2 = model.fuse_for_inference()(x)
    assert not torch.allclose(plain2, plain)
    assert torch.allclose(fused2, plain2, atol=1e-4, rtol=1e-4)
    model.train()
    out = model(x)
    out.sum().backward()
    assert model.backbone.blocks[0].gcn.weight.grad is not None


def test_parameter_count_matches_pyskl():
    # PYSKL's ST-GCN on coco17 with 60 classes: 3,088,704 parameters ("3.1M")
    model = create_model("stgcn", num_classes=60, layout="coco17", in_channels=3)
    assert model.num_parameters() == 3_088_704
    slim = create_model("stgcn", num_classes=60, layout="coco17", width="slim")
    assert 100_000 < slim.num_parameters() < 700_000


def test_stage_plan_is_pyskl_schedule():
    plan = stage_plan(3, 64, 10, (5, 8), (5, 8))
    assert [p[1] for p in plan] == [64, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    assert [p[2] for p in plan] == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert [p[3] for p in plan] == [False] + [True] * 9
    with pytest.raises(ValueError, match="outside"):
        stage_plan(3, 64, 4, (5,), (5,))


def test_data_bn_modes():
    x = torch.randn(2, 2, 5, 17, 3)
    assert DataBN(3, 17, "MVC", num_person=2)(x).shape == (4, 5, 17, 3)
    with pytest.raises(ValueError, match="num_person=3 .* M=2"):
        DataBN(3, 17, "MVC", num_person=3)(x)
    with pytest.raises(ValueError, match="data_bn_type"):
        DataBN(3, 17, "NVC")
    model = create_model("stgcn", num_classes=3, width="slim", data_bn_type="MVC", num_person=2)
    assert model(x).shape == (2, 3)
    assert torch.equal(DataBN(3, 17, None)(x), x.reshape(4, 5, 17, 3))


def test_conv2d_helper_matches_f_conv2d_with_and_without_packing(monkeypatch):
    from finetec.models.backbones import common

    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, 10, 5, generator=g).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(4, 6, 3, 1, generator=g), torch.randn(4, generator=g)
    ref = F.conv2d(x, w, b, (2, 1), (2, 0), (2, 1))
    cache: dict = {}
    with torch.inference_mode():
        for pack in (None, False):  # None: probe and use pre-packed weights if this build supports them
            monkeypatch.setattr(common, "_PACK_OK", pack)
            for _ in range(2):  # second call hits the cache
                out = common.conv2d(x, w, b, (2, 1), (2, 0), (2, 1), cache=cache)
                assert torch.allclose(out, ref, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = common.conv2d(x, w, b, (2, 1), (2, 0), (2, 1), cache=cache)
        assert out.dtype == torch.bfloat16 and torch.allclose(out.float(), ref, atol=0.1)
    # with autograd it is plain F.conv2d and differentiable
    wg = w.clone().requires_grad_()
    common.conv2d(x, wg, b, (2, 1), (2, 0), (2, 1)).sum().backward()
    assert wg.grad is not None


def test_fused_paths_without_packing_and_in_bf16(monkeypatch):
    from finetec.models.backbones import common

    torch.manual_seed(0)
    model = create_model("stgcn", num_classes=6, layout="coco17", width="slim")
    randomize(model)
    model.eval()
    x = torch.randn(2, 1, 16, 17, 3)
    with torch.inference_mode():
        plain = model(x)
        monkeypatch.setattr(common, "_PACK_OK", False)
        model.fuse_for_inference()
        assert torch.allclose(model(x), plain, atol=1e-4, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused_bf16 = model(x)
            plain_bf16 = model.fuse_for_inference(False)(x)
    assert fused_bf16.dtype == torch.bfloat16
    tol = 0.05 * plain.abs().max().item() + 1e-3
    assert torch.allclose(fused_bf16.float(), plain, atol=tol)
    assert torch.allclose(plain_bf16.float(), plain, atol=tol)


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    a = create_model("stgcn", num_classes=3, layout="coco17", width="slim")
    randomize(a)
    path = tmp_path / "w.pt"
    torch.save(a.state_dict(), path)
    torch.manual_seed(1)
    b = create_model("stgcn", num_classes=3, layout="coco17", width="slim")
    b.load_state_dict(torch.load(path, weights_only=True))
    a.eval(), b.eval()
    x = torch.randn(2, 1, 8, 17, 3)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    conv = b.backbone.blocks[1].tcn.conv
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_fused_model_can_be_copied_and_pickled(tmp_path):
    import copy

    torch.manual_seed(0)
    model = create_model("stgcnpp", num_classes=3, layout="coco17", width="slim")
    randomize(model)
    model.eval().fuse_for_inference()
    x = torch.randn(1, 1, 8, 17, 3)
    with torch.inference_mode():
        ref = model(x)  # fills the caches
        twin = copy.deepcopy(model)
        assert torch.allclose(twin(x), ref, atol=1e-5)
    torch.save(model, tmp_path / "m.pt")  # whole-module pickling (not the recommended state_dict) still works
