"""The one sample representation every reader produces and every transform consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["SkeletonSample", "SampleError"]


class SampleError(ValueError):
    """A skeleton sample is malformed; the message says which sample and what is wrong."""


@dataclass
class SkeletonSample:
    """One skeleton sequence.

    keypoint: ``[M, T, V, C]`` float32 (M persons, T frames, V joints, C = 2 or 3).
    score:    ``[M, T, V]`` float32 joint confidences/visibility; 0 marks a missing joint. ``None`` = all 1.
    mask:     ``[T]`` bool, True where the frame is valid (observed). Dropped/undetected frames are False.
    label:    class index (``-1`` when unknown).
    id:       unique sample id (PYSKL's ``frame_dir``); corruption of evaluation sets is seeded from it.
    img_shape: ``(h, w)`` of the source images, or ``None`` for 3D / already-normalised data.
    layout:   name of the joint layout.
    meta:     anything else a reader keeps (e.g. Penn's bbox, viewpoint); never used by models.
    """

    keypoint: np.ndarray
    label: int = -1
    id: str = ""
    score: np.ndarray | None = None
    mask: np.ndarray | None = None
    img_shape: tuple[int, int] | None = None
    layout: str = "coco17"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoint)
        if kp.ndim == 3:  # [T, V, C] single person
            kp = kp[None]
        if kp.ndim != 4:
            raise SampleError(f"sample {self.id!r}: keypoint must be [M, T, V, C], got shape {kp.shape}")
        if kp.shape[-1] not in (2, 3):
            raise SampleError(f"sample {self.id!r}: keypoint last dim C must be 2 or 3, got {kp.shape[-1]}")
        self.keypoint = kp.astype(np.float32, copy=False)
        M, T, V, _ = kp.shape
        if self.score is not None:
            s = np.asarray(self.score, dtype=np.float32)
            if s.ndim == 2:
                s = s[None]
            if s.shape != (M, T, V):
                raise SampleError(f"sample {self.id!r}: score shape {s.shape} does not match keypoint {(M, T, V)}")
            self.score = s
        if self.mask is None:
            self.mask = np.ones(T, dtype=bool)
        else:
            m = np.asarray(self.mask).astype(bool)
            if m.shape != (T,):
                raise SampleError(f"sample {self.id!r}: mask shape {m.shape} does not match T={T}")
            self.mask = m
        if self.img_shape is not None:
            self.img_shape = (int(self.img_shape[0]), int(self.img_shape[1]))

    @property
    def num_person(self) -> int:
        return self.keypoint.shape[0]

    @property
    def num_frames(self) -> int:
        return self.keypoint.shape[1]

    @property
    def num_joints(self) -> int:
        return self.keypoint.shape[2]

    @property
    def scores(self) -> np.ndarray:
        """Scores, with all-ones when the sample carries none."""
        if self.score is None:
            return np.ones(self.keypoint.shape[:3], dtype=np.float32)
        return self.score

    def copy(self, **changes: Any) -> "SkeletonSample":
        """A deep copy of the arrays, with ``changes`` applied."""
        base = dict(
            keypoint=self.keypoint.copy(),
            score=None if self.score is None else self.score.copy(),
            mask=self.mask.copy(),
            meta=dict(self.meta),
        )
        base.update(changes)
        return replace(self, **base)

    def validate(self, num_joints: int | None = None, *, where: str = "",
                 allow_no_joints: bool = False) -> "SkeletonSample":
        """Raise :class:`SampleError` for NaN/inf coordinates or scores, empty or all-dropped sequences, a wrong
        joint count, or (unless ``allow_no_joints``) a sequence in which no joint is visible in any valid frame.

        Missing joints must be encoded with score 0, not NaN; a reader that meets NaN converts it explicitly.
        """
        tag = f"sample {self.id!r}" + (f" ({where})" if where else "")
        if self.num_frames == 0 or self.num_person == 0:
            raise SampleError(f"{tag}: empty sequence (keypoint shape {self.keypoint.shape})")
        if num_joints is not None and self.num_joints != num_joints:
            raise SampleError(f"{tag}: has {self.num_joints} joints, expected {num_joints} for layout {self.layout!r}")
        bad = ~np.isfinite(self.keypoint)
        if bad.any():
            m, t, v, _ = np.argwhere(bad)[0]
            raise SampleError(
                f"{tag}: {int(bad.any(-1).sum())} joint(s) have NaN/inf coordinates, first at person {m}, "
                f"frame {t}, joint {v}; mark missing joints with score 0 instead"
            )
        if self.score is not None and not np.isfinite(self.score).all():
            m, t, v = np.argwhere(~np.isfinite(self.score))[0]
            raise SampleError(f"{tag}: non-finite score at person {m}, frame {t}, joint {v}")
        if not self.mask.any():
            raise SampleError(f"{tag}: all {self.num_frames} frames are dropped (mask is all False)")
        if not allow_no_joints and not self.has_visible_joint:
            raise SampleError(f"{tag}: no joint is visible in any of its {int(self.mask.sum())} valid frames "
                              "(every score is 0)")
        return self

    @property
    def has_visible_joint(self) -> bool:
        """True when some joint has a score > 0 in a valid frame (always, for samples without scores)."""
        if self.score is None:
            return True
        return bool((self.score[:, self.mask] > 0).any())

    # PYSKL annotation dict <-> sample -------------------------------------------------
    def to_pyskl(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "frame_dir": self.id,
            "label": int(self.label),
            "total_frames": int(self.num_frames),
            "keypoint": self.keypoint,
        }
        if self.img_shape is not None:
            d["img_shape"] = tuple(self.img_shape)
            d["original_shape"] = tuple(self.img_shape)
        if self.score is not None:
            d["keypoint_score"] = self.score
        if not self.mask.all():
            d["frame_mask"] = self.mask
        for k, v in self.meta.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_pyskl(cls, d: dict[str, Any], layout: str = "coco17", where: str = "",
                   coord_dim: int | None = None) -> "SkeletonSample":
        """A sample from a PYSKL annotation dict.

        ``coord_dim`` (or the annotation's own ``'coord_dim'`` entry; the two must agree when both are given): ``2``
        for 2D data, where a ``[..., 3]`` keypoint without ``keypoint_score`` packs the score as its third channel
        and is split; ``3`` or ``None``: the channels are kept as coordinates. Whether data are 2D or 3D is never
        guessed (e.g. from ``img_shape``).
        """
        tag = f"annotation {d.get('frame_dir', '?')!r}" + (f" in {where}" if where else "")
        if "keypoint" not in d:
            raise SampleError(f"{tag}: no 'keypoint' entry")
        kp = np.asarray(d["keypoint"], dtype=np.float32)
        score = d.get("keypoint_score")
        if kp.ndim != 4:
            raise SampleError(f"{tag}: 'keypoint' must be [M, T, V, C], got shape {kp.shape}")
        try:
            ann_dim = None if d.get("coord_dim") is None else int(d["coord_dim"])
            coord_dim = None if coord_dim is None else int(coord_dim)
        except (TypeError, ValueError):
            raise SampleError(f"{tag}: coord_dim must be 2 or 3, got {d.get('coord_dim')!r} (annotation) and "
                              f"{coord_dim!r} (argument)") from None
        if ann_dim is not None and coord_dim is not None and ann_dim != coord_dim:
            raise SampleError(f"{tag}: annotation says coord_dim={ann_dim} but coord_dim={coord_dim} was requested")
        dim = coord_dim if coord_dim is not None else ann_dim
        if dim is not None:
            if dim not in (2, 3):
                raise SampleError(f"{tag}: coord_dim must be 2 or 3, got {dim}")
            if kp.shape[-1] < dim:
                raise SampleError(f"{tag}: coord_dim={dim} but 'keypoint' has only {kp.shape[-1]} channels")
            if dim == 2 and kp.shape[-1] == 3:
                if score is not None:
                    raise SampleError(f"{tag}: coord_dim=2 with a 3-channel 'keypoint' and a 'keypoint_score': "
                                      f"the third channel is neither a coordinate nor the score")
                kp, score = kp[..., :2], kp[..., 2]  # PYSKL 2D data packed as (x, y, score)
        known = {"frame_dir", "label", "total_frames", "keypoint", "keypoint_score", "img_shape", "original_shape",
                 "frame_mask", "coord_dim"}
        meta = {k: v for k, v in d.items() if k not in known}
        try:
            return cls(
                keypoint=kp,
                score=None if score is None else np.asarray(score, dtype=np.float32),
                mask=d.get("frame_mask"),
                label=int(d.get("label", -1)),
                id=str(d.get("frame_dir", "")),
                img_shape=d.get("img_shape"),
                layout=layout,
                meta=meta,
            )
        except SampleError as e:
            raise SampleError(f"{tag}: {e}") from e
