"""Backbones; importing this package registers the built-in recognizers (``stgcn``, ``stgcnpp``, ``aagcn``,
``ctrgcn``, ``posec3d``, ``posec3d_limb``, ``sparse_stgcn``, ``infogcn``, ``hdgcn``, ``blockgcn``, ``protogcn``)."""

from . import aagcn, blockgcn, ctrgcn, hdgcn, infogcn, posec3d, protogcn, sparse_stgcn, stgcn  # noqa: F401
from .aagcn import AAGCN
from .blockgcn import BlockGCN
from .ctrgcn import CTRGCN
from .hdgcn import HDGCN
from .infogcn import InfoGCN
from .posec3d import PoseC3D
from .protogcn import ProtoGCN
from .sparse_stgcn import SparseSTGCN
from .stgcn import STGCN

__all__ = ["STGCN", "AAGCN", "CTRGCN", "PoseC3D", "SparseSTGCN", "InfoGCN", "HDGCN", "BlockGCN", "ProtoGCN"]
