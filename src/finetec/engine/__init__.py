"""Training and evaluation engine: configs, Lightning module and data module, optimiser, checkpoints, runners.

Importing this package is light; the Lightning-based parts load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DEFAULTS, ConfigError, apply_overrides, dump_config, load_config, merge

__all__ = ["ConfigError", "DEFAULTS", "load_config", "apply_overrides", "merge", "dump_config", "train", "test",
           "LitRecognizer", "SkeletonDataModule", "export_model", "load_weights"]

_LAZY = {
    "train": "runner", "test": "runner", "LitRecognizer": "lit", "SkeletonDataModule": "datamodule",
    "export_model": "checkpoint", "load_weights": "checkpoint",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
