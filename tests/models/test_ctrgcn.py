"""CTR-GCN: CTR-GC unit and its multi-scale TCN against PYSKL's per-partition / per-branch code, shapes, fused eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize
from finetec.models.backbones.ctrgcn import CTRMSTCN, UnitCTRGCN


def _bn_slice(bn, y, sl, training):
    return F.batch_norm(y, bn.running_mean[sl].clone(), bn.running_var[sl].clone(), bn.weight[sl], bn.bias[sl],
                        training, 0.0, bn.eps)


def ref_unit_ctrgcn(m: UnitCTRGCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    """PYSKL ``unit_ctrgcn`` / ``CTRGC`` with the fused parameters split back per partition."""
    K, R, O, C = m.num_subsets, m.rel_channels, m.out_channels, m.in_channels
    w12, b12 = m.weight12.view(2, K, R, C), m.bias12.view(2, K, R)
    w3, b3 = m.weight3.view(K, O, C), m.bias3.view(K, O)
    y = 0
    for i in range(K):
        x1 = F.conv2d(x, w12[0, i][:, :, None, None], b12[0, i]).mean(-2)
        x2 = F.conv2d(x, w12[1, i][:, :, None, None], b12[1, i]).mean(-2)
        x3 = F.conv2d(x, w3[i][:, :, None, None], b3[i])
        g = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        g = F.conv2d(g, m.weight4[i][:, :, None, None], m.bias4[i]) * m.alpha + m.A[i][None, None]
        y = y + torch.einsum("ncuv,nctu->nctv", g, x3)
    res = bn_ref(m.down_bn, m.down(x), training) if m.down is not None else x
    return F.relu(bn_ref(m.bn, y, training) + res)


def ref_ctr_mstcn(m: CTRMSTCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    bc, s = m.branch_channels, m.stride
    outs = []
    for i in range(len(m.tconvs) + 1):
        sl = slice(i * bc, (i + 1) * bc)
        h = F.conv2d(x, m.pre.weight[sl], m.pre.bias[sl])
        h = F.relu(_bn_slice(m.pre_bn, h, sl, training))
        h = m.tconvs[i](h) if i < len(m.tconvs) else F.max_pool2d(h, (3, 1), (s, 1), (1, 0))
        outs.append(_bn_slice(m.post_bn, h, sl, training))
    sl = slice((len(m.tconvs) + 1) * bc, m.out_channels)
    outs.append(_bn_slice(m.post_bn, F.conv2d(x, m.pre1.weight, m.pre1.bias, stride=(s, 1)), sl, training))
    return F.relu(torch.cat(outs, 1))


@pytest.mark.parametrize("cin,cout", [(3, 16), (16, 16), (32, 64)])
def test_unit_ctrgcn_equals_pyskl(cin, cout):
    torch.manual_seed(0)
    A = torch.from_numpy(get_layout("coco17").adjacency("spatial"))
    m = UnitCTRGCN(cin, cout, A)
    randomize(m)
    assert m.rel_channels == (8 if cin <= 16 else cin // 8)
    x = torch.randn(2, cin, 6, 17)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_unit_ctrgcn(m, x, training), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cin,cout,stride", [(16, 16, 1), (16, 32, 2), (24, 24, 1)])
def test_ctr_mstcn_equals_pyskl(cin, cout, stride):
    torch.manual_seed(0)
    m = CTRMSTCN(cin, cout, stride=stride)
    randomize(m)
    x = torch.randn(2, cin, 9, 17)
    for training in (True, False):
        m.train(training)
        out = m(x)
        assert out.shape == (2, cout, (9 - 1) // stride + 1, 17)
        assert torch.allclose(out, ref_ctr_mstcn(m, x, training), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 1), ("penn13", 2, 2), ("nturgbd25", 3, 2), ("coco17", 6, 1)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("ctrgcn", layout, C, M)


def test_pyskl_initialisation_and_size():
    model = create_model("ctrgcn", num_classes=60, layout="coco17")
    gcn = model.backbone.blocks[2].gcn
    assert float(gcn.alpha) == 0.0 and float(gcn.bn.weight[0]) == pytest.approx(1e-6)
    assert isinstance(gcn.A, torch.nn.Parameter)
    assert model.num_parameters() == 1_436_394  # PYSKL's CTR-GCN: 1.43M


def test_bf16_autocast():
    torch.manual_seed(0)
    model = create_model("ctrgcn", num_classes=4, layout="coco17", width="slim")
    randomize(model, scale=0.05)
    x = torch.randn(2, 1, 12, 17, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
