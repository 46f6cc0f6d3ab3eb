"""AAGCN: the graph unit against PYSKL's per-partition loop (adaptive graph + STC attention), shapes, fused eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize
from finetec.models.backbones.aagcn import UnitAAGCN


def ref_unit_aagcn(m: UnitAAGCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    """PYSKL ``unit_aagcn.forward`` with the fused parameters split back per partition."""
    N, C, T, V = x.shape
    K, I, O = m.num_subsets, m.inter_c, m.out_channels
    wd = m.weight_d.view(O, K, C)
    y = 0
    for i in range(K):
        if m.adaptive:
            wab, bab = m.weight_ab.view(2, K, I, C), m.bias_ab.view(2, K, I)
            a1 = F.conv2d(x, wab[0, i][:, :, None, None], bab[0, i]).permute(0, 3, 1, 2).reshape(N, V, I * T)
            a2 = F.conv2d(x, wab[1, i][:, :, None, None], bab[1, i]).view(N, I * T, V)
            adj = m.A[i] + torch.tanh(torch.matmul(a1, a2) / a1.size(-1)) * m.alpha
        else:
            adj = m.A[i]
        z = torch.matmul(x.reshape(N, C * T, V), adj).view(N, C, T, V)
        y = y + F.conv2d(z, wd[:, i][:, :, None, None], m.bias_d if i == 0 else None)
    res = bn_ref(m.down_bn, F.conv2d(x, m.down.weight[:, :, None, None], m.down.bias), training) if m.down else x
    y = F.relu(bn_ref(m.bn, y, training) + res)
    if m.attention:
        s = torch.sigmoid(m.conv_sa(y.mean(-2)))
        y = y * s.unsqueeze(-2) + y
        s = torch.sigmoid(m.conv_ta(y.mean(-1)))
        y = y * s.unsqueeze(-1) + y
        s = torch.sigmoid(m.fc2c(F.relu(m.fc1c(y.mean(-1).mean(-1)))))
        y = y * s.unsqueeze(-1).unsqueeze(-1) + y
    return y


@pytest.mark.parametrize("layout", ["coco17", "openpose18"])  # odd and even V (spatial attention kernel)
@pytest.mark.parametrize("cin,cout", [(3, 16), (16, 16)])
@pytest.mark.parametrize("adaptive,attention", [(True, True), (False, True), (True, False)])
def test_unit_aagcn_equals_pyskl(layout, cin, cout, adaptive, attention):
    torch.manual_seed(0)
    A = torch.from_numpy(get_layout(layout).adjacency("spatial"))
    m = UnitAAGCN(cin, cout, A, adaptive=adaptive, attention=attention)
    randomize(m)
    x = torch.randn(2, cin, 6, A.shape[-1])
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_unit_aagcn(m, x, training), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 1), ("penn13", 2, 2), ("nturgbd25", 3, 2), ("coco17", 6, 2)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("aagcn", layout, C, M)


def test_pyskl_initialisation_and_size():
    model = create_model("aagcn", num_classes=60, layout="coco17")
    gcn = model.backbone.blocks[2].gcn
    assert float(gcn.alpha) == 0.0 and float(gcn.bn.weight[0]) == pytest.approx(1e-6)
    assert torch.all(gcn.conv_ta.weight == 0) and torch.all(gcn.fc2c.weight == 0)
    # PYSKL's AAGCN has K separate conv_d biases per unit (summed); here one: 3.76M vs 3.76M + 2*sum(O)
    assert model.num_parameters() == 3_757_310


def test_bf16_autocast():
    torch.manual_seed(0)
    model = create_model("aagcn", num_classes=4, layout="coco17", width="slim")
    randomize(model, scale=0.05)
    x = torch.randn(2, 1, 12, 17, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
