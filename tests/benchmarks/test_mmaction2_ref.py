"""benchmarks/mmaction2_ref.py: MMAction2's GCN files load with the stand-ins, on a generated tree of the same shape."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import mmaction2_ref  # noqa: E402

# the imports and call shapes of MMAction2 1.2.0's files, with a tiny network behind them
GRAPH = """
import numpy as np
class Graph:
    def __init__(self, layout='coco', mode='spatial'):
        assert layout == 'coco'
        self.A = np.stack([np.eye(17)] * 3).astype('float32')
"""
GCN_UTILS = """
import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmengine.model import BaseModule, ModuleList, Sequential
class unit_gcn(BaseModule):
    def __init__(self, cin, cout, A, norm='BN', act='ReLU', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(cin, cout, 1)
        self.bn = build_norm_layer(dict(type=norm), cout)[1]
        self.act = build_activation_layer(dict(type=act))
    def forward(self, x):
        return self.act(self.bn(self.conv(x)))
"""
BACKBONE = """
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList
from mmaction.registry import MODELS
from ..utils import Graph, unit_gcn
@MODELS.register_module()
class {cls}(BaseModule):
    def __init__(self, graph_cfg, in_channels=3, num_person=2, init_cfg=None, **kwargs):
        super().__init__(init_cfg=init_cfg)
        self.graph = Graph(**graph_cfg)
        self.in_channels = in_channels
        self.gcn = ModuleList([unit_gcn(in_channels, 8, None), unit_gcn(8, 5, None)])
    def forward(self, x):
        N, M, T, V, C = x.shape
        x = x.permute(0, 1, 4, 2, 3).reshape(N * M, C, T, V)
        for g in self.gcn:
            x = g(x)
        return x.reshape((N, M) + x.shape[1:])
"""


def _tree(root: Path) -> Path:
    files = {"mmaction/models/utils/graph.py": GRAPH, "mmaction/models/utils/gcn_utils.py": GCN_UTILS,
             "mmaction/models/backbones/stgcn.py": BACKBONE.format(cls="STGCN"),
             "mmaction/models/backbones/aagcn.py": BACKBONE.format(cls="AAGCN")}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def test_builds_recognizers_and_leaves_no_stand_ins_behind(tmp_path):
    def ours():
        return {k for k in sys.modules if k.split(".")[0] in ("mmengine", "mmcv", "mmaction")}

    before = ours()
    build = mmaction2_ref.load(_tree(tmp_path))
    assert ours() == before  # the stand-ins and the loaded files do not stay importable
    for kind in mmaction2_ref.kinds:
        m = build(kind, "coco", 7, 3, 1)
        assert m.fc.in_features == 5  # the backbone's output width, probed
        out = m(torch.randn(2, 1, 6, 17, 3))
        assert out.shape == (2, 7) and m.training
        assert isinstance(m.backbone.gcn[0].bn, torch.nn.BatchNorm2d)
    with pytest.raises(ValueError, match="no 'ctrgcn'"):
        build("ctrgcn", "coco", 7, 3, 1)


def test_wrong_folder_and_unknown_layers_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an unpacked mmaction2 .*stgcn.py"):
        mmaction2_ref.load(tmp_path)
    with pytest.raises(NotImplementedError, match="BatchNorm only"):
        mmaction2_ref._build_norm_layer({"type": "LN"}, 4)
