"""ST-GCN++: the multi-scale TCN against PYSKL's branch-by-branch computation, shapes, fused eval, size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize
from finetec.models.backbones.common import MSTCN


def ref_mstcn(m: MSTCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    """PYSKL ``mstcn``: each branch on its own (1x1 conv -> BN -> ReLU -> dilated 3x1 conv | max-pool; strided 1x1),
    concatenated [BN'd branches, 1x1 branch], then BN -> ReLU -> 1x1 conv -> BN."""
    s = m.stride
    outs, start, conv_i = [], 0, 0
    pre_w, pre_b = m.pre.weight[:, :, None, None], m.pre.bias
    for kind, ks, d, c in m.kinds:
        sl = slice(start, start + c)
        h = F.conv2d(x, pre_w[sl], pre_b[sl])  # per-branch BN below = the slice of the joint BN
        h = F.relu(F.batch_norm(h, m.pre_bn.running_mean[sl].clone(), m.pre_bn.running_var[sl].clone(),
                         m.pre_bn.weight[sl], m.pre_bn.bias[sl], training, 0.0, m.pre_bn.eps))
        if kind == "conv":
            outs.append(m.tconvs[conv_i](h))
            conv_i += 1
        else:
            outs.append(F.max_pool2d(h, (ks, 1), (s, 1), (1, 0)))
        start += c
    outs.append(F.conv2d(x, m.pre1.weight[:, :, None, None], m.pre1.bias, stride=(s, 1)))
    feat = F.relu(bn_ref(m.transform_bn, torch.cat(outs, 1), training))
    return bn_ref(m.bn, F.conv2d(feat, m.transform.weight[:, :, None, None], m.transform.bias), training)


@pytest.mark.parametrize("cin,cout,stride", [(12, 12, 1), (12, 24, 2), (64, 64, 1)])
def test_mstcn_equals_pyskl(cin, cout, stride):
    torch.manual_seed(0)
    m = MSTCN(cin, cout, stride=stride)
    randomize(m)
    assert sum(k[3] for k in m.kinds) + m.pre1.out_features == cout
    x = torch.randn(2, cin, 9, 17)
    for training in (True, False):
        m.train(training)
        out = m(x)
        assert out.shape == (2, cout, (9 - 1) // stride + 1, 17)
        assert torch.allclose(out, ref_mstcn(m, x, training), atol=1e-5, rtol=1e-4)


def test_mstcn_rejects_bad_branch_config():
    with pytest.raises(ValueError, match="branch config"):
        MSTCN(8, 8, ms_cfg=[(3, 1), ("avg", 3)])


def test_stgcnpp_is_pyskl_configuration():
    model = create_model("stgcnpp", num_classes=60, layout="coco17")
    gcn = model.backbone.blocks[3].gcn
    assert gcn.adaptive == "init" and isinstance(gcn.A, torch.nn.Parameter) and gcn.with_res
    assert isinstance(model.backbone.blocks[3].tcn, MSTCN)
    assert model.num_parameters() == 1_393_016  # PYSKL's ST-GCN++: 1.39M


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 1), ("penn13", 2, 2), ("nturgbd25", 3, 2), ("coco17", 6, 1)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("stgcnpp", layout, C, M)


def test_bf16_autocast():
    torch.manual_seed(0)
    model = create_model("stgcnpp", num_classes=4, layout="coco17", width="slim")
    x = torch.randn(2, 1, 12, 17, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
