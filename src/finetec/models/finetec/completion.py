"""Context-aware sequence completion (FineTec, "Context-aware Sequence Completion" and Eq. 14).

A prompt pair (S_mask, S_context) -- a skeleton-bank sequence S_context and its copy S_mask corrupted by one of
the five temporal masks -- demonstrates recovery from corruption; the query pair (S_corrupt, S_prior) holds the
input and the bank's prior sequence in the place of the unknown target. Lightweight temporal and spatial MLPs
(MLP-Mixer blocks) process both pairs together and restore S_base. Training minimises L_ICL (Eq. 14).

Choices:

* Tokens: one per frame, ``T`` prompt tokens then ``T`` query tokens (``2T`` in all); the temporal MLP mixes all
  ``2T`` tokens, so the query reads the prompt; the spatial MLP mixes each token's ``dim`` features, an embedding
  of the frame's joint x coordinate values. A token holds ``[input frame (2V), frame-observed flag (1), per-joint
  visibility (V), initial estimate (2V), target slot (2V)]``; the initial estimate is ``linear_interp`` of the
  input (compact input: survivors spread evenly over the clip); the target slot holds S_context in the prompt and
  S_prior in the query. A learned position embedding tells the ``2T`` token positions apart.
* The network predicts a residual on the initial estimate with a zero-initialised output layer, so an untrained
  module returns the linear interpolation.
* Prompt completion: Ŝ_context, the completion of S_mask, is computed by running the prompt as a query of its own
  -- tokens ``(S_mask, S_prior)`` -- with an all-zero (null) prompt, so it never sees S_context. Both passes share
  one batched network call. ``prompt=None`` (the "w/o ICL" ablation of Fig. 5) runs the query with the null
  prompt; it needs no bank (an empty bank then gives S_prior = 0) and has no prompt loss.
* Prompt choice (``prompt='auto'``): ``train_prompt`` (default ``'random'``: a uniform bank entry) in training,
  ``eval_prompt`` (default ``'nearest'``: the entry closest to the query's initial estimate) in evaluation;
  ``'fixed'`` is entry 0.
* Prompt mask (``prompt_mask='auto'``): in training a pattern drawn uniformly from the five and a drop ratio
  uniformly from {0.25, 0.5, 0.75} per sample; in evaluation the deterministic "mirror" of the query's corruption
  (inplace: the query's own kept positions; compact: as many kept frames as the query, evenly spread). The prompt
  is laid out in the query's mode.
* Eq. 14's MSE is a weighted mean over coordinates of the joints visible in the target (weight 0 = invisible
  joint, excluded); Eq. 14's second term compares S_context with the completion of S_mask.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ...corruption.batched import PROMPT_RATIOS, apply_keep, mirror_keep, random_keep
from ...corruption.temporal import MODES
from ..completion.classic import linear_interp
from .bank import SkeletonBank

__all__ = ["ContextCompletion", "MixerBlock", "weighted_mse", "icl_loss", "safe_linear_interp", "PROMPTS"]

PROMPTS = ("random", "nearest", "fixed")


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the coordinates of joints with weight > 0 (``pred/target [B, T, V, C]``,
    ``weight [B, T, V]``); 0 when no joint has weight. Computed in float32."""
    with torch.autocast(device_type=pred.device.type, enabled=False):
        w = weight.float()[..., None]
        err = (pred.float() - target.float()).pow(2)
        return (err * w).sum() / (w.sum() * pred.shape[-1]).clamp_min(1e-12)


def icl_loss(s_base: torch.Tensor, s_gt: torch.Tensor, w_gt: torch.Tensor, s_context_hat: torch.Tensor | None,
             s_context: torch.Tensor | None, w_context: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """L_ICL = MSE(S_gt, S_base) + MSE(S_context, completion of S_mask); the prompt term is 0 without a prompt."""
    loss_query = weighted_mse(s_base, s_gt, w_gt)
    if s_context_hat is None:
        loss_prompt = loss_query.new_zeros(())
    else:
        loss_prompt = weighted_mse(s_context_hat, s_context, w_context)
    return {"loss": loss_query + loss_prompt, "loss_query": loss_query, "loss_prompt": loss_prompt}  # Eq. 14


def safe_linear_interp(x: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """``linear_interp`` that returns zeros for rows without any observed frame (e.g. padding persons)."""
    empty = ~mask.any(1, keepdim=True)
    first = torch.arange(mask.shape[1], device=mask.device)[None, :] == 0
    return linear_interp(torch.where(empty[..., None, None], torch.zeros_like(x), x), mask | (empty & first), mode)


def check_completer_input(module: nn.Module, x: torch.Tensor, mask: torch.Tensor, mode: str) -> None:
    """Clear errors for a learned completer's input: ``x [B, T, V, 2]`` (``module.clip_len``, ``module.num_joints``),
    ``mask [B, T]`` bool, ``mode`` compact / inplace."""
    who, T, V = type(module).__name__, module.clip_len, module.num_joints
    if mode not in MODES:
        raise ValueError(f"{who}: mode must be one of {list(MODES)}, got {mode!r}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1:] != (T, V, 2):
        raise ValueError(f"{who}: x must be [B, T={T}, V={V}, 2], got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != x.shape[:2]:
        raise ValueError(f"{who}: mask must be a bool tensor [B, T] = {tuple(x.shape[:2])}, got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")


class MixerBlock(nn.Module):
    """Pre-norm MLP-Mixer block on ``[B, N, D]``: a temporal MLP across the N tokens, then a spatial MLP across the
    D features of each token; both residual."""

    def __init__(self, tokens: int, dim: int, temporal_hidden: int, spatial_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.norm_t = nn.LayerNorm(dim)
        self.temporal = nn.Sequential(nn.Linear(tokens, temporal_hidden), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(temporal_hidden, tokens), nn.Dropout(dropout))
        self.norm_s = nn.LayerNorm(dim)
        self.spatial = nn.Sequential(nn.Linear(dim, spatial_hidden), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(spatial_hidden, dim), nn.Dropout(dropout))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.temporal(self.norm_t(h).transpose(1, 2)).transpose(1, 2)
        return h + self.spatial(self.norm_s(h))


class ContextCompletion(nn.Module):
    """In-context completion of corrupted skeleton sequences with a skeleton-bank prompt (see module docstring).

    Args:
        clip_len: T, frames per sequence (the bank's clip length).
        num_joints: V.
        bank_size: initial number of bank entries (``bank.load`` may change it).
        dim: token width; depth: number of mixer blocks.
        temporal_hidden: hidden width of the temporal MLPs (default ``2 * clip_len``, the token count).
        spatial_hidden: hidden width of the spatial MLPs (default ``2 * dim``).
        train_prompt / eval_prompt: prompt choice for ``prompt='auto'`` ('random', 'nearest', 'fixed' or None).
        prompt_ratios: drop ratios a random prompt mask draws from.
    """

    def __init__(self, clip_len: int, num_joints: int, bank_size: int = 256, dim: int = 128, depth: int = 4,
                 temporal_hidden: int | None = None, spatial_hidden: int | None = None, dropout: float = 0.0,
                 train_prompt: str | None = "random", eval_prompt: str | None = "nearest",
                 prompt_ratios: tuple[float, ...] = PROMPT_RATIOS) -> None:
        super().__init__()
        for name, p in (("train_prompt", train_prompt), ("eval_prompt", eval_prompt)):
            if p is not None and p not in PROMPTS:
                raise ValueError(f"ContextCompletion: {name} must be one of {list(PROMPTS)} or None, got {p!r}")
        if int(depth) < 1 or int(dim) < 1:
            raise ValueError(f"ContextCompletion: depth and dim must be >= 1, got {depth}, {dim}")
        if not prompt_ratios or not all(0.0 <= float(r) <= 1.0 for r in prompt_ratios):
            raise ValueError(f"ContextCompletion: prompt_ratios must be drop ratios in [0, 1], got {prompt_ratios}")
        self.clip_len, self.num_joints = int(clip_len), int(num_joints)
        self.train_prompt, self.eval_prompt = train_prompt, eval_prompt
        self.prompt_ratios = tuple(float(r) for r in prompt_ratios)
        T, V = self.clip_len, self.num_joints
        self.bank = SkeletonBank(bank_size, T, V)
        self.in_features = 7 * V + 1
        self.embed = nn.Linear(self.in_features, dim)
        self.pos = nn.Parameter(torch.zeros(2 * T, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        th = int(temporal_hidden) if temporal_hidden is not None else 2 * T
        sh = int(spatial_hidden) if spatial_hidden is not None else 2 * dim
        self.blocks = nn.ModuleList(MixerBlock(2 * T, dim, th, sh, dropout) for _ in range(int(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * V)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    # ------------------------------------------------------------------ helpers
    def _check(self, x: torch.Tensor, mask: torch.Tensor, mode: str) -> None:
        check_completer_input(self, x, mask, mode)

    def _resolve_prompt(self, prompt: str | None) -> str | None:
        if prompt == "auto":
            return self.train_prompt if self.training else self.eval_prompt
        if prompt is not None and prompt not in PROMPTS:
            raise ValueError(f"{type(self).__name__}: prompt must be 'auto', one of {list(PROMPTS)} or None, got "
                             f"{prompt!r}")
        return prompt

    @staticmethod
    def _visibility(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Observed joints ``[B, T, V]`` float: valid frame and non-zero coordinates."""
        return (mask[..., None] & (x != 0).any(-1)).to(x.dtype)

    def _tokens(self, inp: torch.Tensor, mask: torch.Tensor, init: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        B, T = mask.shape
        vis = self._visibility(inp, mask)
        return torch.cat([inp.reshape(B, T, -1), mask[..., None].to(inp.dtype), vis, init.reshape(B, T, -1),
                          slot.reshape(B, T, -1)], -1)

    def _network(self, prompt_tokens: torch.Tensor, query_tokens: torch.Tensor) -> torch.Tensor:
        """Residual ``[B, T, V, 2]`` for the query tokens, given ``[B, T, F]`` prompt and query tokens."""
        B, T = query_tokens.shape[:2]
        h = self.embed(torch.cat([prompt_tokens, query_tokens], 1)) + self.pos
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h[:, T:])).reshape(B, T, self.num_joints, 2)

    def _prompt_index(self, how: str, init: torch.Tensor, init_weight: torch.Tensor,
                      generator: torch.Generator | None) -> torch.Tensor:
        B = init.shape[0]
        if how == "random":
            return self.bank.sample(B, generator)
        if how == "nearest":
            return self.bank.nearest(init, init_weight)
        self.bank.check_loaded()
        return torch.zeros(B, dtype=torch.long, device=self.bank.sequences.device)

    def _prompt_keep(self, valid: torch.Tensor, mask: torch.Tensor, mode: str, prompt_mask: str,
                     generator: torch.Generator | None) -> torch.Tensor:
        how = ("random" if self.training else "mirror") if prompt_mask == "auto" else prompt_mask
        if how == "random":
            return random_keep(valid, generator, self.prompt_ratios)
        if how == "mirror":
            return mirror_keep(mask, mode, valid)
        raise ValueError(f"{type(self).__name__}: prompt_mask must be 'auto', 'random' or 'mirror', got "
                         f"{prompt_mask!r}")

    # ------------------------------------------------------------------ API
    def complete(self, x: torch.Tensor, mask: torch.Tensor, mode: str = "compact", prompt: str | None = "auto",
                 prompt_mask: str = "auto", generator: torch.Generator | None = None,
                 complete_prompt: bool = True) -> dict[str, Any]:
        """Run the completion; returns ``S_base [B, T, V, 2]`` and, with a prompt, ``prompt_index [B]``,
        ``S_context``, ``context_weight [B, T, V]``, ``S_mask`` / ``prompt_mask_out`` (the corrupted prompt in the
        query's mode) and, with ``complete_prompt``, ``S_context_hat`` (the completion of S_mask)."""
        self._check(x, mask, mode)
        how = self._resolve_prompt(prompt)
        B, T, V, _ = x.shape
        x = torch.where(mask[..., None, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        init = safe_linear_interp(x, mask, mode)
        if how is not None:
            self.bank.check_loaded()
        prior = self.bank.prior.to(x.dtype)[None].expand(B, T, V, 2)
        out: dict[str, Any] = {}
        if how is None:
            q = self._tokens(x, mask, init, prior)
            delta = self._network(torch.zeros_like(q), q)
            out["S_base"] = init + delta.to(init.dtype)
            return out
        vis = self._visibility(x, mask)[..., None]
        init_w = safe_linear_interp(vis, mask, mode)[..., 0]
        idx = self._prompt_index(how, init, init_w, generator)
        ctx = self.bank.sequences[idx].to(x.dtype)
        cw = self.bank.weights[idx].to(x.dtype)
        keep = self._prompt_keep((cw > 0).any(-1), mask, mode, prompt_mask, generator)
        s_mask, m_mask = apply_keep(ctx, keep, mode)
        init_p = safe_linear_interp(s_mask, m_mask, mode)
        prompt_tokens = self._tokens(s_mask, m_mask, init_p, ctx)
        query_tokens = self._tokens(x, mask, init, prior)
        if complete_prompt:
            own = self._tokens(s_mask, m_mask, init_p, prior)  # the prompt as a query: never sees S_context
            delta = self._network(torch.cat([prompt_tokens, torch.zeros_like(own)]), torch.cat([query_tokens, own]))
            out["S_context_hat"] = init_p + delta[B:].to(init_p.dtype)
            delta = delta[:B]
        else:
            delta = self._network(prompt_tokens, query_tokens)
        out.update(S_base=init + delta.to(init.dtype), prompt_index=idx, S_context=ctx, context_weight=cw,
                   S_mask=s_mask, prompt_mask_out=m_mask)
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mode: str = "compact", prompt: str | None = "auto",
                generator: torch.Generator | None = None) -> torch.Tensor:
        """S_base ``[B, T, V, 2]`` from ``x [B, T, V, 2]`` (corrupted, ``mode`` layout) and ``mask [B, T]`` bool."""
        return self.complete(x, mask, mode, prompt, generator=generator, complete_prompt=False)["S_base"]

    def compute_loss(self, x: torch.Tensor, mask: torch.Tensor, mode: str, target: torch.Tensor,
                     weight: torch.Tensor, generator: torch.Generator | None = None,
                     prompt: str | None = "auto") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(S_base, {'loss', 'loss_query', 'loss_prompt'})`` with ``loss`` = L_ICL (Eq. 14); ``target
        [B, T, V, 2]`` is S_gt, ``weight [B, T, V]`` its joint weights (0 = invisible, excluded)."""
        B, T, V = x.shape[:3]
        if target.shape != (B, T, V, 2) or weight.shape != (B, T, V):
            raise ValueError(f"{type(self).__name__}.compute_loss: target must be {(B, T, V, 2)} and weight "
                             f"{(B, T, V)}, got {tuple(target.shape)} and {tuple(weight.shape)}")
        out = self.complete(x, mask, mode, prompt, generator=generator, complete_prompt=True)
        parts = icl_loss(out["S_base"], target, weight, out.get("S_context_hat"), out.get("S_context"),
                         out.get("context_weight"))
        return out["S_base"], parts
