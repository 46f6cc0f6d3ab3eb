"""``SkeletonDataset``: annotations + split + pipeline, with a per-sample random generator.

Randomness never comes from global state. Each ``__getitem__`` builds the sample's generator from integers only:

* training: ``np.random.default_rng([seed, epoch, index])``;
* evaluation (``test_mode=True``): ``np.random.default_rng([seed, crc32(frame_dir)])``, so the same sample gets
  the same frames and corruption whatever the order, the batch size or the number of processes.

The epoch comes either from :meth:`SkeletonDataset.set_epoch` or, robustly under DataLoader workers and resumed
runs, from the index itself: ``dataset[(index, epoch)]`` (what :class:`finetec.engine.datamodule.EpochSampler`
yields).
"""

from __future__ import annotations

import os
import warnings
import zlib
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..layouts import Layout, get_layout
from .io import AnnotationError, _select, infer_layout, load_annotations, validate_annotations
from .sample import SampleError, SkeletonSample
from .transforms import Compose, build_pipeline

__all__ = ["SkeletonDataset", "synthetic_annotations"]


class SkeletonDataset(Dataset):
    """Samples of one split of a PYSKL-style annotation file, passed through a transform pipeline.

    Args:
        ann_file: path of a PYSKL pickle, or an already loaded ``{'split', 'annotations', 'meta'}`` dict.
        split: split name (``None``: every annotation, in file order).
        pipeline: transform config dicts (see :func:`finetec.data.transforms.build_pipeline`); must end with
            ``FormatGCNInput``.
        layout: layout name; ``None`` takes ``meta['layout']`` (or infers it from the joint count).
        seed: seed of the per-sample generators.
        test_mode: evaluation generators (see module docstring).
        require_labels: refuse samples with label -1 (unknown).
        name: how error messages name an ``ann_file`` given as a dict (e.g. the file it was read from).
        trusted: the dict comes from :func:`~finetec.data.io.load_annotations` (already validated as a whole);
            each sample is still converted and validated.
        skip_invisible: what to do with a sample in which no joint is visible at all (e.g. Penn Action's clip
            1516): ``None`` (default) skips it in training -- there is nothing to learn from -- and keeps it in
            evaluation, so the official test split keeps its size and the clip counts as whatever the model
            predicts from an empty input; ``True`` / ``False`` force skipping / keeping. Skipped ids are listed in
            ``self.skipped`` and reported once with a warning.

    Every sample is converted to a :class:`SkeletonSample` and validated when the dataset is built, so a bad
    sample fails at once with the file, the sample id and its index in the split.

    ``dataset[i]`` returns ``keypoint`` float32 tensor ``[num_clips, M, T, V, C]``, ``mask`` bool ``[num_clips, T]``,
    ``label`` long, ``frame_dir`` str and ``index`` long (position in the split).
    """

    def __init__(
        self,
        ann_file: "str | os.PathLike | Mapping[str, Any]",
        split: str | None,
        pipeline: Sequence[Any],
        layout: "str | Layout | None" = None,
        seed: int = 0,
        test_mode: bool = False,
        require_labels: bool = True,
        name: str | None = None,
        trusted: bool = False,
        skip_invisible: bool | None = None,
    ) -> None:
        if isinstance(ann_file, Mapping):
            self.where = name or "annotations dict"
            data = {"split": ann_file.get("split") or {}, "annotations": ann_file.get("annotations"),
                    "meta": ann_file.get("meta") or {}}
            if data["annotations"] is None:
                raise AnnotationError(f"{self.where}: no 'annotations' key")
            if not trusted:
                validate_annotations(data, self.where)
        else:
            self.where = str(ann_file)
            if not os.path.isfile(ann_file):
                raise FileNotFoundError(f"annotation file not found: {ann_file}")
            data = load_annotations(ann_file)
        meta = dict(data["meta"])
        anns = data["annotations"]
        selected = _select(data, split, self.where)
        if not selected:
            raise AnnotationError(f"{self.where}: split {split!r} is empty")
        joints = {a["keypoint"].shape[2] for a in selected}
        if len(joints) > 1:
            raise AnnotationError(f"{self.where}: split {split!r} mixes joint counts {sorted(joints)}")
        layout_name = layout.name if isinstance(layout, Layout) else layout
        layout_name = infer_layout(joints.pop(), layout_name, meta, self.where)
        self.layout: Layout = get_layout(layout if isinstance(layout, Layout) else layout_name)
        self.split = split
        self.seed = int(seed)
        self.test_mode = bool(test_mode)
        self.epoch = 0

        classes = meta.get("classes")
        all_labels = np.array([int(a["label"]) for a in anns], dtype=np.int64)
        if classes is not None:
            self.classes = [str(c) for c in classes]
        else:
            self.classes = [str(i) for i in range(int(all_labels.max()) + 1 if all_labels.max() >= 0 else 0)]
        skip = (not self.test_mode) if skip_invisible is None else bool(skip_invisible)
        self.samples: list[SkeletonSample] = []
        self.skipped: list[str] = []
        for i, a in enumerate(selected):
            where = f"{self.where}, split {split!r} index {i}"
            try:
                s = SkeletonSample.from_pyskl(dict(a), layout=self.layout.name)
                s.validate(self.layout.num_joints, allow_no_joints=True)
            except SampleError as e:
                raise SampleError(f"{where}: {e}") from e
            if not s.has_visible_joint and skip:
                self.skipped.append(s.id)
                continue
            if require_labels and s.label < 0:
                raise SampleError(f"{where}: sample {s.id!r} has no label (-1); training/evaluation needs labels")
            self.samples.append(s)
        if self.skipped:
            warnings.warn(f"{self.where}, split {split!r}: skipped {len(self.skipped)} sample(s) with no visible "
                          f"joint: {self.skipped[:5]}{' ...' if len(self.skipped) > 5 else ''}", stacklevel=2)
        if not self.samples:
            raise AnnotationError(f"{self.where}: split {split!r} has no sample with a visible joint")
        self.pipeline: Compose = build_pipeline(pipeline)

    # ------------------------------------------------------------------ API
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], dtype=np.int64)

    @property
    def frame_dirs(self) -> list[str]:
        return [s.id for s in self.samples]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used by integer indices in training mode."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def rng_for(self, index: int, epoch: int | None = None) -> np.random.Generator:
        """The generator sample ``index`` gets (training: from seed, epoch, index; evaluation: seed, crc32 id)."""
        if self.test_mode:
            return np.random.default_rng([self.seed, zlib.crc32(self.samples[index].id.encode("utf-8"))])
        return np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), int(index)])

    def results(self, index: int, epoch: int | None = None) -> dict[str, Any]:
        """The pipeline's input dict for sample ``index`` (arrays copied: transforms may work in place)."""
        s = self.samples[index]
        return {
            "keypoint": s.keypoint.copy(),
            "keypoint_score": s.scores.copy(),
            "mask": s.mask.copy(),
            "label": int(s.label),
            "frame_dir": s.id,
            "img_shape": s.img_shape,
            "layout": self.layout,
            "total_frames": s.num_frames,
            "rng": self.rng_for(index, epoch),
        }

    def _index(self, item: "int | tuple[int, int]") -> tuple[int, int | None]:
        """``(index, epoch)`` of ``dataset[index]`` or ``dataset[(index, epoch)]``, the index range-checked."""
        if isinstance(item, (tuple, list)):
            index, epoch = int(item[0]), int(item[1])
        else:
            index, epoch = int(item), None
        if not 0 <= index < len(self.samples):
            raise IndexError(f"index {index} out of range for {len(self.samples)} samples")
        return index, epoch

    def __getitem__(self, item: "int | tuple[int, int]") -> dict[str, Any]:
        index, epoch = self._index(item)
        res = self.pipeline(self.results(index, epoch))
        kp, mask = res.get("keypoint"), res.get("mask")
        if kp is None or np.ndim(kp) != 5 or mask is None or np.ndim(mask) != 2:
            raise SampleError(
                f"{self.where}: sample {self.samples[index].id!r} (index {index}): pipeline must end with "
                f"FormatGCNInput (keypoint [nc, M, T, V, C], mask [nc, T]); got keypoint shape "
                f"{getattr(kp, 'shape', None)}, mask shape {getattr(mask, 'shape', None)}")
        out = {
            "keypoint": torch.from_numpy(np.ascontiguousarray(kp, dtype=np.float32)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)),
            "label": torch.tensor(int(res["label"]), dtype=torch.long),
            "frame_dir": str(res["frame_dir"]),
            "index": torch.tensor(index, dtype=torch.long),
        }
        if "keypoint_clean" in res:  # Corrupt(keep_clean=True): ground truth for completion / restoration metrics
            out["keypoint_clean"] = torch.from_numpy(np.ascontiguousarray(res["keypoint_clean"], dtype=np.float32))
            out["score_clean"] = torch.from_numpy(np.ascontiguousarray(res["keypoint_score_clean"], dtype=np.float32))
            out["kept"] = torch.from_numpy(np.ascontiguousarray(res["kept"], dtype=bool))
        return out

    def __repr__(self) -> str:
        return (f"SkeletonDataset({self.where!r}, split={self.split!r}, {len(self)} samples, layout="
                f"{self.layout.name!r}, {self.num_classes} classes, test_mode={self.test_mode})")


def synthetic_annotations(
    num_classes: int = 3,
    per_class: tuple[int, int] = (8, 4),
    *,
    layout: str = "penn13",
    frames: tuple[int, int] = (20, 40),
    img_shape: tuple[int, int] = (480, 640),
    missing: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """A small labelled PYSKL dataset dict for tests and smoke runs (``meta['source'] = 'synthetic'``).

    Class ``c`` moves its own random subset of joints along a class-specific direction at frequency ``c + 1``
    cycles per clip, around one random rest pose, plus pixel noise; so the classes are learnable. ``per_class``
    gives (train, test) samples per class; lengths are uniform in ``frames``; a fraction ``missing`` of the joints
    has score 0 (coordinates 0).
    """
    lay = get_layout(layout)
    rng = np.random.default_rng(seed)
    V = lay.num_joints
    h, w = img_shape
    rest = np.stack([rng.uniform(0.3 * w, 0.7 * w, V), rng.uniform(0.2 * h, 0.8 * h, V)], -1)
    moving = rng.random((num_classes, V)) < 0.5
    direction = rng.normal(size=(num_classes, 2))
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    anns, split = [], {"train": [], "test": []}
    for c in range(num_classes):
        for part, n in zip(("train", "test"), per_class):
            for i in range(n):
                T = int(rng.integers(frames[0], frames[1] + 1))
                t = np.arange(T) / T
                phase = rng.uniform(0, 2 * np.pi)
                amp = 0.08 * w * np.sin(2 * np.pi * (c + 1) * t + phase)  # [T]
                kp = rest[None] + amp[:, None, None] * moving[c][None, :, None] * direction[c]  # [T, V, 2]
                kp = kp + rng.normal(scale=2.0, size=kp.shape)
                score = (rng.random((T, V)) >= missing).astype(np.float32)
                kp = kp * score[..., None]
                fd = f"syn_c{c}_{part}{i:03d}"
                anns.append({"frame_dir": fd, "label": c, "total_frames": T, "img_shape": (h, w),
                             "original_shape": (h, w), "keypoint": kp[None].astype(np.float32),
                             "keypoint_score": score[None]})
                split[part].append(fd)
    return {"split": split, "annotations": anns,
            "meta": {"layout": lay.name, "classes": [f"class{c}" for c in range(num_classes)], "source": "synthetic"}}
