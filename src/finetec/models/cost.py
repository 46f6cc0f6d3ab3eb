"""Cost of a model: FLOPs counted by ``torch.utils.flop_counter`` and parameter counts.

``torch.utils.flop_counter`` counts a multiply-add as 2 FLOPs and covers matmul / convolution / attention kernels
(element-wise ops, pooling and normalisation are not counted); papers that report "FLOPs" for CNNs often mean
multiply-adds (MACs), i.e. half of this number, so :func:`model_cost` returns both. The count runs under
:func:`~finetec.models.backbones.common.plain_ops`: the oneDNN-only fast paths of the GCNs' inference
(``torch.mkldnn_convolution``) are invisible to the counter, their plain equivalents are not.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

__all__ = ["model_cost"]


def model_cost(model: nn.Module, *inputs: Any, **kwargs: Any) -> dict[str, int]:
    """``{'flops', 'macs', 'params'}`` of one eval-mode forward of ``model(*inputs, **kwargs)`` (no autograd)."""
    from torch.utils.flop_counter import FlopCounterMode

    from .backbones.common import plain_ops

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), plain_ops(), FlopCounterMode(display=False) as counter:
            model(*inputs, **kwargs)
    finally:
        model.train(was_training)
    flops = int(counter.get_total_flops())
    return {"flops": flops, "macs": flops // 2, "params": int(sum(p.numel() for p in model.parameters()))}
