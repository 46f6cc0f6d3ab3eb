"""Cost of a model: FLOPs counted by ``torch.utils.flop_counter`` and parameter counts.

``torch.utils.flop_counter`` counts a multiply-add as 2 FLOPs and covers matmul / convolution / attention kernels
(element-wise ops, pooling and normalisation are not counted); papers that report "FLOPs" for CNNs often mean
multiply-adds (MACs), i.e. half of this number, so :func:`model_cost` returns both.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

__all__ = ["model_cost"]


def model_cost(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """``{'flops', 'macs', 'params'}`` of one eval-mode forward of ``model(*inputs, **kwargs)`` (no autograd)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    return {"flops": flops, "macs": flops // 2, "params": int(sum(p.numel() for p in model.parameters()))}
