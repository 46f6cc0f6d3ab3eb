"""Sequence-completion baselines (the non-ICL rows of the paper's Table 3 and Figure 4) and their registry.

A completer maps ``(x [B, T, V, C], mask [B, T] bool, mode='compact'|'inplace') -> [B, T, V, C]`` on the full
time axis. Non-learned completers are plain functions; learned ones are ``nn.Module`` classes that also provide
``compute_loss(x, mask, mode, target, weight)``. ``create_completer(name, **kw)`` returns the function itself
(no options) or an instance of the class built with ``kw``; ``list_completers()`` names them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from typing import Any, Callable, TypeVar

import torch.nn as nn

__all__ = [
    "register_completer", "create_completer", "list_completers", "get_completer",
    "lr_copy", "rl_copy", "linear_interp", "duplicate", "place_on_time_axis", "SiMLPe",
]

_C = TypeVar("_C", bound=Callable[..., Any])
_COMPLETERS: dict[str, Callable[..., Any]] = {}
_OPTIONAL_BUILTINS = ("sic",)  # modules of this package that register completers once they exist


def register_completer(name: str | None = None, *, overwrite: bool = False) -> Callable[[_C], _C]:
    """Decorator registering a completer function or ``nn.Module`` class under ``name`` (default: lowercased
    ``__name__``)."""

    def deco(obj: _C) -> _C:
        key = (name or obj.__name__).lower()
        if not key or not key.replace("_", "").isalnum():
            raise ValueError(f"completer name {key!r} must be alphanumeric (with _)")
        if key in _COMPLETERS and _COMPLETERS[key] is not obj and not overwrite:
            raise ValueError(f"completer {key!r} is already registered (by {_COMPLETERS[key].__module__}); "
                             "pass overwrite=True to replace it")
        _COMPLETERS[key] = obj
        return obj

    return deco


def _load_builtins() -> None:
    for mod in _OPTIONAL_BUILTINS:
        full = f"{__name__}.{mod}"
        if importlib.util.find_spec(full) is not None:
            importlib.import_module(full)
    if "finetec" not in _COMPLETERS:  # FineTec's own completion (Eq. 14) lives with the rest of FineTec
        from ..finetec.completion import ContextCompletion

        _COMPLETERS["finetec"] = ContextCompletion


def list_completers() -> list[str]:
    """Names accepted by :func:`create_completer`, sorted."""
    _load_builtins()
    return sorted(_COMPLETERS)


def get_completer(name: str) -> Callable[..., Any]:
    """The registered function or class ``name`` (``KeyError`` listing the known names otherwise)."""
    _load_builtins()
    key = str(name).lower()
    if key not in _COMPLETERS:
        raise KeyError(f"unknown completer {name!r}; available completers: {', '.join(sorted(_COMPLETERS))}")
    return _COMPLETERS[key]


def create_completer(name: str, **kw: Any) -> Callable[..., Any]:
    """The completer ``name``: the function itself for non-learned ones (which take no options), or
    ``cls(**kw)`` for an ``nn.Module`` class; unknown options raise ``TypeError`` listing the accepted ones."""
    obj = get_completer(name)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        if kw:
            raise TypeError(f"create_completer({name!r}): a non-learned completer takes no options, got {sorted(kw)}")
        return obj
    params = inspect.signature(obj).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [p for p in params if p != "self"]
        unknown = sorted(set(kw) - set(accepted))
        if unknown:
            raise TypeError(f"create_completer({name!r}): unknown option(s) {unknown}; accepted: {accepted}")
    return obj(**kw)


from .classic import duplicate, linear_interp, lr_copy, place_on_time_axis, rl_copy  # noqa: E402
from .simlpe import SiMLPe  # noqa: E402
