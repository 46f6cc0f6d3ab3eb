"""The ``Corrupt`` pipeline transform (registered in ``finetec.data.transforms.TRANSFORMS``)."""

from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np

from ..data.transforms import _Repr, _keypoint, _mask, _rng, _score, _tag, TransformError, register_transform
from .presets import CorruptionSpec, corrupt_arrays, corrupt_seed, frame_sources, get_spec
from .temporal import check_mode, check_pattern

__all__ = ["Corrupt"]


@register_transform
class Corrupt(_Repr):
    """Corrupt each sampled clip with a preset or spec (see ``corruption.presets``), after UniformSampleFrames.

    ``mode`` / ``pattern`` override those of the (first stage of the) spec; in training ``level`` and ``pattern``
    may be lists, one entry drawn per sample. Randomness: in test mode a fresh
    ``default_rng(corrupt_seed(frame_dir, level, seed))`` -- independent of ``results['rng']``, of the model and of
    the run, so every evaluation sees the same frames; in training ``results['rng']``. Clips
    (``num_clips > 1``) are corrupted independently. When the 2D coordinates are not normalised (no ``coord_norm``)
    but ``img_shape`` is known, the noise sigma is converted to pixels. With ``frame_inds`` from UniformSampleFrames,
    the drop ratio counts distinct source frames, so a short sequence looped to ``clip_len`` loses the stated share of
    its real frames (all looped copies of a dropped frame go together).

    ``keep_clean=True`` (completion training and restoration metrics) also keeps the uncorrupted clip and, in its time
    axis, which frames survived: ``kept [T]`` (False = a missing frame the completion has to restore).

    Required keys: keypoint, frame_dir (test mode), rng (training).
    Modified keys: keypoint, keypoint_score, mask; frame_inds is removed (no longer aligned).
    Added keys: valid_len ``[num_clips]`` int64, corruption (the spec key); with ``keep_clean``: keypoint_clean,
    keypoint_score_clean (the input's keypoint / keypoint_score) and kept ``[T]`` bool.
    """

    _repr_keys = ("level", "mode", "pattern", "test_mode", "seed", "keep_clean")

    def __init__(self, level: Any, mode: str | None = None, pattern: str | Sequence[str] | None = None,
                 test_mode: bool = False, seed: int = 0, keep_clean: bool = False) -> None:
        levels = list(level) if isinstance(level, (list, tuple)) else [level]
        patterns = list(pattern) if isinstance(pattern, (list, tuple)) else ([] if pattern is None else [pattern])
        if not levels:
            raise ValueError("Corrupt: level must name at least one preset/spec")
        if test_mode and (len(levels) > 1 or len(patterns) > 1):
            raise ValueError("Corrupt: in test mode level and pattern must be single values, so that the evaluation "
                             f"corruption is fixed; got level={level!r}, pattern={pattern!r}")
        for p in patterns:
            check_pattern(p)
        if mode is not None:
            check_mode(mode)
        self.level, self.mode, self.pattern = level, mode, pattern
        self.test_mode, self.seed, self.keep_clean = bool(test_mode), int(seed), bool(keep_clean)
        self._specs = [get_spec(lv) for lv in levels]
        self._patterns = patterns

    def _spec(self, rng: np.random.Generator) -> CorruptionSpec:
        spec = self._specs[int(rng.integers(len(self._specs)))] if len(self._specs) > 1 else self._specs[0]
        changes: dict[str, Any] = {}
        if self._patterns:
            changes["pattern"] = self._patterns[int(rng.integers(len(self._patterns)))] \
                if len(self._patterns) > 1 else self._patterns[0]
        if self.mode is not None:
            changes["mode"] = self.mode
        return spec.replace(**changes) if changes else spec

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who)
        score, mask = _score(results, who), _mask(results, who)
        M, T, V, C = kp.shape
        if self.test_mode:
            if "frame_dir" not in results:
                raise TransformError(f"{who}: test-mode corruption is seeded from results['frame_dir'], which is "
                                     f"missing")
            rng = np.random.default_rng(corrupt_seed(str(results["frame_dir"]), self._specs[0], self.seed))
        else:
            rng = _rng(results, who)
        spec = self._spec(rng)
        L = int(results.get("clip_len", T))
        if L < 1 or T % L:
            raise TransformError(f"{_tag(results, who)}: T={T} is not a multiple of clip_len={L}")
        nc = T // L
        scale = None
        if C == 2 and not results.get("coord_norm") and results.get("img_shape") is not None:
            h, w = results["img_shape"]
            scale = np.array([w / 2.0, h / 2.0])
        # [M, nc*L, ...] -> [nc, M, L, ...]: clips are the leading batch dimension of corrupt_arrays
        kp_c = kp.reshape(M, nc, L, V, C).transpose(1, 0, 2, 3, 4)
        sc_c = score.reshape(M, nc, L, V).transpose(1, 0, 2, 3)
        src = results.get("frame_inds")
        src = np.asarray(src).reshape(nc, L) if src is not None and np.size(src) == T else None
        if self.keep_clean:
            results["keypoint_clean"], results["keypoint_score_clean"] = kp, score
            # which input frames survive: replay the same draws on frame indices (see frame_sources)
            sources = frame_sources(sc_c, mask.reshape(nc, L), spec, copy.deepcopy(rng), channels=C,
                                    source_index=src)
            kept = np.zeros((nc, L + 1), dtype=bool)
            kept[np.arange(nc)[:, None], np.where(sources >= 0, sources, L)] = True
            results["kept"] = kept[:, :L].reshape(T)
        kp_c, sc_c, mk_c, valid_len = corrupt_arrays(kp_c, sc_c, mask.reshape(nc, L), spec, rng, coord_scale=scale,
                                                     source_index=src)
        results["keypoint"] = np.ascontiguousarray(kp_c.transpose(1, 0, 2, 3, 4).reshape(M, T, V, C))
        results["keypoint_score"] = np.ascontiguousarray(sc_c.transpose(1, 0, 2, 3).reshape(M, T, V))
        results["mask"] = mk_c.reshape(T)
        results["valid_len"] = valid_len
        results["corruption"] = spec.key
        results.pop("frame_inds", None)  # no longer aligned with the (compacted / dropped) frames
        return results
