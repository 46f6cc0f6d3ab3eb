"""Classification metrics against a hand-worked example and PYSKL's definitions."""

import numpy as np
import pytest
import torch

from finetec.metrics import ClassificationMetrics, ScoreCollector, mean_class_accuracy, top_k_accuracy

# 6 samples, 5 classes. Class 4 is neither present nor predicted; class 3 is predicted (samples 2 and 4) but has
# no sample.
SCORES = np.array(
    [
        [0.10, 0.60, 0.20, 0.10, 0.0],  # label 1, pred 1 (hit)
        [0.50, 0.30, 0.10, 0.10, 0.0],  # label 1, pred 0; top-2 {0, 1} hit
        [0.20, 0.10, 0.30, 0.40, 0.0],  # label 2, pred 3; top-2 {3, 2} hit
        [0.70, 0.05, 0.15, 0.10, 0.0],  # label 0, pred 0 (hit)
        [0.10, 0.20, 0.30, 0.40, 0.0],  # label 0, pred 3; top-3 {3, 2, 1} miss
        [0.25, 0.35, 0.30, 0.10, 0.0],  # label 2, pred 1; top-2 {1, 2} hit
    ],
    dtype=np.float32,
)
LABELS = np.array([1, 1, 2, 0, 0, 2])
# by hand: top1 = 2/6; top2 = 5/6; top3 = 5/6; top5 = 1.
# recall: class 0 = 1/2, class 1 = 1/2, class 2 = 0/2, class 3 = 0 (predicted, no sample); class 4 left out.
# PYSKL's mean class accuracy = (0.5 + 0.5 + 0 + 0) / 4 = 0.25 (averaging over present labels only would give 1/3)
EXPECTED = {"top1": 2 / 6, "top2": 5 / 6, "top3": 5 / 6, "top5": 1.0, "mean_class_accuracy": 0.25}


def test_numpy_hand_worked():
    t1, t2, t3, t5 = top_k_accuracy(SCORES, LABELS, topk=(1, 2, 3, 5))
    assert t1 == pytest.approx(EXPECTED["top1"])
    assert t2 == pytest.approx(EXPECTED["top2"])
    assert t3 == pytest.approx(EXPECTED["top3"])
    assert t5 == pytest.approx(1.0)
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx(0.25)


def test_torchmetrics_matches_hand_worked_in_batches():
    m = ClassificationMetrics(5, topk=(1, 2, 3, 5))
    for sl in (slice(0, 2), slice(2, 3), slice(3, 6)):  # accumulation over uneven batches
        m.update(torch.from_numpy(SCORES[sl]), torch.from_numpy(LABELS[sl]))
    out = {k: float(v) for k, v in m.compute().items()}
    for k, v in EXPECTED.items():
        assert out[k] == pytest.approx(v), k


def test_torchmetrics_matches_numpy_random():
    rng = np.random.default_rng(0)
    for trial in range(5):
        n, k = 40, 7
        scores = rng.random((n, k)).astype(np.float32)
        labels = rng.integers(0, 5, n)  # classes 5, 6 never present
        m = ClassificationMetrics(k, topk=(1, 5))
        m.update(torch.from_numpy(scores), torch.from_numpy(labels))
        out = m.compute()
        t1, t5 = top_k_accuracy(scores, labels, (1, 5))
        assert float(out["top1"]) == pytest.approx(t1)
        assert float(out["top5"]) == pytest.approx(t5)
        assert float(out["mean_class_accuracy"]) == pytest.approx(mean_class_accuracy(scores, labels))


def test_topk_larger_than_classes_is_clamped():
    m = ClassificationMetrics(3, topk=(1, 5))
    m.update(torch.tensor([[0.1, 0.2, 0.7]]), torch.tensor([0]))
    out = m.compute()
    assert float(out["top1"]) == 0.0 and float(out["top5"]) == 1.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="labels must lie"):
        top_k_accuracy(SCORES, np.array([0, 1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="6 score rows but 2 labels"):
        mean_class_accuracy(SCORES, np.array([0, 1]))


def test_score_collector_sorts_by_index():
    c = ScoreCollector()
    c.update(torch.tensor([2, 0]), torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 0]))
    c.update(torch.tensor([1]), torch.tensor([[0.5, 0.5]]), torch.tensor([1]))
    out = c.compute()
    assert out["index"].tolist() == [0, 1, 2]
    assert out["labels"].tolist() == [0, 1, 1]
    assert torch.allclose(out["scores"][0], torch.tensor([0.8, 0.2]))
