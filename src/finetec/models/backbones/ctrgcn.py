"""CTR-GCN (Chen et al., "Channel-wise Topology Refinement Graph Convolution", ICCV 2021), as PYSKL's ``CTRGCN``.

Graph conv (``unit_ctrgcn``): for each of the 3 partitions k, CTR-GC refines the shared topology ``A_k`` (a
parameter initialised from the graph) channel-wise with ``alpha * xi(M_k(x))``, where
``M_k[u, v] = tanh(phi(x)_u - psi(x)_v)`` from temporally pooled features (the paper's correlation modeling and
topology refinement), and aggregates ``x3 = conv3_k(x)`` per channel with its own refined graph (channel-wise
aggregation); the K outputs are summed, then BN, residual and ReLU. Temporal module: CTR-GCN's multi-scale TCN (two 5x1 dilated convs d=1,2, a max-pool branch and a 1x1
branch, concatenated, ReLU).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import (Block, DataBN, FusableMixin, GCNBackbone, bn_affine, bn_cl, bn_init, cl_weights, conv2d,
                     fold_bn, from_cl, kaiming_fan_out, make_residual, mix, resolve_width, stage_plan, to_cl)

__all__ = ["UnitCTRGCN", "CTRMSTCN", "CTRGCN", "build_ctrgcn"]


class UnitCTRGCN(FusableMixin, nn.Module):
    """PYSKL's ``unit_ctrgcn`` (K CTR-GC modules, summed, BN, residual, ReLU) on logical ``[B, C, T, V]``.

    The K partitions' ``conv1``/``conv2`` run as one 1x1 conv on the temporal mean of x (the mean commutes with a
    1x1 conv), their ``conv3`` as one 1x1 conv, their ``conv4`` as one batched matmul, and the channel-wise
    aggregation of all partitions as one batched matmul over ``(B, K, O)``. The graph part works in ``[B, C, T, V]``
    memory (the per-channel graphs need the channels outermost); the output is contiguous ``[B, O, T, V]``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, rel_reduction: int = 8) -> None:
        super().__init__()
        A = torch.as_tensor(A, dtype=torch.float32)
        K = A.shape[0]
        self.in_channels, self.out_channels, self.num_subsets = in_channels, out_channels, K
        self.rel_channels = R = 8 if in_channels <= 16 else in_channels // rel_reduction
        self.A = nn.Parameter(A.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        # conv1, conv2 (rows [conv1_k..., conv2_k...]), conv3 (rows k*O + o), conv4 ([K, O, R]); PYSKL conv_init
        self.weight12 = nn.Parameter(torch.empty(2 * K * R, in_channels))
        self.bias12 = nn.Parameter(torch.zeros(2 * K * R))
        self.weight3 = nn.Parameter(torch.empty(K * out_channels, in_channels))
        self.bias3 = nn.Parameter(torch.zeros(K * out_channels))
        self.weight4 = nn.Parameter(torch.empty(K, out_channels, R))
        self.bias4 = nn.Parameter(torch.zeros(K, out_channels))
        kaiming_fan_out(self.weight12, R)
        kaiming_fan_out(self.weight3, out_channels)
        kaiming_fan_out(self.weight4, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        bn_init(self.bn, 1e-6)
        if in_channels != out_channels:
            self.down = nn.Conv2d(in_channels, out_channels, 1)
            kaiming_fan_out(self.down.weight, out_channels)
            nn.init.constant_(self.down.bias, 0)
            self.down_bn = nn.BatchNorm2d(out_channels)
        else:
            self.down, self.down_bn = None, None

    def refined_topology(self, x: torch.Tensor) -> torch.Tensor:
        """Channel-wise graphs ``[B, K, O, V, V]``: ``A_k + alpha * xi(M_k)`` (CTR-GC's topology refinement)."""
        B, C, T, V = x.shape
        K, R, O = self.num_subsets, self.rel_channels, self.out_channels
        xm = x.mean(2).transpose(1, 2)  # [B, V, C] temporal pooling before conv1/conv2 (linear, so it commutes)
        x12 = F.linear(xm, self.weight12, self.bias12).view(B, V, 2, K, R)
        x1 = x12[:, :, 0].permute(0, 2, 3, 1)  # [B, K, R, V]
        x2 = x12[:, :, 1].permute(0, 2, 3, 1)
        D = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))  # [B, K, R, U, V]: correlations M_k
        M = torch.matmul(self.weight4.to(D.dtype), D.reshape(B, K, R, V * V))  # [B, K, O, U*V]: xi (conv4)
        M = (M + self.bias4.to(M.dtype).unsqueeze(-1)) * self.alpha.to(M.dtype)
        return (M + self.A.to(M.dtype).view(1, K, 1, V * V)).view(B, K, O, V, V)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()  # [B, C, T, V] memory
        B, C, T, V = x.shape
        K, O = self.num_subsets, self.out_channels
        G = self.refined_topology(x)
        fused = self._use_fused()
        f = self.fused() if fused else None
        w3, b3 = (f["w3"], f["b3"]) if fused else (self.weight3, self.bias3)
        x3 = conv2d(x, w3[:, :, None, None], b3).view(B, K, O, T, V)
        # channel-wise aggregation, all k at once: z[b,k,o,t,v] = sum_u x3[b,k,o,t,u] G[b,k,o,u,v]; sum over k
        y = torch.matmul(x3, G.to(x3.dtype)).sum(1)  # [B, O, T, V]
        if fused:
            y = y.add_(f["shift"].to(y.dtype).view(1, O, 1, 1))
            res = conv2d(x, f["down_w"], f["down_b"]) if self.down is not None else x
        else:
            y = self.bn(y)
            res = self.down_bn(self.down(x)) if self.down is not None else x
        return F.relu(y.add_(res), inplace=True)

    def _compute_fused(self) -> dict[str, Any]:
        scale, shift = bn_affine(self.bn)
        K = self.num_subsets
        f: dict[str, Any] = {"w3": self.weight3 * scale.repeat(K)[:, None], "b3": self.bias3 * scale.repeat(K),
                             "shift": shift}
        if self.down is not None:
            f["down_w"], f["down_b"] = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return f


class CTRMSTCN(FusableMixin, nn.Module):
    """PYSKL's ``MSTCN`` as used by CTR-GCN (``residual=False``): branches ``1x1 -> BN -> ReLU -> kx1 conv (d) -> BN``
    per dilation, ``1x1 -> BN -> ReLU -> 3x1 max-pool -> BN``, ``strided 1x1 -> BN``; concatenated, ReLU, dropout.

    The leading 1x1 convs of the dilation and max branches run as one conv, their BN as one BN (``pre_bn``); the
    branch-final BNs as one BN over the concatenation (``post_bn``; per channel, so the same as one per branch).
    """

    final_relu = True  # CTR-GCN's MSTCN ends with a ReLU after the concatenation (HD-GCN's does not)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 1,
                 dilations: Sequence[int] = (1, 2), dropout: float = 0.0) -> None:
        super().__init__()
        nb = len(dilations) + 2
        bc = out_channels // nb
        rem = out_channels - bc * (nb - 1)
        self.branch_channels, self.rem_channels, self.stride = bc, rem, stride
        self.in_channels, self.out_channels = in_channels, out_channels
        nd = len(dilations)
        self.pre = nn.Conv2d(in_channels, bc * (nd + 1), 1)
        self.pre_bn = nn.BatchNorm1d(bc * (nd + 1))
        self.tconvs = nn.ModuleList()
        for d in dilations:
            pad = (kernel_size + (kernel_size - 1) * (d - 1) - 1) // 2
            self.tconvs.append(nn.Conv2d(bc, bc, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                                         dilation=(d, 1)))
        self.pre1 = nn.Conv2d(in_channels, rem, 1)
        self.post_bn = nn.BatchNorm1d(out_channels)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None
        for m in self.modules():  # PYSKL MSTCN.init_weights
            if isinstance(m, nn.Conv2d):
                kaiming_fan_out(m.weight, m.out_channels * m.kernel_size[0] * m.kernel_size[1])
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                bn_init(m, 1)
        cl_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        xc = to_cl(x)
        bc, s = self.branch_channels, self.stride
        fused = self._use_fused()
        f = self.fused() if fused else None
        h = mix(xc, f["pre_w"], f["pre_b"], f["_packed"]) if fused else bn_cl(self.pre_bn, mix(xc, self.pre.weight[:, :, 0, 0],
                                                                                     self.pre.bias))
        h = h.relu_()
        outs = []
        for i, conv in enumerate(self.tconvs):
            hb = from_cl(h[..., i * bc:(i + 1) * bc]).contiguous(memory_format=torch.channels_last)
            outs.append(to_cl(conv2d(hb, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation,
                                     f["_packed"] if fused else None)))
        hb = from_cl(h[..., len(self.tconvs) * bc:]).contiguous(memory_format=torch.channels_last)
        outs.append(to_cl(F.max_pool2d(hb, (3, 1), (s, 1), (1, 0))))
        xs = xc[:, ::s] if s > 1 else xc
        outs.append(mix(xs.contiguous() if fused else xs, self.pre1.weight[:, :, 0, 0], self.pre1.bias,
                        f["_packed"] if fused else None))
        feat = torch.cat(outs, dim=-1)
        if fused:
            feat = torch.addcmul(f["post_shift"], feat, f["post_scale"])
        else:
            feat = bn_cl(self.post_bn, feat)
        if self.final_relu:
            feat = feat.relu_()
        if self.drop is not None:
            feat = self.drop(feat)
        return from_cl(feat)

    def _compute_fused(self) -> dict[str, Any]:
        pre_w, pre_b = fold_bn(self.pre.weight[:, :, 0, 0], self.pre.bias, self.pre_bn)
        post_scale, post_shift = bn_affine(self.post_bn)
        return {"pre_w": pre_w, "pre_b": pre_b, "post_scale": post_scale, "post_shift": post_shift}


class CTRGCN(GCNBackbone):
    """PYSKL's ``CTRGCN`` backbone: blocks ``relu(MSTCN(unit_ctrgcn(x)) + res(x))``.

    Args: stage options as :class:`~finetec.models.backbones.stgcn.STGCN`; ``kernel_size`` (5) and ``dilations``
    ((1, 2)) of the TCN, ``rel_reduction`` (8). PYSKL uses ``data_bn_type='MVC'`` with 2 persons; the default here
    is ``'VC'`` so that any number of persons works (identical for M = 1).
    """

    def __init__(self, layout: Layout, in_channels: int = 3, width: str = "standard",
                 base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, kernel_size: int = 5,
                 dilations: Sequence[int] = (1, 2), rel_reduction: int = 8, tcn_dropout: float = 0.0) -> None:
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        A = torch.from_numpy(layout.adjacency("spatial"))
        plan = stage_plan(in_channels, ch_ratio=2, **cfg)
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            gcn = UnitCTRGCN(cin, cout, A, rel_reduction)
            tcn = CTRMSTCN(cout, cout, kernel_size, stride, dilations, tcn_dropout if i > 0 else 0.0)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(DataBN(in_channels, layout.num_joints, data_bn_type, num_person), blocks, in_channels,
                         layout.num_joints, plan[-1][1])
        self.layout_name = layout.name


@register_model("ctrgcn")
def build_ctrgcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                 dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                 inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                 data_bn_type: str | None = "VC", num_person: int = 2, kernel_size: int = 5,
                 dilations: Sequence[int] = (1, 2), rel_reduction: int = 8, tcn_dropout: float = 0.0) -> Recognizer:
    """CTR-GCN recognizer (options: see :class:`CTRGCN`; ``width`` 'standard' | 'slim', head ``dropout``)."""
    bb = CTRGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, data_bn_type,
                num_person, kernel_size, dilations, rel_reduction, tcn_dropout)
    return Recognizer(bb, num_classes, dropout, name="ctrgcn")
