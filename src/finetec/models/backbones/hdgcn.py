"""HD-GCN (Lee et al., "Hierarchically Decomposed Graph Convolutional Networks for Skeleton-Based Action
Recognition", ICCV 2023), after the released code (``Jho-Yonsei/HD-GCN``).

HD-Graph (:func:`hierarchy_levels`, :func:`hd_graph`): the joints are decomposed into node sets by their hop
distance from a centre joint (BFS over the layout's edges from ``layout.center``); hierarchy edge set ``i``
(``i = 0..L-1``, ``L`` = number of levels - 1) joins levels ``i`` and ``i+1`` with three subsets: the identity on
both levels, the fully connected edges from level ``i`` to ``i+1`` and those from ``i+1`` to ``i`` (the latter two
normalised per source joint, PYSKL's ``normalize_digraph``). HD-GC (:class:`HDGC`): for each edge set ``i`` a 1x1
conv (+BN, ReLU) reduces ``C_in`` to ``C_out/4`` channels, each subset aggregates with its own learnable
adjacency (initialised from the HD-Graph) followed by a 1x1 conv + BN, and an EdgeConv branch (k nearest joints
in the temporally pooled feature space, DGCNN's edge features) adds the last quarter; the ``L`` edge-set outputs
are summed (first block) or weighted by A-HA (:class:`AHA`: max over time, 1x1 conv, the representative spatial
average pooling of each edge set's joints (RSAP), an EdgeConv over the ``L`` edge sets (H-EdgeConv), a 1x1 conv
and a sigmoid); then BN, residual, ReLU. Temporal module: CTR-GCN's multi-scale TCN (kernel 5, dilations 1 and
2, max-pool and 1x1 branches) without the ReLU after the concatenation (:class:`HDMSTCN`), as HD-GCN's code.

Choices:
    * The centre is the layout's ``center`` (coco17: nose, penn13: head, nturgbd25: spine_shoulder, which is
      HD-GCN's default ``CoM=21``); a joint not reachable from it raises ``ValueError``.
    * EdgeConv uses ``k = min(5, V)`` joints in HD-GC and ``k = min(3, L)`` edge sets in A-HA (the released
      values, capped for small skeletons); ``C_out`` must be a multiple of 4.
    * Left out: the six-way ensemble (joint/bone streams at three centres, EMA of the weights); one model is one
      stream at one centre. Data BN is ``'VC'`` (any number of persons); HD-GCN uses ``'MVC'`` with 2 persons.
    * Every hierarchy edge set and subset is computed at once (batched matmuls over a stacked ``[L, 3, V, V]``
      adjacency), which is the released per-set loop's function.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, FusableMixin, GCNBackbone, bn_affine, bn_cl, bn_init, fold_bn,
                     from_cl, kaiming_fan_out, make_residual, mix, resolve_width, stage_plan, to_cl)
from .ctrgcn import CTRMSTCN

__all__ = ["hierarchy_levels", "hd_graph", "rsap_matrix", "EdgeConv", "AHA", "HDGC", "HDMSTCN", "HDGCN",
           "build_hdgcn"]


# ---------------------------------------------------------------------------------------------- HD-Graph
def hierarchy_levels(layout: Layout, center: int | None = None) -> list[list[int]]:
    """HD-Graph node sets: the joints grouped by hop distance from ``center`` (default ``layout.center``),
    BFS over the layout's (undirected) edges; ``levels[d]`` lists the joints at distance ``d``, sorted."""
    V = layout.num_joints
    c = layout.center if center is None else int(center)
    if not 0 <= c < V:
        raise ValueError(f"hierarchy centre {c} outside 0..{V - 1} for layout {layout.name!r}")
    nbrs: list[list[int]] = [[] for _ in range(V)]
    for a, b in layout.edges:
        nbrs[a].append(b)
        nbrs[b].append(a)
    dist = [-1] * V
    dist[c] = 0
    queue = deque([c])
    while queue:
        u = queue.popleft()
        for w in nbrs[u]:
            if dist[w] < 0:
                dist[w] = dist[u] + 1
                queue.append(w)
    lost = [layout.joints[j] for j in range(V) if dist[j] < 0]
    if lost:
        raise ValueError(f"HD-GCN needs a connected skeleton: joints {lost} of layout {layout.name!r} are not "
                         f"reachable from the centre {layout.joints[c]!r}")
    if V < 2:
        raise ValueError(f"HD-GCN needs at least 2 joints, layout {layout.name!r} has {V}")
    return [[j for j in range(V) if dist[j] == d] for d in range(max(dist) + 1)]


def _normalize_digraph(a: np.ndarray) -> np.ndarray:
    """Divide each column (source joint) by its sum (columns summing to 0 stay 0)."""
    deg = a.sum(0)
    return a * np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0)[None, :]


def hd_graph(levels: Sequence[Sequence[int]], num_joints: int) -> np.ndarray:
    """The HD-Graph ``[L, 3, V, V]`` float32: per hierarchy edge set ``i`` (levels ``i``, ``i+1``) the identity on
    both levels, the level ``i -> i+1`` edges and the ``i+1 -> i`` edges; entry ``[v, u]`` weights source joint
    ``u`` for target ``v`` (``z_v = sum_u A[v, u] x_u``)."""
    if len(levels) < 2:
        raise ValueError(f"HD-Graph needs at least 2 hierarchy levels, got {len(levels)}")
    V = num_joints
    out = np.zeros((len(levels) - 1, 3, V, V), dtype=np.float64)
    for i in range(len(levels) - 1):
        lo, hi = list(levels[i]), list(levels[i + 1])
        for j in lo + hi:
            out[i, 0, j, j] = 1.0
        out[i, 1][np.ix_(hi, lo)] = 1.0  # forward: source in level i, target in level i+1
        out[i, 2][np.ix_(lo, hi)] = 1.0  # reverse: source in level i+1, target in level i
        out[i, 1] = _normalize_digraph(out[i, 1])
        out[i, 2] = _normalize_digraph(out[i, 2])
    return out.astype(np.float32)


def rsap_matrix(levels: Sequence[Sequence[int]], num_joints: int) -> np.ndarray:
    """``[L, V]`` weights of A-HA's representative spatial average pooling: row ``i`` averages the joints of
    levels ``i`` and ``i+1``."""
    R = np.zeros((len(levels) - 1, num_joints), dtype=np.float32)
    for i in range(len(levels) - 1):
        joints = list(levels[i]) + list(levels[i + 1])
        R[i, joints] = 1.0 / len(joints)
    return R


# ---------------------------------------------------------------------------------------------- modules
class EdgeConv(nn.Module):
    """DGCNN's EdgeConv in ``G`` independent groups: ``f [B, N, G, C]`` -> ``[B, N, G, O]``.

    Per sample and group, each of the ``N`` nodes takes its ``k`` nearest nodes in feature space (itself
    included), forms the edge features ``[f_nb - f_n, f_n]``, applies a 1x1 conv (no bias) + BN + LeakyReLU(0.2)
    and takes the max over the ``k`` neighbours. The neighbour search (top-k, not differentiable) is in float32.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int, groups: int = 1) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"EdgeConv k must be >= 1, got {k}")
        self.in_channels, self.out_channels, self.k, self.groups = in_channels, out_channels, k, groups
        self.weight = nn.Parameter(torch.empty(groups, out_channels, 2 * in_channels))
        kaiming_fan_out(self.weight, out_channels)
        self.bn = nn.BatchNorm1d(groups * out_channels)

    def neighbours(self, f: torch.Tensor) -> torch.Tensor:
        """Indices ``[B, N, k, G]`` of each node's ``k`` nearest nodes (largest ``-|f_n - f_m|^2``)."""
        with torch.autocast(f.device.type, enabled=False):
            ff = f.detach().float().transpose(1, 2)  # [B, G, N, C]
            sq = ff.pow(2).sum(-1)
            neg_d = 2 * torch.matmul(ff, ff.transpose(-1, -2)) - sq.unsqueeze(-1) - sq.unsqueeze(-2)
            idx = neg_d.topk(self.k, dim=-1).indices  # [B, G, N, k]
        return idx.permute(0, 2, 3, 1)

    def forward(self, f: torch.Tensor, fused: dict[str, Any] | None = None) -> torch.Tensor:
        B, N, G, C = f.shape
        if G != self.groups or C != self.in_channels or N < self.k:
            raise ValueError(f"EdgeConv: expected [B, N>={self.k}, {self.groups}, {self.in_channels}], "
                             f"got {tuple(f.shape)}")
        idx = self.neighbours(f)  # [B, N, k, G]
        bi = torch.arange(B, device=f.device).view(B, 1, 1, 1)
        gi = torch.arange(G, device=f.device).view(1, 1, 1, G)
        nb = f[bi, idx, gi]  # [B, N, k, G, C]
        ctr = f.unsqueeze(2).expand_as(nb)
        e = torch.cat([nb - ctr, ctr], dim=-1)  # edge features
        w = fused["w"] if fused is not None else self.weight
        y = torch.einsum("bnkgc,goc->bnkgo", e, w.to(e.dtype)).reshape(B * N * self.k, G * self.out_channels)
        y = y + fused["b"].to(y.dtype) if fused is not None else self.bn(y)
        y = F.leaky_relu(y, 0.2)
        return y.view(B, N, self.k, G, self.out_channels).amax(2)

    def fold(self) -> dict[str, torch.Tensor]:
        scale, shift = bn_affine(self.bn)
        return {"w": self.weight * scale.view(self.groups, self.out_channels, 1), "b": shift}


class AHA(nn.Module):
    """HD-GCN's attention-guided hierarchy aggregation: the per-edge-set features -> ``sum_l sigmoid(att_l) * y_l``.

    ``att [B, L, O]``: max over time, 1x1 conv ``O -> O/4`` + BN + ReLU, RSAP (mean over each edge set's joints),
    H-EdgeConv over the ``L`` edge sets, 1x1 conv ``O/4 -> O``.
    """

    def __init__(self, channels: int, rsap: torch.Tensor, k: int = 3) -> None:
        super().__init__()
        rsap = torch.as_tensor(rsap, dtype=torch.float32)
        L = rsap.shape[0]
        inter = channels // 4
        self.channels, self.num_sets = channels, L
        self.register_buffer("rsap", rsap.clone())
        self.down = nn.Linear(channels, inter)
        kaiming_fan_out(self.down.weight, inter)
        nn.init.zeros_(self.down.bias)
        self.down_bn = nn.BatchNorm1d(inter)
        self.edge = EdgeConv(inter, inter, min(k, L))
        self.aggregate = nn.Linear(inter, channels)  # Conv1d with PyTorch's default init

    def attention(self, yt: torch.Tensor, fused: dict[str, Any] | None = None) -> torch.Tensor:
        """Edge-set weights ``sigmoid(att)`` ``[B, L, O]`` from the time-max features ``yt [B, V, L, O]``."""
        if fused is not None:
            h = mix(yt, fused["down_w"], fused["down_b"])
        else:
            h = bn_cl(self.down_bn, mix(yt, self.down.weight, self.down.bias))
        h = h.relu_()
        s = torch.einsum("lv,bvlc->blc", self.rsap.to(h.dtype), h)  # RSAP
        a = self.edge(s.unsqueeze(2), fused["edge"] if fused is not None else None).squeeze(2)  # H-EdgeConv
        return torch.sigmoid(self.aggregate(a))

    def forward(self, z: torch.Tensor, e: torch.Tensor, fused: dict[str, Any] | None = None) -> torch.Tensor:
        """``z [B, T, V, L, O-I]`` (the subset channels), ``e [B, V, L, I]`` (the EdgeConv channels, constant
        over time) -> ``[B, T, V, O]``."""
        B, T, V, L, Cz = z.shape
        if L != self.num_sets or Cz + e.shape[-1] != self.channels:
            raise ValueError(f"A-HA: expected {self.num_sets} edge sets and {self.channels} channels, got "
                             f"{tuple(z.shape)} and {tuple(e.shape)}")
        att = self.attention(torch.cat([z.max(1).values, e], dim=-1), fused).to(z.dtype)  # max over time
        yz = (z * att[:, None, None, :, :Cz]).sum(3)
        ye = (e * att[:, None, :, Cz:]).sum(2)
        return torch.cat([yz, ye.unsqueeze(1).expand(B, T, V, ye.shape[-1])], dim=-1)

    def fold(self) -> dict[str, Any]:
        down_w, down_b = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return {"down_w": down_w, "down_b": down_b, "edge": self.edge.fold()}


class HDGC(FusableMixin, nn.Module):
    """HD-GCN's graph convolution (``HD_Gconv``) on logical ``[B, C, T, V]`` (output channels_last).

    Parameters of all ``L`` edge sets are stacked: ``down`` (``[L*I, C]``, channel ``l*I + i``, ``I = O/4``),
    ``PA [L, 3, V, V]`` (learnable, from the HD-Graph), ``weight_d [L, 3, I, I]`` / ``bias_d [L, 3, I]`` with one
    BN over the ``L*3*I`` subset channels, and the EdgeConv in ``L`` groups. Per edge set the output channels are
    ``[subset 0, subset 1, subset 2, EdgeConv]`` (``I`` each).
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, rsap: torch.Tensor | None = None,
                 edge_k: int = 5, aha_k: int = 3) -> None:
        super().__init__()
        A = torch.as_tensor(A, dtype=torch.float32)
        if A.dim() != 4 or A.shape[-1] != A.shape[-2]:
            raise ValueError(f"HD-Graph must be [L, subsets, V, V], got {tuple(A.shape)}")
        L, S, V = A.shape[0], A.shape[1], A.shape[-1]
        if out_channels % (S + 1):
            raise ValueError(f"HD-GC out_channels must be a multiple of {S + 1} (subsets + EdgeConv), "
                             f"got {out_channels}")
        I = out_channels // (S + 1)
        self.in_channels, self.out_channels, self.num_sets, self.num_subsets, self.num_joints = \
            in_channels, out_channels, L, S, V
        self.inter_channels = I
        self.down_w = nn.Parameter(torch.empty(L * I, in_channels))
        kaiming_fan_out(self.down_w, I)
        self.down_b = nn.Parameter(torch.zeros(L * I))
        self.down_bn = nn.BatchNorm1d(L * I)
        self.PA = nn.Parameter(A.clone())
        self.weight_d = nn.Parameter(torch.empty(L, S, I, I))
        kaiming_fan_out(self.weight_d, I)
        self.bias_d = nn.Parameter(torch.zeros(L, S, I))
        self.bn_d = nn.BatchNorm1d(L * S * I)
        self.edge = EdgeConv(I, I, min(edge_k, V), groups=L)
        self.aha = AHA(out_channels, rsap, aha_k) if rsap is not None else None
        self.bn = nn.BatchNorm1d(out_channels)
        bn_init(self.bn, 1e-6)
        if in_channels != out_channels:
            self.res = nn.Linear(in_channels, out_channels)
            kaiming_fan_out(self.res.weight, out_channels)
            nn.init.zeros_(self.res.bias)
            self.res_bn = nn.BatchNorm1d(out_channels)
        else:
            self.res, self.res_bn = None, None

    def decompose(self, xc: torch.Tensor, f: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``xc [B, T, V, C]`` -> the per-edge-set features before the aggregation over sets: the subset channels
        ``[B, T, V, L, 3*I]`` and the EdgeConv channels ``[B, V, L, I]`` (the same for every frame)."""
        B, T, V, C = xc.shape
        L, S, I = self.num_sets, self.num_subsets, self.inter_channels
        if f is not None:
            xd = mix(xc, f["down_w"], f["down_b"], f["_packed"])
        else:
            xd = bn_cl(self.down_bn, mix(xc, self.down_w, self.down_b))
        xd = xd.relu_()
        # HD-GC: each subset s of each edge set l aggregates with its own adjacency PA[l, s], then its own 1x1 conv
        # (batched over (l, s); the joints lead the aggregation operand and the frames the mixing operand)
        xl = xd.view(B * T, V, L, I).permute(2, 1, 0, 3).reshape(L, V, B * T * I)  # [l, u, (b, t, i)]
        z = torch.bmm(self.PA.to(xd.dtype).view(L, S * V, V), xl)  # [l, (s, v), (b, t, i)]
        wd, bd = (f["wd"], f["bd"]) if f is not None else (self.weight_d, self.bias_d)
        z = torch.bmm(z.view(L * S, V * B * T, I), wd.to(z.dtype).view(L * S, I, I).transpose(1, 2))
        z = z.view(L, S, V, B, T, I).permute(3, 4, 2, 0, 1, 5).reshape(B, T, V, L * S * I)
        z = z + bd.to(z.dtype).view(L * S * I) if f is not None else bn_cl(self.bn_d, z + bd.view(L * S * I))
        e = self.edge(xd.view(B, T, V, L, I).mean(1), f["edge"] if f is not None else None)
        return z.view(B, T, V, L, S * I), e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, V = x.shape
        if C != self.in_channels or V != self.num_joints:
            raise ValueError(f"HD-GC: expected [B, {self.in_channels}, T, {self.num_joints}], got {tuple(x.shape)}")
        xc = to_cl(x)
        f = self.fused() if self._use_fused() else None
        z, e = self.decompose(xc, f)
        if self.aha is not None:
            y = self.aha(z, e, f["aha"] if f is not None else None)
        else:  # first block: plain sum over the edge sets
            y = torch.cat([z.sum(3), e.sum(2).unsqueeze(1).expand(B, T, V, self.inter_channels)], dim=-1)
        if f is not None:
            y = torch.addcmul(f["shift"].to(y.dtype), y, f["scale"].to(y.dtype))
            res = mix(xc, f["res_w"], f["res_b"], f["_packed"]) if self.res is not None else xc
        else:
            y = bn_cl(self.bn, y)
            res = bn_cl(self.res_bn, mix(xc, self.res.weight, self.res.bias)) if self.res is not None else xc
        return from_cl(y.add_(res).relu_())

    def _compute_fused(self) -> dict[str, Any]:
        L, S, I = self.num_sets, self.num_subsets, self.inter_channels
        scale_d, shift_d = bn_affine(self.bn_d)
        scale, shift = bn_affine(self.bn)
        f: dict[str, Any] = dict(zip(("down_w", "down_b"), fold_bn(self.down_w, self.down_b, self.down_bn)))
        f["wd"] = self.weight_d * scale_d.view(L, S, I, 1)
        f["bd"] = self.bias_d.reshape(-1) * scale_d + shift_d
        f["edge"] = self.edge.fold()
        f["aha"] = self.aha.fold() if self.aha is not None else None
        f["scale"], f["shift"] = scale, shift
        if self.res is not None:
            f["res_w"], f["res_b"] = fold_bn(self.res.weight, self.res.bias, self.res_bn)
        return f


class HDMSTCN(CTRMSTCN):
    """:class:`~finetec.models.backbones.ctrgcn.CTRMSTCN` as HD-GCN's ``MultiScale_TemporalConv``: the same
    branches and parameters, but the concatenation is returned without a ReLU (the block's ReLU follows the sum
    with the residual)."""

    final_relu = False


class HDGCN(GCNBackbone):
    """HD-GCN backbone: blocks ``relu(HDMSTCN(HD-GC(x)) + res(x))``; the first block sums the edge sets, the
    others weight them with A-HA.

    Args: stage options as :class:`~finetec.models.backbones.stgcn.STGCN`; ``center`` (joint index; default the
    layout's centre), ``edge_k`` (5) / ``aha_k`` (3) neighbours of the EdgeConvs, TCN ``kernel_size`` (5) and
    ``dilations`` ((1, 2)), ``tcn_dropout``.
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, center: int | None = None,
                 edge_k: int = 5, aha_k: int = 3, kernel_size: int = 5, dilations: Sequence[int] = (1, 2),
                 tcn_dropout: float = 0.0) -> None:
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        V = layout.num_joints
        levels = hierarchy_levels(layout, center)
        A = torch.from_numpy(hd_graph(levels, V))
        R = torch.from_numpy(rsap_matrix(levels, V))
        plan = stage_plan(in_channels, ch_ratio=2, **cfg)
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            gcn = HDGC(cin, cout, A, R if i > 0 else None, edge_k, aha_k)
            tcn = HDMSTCN(cout, cout, kernel_size, stride, dilations, tcn_dropout if i > 0 else 0.0)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(DataBN(in_channels, V, data_bn_type, num_person), blocks, in_channels, V, plan[-1][1])
        self.levels = levels
        self.layout_name = layout.name


@register_model("hdgcn")
def build_hdgcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                data_bn_type: str | None = "VC", num_person: int = 2, center: int | None = None, edge_k: int = 5,
                aha_k: int = 3, kernel_size: int = 5, dilations: Sequence[int] = (1, 2),
                tcn_dropout: float = 0.0) -> Recognizer:
    """HD-GCN recognizer, one stream (options: see :class:`HDGCN`; ``width`` 'standard' | 'slim', head
    ``dropout``)."""
    bb = HDGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
               num_person, center, edge_k, aha_k, kernel_size, dilations, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="hdgcn")
