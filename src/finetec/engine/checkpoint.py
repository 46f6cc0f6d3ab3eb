"""Checkpoint I/O: Lightning training checkpoints and exported inference weights.

* :class:`SafeCheckpointIO` is the Lightning ``CheckpointIO`` plugin the runner installs: it writes checkpoints
  with :func:`finetec.utils.io.atomic_write` (a killed run never leaves a half-written ``last.ckpt``) and always
  loads with ``torch.load(weights_only=True)``, whatever the caller asks.
* :func:`export_model` writes ``<name>.pth`` (``{'state_dict', 'meta'}``: the recognizer's plain state dict and
  what is needed to rebuild it) plus ``<name>.yaml`` (the full config), both atomically.
* :func:`load_weights` reads either an exported ``.pth`` or a Lightning ``.ckpt`` with ``weights_only=True`` and
  returns ``(state_dict, meta, config)``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import yaml
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..utils.io import atomic_write, atomic_write_text

__all__ = ["CheckpointError", "SafeCheckpointIO", "safe_torch_load", "export_model", "load_weights"]

FORMAT = "finetec-weights-v1"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not what the caller expects."""


def safe_torch_load(path: "str | os.PathLike", map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError / RuntimeError / EOFError for bad files
        raise CheckpointError(f"cannot load checkpoint {path} with weights_only=True: {type(e).__name__}: {e}") from e


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic saves, ``weights_only=True`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO does not take storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        with atomic_write(path, "wb") as f:
            f.write(buf.getbuffer())

    def load_checkpoint(self, path: Any, map_location: Optional[Callable] = None,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        return safe_torch_load(path, map_location=map_location if map_location is not None else "cpu")


def export_model(model: torch.nn.Module, meta: Mapping[str, Any], config: Mapping[str, Any],
                 path: "str | os.PathLike") -> Path:
    """Write ``path`` (``.pth``: state dict + meta) and the config next to it (same stem, ``.yaml``)."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "state_dict": state, "meta": dict(meta), "config": dict(config)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    with atomic_write(path, "wb") as f:
        f.write(buf.getbuffer())
    atomic_write_text(path.with_suffix(".yaml"), yaml.safe_dump(dict(config), sort_keys=False))
    return path


def load_weights(path: "str | os.PathLike") -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """``(state_dict, meta, config)`` of the recognizer from an exported ``.pth`` or a Lightning ``.ckpt``.

    For a Lightning checkpoint the ``model.`` prefix of :class:`~finetec.engine.lit.LitRecognizer` is stripped and
    meta/config come from its saved hyper-parameters.
    """
    obj = safe_torch_load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    if obj.get("format") == FORMAT:
        return dict(obj["state_dict"]), dict(obj.get("meta") or {}), dict(obj.get("config") or {})
    if "state_dict" in obj and "hyper_parameters" in obj:
        hp = obj["hyper_parameters"]
        sd = {k[len("model."):]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
        if not sd:
            raise CheckpointError(f"{path}: Lightning checkpoint has no 'model.*' weights (not a finetec run?)")
        meta = {k: hp.get(k) for k in ("num_classes", "layout", "in_channels", "classes")}
        return sd, meta, dict(hp.get("config") or {})
    raise CheckpointError(f"{path}: neither a finetec export ({FORMAT}) nor a Lightning checkpoint "
                          f"(keys: {sorted(map(str, obj))[:8]})")
