"""HD-GCN: hierarchy levels and HD-Graph by hand, EdgeConv neighbours, HD-GC (with and without A-HA) against a
per-set transcription of the released code, its TCN, shapes / gradients / fused eval, bf16, errors, size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import finetec.models.backbones.hdgcn  # noqa: F401  (registers "hdgcn")
from finetec.layouts import get_layout
from finetec.models import create_model
from finetec.models.backbones.ctrgcn import CTRMSTCN
from finetec.models.backbones.hdgcn import (HDGC, HDMSTCN, EdgeConv, hd_graph, hierarchy_levels, rsap_matrix)
from model_helpers import bn_ref, check_bf16_close, check_shapes_grads_and_fused_eval, randomize


def _names(layout, levels):
    return [sorted(layout.joints[j] for j in lv) for lv in levels]


def test_hierarchy_levels_by_hand():
    penn = get_layout("penn13")
    assert _names(penn, hierarchy_levels(penn)) == [
        ["head"], ["left_shoulder", "right_shoulder"], ["left_elbow", "left_hip", "right_elbow", "right_hip"],
        ["left_knee", "left_wrist", "right_knee", "right_wrist"], ["left_ankle", "right_ankle"]]
    coco = get_layout("coco17")
    assert _names(coco, hierarchy_levels(coco))[:3] == [
        ["nose"], ["left_eye", "left_shoulder", "right_eye", "right_shoulder"],
        ["left_ear", "left_elbow", "left_hip", "right_ear", "right_elbow", "right_hip"]]
    # NTU with the layout's centre (spine_shoulder) = the released groups for CoM=21 (1-based joint numbers)
    released = [[21], [2, 3, 5, 9], [4, 6, 10, 1], [7, 11, 13, 17], [8, 12, 14, 18], [22, 23, 24, 25, 15, 19],
                [16, 20]]
    assert hierarchy_levels(get_layout("nturgbd25")) == [sorted(j - 1 for j in g) for g in released]
    # another centre: penn13 from the left hip
    lh = hierarchy_levels(penn, center=penn.index("left_hip"))
    assert _names(penn, lh)[:2] == [["left_hip"], ["left_knee", "left_shoulder"]]


def test_hd_graph_and_rsap_by_hand_penn13():
    penn = get_layout("penn13")
    j = {n: i for i, n in enumerate(penn.joints)}
    lv = hierarchy_levels(penn)
    A = hd_graph(lv, 13)
    assert A.shape == (4, 3, 13, 13)
    # edge set 0 (head | shoulders): identity on those three joints only
    assert sorted(A[0, 0].diagonal().nonzero()[0].tolist()) == [j["head"], j["left_shoulder"], j["right_shoulder"]]
    assert A[0, 0].sum() == 3
    # forward head -> both shoulders, each source column normalised by its 2 targets
    assert A[0, 1][j["left_shoulder"], j["head"]] == 0.5 and A[0, 1].sum() == 1
    # reverse shoulders -> head: one target per source
    assert A[0, 2][j["head"], j["left_shoulder"]] == 1 and A[0, 2].sum() == 2
    # edge set 1 (shoulders | elbows + hips): fully connected between the levels, not only skeleton edges
    assert A[1, 1][j["right_hip"], j["left_shoulder"]] == 0.25
    assert A[1, 2][j["left_shoulder"], j["right_hip"]] == 0.5
    assert A[1, 1][j["left_elbow"], j["left_wrist"]] == 0 and A[1, 1][j["head"], j["left_shoulder"]] == 0
    R = rsap_matrix(lv, 13)
    assert R.shape == (4, 13)
    assert R[0, j["head"]] == pytest.approx(1 / 3) and R[3, j["left_ankle"]] == pytest.approx(1 / 6)
    assert R[0, j["left_elbow"]] == 0


def test_edgeconv_neighbours_by_hand():
    ec = EdgeConv(1, 4, k=2)
    f = torch.tensor([0.0, 1.0, 3.0, 10.0]).view(1, 4, 1, 1)  # [B, N, G, C]: 4 nodes on a line
    nb = ec.neighbours(f)[0, :, :, 0]
    assert [sorted(r) for r in nb.tolist()] == [[0, 1], [0, 1], [1, 2], [2, 3]]


def test_disconnected_and_bad_config():
    lay = {"name": "two_parts", "joints": ["a", "b", "c"], "edges": [["b", "a"]], "center": "a"}
    with pytest.raises(ValueError, match=r"not reachable.*'c'|\['c'\].*not reachable"):
        create_model("hdgcn", num_classes=3, layout=lay, width="slim")
    A = torch.from_numpy(hd_graph(hierarchy_levels(get_layout("penn13")), 13))
    with pytest.raises(ValueError, match="multiple of 4"):
        HDGC(8, 30, A)


# ---------------------------------------------------------------------------------------------- references
def _bn_slice(bn, y, sl, training):
    return F.batch_norm(y, bn.running_mean[sl].clone(), bn.running_var[sl].clone(), bn.weight[sl], bn.bias[sl],
                        training, 0.0, bn.eps)


def ref_edgeconv(ec: EdgeConv, f: torch.Tensor, g: int, training: bool) -> torch.Tensor:
    """DGCNN EdgeConv of the released code on ``f [N, C, V]`` with group ``g`` of ``ec`` -> ``[N, O, V]``."""
    N, C, V = f.shape
    inner = -2 * torch.matmul(f.transpose(2, 1), f)
    xx = (f ** 2).sum(1, keepdim=True)
    idx = (-xx - inner - xx.transpose(2, 1)).topk(ec.k, dim=-1)[1]  # [N, V, k]
    fv = f.transpose(1, 2)  # [N, V, C]
    nb = fv[torch.arange(N).view(N, 1, 1), idx]  # [N, V, k, C]
    ctr = fv.unsqueeze(2).expand_as(nb)
    e = torch.cat([nb - ctr, ctr], dim=3).permute(0, 3, 1, 2)  # [N, 2C, V, k]
    O = ec.out_channels
    y = F.conv2d(e, ec.weight[g][:, :, None, None])
    y = _bn_slice(ec.bn, y, slice(g * O, (g + 1) * O), training)
    return F.leaky_relu(y, 0.2).max(dim=-1)[0]


def ref_hdgc(m: HDGC, x: torch.Tensor, levels, training: bool) -> torch.Tensor:
    """HD_Gconv of Jho-Yonsei/HD-GCN (per edge set, per subset), with the stacked parameters split back."""
    N, C, T, V = x.shape
    L, S, I = m.num_sets, m.num_subsets, m.inter_channels
    out = []
    for i in range(L):
        sl = slice(i * I, (i + 1) * I)
        xd = F.relu(_bn_slice(m.down_bn, F.conv2d(x, m.down_w[sl, :, None, None], m.down_b[sl]), sl, training))
        y = []
        for s in range(S):
            z = torch.einsum("nctu,vu->nctv", xd, m.PA[i, s])
            z = F.conv2d(z, m.weight_d[i, s][:, :, None, None], m.bias_d[i, s])
            y.append(_bn_slice(m.bn_d, z, slice((i * S + s) * I, (i * S + s + 1) * I), training))
        y.append(ref_edgeconv(m.edge, xd.mean(2), i, training).unsqueeze(2).expand(N, I, T, V))
        out.append(torch.cat(y, dim=1))
    out = torch.stack(out, dim=2)  # [N, O, L, T, V]
    if m.aha is not None:
        aha = m.aha
        xt = out.max(dim=-2)[0]  # [N, O, L, V]
        xt = F.relu(bn_ref(aha.down_bn, F.conv2d(xt, aha.down.weight[:, :, None, None], aha.down.bias), training))
        groups = [levels[i] + levels[i + 1] for i in range(L)]
        s = torch.cat([xt[:, :, i, groups[i]].mean(-1, keepdim=True) for i in range(L)], dim=2)  # [N, O/4, L]
        a = ref_edgeconv(aha.edge, s, 0, training)
        a = F.conv1d(a, aha.aggregate.weight[:, :, None], aha.aggregate.bias).view(N, -1, L, 1, 1)
        out = (out * torch.sigmoid(a)).sum(dim=2)
    else:
        out = out.sum(dim=2)
    out = bn_ref(m.bn, out, training)
    res = bn_ref(m.res_bn, F.conv2d(x, m.res.weight[:, :, None, None], m.res.bias), training) \
        if m.res is not None else x
    return F.relu(out + res)


@pytest.mark.parametrize("cin,cout,aha", [(3, 16, False), (16, 16, True), (16, 32, True)])
def test_hdgc_equals_released_per_set_code(cin, cout, aha):
    torch.manual_seed(0)
    lv = hierarchy_levels(get_layout("penn13"))
    m = HDGC(cin, cout, torch.from_numpy(hd_graph(lv, 13)), torch.from_numpy(rsap_matrix(lv, 13)) if aha else None)
    randomize(m)
    x = torch.randn(2, cin, 6, 13)
    for training in (True, False):
        m.train(training)
        assert torch.allclose(m(x), ref_hdgc(m, x, lv, training), atol=1e-4, rtol=1e-4)
    if aha:  # A-HA's weights: one per (sample, edge set, channel), in [0, 1], not the same for every edge set
        z, e = m.decompose(x.permute(0, 2, 3, 1).contiguous())
        att = m.aha.attention(torch.cat([z.amax(1), e], -1))
        assert att.shape == (2, 4, cout) and ((att >= 0) & (att <= 1)).all() and (att.std(1) > 1e-3).any()


def test_hd_mstcn_is_ctr_mstcn_without_final_relu():
    torch.manual_seed(0)
    ctr = CTRMSTCN(24, 24, stride=2)
    randomize(ctr)
    hd = HDMSTCN(24, 24, stride=2)
    hd.load_state_dict(ctr.state_dict())
    x = torch.randn(2, 24, 9, 13)
    for training in (True, False):
        ctr.train(training), hd.train(training)
        y = hd(x)
        assert (y < 0).any() and torch.allclose(F.relu(y), ctr(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("layout,C,M", [("coco17", 3, 2), ("penn13", 3, 1)])
def test_shapes_grads_and_fused_eval(layout, C, M):
    check_shapes_grads_and_fused_eval("hdgcn", layout, C, M)


def test_bf16_autocast():
    check_bf16_close("hdgcn")


def test_bad_input():
    model = create_model("hdgcn", num_classes=4, layout="penn13", width="slim")
    with pytest.raises(ValueError, match="V=13"):
        model(torch.randn(1, 1, 8, 17, 3))
    with pytest.raises(ValueError, match=r"HD-GC: expected \[B, 3, T, 13\]"):
        model.backbone.blocks[0].gcn(torch.randn(1, 3, 4, 17))


def test_structure_and_standard_size():
    model = create_model("hdgcn", num_classes=4, layout="penn13", width="slim")
    blocks = model.backbone.blocks
    assert len(blocks) == 6 and blocks[0].gcn.aha is None and all(b.gcn.aha is not None for b in blocks[1:])
    assert blocks[0].gcn.PA.shape == (4, 3, 13, 13)
    # NTU-120, 3D: Table 4 gives 1.68M (the released model with an 'MVC' data BN has 150 more)
    assert create_model("hdgcn", num_classes=120, layout="nturgbd25").num_parameters() == 1_675_250
    assert create_model("hdgcn", num_classes=60, layout="coco17").num_parameters() == 1_299_626
