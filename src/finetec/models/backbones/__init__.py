"""Backbones; importing this package registers the built-in recognizers (``stgcn``, ``stgcnpp``, ``aagcn``,
``ctrgcn``, ``posec3d``, ``posec3d_limb``, ``sparse_stgcn``)."""

from . import aagcn, ctrgcn, posec3d, sparse_stgcn, stgcn  # noqa: F401  (registration side effect)
from .aagcn import AAGCN
from .ctrgcn import CTRGCN
from .posec3d import PoseC3D
from .sparse_stgcn import SparseSTGCN
from .stgcn import STGCN

__all__ = ["STGCN", "AAGCN", "CTRGCN", "PoseC3D", "SparseSTGCN"]
