"""MMAction2's own GCN recognizers (its maintained port of PYSKL's ST-GCN, ST-GCN++ and AAGCN), for timing.

MMAction2 cannot be installed beside our torch build (mmcv pulls its own), so this loads the four files that
define the networks -- ``mmaction/models/backbones/{stgcn,aagcn}.py`` and ``mmaction/models/utils/{graph,
gcn_utils}.py`` -- from an unpacked wheel or a source checkout, and gives them small stand-ins for what they import
from mmengine / mmcv / the registry: ``BaseModule`` (an ``nn.Module`` that accepts ``init_cfg``), ``ModuleList``,
``Sequential``, ``build_norm_layer`` (BatchNorm2d only) and ``build_activation_layer`` (ReLU only). The networks'
own code -- every layer, every forward -- is MMAction2's, unchanged. Get it with::

    pip download --no-deps mmaction2==1.2.0 -d /tmp/mm && unzip -q /tmp/mm/mmaction2-1.2.0-*.whl -d /tmp/mm/src
    python benchmarks/throughput.py --mmaction2 /tmp/mm/src --models stgcn,stgcnpp,aagcn --widths standard

MMAction2 1.2.0 has no CTR-GCN; ``kinds`` lists what it has.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

FILES = ("mmaction/models/utils/graph.py", "mmaction/models/utils/gcn_utils.py",
         "mmaction/models/backbones/stgcn.py", "mmaction/models/backbones/aagcn.py")
kinds = ("stgcn", "stgcnpp", "aagcn")
LAYOUTS = {"coco17": "coco", "nturgbd25": "nturgb+d", "openpose18": "openpose"}  # ours -> MMAction2's graph names


class _BaseModule(nn.Module):
    def __init__(self, init_cfg=None) -> None:  # init_cfg: mmengine's weight init, not needed to time
        super().__init__()


def _build_norm_layer(cfg: dict, channels: int):
    if cfg.get("type") not in ("BN", "BN2d"):
        raise NotImplementedError(f"stand-in build_norm_layer knows BatchNorm only, got {cfg}")
    return "bn", nn.BatchNorm2d(channels)


def _build_activation_layer(cfg: dict):
    if cfg.get("type") != "ReLU":
        raise NotImplementedError(f"stand-in build_activation_layer knows ReLU only, got {cfg}")
    return nn.ReLU()


class _Registry:
    def register_module(self, *args, **kwargs):
        return lambda cls: cls


def _module(name: str, package: bool = False, **attrs) -> types.ModuleType:
    m = types.ModuleType(name)
    if package:
        m.__path__ = []
    m.__dict__.update(attrs)
    return m


def load(root: "str | Path") -> Callable[..., nn.Module]:
    """``build(kind, layout, num_classes, in_channels, num_person) -> recognizer`` from MMAction2's files under
    ``root`` (the folder that holds ``mmaction/``); layout is MMAction2's name ('coco', 'nturgb+d', 'openpose')."""
    root = Path(root).expanduser()
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"--mmaction2 {root}: not an unpacked mmaction2 (missing {', '.join(missing)}); "
                                "see benchmarks/mmaction2_ref.py for how to get it")
    saved = {k: sys.modules.get(k) for k in ("mmengine", "mmengine.model", "mmcv", "mmcv.cnn", "mmaction",
                                             "mmaction.registry", "mmaction.models", "mmaction.models.utils",
                                             "mmaction.models.backbones", *(f[:-3].replace("/", ".") for f in FILES))}
    utils = _module("mmaction.models.utils", package=True)
    sys.modules.update({
        "mmengine": _module("mmengine", package=True),
        "mmengine.model": _module("mmengine.model", BaseModule=_BaseModule, ModuleList=nn.ModuleList,
                                  Sequential=nn.Sequential),
        "mmcv": _module("mmcv", package=True),
        "mmcv.cnn": _module("mmcv.cnn", build_norm_layer=_build_norm_layer,
                            build_activation_layer=_build_activation_layer),
        "mmaction": _module("mmaction", package=True),
        "mmaction.registry": _module("mmaction.registry", MODELS=_Registry()),
        "mmaction.models": _module("mmaction.models", package=True),
        "mmaction.models.utils": utils,
        "mmaction.models.backbones": _module("mmaction.models.backbones", package=True),
    })
    try:
        mods = {}
        for f in FILES:
            name = f[:-3].replace("/", ".")
            spec = importlib.util.spec_from_file_location(name, root / f)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            mods[name.rsplit(".", 1)[1]] = mod
            if name.endswith("graph"):
                utils.Graph = mod.Graph
            elif name.endswith("gcn_utils"):
                utils.__dict__.update({k: v for k, v in vars(mod).items() if not k.startswith("_")})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    stgcn, aagcn = mods["stgcn"].STGCN, mods["aagcn"].AAGCN

    def build(kind: str, layout: str, num_classes: int, in_channels: int, num_person: int) -> nn.Module:
        # PYSKL's / MMAction2's configs: ST-GCN on its 'stgcn_spatial' graph; ST-GCN++ = STGCN with adaptive
        # 'init' graphs, residual GCN and the multi-scale TCN on the 'spatial' graph; AAGCN with its defaults
        kw = dict(in_channels=in_channels, num_person=num_person)
        if kind == "stgcn":
            bb = stgcn(graph_cfg=dict(layout=layout, mode="stgcn_spatial"), **kw)
        elif kind == "stgcnpp":
            bb = stgcn(graph_cfg=dict(layout=layout, mode="spatial"), gcn_adaptive="init", gcn_with_res=True,
                       tcn_type="mstcn", **kw)
        elif kind == "aagcn":
            bb = aagcn(graph_cfg=dict(layout=layout, mode="spatial"), **kw)
        else:
            raise ValueError(f"MMAction2 has no {kind!r} here; it has {kinds}")
        return _Recognizer(bb, num_classes, num_person, bb.graph.A.shape[-1], in_channels)

    return build


class _Recognizer(nn.Module):
    """Backbone + MMAction2's GCNHead at inference (mean over persons, frames and joints; linear)."""

    def __init__(self, backbone: nn.Module, num_classes: int, num_person: int, num_joints: int,
                 in_channels: int) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():  # the backbone's output width, from one small forward in eval mode
            width = backbone.eval()(torch.zeros(1, num_person, 8, num_joints, in_channels)).shape[2]
        backbone.train()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.backbone(x).mean((1, 3, 4)))  # [N, M, C, T, V] -> [N, K]
