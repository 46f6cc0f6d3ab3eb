"""Classification head (PYSKL's ``GCNHead``)."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ClsHead"]


class ClsHead(nn.Module):
    """Global average pool over ``(T, V)``, mean over persons, dropout, linear.

    ``forward(feat [N, M, C, T, V]) -> logits [N, num_classes]``; ``pool`` gives the pooled ``[N, C]`` features.
    The linear layer is initialised as PYSKL's (normal, std 0.01; bias 0).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0, init_std: float = 0.01) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.num_classes = in_channels, num_classes
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, 0, init_std)
        nn.init.constant_(self.fc.bias, 0)

    @staticmethod
    def pool(feat: torch.Tensor) -> torch.Tensor:
        if feat.dim() != 5:
            raise ValueError(f"head expects features [N, M, C, T, V], got shape {tuple(feat.shape)}")
        return feat.mean(dim=(3, 4)).mean(dim=1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = self.pool(feat)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"head built for {self.in_channels} channels, features have {x.shape[1]}")
        return self.fc(self.dropout(x))
