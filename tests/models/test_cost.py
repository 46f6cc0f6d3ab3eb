"""finetec.models.cost: FLOPs of known layers (also through the GCNs' oneDNN fast path) and the parameter count."""

from __future__ import annotations

import torch
import torch.nn as nn

from finetec.models.backbones.common import mix
from finetec.models.cost import model_cost


def test_linear_and_conv_flops_by_hand():
    c = model_cost(nn.Linear(10, 5), torch.zeros(3, 10))
    assert c == {"flops": 2 * 3 * 10 * 5, "macs": 3 * 10 * 5, "params": 55}
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    c = model_cost(conv, torch.zeros(2, 4, 6, 6))
    assert c["macs"] == 2 * 8 * 6 * 6 * 4 * 9 and c["params"] == 8 * 4 * 9


def test_model_mode_is_restored():
    m = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    m.train()
    model_cost(m, torch.zeros(1, 4))
    assert m.training


def test_fast_path_convolutions_are_counted():
    class Mix(nn.Module):  # a 1x1 conv through the GCNs' oneDNN inference path
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 16)

        def forward(self, x):
            return mix(x, self.lin.weight, self.lin.bias)

    c = model_cost(Mix(), torch.zeros(2, 5, 3, 8))  # [B, T, V, C]
    assert c["macs"] == 2 * 5 * 3 * 8 * 16
