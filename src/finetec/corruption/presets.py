"""Named corruption settings and the seeded, pure corruption of arrays and samples.

``LEVELS`` are the paper's temporal-corruption levels (Task Definition: 25 / 50 / 75 % of the frames dropped at
random, survivors kept in order and the rest zero-padded). ``ROBUSTNESS`` are our readings of Table 6's perturbations
(``S-low``/``S-high``: Gaussian noise; ``T-low``/``T-high``: half of the input frames dropped) -- see
``docs/protocol.md`` for why. Presets compose with ``+``: ``get_spec("severe+S-low")`` applies ``severe`` and then
``S-low`` (Table 6 reports perturbations on top of the minor and severe settings).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..data.sample import SkeletonSample
from .spatial import drop_low_confidence, gaussian_noise, occlude_joints
from .temporal import check_mode, check_pattern, drop_frames, frame_drop_masks

__all__ = [
    "CorruptionSpec",
    "LEVELS",
    "ROBUSTNESS",
    "PRESETS",
    "get_spec",
    "list_presets",
    "corrupt_seed",
    "corrupt_arrays",
    "corrupt_sample",
    "frame_sources",
]


@dataclass(frozen=True)
class CorruptionSpec:
    """One corruption setting; stages run in the order conf_thr -> occlusion -> noise -> frame drop -> ``then``.

    drop_ratio:     fraction of the valid frames dropped (``round_half_up(ratio * n)``, at least one frame kept).
    pattern:        ``random`` | ``periodic`` | ``prefix`` | ``suffix`` | ``between`` (see ``temporal``).
    mode:           ``compact`` (survivors to the front, zero-padded end; the paper) | ``inplace``.
    noise_sigma:    std of Gaussian noise on present joints, in normalised [-1, 1] coordinate units for 2D (converted
                    to pixels by ``img_shape`` when the coordinates are not normalised) and data units for 3D.
    occlude_joints: joints hidden per person, each for ``occlude_span`` consecutive frames.
    conf_thr:       joints with a score below it become missing.
    name:           preset name; the key that seeds evaluation corruption (see :attr:`key`).
    then:           a further spec applied after this one (preset composition ``a+b``).
    """

    drop_ratio: float = 0.0
    pattern: str = "random"
    mode: str = "compact"
    noise_sigma: float = 0.0
    occlude_joints: int = 0
    occlude_span: int = 0
    conf_thr: float = 0.0
    name: str = ""
    then: "CorruptionSpec | None" = None

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.drop_ratio) <= 1.0:
            raise ValueError(f"corruption {self.name or 'spec'}: drop_ratio must be in [0, 1], got {self.drop_ratio}")
        check_pattern(self.pattern)
        check_mode(self.mode)
        for f in ("noise_sigma", "conf_thr"):
            if not float(getattr(self, f)) >= 0.0:
                raise ValueError(f"corruption {self.name or 'spec'}: {f} must be >= 0, got {getattr(self, f)}")
        for f in ("occlude_joints", "occlude_span"):
            v = getattr(self, f)
            if int(v) != v or v < 0:
                raise ValueError(f"corruption {self.name or 'spec'}: {f} must be a non-negative int, got {v}")
        if self.then is not None and not isinstance(self.then, CorruptionSpec):
            raise TypeError(f"corruption {self.name or 'spec'}: 'then' must be a CorruptionSpec, got {self.then!r}")

    @property
    def is_clean(self) -> bool:
        own = (self.drop_ratio == 0 and self.noise_sigma == 0 and self.conf_thr == 0
               and (self.occlude_joints == 0 or self.occlude_span == 0))
        return own and (self.then is None or self.then.is_clean)

    @property
    def key(self) -> str:
        """Stable text identifying the setting: the preset name, else the non-default fields."""
        if self.name:
            return self.name
        parts = []
        for f in dataclasses.fields(self):
            if f.name in ("name", "then"):
                continue
            v = getattr(self, f.name)
            if v != f.default:
                parts.append(f"{f.name}={v}")
        own = "custom(" + ",".join(parts) + ")"
        return own if self.then is None else f"{own}+{self.then.key}"

    def replace(self, **changes: Any) -> "CorruptionSpec":
        return dataclasses.replace(self, **changes)


LEVELS: dict[str, CorruptionSpec] = {
    "clean": CorruptionSpec(name="clean"),
    "minor": CorruptionSpec(drop_ratio=0.25, name="minor"),
    "moderate": CorruptionSpec(drop_ratio=0.5, name="moderate"),
    "severe": CorruptionSpec(drop_ratio=0.75, name="severe"),
}

ROBUSTNESS: dict[str, CorruptionSpec] = {
    "S-low": CorruptionSpec(noise_sigma=0.01, name="S-low"),
    "S-high": CorruptionSpec(noise_sigma=0.03, name="S-high"),
    "T-low": CorruptionSpec(drop_ratio=0.5, pattern="random", mode="inplace", name="T-low"),
    "T-high": CorruptionSpec(drop_ratio=0.5, pattern="between", mode="inplace", name="T-high"),
}

PRESETS: dict[str, CorruptionSpec] = {**LEVELS, **ROBUSTNESS}

_FIELDS = {f.name for f in dataclasses.fields(CorruptionSpec)}


def list_presets() -> list[str]:
    return list(PRESETS)


def get_spec(spec: "str | Mapping[str, Any] | CorruptionSpec | None") -> CorruptionSpec:
    """A :class:`CorruptionSpec` from a preset name (``'severe'``, ``'minor+S-low'``), a dict or a spec.

    A dict gives the fields directly, optionally on top of a preset: ``{'base': 'severe', 'mode': 'inplace'}``.
    ``None`` means ``clean``.
    """
    if spec is None:
        return LEVELS["clean"]
    if isinstance(spec, CorruptionSpec):
        return spec
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split("+")]
        unknown = [n for n in names if n not in PRESETS]
        if unknown or not names:
            raise ValueError(f"unknown corruption preset {unknown[0] if unknown else spec!r} in {spec!r}; "
                             f"use one of {list(PRESETS)}, joined with '+' to compose")
        if len(names) == 1:
            return PRESETS[names[0]]
        out = PRESETS[names[-1]]
        for n in reversed(names[:-1]):
            out = _chain(PRESETS[n], out)
        return out.replace(name="+".join(names))
    if isinstance(spec, Mapping):
        d = dict(spec)
        base = get_spec(d.pop("base")) if "base" in d else CorruptionSpec()
        bad = sorted(set(d) - _FIELDS)
        if bad:
            raise ValueError(f"corruption spec has unknown key(s) {bad}; allowed: {sorted(_FIELDS | {'base'})}")
        if d.get("then") is not None:
            d["then"] = get_spec(d["then"])
        if "base" in spec and "name" not in d and d:
            d["name"] = ""  # a modified preset is no longer that preset: seed from its fields
        return base.replace(**d)
    raise TypeError(f"cannot make a corruption spec from {type(spec).__name__}: {spec!r}")


def _chain(first: CorruptionSpec, rest: CorruptionSpec) -> CorruptionSpec:
    if first.then is None:
        return first.replace(then=rest)
    return first.replace(then=_chain(first.then, rest))


def corrupt_seed(frame_dir: str, level: "str | CorruptionSpec", seed: int = 0) -> int:
    """Seed of the evaluation corruption of one sample: ``crc32(f'{frame_dir}|{level}|{seed}')`` (stable across
    runs, processes and platforms, unlike Python's ``hash``)."""
    key = level.key if isinstance(level, CorruptionSpec) else str(level)
    return zlib.crc32(f"{frame_dir}|{key}|{int(seed)}".encode("utf-8"))


def corrupt_arrays(
    keypoint: np.ndarray,
    score: np.ndarray,
    mask: np.ndarray,
    spec: "str | Mapping[str, Any] | CorruptionSpec",
    rng: np.random.Generator,
    *,
    coord_scale: np.ndarray | None = None,
    source_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corrupt ``keypoint [..., M, T, V, C]``, ``score [..., M, T, V]``, ``mask [..., T]``; leading dims (e.g. clips)
    are corrupted independently. Returns new ``(keypoint, score, mask, valid_len [...])``.

    ``coord_scale [C]`` converts the spec's normalised noise sigma to the coordinates' units (``None`` = 1).
    ``source_index [..., T]`` (optional): the raw frame each entry was sampled from (``UniformSampleFrames``'
    ``frame_inds``). When given, frames are dropped per *distinct source frame*: a clip looped from a short sequence
    drops or keeps all copies of a raw frame together, so "75 % dropped" removes 75 % of the real frames, not 75 % of
    the looped entries (which would leave more real frames than the level says).
    """
    spec = get_spec(spec)
    kp = np.array(keypoint, dtype=np.float32)
    sc = np.array(score, dtype=np.float32)
    mk = np.array(mask, dtype=bool)
    if kp.ndim < 4 or sc.shape != kp.shape[:-1] or mk.shape != kp.shape[:-4] + (kp.shape[-3],):
        raise ValueError(f"corrupt_arrays: need keypoint [..., M, T, V, C], score [..., M, T, V], mask [..., T]; "
                         f"got {kp.shape}, {sc.shape}, {mk.shape}")
    stage: CorruptionSpec | None = spec
    while stage is not None:
        if stage.conf_thr > 0:
            kp, sc = drop_low_confidence(kp, sc, stage.conf_thr)
        if stage.occlude_joints > 0 and stage.occlude_span > 0:
            kp, sc = occlude_joints(kp, sc, rng, stage.occlude_joints, stage.occlude_span)
        if stage.noise_sigma > 0:
            present = sc * mk[..., None, :, None]
            kp = gaussian_noise(kp, present, stage.noise_sigma, rng, scale=coord_scale)
        if stage.drop_ratio > 0:
            if source_index is None:
                keep = frame_drop_masks(mk, stage.drop_ratio, stage.pattern, rng)
            else:
                keep = _keep_by_source(mk, source_index, stage.drop_ratio, stage.pattern, rng)
                source_index = None  # a compacted clip no longer lines up with it; later stages count entries
            kp, sc, mk, _ = drop_frames(kp, sc, mk, keep, stage.mode)
        stage = stage.then
    return kp, sc, mk, mk.sum(-1).astype(np.int64)


def _keep_by_source(mask: np.ndarray, source_index: np.ndarray, ratio: float, pattern: str,
                    rng: np.random.Generator) -> np.ndarray:
    """Keep-mask ``[..., T]`` deciding per distinct source frame (see :func:`corrupt_arrays`)."""
    T = mask.shape[-1]
    src = np.broadcast_to(np.asarray(source_index, dtype=np.int64), mask.shape).reshape(-1, T)
    if src.min(initial=0) < 0:
        raise ValueError("source_index must be >= 0")
    rows = np.broadcast_to(np.arange(src.shape[0])[:, None], src.shape)
    flat_mask = mask.reshape(-1, T)
    present = np.zeros((src.shape[0], int(src.max(initial=0)) + 1), dtype=bool)  # source frames seen by valid entries
    present[rows[flat_mask], src[flat_mask]] = True
    keep_src = frame_drop_masks(present, ratio, pattern, rng)  # patterns act on source frames in time order
    return (np.take_along_axis(keep_src, src, axis=-1) & flat_mask).reshape(mask.shape)


def corrupt_sample(
    sample: SkeletonSample,
    spec_or_name: "str | Mapping[str, Any] | CorruptionSpec",
    seed: int = 0,
) -> SkeletonSample:
    """The corrupted copy of ``sample``: a pure function of ``(sample.id, spec key, seed)`` and the sample's data.

    The whole raw sequence is corrupted (its length T is kept: compact mode zero-pads the end). 2D noise sigma is
    converted to pixels with ``img_shape`` when the sample has one. ``meta`` records ``corruption`` and
    ``corruption_seed``; every numpy array in ``meta`` with leading length T (e.g. Penn's ``bbox [T, 4]``) follows
    its frames like the keypoints do (compact: kept frames first, in order; dropped frames' rows zero).
    """
    spec = get_spec(spec_or_name)
    if not sample.id:
        raise ValueError("corrupt_sample: the sample has no id (frame_dir); corruption is seeded from it, "
                         "so every id-less sample would get the same frames dropped")
    rng_seed = corrupt_seed(sample.id, spec, seed)
    scale = None
    if sample.img_shape is not None and sample.keypoint.shape[-1] == 2:
        h, w = sample.img_shape
        scale = np.array([w / 2.0, h / 2.0])
    kp, sc, mk, _ = corrupt_arrays(sample.keypoint, sample.scores, sample.mask, spec, np.random.default_rng(rng_seed),
                                   coord_scale=scale)
    meta = dict(sample.meta)
    T = sample.num_frames
    per_frame = [k for k, v in meta.items() if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == T]
    if per_frame:
        src = _frame_sources(sample, spec, rng_seed)
        lost = np.flatnonzero(mk & (src < 0))
        if len(lost):
            raise ValueError(f"corrupt_sample: sample {sample.id!r}: cannot carry meta {per_frame} through "
                             f"{spec.key!r}: every joint of output frame {int(lost[0])} is occluded")
        ok = src >= 0
        for k in per_frame:
            out = np.zeros_like(meta[k])
            out[ok] = meta[k][src[ok]]
            meta[k] = out
    meta.update(corruption=spec.key, corruption_seed=int(seed))
    return sample.copy(keypoint=kp, score=sc, mask=mk, meta=meta)


def _no_conf_thr(spec: CorruptionSpec) -> CorruptionSpec:
    return spec.replace(conf_thr=0.0, then=None if spec.then is None else _no_conf_thr(spec.then))


def _frame_sources(sample: SkeletonSample, spec: CorruptionSpec, rng_seed: int) -> np.ndarray:
    """``[T]`` int64: the input frame each output frame of :func:`corrupt_sample` holds (see :func:`frame_sources`)."""
    return frame_sources(sample.scores, sample.mask, spec, np.random.default_rng(rng_seed),
                         channels=sample.keypoint.shape[-1])


def frame_sources(
    score: np.ndarray,
    mask: np.ndarray,
    spec: "str | Mapping[str, Any] | CorruptionSpec",
    rng: np.random.Generator,
    *,
    channels: int,
    source_index: np.ndarray | None = None,
) -> np.ndarray:
    """``[..., T]`` int64: the input frame each output frame of :func:`corrupt_arrays` holds, -1 where it was zeroed.

    ``rng`` must be in the state the real :func:`corrupt_arrays` call started from (pass a copy): the call is replayed
    on keypoints that hold ``frame index + 1``. Its random draws depend only on the shapes, the mask and the scores,
    so the frames are dropped and moved exactly as in the real call (``channels``, the C of the real keypoints, keeps
    the number of noise draws equal); noise is scaled to 0 and ``conf_thr`` (no random
    draws) is switched off so the indices survive. A frame whose every joint is occluded reads -1.
    """
    score = np.asarray(score, dtype=np.float32)
    T = score.shape[-2]
    ids = np.broadcast_to(np.arange(1, T + 1, dtype=np.float32)[:, None, None], score.shape + (int(channels),))
    out, _, _, _ = corrupt_arrays(ids, score, mask, _no_conf_thr(spec), rng, coord_scale=np.zeros(int(channels)),
                                  source_index=source_index)
    return np.rint(out.max(axis=(-4, -2, -1))).astype(np.int64) - 1
