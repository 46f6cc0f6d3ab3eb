"""Heads that turn backbone features ``[N, M, C, T, V]`` into logits."""

from .cls_head import ClsHead

__all__ = ["ClsHead"]
