"""Corruption of skeleton sequences: the FineTec paper's temporal protocol plus spatial perturbations.

``temporal``: frame-drop masks (random, periodic, prefix, suffix, between) and their application (compact /
in-place). ``spatial``: Gaussian noise, joint occlusion, low-confidence removal. ``presets``: named settings
(clean / minor / moderate / severe; S-low / S-high / T-low / T-high) and the seeded ``corrupt_sample``.
``transforms``: the ``Corrupt`` pipeline transform. The protocol is described in ``docs/protocol.md``.
"""

from .presets import (
    LEVELS,
    PRESETS,
    ROBUSTNESS,
    CorruptionSpec,
    corrupt_arrays,
    corrupt_sample,
    corrupt_seed,
    get_spec,
    list_presets,
)
from .spatial import drop_low_confidence, gaussian_noise, occlude_joints
from .temporal import MODES, PATTERNS, drop_frames, frame_drop_mask, frame_drop_masks, num_dropped
from .transforms import Corrupt

__all__ = [
    "LEVELS", "PRESETS", "ROBUSTNESS", "CorruptionSpec", "corrupt_arrays", "corrupt_sample", "corrupt_seed",
    "get_spec", "list_presets", "drop_low_confidence", "gaussian_noise", "occlude_joints", "MODES", "PATTERNS",
    "drop_frames", "frame_drop_mask", "frame_drop_masks", "num_dropped", "Corrupt",
]
