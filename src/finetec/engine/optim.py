"""Optimiser and learning-rate schedule of PYSKL's GCN recipes.

SGD (momentum 0.9, Nesterov, weight decay 5e-4 on every parameter; ``type: adamw`` for AdamW) and MMCV's ``CosineAnnealing`` policy with
``by_epoch=False`` (the rate changes every iteration) plus optional linear warm-up, as a ``LambdaLR`` stepped once
per optimiser step. At iteration ``i`` of ``N`` (0-based, ``W`` warm-up iterations)::

    cos(i)  = min_lr + (lr - min_lr) * (1 + cos(pi * i / N)) / 2        # MMCV annealing_cos
    lr(i)   = cos(i) * (1 - (1 - warmup_ratio) * (1 - i / W))   for i < W  # MMCV 'linear' warm-up
    lr(i)   = cos(i)                                              otherwise
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["WarmupCosine", "build_optimizer", "build_scheduler"]


@dataclass
class WarmupCosine:
    """LR multiplier for ``LambdaLR`` (a plain object, so its state is saved with the scheduler)."""

    total_steps: int
    warmup_steps: int = 0
    warmup_ratio: float = 0.1
    min_ratio: float = 0.0  # min_lr / lr

    def __call__(self, step: int) -> float:
        progress = min(step, self.total_steps) / max(self.total_steps, 1)
        factor = self.min_ratio + (1.0 - self.min_ratio) * (1.0 + math.cos(math.pi * progress)) / 2.0
        if step < self.warmup_steps:
            factor *= 1.0 - (1.0 - self.warmup_ratio) * (1.0 - step / self.warmup_steps)
        return factor


def build_optimizer(params: Iterable[torch.nn.Parameter], optim: Mapping[str, Any]) -> torch.optim.Optimizer:
    """``optim['type']`` 'sgd' (default; ``lr``, ``momentum``, ``nesterov``, ``weight_decay``) or 'adamw' (``lr``,
    ``weight_decay``; the completion MLPs' usual choice)."""
    kind = str(optim.get("type", "sgd")).lower()
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=float(optim["lr"]), weight_decay=float(optim.get("weight_decay", 5e-4)))
    if kind != "sgd":
        raise ValueError(f"optim.type must be 'sgd' or 'adamw', got {optim.get('type')!r}")
    return torch.optim.SGD(
        params,
        lr=float(optim["lr"]),
        momentum=float(optim.get("momentum", 0.9)),
        nesterov=bool(optim.get("nesterov", True)),
        weight_decay=float(optim.get("weight_decay", 5e-4)),
    )


def build_scheduler(optimizer: torch.optim.Optimizer, optim: Mapping[str, Any], total_steps: int,
                    steps_per_epoch: int) -> LambdaLR:
    """Per-iteration warm-up + cosine schedule over ``total_steps`` (``warmup_epochs * steps_per_epoch`` warm-up)."""
    if total_steps < 1:
        raise ValueError(f"the schedule needs at least one step, got total_steps={total_steps}")
    lr = float(optim["lr"])
    fn = WarmupCosine(
        total_steps=int(total_steps),
        warmup_steps=int(round(float(optim.get("warmup_epochs", 0)) * steps_per_epoch)),
        warmup_ratio=float(optim.get("warmup_ratio", 0.1)),
        min_ratio=float(optim.get("min_lr", 0.0)) / lr if lr > 0 else 0.0,
    )
    return LambdaLR(optimizer, fn)
