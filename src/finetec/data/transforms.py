"""MMAction2-1.x-style pipeline transforms on a ``results`` dict (see docs/architecture.md).

Each transform is a class whose ``__call__(results) -> results`` documents its Required / Modified / Added keys.
The dict carries ``keypoint [M, T, V, C]`` float32, ``keypoint_score [M, T, V]`` (0 = missing joint), ``mask [T]``
bool (valid frames), ``label``, ``frame_dir``, ``img_shape`` ``(h, w)``, ``layout`` (a :class:`~finetec.layouts.Layout`
or its name), ``total_frames`` and ``rng`` (a ``numpy.random.Generator`` made by the dataset for this sample).
Randomness comes only from ``results['rng']`` (or, in test mode, from a transform's own ``seed``), never from global
state.

A transform that needs ``keypoint_score`` and finds none derives it PYSKL's way: a joint whose coordinates are all 0
is missing (score 0), any other joint has score 1. ``mask`` defaults to all True.

``build_pipeline([{'type': 'UniformSampleFrames', 'clip_len': 100}, ...])`` builds a :class:`Compose` from config
dicts; ``default_pipeline(...)`` gives the standard list. The corruption transform ``Corrupt`` lives in
``finetec.corruption.transforms`` and is registered on first use (``data`` imports nothing from it at load time).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..layouts import Layout, get_layout

__all__ = [
    "TRANSFORMS",
    "register_transform",
    "build_transform",
    "build_pipeline",
    "Compose",
    "UniformSampleFrames",
    "PreNormalize2D",
    "PreNormalize3D",
    "SkeletonStreams",
    "Flip",
    "RandomRotateScale",
    "FormatGCNInput",
    "default_pipeline",
    "TransformError",
]


class TransformError(ValueError):
    """A transform got results it cannot handle; the message names the sample and the transform."""


TRANSFORMS: dict[str, type] = {}
# transforms defined outside ``data`` (registered when their module is imported); imported lazily on lookup
_LAZY_MODULES = {"Corrupt": "finetec.corruption.transforms"}


def register_transform(cls: type) -> type:
    """Class decorator: make ``cls`` available to :func:`build_pipeline` under its class name."""
    name = cls.__name__
    old = TRANSFORMS.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"a different transform is already registered as {name!r}")
    TRANSFORMS[name] = cls
    return cls


# ---------------------------------------------------------------------------------------------------- helpers
def _tag(results: Mapping[str, Any], who: str) -> str:
    return f"{who}: sample {results.get('frame_dir', '?')!r}"


def _require(results: Mapping[str, Any], keys: Sequence[str], who: str) -> None:
    missing = [k for k in keys if k not in results]
    if missing:
        raise TransformError(f"{_tag(results, who)} lacks required key(s) {missing}")


def _keypoint(results: dict, who: str) -> np.ndarray:
    _require(results, ["keypoint"], who)
    kp = np.asarray(results["keypoint"])
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        raise TransformError(f"{_tag(results, who)}: keypoint must be [M, T, V, C] with C in (2, 3), got {kp.shape}")
    return kp


def _score(results: dict, who: str) -> np.ndarray:
    """``keypoint_score`` as float32 ``[M, T, V]``; derived from non-zero coordinates (and stored) when absent."""
    kp = np.asarray(results["keypoint"])
    s = results.get("keypoint_score")
    if s is None:
        s = np.any(kp != 0, axis=-1).astype(np.float32)
        results["keypoint_score"] = s
        return s
    s = np.asarray(s, dtype=np.float32)
    if s.shape != kp.shape[:3]:
        raise TransformError(f"{_tag(results, who)}: keypoint_score shape {s.shape} does not match keypoint "
                             f"{kp.shape[:3]}")
    return s


def _mask(results: dict, who: str) -> np.ndarray:
    """``mask`` as bool ``[T]`` (all True, and stored, when absent)."""
    T = np.asarray(results["keypoint"]).shape[1]
    m = results.get("mask")
    if m is None:
        m = np.ones(T, dtype=bool)
        results["mask"] = m
        return m
    m = np.asarray(m, dtype=bool)
    if m.shape != (T,):
        raise TransformError(f"{_tag(results, who)}: mask shape {m.shape} does not match T={T}")
    return m


def _layout(results: Mapping[str, Any], who: str) -> Layout:
    _require(results, ["layout"], who)
    layout = get_layout(results["layout"])
    V = np.asarray(results["keypoint"]).shape[2]
    if layout.num_joints != V:
        raise TransformError(f"{_tag(results, who)}: keypoint has {V} joints but layout {layout.name!r} has "
                             f"{layout.num_joints}")
    return layout


def _rng(results: Mapping[str, Any], who: str) -> np.random.Generator:
    rng = results.get("rng")
    if not isinstance(rng, np.random.Generator):
        raise TransformError(f"{_tag(results, who)}: needs results['rng'], a numpy.random.Generator made by the "
                             f"dataset for this sample; got {type(rng).__name__}")
    return rng


def _present(score: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Joints that are observed: score > 0 in a valid frame, ``[M, T, V]``."""
    return (score > 0) & mask[None, :, None]


class _Repr:
    _repr_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._repr_keys)
        return f"{type(self).__name__}({args})"


# ---------------------------------------------------------------------------------------------------- sampling
@register_transform
class UniformSampleFrames(_Repr):
    """Sample ``num_clips`` clips of ``clip_len`` frames, PYSKL's ``UniformSampleFrames`` semantics.

    Per clip, with ``n`` frames (``n = int(ratio * T)`` for a ``p_interval`` ratio, then a random offset ``off``):

    * ``n < clip_len``: a start (random in training; ``i`` or ``i * n // num_clips`` for clip ``i`` in test) then
      ``start + arange(clip_len)``, looped modulo ``T``;
    * ``clip_len <= n < 2 * clip_len``: ``arange(clip_len)`` plus a cumulative offset that is 1 after each of
      ``n - clip_len`` randomly chosen insertion points (consecutive frames with random skips);
    * otherwise: ``n`` split into ``clip_len`` segments ``[i*n//clip_len, (i+1)*n//clip_len)``, one random frame in
      each.

    Training draws from ``results['rng']``. Test mode draws from a private ``numpy.random.RandomState(seed)`` made
    afresh for every sample, in PYSKL's call order, so the chosen frames are the same on every run and equal
    PYSKL's test-time frames for the same ``seed`` (255 by default). Global RNG state is never used.

    Required keys: keypoint, total_frames (or inferred from keypoint), rng (training).
    Modified keys: keypoint, keypoint_score, mask (gathered to ``num_clips * clip_len`` frames).
    Added keys: frame_inds, clip_len, num_clips, keypoint_score/mask (when absent).
    """

    _repr_keys = ("clip_len", "num_clips", "test_mode", "seed", "p_interval")

    def __init__(self, clip_len: int, num_clips: int = 1, test_mode: bool = False, seed: int = 255,
                 p_interval: float | tuple[float, float] = 1) -> None:
        if int(clip_len) < 1 or int(num_clips) < 1:
            raise ValueError(f"UniformSampleFrames: clip_len and num_clips must be >= 1, got {clip_len}, {num_clips}")
        self.clip_len = int(clip_len)
        self.num_clips = int(num_clips)
        self.test_mode = bool(test_mode)
        self.seed = int(seed)
        pi = tuple(p_interval) if isinstance(p_interval, (tuple, list)) else (p_interval, p_interval)
        if len(pi) != 2 or not 0 < pi[0] <= pi[1] <= 1:
            raise ValueError(f"UniformSampleFrames: p_interval must be a ratio or (lo, hi) in (0, 1], got {p_interval}")
        self.p_interval = (float(pi[0]), float(pi[1]))

    def _indices(self, T: int, rand: Any, test: bool) -> np.ndarray:
        """Frame indices (before the modulo) for all clips; ``rand`` is a RandomState (test) or Generator."""
        legacy = isinstance(rand, np.random.RandomState)
        uniform = rand.rand if legacy else rand.random
        integers = rand.randint if legacy else rand.integers
        L, lo, hi = self.clip_len, *self.p_interval
        out = []
        for i in range(self.num_clips):  # a handful of clips: the per-clip work is vectorised
            ratio = uniform() * (hi - lo) + lo
            n = max(int(ratio * T), 1)
            off = integers(T - n + 1)
            if n < L:
                if test:
                    start = i if n < self.num_clips else i * n // self.num_clips
                else:
                    start = integers(0, n)
                inds = np.arange(start, start + L)
            elif n < 2 * L:
                ins = rand.choice(L + 1, n - L, replace=False)
                step = np.zeros(L + 1, dtype=np.int64)
                step[ins] = 1
                inds = np.arange(L) + np.cumsum(step)[:-1]
            else:
                bounds = np.arange(L + 1) * n // L
                inds = bounds[:-1] + integers(np.diff(bounds))
            out.append(np.asarray(inds, dtype=np.int64) + off)
        return np.concatenate(out)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who)
        T = kp.shape[1]
        total = int(results.get("total_frames", T))
        if total != T or T < 1:
            raise TransformError(f"{_tag(results, who)}: total_frames={total} but keypoint has {T} frames")
        if self.test_mode:
            inds = self._indices(T, np.random.RandomState(self.seed), test=True)
        else:
            inds = self._indices(T, _rng(results, who), test=False)
        inds = np.mod(inds, T)
        score = _score(results, who)
        mask = _mask(results, who)
        results["keypoint"] = np.ascontiguousarray(kp[:, inds]).astype(np.float32, copy=False)
        results["keypoint_score"] = np.ascontiguousarray(score[:, inds])
        results["mask"] = mask[inds]
        results["frame_inds"] = inds
        results["clip_len"] = self.clip_len
        results["num_clips"] = self.num_clips
        return results


# ---------------------------------------------------------------------------------------------------- normalisation
@register_transform
class PreNormalize2D(_Repr):
    """Normalise 2D coordinates to [-1, 1].

    ``by='image'``: ``x' = 2x/w - 1``, ``y' = 2y/h - 1`` with ``img_shape = (h, w)`` (PYSKL's PreNormalize2D).
    ``by='box'``: the union box of all observed joints (score > 0 in valid frames, all persons, all frames) is
    centred at 0 and its longer side scaled to ``2 / (1 + margin)`` (aspect ratio kept), so the coordinates span
    ``[-1/(1+margin), 1/(1+margin)]`` on the longer axis.
    Afterwards missing joints (score 0) and all joints of invalid frames get coordinates 0 and score 0.
    ``norm_center`` / ``norm_scale`` record the map back: ``x = x' * norm_scale + norm_center``.

    Required keys: keypoint (C = 2), img_shape (``by='image'``).
    Modified keys: keypoint, keypoint_score.
    Added keys: coord_norm, norm_center, norm_scale, keypoint_score/mask (when absent).
    """

    _repr_keys = ("by", "margin")

    def __init__(self, by: str = "image", margin: float = 0.1) -> None:
        if by not in ("image", "box"):
            raise ValueError(f"PreNormalize2D: by must be 'image' or 'box', got {by!r}")
        if not margin >= 0:
            raise ValueError(f"PreNormalize2D: margin must be >= 0, got {margin}")
        self.by = by
        self.margin = float(margin)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who).astype(np.float32, copy=True)
        if kp.shape[-1] != 2:
            raise TransformError(f"{_tag(results, who)}: keypoints are {kp.shape[-1]}D; use PreNormalize3D")
        score = _score(results, who)
        mask = _mask(results, who)
        present = _present(score, mask)
        if self.by == "image":
            if results.get("img_shape") is None:
                raise TransformError(f"{_tag(results, who)}: by='image' needs results['img_shape'] = (h, w); "
                                     f"supply it or use by='box'")
            h, w = (float(v) for v in results["img_shape"])
            if h <= 0 or w <= 0:
                raise TransformError(f"{_tag(results, who)}: img_shape {results['img_shape']} is not positive")
            center = np.array([w / 2, h / 2], dtype=np.float32)
            scale = center.copy()
        else:
            pts = kp[present]
            if len(pts) == 0:
                raise TransformError(f"{_tag(results, who)}: by='box' needs at least one observed joint "
                                     f"(score > 0 in a valid frame); there is none")
            lo, hi = pts.min(0), pts.max(0)
            center = ((lo + hi) / 2).astype(np.float32)
            half = float((hi - lo).max()) / 2 * (1 + self.margin)
            scale = np.full(2, half if half > 0 else 1.0, dtype=np.float32)
        kp = (kp - center) / scale
        kp *= present[..., None]
        results["keypoint"] = kp
        results["keypoint_score"] = score * mask[None, :, None]
        results["coord_norm"] = self.by
        results["norm_center"] = center
        results["norm_scale"] = scale
        return results


@register_transform
class PreNormalize3D(_Repr):
    """Centre 3D skeletons and optionally align them to a body frame (PYSKL's PreNormalize3D, vectorised).

    Centre: the layout's ``center`` joint of person 0 in the first valid frame where it is observed.
    Align (``align=True``): in the first valid frame where person 0's hips and shoulders are all observed, the
    spine ``mid(left_shoulder, right_shoulder) - mid(left_hip, right_hip)`` becomes +z and the shoulder line
    ``right_shoulder - left_shoulder`` (its part orthogonal to the spine) becomes +x, y = z x x; one rotation for
    the whole sequence. PYSKL uses NTU's spine_base -> spine_mid and rotates twice (the second rotation can tilt the
    spine off z); we use the hip-mid -> shoulder-mid line, which exists in every built-in layout, and build the frame
    directly so the spine stays exactly on z. Alignment is skipped (``aligned=False``) when the layout has no
    left/right hip/shoulder joints, no frame observes them all, or the frame is degenerate.
    PYSKL also removes empty frames; here they stay and ``mask`` marks them.
    Missing joints and invalid frames get coordinates 0 and score 0.

    Required keys: keypoint (C = 3), layout.
    Modified keys: keypoint, keypoint_score.
    Added keys: coord_norm ('3d'), body_center, aligned, vertical_axis (2 if aligned, else 1: camera y),
    keypoint_score/mask (when absent).
    """

    _repr_keys = ("align",)
    _AXIS_JOINTS = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")

    def __init__(self, align: bool = True) -> None:
        self.align = bool(align)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who).astype(np.float32, copy=True)
        if kp.shape[-1] != 3:
            raise TransformError(f"{_tag(results, who)}: keypoints are {kp.shape[-1]}D; use PreNormalize2D")
        layout = _layout(results, who)
        score = _score(results, who)
        mask = _mask(results, who)
        present = _present(score, mask)
        c = layout.center
        frames = np.flatnonzero(present[0, :, c])
        if len(frames) == 0:
            raise TransformError(f"{_tag(results, who)}: person 0 never shows the centre joint "
                                 f"{layout.joints[c]!r} in a valid frame; cannot centre")
        center = kp[0, frames[0], c].copy()
        kp = (kp - center) * present[..., None]
        aligned = False
        if self.align and all(j in layout.joints for j in self._AXIS_JOINTS):
            lh, rh, ls, rs = (layout.index(j) for j in self._AXIS_JOINTS)
            ok = np.flatnonzero(present[0][:, [lh, rh, ls, rs]].all(-1))
            if len(ok):
                f = kp[0, ok[0]].astype(np.float64)
                z = (f[ls] + f[rs]) / 2 - (f[lh] + f[rh]) / 2
                x = f[rs] - f[ls]
                zn = np.linalg.norm(z)
                if zn > 1e-8:
                    z = z / zn
                    x = x - (x @ z) * z
                    xn = np.linalg.norm(x)
                    if xn > 1e-8:
                        x = x / xn
                        rot = np.stack([x, np.cross(z, x), z])  # rows: new axes in old coordinates
                        kp = (kp @ rot.T.astype(np.float32)) * present[..., None]
                        aligned = True
        results["keypoint"] = kp.astype(np.float32, copy=False)
        results["keypoint_score"] = score * mask[None, :, None]
        results["coord_norm"] = "3d"
        results["body_center"] = center
        results["aligned"] = aligned
        results["vertical_axis"] = 2 if aligned else 1
        return results


# ---------------------------------------------------------------------------------------------------- features
@register_transform
class SkeletonStreams(_Repr):
    """Joint / bone / motion streams concatenated along C (PYSKL's ``GenSkeFeat``).

    ``j``: joints; ``b``: bones ``x_v - x_parent(v)`` with ``layout.parents`` (root bone 0); ``jm`` / ``bm``: joint /
    bone motion ``x[t+1] - x[t]`` with the last frame of each clip 0. For 2D with ``include_score`` every stream
    carries its own score channel (so C' = 3 per stream): joint score; bone score = mean of its two joints' scores;
    motion score = mean of the two frames' scores (PYSKL's ``ToMotion``). Deviations from PYSKL: motion is taken
    between consecutive *sampled* frames (this transform runs after :class:`UniformSampleFrames`; PYSKL computes it on
    the raw frames before sampling); a bone with a missing end is 0 (score 0); a motion value, score included, is 0
    unless the joint/bone is observed in both frames (never a jump from or to a zero-padded frame); motion never
    crosses the boundary between two sampled clips. 3D streams have no score channel. ``num_channels(C)`` gives C'.

    Required keys: keypoint, layout (for b / bm).
    Modified keys: keypoint ``[M, T, V, C']`` float32.
    Added keys: feats, keypoint_score/mask (when absent).
    """

    _repr_keys = ("feats", "include_score")
    FEATS = ("j", "b", "jm", "bm")

    def __init__(self, feats: Sequence[str] = ("j",), include_score: bool = True) -> None:
        feats = (feats,) if isinstance(feats, str) else tuple(feats)
        bad = [f for f in feats if f not in self.FEATS]
        if not feats or bad or len(set(feats)) != len(feats):
            raise ValueError(f"SkeletonStreams: feats must be distinct names from {list(self.FEATS)}, got {feats}")
        self.feats = feats
        self.include_score = bool(include_score)

    def num_channels(self, coord_dim: int) -> int:
        """Channels of the output for ``coord_dim``-D input."""
        return len(self.feats) * (coord_dim + int(coord_dim == 2 and self.include_score))

    @staticmethod
    def _motion(x: np.ndarray, ok: np.ndarray, clip_len: int, with_score: bool) -> np.ndarray:
        """``x[t+1] - x[t]`` where ``ok`` at both t and t+1 and t is not a clip's last frame; else 0. With
        ``with_score`` the last channel is a score: it gets the mean ``(s[t] + s[t+1]) / 2`` instead."""
        d = np.zeros_like(x)
        d[:, :-1] = x[:, 1:] - x[:, :-1]
        if with_score:
            d[:, :-1, :, -1] = (x[:, 1:, :, -1] + x[:, :-1, :, -1]) / 2
        both = np.zeros_like(ok)
        both[:, :-1] = ok[:, 1:] & ok[:, :-1]
        T = x.shape[1]
        both[:, np.arange(T) % clip_len == clip_len - 1] = False
        return d * both[..., None]

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who).astype(np.float32, copy=False)
        score = _score(results, who)
        mask = _mask(results, who)
        present = _present(score, mask)
        T = kp.shape[1]
        clip_len = int(results.get("clip_len", T))
        if clip_len < 1 or T % clip_len:
            raise TransformError(f"{_tag(results, who)}: T={T} is not a multiple of clip_len={clip_len}")
        with_score = kp.shape[-1] == 2 and self.include_score
        joint = np.concatenate([kp, score[..., None]], -1) if with_score else kp
        joint = joint * present[..., None]
        streams: dict[str, np.ndarray] = {"j": joint}
        if "b" in self.feats or "bm" in self.feats:
            parents = _layout(results, who).parents
            bone_ok = present & present[:, :, parents]
            bone = (kp - kp[:, :, parents]) * bone_ok[..., None]
            if with_score:
                bscore = (score + score[:, :, parents]) / 2 * bone_ok
                bone = np.concatenate([bone, bscore[..., None]], -1)
            streams["b"] = bone
            if "bm" in self.feats:
                streams["bm"] = self._motion(bone, bone_ok, clip_len, with_score)
        if "jm" in self.feats:
            streams["jm"] = self._motion(joint, present, clip_len, with_score)
        results["keypoint"] = np.concatenate([streams[f] for f in self.feats], -1).astype(np.float32)
        results["feats"] = self.feats
        return results


# ---------------------------------------------------------------------------------------------------- augmentation
@register_transform
class Flip(_Repr):
    """Mirror left/right with probability ``flip_ratio``: joints permuted by ``layout.flip_index`` and x negated.

    Needs centred coordinates: 2D input must have been normalised (``coord_norm`` set by PreNormalize2D); 3D input
    is mirrored in the plane x = 0 (centred by PreNormalize3D). Missing joints stay 0.

    Required keys: keypoint, layout, rng (when 0 < flip_ratio < 1), coord_norm (2D).
    Modified keys: keypoint, keypoint_score.
    Added keys: flip.
    """

    _repr_keys = ("flip_ratio",)

    def __init__(self, flip_ratio: float = 0.5) -> None:
        if not 0 <= flip_ratio <= 1:
            raise ValueError(f"Flip: flip_ratio must be in [0, 1], got {flip_ratio}")
        self.flip_ratio = float(flip_ratio)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who)
        layout = _layout(results, who)
        if kp.shape[-1] == 2 and not results.get("coord_norm"):
            raise TransformError(f"{_tag(results, who)}: 2D keypoints are not normalised (no 'coord_norm'); "
                                 f"put PreNormalize2D before Flip")
        if self.flip_ratio >= 1:
            flip = True
        elif self.flip_ratio <= 0:
            flip = False
        else:
            flip = bool(_rng(results, who).random() < self.flip_ratio)
        results["flip"] = flip
        if not flip:
            return results
        score = _score(results, who)
        perm = layout.flip_index
        kp = kp[:, :, perm].astype(np.float32, copy=True)
        kp[..., 0] *= -1
        kp[kp == 0] = 0.0  # no -0.0
        results["keypoint"] = kp
        results["keypoint_score"] = score[:, :, perm]
        return results


@register_transform
class RandomRotateScale(_Repr):
    """Random rotation by an angle in ``[-max_angle_deg, max_angle_deg]`` and isotropic scale in ``scale``.

    2D: rotation about the origin of the normalised coordinates. 3D: rotation about the vertical axis
    (``vertical_axis``, default ``results['vertical_axis']`` set by PreNormalize3D, else 1 = camera y).
    Missing joints and invalid frames stay 0.

    Required keys: keypoint, rng, coord_norm (2D).
    Modified keys: keypoint.
    Added keys: rotate_angle, rotate_scale.
    """

    _repr_keys = ("max_angle_deg", "scale", "vertical_axis")

    def __init__(self, max_angle_deg: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                 vertical_axis: int | None = None) -> None:
        if max_angle_deg < 0 or len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"RandomRotateScale: need max_angle_deg >= 0 and 0 < scale[0] <= scale[1], got "
                             f"{max_angle_deg}, {scale}")
        if vertical_axis not in (None, 0, 1, 2):
            raise ValueError(f"RandomRotateScale: vertical_axis must be 0, 1, 2 or None, got {vertical_axis}")
        self.max_angle_deg = float(max_angle_deg)
        self.scale = (float(scale[0]), float(scale[1]))
        self.vertical_axis = vertical_axis

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        kp = _keypoint(results, who).astype(np.float32, copy=False)
        if kp.shape[-1] == 2 and not results.get("coord_norm"):
            raise TransformError(f"{_tag(results, who)}: 2D keypoints are not normalised (no 'coord_norm'); "
                                 f"put PreNormalize2D before RandomRotateScale")
        rng = _rng(results, who)
        angle = rng.uniform(-self.max_angle_deg, self.max_angle_deg)
        s = rng.uniform(*self.scale)
        c, si = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        rot2 = np.array([[c, -si], [si, c]])
        if kp.shape[-1] == 2:
            mat = rot2
        else:
            v = self.vertical_axis if self.vertical_axis is not None else int(results.get("vertical_axis", 1))
            a, b = [i for i in range(3) if i != v]
            mat = np.eye(3)
            mat[np.ix_([a, b], [a, b])] = rot2
        present = _present(_score(results, who), _mask(results, who))
        results["keypoint"] = ((kp @ (s * mat).T.astype(np.float32)) * present[..., None]).astype(np.float32)
        results["rotate_angle"] = float(angle)
        results["rotate_scale"] = float(s)
        return results


# ---------------------------------------------------------------------------------------------------- formatting
@register_transform
class FormatGCNInput(_Repr):
    """Fix the person count and split the clips: ``keypoint [num_clips, M, clip_len, V, C]`` float32.

    More than ``num_person`` persons: the ``num_person`` with the highest total score are kept, in their original
    order. Fewer: zero persons (score 0) are appended.

    Required keys: keypoint, num_clips (default 1).
    Modified keys: keypoint ``[nc, M, L, V, C]``, keypoint_score ``[nc, M, L, V]``, mask ``[nc, L]``; when present
    (``Corrupt(keep_clean=True)``) keypoint_clean, keypoint_score_clean and kept ``[nc, L]`` in the same way.
    Added keys: valid_len ``[nc]`` int64 (valid frames per clip).
    """

    _repr_keys = ("num_person",)

    def __init__(self, num_person: int = 2) -> None:
        if int(num_person) < 1:
            raise ValueError(f"FormatGCNInput: num_person must be >= 1, got {num_person}")
        self.num_person = int(num_person)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["keypoint"], who)
        kp = np.asarray(results["keypoint"], dtype=np.float32)
        if kp.ndim != 4:
            raise TransformError(f"{_tag(results, who)}: keypoint must be [M, T, V, C], got {kp.shape}")
        score = np.asarray(results["keypoint_score"], dtype=np.float32) if "keypoint_score" in results else \
            np.any(kp != 0, -1).astype(np.float32)
        if score.shape != kp.shape[:3]:
            raise TransformError(f"{_tag(results, who)}: keypoint_score {score.shape} vs keypoint {kp.shape[:3]}")
        mask = _mask(results, who)
        M, T, V, C = kp.shape
        P = self.num_person
        nc = int(results.get("num_clips", 1))
        if nc < 1 or T % nc:
            raise TransformError(f"{_tag(results, who)}: T={T} frames cannot be split into num_clips={nc}")
        L = T // nc
        keep = np.sort(np.argsort(-score.sum((1, 2)), kind="stable")[:P]) if M > P else None

        def persons_and_clips(a: np.ndarray) -> np.ndarray:  # [M, T, ...] -> [nc, P, L, ...]
            a = np.asarray(a, dtype=np.float32)
            if keep is not None:
                a = a[keep]
            elif M < P:
                a = np.concatenate([a, np.zeros((P - M,) + a.shape[1:], np.float32)], 0)
            a = a.reshape((P, nc, L) + a.shape[2:])
            return np.ascontiguousarray(np.moveaxis(a, 1, 0))

        results["keypoint"] = persons_and_clips(kp)
        results["keypoint_score"] = persons_and_clips(score)
        if "keypoint_clean" in results:  # Corrupt(keep_clean=True): the ground truth follows the same persons
            results["keypoint_clean"] = persons_and_clips(results["keypoint_clean"])
            results["keypoint_score_clean"] = persons_and_clips(results["keypoint_score_clean"])
            results["kept"] = np.asarray(results["kept"], dtype=bool).reshape(nc, L)
        results["mask"] = mask.reshape(nc, L)
        results["valid_len"] = results["mask"].sum(-1).astype(np.int64)
        return results


# ---------------------------------------------------------------------------------------------------- composition
def build_transform(cfg: "Mapping[str, Any] | Callable[[dict], dict]") -> Callable[[dict], dict]:
    """A transform from ``{'type': name, **kwargs}`` (or a callable, returned as is)."""
    if callable(cfg) and not isinstance(cfg, Mapping):
        return cfg
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise TypeError(f"a pipeline step must be a callable or a dict with a 'type' key, got {cfg!r}")
    kwargs = dict(cfg)
    name = kwargs.pop("type")
    if name not in TRANSFORMS and name in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[name])
    if name not in TRANSFORMS:
        raise KeyError(f"unknown transform {name!r}; registered: {sorted(set(TRANSFORMS) | set(_LAZY_MODULES))}")
    try:
        return TRANSFORMS[name](**kwargs)
    except TypeError as e:
        raise TypeError(f"cannot build transform {name!r} from {dict(cfg)}: {e}") from e


class Compose:
    """Apply transforms in order (dicts are built with :func:`build_transform`)."""

    def __init__(self, transforms: Sequence["Mapping[str, Any] | Callable[[dict], dict]"]) -> None:
        self.transforms = [build_transform(t) for t in transforms]

    def __call__(self, results: dict) -> dict:
        for t in self.transforms:
            out = t(results)
            if not isinstance(out, dict):
                raise TransformError(f"{_tag(results, 'Compose')}: transform {t!r} returned "
                                     f"{type(out).__name__}, not the results dict")
            results = out
        return results

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


def build_pipeline(cfgs: Sequence["Mapping[str, Any] | Callable[[dict], dict]"]) -> Compose:
    """:class:`Compose` of the transforms described by ``cfgs`` (list of dicts with a ``'type'`` key)."""
    return Compose(cfgs)


def default_pipeline(
    layout: "str | Layout",
    *,
    clip_len: int,
    num_clips: int,
    test_mode: bool,
    feats: Sequence[str] = ("j",),
    corruption: "str | Mapping[str, Any] | None" = None,
    norm: str | None = "image",
    augment: bool = True,
    num_person: int = 2,
    corruption_seed: int = 0,
    keep_clean: bool = False,
) -> list[dict[str, Any]]:
    """The standard list of transform configs.

    ``PreNormalize{2D,3D} -> UniformSampleFrames -> [Flip, RandomRotateScale] -> [Corrupt] -> SkeletonStreams ->
    FormatGCNInput``. Augmentation comes before corruption so that the corrupted input and its clean version
    (``keep_clean``: kept for completion training and restoration metrics) are the same augmented clip. ``norm``: ``'image'`` / ``'box'`` (2D), ``'3d'`` (3D; aligned when the layout has hips and
    shoulders) or ``None`` (coordinates used as they are; 2D augmentation then refuses to run). ``corruption``: a
    preset name / spec dict, ``None`` or ``'clean'`` for none. Augmentation only in training and only when
    ``augment``; Flip only when the layout has left/right pairs.
    """
    layout = get_layout(layout)
    cfgs: list[dict[str, Any]] = []
    if norm in ("image", "box"):
        cfgs.append(dict(type="PreNormalize2D", by=norm))
    elif norm == "3d":
        align = all(j in layout.joints for j in PreNormalize3D._AXIS_JOINTS)
        cfgs.append(dict(type="PreNormalize3D", align=align))
    elif norm is not None:
        raise ValueError(f"default_pipeline: norm must be 'image', 'box', '3d' or None, got {norm!r}")
    cfgs.append(dict(type="UniformSampleFrames", clip_len=clip_len, num_clips=num_clips, test_mode=test_mode))
    if augment and not test_mode:
        if layout.flip_pairs:
            cfgs.append(dict(type="Flip", flip_ratio=0.5))
        cfgs.append(dict(type="RandomRotateScale"))
    if corruption is not None and corruption != "clean":
        cfgs.append(dict(type="Corrupt", level=corruption, test_mode=test_mode, seed=corruption_seed,
                         keep_clean=keep_clean))
    cfgs.append(dict(type="SkeletonStreams", feats=tuple(feats)))
    cfgs.append(dict(type="FormatGCNInput", num_person=num_person))
    return cfgs
