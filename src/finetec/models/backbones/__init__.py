"""GCN backbones; importing this package registers the built-in recognizers
(``stgcn``, ``stgcnpp``, ``aagcn``, ``ctrgcn``)."""

from . import aagcn, ctrgcn, stgcn  # noqa: F401  (registration side effect)
from .aagcn import AAGCN
from .ctrgcn import CTRGCN
from .stgcn import STGCN

__all__ = ["STGCN", "AAGCN", "CTRGCN"]
