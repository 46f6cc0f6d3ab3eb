"""One registry of recognizers: ``create_model(name, num_classes, layout, in_channels, **kw)``.

A builder is registered with :func:`register_model` and called as
``builder(num_classes=..., layout=<Layout>, in_channels=..., **kw)``; it returns an ``nn.Module`` mapping
``x [N, M, T, V, C]`` to logits ``[N, num_classes]`` (see docs/architecture.md for ``needs_mask`` /
``returns_aux``). Keyword options are checked against the builder's signature before it is called, so a typo
is reported with the options the model accepts.
"""

from __future__ import annotations

import inspect
import numbers
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import torch.nn as nn

from ..layouts import Layout, get_layout

__all__ = ["register_model", "create_model", "list_models", "get_builder"]

Builder = Callable[..., nn.Module]
_B = TypeVar("_B", bound=Builder)
_MODELS: dict[str, Builder] = {}


def register_model(name: str | None = None, *, overwrite: bool = False) -> Callable[[_B], _B]:
    """Decorator registering a builder (function or class) under ``name`` (default: its ``__name__`` lowercased)."""

    def deco(builder: _B) -> _B:
        key = (name or builder.__name__).lower()
        if not key or not key.replace("_", "").replace("+", "").isalnum():
            raise ValueError(f"model name {key!r} must be alphanumeric (with _ or +)")
        if key in _MODELS and _MODELS[key] is not builder and not overwrite:
            raise ValueError(f"model {key!r} is already registered (by {_MODELS[key].__module__}); "
                             "pass overwrite=True to replace it")
        _MODELS[key] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted."""
    _load_builtins()
    return sorted(_MODELS)


def get_builder(name: str) -> Builder:
    _load_builtins()
    key = str(name).lower()
    if key not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available models: {', '.join(sorted(_MODELS))}")
    return _MODELS[key]


def create_model(
    name: str,
    num_classes: int,
    layout: "str | Path | Mapping[str, Any] | Layout" = "coco17",
    in_channels: int = 3,
    **kw: Any,
) -> nn.Module:
    """Build recognizer ``name`` for ``num_classes`` classes on ``layout`` (name, YAML path, dict or Layout).

    ``in_channels`` is C of the input ``[N, M, T, V, C]`` (3 for PYSKL's 2D ``x, y, score`` and for 3D joints).
    Common options: ``width='standard'|'slim'``, ``dropout``; others are model specific (see the builder).
    ``sfhead={...}`` plugs SF-Head into the model's GCN blocks (options of
    :func:`finetec.models.sfhead.attach_sfhead`, e.g. ``{'mode': 'auxiliary', 'groups': 8}``); any GCN model accepts it.
    """
    builder = get_builder(name)
    sfhead = kw.pop("sfhead", None)
    for what, v in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"create_model({name!r}): {what} must be a positive int, got {v!r}")
    num_classes, in_channels = int(num_classes), int(in_channels)
    lay = get_layout(layout)
    sig = inspect.signature(builder)
    params = sig.parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [p for p in params if p not in ("num_classes", "layout", "in_channels", "self")]
        unknown = sorted(set(kw) - set(accepted))
        if unknown:
            raise TypeError(f"create_model({name!r}): unknown option(s) {unknown}; accepted: {accepted}")
    model = builder(num_classes=num_classes, layout=lay, in_channels=in_channels, **kw)
    if sfhead is None or sfhead is False:
        return model
    from .sfhead import attach_sfhead

    if sfhead is True:
        sfhead = {}
    if not isinstance(sfhead, Mapping):
        raise TypeError(f"create_model({name!r}): sfhead must be a mapping of SF-Head options, got {sfhead!r}")
    return attach_sfhead(model, **sfhead)


def _load_builtins() -> None:
    # the built-in recognizers register themselves on import
    from . import backbones, finetec, multimodal  # noqa: F401
