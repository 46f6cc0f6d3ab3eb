"""Video + skeleton samples for the RGB branch (multimodal paper, Sec. 3.1 and 4.2): TSM segment sampling, PyAV
decoding, skeleton-guided cropping (Eq. 1-2), resizing, formatting.

A video sample is a PYSKL pickle entry plus its video: ``filename`` (MMAction2's key; absolute, or relative to
``video_root``) or, without it, ``video_root/<frame_dir><suffix>``. The skeleton (from the annotations or from
``finetec data extract`` on the same video) guides the crop; its frames must be the video's frames.

Pipeline (:func:`video_pipeline`)::

    SampleSegments -> DecodeFrames -> [SkeletonGuidedCrop] -> ResizeFrames -> [FlipFrames] -> FormatRGBInput

:class:`VideoDataset` returns ``imgs`` float32 ``[num_clips, T, 3, H, W]`` (pixel values 0..255, RGB; the model
normalises), ``label``, ``frame_dir``, ``index``.

Choices (see docs/multimodal.md): coordinates are 0-based pixels, so Eq. 1-2's lower clamp 1 is 0 here and the upper
clamps are W and H (exclusive); the box is computed from every observed joint of the whole clip (score > 0 in a valid
frame, all persons), not only the sampled frames, so one clip has one box whatever frames are drawn; a box thinner
than ``min_size`` pixels (one joint seen, or a still person seen edge-on) is widened about its centre to
``min_size`` before clamping; a clip with no observed joint at all keeps the full frame and says so
(``crop_fallback``); frames are resized to ``size x size`` without keeping the aspect ratio, as the paper's 256x256.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .dataset import SkeletonDataset
from .sample import SampleError
from .transforms import TransformError, _Repr, _require, _rng, _tag, register_transform

__all__ = ["activity_box", "SampleSegments", "DecodeFrames", "SkeletonGuidedCrop", "ResizeFrames", "FlipFrames",
           "FormatRGBInput", "video_pipeline", "VideoDataset", "resolve_video_path"]


# ---------------------------------------------------------------------------------------------------- Eq. 1-2
def activity_box(keypoint: np.ndarray, score: np.ndarray | None, img_shape: tuple[int, int], alpha: float = 0.3,
                 mask: np.ndarray | None = None, min_size: float = 32.0) -> tuple[np.ndarray, bool]:
    """The skeleton-guided crop box ``[x1, y1, x2, y2]`` (float pixels, 0-based, x2/y2 exclusive) and whether it fell
    back to the full frame (no observed joint).

    ``keypoint [M, T, V, 2+]`` pixels, ``score [M, T, V]`` (0 = not detected; None: all observed), ``mask [T]``
    valid frames (None: all), ``img_shape (H, W)``.
    """
    kp = np.asarray(keypoint, dtype=np.float64)
    if kp.ndim != 4 or kp.shape[-1] < 2:
        raise ValueError(f"activity_box: keypoint must be [M, T, V, C>=2], got shape {kp.shape}")
    H, W = (int(v) for v in img_shape)
    if H < 1 or W < 1:
        raise ValueError(f"activity_box: img_shape must be positive (H, W), got {img_shape}")
    if not alpha >= 0:
        raise ValueError(f"activity_box: alpha must be >= 0, got {alpha}")
    seen = np.ones(kp.shape[:3], bool) if score is None else np.asarray(score) > 0
    if mask is not None:
        seen = seen & np.asarray(mask, bool)[None, :, None]
    seen = seen & np.isfinite(kp[..., :2]).all(-1)
    if not seen.any():
        return np.array([0.0, 0.0, float(W), float(H)]), True
    X, Y = kp[..., 0][seen], kp[..., 1][seen]
    lo = np.array([X.min(), Y.min()])
    hi = np.array([X.max(), Y.max()])
    short = (hi - lo) < min_size  # widen a degenerate box about its centre
    centre = (lo + hi) / 2
    lo = np.where(short, centre - min_size / 2, lo)
    hi = np.where(short, centre + min_size / 2, hi)
    w, h = hi - lo
    x1 = max(lo[0] - alpha * w, 0.0)  # Eq. 1 (0-based: the paper's 1 is our 0)
    x2 = min(hi[0] + alpha * w, float(W))
    y1 = max(lo[1] - alpha * h, 0.0)  # Eq. 2
    y2 = min(hi[1] + alpha * h, float(H))
    if x2 - x1 < 1 or y2 - y1 < 1:  # every joint outside the frame
        return np.array([0.0, 0.0, float(W), float(H)]), True
    return np.array([x1, y1, x2, y2]), False


# ---------------------------------------------------------------------------------------------------- sampling
@register_transform
class SampleSegments(_Repr):
    """TSM's segment sampling: ``num_segments`` equal segments of the clip, ``frames_per_segment`` consecutive frames
    from each (the paper: 8 x 6); in training a random start in each segment, in test mode the start at
    ``(i + 0.5) / num_clips`` of each segment for clip ``i`` (one clip: the segment's centre). Indices past the end are clamped to the last
    frame (a clip shorter than ``num_segments * frames_per_segment`` repeats frames).

    Required keys: total_frames, rng (training).
    Added keys: frame_inds ``[num_clips * num_segments * frames_per_segment]`` int64, num_clips, clip_len.
    """

    _repr_keys = ("num_segments", "frames_per_segment", "num_clips", "test_mode")

    def __init__(self, num_segments: int = 8, frames_per_segment: int = 1, num_clips: int = 1,
                 test_mode: bool = False) -> None:
        for k, v in (("num_segments", num_segments), ("frames_per_segment", frames_per_segment),
                     ("num_clips", num_clips)):
            if int(v) < 1:
                raise ValueError(f"SampleSegments: {k} must be >= 1, got {v}")
        self.num_segments, self.frames_per_segment = int(num_segments), int(frames_per_segment)
        self.num_clips, self.test_mode = int(num_clips), bool(test_mode)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["total_frames"], who)
        T = int(results["total_frames"])
        if T < 1:
            raise TransformError(f"{_tag(results, who)}: the clip has no frames (total_frames={T})")
        s, l = self.num_segments, self.frames_per_segment
        span = max(T - l + 1, 1)  # possible starts of l consecutive frames
        seg = span / s
        if self.test_mode:
            shift = (np.arange(self.num_clips)[:, None] + 0.5) / self.num_clips * seg  # [nc, 1]
            starts = np.floor(np.arange(s)[None] * seg + shift).astype(np.int64)
        else:
            u = _rng(results, who).random((self.num_clips, s))
            starts = np.floor((np.arange(s)[None] + u) * seg).astype(np.int64)
        inds = starts[..., None] + np.arange(l)  # [nc, s, l]
        results["frame_inds"] = np.minimum(inds, T - 1).reshape(-1)
        results["num_clips"] = self.num_clips
        results["clip_len"] = s * l
        return results


# ---------------------------------------------------------------------------------------------------- decoding
def resolve_video_path(results: Mapping[str, Any], video_root: "str | os.PathLike | None", suffix: str) -> Path:
    """``results['filename']`` (absolute, or relative to ``video_root``), else ``video_root/<frame_dir><suffix>``."""
    name = results.get("filename")
    if name:
        p = Path(os.path.expanduser(str(name)))
        return p if p.is_absolute() or video_root is None else Path(video_root) / p
    if video_root is None:
        raise TransformError(f"{_tag(results, 'DecodeFrames')}: no 'filename' in the annotation and no video_root "
                             "to find <frame_dir><suffix> in")
    return Path(video_root) / f"{results['frame_dir']}{suffix}"


@register_transform
class DecodeFrames(_Repr):
    """Decode the frames ``frame_inds`` of the sample's video with PyAV (one decoder thread: DataLoader workers run
    in parallel).

    The skeleton's ``total_frames`` frames must be the video's first frames: the video may be longer (``finetec data
    extract --max-frames`` keeps a prefix, and so does an extraction that stopped at a decode error) but not shorter,
    and its frames must have the annotation's ``img_shape``. Only frames up to the last sampled one are decoded. A
    missing, unreadable or truncated video, or one shorter than the skeleton, is a :class:`TransformError` naming
    the file.

    Required keys: frame_inds, frame_dir or filename, total_frames.
    Added keys: imgs ``[len(frame_inds), H, W, 3]`` uint8, video_path.
    """

    _repr_keys = ("video_root", "suffix")

    def __init__(self, video_root: "str | os.PathLike | None" = None, suffix: str = ".mp4") -> None:
        self.video_root = None if video_root is None else str(os.path.expanduser(str(video_root)))
        self.suffix = str(suffix)

    @staticmethod
    def _short(results: Mapping[str, Any], path: Path, n: int, total: int, error: str | None = None) -> str:
        return (f"{_tag(results, 'DecodeFrames')}: video {path} has {n} frames but the skeleton has {total}; the "
                "skeleton must come from this video, frame by frame" + (f" ({error})" if error else ""))

    def __call__(self, results: dict) -> dict:
        from ..video.io import VideoError, VideoReader

        who = type(self).__name__
        _require(results, ["frame_inds", "total_frames"], who)
        inds = np.asarray(results["frame_inds"], dtype=np.int64)
        total = int(results["total_frames"])
        if inds.size == 0 or inds.min() < 0 or inds.max() >= total:
            raise TransformError(f"{_tag(results, who)}: frame_inds must be non-empty and within the skeleton's "
                                 f"{total} frames")
        path = resolve_video_path(results, self.video_root, self.suffix)
        frames: list[np.ndarray] = []
        try:
            with VideoReader(path, threads=1) as r:
                if r.info.frames_exact and r.info.num_frames < total:  # the header's count: no need to decode to know
                    raise TransformError(self._short(results, path, r.info.num_frames, total))
                # an exact count: decode only up to the last sampled frame; otherwise all the skeleton's frames, to
                # know the video has them (the video may go on: the skeleton is its prefix)
                stop = int(inds.max()) + 1 if r.info.frames_exact else total
                for i, frame in enumerate(r):
                    frames.append(frame)
                    if i + 1 >= stop:
                        break
                error = r.error
        except VideoError as e:
            raise TransformError(f"{_tag(results, who)}: {e}") from e
        if len(frames) < stop:
            raise TransformError(self._short(results, path, len(frames), total, error))
        imgs = np.stack(frames)[inds]
        shape = results.get("img_shape")
        if shape is not None and tuple(int(v) for v in shape) != imgs.shape[1:3]:
            raise TransformError(f"{_tag(results, who)}: video {path} is {imgs.shape[2]}x{imgs.shape[1]} but the "
                                 f"annotation's img_shape (h, w) is {tuple(shape)}; the joints would not fit it")
        results["imgs"] = imgs
        results["video_path"] = str(path)
        return results


# ---------------------------------------------------------------------------------------------------- cropping
@register_transform
class SkeletonGuidedCrop(_Repr):
    """Crop every sampled frame to the clip's activity box (Eq. 1-2, :func:`activity_box`), one box for the clip.

    Required keys: imgs, keypoint ``[M, T, V, C]`` (pixels of these frames, the whole clip), img_shape (must be the
    frames' size), keypoint_score, mask (optional). Normalised coordinates are refused.
    Modified keys: imgs. Added keys: crop_box ``[x1, y1, x2, y2]`` int pixels, crop_fallback (no joint observed:
    the full frame is kept).
    """

    _repr_keys = ("alpha", "min_size")

    def __init__(self, alpha: float = 0.3, min_size: float = 32.0) -> None:
        if not float(alpha) >= 0 or not float(min_size) >= 0:
            raise ValueError(f"SkeletonGuidedCrop: alpha and min_size must be >= 0, got {alpha}, {min_size}")
        self.alpha, self.min_size = float(alpha), float(min_size)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["imgs", "keypoint"], who)
        imgs = results["imgs"]
        H, W = imgs.shape[1:3]
        kp = np.asarray(results["keypoint"])
        if kp.ndim != 4:
            raise TransformError(f"{_tag(results, who)}: keypoint must be [M, T, V, C], got {kp.shape}")
        shape = results.get("img_shape")
        if shape is None or tuple(int(v) for v in shape) != (H, W):
            raise TransformError(f"{_tag(results, who)}: the skeleton's img_shape {shape} is not the frames' size "
                                 f"{(H, W)}: its coordinates cannot be placed in the frames (pixel coordinates of "
                                 "this video are needed)")
        score = results.get("keypoint_score")
        seen = (np.ones(kp.shape[:3], bool) if score is None else np.asarray(score) > 0) & \
            np.isfinite(kp[..., :2]).all(-1)
        if seen.any() and max(H, W) > 16 and np.abs(kp[..., :2][seen]).max() <= 1.5:
            raise TransformError(f"{_tag(results, who)}: the joints lie within [-1.5, 1.5], i.e. normalised, not "
                                 f"pixels of the {W}x{H} frames; crop before normalising")
        box, fallback = activity_box(kp, results.get("keypoint_score"), (H, W), self.alpha,
                                     results.get("mask"), self.min_size)
        x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
        x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
        results["imgs"] = imgs[:, y1:y2, x1:x2]
        results["crop_box"] = np.array([x1, y1, x2, y2], dtype=np.int64)
        results["crop_fallback"] = bool(fallback)
        return results


# ---------------------------------------------------------------------------------------------------- resize / flip
@register_transform
class ResizeFrames(_Repr):
    """Resize all frames to ``size x size`` (or ``(h, w)``), bilinear with antialiasing, in one call.

    Required keys: imgs ``[n, H, W, 3]`` uint8. Modified keys: imgs (uint8, new size).
    """

    _repr_keys = ("size",)

    def __init__(self, size: "int | Sequence[int]" = 112) -> None:
        hw = (int(size), int(size)) if np.ndim(size) == 0 else tuple(int(v) for v in size)
        if len(hw) != 2 or min(hw) < 1:
            raise ValueError(f"ResizeFrames: size must be a positive int or (h, w), got {size}")
        self.size = hw

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["imgs"], who)
        imgs = np.asarray(results["imgs"])
        if imgs.ndim != 4 or imgs.shape[-1] != 3 or min(imgs.shape[:3]) < 1:
            raise TransformError(f"{_tag(results, who)}: imgs must be non-empty [n, H, W, 3], got {imgs.shape}")
        if imgs.shape[1:3] != self.size:
            x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float()
            x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False,
                                                antialias=True)
            imgs = x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        results["imgs"] = imgs
        return results


@register_transform
class FlipFrames(_Repr):
    """Flip all frames of the clip horizontally with probability ``flip_ratio`` (one draw per sample from
    ``results['rng']``).

    Required keys: imgs, rng. Modified keys: imgs. Added keys: flip (bool).
    """

    _repr_keys = ("flip_ratio",)

    def __init__(self, flip_ratio: float = 0.5) -> None:
        if not 0.0 <= float(flip_ratio) <= 1.0:
            raise ValueError(f"FlipFrames: flip_ratio must be in [0, 1], got {flip_ratio}")
        self.flip_ratio = float(flip_ratio)

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["imgs"], who)
        flip = bool(_rng(results, who).random() < self.flip_ratio)
        if flip:
            results["imgs"] = np.ascontiguousarray(np.asarray(results["imgs"])[:, :, ::-1])
        results["flip"] = flip
        return results


@register_transform
class FormatRGBInput(_Repr):
    """``imgs [num_clips * T, H, W, 3]`` uint8 -> float32 ``[num_clips, T, 3, H, W]`` (values 0..255).

    Required keys: imgs, num_clips. Modified keys: imgs.
    """

    def __call__(self, results: dict) -> dict:
        who = type(self).__name__
        _require(results, ["imgs"], who)
        imgs = np.asarray(results["imgs"])
        nc = int(results.get("num_clips", 1))
        if imgs.ndim != 4 or imgs.shape[-1] != 3 or len(imgs) % nc:
            raise TransformError(f"{_tag(results, who)}: imgs {imgs.shape} cannot be split into {nc} clips of "
                                 "[T, H, W, 3]")
        x = imgs.reshape(nc, len(imgs) // nc, *imgs.shape[1:]).transpose(0, 1, 4, 2, 3)
        results["imgs"] = np.ascontiguousarray(x, dtype=np.float32)
        return results


def video_pipeline(*, num_segments: int = 8, frames_per_segment: int = 1, num_clips: int = 1, test_mode: bool,
                   video_root: "str | os.PathLike | None" = None, suffix: str = ".mp4", size: int = 112,
                   crop: bool = True, alpha: float = 0.3, min_box: float = 32.0,
                   flip: bool = True) -> list[dict[str, Any]]:
    """The RGB branch's transform configs; ``crop=False`` is Table 4's baseline (the whole frame)."""
    cfgs: list[dict[str, Any]] = [
        dict(type="SampleSegments", num_segments=num_segments, frames_per_segment=frames_per_segment,
             num_clips=num_clips, test_mode=test_mode),
        dict(type="DecodeFrames", video_root=video_root, suffix=suffix),
    ]
    if crop:
        cfgs.append(dict(type="SkeletonGuidedCrop", alpha=alpha, min_size=min_box))
    cfgs.append(dict(type="ResizeFrames", size=size))
    if flip and not test_mode:
        cfgs.append(dict(type="FlipFrames", flip_ratio=0.5))
    cfgs.append(dict(type="FormatRGBInput"))
    return cfgs


class VideoDataset(SkeletonDataset):
    """A :class:`SkeletonDataset` whose samples are decoded video clips (``imgs``) guided by their skeletons.

    Same arguments and randomness as :class:`SkeletonDataset`; the pipeline must end with :class:`FormatRGBInput`.
    Samples without any observed joint are kept in training too (the crop falls back to the full frame).
    ``dataset[i]`` returns ``imgs`` float32 tensor ``[num_clips, T, 3, H, W]``, ``label``, ``frame_dir``, ``index``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("skip_invisible", False)
        super().__init__(*args, **kwargs)

    def results(self, index: int, epoch: int | None = None) -> dict[str, Any]:
        res = super().results(index, epoch)
        filename = self.samples[index].meta.get("filename")
        if filename:
            res["filename"] = str(filename)
        return res

    def __getitem__(self, item: "int | tuple[int, int]") -> dict[str, Any]:
        index, epoch = self._index(item)
        res = self.pipeline(self.results(index, epoch))
        imgs = res.get("imgs")
        if imgs is None or np.ndim(imgs) != 5 or np.shape(imgs)[2] != 3:
            raise SampleError(f"{self.where}: sample {self.samples[index].id!r} (index {index}): pipeline must end "
                              f"with FormatRGBInput (imgs [nc, T, 3, H, W]); got {getattr(imgs, 'shape', None)}")
        return {
            "imgs": torch.from_numpy(np.ascontiguousarray(imgs, dtype=np.float32)),
            "label": torch.tensor(int(res["label"]), dtype=torch.long),
            "frame_dir": str(res["frame_dir"]),
            "index": torch.tensor(index, dtype=torch.long),
        }
