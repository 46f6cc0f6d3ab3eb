"""InfoGCN's encoder (Chi et al., "InfoGCN: Representation Learning for Human Skeleton-based Action Recognition",
CVPR 2022), after the released code (``stnoah1/infogcn``).

Input stage (:class:`JointEmbedding`): optionally the k-th mode representation ``(I - A_out^k) x``, the joint
embedding (a linear map ``C -> base``), the learnable joint positional embedding, then the data BN over the
embedded features. Blocks (:class:`SAGC` + multi-scale TCN): the self-attention based graph convolution

    ``SA-GC(H) = ReLU(BN(sum_h (SA_h(H) * A_h) H W_h) + res(H))``,

where ``SA_h`` is the per-sample, per-frame multi-head self-attention map (``softmax(q k^T / sqrt(d))`` of the
layer-normalised joint features, rows summing to 1), ``A_h`` the shared topology (one learnable ``[V, V]`` per
head, the same for every sample) and ``*`` the element-wise product; the TCN is CTR-GCN's multi-scale TCN
(:class:`~finetec.models.backbones.ctrgcn.CTRMSTCN`: kernel 5, dilations 1 and 2, a max-pool and a 1x1 branch,
concatenated, ReLU), which is the module InfoGCN uses.

Choices:
    * Left out: the information-bottleneck latent (``fc``, ``fc_mu``, ``fc_logvar``, the sampled ``z``, the
      class prior ``z_prior``) and its MMD objective; the recognizer's head is the shared :class:`ClsHead`
      (mean over frames, joints and persons, dropout, linear), i.e. InfoGCN's decoder applied to the pooled
      feature. InfoGCN's Table-4 parameter count includes the three 256x256 latent layers (197k parameters).
    * Depth: the joint embedding takes the place of the first block of the stage plan (as in InfoGCN, whose
      9 blocks are PYSKL's blocks 2..10), so 'standard' has 9 SA-GC blocks (64, 64, 64, 128/2, 128, 128,
      256/2, 256, 256) and 'slim' 5; every block has a residual.
    * Shared topology: initialised to the identity per head (``topology_init='identity'``, the released code),
      so the skeleton's edges do not enter SA-GC unless ``topology_init='graph'`` (``A + I`` of the layout,
      binary), an option of ours. The graph enters InfoGCN through the k-th mode representation, built from the
      layout's (parent -> child) edges; ``modality_k=None`` (default) feeds the coordinates as given (InfoGCN's
      joint mode, ``A_out^k = 0`` for k beyond the tree depth). Bones/motion are the data pipeline's job here.
    * The attention (layer norm, q/k projection, softmax) is computed in float32 under autocast; ``d = max(1,
      C_in // 8)`` channels per head, 3 heads; q/k weights ``N(0, 1)`` as released.
    * Data BN: ``'VC'`` by default (any number of persons); InfoGCN uses ``'MVC'`` with 2 persons.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, FusableMixin, GCNBackbone, bn_cl, bn_init, conv_init, fold_bn, from_cl,
                     make_residual, mix, resolve_width, stage_plan, to_cl)
from .ctrgcn import CTRMSTCN

__all__ = ["mode_matrix", "JointEmbedding", "SelfAttention", "SAGC", "InfoGCN", "build_infogcn"]


def mode_matrix(layout: Layout, k: int) -> torch.Tensor:
    """InfoGCN's k-th mode representation matrix ``I - A_out^k`` ``[V, V]`` (row v: joint v minus its k-th
    ancestor), ``A_out[child, parent] = 1`` from the layout's edges."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"modality_k must be a positive int or None, got {k!r}")
    V = layout.num_joints
    a_out = torch.zeros(V, V, dtype=torch.float64)
    for child, parent in layout.edges:
        a_out[child, parent] = 1.0
    return (torch.eye(V, dtype=torch.float64) - torch.linalg.matrix_power(a_out, k)).float()


class JointEmbedding(nn.Module):
    """``x [N, M, T, V, C]`` -> ``[N*M, T, V, D]``: (mode matrix), joint embedding, positional embedding, data BN."""

    def __init__(self, in_channels: int, embed_channels: int, num_joints: int, mode: torch.Tensor | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2) -> None:
        super().__init__()
        self.in_channels, self.embed_channels, self.num_joints = in_channels, embed_channels, num_joints
        if mode is not None:
            self.register_buffer("mode", torch.as_tensor(mode, dtype=torch.float32).clone())
        else:
            self.mode = None
        self.embed = nn.Linear(in_channels, embed_channels)  # to_joint_embedding
        self.pos = nn.Parameter(torch.randn(num_joints, embed_channels))  # pos_embedding, N(0, 1)
        self.data_bn = DataBN(embed_channels, num_joints, data_bn_type, num_person)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[-2:] != (self.num_joints, self.in_channels):
            raise ValueError(f"JointEmbedding: expected [N, M, T, {self.num_joints}, {self.in_channels}], "
                             f"got {tuple(x.shape)}")
        if self.mode is not None:  # k-th mode representation: x_v - x_{k-th ancestor of v}
            x = torch.matmul(self.mode.to(x.dtype), x)
        h = self.embed(x)
        h = h + self.pos.to(h.dtype)  # joint positional embedding
        return self.data_bn(h)


class SelfAttention(nn.Module):
    """InfoGCN's ``SA(H)``: per frame and head, ``softmax(q k^T / sqrt(d))`` over the joints of ``LN(H)``.

    ``forward(xc [B, T, V, C])`` -> ``[B*T, heads, V, V]`` float32, each row a distribution over source joints.
    """

    def __init__(self, in_channels: int, hidden: int, heads: int) -> None:
        super().__init__()
        self.hidden, self.heads, self.scale = hidden, heads, hidden ** -0.5
        self.ln = nn.LayerNorm(in_channels)
        self.to_qk = nn.Linear(in_channels, 2 * heads * hidden)
        nn.init.normal_(self.to_qk.weight, 0.0, 1.0)

    def forward(self, xc: torch.Tensor) -> torch.Tensor:
        B, T, V, C = xc.shape
        H, d = self.heads, self.hidden
        with torch.autocast(xc.device.type, enabled=False):
            qk = self.to_qk(self.ln(xc.float())).view(B * T, V, 2, H, d)
            q = qk[:, :, 0].transpose(1, 2)  # [BT, H, V, d]
            k = qk[:, :, 1].transpose(1, 2)
            return torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)


class SAGC(FusableMixin, nn.Module):
    """InfoGCN's SA-GC on logical ``[B, C, T, V]`` (output channels_last).

    The per-head 1x1 convolutions ``W_h`` run as one channel mixing over the ``heads*C`` aggregated channels
    (``weight [O, heads*C]``; one bias, the sum of the per-head biases). ``topology`` is the shared topology
    ``[heads, V, V]``; row ``v`` of ``SA_h * A_h`` weights the source joints of joint ``v``.
    """

    def __init__(self, in_channels: int, out_channels: int, topology: torch.Tensor, rel_reduction: int = 8) -> None:
        super().__init__()
        topology = torch.as_tensor(topology, dtype=torch.float32)
        if topology.dim() != 3 or topology.shape[1] != topology.shape[2]:
            raise ValueError(f"SA-GC topology must be [heads, V, V], got {tuple(topology.shape)}")
        H = topology.shape[0]
        self.in_channels, self.out_channels, self.heads, self.num_joints = in_channels, out_channels, H, \
            topology.shape[-1]
        self.topology = nn.Parameter(topology.clone())  # shared_topology
        self.weight = nn.Parameter(torch.empty(out_channels, H * in_channels))  # conv_d of every head
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (out_channels * in_channels * H)))  # conv_branch_init
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.bn = nn.BatchNorm1d(out_channels)
        bn_init(self.bn, 1e-6)
        if in_channels != out_channels:
            self.down = nn.Linear(in_channels, out_channels)
            conv_init(self.down)
            self.down_bn = nn.BatchNorm1d(out_channels)
        else:
            self.down, self.down_bn = None, None
        self.attn = SelfAttention(in_channels, max(1, in_channels // rel_reduction), H)

    def graph(self, xc: torch.Tensor) -> torch.Tensor:
        """``SA_h(H) * A_h`` for every frame: ``[B*T, heads, V, V]`` float32."""
        return self.attn(xc) * self.topology.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, V = x.shape
        if C != self.in_channels or V != self.num_joints:
            raise ValueError(f"SA-GC: expected [B, {self.in_channels}, T, {self.num_joints}], got {tuple(x.shape)}")
        xc = to_cl(x)
        G = self.graph(xc).to(xc.dtype)  # [BT, H, V, U]
        Gp = G.transpose(1, 2).reshape(B * T, V * self.heads, V)  # [BT, (v, h), u]
        z = torch.bmm(Gp, xc.view(B * T, V, C)).view(B, T, V, self.heads * C)  # sum_u G[h, v, u] x_u
        if self._use_fused():
            f = self.fused()
            y = mix(z, f["w"], f["b"], f["_packed"])
            res = mix(xc, f["down_w"], f["down_b"], f["_packed"]) if self.down is not None else xc
        else:
            y = bn_cl(self.bn, mix(z, self.weight, self.bias))
            res = bn_cl(self.down_bn, mix(xc, self.down.weight, self.down.bias)) if self.down is not None else xc
        return from_cl(y.add_(res).relu_())

    def _compute_fused(self) -> dict[str, Any]:
        f: dict[str, Any] = dict(zip(("w", "b"), fold_bn(self.weight, self.bias, self.bn)))
        if self.down is not None:
            f["down_w"], f["down_b"] = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return f


class InfoGCN(GCNBackbone):
    """InfoGCN's encoder: :class:`JointEmbedding` then blocks ``relu(MSTCN(SA-GC(x)) + res(x))``.

    Args: ``width`` and the stage overrides as :class:`~finetec.models.backbones.stgcn.STGCN` (the plan's first
    block is replaced by the embedding); ``num_heads`` (3), ``topology_init`` ('identity' | 'graph'),
    ``modality_k`` (None or k >= 1), ``rel_reduction`` (8: ``d = C_in // 8``), TCN ``kernel_size`` (5) and
    ``dilations`` ((1, 2)), ``tcn_dropout``, ``data_bn_type`` / ``num_person`` of the data BN.
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, num_heads: int = 3,
                 topology_init: str = "identity", modality_k: int | None = None, rel_reduction: int = 8,
                 kernel_size: int = 5, dilations: Sequence[int] = (1, 2), tcn_dropout: float = 0.0) -> None:
        if topology_init not in ("identity", "graph"):
            raise ValueError(f"topology_init must be 'identity' or 'graph', got {topology_init!r}")
        if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        V = layout.num_joints
        base = cfg["base_channels"]
        plan = stage_plan(in_channels, ch_ratio=2, **cfg)[1:]  # block 1 -> the joint embedding
        topo = torch.eye(V) if topology_init == "identity" else torch.from_numpy(layout.adjacency("binary")[0])
        topo = topo.repeat(num_heads, 1, 1)
        mode = None if modality_k is None else mode_matrix(layout, modality_k)
        blocks = []
        for cin, cout, stride, residual in plan:
            gcn = SAGC(cin, cout, topo, rel_reduction)
            tcn = CTRMSTCN(cout, cout, kernel_size, stride, dilations, tcn_dropout)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(JointEmbedding(in_channels, base, V, mode, data_bn_type, num_person), blocks, in_channels,
                         V, plan[-1][1] if plan else base)
        self.layout_name = layout.name


@register_model("infogcn")
def build_infogcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                  dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                  inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                  data_bn_type: str | None = "VC", num_person: int = 2, num_heads: int = 3,
                  topology_init: str = "identity", modality_k: int | None = None, rel_reduction: int = 8,
                  kernel_size: int = 5, dilations: Sequence[int] = (1, 2), tcn_dropout: float = 0.0) -> Recognizer:
    """InfoGCN recognizer without its information-bottleneck head (options: see :class:`InfoGCN`; ``width``
    'standard' | 'slim', head ``dropout``)."""
    bb = InfoGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
                 num_person, num_heads, topology_init, modality_k, rel_reduction, kernel_size, dilations, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="infogcn")
