"""Multimodal feature collaboration and fusion (the multimodal paper): where each equation lives.

* Eq. 1-2 skeleton-guided cropping: :func:`finetec.data.video.activity_box` (a data transform,
  ``SkeletonGuidedCrop``, since it acts on the input frames).
* Eq. 3-5 Motion Attention, Eq. 6-8 Temporal Aggregation: :mod:`.staa`; the TSM ResNet-50 they sit in: :mod:`.tsm`
  (registered as ``tsm``).
* Eq. 9-13 class-aware contrastive learning (graph projection head, memory bank, Eq. 10 class mean similarity,
  negative sampling, InfoNCE): :mod:`.contrastive` (registered as ``ctrgcn_cl``).
* Eq. 14 score fusion: :mod:`.fusion`.
"""

from . import contrastive, fusion, staa, tsm  # noqa: E402,F401  (registers ``tsm`` and ``ctrgcn_cl``)
from .contrastive import CTRGCNContrastive, MemoryBank, class_mean_similarity, info_nce, sample_negatives  # noqa: E402
from .fusion import fit_fusion_weights, fused_prediction, score_fusion  # noqa: E402
from .staa import STAA, MotionAttention, TemporalAggregation  # noqa: E402
from .tsm import load_torchvision_resnet50, temporal_shift  # noqa: E402

__all__ = ["CTRGCNContrastive", "MemoryBank", "class_mean_similarity", "info_nce", "sample_negatives",
           "fit_fusion_weights", "fused_prediction", "score_fusion", "STAA", "MotionAttention",
           "TemporalAggregation", "load_torchvision_resnet50", "temporal_shift"]
