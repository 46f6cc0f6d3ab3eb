"""Reading videos with PyAV: RGB uint8 frames, fps, size and frame count, with errors that name the file.

:class:`VideoReader` streams frames (a 230-frame 1768x994 video is 1.2 GB decoded, so extraction never holds a
whole video); :func:`read_video` reads a short clip into one array. Neither imports torch.

Errors: a missing file, a file PyAV cannot open or that has no video stream, and a video of which not one frame
decodes raise :class:`VideoError`. A decode error after some frames keeps the frames read: the reader stops there
and records where in :attr:`VideoReader.error` (``on_error='keep'``, the default) or raises
:class:`VideoDecodeError` carrying ``frames_read`` (``on_error='raise'``). A stream that ends quietly before the
frame count in its header (a truncated file) is reported the same way.

Choices: frames are returned upright: a display rotation in the video's metadata (a portrait phone clip stores
landscape frames and a rotation of -90) is applied, as players and FFmpeg's command line do (``autorotate=False``
gives the frames as stored; a rotation that is not a multiple of 90 degrees is an error naming the file).
``width``/``height``/``img_shape`` are those of the returned frames. ``num_frames`` is the container's frame
count, or ``round(duration * fps)`` where the container has none (``frames_exact`` says which); a stream that
ends more than 10% short of such an estimate is reported as truncated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from finetec.data.io import DataFileError

__all__ = ["VideoError", "VideoDecodeError", "VideoInfo", "VideoReader", "Video", "probe_video", "read_video",
           "VIDEO_SUFFIXES"]

#: file suffixes taken as videos when a folder is given
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoError(DataFileError):
    """A video cannot be opened or decoded; the message names the file."""


class VideoDecodeError(VideoError):
    """Decoding stopped part-way; ``frames_read`` frames were decoded before it stopped."""

    def __init__(self, message: str, frames_read: int) -> None:
        super().__init__(message)
        self.frames_read = frames_read


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the first video stream."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    frames_exact: bool
    codec: str
    rotation: int = 0  # degrees counter-clockwise applied to the stored frames to show them upright (0 / 90 / 180 / -90)

    @property
    def img_shape(self) -> tuple[int, int]:
        """``(h, w)``, PYSKL's ``img_shape``."""
        return (self.height, self.width)


def _av() -> Any:
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a declared dependency of the video extra
        raise VideoError("reading videos needs PyAV: pip install 'finetec[video]' (or av>=14)") from e
    return av


def _ffmpeg_errors(av: Any) -> tuple[type[BaseException], ...]:
    return (av.error.FFmpegError, OSError, ValueError)


class VideoReader:
    """Stream the frames of a video as ``[H, W, 3]`` RGB uint8 arrays.

    ``with VideoReader(path) as r: for frame in r: ...``; afterwards ``r.frames_read`` counts the frames and
    ``r.error`` is ``None`` or says where and why decoding stopped early. ``threads``: decoder threads (0 lets
    FFmpeg choose). ``max_frames`` stops after that many frames (not an error). ``autorotate`` applies the
    metadata's display rotation (read from the first frame, decoded when the reader opens).
    """

    def __init__(self, path: "str | os.PathLike", *, on_error: str = "keep", threads: int = 0,
                 max_frames: int | None = None, autorotate: bool = True) -> None:
        if on_error not in ("keep", "raise"):
            raise ValueError(f"on_error must be 'keep' or 'raise', got {on_error!r}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        self.path = str(path)
        self.on_error = on_error
        self.max_frames = max_frames
        self.frames_read = 0
        self.error: str | None = None
        p = Path(path)
        if not p.exists():
            raise VideoError(f"video {self.path}: no such file")
        if not p.is_file():
            raise VideoError(f"video {self.path}: not a file")
        av = self._av = _av()
        try:
            self._container = av.open(self.path, mode="r")
        except _ffmpeg_errors(av) as e:
            raise VideoError(f"video {self.path}: cannot open ({type(e).__name__}: {e}); not a video, or "
                             "truncated/corrupt") from e
        try:
            if not self._container.streams.video:
                raise VideoError(f"video {self.path}: the file has no video stream")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            if threads:
                self._stream.thread_count = int(threads)
            self._decoder = self._container.decode(self._stream)
            self._first: Any = None  # the first frame, decoded to read the rotation; or the error decoding it
            try:
                self._first = next(self._decoder)
            except StopIteration:
                self._first = None
            except _ffmpeg_errors(av) as e:
                self._first = e
            self.info = self._make_info(self._rotation(self._first) if autorotate else 0)
        except BaseException:
            self._container.close()
            raise
        self._started = False

    def _rotation(self, frame: Any) -> int:
        """The display rotation of ``frame`` (degrees counter-clockwise), a multiple of 90; 0 without one."""
        if frame is None or isinstance(frame, BaseException):
            return 0
        angle = float(getattr(frame, "rotation", 0) or 0)
        k = round(angle / 90)
        if abs(angle - 90 * k) > 1.0:
            raise VideoError(f"video {self.path}: display rotation of {angle:g} degrees is not a multiple of 90; "
                             "re-encode the video upright, or read it with autorotate=False")
        r = (90 * k) % 360
        return r - 360 if r > 180 else r

    def _make_info(self, rotation: int = 0) -> VideoInfo:
        s = self._stream
        ctx = s.codec_context
        if ctx is None:
            raise VideoError(f"video {self.path}: its video stream cannot be decoded (no codec; truncated/corrupt "
                             "or an unsupported codec)")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0:
            raise VideoError(f"video {self.path}: video stream has no frame size (width {width}, height {height})")
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        n = int(s.frames or 0)
        exact = n > 0
        if not exact:
            dur = None
            if s.duration is not None and s.time_base is not None:
                dur = float(s.duration * s.time_base)
            elif self._container.duration is not None:
                dur = self._container.duration / 1_000_000
            n = int(round(dur * fps)) if dur and fps else 0
        if rotation in (90, -90):
            width, height = height, width
        return VideoInfo(self.path, width, height, fps, n, exact, str(ctx.name), rotation)

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError(f"video {self.path}: a VideoReader can be iterated once")
        self._started = True
        av = self._av
        k = self.info.rotation // 90
        first, self._first = self._first, None
        while True:
            if self.max_frames is not None and self.frames_read >= self.max_frames:
                return
            try:
                if isinstance(first, BaseException):
                    raise first
                frame = first if self.frames_read == 0 else next(self._decoder)
                if frame is None:
                    break
                rgb = frame.to_ndarray(format="rgb24")
            except StopIteration:
                break
            except _ffmpeg_errors(av) as e:
                self._stopped(f"decode error at frame {self.frames_read} ({type(e).__name__}: {e})")
                return
            self.frames_read += 1
            yield np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb
        n = self.info.num_frames
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            return
        if self.info.frames_exact and self.frames_read < n:
            self._stopped(f"stream ended at frame {self.frames_read} of the {n} in its header (truncated file?)")
        elif not self.info.frames_exact and self.frames_read < 0.9 * n - 1:
            self._stopped(f"stream ended at frame {self.frames_read} of about {n} (from its duration; truncated "
                          "file?)")
        elif self.frames_read == 0:
            self._stopped("no frame could be decoded")

    def _stopped(self, why: str) -> None:
        if self.frames_read == 0:
            raise VideoError(f"video {self.path}: {why}; no frame decoded")
        msg = f"video {self.path}: {why}; kept the {self.frames_read} frames read"
        if self.on_error == "raise":
            raise VideoDecodeError(msg, self.frames_read)
        self.error = msg

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def probe_video(path: "str | os.PathLike") -> VideoInfo:
    """Size, fps and frame count of a video without decoding it."""
    with VideoReader(path) as r:
        return r.info


@dataclass
class Video:
    """A decoded clip: ``frames [T, H, W, 3]`` RGB uint8; ``error`` is None when every frame decoded."""

    frames: np.ndarray
    info: VideoInfo
    error: str | None = None

    @property
    def fps(self) -> float:
        return self.info.fps


def read_video(path: "str | os.PathLike", *, max_frames: int | None = None, on_error: str = "keep",
               threads: int = 0) -> Video:
    """Decode a whole (short) video into memory; see :class:`VideoReader` for the error handling."""
    with VideoReader(path, on_error=on_error, threads=threads, max_frames=max_frames) as r:
        frames = list(r)
        return Video(np.stack(frames), r.info, r.error)
