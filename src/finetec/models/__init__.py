"""Recognizers: registry, backbones, heads.

``create_model(name, num_classes, layout, in_channels, **kw)`` builds a recognizer mapping
``x [N, M, T, V, C]`` to logits ``[N, num_classes]``; ``list_models()`` names the available ones.
"""

from .registry import create_model, get_builder, list_models, register_model
from .recognizer import Recognizer
from . import backbones, finetec, multimodal  # noqa: E402,F401  (registers the built-in models)

__all__ = ["create_model", "register_model", "list_models", "get_builder", "Recognizer"]
