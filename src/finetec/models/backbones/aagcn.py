"""AAGCN (Shi et al., "Skeleton-based action recognition with multi-stream adaptive graph convolutional networks",
IEEE TIP 2020), as PYSKL's ``AAGCN`` backbone.

Each graph conv (``unit_aagcn``) uses, per partition k, the adjacency ``A_k + alpha * C_k(x)`` where ``A_k`` is a
learned matrix initialised from the graph (B_k of the paper folded into A_k, as in PYSKL) and ``C_k`` is the
data-dependent similarity ``tanh(theta_k(x)^T phi_k(x) / (I*T))`` of embedded joints (the paper's adaptive
graph convolution, with PYSKL's tanh/alpha form), followed by the spatial, temporal and channel attention
modules (the paper's STC attention): ``y <- y * (1 + s)`` for each.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, FusableMixin, GCNBackbone, UnitTCN, aggregate_post, bn_cl, bn_init, conv_init,
                     fold_bn, from_cl, kaiming_fan_out, make_residual, mix, resolve_width, stage_plan, to_cl)

__all__ = ["UnitAAGCN", "AAGCN", "build_aagcn"]


class UnitAAGCN(FusableMixin, nn.Module):
    """PYSKL's ``unit_aagcn`` on logical ``[B, C, T, V]`` (output channels_last).

    ``conv_a``/``conv_b`` of all K partitions run as one 1x1 conv (``ab``), ``conv_d`` of all partitions as one
    1x1 conv over the ``K*C`` aggregated channels (``weight_d [O, K*C]``; one bias, the sum of PYSKL's K biases).
    The attention means are computed without materialising the intermediate attended tensors.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, coff_embedding: int = 4,
                 adaptive: bool = True, attention: bool = True) -> None:
        super().__init__()
        A = torch.as_tensor(A, dtype=torch.float32)
        K, V = A.shape[0], A.shape[-1]
        self.in_channels, self.out_channels, self.num_subsets, self.num_joints = in_channels, out_channels, K, V
        self.inter_c = max(out_channels // coff_embedding, 1)
        self.adaptive, self.attention = adaptive, attention
        if adaptive:
            self.A = nn.Parameter(A.clone())
            self.alpha = nn.Parameter(torch.zeros(1))
            self.weight_ab = nn.Parameter(torch.empty(2 * K * self.inter_c, in_channels))
            self.bias_ab = nn.Parameter(torch.zeros(2 * K * self.inter_c))
            kaiming_fan_out(self.weight_ab, self.inter_c)  # conv_init of each conv_a / conv_b
        else:
            self.register_buffer("A", A.clone())
        self.weight_d = nn.Parameter(torch.empty(out_channels, K * in_channels))
        nn.init.normal_(self.weight_d, 0.0, math.sqrt(2.0 / (out_channels * in_channels * K)))  # conv_branch_init
        self.bias_d = nn.Parameter(torch.zeros(out_channels))
        self.bn = nn.BatchNorm1d(out_channels)
        bn_init(self.bn, 1e-6)
        if in_channels != out_channels:
            self.down = nn.Linear(in_channels, out_channels)
            conv_init(self.down)
            self.down_bn = nn.BatchNorm1d(out_channels)
        else:
            self.down, self.down_bn = None, None
        if attention:
            self.conv_ta = nn.Conv1d(out_channels, 1, 9, padding=4)
            nn.init.constant_(self.conv_ta.weight, 0)
            nn.init.constant_(self.conv_ta.bias, 0)
            ker = V if V % 2 else V - 1
            self.conv_sa = nn.Conv1d(out_channels, 1, ker, padding=(ker - 1) // 2)
            nn.init.xavier_normal_(self.conv_sa.weight)
            nn.init.constant_(self.conv_sa.bias, 0)
            rr = 2
            self.fc1c = nn.Linear(out_channels, out_channels // rr)
            self.fc2c = nn.Linear(out_channels // rr, out_channels)
            nn.init.kaiming_normal_(self.fc1c.weight)
            nn.init.constant_(self.fc1c.bias, 0)
            nn.init.constant_(self.fc2c.weight, 0)
            nn.init.constant_(self.fc2c.bias, 0)

    def _aggregate(self, xc: torch.Tensor) -> torch.Tensor:
        """``xc [B, T, V, C]`` -> ``[B, T, W, K*C]`` aggregated with the (adaptive) adjacency."""
        if not self.adaptive:
            return aggregate_post(xc, self.A)
        B, T, V, C = xc.shape
        K, I = self.num_subsets, self.inter_c
        ab = mix(xc, self.weight_ab, self.bias_ab).view(B, T, V, 2, K, I)
        # data-dependent graph C_k[b, v, w] = sum_{t, i} theta[b,t,v,k,i] phi[b,t,w,k,i] / (I*T) (PYSKL scaling)
        S = torch.einsum("btvki,btwki->bkvw", ab[:, :, :, 0], ab[:, :, :, 1])
        An = self.A.to(S.dtype) + torch.tanh(S / (I * T)) * self.alpha.to(S.dtype)  # [B, K, V, W]
        Ap = An.permute(0, 3, 1, 2).reshape(B, 1, V * K, V)  # [(w, k), v]
        xa = torch.matmul(Ap.to(xc.dtype), xc)  # [B, T, W*K, C]
        return xa.view(B, T, V, K * C)

    def _attend(self, y: torch.Tensor) -> torch.Tensor:
        """STC attention on ``y [B, T, V, O]`` (PYSKL order: spatial, temporal, channel; each ``y * (1 + s)``)."""
        B, T, V, O = y.shape
        s1 = torch.sigmoid(self.conv_sa(y.mean(1).transpose(1, 2)))  # [B, 1, V] spatial attention
        f1 = 1 + s1  # [B, 1, V]
        # u[b, t, o] = sum_v f1[b, v] y[b, t, v, o]: the joint-sum of the spatially attended tensor
        u = torch.matmul(f1.to(y.dtype).unsqueeze(1).expand(B, T, 1, V), y).squeeze(2)  # [B, T, O]
        s2 = torch.sigmoid(self.conv_ta((u / V).transpose(1, 2)))  # [B, 1, T] temporal attention
        f2 = 1 + s2
        m_c = torch.matmul(f2.to(u.dtype), u).squeeze(1) / (T * V)  # [B, O]: mean of the ST-attended tensor
        s3 = torch.sigmoid(self.fc2c(F.relu(self.fc1c(m_c))))  # [B, O] channel attention
        ftv = (f1.view(B, 1, V, 1) * f2.view(B, T, 1, 1)).to(y.dtype)
        return y * ftv * (1 + s3).to(y.dtype).view(B, 1, 1, O)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = to_cl(x)
        xa = self._aggregate(xc)
        if self._use_fused():
            f = self.fused()
            y = mix(xa, f["wd"], f["bd"], f["_packed"])
            y = y.add_(mix(xc, f["down_w"], f["down_b"], f["_packed"]) if self.down is not None else xc).relu_()
        else:
            y = bn_cl(self.bn, mix(xa, self.weight_d, self.bias_d))
            y = y.add_(bn_cl(self.down_bn, mix(xc, self.down.weight, self.down.bias)) if self.down is not None
                       else xc).relu_()
        if self.attention:
            y = self._attend(y)
        return from_cl(y)

    def _compute_fused(self) -> dict[str, Any]:
        f: dict[str, Any] = dict(zip(("wd", "bd"), fold_bn(self.weight_d, self.bias_d, self.bn)))
        if self.down is not None:
            f["down_w"], f["down_b"] = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return f


class AAGCN(GCNBackbone):
    """PYSKL's ``AAGCN`` backbone: blocks ``relu(unit_tcn(unit_aagcn(x)) + res(x))``.

    Args: see :class:`~finetec.models.backbones.stgcn.STGCN` for the stage options; ``coff_embedding`` (I = O / 4),
    ``adaptive``, ``attention`` as PYSKL's ``gcn_*`` options. PYSKL uses ``data_bn_type='MVC'`` with 2 persons;
    the default here is ``'VC'`` so that any number of persons works (identical for M = 1).
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, coff_embedding: int = 4,
                 adaptive: bool = True, attention: bool = True, tcn_dropout: float = 0.0) -> None:
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        A = torch.from_numpy(layout.adjacency("spatial"))
        plan = stage_plan(in_channels, ch_ratio=2, **cfg)
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            gcn = UnitAAGCN(cin, cout, A, coff_embedding, adaptive, attention)
            tcn = UnitTCN(cout, cout, 9, stride=stride, dropout=tcn_dropout if i > 0 else 0.0)
            conv_init(tcn.conv)
            bn_init(tcn.bn, 1)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(DataBN(in_channels, layout.num_joints, data_bn_type, num_person), blocks, in_channels,
                         layout.num_joints, plan[-1][1])
        self.layout_name = layout.name


@register_model("aagcn")
def build_aagcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                data_bn_type: str | None = "VC", num_person: int = 2, coff_embedding: int = 4,
                adaptive: bool = True, attention: bool = True, tcn_dropout: float = 0.0) -> Recognizer:
    """AAGCN recognizer (options: see :class:`AAGCN`; ``width`` 'standard' | 'slim', head ``dropout``)."""
    bb = AAGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
               num_person, coff_embedding, adaptive, attention, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="aagcn")

