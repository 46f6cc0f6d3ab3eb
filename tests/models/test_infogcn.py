"""InfoGCN: SA-GC against a per-head transcription of the released code, attention properties, the k-th mode
matrix by hand, shapes / gradients / fused eval, bf16 autocast, errors, size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import finetec.models.backbones.infogcn  # noqa: F401  (registers "infogcn")
from finetec.layouts import get_layout
from finetec.models import create_model
from finetec.models.backbones.infogcn import SAGC, mode_matrix
from model_helpers import bn_ref, check_bf16_close, check_shapes_grads_and_fused_eval, randomize


def ref_sagc(m: SAGC, x: torch.Tensor, training: bool) -> torch.Tensor:
    """SA_GC of stnoah1/infogcn, written per head in [N, C, T, V] with the fused parameters split back."""
    N, C, T, V = x.shape
    H, d, O = m.heads, m.attn.hidden, m.out_channels
    y = F.layer_norm(x.permute(0, 2, 3, 1), (C,), m.attn.ln.weight, m.attn.ln.bias, m.attn.ln.eps)
    q, k = F.linear(y, m.attn.to_qk.weight, m.attn.to_qk.bias).chunk(2, dim=-1)
    q = q.reshape(N * T, V, H, d).permute(0, 2, 1, 3)
    k = k.reshape(N * T, V, H, d).permute(0, 2, 1, 3)
    attn = torch.softmax(q @ k.transpose(-1, -2) * d ** -0.5, dim=-1)
    A = attn * m.topology.unsqueeze(0)
    w = m.weight.view(O, H, C)
    feat = x.permute(0, 2, 3, 1).reshape(N * T, V, C)
    out = 0
    for h in range(H):
        z = (A[:, h] @ feat).view(N, T, V, C).permute(0, 3, 1, 2)
        out = out + F.conv2d(z, w[:, h, :, None, None])
    out = bn_ref(m.bn, out + m.bias.view(1, O, 1, 1), training)
    res = bn_ref(m.down_bn, F.conv2d(x, m.down.weight[:, :, None, None], m.down.bias), training) \
        if m.down is not None else x
    return F.relu(out + res)


@pytest.mark.parametrize("cin,cout", [(16, 16), (16, 32)])
def test_sagc_equals_released_per_head_code(cin, cout):
    torch.manual_seed(0)
    topo = torch.eye(13).repeat(3, 1, 1) + 0.3 * torch.rand(3, 13, 13)
    m = SAGC(cin, cout, topo)
    randomize(m)
    x = torch.randn(2, cin, 5, 13)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_sagc(m, x, training), atol=1e-4, rtol=1e-4)


def test_attention_rows_are_per_frame_distributions():
    torch.manual_seed(0)
    m = SAGC(16, 16, torch.eye(13).repeat(3, 1, 1))
    x = torch.randn(2, 6, 13, 16)  # [B, T, V, C]
    att = m.attn(x)
    assert att.shape == (12, 3, 13, 13) and att.dtype == torch.float32
    assert (att >= 0).all() and torch.allclose(att.sum(-1), torch.ones(12, 3, 13), atol=1e-5)
    x2 = x.clone()
    x2[1, 4, 3] += torch.randn(16)  # change one joint in one frame of sample 1: only that frame's map changes
    diff = (m.attn(x2) - att).abs().amax(dim=(1, 2, 3)).view(2, 6)
    assert diff[1, 4] > 1e-3 and (diff.flatten()[torch.arange(12) != 10] == 0).all()
    # identity topology (released init): the graph keeps only the diagonal of the attention
    g = m.graph(x)
    assert torch.equal(g, att * torch.eye(13))


def test_mode_matrix_by_hand_penn13():
    lay = get_layout("penn13")
    j = {n: i for i, n in enumerate(lay.joints)}
    x = torch.randn(13, 2, dtype=torch.float64)
    b1 = mode_matrix(lay, 1).double() @ x  # joint minus parent: bones; the root (head) keeps its coordinates
    assert torch.allclose(b1[j["left_elbow"]], x[j["left_elbow"]] - x[j["left_shoulder"]])
    assert torch.allclose(b1[j["right_ankle"]], x[j["right_ankle"]] - x[j["right_knee"]])
    assert torch.allclose(b1[j["head"]], x[j["head"]])
    b2 = mode_matrix(lay, 2).double() @ x  # joint minus grandparent
    assert torch.allclose(b2[j["left_wrist"]], x[j["left_wrist"]] - x[j["left_shoulder"]])
    assert torch.allclose(b2[j["left_shoulder"]], x[j["left_shoulder"]])  # no grandparent
    assert torch.equal(mode_matrix(lay, 8), torch.eye(13))  # deeper than the tree: joint coordinates
    with pytest.raises(ValueError, match="modality_k"):
        mode_matrix(lay, 0)


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 2), ("penn13", 3, 1), ("penn13", 2, 1)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("infogcn", layout, C, M)


def test_options_and_structure():
    model = create_model("infogcn", num_classes=4, layout="penn13", width="slim", topology_init="graph",
                         modality_k=1)
    bb = model.backbone
    assert [b.gcn.out_channels for b in bb.blocks] == [32, 64, 64, 128, 128]  # the plan's blocks 2..6
    assert [b.tcn.stride for b in bb.blocks] == [1, 2, 1, 2, 1]
    binary = torch.from_numpy(get_layout("penn13").adjacency("binary")[0])
    assert torch.equal(bb.blocks[0].gcn.topology[2], binary)
    assert torch.equal(bb.data_bn.mode, mode_matrix(get_layout("penn13"), 1))
    assert model(torch.randn(2, 1, 8, 13, 3)).shape == (2, 4)


def test_bf16_autocast():
    check_bf16_close("infogcn")


def test_bad_input_and_options():
    model = create_model("infogcn", num_classes=4, layout="penn13", width="slim")
    with pytest.raises(ValueError, match="V=13"):
        model(torch.randn(1, 1, 8, 17, 3))
    with pytest.raises(ValueError, match=r"SA-GC: expected \[B, 32, T, 13\]"):
        model.backbone.blocks[0].gcn(torch.randn(1, 32, 4, 17))
    with pytest.raises(ValueError, match="topology_init"):
        create_model("infogcn", num_classes=4, layout="penn13", topology_init="random")
    with pytest.raises(ValueError, match="num_heads"):
        create_model("infogcn", num_classes=4, layout="penn13", num_heads=0)


def test_standard_size():
    # Table 4 (NTU-120, 3D, with the IB head): 1.62M. Ours, without the IB layers (fc, fc_mu, fc_logvar:
    # 3 x 65,792), with a 'VC' data BN and a 60/120-way linear head:
    assert create_model("infogcn", num_classes=60, layout="coco17").num_parameters() == 1_342_935
    assert create_model("infogcn", num_classes=120, layout="nturgbd25").num_parameters() == 1_368_963
