"""BlockGCN: hop distances, static topological encoding, BlockGC against an explicit per-set/per-group loop,
shapes, gradients, fused eval, bf16, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import finetec.models.backbones.blockgcn  # noqa: F401  (registers "blockgcn")
from finetec.layouts import Layout, get_layout
from finetec.models import create_model
from finetec.models.backbones.blockgcn import BlockGC, StaticTopologyEncoding, hop_distance
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize


def test_hop_distance_penn13_by_hand():
    lay = get_layout("penn13")
    d = hop_distance(lay)
    j = lay.index
    assert d.shape == (13, 13) and d.dtype == np.int64
    assert (d == d.T).all() and (np.diag(d) == 0).all()
    assert d[j("head"), j("left_wrist")] == 3  # head - l_shoulder - l_elbow - l_wrist
    assert d[j("left_shoulder"), j("left_hip")] == 1
    assert d[j("left_hip"), j("right_hip")] == 4  # no hip-hip edge in penn13: via the shoulders and the head
    assert d[j("right_wrist"), j("left_ankle")] == 7
    assert d[j("left_ankle"), j("right_ankle")] == 8
    assert d.max() == 8


def test_hop_distance_disconnected_bucket():
    lay = Layout.from_dict({"name": "two", "joints": ["a", "b", "c", "d"], "edges": [["b", "a"], ["d", "c"]]})
    d = hop_distance(lay)
    assert d[0, 1] == 1 and d[2, 3] == 1
    assert d[0, 2] == d[1, 3] == 2  # other component: max finite distance (1) + 1


def test_static_encoding_looks_up_hops_and_normalises_columns():
    hops = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    enc = StaticTopologyEncoding(hops, num_sets=2, num_groups=1)
    with torch.no_grad():
        enc.table.copy_(torch.tensor([[[3.0, 1.0, 2.0]], [[1.0, -1.0, 0.0]]]))
    B = enc()
    raw0 = torch.tensor([[3.0, 1.0, 2.0], [1.0, 3.0, 1.0], [2.0, 1.0, 3.0]])
    expect0 = raw0 / (raw0.norm(dim=0, keepdim=True) + 1e-4)
    assert torch.allclose(B[0, 0], expect0, atol=1e-6)
    assert B[1, 0, 0, 2] == 0 and B[1, 0, 0, 1] < 0
    assert torch.allclose(B[0, 0].norm(dim=0), torch.ones(3), atol=1e-3)
    assert torch.equal(StaticTopologyEncoding(hops, 3, 8)(), torch.zeros(3, 8, 3, 3))  # zero-initialised


def ref_blockgc(m: BlockGC, x: torch.Tensor, training: bool) -> torch.Tensor:
    """BlockGC written as an explicit loop over the sets k and the channel groups h (the official einsum form)."""
    K, H, O = m.num_sets, m.num_groups, m.out_channels
    Cg, Og = m.in_channels // H, O // H
    A = m.topology / (m.topology.norm(dim=-2, keepdim=True) + 1e-4)
    enc = m.encoding.table[:, :, m.encoding.hops]
    A = A + enc / (enc.norm(dim=-2, keepdim=True) + 1e-4)
    y = 0
    for k in range(K):
        outs = []
        for h in range(H):
            xh = x[:, h * Cg:(h + 1) * Cg]
            z = torch.einsum("nctv,vw->nctw", xh, A[k, h])
            outs.append(torch.einsum("oc,nctw->notw", m.weight[k, h * Og:(h + 1) * Og], z))
        y = y + torch.cat(outs, 1) + m.bias[k].view(1, O, 1, 1)
    res = bn_ref(m.down_bn, m.down(x), training) if m.down is not None else x
    return F.relu(bn_ref(m.bn, y, training) + res)


@pytest.mark.parametrize("cin,cout", [(16, 32), (32, 16), (16, 16), (3, 8)])
def test_blockgc_equals_per_group_loop(cin, cout):
    torch.manual_seed(0)
    hops = hop_distance(get_layout("penn13"))
    m = BlockGC(cin, cout, hops, num_sets=3, num_groups=8 if cin > 8 else 1)
    assert m.num_groups == (8 if cin > 8 else 1)
    assert m.order == ("aggregate" if cin < cout else "mix")
    randomize(m)
    x = torch.randn(2, cin, 5, 13)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_blockgc(m, x, training), atol=1e-4, rtol=1e-4)
    m.eval()
    m.enable_fusion()
    with torch.inference_mode():
        assert torch.allclose(m(x), ref_blockgc(m, x, False), atol=1e-4, rtol=1e-4)


def test_blockgc_is_block_diagonal():
    """With an identity residual, changing the channels of one group only changes that group's outputs."""
    torch.manual_seed(0)
    m = BlockGC(16, 16, hop_distance(get_layout("penn13")), num_groups=4)
    randomize(m)
    m.eval()
    x = torch.randn(2, 16, 4, 13)
    x2 = x.clone()
    x2[:, 4:8] += torch.randn(2, 4, 4, 13)  # group 1
    with torch.no_grad():
        d = (m(x2) - m(x)).abs().amax(dim=(0, 2, 3))
    assert (d[4:8] > 1e-3).all()
    assert torch.equal(d[:4], torch.zeros(4)) and torch.equal(d[8:], torch.zeros(8))


def test_blockgc_bad_arguments():
    hops = hop_distance(get_layout("penn13"))
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        BlockGC(16, 20, hops, num_groups=8)
    m = BlockGC(16, 16, hops)
    with pytest.raises(ValueError, match=r"expected \[B, 16, T, 13\]"):
        m(torch.randn(1, 16, 4, 17))


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 2), ("penn13", 3, 1), ("penn13", 2, 2)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("blockgcn", layout, C, M)


def test_without_embedding_and_feature_shape():
    torch.manual_seed(0)
    model = create_model("blockgcn", num_classes=4, layout="penn13", width="slim", embed=False)
    assert model.backbone.blocks[0].gcn.in_channels == 3 and model.backbone.blocks[0].res_mode == "none"
    feats = model.extract_features(torch.randn(2, 1, 12, 13, 3))
    assert feats.shape == (2, 1, 128, 3, 13)  # slim: 128 channels, time strided twice
    emb = create_model("blockgcn", num_classes=4, layout="penn13", width="slim")
    assert emb.backbone.blocks[0].gcn.in_channels == 32 and emb.backbone.blocks[0].res_mode == "identity"


def test_bf16_autocast_finite_and_close():
    torch.manual_seed(0)
    model = create_model("blockgcn", num_classes=4, layout="coco17", width="slim")
    randomize(model, scale=0.05)
    x = torch.randn(2, 2, 12, 17, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)


def test_wrong_joint_count_is_refused():
    model = create_model("blockgcn", num_classes=3, layout="penn13", width="slim")
    with pytest.raises(ValueError, match="V=13"):
        model(torch.randn(1, 1, 8, 17, 3))


def test_parameter_counts():
    std = create_model("blockgcn", num_classes=120, layout="nturgbd25")
    official = create_model("blockgcn", num_classes=120, layout="nturgbd25", base_channels=128, inflate_stages=(5,),
                            data_bn_type="MVC")
    print(f"blockgcn params: standard NTU {std.num_parameters()}, official widths NTU {official.num_parameters()}")
    assert std.num_parameters() == 796_008
    assert official.num_parameters() == 1_259_304  # paper: 1.30M with the persistent-homology encoding
