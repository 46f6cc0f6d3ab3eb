"""ST-GCN (Yan et al., AAAI 2018) and ST-GCN++ (PYSKL, Duan et al. 2022), as in PYSKL's ``STGCN`` backbone.

ST-GCN: data BN over ``V*C``; 10 blocks ``relu(unit_tcn(unit_gcn(x)) + res(x))`` with Yan et al.'s 3 spatial
partitions (root / closer / further from the centre: ``Layout.adjacency('stgcn_spatial')``), edge-importance weighting (``A * PA``, ``gcn_adaptive='importance'``)
and a 9x1 temporal conv + BN.

ST-GCN++ (PYSKL config ``stgcn++``): the same backbone with ``gcn_adaptive='init'`` (the adjacency itself is a
parameter initialised from the graph ``[I, inward, outward]``: ``Layout.adjacency('spatial')``),
``gcn_with_res=True`` and ``tcn_type='mstcn'``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ...layouts import Layout
from ..recognizer import Recognizer
from ..registry import register_model
from .common import MSTCN, Block, DataBN, GCNBackbone, UnitGCN, UnitTCN, make_residual, resolve_width, stage_plan

__all__ = ["STGCN", "build_stgcn", "build_stgcnpp"]


class STGCN(GCNBackbone):
    """PYSKL's ``STGCN`` backbone on a :class:`~finetec.layouts.Layout`.

    Args:
        layout: the skeleton; its ``adjacency('spatial')`` gives the graph.
        in_channels: C of the input ``[N, M, T, V, C]``.
        width: ``'standard'`` or ``'slim'`` (see ``common.WIDTHS``); ``base_channels``, ``num_stages``,
            ``inflate_stages``, ``down_stages`` override it.
        ch_ratio: width multiplier at each inflate stage.
        data_bn_type: ``'VC'`` (default here; any number of persons), ``'MVC'`` (needs ``num_person``) or None.
        gcn_adaptive: None, ``'init'``, ``'offset'`` or ``'importance'`` (ST-GCN's edge importance).
        gcn_with_res: residual inside each ``unit_gcn`` (ST-GCN++).
        gcn_order: ``'auto'``/``'pre'``/``'post'``, the evaluation order of mixing and aggregation (speed only).
        tcn_type: ``'unit_tcn'`` (9x1 conv) or ``'mstcn'`` (ST-GCN++'s multi-scale TCN).
        tcn_dropout: dropout at the end of each TCN except the first block's (PYSKL).
    """

    def __init__(
        self,
        layout: Layout,
        in_channels: int = 3,
        width: str = "standard",
        base_channels: int | None = None,
        num_stages: int | None = None,
        inflate_stages: Sequence[int] | None = None,
        down_stages: Sequence[int] | None = None,
        ch_ratio: float = 2,
        data_bn_type: str | None = "VC",
        num_person: int = 2,
        gcn_adaptive: str | None = "importance",
        gcn_with_res: bool = False,
        gcn_order: str = "auto",
        tcn_type: str = "unit_tcn",
        tcn_dropout: float = 0.0,
        graph_mode: str = "spatial",
    ) -> None:
        if tcn_type not in ("unit_tcn", "mstcn"):
            raise ValueError(f"tcn_type must be 'unit_tcn' or 'mstcn', got {tcn_type!r}")
        cfg = resolve_width(width, base_channels=base_channels, num_stages=num_stages,
                            inflate_stages=inflate_stages, down_stages=down_stages)
        A = torch.from_numpy(layout.adjacency(graph_mode))
        plan = stage_plan(in_channels, ch_ratio=ch_ratio, **cfg)
        blocks = []
        for i, (cin, cout, stride, residual) in enumerate(plan):
            drop = tcn_dropout if i > 0 else 0.0
            gcn = UnitGCN(cin, cout, A, adaptive=gcn_adaptive, with_res=gcn_with_res, order=gcn_order)
            if tcn_type == "unit_tcn":
                tcn = UnitTCN(cout, cout, 9, stride=stride, dropout=drop)
            else:
                tcn = MSTCN(cout, cout, stride=stride, dropout=drop)
            blocks.append(Block(gcn, tcn, make_residual(residual, cin, cout, stride)))
        super().__init__(DataBN(in_channels, layout.num_joints, data_bn_type, num_person), blocks, in_channels,
                         layout.num_joints, plan[-1][1])
        self.layout_name = layout.name


_COMMON_DOC = """
    Options: ``width`` ('standard' = PYSKL: base 64, 10 stages, x2 channels and /2 time at stages 5 and 8;
    'slim' = base 32, 6 stages, at stages 3 and 5), ``dropout`` (head), and the :class:`STGCN` arguments
    ``base_channels, num_stages, inflate_stages, down_stages, ch_ratio, data_bn_type, num_person, gcn_adaptive,
    gcn_with_res, gcn_order, tcn_type, tcn_dropout, graph_mode`` (a ``Layout.adjacency`` mode).
"""


@register_model("stgcn")
def build_stgcn(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                ch_ratio: float = 2, data_bn_type: str | None = "VC", num_person: int = 2,
                gcn_adaptive: str | None = "importance", gcn_with_res: bool = False, gcn_order: str = "auto",
                tcn_type: str = "unit_tcn", tcn_dropout: float = 0.0,
                graph_mode: str = "stgcn_spatial") -> Recognizer:
    """ST-GCN recognizer (PYSKL's ST-GCN configs: ``graph_cfg.mode='stgcn_spatial'``, Yan et al.'s partitions)."""
    bb = STGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, ch_ratio,
               data_bn_type, num_person, gcn_adaptive, gcn_with_res, gcn_order, tcn_type, tcn_dropout, graph_mode)
    return Recognizer(bb, num_classes, dropout, name="stgcn")


@register_model("stgcnpp")
def build_stgcnpp(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                  dropout: float = 0.0, base_channels: int | None = None, num_stages: int | None = None,
                  inflate_stages: Sequence[int] | None = None, down_stages: Sequence[int] | None = None,
                  ch_ratio: float = 2, data_bn_type: str | None = "VC", num_person: int = 2,
                  gcn_adaptive: str | None = "init", gcn_with_res: bool = True, gcn_order: str = "auto",
                  tcn_type: str = "mstcn", tcn_dropout: float = 0.0, graph_mode: str = "spatial") -> Recognizer:
    """ST-GCN++ recognizer (PYSKL's ``gcn_adaptive='init', gcn_with_res=True, tcn_type='mstcn'``, graph 'spatial')."""
    bb = STGCN(layout, in_channels, width, base_channels, num_stages, inflate_stages, down_stages, ch_ratio,
               data_bn_type, num_person, gcn_adaptive, gcn_with_res, gcn_order, tcn_type, tcn_dropout, graph_mode)
    return Recognizer(bb, num_classes, dropout, name="stgcnpp")


build_stgcn.__doc__ = (build_stgcn.__doc__ or "") + _COMMON_DOC
build_stgcnpp.__doc__ = (build_stgcnpp.__doc__ or "") + _COMMON_DOC
