"""Readers for datasets distributed in their publishers' own formats (Penn Action ``.mat``, NTU ``.skeleton``)."""

from .ntu import NTU_IMG_SHAPE, parse_ntu_name, read_ntu_skeleton
from .penn import PENN_CLASSES, PENN_SOURCE, prepare_penn_action, read_penn_action, read_penn_mat

__all__ = [
    "PENN_CLASSES",
    "PENN_SOURCE",
    "read_penn_mat",
    "read_penn_action",
    "prepare_penn_action",
    "read_ntu_skeleton",
    "parse_ntu_name",
    "NTU_IMG_SHAPE",
]
