"""ProtoGCN: prototype reconstruction, motion topology, the graph unit against an explicit per-subset loop,
shapes, gradients, fused eval, bf16, input errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import finetec.models.backbones.protogcn  # noqa: F401  (registers "protogcn")
from finetec.layouts import get_layout
from finetec.models import create_model
from finetec.models.backbones.protogcn import PrototypeReconstruction, UnitProtoGCN, random_graph
from model_helpers import bn_ref, check_shapes_grads_and_fused_eval, randomize


def test_prototype_reconstruction_weights_sum_to_one():
    torch.manual_seed(0)
    prn = PrototypeReconstruction(dim=6, num_prototypes=5, dropout=0.1).eval()
    r = torch.randn(2, 9, 6) * 3
    w = prn.weights(r)
    assert w.shape == (2, 9, 5) and (w > 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(2, 9), atol=1e-6)
    z = prn(r)
    memory = prn.memory.weight.t()  # [P, D]: one prototype per row
    assert torch.allclose(z, w @ memory, atol=1e-6)  # softmax-weighted combination of the prototypes
    # a query that picks one prototype reconstructs that prototype
    with torch.no_grad():
        prn.query.weight.zero_()
        prn.query.weight[3] = 50 * r[0, 0] / r[0, 0].norm()
    assert torch.allclose(prn(r[:1, :1]).view(6), memory[3], atol=1e-4)
    with pytest.raises(ValueError, match=r"expected \[..., 6\]"):
        prn.weights(torch.randn(3, 4))


def test_motion_topology_by_hand_and_offset_invariance():
    torch.manual_seed(0)
    unit = UnitProtoGCN(4, 16, random_graph(2, 3))
    B, K, R, T, V = 1, 2, 2, 3, 3
    x1, x2 = torch.randn(B, K, R, T, V), torch.randn(B, K, R, T, V)
    got = unit.motion_topology(x1, x2)
    s = torch.zeros(B, K, V, V)
    for t in range(T - 1):  # frame differences, inner product over channels, mean over time
        d1, d2 = x1[:, :, :, t + 1] - x1[:, :, :, t], x2[:, :, :, t + 1] - x2[:, :, :, t]
        s += torch.einsum("bkcu,bkcv->bkuv", d1, d2) / (T - 1)
    assert torch.allclose(got, torch.softmax(s, dim=-2), atol=1e-6)
    assert torch.allclose(got.sum(-2), torch.ones(B, K, V), atol=1e-6)  # normalised over the source joints
    offset = torch.randn(B, K, R, 1, V)  # a static pose offset carries no motion
    assert torch.allclose(unit.motion_topology(x1 + offset, x2 - offset), got, atol=1e-5)
    one = unit.motion_topology(x1[:, :, :, :1], x2[:, :, :, :1])
    assert torch.allclose(one, torch.full((B, K, V, V), 1 / V))


def ref_unit(m: UnitProtoGCN, x: torch.Tensor, training: bool) -> torch.Tensor:
    """The unit written per subset with explicit convs and einsums (official ``unit_gcn`` form + PRN)."""
    N, C, T, V = x.shape
    K, R = m.num_subsets, m.mid_channels
    W, b = m.proj.weight.view(3, K * R, C), m.proj.bias.view(3, K * R)
    conv = [F.conv2d(x, W[i][:, :, None, None], b[i]) for i in range(3)]
    pre = F.relu(bn_ref(m.pre_bn, conv[0], training)).view(N, K, R, T, V)
    x1, x2 = conv[1].view(N, K, R, T, V), conv[2].view(N, K, R, T, V)
    rels = []
    for k in range(K):
        inter = torch.tanh(x1[:, k].mean(-2)[..., :, None] - x2[:, k].mean(-2)[..., None, :])  # [N, R, V, V]
        d1, d2 = x1[:, k, :, 1:] - x1[:, k, :, :-1], x2[:, k, :, 1:] - x2[:, k, :, :-1]
        motion = torch.softmax(torch.einsum("nctu,nctv->nuv", d1, d2) / (T - 1), dim=1)
        rels.append(m.alpha[k] * inter + m.beta[k] * motion[:, None])
    rel = torch.stack(rels, 1)  # [N, K, R, V, V]
    G = m.A[None, :, None] + rel
    if m.prn is not None:
        q = torch.einsum("pd,nduv->npuv", m.prn.query.weight, rel.reshape(N, K * R, V, V))
        z = torch.einsum("dp,npuv->nduv", m.prn.memory.weight, torch.softmax(q, dim=1))
        G = G + m.gamma.view(1, K, 1, 1, 1) * z.view(N, K, R, V, V)
    y = torch.cat([torch.einsum("nctu,ncuv->nctv", pre[:, k], G[:, k]) for k in range(K)], 1)
    y = bn_ref(m.bn, F.conv2d(y, m.post.weight[:, :, None, None], m.post.bias), training)
    res = x if m.down is None else bn_ref(m.down_bn, F.conv2d(x, m.down.weight[:, :, None, None], m.down.bias),
                                          training)
    return F.relu(y + res)


@pytest.mark.parametrize("cin,cout,prn,mode", [(3, 16, 0, "random"), (16, 16, 7, "random"), (16, 24, 5, "spatial")])
def test_unit_equals_per_subset_loop(cin, cout, prn, mode):
    torch.manual_seed(0)
    lay = get_layout("penn13")
    A = random_graph(8, 13) if mode == "random" else torch.from_numpy(lay.adjacency("spatial"))
    m = UnitProtoGCN(cin, cout, A, ratio=0.125 if mode == "random" else 1 / 3, num_prototypes=prn,
                     prn_dropout=0.0)
    randomize(m, scale=0.5)
    x = torch.randn(2, cin, 6, 13)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_unit(m, x, training), atol=1e-4, rtol=1e-4)


def test_prn_only_in_last_blocks_and_graph_options():
    torch.manual_seed(0)
    model = create_model("protogcn", num_classes=4, layout="penn13", width="slim", num_prototypes=32)
    has = [b.gcn.prn is not None for b in model.backbone.blocks]
    assert has == [False] * 5 + [True]
    assert model.backbone.blocks[-1].gcn.prn.num_prototypes == 32
    A = model.backbone.blocks[0].gcn.A
    assert A.shape == (8, 13, 13) and abs(A.mean().item() - 0.04) < 0.01 and abs(A.std().item() - 0.02) < 0.01
    assert torch.equal(A, model.backbone.blocks[3].gcn.A)  # one random graph, cloned per block (PYSKL)
    two = create_model("protogcn", num_classes=4, layout="penn13", width="slim", prn_blocks=2, graph_mode="spatial")
    assert [b.gcn.prn is not None for b in two.backbone.blocks][-3:] == [False, True, True]
    assert two.backbone.blocks[0].gcn.A.shape == (3, 13, 13)
    with pytest.raises(ValueError, match="prn_blocks"):
        create_model("protogcn", num_classes=4, layout="penn13", width="slim", prn_blocks=7)


def test_prn_changes_the_output_once_gamma_is_nonzero():
    torch.manual_seed(0)
    model = create_model("protogcn", num_classes=4, layout="penn13", width="slim", num_prototypes=16)
    randomize(model)
    model.eval()
    x = torch.randn(2, 1, 8, 13, 3)
    unit = model.backbone.blocks[-1].gcn
    with torch.no_grad():
        before = model(x)
        unit.prn.memory.weight.mul_(3.0)
        after = model(x)
        unit.gamma.zero_()
        off1 = model(x)
        unit.prn.memory.weight.div_(3.0)
        off2 = model(x)
    assert not torch.allclose(before, after, atol=1e-4)
    assert torch.allclose(off1, off2)


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 2), ("penn13", 3, 1)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("protogcn", layout, C, M)


def test_bf16_autocast_finite_and_close():
    torch.manual_seed(0)
    model = create_model("protogcn", num_classes=4, layout="coco17", width="slim", num_prototypes=32)
    randomize(model, scale=0.05)
    model.eval()  # no PRN dropout, running BN statistics: the two runs see the same function
    x = torch.randn(2, 2, 12, 17, 3)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_wrong_joint_count_is_refused():
    model = create_model("protogcn", num_classes=3, layout="penn13", width="slim")
    with pytest.raises(ValueError, match="V=13"):
        model(torch.randn(1, 1, 8, 17, 3))
    unit = model.backbone.blocks[1].gcn
    with pytest.raises(ValueError, match=r"expected \[B, 32, T, 13\]"):
        unit(torch.randn(1, 32, 4, 17))


def test_bad_ratio():
    with pytest.raises(ValueError, match="ratio"):
        UnitProtoGCN(3, 4, random_graph(8, 13), ratio=0.125)


def test_parameter_counts():
    torch.manual_seed(0)
    std = create_model("protogcn", num_classes=120, layout="nturgbd25")
    official = create_model("protogcn", num_classes=120, layout="nturgbd25", base_channels=96)
    print(f"protogcn params: standard NTU {std.num_parameters()}, official widths NTU {official.num_parameters()}")
    assert std.num_parameters() == 1_921_150
    assert official.num_parameters() == 4_058_854  # paper: 4.34M (with its loss-side parts)
