"""``Recognizer``: backbone + classification head (PYSKL's ``RecognizerGCN`` with ``GCNHead``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .heads.cls_head import ClsHead

__all__ = ["Recognizer", "check_input"]


def check_input(name: str, x: torch.Tensor, num_joints: int, in_channels: int) -> None:
    """Clear errors for a recognizer input that is not a non-empty floating ``[N, M, T, V, C]`` tensor with the
    model's V and C."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: input must be a [N, M, T, V, C] tensor, got {shape}")
    N, M, T, V, C = x.shape
    if V != num_joints or C != in_channels:
        raise ValueError(f"{name}: built for V={num_joints} joints and C={in_channels} channels, "
                         f"input [N, M, T, V, C] = {tuple(x.shape)}")
    if min(N, M, T) < 1:
        raise ValueError(f"{name}: empty input {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: input must be floating point, got {x.dtype}")


class Recognizer(nn.Module):
    """``x [N, M, T, V, C]`` -> logits ``[N, num_classes]``.

    The backbone maps the input to features ``[N, M, C', T', V]`` (:meth:`extract_features`); the head pools them
    over time and joints, averages the persons, applies dropout and a linear layer.

    :meth:`fuse_for_inference` switches on the evaluation fast path (BatchNorm folded into the preceding
    convolutions, adjacency products cached); it is used in eval mode with autograd off and gives the same outputs
    as the plain eval forward up to float rounding.
    """

    needs_mask = False
    returns_aux = False

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0, name: str = "") -> None:
        super().__init__()
        for attr in ("in_channels", "num_joints", "out_channels"):
            if not hasattr(backbone, attr):
                raise TypeError(f"backbone {type(backbone).__name__} lacks attribute {attr!r}")
        self.backbone = backbone
        self.head = ClsHead(backbone.out_channels, num_classes, dropout)
        self.num_classes = num_classes
        self.name = name or type(backbone).__name__.lower()

    def _check(self, x: torch.Tensor) -> None:
        check_input(self.name, x, self.backbone.num_joints, self.backbone.in_channels)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``[N, M, C', T', V]``."""
        self._check(x)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.extract_features(x))

    # ------------------------------------------------------------------ inference fast path
    def fuse_for_inference(self, enabled: bool = True) -> "Recognizer":
        """Enable (or disable) the folded-BatchNorm evaluation path on every block; returns ``self``.

        It takes effect in eval mode under ``torch.no_grad()``/``torch.inference_mode()``; training and autograd
        always use the plain path. Folded weights are recomputed automatically when parameters change.
        """
        for m in self.modules():
            if m is not self and callable(getattr(m, "enable_fusion", None)):
                m.enable_fusion(enabled)
        return self

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_classes={self.num_classes}"

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

