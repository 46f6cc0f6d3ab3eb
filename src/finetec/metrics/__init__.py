"""Metrics: classification (PYSKL definitions)."""

from .classification import ClassificationMetrics, ScoreCollector, mean_class_accuracy, top_k_accuracy

__all__ = ["top_k_accuracy", "mean_class_accuracy", "ClassificationMetrics", "ScoreCollector"]
