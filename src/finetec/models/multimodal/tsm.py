"""TSM (Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV 2019) on a ResNet-50, the
RGB backbone of the paper (Sec. 4.2), with the paper's STAA (Sec. 3.2, :mod:`.staa`) in its bottlenecks.

``x [N, T, 3, H, W]`` (RGB, pixel values 0..255) -> ImageNet normalisation -> every frame through a ResNet-50 whose
bottlenecks shift 1/``shift_div`` of the channels one frame back and as many one frame forward on the residual
branch (TSM's ``blockres`` placement) -> global average pool, dropout, linear -> per-frame logits averaged over T
(TSM's average consensus) -> ``[N, num_classes]``.

Parameter and buffer names are torchvision's ``resnet50`` (``conv1``, ``bn1``, ``layer1..4.{i}.conv1/bn1/conv2/bn2/
conv3/bn3``, ``layer{s}.0.downsample.0/1``, ``fc``): the shift is parameter-free, STAA adds ``layer{s}.{i}.staa.*``
keys and the normalisation constants are non-persistent buffers, so ImageNet weights load as they are
(:func:`load_torchvision_resnet50`).

Choices: STAA sits in every bottleneck of the stages in ``staa_stages``, between ``relu(bn1(conv1(shift(x))))`` and
``conv2`` (``C = planes`` channels); it keeps its own initialisation (see :mod:`.staa`) while the ResNet uses
torchvision's (Kaiming-normal fan-out convs, BN weight 1 / bias 0) and the classifier normal(0, 0.01), bias 0. The
stride sits on ``conv2`` (torchvision's v1.5). ``width='slim'`` divides every layer's width by 4 (base 16, 512
features) for CPU runs. A checkpoint without ``num_batches_tracked`` entries (torchvision's original ResNet-50
file predates them) still loads: those keys are reported as missing and keep their value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..registry import register_model
from .staa import STAA, STAA_MODES, check_num_frames

__all__ = ["TSM_WIDTHS", "temporal_shift", "Bottleneck", "TSMResNet50", "load_torchvision_resnet50", "build_tsm"]

TSM_WIDTHS = {"standard": 64, "slim": 16}  # base channels of the stem and of layer1's planes
STAGE_BLOCKS = (3, 4, 6, 3)
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, pixel values 0..255
IMAGENET_STD = (58.395, 57.12, 57.375)


def temporal_shift(x: torch.Tensor, num_frames: int, shift_div: int = 8) -> torch.Tensor:
    """TSM's shift on ``x [N*T, C, H, W]``: with ``fold = C // shift_div``, channels ``[0, fold)`` take the next
    frame's values, ``[fold, 2 fold)`` the previous frame's, the rest are unchanged; zeros where nothing shifts in
    (the last / first frame of each clip). Returns a new tensor of the same shape."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"temporal_shift: input must be a [N*T, C, H, W] tensor, got {shape}")
    check_num_frames(num_frames, "temporal_shift")
    if x.shape[0] % num_frames or x.shape[0] == 0:
        raise ValueError(f"temporal_shift: the batch dimension {x.shape[0]} of {tuple(x.shape)} is not a positive "
                         f"multiple of num_frames={num_frames}")
    if isinstance(shift_div, bool) or not isinstance(shift_div, int) or shift_div < 2:
        raise ValueError(f"temporal_shift: shift_div must be an int >= 2, got {shift_div!r}")
    NT, C, H, W = x.shape
    fold = C // shift_div
    if fold == 0:
        raise ValueError(f"temporal_shift: C={C} channels < shift_div={shift_div}: nothing would shift")
    x5 = x.view(NT // num_frames, num_frames, C, H, W)
    out = torch.zeros_like(x5)
    out[:, :-1, :fold] = x5[:, 1:, :fold]  # from the next frame (shift left in time)
    out[:, 1:, fold:2 * fold] = x5[:, :-1, fold:2 * fold]  # from the previous frame (shift right in time)
    out[:, :, 2 * fold:] = x5[:, :, 2 * fold:]
    return out.view(x.shape)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck (v1.5: stride on ``conv2``) with TSM's residual shift on the ``conv1``
    branch and an optional STAA between ``relu(bn1(conv1))`` and ``conv2``; ``forward(x [N*T, C, H, W], T)``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, shift_div: int = 8,
                 staa: str = "none") -> None:
        super().__init__()
        out = planes * self.expansion
        self.shift_div = shift_div
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.staa = STAA(planes, staa) if staa != "none" else None
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
                           if stride != 1 or inplanes != out else None)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(temporal_shift(x, num_frames, self.shift_div))))
        if self.staa is not None:
            y = self.staa(y, num_frames)
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class TSMResNet50(nn.Module):
    """TSM ResNet-50 (+ STAA): ``x [N, T, 3, H, W]`` float RGB 0..255 -> logits ``[N, num_classes]``.

    Args:
        num_classes: classifier outputs.
        width: ``'standard'`` (64 base channels, the real ResNet-50, 2048 features) or ``'slim'`` (16, 512 features).
        staa: ``'none'`` (TSM, Table 4's baseline), ``'ma'`` (+MA) or ``'staa'`` (+STAA).
        staa_stages: the stages (1..4) whose bottlenecks get STAA.
        shift_div: 1/shift_div of the channels shift each way (TSM: 8).
        dropout: before the classifier (TSM: 0.5).
    """

    needs_mask = False
    returns_aux = False
    input_kind = "rgb"

    def __init__(self, num_classes: int, width: str = "standard", staa: str = "none",
                 staa_stages: Sequence[int] = (1, 2, 3, 4), shift_div: int = 8, dropout: float = 0.5) -> None:
        super().__init__()
        if width not in TSM_WIDTHS:
            raise ValueError(f"tsm: unknown width {width!r}; choose one of {sorted(TSM_WIDTHS)}")
        if staa not in ("none",) + STAA_MODES:
            raise ValueError(f"tsm: staa must be one of {('none',) + STAA_MODES}, got {staa!r}")
        stages = tuple(staa_stages) if isinstance(staa_stages, (list, tuple)) else None
        if stages is None or any(isinstance(s, bool) or s not in (1, 2, 3, 4) for s in stages):
            raise ValueError(f"tsm: staa_stages must be a list of stage numbers in 1..4, got {staa_stages!r}")
        if isinstance(shift_div, bool) or not isinstance(shift_div, int) or shift_div < 2:
            raise ValueError(f"tsm: shift_div must be an int >= 2, got {shift_div!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"tsm: dropout must be in [0, 1), got {dropout!r}")
        base = TSM_WIDTHS[width]
        self.num_classes, self.width, self.staa_mode = num_classes, width, staa
        self.staa_stages = tuple(sorted(set(int(s) for s in stages))) if staa != "none" else ()
        self.shift_div = shift_div
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = base
        for s, nb in enumerate(STAGE_BLOCKS, start=1):
            planes = base * 2 ** (s - 1)
            mode = staa if s in self.staa_stages else "none"
            blocks = []
            for j in range(nb):
                blocks.append(Bottleneck(inplanes, planes, 2 if (j == 0 and s > 1) else 1, shift_div, mode))
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{s}", nn.Sequential(*blocks))
        self.out_channels = inplanes
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(inplanes, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, STAA):
                m.reset_parameters()
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"tsm: input must be an RGB clip tensor [N, T, 3, H, W], got {shape}")
        N, T, C, H, W = x.shape
        if C != 3:
            raise ValueError(f"tsm: input [N, T, C, H, W] must have C=3 (RGB), got {tuple(x.shape)}")
        if min(N, T, H, W) < 1:
            raise ValueError(f"tsm: empty input [N, T, C, H, W] = {tuple(x.shape)} (N, T, H, W must be >= 1)")
        if not x.is_floating_point():
            raise TypeError(f"tsm: input must be a floating-point tensor of pixel values 0..255, got {x.dtype}")

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled per-frame features ``[N, T, out_channels]`` of ``x [N, T, 3, H, W]``."""
        self._check(x)
        N, T = x.shape[:2]
        y = (x.reshape(N * T, *x.shape[2:]) - self.pixel_mean) / self.pixel_std
        y = self.maxpool(F.relu(self.bn1(self.conv1(y))))
        for s in range(1, len(STAGE_BLOCKS) + 1):
            for block in getattr(self, f"layer{s}"):
                y = block(y, T)
        return y.mean(dim=(2, 3)).view(N, T, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.frame_features(x)
        return self.fc(self.dropout(feat)).mean(dim=1)  # average consensus over the T frames

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, width={self.width!r}, staa={self.staa_mode!r}, "
                f"staa_stages={self.staa_stages}, shift_div={self.shift_div}")


def _read_state_dict(source: Any) -> dict[str, torch.Tensor]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"load_torchvision_resnet50: no such file {str(path)!r}")
        source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, Mapping) and isinstance(source.get("state_dict"), Mapping):
        source = source["state_dict"]
    if not isinstance(source, Mapping):
        raise TypeError(f"load_torchvision_resnet50: expected a state dict (or {{'state_dict': ...}}), got "
                        f"{type(source).__name__}")
    sd: dict[str, torch.Tensor] = {}
    for k, v in source.items():
        key = str(k)[len("module."):] if str(k).startswith("module.") else str(k)
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"load_torchvision_resnet50: entry {k!r} is a {type(v).__name__}, not a tensor")
        sd[key] = v
    return sd


def load_torchvision_resnet50(model: nn.Module, source: Any, strict: bool = True) -> dict[str, list[str]]:
    """Load a torchvision-named ResNet-50 state dict (a path, a state dict or ``{'state_dict': ...}``; a leading
    ``module.`` is stripped) into ``model``.

    A shape mismatch outside ``fc`` (e.g. a 'slim' model and a standard checkpoint) is a ValueError naming the first
    such key and both shapes; ``fc.*`` with another shape than the model's classifier is skipped. Model keys the file
    lacks may only be STAA keys, ``fc.*`` or BN ``num_batches_tracked``; file keys the model lacks are an error
    unless ``strict=False``. Returns ``{'loaded', 'missing', 'unexpected', 'skipped'}`` (lists of keys).
    """
    sd = _read_state_dict(source)
    own = model.state_dict()
    skipped = []
    if any(k.startswith("fc.") and k in own and own[k].shape != v.shape for k, v in sd.items()):
        skipped = [k for k in sd if k.startswith("fc.") and k in own]
    for k, v in sd.items():
        if k in own and k not in skipped and own[k].shape != v.shape:
            raise ValueError(f"load_torchvision_resnet50: shape mismatch at {k!r}: file {tuple(v.shape)} vs model "
                             f"{tuple(own[k].shape)} (is the model's width the checkpoint's? a standard ResNet-50 "
                             f"needs width='standard')")
    unexpected = [k for k in sd if k not in own]
    if unexpected and strict:
        raise ValueError(f"load_torchvision_resnet50: {len(unexpected)} key(s) of the file are not in the model, e.g. "
                         f"{unexpected[:5]}; pass strict=False to ignore them")
    missing = [k for k in own if k not in sd]
    bad = [k for k in missing if not (".staa." in k or k.startswith("fc.") or k.endswith("num_batches_tracked"))]
    if bad:
        raise ValueError(f"load_torchvision_resnet50: {len(bad)} model key(s) are not in the file, e.g. {bad[:5]} "
                         "(only STAA keys, fc.* and num_batches_tracked may be missing)")
    loaded = [k for k in sd if k in own and k not in skipped]
    model.load_state_dict({k: sd[k] for k in loaded}, strict=False)
    return {"loaded": loaded, "missing": missing, "unexpected": unexpected, "skipped": skipped}


@register_model("tsm")
def build_tsm(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard", staa: str = "none",
              staa_stages: Sequence[int] = (1, 2, 3, 4), shift_div: int = 8, dropout: float = 0.5,
              pretrained: str | os.PathLike | None = None) -> TSMResNet50:
    """TSM ResNet-50 for RGB clips ``[N, T, 3, H, W]`` (``layout`` is ignored; ``in_channels`` must be 3).

    ``pretrained``: a torchvision-named ResNet-50 state-dict file loaded with :func:`load_torchvision_resnet50`
    (its report is kept as ``model.pretrained_report``). Other options: see :class:`TSMResNet50`.
    """
    if in_channels != 3:
        raise ValueError(f"tsm: in_channels must be 3 (RGB frames), got {in_channels}")
    model = TSMResNet50(num_classes, width=width, staa=staa, staa_stages=staa_stages, shift_div=shift_div,
                        dropout=dropout)
    model.pretrained_report = load_torchvision_resnet50(model, pretrained) if pretrained is not None else None
    return model
