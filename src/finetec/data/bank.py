"""Skeleton-bank arrays for FineTec's context-aware sequence completion, built from a PYSKL dataset pickle.

The paper builds its bank from Human3.6M 2D skeletons (h36m17) and completes coco17 sequences, so the bank is
converted to the recognizer's layout. This module is the data side: it returns numpy arrays that
``finetec.models.finetec.bank.SkeletonBank.load`` takes (it imports nothing from ``finetec.models``).

Choices: each clip is made with the data pipeline's own transforms, ``PreNormalize2D(by=norm)`` (the
dataset config's ``data.norm``, default 'image') then
``UniformSampleFrames(clip_len, test_mode=True)`` (deterministic), so bank entries are normalised and sampled exactly
like recognizer input; only the first person is used; the layout conversion happens after normalisation (it is
affine, so the two orders agree for observed joints). Sequences are visited in the order of
``np.random.default_rng(seed).permutation`` and the first ``size`` usable ones are kept (so the bank is full whenever
the split has enough usable sequences); a sequence with no visible joint after sampling and conversion is skipped.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from finetec.layouts import Layout, LayoutError, convert_keypoints, get_layout

from .io import AnnotationError, _normalise, _select, infer_layout, load_annotations, validate_annotations
from .sample import SampleError, SkeletonSample
from .transforms import PreNormalize2D, TransformError, UniformSampleFrames

__all__ = ["build_skeleton_bank", "BankError"]


class BankError(ValueError):
    """The skeleton bank cannot be built from the given source; the message says why."""


def _load(source: "str | os.PathLike | Mapping[str, Any]") -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        where = "annotations dict"
        data = _normalise(source, where)
        validate_annotations(data, where)
        return data, where
    if isinstance(source, (str, os.PathLike)):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"skeleton bank source not found: {source}")
        return load_annotations(source), str(source)
    raise TypeError(f"build_skeleton_bank: source must be a pickle path or an annotation dict, got "
                    f"{type(source).__name__}")


def _layout(spec: "str | Layout", what: str, where: str) -> Layout:
    try:
        return get_layout(spec)
    except LayoutError as e:
        raise BankError(f"{where}: {what}: {e}") from e


def build_skeleton_bank(
    source: "str | os.PathLike | Mapping[str, Any]",
    *,
    layout: "str | Layout",
    clip_len: int,
    size: int,
    split: str | None = None,
    seed: int = 0,
    source_layout: "str | Layout | None" = None,
    norm: str = "image",
) -> dict[str, Any]:
    """Sample up to ``size`` clips of ``clip_len`` frames from a 2D skeleton dataset, in ``layout``.

    Args:
        source: a PYSKL pickle path (read with the restricted unpickler) or a loaded ``{'split', 'annotations',
            'meta'}`` dict (or a bare list of annotations).
        layout: the bank's (the recognizer's) joint layout.
        clip_len: frames per clip (the model's ``clip_len``).
        size: the number of clips wanted; fewer when the split has fewer usable sequences.
        split: the split to draw from; ``None``: ``'train'`` when the file has it, every annotation when the file
            has no split at all (an error otherwise).
        seed: seed of ``np.random.default_rng`` that orders the draw (without replacement).
        source_layout: the data's layout; default ``meta['layout']`` (or the joint-count guess).

    Returns ``{'sequences': float32 [K, clip_len, V, 2], 'weights': float32 [K, clip_len, V], 'ids': [str]}``:
    coordinates normalised to [-1, 1] by image size, 0 where a joint is missing or a frame invalid; weight 1 for
    an observed joint in a valid frame, else 0.
    """
    if int(clip_len) < 1 or int(size) < 1:
        raise ValueError(f"build_skeleton_bank: clip_len and size must be >= 1, got {clip_len}, {size}")
    clip_len, size = int(clip_len), int(size)
    data, where = _load(source)
    if split is None:
        if "train" in data["split"]:
            split = "train"
        elif data["split"]:
            raise BankError(f"{where}: no 'train' split (splits: {sorted(data['split'])}); pass split=")
    try:
        anns = _select(data, split, where)
    except AnnotationError as e:
        raise BankError(str(e)) from e
    if not anns:
        raise BankError(f"{where}: split {split!r} has no annotations; cannot build a skeleton bank")
    joints = {a["keypoint"].shape[2] for a in anns}
    if len(joints) > 1:
        raise BankError(f"{where}: annotations mix joint counts {sorted(joints)}")
    src_arg = source_layout.name if isinstance(source_layout, Layout) else source_layout
    try:
        src_name = infer_layout(joints.pop(), src_arg, data["meta"], where)
    except AnnotationError as e:
        raise BankError(str(e)) from e
    src = _layout(source_layout if isinstance(source_layout, Layout) else src_name, "source layout", where)
    dst = _layout(layout, "bank layout", where)

    if norm not in ("image", "box"):
        raise BankError(f"skeleton bank: norm must be 'image' or 'box' (2D data), got {norm!r}")
    pipeline = [PreNormalize2D(by=norm), UniformSampleFrames(clip_len=clip_len, num_clips=1, test_mode=True)]
    order = np.random.default_rng(seed).permutation(len(anns))
    seqs, weights, ids = [], [], []
    for i in order:  # data side, once per bank: a loop over samples is fine here
        if len(ids) == size:
            break
        ann = anns[int(i)]
        try:
            s = SkeletonSample.from_pyskl(dict(ann), layout=src.name, where=where)
        except SampleError as e:
            raise BankError(str(e)) from e
        if s.keypoint.shape[-1] != 2:
            raise BankError(f"{where}: sample {s.id!r} has {s.keypoint.shape[-1]}-channel keypoints (3D data?); the "
                            "skeleton bank needs 2D keypoints (for PYSKL 2D data packed as (x, y, score) set "
                            "coord_dim=2 in the annotations)")
        res = {"keypoint": s.keypoint.copy(), "keypoint_score": s.scores.copy(), "mask": s.mask.copy(),
               "img_shape": s.img_shape, "frame_dir": s.id, "total_frames": s.num_frames, "layout": src}
        try:
            for t in pipeline:
                res = t(res)
        except TransformError as e:
            raise BankError(f"{where}: {e}") from e
        kp = res["keypoint"][0]  # first person, [clip_len, V, 2]
        sc = res["keypoint_score"][0] * res["mask"][:, None]
        if src.name != dst.name:
            kp, sc = convert_keypoints(kp, sc, src, dst)
        w = (sc > 0).astype(np.float32)
        if not w.any():
            continue
        seqs.append((kp * w[..., None]).astype(np.float32))
        weights.append(w)
        ids.append(s.id)
    if not ids:
        raise BankError(f"{where}: no usable sequence for the skeleton bank: all {len(anns)} sequences of split "
                        f"{split!r} have no visible joint (after conversion {src.name} -> {dst.name})")
    return {"sequences": np.stack(seqs), "weights": np.stack(weights), "ids": ids}
