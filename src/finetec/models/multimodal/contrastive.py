"""Class-aware contrastive learning of the skeleton branch (Sec. 3.3, Eq. 9-13, Table 5): ``ctrgcn_cl``.

Equations -> code:

* Eq. 9, ``G = g(f(sum_k H W_k A_k))``: :class:`CTRGCNContrastive` -- f is the CTR-GCN encoder
  (:func:`~finetec.models.backbones.ctrgcn.build_ctrgcn`'s backbone, features pooled by its head), g the graph
  projection head :class:`ProjectionHead`.
* FIFO memory bank of features (Sec. 3.3.1): :class:`MemoryBank`.
* Eq. 10, per-class mean cosine similarity ``h_c``: :func:`class_mean_similarity`.
* Negative sampling (Sec. 3.3.1; Table 5's hard / random / class-aware / random+class-aware):
  :func:`sample_negatives`; positives: :func:`sample_positives`.
* Eq. 11, cross-entropy: computed by the engine from the logits (``finetec.engine.lit``).
* Eq. 12, InfoNCE: :func:`info_nce`.
* Eq. 13, ``L = L_CE + L_NCE``: the model returns ``aux = {'loss_nce': loss_weight * L_NCE}`` in training; the
  engine adds every ``loss_*`` entry to the cross-entropy.

Choices (the paper is silent on these):

* g is ``Linear(C', C') -> BatchNorm1d -> ReLU -> Linear(C', proj_dim)`` on the pooled encoder features ``[N, C']``
  (before the head's dropout); the logits come from the CTR-GCN head (dropout + fc) on the same pooled features.
  A training batch of a single sample normalises with the BN running statistics (BatchNorm cannot use the
  statistics of one sample).
* The bank holds L2-normalised projections G of past training samples (float32) and their labels. The current
  batch is compared with the bank only (no in-batch positives or negatives); its detached features are enqueued
  after the loss, so an anchor never meets itself. Until the bank has entries the loss is 0 (with a graph).
* Positives: the ``num_positive`` (N+) most recent bank entries with the anchor's label; each valid
  (anchor, positive) pair is one term of Eq. 12 with the anchor's Nc negatives, averaged over the valid pairs.
* ``class_aware``: the anchor's negative classes (classes other than its label with at least one bank entry) are
  ranked by h_c (Eq. 10), and entries are taken class by class from the top-ranked class down; within a class the
  most cosine-similar entries come first. Ties: equal h_c -> lower class index first; equal similarity -> lower
  bank index first (stable sorts). ``hard``: the Nc most similar entries of other labels, ties by bank index.
  ``random``: Nc distinct entries of other labels drawn uniformly (``generator`` or torch's global RNG).
  ``random+class_aware``: ``ceil(Nc/2)`` class-aware picks, then ``floor(Nc/2)`` random picks among the remaining
  other-label entries (never an entry twice).
* Fewer negatives than Nc (or positives than N+) available: ``valid`` masks mark the real ones; valid picks come
  first. Classes with no bank entry get ``h_c = -inf`` (:data:`EMPTY_CLASS_SIMILARITY`).
* DDP: each process keeps its own bank (no all-gather). The bank is a set of buffers, so checkpoints carry it; note
  that DDP's ``broadcast_buffers=True`` (the default) copies rank 0's buffers, the bank included, to every process
  at each forward -- pass ``broadcast_buffers=False`` to keep per-process banks.
* The paper's N+ = 128, Nc = 512, bank 4096 (from [25]'s MoCo-style queue) and tau = 0.8 are the defaults; scale
  ``num_positive``, ``num_negative`` and ``bank_size`` down for small data sets (a bank much larger than the
  training set holds stale features of the same clips).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...layouts import Layout
from ..backbones.ctrgcn import build_ctrgcn
from ..recognizer import Recognizer
from ..registry import register_model

__all__ = ["MemoryBank", "ProjectionHead", "CTRGCNContrastive", "class_mean_similarity", "sample_negatives",
           "sample_positives", "info_nce", "build_ctrgcn_cl", "STRATEGIES", "EMPTY_CLASS_SIMILARITY"]

STRATEGIES = ("hard", "random", "class_aware", "random+class_aware")
EMPTY_CLASS_SIMILARITY = float("-inf")  # h_c of a class without bank entries


def _check_2d(name: str, what: str, t: torch.Tensor, dim: int | None = None) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or (dim is not None and t.shape[1] != dim):
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name}: {what} must be [*, {dim if dim is not None else 'D'}], got {shape}")
    if not t.is_floating_point():
        raise TypeError(f"{name}: {what} must be floating point, got {t.dtype}")


def _check_labels(name: str, what: str, labels: torch.Tensor, n: int, num_classes: int | None,
                  allow_empty: bool = False) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != n:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name}: {what} must be [{n}], got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name}: {what} must be an integer tensor, got {labels.dtype}")
    if labels.numel():
        lo = -1 if allow_empty else 0
        bad = (labels < lo) | (labels >= num_classes) if num_classes is not None else labels < lo
        if bool(bad.any()):
            raise ValueError(f"{name}: {what} must lie in [{lo}, {num_classes}), got values "
                             f"{labels[bad].unique().tolist()}")


# ---------------------------------------------------------------------------------------------------- memory bank
class MemoryBank(nn.Module):
    """FIFO queue of L2-normalised features: buffers ``features [size, dim]`` float32, ``labels [size]`` long
    (-1 = empty slot) and ``ptr`` (long scalar, the next slot to write). Part of the state dict."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if int(size) < 1 or int(dim) < 1:
            raise ValueError(f"MemoryBank: size and dim must be >= 1, got size={size}, dim={dim}")
        self.register_buffer("features", torch.zeros(int(size), int(dim)))
        self.register_buffer("labels", torch.full((int(size),), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        return self.features.shape[1]

    @property
    def valid(self) -> torch.Tensor:
        """``[size]`` bool: slots holding a feature."""
        return self.labels >= 0

    def age(self) -> torch.Tensor:
        """``[size]`` long: 0 for the newest slot, 1 for the one before, ... (meaningful for valid slots)."""
        idx = torch.arange(self.size, device=self.ptr.device)
        return torch.remainder(self.ptr - 1 - idx, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"

    @torch.no_grad()
    def enqueue(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Write ``features [B, dim]`` (normalised, detached) and ``labels [B]`` FIFO: row i goes to slot
        ``(ptr + i) % size``; a batch larger than the bank keeps its last ``size`` rows; ``ptr`` advances by B."""
        _check_2d("MemoryBank.enqueue", "features", features, self.dim)
        B = features.shape[0]
        _check_labels("MemoryBank.enqueue", "labels", labels, B, None)
        if B == 0:
            return
        keep = min(B, self.size)
        pos = torch.remainder(self.ptr + (B - keep) + torch.arange(keep, device=self.ptr.device), self.size)
        feats = F.normalize(features[B - keep:].detach().float(), dim=1)
        self.features.index_copy_(0, pos, feats.to(self.features.device, self.features.dtype))
        self.labels.index_copy_(0, pos, labels[B - keep:].detach().to(self.labels.device, torch.long))
        self.ptr.copy_(torch.remainder(self.ptr + B, self.size))


# ---------------------------------------------------------------------------------------------------- Eq. 10
def _cosine(anchors: torch.Tensor, bank_features: torch.Tensor) -> torch.Tensor:
    """``[B, Q]`` float32 cosine similarities."""
    a = F.normalize(anchors.float(), dim=1)
    b = F.normalize(bank_features.float(), dim=1)
    return a @ b.t()


def class_mean_similarity(anchors: torch.Tensor, bank_features: torch.Tensor, bank_labels: torch.Tensor,
                          num_classes: int) -> torch.Tensor:
    """``h [B, num_classes]`` float32: ``h[j, c]`` = mean cosine similarity of anchor j to the bank entries of
    class c (Eq. 10); bank entries with label -1 are ignored; classes without entries get
    :data:`EMPTY_CLASS_SIMILARITY` (-inf)."""
    name = "class_mean_similarity"
    _check_2d(name, "anchors", anchors)
    _check_2d(name, "bank_features", bank_features, anchors.shape[1])
    _check_labels(name, "bank_labels", bank_labels, bank_features.shape[0], num_classes, allow_empty=True)
    with torch.autocast(anchors.device.type, enabled=False):
        sim = _cosine(anchors, bank_features)  # [B, Q]
        onehot = F.one_hot(bank_labels.clamp(min=0), num_classes).float() * (bank_labels >= 0).float()[:, None]
        count = onehot.sum(0)  # M_c
        h = (sim @ onehot) / count.clamp(min=1)  # Eq. 10
        return h.masked_fill(count == 0, EMPTY_CLASS_SIMILARITY)


# ---------------------------------------------------------------------------------------------------- sampling
def _first_k(order: torch.Tensor, cand: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k entries of each row's ``order [B, Q]`` (candidates sorted first) -> ``(index, valid) [B, k]``;
    padded with index 0 / invalid when k > Q."""
    B, Q = order.shape
    kk = min(k, Q)
    idx = order[:, :kk]
    valid = cand.gather(1, idx)
    if kk < k:
        idx = torch.cat([idx, idx.new_zeros(B, k - kk)], 1)
        valid = torch.cat([valid, valid.new_zeros(B, k - kk)], 1)
    return idx, valid


def _hard(sim: torch.Tensor, cand: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.sort(sim.masked_fill(~cand, float("-inf")), dim=1, descending=True, stable=True).indices
    return _first_k(order, cand, k)


def _random(cand: torch.Tensor, k: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    keys = torch.rand(cand.shape, generator=generator, device=cand.device).masked_fill(~cand, -1.0)
    order = torch.sort(keys, dim=1, descending=True, stable=True).indices
    return _first_k(order, cand, k)


def _class_aware(sim: torch.Tensor, h: torch.Tensor, cand: torch.Tensor, bank_labels: torch.Tensor,
                 anchor_labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    B, K = h.shape
    h = h.scatter(1, anchor_labels[:, None], EMPTY_CLASS_SIMILARITY)  # never the anchor's own class
    class_order = torch.sort(h, dim=1, descending=True, stable=True).indices  # ties: lower class first
    rank = torch.empty_like(class_order).scatter_(1, class_order,
                                                  torch.arange(K, device=h.device).expand(B, K).contiguous())
    entry_rank = rank.gather(1, bank_labels.clamp(min=0).expand(B, -1)).masked_fill(~cand, K)  # [B, Q]
    # lexicographic (class rank ascending, similarity descending, bank index ascending): two stable sorts
    by_sim = torch.sort(sim.masked_fill(~cand, float("-inf")), dim=1, descending=True, stable=True).indices
    by_class = torch.sort(entry_rank.gather(1, by_sim), dim=1, stable=True).indices
    return _first_k(by_sim.gather(1, by_class), cand, k)


def sample_negatives(anchors: torch.Tensor, anchor_labels: torch.Tensor, bank_features: torch.Tensor,
                     bank_labels: torch.Tensor, num_negatives: int, strategy: str = "class_aware",
                     num_classes: int | None = None, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``num_negatives`` (Nc) bank entries with a label other than the anchor's, per anchor.

    Args: ``anchors [B, D]``, ``anchor_labels [B]``, ``bank_features [Q, D]``, ``bank_labels [Q]`` (-1 = empty),
    ``strategy`` one of :data:`STRATEGIES` (see the module docstring), ``num_classes`` (required by the
    class-aware strategies), ``generator`` for the random ones (on the anchors' device; default: torch's RNG).
    Returns ``(index [B, Nc] long into the bank, valid [B, Nc] bool)``; valid picks come first and are distinct.
    """
    name = "sample_negatives"
    if strategy not in STRATEGIES:
        raise ValueError(f"{name}: strategy must be one of {STRATEGIES}, got {strategy!r}")
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"{name}: num_negatives must be an int >= 1, got {num_negatives!r}")
    if "class_aware" in strategy and (num_classes is None or int(num_classes) < 1):
        raise ValueError(f"{name}: strategy {strategy!r} needs num_classes >= 1, got {num_classes!r}")
    _check_2d(name, "anchors", anchors)
    _check_2d(name, "bank_features", bank_features, anchors.shape[1])
    _check_labels(name, "anchor_labels", anchor_labels, anchors.shape[0], num_classes)
    _check_labels(name, "bank_labels", bank_labels, bank_features.shape[0], num_classes, allow_empty=True)
    anchor_labels, bank_labels = anchor_labels.long(), bank_labels.long()
    cand = (bank_labels >= 0)[None, :] & (bank_labels[None, :] != anchor_labels[:, None])  # [B, Q]
    Nc = num_negatives
    with torch.no_grad(), torch.autocast(anchors.device.type, enabled=False):
        if strategy == "random":
            return _random(cand, Nc, generator)
        sim = _cosine(anchors, bank_features)
        if strategy == "hard":
            return _hard(sim, cand, Nc)
        h = class_mean_similarity(anchors, bank_features, bank_labels, int(num_classes))
        if strategy == "class_aware":
            return _class_aware(sim, h, cand, bank_labels, anchor_labels, Nc)
        n_ca, n_r = (Nc + 1) // 2, Nc // 2
        idx_ca, val_ca = _class_aware(sim, h, cand, bank_labels, anchor_labels, n_ca)
        if n_r == 0:
            return idx_ca, val_ca
        picked = torch.zeros(cand.shape, dtype=torch.int32, device=cand.device)
        picked.scatter_add_(1, idx_ca, val_ca.to(torch.int32))
        idx_r, val_r = _random(cand & (picked == 0), n_r, generator)
        # when the class-aware half is short, no candidate is left for the random half: valid picks stay first
        return torch.cat([idx_ca, idx_r], 1), torch.cat([val_ca, val_r], 1)


def sample_positives(anchor_labels: torch.Tensor, bank_labels: torch.Tensor, bank_age: torch.Tensor,
                     num_positives: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``num_positives`` (N+) most recent bank entries with the anchor's label (``bank_age``: 0 = newest,
    :meth:`MemoryBank.age`) -> ``(index [B, min(N+, Q)], valid)``; valid picks come first."""
    if isinstance(num_positives, bool) or not isinstance(num_positives, int) or num_positives < 1:
        raise ValueError(f"sample_positives: num_positives must be an int >= 1, got {num_positives!r}")
    Q = bank_labels.shape[0]
    same = (bank_labels >= 0)[None, :] & (bank_labels[None, :] == anchor_labels[:, None])  # [B, Q]
    keys = torch.where(same, bank_age[None, :], bank_age.new_full((), Q))
    order = torch.sort(keys, dim=1, stable=True).indices
    return _first_k(order, same, min(num_positives, Q))


# ---------------------------------------------------------------------------------------------------- Eq. 12
def info_nce(anchor: torch.Tensor, positives: torch.Tensor, pos_valid: torch.Tensor, negatives: torch.Tensor,
             neg_valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE (Eq. 12) averaged over the valid (anchor, positive) pairs, float32.

    ``anchor [B, D]``, ``positives [B, P, D]`` + ``pos_valid [B, P]``, ``negatives [B, Nc, D]`` + ``neg_valid
    [B, Nc]``; similarities are cosines / temperature. Each valid pair contributes
    ``-log(exp(s+) / (exp(s+) + sum_valid exp(s-)))``; anchors without a valid positive contribute nothing; 0 (with a
    graph) when no pair is valid.
    """
    name = "info_nce"
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(f"{name}: temperature must be > 0, got {temperature!r}")
    _check_2d(name, "anchor", anchor)
    B, D = anchor.shape
    for what, t, m in (("positives", positives, pos_valid), ("negatives", negatives, neg_valid)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[0] != B or t.shape[2] != D:
            raise ValueError(f"{name}: {what} must be [{B}, *, {D}], got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or tuple(m.shape) != tuple(t.shape[:2]):
            got = (tuple(m.shape), m.dtype) if isinstance(m, torch.Tensor) else type(m).__name__
            raise ValueError(f"{name}: the {what} mask must be bool {tuple(t.shape[:2])}, got {got}")
    with torch.autocast(anchor.device.type, enabled=False):
        z = F.normalize(anchor.float(), dim=-1)
        s_pos = torch.einsum("bd,bpd->bp", z, F.normalize(positives.float(), dim=-1)) / temperature  # [B, P]
        s_neg = torch.einsum("bd,bnd->bn", z, F.normalize(negatives.float(), dim=-1)) / temperature  # [B, Nc]
        has_neg = neg_valid.any(1)
        # log sum_valid exp(s-); rows without a valid negative use finite dummies (no NaN gradients) and give 0
        lse_neg = torch.logsumexp(s_neg.masked_fill(~neg_valid, float("-inf")).masked_fill(~has_neg[:, None], 0.0),
                                  dim=1)
        # -log(e^{s+} / (e^{s+} + e^{lse})) = softplus(lse - s+)   # Eq. 12
        pair = torch.where(has_neg[:, None], F.softplus(lse_neg[:, None] - s_pos), s_pos * 0.0)
        w = pos_valid.float()
        return (pair * w).sum() / w.sum().clamp(min=1.0)


# ---------------------------------------------------------------------------------------------------- model
class ProjectionHead(nn.Module):
    """g of Eq. 9: ``Linear(C, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, out)`` on ``[N, C]``."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = int(hidden or in_channels)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        if self.training and h.shape[0] == 1:  # one sample: no batch statistics, use the running ones
            bn = self.bn
            h = F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        else:
            h = self.bn(h)
        return self.fc2(F.relu(h))


class CTRGCNContrastive(nn.Module):
    """CTR-GCN with class-aware contrastive learning: ``forward(x [N, M, T, V, C], label [N] | None)`` ->
    ``(logits [N, K], aux)``.

    In training mode with labels, ``aux = {'loss_nce': loss_weight * L_NCE}`` (Eq. 12) against the memory bank,
    after which the batch's projections are enqueued; otherwise ``aux = {}`` and the bank is untouched.
    ``model`` is the plain :class:`~finetec.models.recognizer.Recognizer` (``inference_model()`` returns a copy).
    """

    needs_label = True
    returns_aux = True
    needs_mask = False

    def __init__(self, model: Recognizer, num_classes: int, proj_dim: int = 128, temperature: float = 0.8,
                 num_positive: int = 128, num_negative: int = 512, bank_size: int = 4096,
                 sampling: str = "class_aware", loss_weight: float = 1.0) -> None:
        super().__init__()
        if sampling not in STRATEGIES:
            raise ValueError(f"ctrgcn_cl: sampling must be one of {STRATEGIES}, got {sampling!r}")
        for what, v in (("proj_dim", proj_dim), ("num_positive", num_positive), ("num_negative", num_negative),
                        ("bank_size", bank_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ctrgcn_cl: {what} must be an int >= 1, got {v!r}")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"ctrgcn_cl: temperature must be > 0, got {temperature!r}")
        if not isinstance(loss_weight, (int, float)) or not (loss_weight >= 0 and math.isfinite(loss_weight)):
            raise ValueError(f"ctrgcn_cl: loss_weight must be a finite number >= 0, got {loss_weight!r}")
        self.model = model
        self.projection = ProjectionHead(model.backbone.out_channels, proj_dim)
        self.bank = MemoryBank(bank_size, proj_dim)
        self.num_classes = int(num_classes)
        self.temperature, self.loss_weight = float(temperature), float(loss_weight)
        self.num_positive, self.num_negative, self.sampling = num_positive, num_negative, sampling
        self.name = f"{model.name}_cl"

    def extra_repr(self) -> str:
        return (f"sampling={self.sampling!r}, temperature={self.temperature}, num_positive={self.num_positive}, "
                f"num_negative={self.num_negative}, loss_weight={self.loss_weight}")

    def _check_label(self, label: torch.Tensor, n: int) -> None:
        _check_labels(self.name, "label", label, n, self.num_classes)

    def contrastive_loss(self, g: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """L_NCE (Eq. 12) of the graph features ``g [N, proj_dim]`` against the bank (not weighted)."""
        bank = self.bank
        label = label.to(bank.labels.device, torch.long)
        pos_idx, pos_valid = sample_positives(label, bank.labels, bank.age(), self.num_positive)
        neg_idx, neg_valid = sample_negatives(g.detach(), label, bank.features, bank.labels, self.num_negative,
                                              self.sampling, self.num_classes)
        return info_nce(g, bank.features[pos_idx], pos_valid, bank.features[neg_idx], neg_valid, self.temperature)

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        feat = self.model.extract_features(x)  # f: [N, M, C', T', V]
        pooled = self.model.head.pool(feat)  # [N, C']
        logits = self.model.head.fc(self.model.head.dropout(pooled))
        if not self.training or label is None:
            return logits, {}
        self._check_label(label, x.shape[0])
        g = self.projection(pooled)  # Eq. 9: G = g(f(.))
        loss = self.contrastive_loss(g, label)
        self.bank.enqueue(g.detach(), label)
        return logits, {"loss_nce": self.loss_weight * loss}

    # ------------------------------------------------------------------ delegation
    def inference_model(self) -> Recognizer:
        """A copy of the plain CTR-GCN recognizer (encoder + head; no projection, no bank) for evaluation/export."""
        return copy.deepcopy(self.model)

    def fuse_for_inference(self, enabled: bool = True) -> "CTRGCNContrastive":
        self.model.fuse_for_inference(enabled)
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


@register_model("ctrgcn_cl")
def build_ctrgcn_cl(num_classes: int, layout: Layout, in_channels: int = 3, width: str = "standard",
                    dropout: float = 0.0, num_person: int = 2, proj_dim: int = 128, temperature: float = 0.8,
                    num_positive: int = 128, num_negative: int = 512, bank_size: int = 4096,
                    sampling: str = "class_aware", loss_weight: float = 1.0, base_channels: int | None = None,
                    num_stages: int | None = None, inflate_stages: Sequence[int] | None = None,
                    down_stages: Sequence[int] | None = None, data_bn_type: str | None = "VC",
                    kernel_size: int = 5, dilations: Sequence[int] = (1, 2), rel_reduction: int = 8,
                    tcn_dropout: float = 0.0) -> CTRGCNContrastive:
    """CTR-GCN + class-aware contrastive learning (Sec. 3.3). Contrastive options: see
    :class:`CTRGCNContrastive`; the others are :func:`~finetec.models.backbones.ctrgcn.build_ctrgcn`'s."""
    rec = build_ctrgcn(num_classes, layout, in_channels, width, dropout, base_channels, num_stages, inflate_stages,
                       down_stages, data_bn_type, num_person, kernel_size, dilations, rel_reduction, tcn_dropout)
    return CTRGCNContrastive(rec, num_classes, proj_dim, temperature, num_positive, num_negative, bank_size,
                             sampling, loss_weight)
