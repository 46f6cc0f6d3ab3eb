"""Videos: read frames with PyAV, write mp4 (PyAV, libx264, yuv420p) or GIF (PIL) atomically, put panels side by
side, and render ground truth / corrupted / completed sequences of one sample next to each other.

The comparison runs the evaluation path of ``task: completion``: the sample is sampled with the test-mode
``UniformSampleFrames`` (to the completer's ``clip_len``; a non-learned completer keeps every frame), corrupted with
the test-mode ``Corrupt`` transform (seeded from the sample id, the level and ``seed``, so it shows exactly the frames
an evaluation drops), turned into completer input by
:func:`~finetec.models.finetec.model.observed_sequences` and completed.

Choices:

* Odd frame sizes are padded by one pixel (edge pixels repeated) on the right / bottom for yuv420p.
* GIF frame durations are ``round(1000 / fps)`` ms; PIL merges identical consecutive frames into one (durations add).
* The corrupted panel shows the surviving frames at their true times (the ``kept`` mask of ``Corrupt``), whatever the
  layout (compact / inplace) the completer receives; dropped frames read "missing".
* Completer input is normalised like the training pipeline (``PreNormalize2D`` of the whole raw sample, ``by`` =
  the checkpoint config's ``data.norm``; ``'image'`` when the sample has an image size, else ``'box'``), and the
  output is mapped back to pixels. Corruption runs on pixel coordinates (noise sigmas converted with the image
  size, as ``Corrupt`` does), which draws the same random numbers as on normalised ones.
* The completed panel draws every joint of the valid frames as present, the ground truth as a light-grey ghost
  underneath, and labels restored frames with their mean joint error in pixels (joints visible in the ground truth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from finetec.utils.io import atomic_write

__all__ = [
    "VizError", "write_video", "read_video", "video_info", "side_by_side", "Completer", "load_completer",
    "comparison_sequences", "corrupted_at_true_times", "render_comparison",
]

VIDEO_SUFFIXES = (".mp4", ".gif")


class VizError(ValueError):
    """Bad input to a visualisation (a file, a sample, a completer); the message says what and where."""


# ---------------------------------------------------------------------------------------------------- writing
def _rgb(frame: Any, t: int) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise VizError(f"write_video: frame {t} must be uint8 [H, W, 3] RGB, got {a.dtype} {tuple(a.shape)}")
    return a


def _even(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(a)


def write_video(frames: Iterable[Any], path: "str | os.PathLike", *, fps: float = 30.0, crf: int = 20) -> Path:
    """Write RGB frames (uint8 ``[H, W, 3]`` arrays or PIL images, all one size) to ``path``: ``.mp4`` (H.264 via
    PyAV's libx264, yuv420p, constant rate factor ``crf``) or ``.gif`` (PIL, looping). The file appears atomically;
    returns its path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VizError(f"write_video: {path}: unsupported format {suffix!r}; use one of {list(VIDEO_SUFFIXES)}")
    if not (isinstance(fps, (int, float)) and 0 < fps <= 1000):
        raise VizError(f"write_video: fps must be in (0, 1000], got {fps!r}")
    it = iter(frames)
    try:
        first = _rgb(next(it), 0)
    except StopIteration:
        raise VizError(f"write_video: {path}: no frames to write") from None
    shape = first.shape

    def frames_checked() -> Iterator[np.ndarray]:
        yield first
        for t, f in enumerate(it, start=1):
            a = _rgb(f, t)
            if a.shape != shape:
                raise VizError(f"write_video: frame {t} has shape {a.shape}, frame 0 has {shape}; all frames must "
                               "have one size")
            yield a

    if suffix == ".gif":
        _write_gif(frames_checked(), path, fps)
    else:
        _write_mp4(frames_checked(), path, fps, crf)
    return path


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: float, crf: int) -> None:
    import av

    with atomic_write(path, "wb") as f:
        with av.open(f, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(int(crf))}
            opened = False
            for a in frames:
                a = _even(a)
                if not opened:
                    stream.height, stream.width = a.shape[:2]
                    opened = True
                for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _write_gif(frames: Iterator[np.ndarray], path: Path, fps: float) -> None:
    from PIL import Image

    imgs = [Image.fromarray(a) for a in frames]
    with atomic_write(path, "wb") as f:
        imgs[0].save(f, format="GIF", save_all=True, append_images=imgs[1:], duration=max(1, round(1000 / fps)),
                     loop=0, optimize=False)


# ---------------------------------------------------------------------------------------------------- reading
def video_info(path: "str | os.PathLike") -> dict[str, Any]:
    """``{'frames', 'fps', 'height', 'width'}`` of a video's first video stream (``frames`` counts decoded frames
    when the container does not store the number)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {path}")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VizError(f"{path}: no video stream")
            s = c.streams.video[0]
            n = int(s.frames or 0)
            if n == 0:
                n = sum(1 for _ in c.decode(video=0))
            fps = float(s.average_rate) if s.average_rate else 0.0
            return {"frames": n, "fps": fps, "height": int(s.height), "width": int(s.width)}
    except av.error.FFmpegError as e:
        raise VizError(f"{path}: cannot read video: {e}") from e


def read_video(path: "str | os.PathLike", *, start: int = 0, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield RGB frames ``[H, W, 3]`` uint8 of a video from frame ``start``, at most ``max_frames``
    (:class:`finetec.video.io.VideoReader`, the project's one reader; a decode error is raised, not kept)."""
    from ..video.io import VideoReader

    if start < 0 or (max_frames is not None and max_frames < 0):
        raise VizError(f"read_video: start and max_frames must be >= 0, got {start}, {max_frames}")
    if max_frames == 0:
        return
    stop = None if max_frames is None else start + max_frames
    with VideoReader(path, on_error="raise", max_frames=stop) as reader:
        for i, frame in enumerate(reader):
            if i >= start:
                yield frame


# ---------------------------------------------------------------------------------------------------- panels
def side_by_side(panels: Sequence[Iterable[np.ndarray]], *, titles: Sequence[str] | None = None, gap: int = 6,
                 background: Sequence[int] = (255, 255, 255)) -> Iterator[np.ndarray]:
    """Yield frames made of one frame of each panel side by side (``gap`` px apart, tops aligned), with a header row
    of ``titles`` when given. Panels must yield the same number of frames."""
    from .skeleton import default_sizes, put_text

    if not panels:
        raise VizError("side_by_side: no panels")
    if titles is not None and len(titles) != len(panels):
        raise VizError(f"side_by_side: {len(panels)} panels but {len(titles)} titles")
    its = [iter(p) for p in panels]
    header = None
    t = 0
    while True:
        got = [next(it, None) for it in its]
        if all(g is None for g in got):
            return
        if any(g is None for g in got):
            raise VizError(f"side_by_side: panels {[i for i, g in enumerate(got) if g is None]} end after {t} "
                           f"frames, the others go on; panels must have the same length")
        arrs = [_rgb(g, t) for g in got]
        H = max(a.shape[0] for a in arrs)
        W = sum(a.shape[1] for a in arrs) + gap * (len(arrs) - 1)
        if header is None and titles is not None:
            fs = default_sizes(H, min(a.shape[1] for a in arrs))[2]
            header = np.empty((int(fs * 1.8), W, 3), dtype=np.uint8)
            header[...] = np.asarray(background, np.uint8)
            x = 0
            for a, title in zip(arrs, titles):
                put_text(header, title, (x + a.shape[1] // 2, header.shape[0] // 2), size=fs, anchor="mm")
                x += a.shape[1] + gap
        out = np.empty((H, W, 3), dtype=np.uint8)
        out[...] = np.asarray(background, np.uint8)
        x = 0
        for a in arrs:
            out[:a.shape[0], x:x + a.shape[1]] = a
            x += a.shape[1] + gap
        yield out if header is None else np.concatenate([header, out], 0)
        t += 1


# ---------------------------------------------------------------------------------------------------- completion
@dataclass
class Completer:
    """A ready completer: ``fn(x [B, T, V, 2], mask [B, T], mode) -> [B, T, V, 2]`` and what it expects."""

    fn: Callable[..., Any]
    name: str
    clip_len: int | None = None  # fixed T of a learned completer; None = any length
    layout: str | None = None  # the layout a checkpoint was trained on
    norm: str | None = None  # the checkpoint config's data.norm
    mode: str | None = None  # the corruption mode a checkpoint was trained with


def load_completer(name: str | None = None, ckpt: "str | os.PathLike | None" = None) -> Completer:
    """A registered non-learned completer by ``name`` (e.g. ``'interpolation'``), or a trained completion
    checkpoint ``ckpt`` (``model.pth`` of a ``task: completion`` run, rebuilt from its config)."""
    import torch.nn as nn

    from finetec.models.completion import get_completer

    if (name is None) == (ckpt is None):
        raise VizError("load_completer: give exactly one of a completer name or a checkpoint")
    if ckpt is None:
        try:
            obj = get_completer(str(name))
        except KeyError as e:
            raise VizError(str(e.args[0])) from None
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            raise VizError(f"completer {name!r} is learned; give its trained weights (a task: completion "
                           "checkpoint) instead of the name")
        return Completer(obj, str(name))
    from finetec.engine.checkpoint import load_weights
    from finetec.engine.lit_completion import build_completer
    from finetec.layouts import get_layout

    state, meta, config = load_weights(ckpt)
    if meta.get("task") != "completion":
        raise VizError(f"{ckpt}: not a completion checkpoint (meta task={meta.get('task')!r}); use the model.pth of "
                       "a run with task: completion")
    model_cfg = dict(config.get("model") or {})
    layout = str(meta["layout"])
    clip_len = int(meta["clip_len"])
    module = build_completer(model_cfg, clip_len=clip_len, num_joints=get_layout(layout).num_joints)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise VizError(f"{ckpt}: weights do not fit completer {model_cfg.get('name')!r}: {e}") from e
    module.eval()
    norm = (config.get("data") or {}).get("norm")
    return Completer(module, f"{model_cfg.get('name')} ({Path(ckpt).parent.name or Path(ckpt).name})", clip_len,
                     layout, norm, meta.get("mode"))


def comparison_sequences(sample: Any, level: str, completer: "Completer | str", *, seed: int = 0,
                         clip_len: int | None = None) -> dict[str, Any]:
    """Ground truth, corrupted and completed versions of one :class:`~finetec.data.sample.SkeletonSample` (2D, pixel
    coordinates) at corruption ``level`` (see the module docstring). ``clip_len``: sample this many frames first (a
    learned completer needs its own; default: the completer's, else every frame).

    Returns arrays on the clip's time axis (``L`` frames): ``gt``, ``corrupted``, ``completed`` ``[M, L, V, 2]``
    pixels; ``gt_score``, ``corrupted_score`` ``[M, L, V]``; ``valid`` (frames valid before corruption), ``kept``
    (surviving frames, at their true times), ``restored`` (valid and not kept) ``[L]`` bool; ``frame_inds [L]`` (the
    source frame of each clip frame); ``error [L]`` (mean pixel error of the completion over joints visible in the
    ground truth, NaN where there is none); ``level`` (spec key), ``mode``, ``name``.
    """
    import torch

    from finetec.corruption import get_spec
    from finetec.corruption.transforms import Corrupt
    from finetec.data.transforms import PreNormalize2D, UniformSampleFrames
    from finetec.models.finetec.model import observed_sequences

    if isinstance(completer, str):
        completer = load_completer(completer)
    kp_raw = np.asarray(sample.keypoint, dtype=np.float32)
    if kp_raw.shape[-1] != 2:
        raise VizError(f"sample {sample.id!r}: comparison draws 2D skeletons; keypoint has C={kp_raw.shape[-1]}")
    if completer.layout is not None and completer.layout != sample.layout:
        raise VizError(f"completer {completer.name!r} was trained on layout {completer.layout!r} but sample "
                       f"{sample.id!r} is {sample.layout!r}")
    try:
        spec = get_spec(level)
    except ValueError as e:
        raise VizError(f"level {level!r}: {e}") from None
    if spec.is_clean:
        raise VizError(f"level {level!r} drops nothing; compare needs a corrupted level (e.g. severe)")
    T = sample.num_frames
    base = {"keypoint": kp_raw.copy(), "keypoint_score": sample.scores.copy(), "mask": sample.mask.copy(),
            "frame_dir": sample.id, "img_shape": sample.img_shape, "total_frames": T, "label": int(sample.label)}
    norm = completer.norm or ("image" if sample.img_shape is not None else "box")
    normed = PreNormalize2D(by=norm)({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in base.items()})
    center, scale = normed["norm_center"].astype(np.float32), normed["norm_scale"].astype(np.float32)
    if clip_len is not None and completer.clip_len is not None and int(clip_len) != completer.clip_len:
        raise VizError(f"completer {completer.name!r} works on clips of {completer.clip_len} frames, not {clip_len}")
    if clip_len is not None and int(clip_len) < 1:
        raise VizError(f"clip_len must be >= 1, got {clip_len}")
    L = int(clip_len or completer.clip_len or T)
    res = UniformSampleFrames(L, 1, test_mode=True)(base)
    frame_inds, valid = res["frame_inds"].copy(), res["mask"].copy()
    res = Corrupt(spec, test_mode=True, seed=seed, keep_clean=True)(res)
    kp_c, sc_c, mk_c, kept = res["keypoint"], res["keypoint_score"], res["mask"], res["kept"]
    present = (sc_c > 0) & mk_c[None, :, None]
    x = np.where(present[..., None], (kp_c - center) / scale, 0.0).astype(np.float32)
    x = np.concatenate([x, present[..., None].astype(np.float32)], -1)  # [M, L, V, 3]: x, y, score
    with torch.no_grad():
        S, observed, _ = observed_sequences(torch.from_numpy(x)[None], torch.from_numpy(mk_c)[None], spec.mode)
        out = completer.fn(S, observed, spec.mode)
    completed = out.detach().float().cpu().numpy() * scale + center  # [M, L, V, 2] pixels

    surv = np.flatnonzero(mk_c)
    pos = np.flatnonzero(kept)
    if len(surv) != len(pos):
        raise RuntimeError(f"sample {sample.id!r}: {len(surv)} surviving frames but {len(pos)} kept positions")
    corrupted = np.zeros_like(kp_c)
    corrupted_score = np.zeros_like(sc_c)
    corrupted[:, pos], corrupted_score[:, pos] = kp_c[:, surv], sc_c[:, surv]
    gt, gt_score = res["keypoint_clean"], res["keypoint_score_clean"]
    vis = (gt_score > 0) & valid[None, :, None]
    dist = np.linalg.norm(completed - gt, axis=-1)
    with np.errstate(invalid="ignore"):
        error = (dist * vis).sum((0, 2)) / vis.sum((0, 2))
    return {"gt": gt, "gt_score": gt_score, "corrupted": corrupted, "corrupted_score": corrupted_score,
            "completed": completed, "valid": valid, "kept": kept, "restored": valid & ~kept,
            "frame_inds": frame_inds, "error": error, "level": spec.key, "mode": spec.mode, "name": completer.name}


def corrupted_at_true_times(sample: Any, level: str, *, seed: int = 0) -> tuple[Any, np.ndarray]:
    """``(corrupted sample, kept [T])``: :func:`~finetec.corruption.corrupt_sample` of the whole raw sequence with
    every surviving frame moved back to its original time (whatever the level's mode), ``mask = kept``; dropped
    frames have zero coordinates and scores."""
    from finetec.corruption import corrupt_sample, get_spec
    from finetec.corruption.presets import corrupt_seed, frame_sources

    try:
        spec = get_spec(level)
    except ValueError as e:
        raise VizError(f"level {level!r}: {e}") from None
    if not sample.id:
        raise VizError("the sample has no id (frame_dir); its corruption is seeded from it")
    cor = corrupt_sample(sample, spec, seed=seed)
    src = frame_sources(sample.scores, sample.mask, spec, np.random.default_rng(corrupt_seed(sample.id, spec, seed)),
                        channels=sample.keypoint.shape[-1])
    ok = cor.mask & (src >= 0)
    kp = np.zeros_like(cor.keypoint)
    sc = np.zeros_like(cor.scores)
    kept = np.zeros(sample.num_frames, dtype=bool)
    kp[:, src[ok]], sc[:, src[ok]], kept[src[ok]] = cor.keypoint[:, ok], cor.scores[:, ok], True
    return cor.copy(keypoint=kp, score=sc, mask=kept), kept


def render_comparison(sample: Any, level: str, completer: "Completer | str", *, seed: int = 0, scale: float = 1.0,
                      clip_len: int | None = None, layout: Any = None
                      ) -> tuple[Iterator[np.ndarray], Mapping[str, Any]]:
    """``(frames, sequences)``: the side-by-side ground truth / corrupted / completed frames of
    :func:`comparison_sequences` on white canvases of the sample's image size (or a fitted canvas without one)."""
    from .skeleton import fit_to_canvas, render_sequence

    seq = comparison_sequences(sample, level, completer, seed=seed, clip_len=clip_len)
    layout = layout or sample.layout
    gt, cor, com = seq["gt"], seq["corrupted"], seq["completed"]
    if sample.img_shape is not None:
        size = tuple(sample.img_shape)
    else:  # one mapping for all three panels, fitted to the ground truth
        s, off, size = fit_to_canvas(gt, seq["gt_score"])
        def to_px(a: np.ndarray) -> np.ndarray:  # (0, 0) stays the "no coordinates" marker
            return np.where((a != 0).any(-1, keepdims=True), a * s + off, 0.0)

        gt, cor, com = to_px(gt), to_px(cor), com * s + off
    L = len(seq["kept"])
    nk = int(seq["kept"].sum())
    nums = seq["frame_inds"]
    info = [("restored" if r else "observed") + (f", err {e:.0f}px" if np.isfinite(e) else "") if v else ""
            for v, r, e in zip(seq["valid"], seq["restored"], seq["error"])]
    panels = [
        render_sequence(gt, layout, scores=seq["gt_score"], mask=seq["valid"], size=size, scale=scale,
                        frame_numbers=nums),
        render_sequence(cor, layout, scores=seq["corrupted_score"], mask=seq["kept"], size=size, scale=scale,
                        frame_numbers=nums),
        render_sequence(com, layout, scores=np.broadcast_to(seq["valid"][None, :, None], com.shape[:3]).astype(float),
                        mask=seq["valid"], size=size, scale=scale, frame_numbers=nums, frame_info=info, ghost=gt,
                        ghost_scores=seq["gt_score"]),
    ]
    titles = ["ground truth", f"corrupted: {seq['level']}, {seq['mode']} ({nk}/{L} frames kept)",
              f"completed: {seq['name']}"]
    return side_by_side(panels, titles=titles), seq
