"""SF-Head's feature losses (Sec. 3.3): modified cosine distance (Eq. 10), Feature Redundancy Loss F-RL (Eq. 11),
Feature Consistency Loss F-CL with its compensation term (Eq. 12-14) and the total objective's feature terms (Eq. 17).

``d(u, v) = 1 - exp(-alpha (cos(u, v) + 1))`` grows with the cosine similarity: 0 for opposite vectors,
``1 - exp(-2 alpha)`` for parallel ones. Features are flattened per sample (``[N, D]``) and the losses computed in
float32 whatever the autocast dtype.

Choices (the paper gives m = 0.4, gamma = 2, lambda_con = 0.2, lambda_red = 0.1 and no values for the rest):
``alpha = 1``, ``tau = 0.1`` (F-RL logits then span ``[0, 3.5]``), ``eps = 0.01``. Eq. 11's ``1 / 2N`` is read as the
mean of the two directions of the InfoNCE over the batch (spatial -> temporal rows and temporal -> spatial
columns); the sum over ``F`` in Eq. 12/14 runs over the four originals of the aggregated feature,
``F in {f_c, f_t, f_s, f_o}``. Eq. 13 is printed as ``(1 - d)^gamma log d`` (never positive), but the text says
phi "reaches the minimum value 0" when d goes to 0 or 1 and speaks of adaptive selection of uncertain samples: that
is the focal form ``-(1 - d)^gamma log d`` (never negative, minimum 0 at the cut-offs), which we use. With the
printed sign the term's gradient outweighs the soft-margin term's below d = 0.68 and drives ``f_a`` away from its
originals (measured: cos -> -0.99 under gradient descent), the opposite of F-CL's stated purpose. Cosines use ``F.normalize(eps=1e-8)`` (a zero feature has cosine 0, never NaN) and
``log d`` in Eq. 13 is evaluated only where the term is active (``min(d, 1 - d) > eps``), so d = 0 or 1 gives
finite values and gradients.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["modified_cosine_distance", "pairwise_modified_cosine_distance", "feature_redundancy_loss",
           "compensation_term", "feature_consistency_loss", "DEFAULTS"]

DEFAULTS = dict(alpha=1.0, tau=0.1, m=0.4, gamma=2.0, eps=0.01, lambda_con=0.2, lambda_red=0.1)


def _flat(x: torch.Tensor, who: str) -> torch.Tensor:
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"{who}: expected per-sample features [N, ...] with N >= 1, got {tuple(x.shape)}")
    return F.normalize(x.reshape(x.shape[0], -1).float(), dim=1, eps=1e-8)


def modified_cosine_distance(u: torch.Tensor, v: torch.Tensor, alpha: float = DEFAULTS["alpha"]) -> torch.Tensor:
    """``d(u_i, v_i)`` for paired samples ``[N, ...]`` -> ``[N]`` (Eq. 10)."""
    if u.shape != v.shape:
        raise ValueError(f"modified_cosine_distance: shapes differ, {tuple(u.shape)} vs {tuple(v.shape)}")
    cos = (_flat(u, "modified_cosine_distance") * _flat(v, "modified_cosine_distance")).sum(1)
    return 1 - torch.exp(-alpha * (cos + 1))  # Eq. 10


def pairwise_modified_cosine_distance(u: torch.Tensor, v: torch.Tensor,
                                      alpha: float = DEFAULTS["alpha"]) -> torch.Tensor:
    """``D[i, j] = d(u_i, v_j)`` ``[N, N]`` (Eq. 10 for every pair of the batch)."""
    if u.shape != v.shape:
        raise ValueError(f"pairwise_modified_cosine_distance: shapes differ, {tuple(u.shape)} vs {tuple(v.shape)}")
    cos = _flat(u, "pairwise_modified_cosine_distance") @ _flat(v, "pairwise_modified_cosine_distance").T
    return 1 - torch.exp(-alpha * (cos + 1))  # Eq. 10


def feature_redundancy_loss(f_s: torch.Tensor, f_t: torch.Tensor, alpha: float = DEFAULTS["alpha"],
                            tau: float = DEFAULTS["tau"], m: float = DEFAULTS["m"]) -> torch.Tensor:
    """F-RL over the batch between spatial and temporal features ``[N, ...]`` (Eq. 11)."""
    if tau <= 0:
        raise ValueError(f"feature_redundancy_loss: tau must be > 0, got {tau}")
    logits = m * pairwise_modified_cosine_distance(f_s, f_t, alpha) / tau
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))  # Eq. 11


def compensation_term(d: torch.Tensor, gamma: float = DEFAULTS["gamma"], eps: float = DEFAULTS["eps"]) -> torch.Tensor:
    """``phi = -(1 - d)^gamma log d`` where ``min(d, 1 - d) > eps``, else 0 (Eq. 13, focal form; see the module
    docstring for the sign)."""
    active = torch.minimum(d, 1 - d) > eps
    safe = torch.where(active, d, torch.ones_like(d))  # log only where active: finite value and gradient at 0 / 1
    return torch.where(active, -(1 - safe).pow(gamma) * torch.log(safe), torch.zeros_like(d))  # Eq. 13


def feature_consistency_loss(f_a: torch.Tensor, originals: Sequence[torch.Tensor], alpha: float = DEFAULTS["alpha"],
                             m: float = DEFAULTS["m"], gamma: float = DEFAULTS["gamma"],
                             eps: float = DEFAULTS["eps"]) -> torch.Tensor:
    """F-CL: ``1/N sum_i sum_F [log(e^m + (1 - e^m) d(f_a^i, F^i)) + phi^i]`` (Eq. 12-14)."""
    if not originals:
        raise ValueError("feature_consistency_loss: no original features given")
    em = math.exp(m)
    total = f_a.new_zeros(f_a.shape[0], dtype=torch.float32)
    for orig in originals:  # the four originals, not samples
        d = modified_cosine_distance(f_a, orig, alpha)
        total = total + torch.log(em + (1 - em) * d) + compensation_term(d, gamma, eps)  # Eq. 14
    return total.mean()
