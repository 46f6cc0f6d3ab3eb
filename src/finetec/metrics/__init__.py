"""Metrics: classification (PYSKL definitions)."""

from .classification import ClassificationMetrics, ScoreCollector, mean_class_accuracy, top_k_accuracy
from .restoration import RestorationMetrics, mpjpe, mpjve, n_mpjpe, optimal_scale

__all__ = ["top_k_accuracy", "mean_class_accuracy", "ClassificationMetrics", "ScoreCollector",
           "mpjpe", "n_mpjpe", "mpjve", "optimal_scale", "RestorationMetrics"]
