"""SF-Head (Huang et al., "Synchronized and Fine-Grained Head for Skeleton-Based Ambiguous Action Recognition"):
the module (``module.py``: SSTE Eq. 1, AC-FA Eq. 2-9), its losses (``losses.py``: Eq. 10-14, 17) and the plug-in
that inserts it between the GCN and TCN layers of any registered GCN (``plugin.py``). See docs/sfhead.md."""

from .losses import (DEFAULTS, compensation_term, feature_consistency_loss, feature_redundancy_loss,
                     modified_cosine_distance, pairwise_modified_cosine_distance)
from .module import SFHead, SFHeadFeatures, SSTE, AttentionGate, channel_shuffle, z_pool
from .plugin import MODES, SFHeadRecognizer, SFHeadSlot, attach_sfhead

__all__ = ["SFHead", "SFHeadFeatures", "SSTE", "AttentionGate", "channel_shuffle", "z_pool", "DEFAULTS",
           "modified_cosine_distance", "pairwise_modified_cosine_distance", "feature_redundancy_loss",
           "compensation_term", "feature_consistency_loss", "MODES", "SFHeadRecognizer", "SFHeadSlot",
           "attach_sfhead"]
