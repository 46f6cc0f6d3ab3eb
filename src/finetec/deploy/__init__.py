"""Deployment: export of recognizers to ONNX / TorchScript with parity checks and model cards
(:mod:`finetec.deploy.export`), and the ``finetec export`` command (:mod:`finetec.deploy.cli`).

Names of :mod:`finetec.deploy.export` are importable from here; they load torch on first use only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_onnx", "export_torchscript", "check_parity", "write_model_card", "build_model_card",
           "load_recognizer", "export_checkpoint", "deployable", "ExportError", "ParityError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module 'finetec.deploy' has no attribute {name!r}")
