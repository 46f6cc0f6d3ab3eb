"""Skeleton-in-Context completion baselines SiC-Stat / SiC-Dyna (Table 3), after Wang et al., CVPR 2024.

A small transformer reads ``2T`` frame tokens -- the prompt pair ``[prompt input | prompt target]`` then the query
``[query input | placeholder]`` -- and predicts the query's target (the completed sequence) from the query tokens.
The prompt comes from a :class:`~finetec.models.finetec.bank.SkeletonBank` the module owns: SiC-Stat uses the same
fixed entry (index 0) for every query, SiC-Dyna the entry nearest to the query's linear interpolation (in training a
random entry: the bank holds training clips, so the nearest entry of a training query can be its own clean clip).

Choices: a token is ``[input frame (2V), frame-observed flag (1), target slot (2V)]``; the query placeholder is 0;
a learned position embedding over the ``2T`` tokens; a pre-norm ``nn.TransformerEncoder``; the output is a direct
prediction (no residual on an interpolation, unlike FineTec's completion). The prompt input is the bank entry
corrupted like FineTec's prompt: a random pattern and ratio in training, the mirror of the query's corruption in
evaluation, laid out in the query's mode. The loss is the visibility-weighted MSE on the query target only.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...corruption.batched import PROMPT_RATIOS, apply_keep, mirror_keep, random_keep
from ..finetec.bank import SkeletonBank
from ..finetec.completion import check_completer_input, safe_linear_interp, weighted_mse
from . import register_completer

__all__ = ["SkeletonInContext", "SiCStat", "SiCDyna"]


class SkeletonInContext(nn.Module):
    """Skeleton-in-Context style in-context completer (see module docstring).

    Args:
        clip_len, num_joints: T and V.
        prompt: ``'static'`` (bank entry 0 for every query) or ``'dynamic'`` (the nearest entry).
        bank_size: initial number of bank entries (``bank.load`` may change it).
        dim, depth, heads, ff_dim, dropout: transformer width, layers, attention heads, feed-forward width
            (default ``2 * dim``) and dropout.
    """

    def __init__(self, clip_len: int, num_joints: int, prompt: str = "static", bank_size: int = 256,
                 dim: int = 128, depth: int = 4, heads: int = 4, ff_dim: int | None = None, dropout: float = 0.1,
                 prompt_ratios: tuple[float, ...] = PROMPT_RATIOS) -> None:
        super().__init__()
        if prompt not in ("static", "dynamic"):
            raise ValueError(f"SkeletonInContext: prompt must be 'static' or 'dynamic', got {prompt!r}")
        if int(dim) % int(heads):
            raise ValueError(f"SkeletonInContext: dim={dim} must be divisible by heads={heads}")
        self.clip_len, self.num_joints = int(clip_len), int(num_joints)
        self.prompt = prompt
        self.prompt_ratios = tuple(float(r) for r in prompt_ratios)
        T, V = self.clip_len, self.num_joints
        self.bank = SkeletonBank(bank_size, T, V)
        self.embed = nn.Linear(4 * V + 1, dim)
        self.pos = nn.Parameter(torch.zeros(2 * T, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, int(heads), int(ff_dim) if ff_dim else 2 * dim, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, int(depth), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * V)

    def _check(self, x: torch.Tensor, mask: torch.Tensor, mode: str) -> None:
        check_completer_input(self, x, mask, mode)

    @staticmethod
    def _tokens(inp: torch.Tensor, mask: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        B, T = mask.shape
        return torch.cat([inp.reshape(B, T, -1), mask[..., None].to(inp.dtype), slot.reshape(B, T, -1)], -1)

    def prompt_index(self, x: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
        """The bank entry each query uses: 0 (static) or the nearest to its linear interpolation (dynamic)."""
        self.bank.check_loaded()
        if self.prompt == "static":
            return torch.zeros(x.shape[0], dtype=torch.long, device=self.bank.sequences.device)
        if self.training:
            # the bank holds training clips: the nearest entry of a training query is often its own clean clip,
            # a target leak that teaches copying; in training the dynamic prompt is a random entry (as FineTec's)
            return self.bank.sample(x.shape[0])
        init = safe_linear_interp(x, mask, mode)
        vis = (mask[..., None] & (x != 0).any(-1)).to(x.dtype)[..., None]
        return self.bank.nearest(init, safe_linear_interp(vis, mask, mode)[..., 0])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mode: str = "compact",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The completed sequence ``[B, T, V, 2]`` from ``x [B, T, V, 2]`` and ``mask [B, T]`` bool."""
        self._check(x, mask, mode)
        B, T, V, _ = x.shape
        x = torch.where(mask[..., None, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        idx = self.prompt_index(x, mask, mode)
        ctx = self.bank.sequences[idx].to(x.dtype)
        valid = (self.bank.weights[idx] > 0).any(-1)
        keep = random_keep(valid, generator, self.prompt_ratios) if self.training else mirror_keep(mask, mode, valid)
        s_mask, m_mask = apply_keep(ctx, keep, mode)
        tokens = torch.cat([self._tokens(s_mask, m_mask, ctx), self._tokens(x, mask, torch.zeros_like(x))], 1)
        h = self.encoder(self.embed(tokens) + self.pos)
        return self.head(self.norm(h[:, T:])).reshape(B, T, V, 2).to(x.dtype)

    def compute_loss(self, x: torch.Tensor, mask: torch.Tensor, mode: str, target: torch.Tensor,
                     weight: torch.Tensor, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(prediction, {'loss', 'loss_query'})``: visibility-weighted MSE to ``target [B, T, V, 2]``."""
        B, T, V = x.shape[:3]
        if target.shape != (B, T, V, 2) or weight.shape != (B, T, V):
            raise ValueError(f"{type(self).__name__}.compute_loss: target must be {(B, T, V, 2)} and weight "
                             f"{(B, T, V)}, got {tuple(target.shape)} and {tuple(weight.shape)}")
        out = self(x, mask, mode, generator=generator)
        loss = weighted_mse(out, target, weight)
        return out, {"loss": loss, "loss_query": loss}


@register_completer("sic_stat")
class SiCStat(SkeletonInContext):
    """SiC-Stat: Skeleton-in-Context with a static prompt (bank entry 0)."""

    def __init__(self, clip_len: int, num_joints: int, **kw) -> None:
        super().__init__(clip_len, num_joints, prompt="static", **kw)


@register_completer("sic_dyna")
class SiCDyna(SkeletonInContext):
    """SiC-Dyna: Skeleton-in-Context with a dynamic prompt (the nearest bank entry)."""

    def __init__(self, clip_len: int, num_joints: int, **kw) -> None:
        super().__init__(clip_len, num_joints, prompt="dynamic", **kw)
