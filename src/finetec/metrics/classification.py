"""Classification metrics with PYSKL's definitions (``pyskl/core/evaluation.py``).

* ``top_k_accuracy``: fraction of samples whose label is among the ``k`` highest scores.
* ``mean_class_accuracy``: PYSKL builds its confusion matrix over the classes that occur in the labels *or* in the
  predictions and averages per-class recall over those classes, a class that is predicted but has no sample
  counting as 0. So the mean runs over ``labels ∪ argmax(scores)``; classes that neither occur nor are predicted
  are left out.

``ClassificationMetrics`` accumulates the same numbers with torchmetrics (sum states, so it is exact under DDP as
long as every sample is seen by exactly one process). torchmetrics' ``MulticlassAccuracy(average='macro')`` with
``top_k=1`` gives zero weight to classes with ``tp + fp + fn == 0``, i.e. classes neither present nor predicted,
which is exactly PYSKL's rule; the tests check the two agree.

Ties: PYSKL ranks with ``np.argsort`` and predicts with ``np.argmax`` (first maximum); the numpy functions here do
the same, torchmetrics uses ``torch.topk``/``argmax``. Results can differ only when scores tie exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

__all__ = ["top_k_accuracy", "mean_class_accuracy", "ClassificationMetrics", "ScoreCollector"]


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [N, num_classes], got shape {scores.shape}")
    if scores.shape[0] != labels.shape[0]:
        raise ValueError(f"{scores.shape[0]} score rows but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1}, got {labels.min()}..{labels.max()}")
    return scores, labels


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, topk: Sequence[int] = (1,)) -> list[float]:
    """Top-k accuracy for each ``k`` in ``topk``: fraction of samples whose label is in the top-k scores."""
    scores, labels = _check(scores, labels)
    if labels.size == 0:
        raise ValueError("top_k_accuracy of an empty set")
    order = np.argsort(scores, axis=1)[:, ::-1]  # PYSKL: argsort ascending, take the last k
    rank_hit = order == labels[:, None]  # [N, K] True at the label's rank
    return [float(rank_hit[:, :k].any(1).mean()) for k in topk]


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean per-class recall over the classes present in the labels or the predictions (PYSKL's definition)."""
    scores, labels = _check(scores, labels)
    if labels.size == 0:
        raise ValueError("mean_class_accuracy of an empty set")
    pred = scores.argmax(1)
    num_classes = scores.shape[1]
    count = np.bincount(labels, minlength=num_classes)
    hit = np.bincount(labels[pred == labels], minlength=num_classes)
    used = (count > 0) | (np.bincount(pred, minlength=num_classes) > 0)
    recall = np.divide(hit, count, out=np.zeros(num_classes), where=count > 0)
    return float(recall[used].mean())


class ClassificationMetrics(MetricCollection):
    """``top1``, ``top{k}`` and ``mean_class_accuracy`` accumulated over batches (DDP-synchronised sums).

    ``k`` larger than ``num_classes`` is clamped to ``num_classes`` (where it is trivially 1.0) but keeps its key.
    """

    def __init__(self, num_classes: int, topk: Sequence[int] = (1, 5)) -> None:
        if num_classes < 2:
            raise ValueError(f"classification metrics need at least 2 classes, got {num_classes}")
        metrics: dict[str, Metric] = {
            f"top{k}": MulticlassAccuracy(num_classes, top_k=min(k, num_classes), average="micro") for k in topk
        }
        metrics["mean_class_accuracy"] = MulticlassAccuracy(num_classes, top_k=1, average="macro")
        super().__init__(metrics, compute_groups=False)


class ScoreCollector(Metric):
    """Collects per-sample ``scores [N, K]``, ``labels`` and dataset ``index`` across processes (cat states)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, index: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor) -> None:  # type: ignore[override]
        self.index.append(index.detach().long())
        self.scores.append(scores.detach().float())
        self.labels.append(labels.detach().long())

    def compute(self) -> dict[str, torch.Tensor]:
        def cat(x):
            if isinstance(x, torch.Tensor):
                return x
            return torch.cat(x) if x else torch.empty(0)

        index, scores, labels = cat(self.index), cat(self.scores), cat(self.labels)
        order = torch.argsort(index)
        return {"index": index[order], "scores": scores[order], "labels": labels[order]}
