"""ProtoGCN (Liu et al., "Revealing Key Details to See Differences: A Novel Prototypical Perspective for
Skeleton-based Action Recognition", CVPR 2025).

Graph conv (:class:`UnitProtoGCN`): ``K`` learnable topologies ``A_k`` (default: the official ``'random'`` graph,
8 filters drawn from N(0.04, 0.02^2)) aggregate, per channel, a bottleneck ``pre(x)`` (``K x R`` channels,
``R = ratio * out``) with ``A_k + R_k``, where the relation features ``R_k`` are the sum of

* the channel-wise topology refinement ``alpha_k * tanh(x1_u - x2_v)`` from the temporally pooled ``conv1(x)``,
  ``conv2(x)`` (CTR-GC-like, the encoder's learned topology), and
* the Motion Topology Enhancement ``beta_k * softmax_u(mean_t sum_c m1[c,t,u] m2[c,t,v])`` computed from the
  frame differences ``m = conv(x_{t+1} - x_t)`` (a graph shared by the channels of subset k);

then ``post`` (1x1 conv), BN, residual and ReLU. In the last ``prn_blocks`` blocks the Prototype Reconstruction
Network rebuilds each joint pair's relation features from a learnable memory of prototypes (softmax-weighted
combination) and the reconstruction enhances the topology: ``A_k + R_k + gamma_k * PRN(R)_k``.
Temporal module: ST-GCN++'s multi-scale TCN (``common.MSTCN``, ProtoGCN's ``tcn_ms_cfg``).

Choices (the paper text was not at hand; the official code defines the details, so comments name the paper's
parts instead of equation numbers):

* the class-specific contrastive loss (which, in the official code, is the only consumer of the reconstructed
  graph of the last block) is left out: it needs labels and a class memory inside the model. So that the PRN
  still shapes the features, its reconstruction is added to that block's topology (gate ``gamma``, zero-init
  like ``alpha``/``beta``), and the official ``post`` conv + BN + ReLU on the reconstruction is dropped; it
  runs per person (the official code averages the persons' graphs first). The PRN costs ``2 B V^2 D P``
  multiply-adds forward, noticeable at ``P = 400`` on CPU (``num_prototypes=100``, the official backbone's
  default, costs a quarter);
* the motion topology uses the frame differences of ``conv1(x)``/``conv2(x)`` (equal to the convs of the frame
  differences of ``x``; biases cancel) and averages the per-frame inner products over time (a temporal mean of the
  differences themselves would telescope to ``(x_T - x_1) / (T - 1)``); with a single frame the motion graph is
  uniform. (Code derived from the official release computes this softmax graph from the temporally pooled
  features; here it is computed from frame differences, the motion features MTE is named after);
* ``alpha``, ``beta``, ``gamma`` are one scalar per subset (the official code learns K but uses only the first);
* widths follow the project's 'standard' (base 64) and 'slim' plans; the official ProtoGCN uses base 96
  (``base_channels=96``); ``num_prototypes`` defaults to 400 (the official NTU/FineGYM configs);
* ``graph_mode`` may also be any ``Layout.adjacency`` mode (e.g. ``'spatial'``) to start from the skeleton;
  the 'random' graph is drawn once with torch's global generator and shared (cloned) by all blocks, as PYSKL's
  ``Graph(mode='random')``; ``data_bn_type`` defaults to ``'VC'``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, GCNBackbone, MSTCN, bn_cl, from_cl, make_residual, mix, resolve_width, stage_plan,
                     to_cl)

__all__ = ["PrototypeReconstruction", "UnitProtoGCN", "ProtoGCN", "build_protogcn", "random_graph"]

MS_CFG = ((3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1")


def random_graph(num_filters: int, num_joints: int, init_off: float = 0.04, init_std: float = 0.02) -> torch.Tensor:
    """PYSKL's ``Graph(mode='random')``: ``[num_filters, V, V]`` from N(init_off, init_std^2) (torch's global RNG)."""
    if num_filters < 1:
        raise ValueError(f"num_filters must be >= 1, got {num_filters}")
    return torch.randn(num_filters, num_joints, num_joints) * init_std + init_off


class PrototypeReconstruction(nn.Module):
    """Prototype Reconstruction Network: ``r [..., D]`` -> ``softmax(r W_q) @ M`` ``[..., D]`` (+ dropout).

    ``query`` (``W_q``, ``D -> P``) scores the ``P`` prototypes, the rows of the memory ``M`` (``memory.weight.T``,
    ``[P, D]``); the reconstruction is their softmax-weighted combination.
    """

    def __init__(self, dim: int, num_prototypes: int = 400, dropout: float = 0.1) -> None:
        super().__init__()
        if dim < 1 or num_prototypes < 1:
            raise ValueError(f"PrototypeReconstruction: dim and num_prototypes must be >= 1, got {dim}, "
                             f"{num_prototypes}")
        self.query = nn.Linear(dim, num_prototypes, bias=False)
        self.memory = nn.Linear(num_prototypes, dim, bias=False)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        self.dim, self.num_prototypes = dim, num_prototypes

    def weights(self, r: torch.Tensor) -> torch.Tensor:
        """Reconstruction weights ``[..., P]`` (float32, sum to 1 over the prototypes)."""
        if r.shape[-1] != self.dim:
            raise ValueError(f"PrototypeReconstruction: expected [..., {self.dim}], got {tuple(r.shape)}")
        return torch.softmax(self.query(r).float(), dim=-1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        w = self.weights(r)
        z = self.memory(w.to(r.dtype))
        return self.drop(z) if self.drop is not None else z


class UnitProtoGCN(nn.Module):
    """ProtoGCN's graph unit on logical ``[B, C, T, V]`` -> logical ``[B, O, T, V]`` in channels_last memory.

    The 1x1 convs run on channels-last views (:func:`~finetec.models.backbones.common.mix`), the topology and the
    channel-wise aggregation in ``[B, K, R, T, V]`` memory. See the module docstring for the function.

    Args:
        A: ``[K, V, V]`` initial topologies (a parameter here).
        ratio: bottleneck ``R = int(ratio * out_channels)`` channels per subset.
        num_prototypes: 0 for no PRN, else the size of the prototype memory.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, ratio: float = 0.125,
                 num_prototypes: int = 0, prn_dropout: float = 0.1) -> None:
        super().__init__()
        A = torch.as_tensor(A, dtype=torch.float32)
        if A.dim() != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"UnitProtoGCN: adjacency must be [K, V, V], got {tuple(A.shape)}")
        K, V = A.shape[0], A.shape[-1]
        R = int(ratio * out_channels)
        if R < 1:
            raise ValueError(f"UnitProtoGCN: ratio * out_channels = {ratio} * {out_channels} < 1 channel")
        self.in_channels, self.out_channels, self.num_subsets, self.mid_channels, self.num_joints = (
            in_channels, out_channels, K, R, V)
        self.A = nn.Parameter(A.clone())
        # the official pre (-> BN -> ReLU), conv1 and conv2 as one 1x1 conv: rows [pre, conv1, conv2], each (k, r);
        # 1x1 convs are nn.Linear on channels-last views (nn.Conv2d's default init)
        self.proj = nn.Linear(in_channels, 3 * K * R)
        self.pre_bn = nn.BatchNorm1d(K * R)
        self.post = nn.Linear(K * R, out_channels)
        self.alpha = nn.Parameter(torch.zeros(K))
        self.beta = nn.Parameter(torch.zeros(K))
        if num_prototypes > 0:
            self.prn: PrototypeReconstruction | None = PrototypeReconstruction(K * R, num_prototypes, prn_dropout)
            self.gamma: nn.Parameter | None = nn.Parameter(torch.zeros(K))
        else:
            self.prn, self.gamma = None, None
        self.bn = nn.BatchNorm1d(out_channels)
        if in_channels != out_channels:
            self.down = nn.Linear(in_channels, out_channels)
            self.down_bn = nn.BatchNorm1d(out_channels)
        else:
            self.down, self.down_bn = None, None

    def refinement_topology(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Channel-wise refinement ``tanh(mean_t x1[u] - mean_t x2[v])``: ``[B, K, R, T, V]`` x2 ->
        ``[B, K, R, V, V]``."""
        return torch.tanh(x1.mean(-2).unsqueeze(-1) - x2.mean(-2).unsqueeze(-2))

    def motion_topology(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Motion Topology Enhancement: ``softmax_u(mean_t sum_c m1[c,t,u] m2[c,t,v])`` with the frame differences
        ``m = x[t+1] - x[t]``; ``[B, K, R, T, V]`` x2 -> ``[B, K, V, V]`` (float32, columns sum to 1)."""
        B, K, R, T, V = x1.shape
        if T < 2:
            return torch.full((B, K, V, V), 1.0 / V, device=x1.device)
        m1 = (x1[..., 1:, :] - x1[..., :-1, :]).reshape(B, K, R * (T - 1), V)
        m2 = (x2[..., 1:, :] - x2[..., :-1, :]).reshape(B, K, R * (T - 1), V)
        s = torch.matmul(m1.transpose(-1, -2), m2).float() / (T - 1)  # [B, K, U, V]
        return torch.softmax(s, dim=-2)

    def relation_features(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """``alpha_k * refinement + beta_k * motion`` from ``conv1(x), conv2(x)`` (``[B, K, R, T, V]`` each):
        ``[B, K, R, V, V]``, the relations the PRN reconstructs."""
        K = self.num_subsets
        inter = self.refinement_topology(x1, x2)
        motion = self.motion_topology(x1, x2)
        return (inter * self.alpha.view(1, K, 1, 1, 1).to(inter.dtype)
                + (motion * self.beta.view(1, K, 1, 1)).unsqueeze(2).to(inter.dtype))

    def reconstruct(self, rel: torch.Tensor) -> torch.Tensor:
        """PRN reconstruction of every joint pair's relation vector (over the K*R channels): ``[B, K, R, V, V]``."""
        B, K, R, V, _ = rel.shape
        z = self.prn(rel.permute(0, 3, 4, 1, 2).reshape(B, V * V, K * R))
        return z.view(B, V, V, K, R).permute(0, 3, 4, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-1] != self.num_joints:
            raise ValueError(f"UnitProtoGCN: expected [B, {self.in_channels}, T, {self.num_joints}], "
                             f"got {tuple(x.shape)}")
        B, _, T, V = x.shape
        K, R = self.num_subsets, self.mid_channels
        xc = to_cl(x)  # [B, T, V, C]; free for the channels_last output of the previous block
        W, b = self.proj.weight, self.proj.bias
        pre_x = bn_cl(self.pre_bn, mix(xc, W[:K * R], b[:K * R])).relu_()
        pre_x = from_cl(pre_x).contiguous().view(B, K, R, T, V)  # [B, K, R, T, V] memory for the aggregation
        x1, x2 = from_cl(mix(xc, W[K * R:], b[K * R:])).contiguous().view(B, 2, K, R, T, V).unbind(1)
        rel = self.relation_features(x1, x2)
        G = self.A.to(rel.dtype).view(1, K, 1, V, V) + rel
        if self.prn is not None:
            z = self.reconstruct(rel)
            G = G + z * self.gamma.view(1, K, 1, 1, 1).to(z.dtype)
        y = torch.matmul(pre_x, G.to(pre_x.dtype))  # channel-wise aggregation: [B, K, R, T, V]
        y = bn_cl(self.bn, mix(to_cl(y.view(B, K * R, T, V)), self.post.weight, self.post.bias))
        res = bn_cl(self.down_bn, mix(xc, self.down.weight, self.down.bias)) if self.down is not None else xc
        return from_cl(F.relu(y + res, inplace=True))


class ProtoGCN(GCNBackbone):
    """ProtoGCN backbone: data BN, blocks ``relu(MSTCN(UnitProtoGCN(x)) + res(x))``; PRN in the last
    ``prn_blocks`` units.

    Args: stage options as :class:`~finetec.models.backbones.stgcn.STGCN`; ``graph_mode`` ('random' or a
    ``Layout.adjacency`` mode), ``num_filters``/``init_off``/``init_std`` of the random graph, ``ratio`` (0.125),
    ``num_prototypes`` (400), ``prn_blocks`` (1), ``prn_dropout`` (0.1), ``tcn_ms_cfg``, ``tcn_dropout``.
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, graph_mode: str = "random",
                 num_filters: int = 8, init_off: float = 0.04, init_std: float = 0.02, ratio: float = 0.125,
                 num_prototypes: int = 400, prn_blocks: int = 1, prn_dropout: float = 0.1,
                 tcn_ms_cfg: Sequence[Any] = MS_CFG, tcn_dropout: float = 0.0) -> None:
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        V = layout.num_joints
        if graph_mode == "random":
            A = random_graph(num_filters, V, init_off, init_std)
        else:
            A = torch.from_numpy(layout.adjacency(graph_mode))
        plan = stage_plan(in_channels, ch_ratio=2, **cfg)
        if not 0 <= prn_blocks <= len(plan):
            raise ValueError(f"prn_blocks must be in 0..{len(plan)}, got {prn_blocks}")
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            with_prn = i >= len(plan) - prn_blocks
            gcn = UnitProtoGCN(cin, cout, A, ratio, num_prototypes if with_prn else 0, prn_dropout)
            tcn = MSTCN(cout, cout, stride, tcn_dropout if i > 0 else 0.0, tcn_ms_cfg)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(DataBN(in_channels, V, data_bn_type, num_person), blocks, in_channels, V, plan[-1][1])
        self.layout_name = layout.name


@register_model("protogcn")
def build_protogcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                   dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                   inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                   data_bn_type: str | None = "VC", num_person: int = 2, graph_mode: str = "random",
                   num_filters: int = 8, init_off: float = 0.04, init_std: float = 0.02, ratio: float = 0.125,
                   num_prototypes: int = 400, prn_blocks: int = 1, prn_dropout: float = 0.1,
                   tcn_ms_cfg: Sequence[Any] = MS_CFG, tcn_dropout: float = 0.0) -> Recognizer:
    """ProtoGCN recognizer (options: see :class:`ProtoGCN`; ``width`` 'standard' | 'slim', head ``dropout``)."""
    bb = ProtoGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
                  num_person, graph_mode, num_filters, init_off, init_std, ratio, num_prototypes, prn_blocks,
                  prn_dropout, tcn_ms_cfg, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="protogcn")
