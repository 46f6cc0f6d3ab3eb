"""BlockGCN (Zhou et al., "BlockGCN: Redefine Topology Awareness for Skeleton-Based Action Recognition", CVPR 2024).

Graph conv (BlockGC): the input channels are split into ``H`` groups; for each of ``K`` sets, group ``h`` is
aggregated over the joints with its own learnable topology ``A_{k,h}`` plus the static topological encoding
``B_{k,h}`` (a learnable scalar per hop distance, looked up by the skeleton's hop-distance matrix), each column
L2-normalised, and then mixed by a block-diagonal (grouped) 1x1 conv, so channels of group ``h`` only mix with
channels of group ``h``; the K sets are summed, then BN, residual (1x1 conv + BN when the width changes) and ReLU.
Temporal module: CTR-GCN's multi-scale TCN (two 5x1 dilated convs d=1,2, a max-pool branch and a 1x1 branch).
Stem: a linear joint embedding ``C -> base_channels`` plus a learnable per-joint positional embedding, then data
BN over the embedded features, as the official code.

Choices (the paper text was not at hand; the official code defines the details, so comments name the paper's
terms instead of equation numbers):

* the persistent-homology *dynamic* topological encoding (Vietoris-Rips persistence of the temporal-mean joint
  distances, a learned embedding added to each block's input) is left out: it needs a persistent-homology library
  and a per-sample non-differentiable filtration, and is a minor part of the reported gain;
* widths follow the project's 'standard' (base 64: 64/128/256) and 'slim' plans; the official BlockGCN uses
  128 x 4 then 256 x 6 (``base_channels=128, inflate_stages=(5,)`` reproduces it);
* block 1 maps the embedding (``base_channels``) to ``base_channels`` with an identity residual (official);
  with ``embed=False`` the raw input goes through data BN and block 1 maps ``C -> base`` without residual (PYSKL);
* ``H = num_groups`` (8) when the block's input has more than ``num_groups`` channels, else 1 (official rule);
* hop distances come from the layout's edges; joints in different connected components get their own bucket
  (one more than the largest finite distance);
* the TCN is :class:`~finetec.models.backbones.ctrgcn.CTRMSTCN` (PYSKL's variant, which applies a ReLU after the
  concatenation; the official BlockGCN code has none there);
* the gcn BatchNorm starts at weight 1 (what the official code ends up with after its repeated init loops);
  ``data_bn_type`` defaults to ``'VC'`` (any number of persons; the official code uses ``'MVC'``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, FusableMixin, GCNBackbone, bn_affine, bn_init, fold_bn, kaiming_fan_out,
                     make_residual, resolve_width, stage_plan)
from .ctrgcn import CTRMSTCN

__all__ = ["hop_distance", "StaticTopologyEncoding", "BlockGC", "JointEmbedding", "BlockGCN", "build_blockgcn"]

NORM_EPS = 1e-4  # added to the column norms (official)


def hop_distance(layout: Layout) -> np.ndarray:
    """Shortest-path hop distance ``[V, V]`` (int64) between joints over the layout's (undirected) edges.

    Pairs in different connected components get ``max finite distance + 1``.
    """
    V = layout.num_joints
    adj = np.zeros((V, V), dtype=bool)
    for a, b in layout.edges:
        adj[a, b] = adj[b, a] = True
    dist = np.full((V, V), -1, dtype=np.int64)
    reach = np.eye(V, dtype=bool)
    dist[reach] = 0
    for k in range(1, V):  # BFS frontier over all sources at once: reach_k = reach_{k-1} or (reach_{k-1} @ adj)
        new = reach | ((reach.astype(np.int64) @ adj.astype(np.int64)) > 0)
        dist[new & ~reach] = k
        if (new == reach).all():
            break
        reach = new
    far = dist.max() + 1
    dist[dist < 0] = far
    return dist


def _col_normalize(a: torch.Tensor) -> torch.Tensor:
    """Each column (over the source joints, dim -2) divided by its L2 norm + 1e-4 (official ``L2_norm``)."""
    return a / (torch.linalg.vector_norm(a, dim=-2, keepdim=True) + NORM_EPS)


class StaticTopologyEncoding(nn.Module):
    """Static topological encoding ``B[k, h, i, j] = b[k, h, hop(i, j)]`` (learnable, zero-initialised), column
    L2-normalised: the bone connectivity encoded by graph distances, one scalar per (set, group, hop)."""

    def __init__(self, hops: torch.Tensor | np.ndarray, num_sets: int, num_groups: int) -> None:
        super().__init__()
        hops = torch.as_tensor(hops, dtype=torch.long)
        if hops.dim() != 2 or hops.shape[0] != hops.shape[1] or int(hops.min()) < 0:
            raise ValueError(f"hop distances must be a non-negative [V, V] matrix, got shape {tuple(hops.shape)}")
        self.register_buffer("hops", hops.clone(), persistent=False)
        self.table = nn.Parameter(torch.zeros(num_sets, num_groups, int(hops.max()) + 1))

    def forward(self) -> torch.Tensor:
        """``[K, H, V, V]`` column-normalised encoding."""
        return _col_normalize(self.table[:, :, self.hops])


class BlockGC(FusableMixin, nn.Module):
    """BlockGC on logical ``[B, C, T, V]`` -> contiguous ``[B, O, T, V]``.

    ``y = relu(BN(sum_k blockdiag_h(W_{k,h}) (x_h (A_{k,h}/|A_{k,h}| + B_{k,h}/|B_{k,h}|))) + res(x))``, where
    ``x_h`` are the channels of group ``h`` and ``|.|`` the column L2 norms. Parameters: ``topology`` ``[K, H, V, V]``
    (identity init), ``encoding`` (:class:`StaticTopologyEncoding`), ``weight`` ``[K, O, C/H]`` and ``bias``
    ``[K, O]`` (the K grouped 1x1 convs). The aggregation runs first when the layer widens (``C < O``), else the
    grouped mixing (same function). Works in ``[B, C, T, V]`` memory (groups outermost).
    """

    def __init__(self, in_channels: int, out_channels: int, hops: torch.Tensor | np.ndarray, num_sets: int = 3,
                 num_groups: int = 8) -> None:
        super().__init__()
        H = num_groups if in_channels > num_groups else 1
        if in_channels % H or out_channels % H:
            raise ValueError(f"BlockGC: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                             f"divisible by the number of groups ({H})")
        if num_sets < 1:
            raise ValueError(f"BlockGC: num_sets must be >= 1, got {num_sets}")
        V = int(torch.as_tensor(hops).shape[-1])
        self.in_channels, self.out_channels, self.num_sets, self.num_groups, self.num_joints = (
            in_channels, out_channels, num_sets, H, V)
        self.order = "aggregate" if in_channels < out_channels else "mix"
        self.topology = nn.Parameter(torch.eye(V).expand(num_sets, H, V, V).clone())
        self.encoding = StaticTopologyEncoding(hops, num_sets, H)
        self.weight = nn.Parameter(torch.empty(num_sets, out_channels, in_channels // H))
        self.bias = nn.Parameter(torch.zeros(num_sets, out_channels))
        kaiming_fan_out(self.weight, out_channels)  # official conv_init of each grouped conv (fan_out = O)
        self.bn = nn.BatchNorm2d(out_channels)
        bn_init(self.bn, 1)
        if in_channels != out_channels:
            self.down = nn.Conv2d(in_channels, out_channels, 1)
            kaiming_fan_out(self.down.weight, out_channels)
            nn.init.constant_(self.down.bias, 0)
            self.down_bn = nn.BatchNorm2d(out_channels)
            bn_init(self.down_bn, 1)
        else:
            self.down, self.down_bn = None, None

    def block_topology(self) -> torch.Tensor:
        """``[K, H, V, V]``: learnable topology plus static encoding, each column-normalised (BlockGC's graph)."""
        return _col_normalize(self.topology) + self.encoding()

    def block_gc(self, x: torch.Tensor, A: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """The block-diagonal graph conv without BN: ``x [B, C, T, V]`` (contiguous), ``A [K, H, V, W]``,
        ``weight [K, O, C/H]``, ``bias [O]`` -> ``[B, O, T, W]``."""
        B, C, T, V = x.shape
        K, H = self.num_sets, self.num_groups
        O, Cg, Og, W = self.out_channels, C // H, self.out_channels // H, A.shape[-1]
        A = A.to(x.dtype)
        weight = weight.to(x.dtype)
        if self.order == "aggregate":
            # per group h: x_h [Cg*T, V] @ [V, (k, w)], then mix (k, c) -> o within the group
            xa = torch.matmul(x.view(B, H, Cg * T, V), A.permute(1, 2, 0, 3).reshape(H, V, K * W))
            xa = xa.view(B, H, Cg, T, K, W).permute(0, 1, 4, 2, 3, 5).reshape(B, H, K * Cg, T * W)
            wg = weight.view(K, H, Og, Cg).permute(1, 2, 0, 3).reshape(H, Og, K * Cg)
            y = torch.matmul(wg, xa)  # [B, H, Og, T*W]
        else:
            # per group h: mix c -> (k, o), then aggregate over (k, v) with [(k, v), w]
            wm = weight.view(K, H, Og, Cg).permute(1, 0, 2, 3).reshape(H, K * Og, Cg)
            z = torch.matmul(wm, x.view(B, H, Cg, T * V))  # [B, H, (k, og), (t, v)]
            z = z.view(B, H, K, Og, T, V).permute(0, 1, 3, 4, 2, 5).reshape(B, H, Og * T, K * V)
            y = torch.matmul(z, A.permute(1, 0, 2, 3).reshape(H, K * V, W))  # [B, H, Og*T, W]
        return y.view(B, O, T, W) + bias.to(y.dtype).view(1, O, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[-1] != self.num_joints:
            raise ValueError(f"BlockGC: expected [B, {self.in_channels}, T, {self.num_joints}], got {tuple(x.shape)}")
        x = x.contiguous()
        if self._use_fused():
            f = self.fused()
            y = self.block_gc(x, f["A"], f["weight"], f["bias"])
            res = F.conv2d(x, f["down_w"], f["down_b"]) if self.down is not None else x
            return F.relu(y.add_(res), inplace=True)
        y = self.bn(self.block_gc(x, self.block_topology(), self.weight, self.bias.sum(0)))
        res = self.down_bn(self.down(x)) if self.down is not None else x
        return F.relu(y + res, inplace=True)

    def _compute_fused(self) -> dict[str, Any]:
        scale, shift = bn_affine(self.bn)
        f: dict[str, Any] = {"A": self.block_topology(), "weight": self.weight * scale[None, :, None],
                             "bias": self.bias.sum(0) * scale + shift}
        if self.down is not None:
            f["down_w"], f["down_b"] = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return f


class JointEmbedding(nn.Module):
    """BlockGCN's stem: ``x [N, M, T, V, C]`` -> linear ``C -> E`` + per-joint positional embedding -> data BN
    -> contiguous ``[N*M, T, V, E]`` (the output contract of :class:`DataBN`)."""

    def __init__(self, in_channels: int, embed_channels: int, num_joints: int, data_bn_type: str | None = "VC",
                 num_person: int = 2) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, embed_channels)
        self.pos = nn.Parameter(torch.randn(num_joints, embed_channels))  # official: randn(1, V, E)
        self.bn = DataBN(embed_channels, num_joints, data_bn_type, num_person)
        self.in_channels, self.num_joints, self.embed_channels = in_channels, num_joints, embed_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[-2:] != (self.num_joints, self.in_channels):
            raise ValueError(f"JointEmbedding: expected [N, M, T, {self.num_joints}, {self.in_channels}], "
                             f"got {tuple(x.shape)}")
        return self.bn(self.proj(x) + self.pos.to(x.dtype))


class BlockGCN(GCNBackbone):
    """BlockGCN backbone: joint embedding + data BN, blocks ``relu(MSTCN(BlockGC(x)) + res(x))``.

    Args: stage options as :class:`~finetec.models.backbones.stgcn.STGCN`; ``num_groups`` (8) and ``num_sets`` (3)
    of BlockGC; ``embed`` (True: BlockGCN's joint embedding stem); ``kernel_size`` (5) and ``dilations`` ((1, 2)) of
    the TCN.
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, num_groups: int = 8, num_sets: int = 3,
                 embed: bool = True, kernel_size: int = 5, dilations: Sequence[int] = (1, 2),
                 tcn_dropout: float = 0.0) -> None:
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        V = layout.num_joints
        hops = torch.from_numpy(hop_distance(layout))
        if embed:
            stem: nn.Module = JointEmbedding(in_channels, cfg["base_channels"], V, data_bn_type, num_person)
            plan = stage_plan(cfg["base_channels"], ch_ratio=2, **cfg)
            plan[0] = (plan[0][0], plan[0][1], plan[0][2], True)  # official l1: identity residual
        else:
            stem = DataBN(in_channels, V, data_bn_type, num_person)
            plan = stage_plan(in_channels, ch_ratio=2, **cfg)
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            gcn = BlockGC(cin, cout, hops, num_sets, num_groups)
            tcn = CTRMSTCN(cout, cout, kernel_size, stride, dilations, tcn_dropout if i > 0 else 0.0)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(stem, blocks, in_channels, V, plan[-1][1])
        self.layout_name = layout.name


@register_model("blockgcn")
def build_blockgcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                   dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                   inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                   data_bn_type: str | None = "VC", num_person: int = 2, num_groups: int = 8, num_sets: int = 3,
                   embed: bool = True, kernel_size: int = 5, dilations: Sequence[int] = (1, 2),
                   tcn_dropout: float = 0.0) -> Recognizer:
    """BlockGCN recognizer (options: see :class:`BlockGCN`; ``width`` 'standard' | 'slim', head ``dropout``)."""
    bb = BlockGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
                  num_person, num_groups, num_sets, embed, kernel_size, dilations, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="blockgcn")
