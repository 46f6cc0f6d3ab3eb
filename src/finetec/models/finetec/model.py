"""The FineTec recognizer: completion -> decomposition -> physics -> fusion -> GCN backbone -> head.

``FineTec`` is a registered recognizer (``create_model('finetec', ...)``) with the usual input ``x [N, M, T, V, C]``
(C = 3: x, y, score, the corrupted clip) and the valid-frame mask ``[N, T]`` (``needs_mask``); it returns
``(logits, aux)`` (``returns_aux``) with ``aux['loss_ac'] = lambda * L_Ac`` in training (Eq. 17: the engine adds
it to the cross-entropy of Eq. 15).

Per person (``B = N*M`` sequences of positions ``[B, T, V, 2]``):

1. ``completion`` (Eq. 14, :mod:`.completion`): S_base from the corrupted sequence; ``'icl'`` (ours),
   ``'interpolation'`` / ``'duplication'`` (Figure 4's alternatives, no parameters) or ``'none'`` (Table 4 without
   completion: the corrupted sequence as it is).
2. ``decomposition`` (Eq. 2-3, :mod:`.decomposition`): S_pred and, in training, S_dyna / S_stat.
3. ``physics`` (Eq. 4-13, :mod:`.physics`): the fused acceleration a of each of S_base, S_dyna, S_stat (one batched
   call); a_pred is that of the variant chosen as S_pred; L_Ac (Eq. 16) over the three. Without
   physics (Table 4's ablation) a is the plain finite-difference acceleration and there is no L_Ac.
4. ``fusion``: cross-attention (``'ca'``) or an MLP (``'mlp'``) of S_pred and a_pred -> ``[B, T, V, dim]``.
5. the GCN recognizer (``backbone``, any registered one; ST-GCN++ by default) on ``[N, M, T, V, dim]``.

Choices (docs/finetec.md collects them): after completion every frame and joint counts as present (weight 1); the
score channel of the input is used only to find observed frames and joints (see :func:`observed_sequences`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ...layouts import Layout
from ..recognizer import check_input
from ..registry import create_model, register_model
from .decomposition import SpatialDecomposition
from .fusion import CrossAttentionFusion, MLPFusion
from .physics import PhysicsAcceleration, l_ac, pseudo_acceleration

__all__ = ["FineTec", "observed_sequences", "COMPLETIONS", "FUSIONS"]

COMPLETIONS = ("icl", "interpolation", "duplication", "none")
FUSIONS = ("ca", "mlp")


def observed_sequences(x: torch.Tensor, mask: torch.Tensor | None,
                       mode: str = "compact") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x [N, M, T, V, C]`` (+ ``mask [N, T]``) -> positions ``[N*M, T, V, 2]``, observed frames ``[N*M, T]`` and
    joint weights ``[N*M, T, V]`` (score > 0 in an observed frame; all ones when C < 3).

    Observed frames: the valid frames; in ``inplace`` mode a valid frame in which no joint is present counts as
    missing too (in ``compact`` mode it keeps its slot: the survivors' order is all that tells their time, and a
    compact clip whose valid frames are not a prefix is compacted again). Joints
    invisible inside observed frames are filled from the same joint's other observations
    (:func:`~finetec.models.completion.classic.fill_missing_joints`). A sequence without any observed frame (a padded
    person) keeps the valid-frame mask, so completers see a non-empty row; its weights stay 0.
    """
    from ..completion.classic import fill_missing_joints

    N, M, T, V, C = x.shape
    S = x[..., :2].reshape(N * M, T, V, 2)
    present = (x[..., 2] > 0) if C >= 3 else torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
    valid = torch.ones(N, T, dtype=torch.bool, device=x.device) if mask is None else mask.to(torch.bool)
    if valid.shape != (N, T):
        raise ValueError(f"mask must be [N, T] = {(N, T)}, got {tuple(valid.shape)}")
    valid = valid[:, None, :].expand(N, M, T).reshape(N * M, T)
    present = present.reshape(N * M, T, V) & valid[..., None]
    observed = present.any(-1) if mode == "inplace" else valid
    observed = torch.where(observed.any(-1, keepdim=True), observed, valid)
    if mode == "compact":
        # a compact clip with holes (a further in-place drop after compaction, e.g. Table 6's T-low / T-high):
        # its survivors move to the front again -- their times are unknown anyway
        from ...corruption.batched import apply_keep

        S, _ = apply_keep(S, observed, "compact")
        present, observed = apply_keep(present, observed, "compact")
    S = fill_missing_joints(S, present, observed)
    return S, observed, (present & observed[..., None]).to(x.dtype)


class FineTec(nn.Module):
    """FineTec (Shao et al., AAAI 2026). See the module docstring.

    Args:
        num_classes, layout, in_channels: as for every registered recognizer (``in_channels`` >= 2; x, y first).
        clip_len: T of the clips (the completion MLPs are built for it).
        backbone: registered GCN name; ``width`` / ``dropout`` / ``backbone_kw`` go to it.
        completion: one of :data:`COMPLETIONS`; ``completion_kw`` go to ``ContextCompletion``.
        decomposition: use the spatial decomposition (``use_dyna`` / ``use_stat`` for Table 5).
        physics: use the physics-driven acceleration (``physics_kw`` go to ``PhysicsAcceleration``).
        fusion: ``'ca'`` or ``'mlp'``; ``fusion_dim`` is the channel count the backbone receives.
        lambda_ac: the weight of L_Ac in Eq. 17.
        mode: ``'compact'`` (the paper) or ``'inplace'``: how the input's dropped frames are laid out.
    """

    needs_mask = True
    returns_aux = True

    def __init__(self, num_classes: int, layout: Layout, in_channels: int = 3, *, clip_len: int = 48,
                 backbone: str = "stgcnpp", width: str = "standard", dropout: float = 0.0,
                 backbone_kw: dict[str, Any] | None = None, completion: str = "icl",
                 completion_kw: dict[str, Any] | None = None, decomposition: bool = True, use_dyna: bool = True,
                 use_stat: bool = True, physics: bool = True, physics_kw: dict[str, Any] | None = None,
                 fusion: str = "ca", fusion_dim: int = 16, lambda_ac: float = 0.1, mode: str = "compact") -> None:
        super().__init__()
        if completion not in COMPLETIONS:
            raise ValueError(f"finetec: completion must be one of {list(COMPLETIONS)}, got {completion!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"finetec: fusion must be one of {list(FUSIONS)}, got {fusion!r}")
        if mode not in ("compact", "inplace"):
            raise ValueError(f"finetec: mode must be 'compact' or 'inplace', got {mode!r}")
        if in_channels < 2:
            raise ValueError(f"finetec: needs x, y coordinates (in_channels >= 2), got {in_channels}")
        if backbone.lower() == "finetec":
            raise ValueError("finetec: the backbone must be a GCN recognizer, not finetec itself")
        V = layout.num_joints
        self.layout_name = layout.name
        self.num_joints, self.in_channels, self.clip_len = V, int(in_channels), int(clip_len)
        self.num_classes = num_classes
        self.mode, self.completion_kind, self.lambda_ac = mode, completion, float(lambda_ac)
        if completion == "icl":
            from .completion import ContextCompletion

            self.completion = ContextCompletion(clip_len, V, **(completion_kw or {}))
        else:
            self.completion = None
        self.decomposition = SpatialDecomposition(layout.region_index, layout.flip_index, use_dyna=use_dyna,
                                                  use_stat=use_stat) if decomposition else None
        self.physics = PhysicsAcceleration(V, **(physics_kw or {})) if physics else None
        self.fusion = (CrossAttentionFusion if fusion == "ca" else MLPFusion)(channels_in=2, dim=fusion_dim)
        self.recognizer = create_model(backbone, num_classes, layout, in_channels=self.fusion.out_channels,
                                       width=width, dropout=dropout, **(backbone_kw or {}))
        self.name = "finetec"

    # ------------------------------------------------------------------ stages
    def complete(self, S: torch.Tensor, observed: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        """S_base ``[B, T, V, 2]`` and its joint weights."""
        if self.completion_kind == "none":
            return S, weight
        if self.completion_kind == "icl":
            S_base = self.completion(S, observed, mode=self.mode)
        else:
            from ..completion import get_completer

            S_base = get_completer(self.completion_kind)(S, observed, self.mode)
        return S_base, torch.ones_like(weight)

    def accelerations(self, seqs: list[torch.Tensor], weight: torch.Tensor) -> tuple[list[torch.Tensor],
                                                                                      torch.Tensor | None]:
        """The fused acceleration of each sequence (one batched call) and L_Ac over them (None without physics)."""
        k = len(seqs)
        S = torch.cat(seqs, 0)
        w = weight.repeat(k, 1, 1)
        if self.physics is None:
            return list(pseudo_acceleration(S, weight=w).chunk(k, 0)), None
        a, parts = self.physics(S, w)
        a_hat = parts["a_hat"]
        loss = l_ac([(a_hat, a)], weights=parts.get("a_weight"))  # Eq. 16 (the mean over the k sequences)
        return list(a.chunk(k, 0)), loss

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        check_input(self.name, x, self.num_joints, self.in_channels)
        N, M, T, V, C = x.shape
        if T != self.clip_len and self.completion is not None:
            raise ValueError(f"finetec: the completion is built for clip_len={self.clip_len}, input has T={T}")
        S, observed, weight = observed_sequences(x, mask, self.mode)
        S_base, w_base = self.complete(S, observed, weight)
        if self.decomposition is not None:
            S_pred, parts = self.decomposition(S_base, w_base)
        else:
            S_pred, parts = S_base, {}
        aux: dict[str, Any] = {}
        if self.training and self.decomposition is not None:
            seqs = [parts["S_base"], parts["S_dyna"], parts["S_stat"]]
            accs, loss = self.accelerations(seqs, w_base)
            if "choice" in parts:  # a_pred: the acceleration of the variant S_pred is
                a_pred = torch.stack(accs, 0)[parts["choice"], torch.arange(S.shape[0], device=S.device)]
            else:
                a_pred = accs[0]
        else:
            accs, loss = self.accelerations([S_pred], w_base)
            a_pred = accs[0]
        if loss is not None and self.training:
            aux["loss_ac"] = self.lambda_ac * loss  # Eq. 17
        feats = self.fusion(S_pred, a_pred.to(S_pred.dtype))
        logits = self.recognizer(feats.reshape(N, M, T, V, -1))
        return logits, aux

    def train(self, mode: bool = True) -> "FineTec":
        """As ``nn.Module.train``, except that a frozen completion (no trainable parameter, e.g. ``init.freeze``)
        stays in eval mode: stage 2 then sees exactly the S_base it is evaluated with (nearest prompt, fixed
        prompt mask) instead of the training-time random prompts."""
        super().train(mode)
        if self.completion is not None and not any(p.requires_grad for p in self.completion.parameters()):
            self.completion.eval()
        return self

    def fuse_for_inference(self, enabled: bool = True) -> "FineTec":
        self.recognizer.fuse_for_inference(enabled)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


register_model("finetec")(FineTec)
