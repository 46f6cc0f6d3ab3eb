"""Skeletons drawn onto video frames or a blank canvas (numpy + PIL, no OpenCV).

Joints and bones are stamped into a batch of frames ``[T, H, W, 3]`` at once with numpy fancy indexing (discs for
joints, discs sampled along each bone for lines); PIL only writes the text (frame numbers, titles).

Colours follow the body side given by the :class:`~finetec.layouts.Layout`: blue for the left side, red for the
right, green for the centre (head, spine). A missing joint (score 0) is a hollow grey ring at its coordinates when
they are usable, and its bones are thin grey lines; a missing frame (mask False) is tinted grey, labelled
"missing" in red, and shows no skeleton.

Choices:

* Body side of a joint: the layout's regions (``left_arm``/``left_leg`` -> left, ``right_*`` -> right), else its name
  (``left...`` / ``right...``, e.g. coco17's eyes and ears), else the centre. A bone takes the side of its non-centre
  end; a bone between a left and a right joint is centre-coloured.
* A missing joint's coordinates are usable when they are finite, not exactly (0, 0) (the "no coordinates" encoding
  of PYSKL files) and inside the frame; otherwise the joint and its bones are not drawn. Penn Action keeps
  annotated coordinates for its invisible joints, so they show as rings.
* Default sizes scale with the frame: joint radius ``max(2, min(H, W) // 100)``, bone width
  ``max(2, min(H, W) // 150)``, text ``max(11, min(H, W) // 24)`` px.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Iterator, Sequence

import numpy as np

from finetec.layouts import Layout, get_layout

__all__ = [
    "CENTER", "LEFT", "RIGHT", "SIDE_COLORS", "MISSING_COLOR", "GHOST_COLOR", "BACKGROUND", "MISSING_FRAME_COLOR",
    "joint_sides", "edge_sides", "draw_skeletons", "render_sequence", "fit_to_canvas", "put_text", "default_sizes",
]

CENTER, LEFT, RIGHT = 0, 1, 2
SIDE_COLORS = np.array([[30, 150, 50], [25, 100, 230], [225, 45, 35]], dtype=np.uint8)  # centre, left, right
MISSING_COLOR = np.array([150, 150, 150], dtype=np.uint8)
GHOST_COLOR = np.array([200, 200, 200], dtype=np.uint8)
BACKGROUND = (255, 255, 255)
MISSING_FRAME_COLOR = np.array([205, 205, 205], dtype=np.uint8)
TEXT_COLOR = (0, 0, 0)
ALERT_COLOR = (200, 0, 0)


def _side_of_name(name: str) -> int:
    n = name.lower()
    if n.startswith("left"):
        return LEFT
    if n.startswith("right"):
        return RIGHT
    return CENTER


def joint_sides(layout: "str | Layout") -> np.ndarray:
    """Body side of every joint, ``[V]`` int64 (``CENTER``, ``LEFT`` or ``RIGHT``); see the module's Choices."""
    layout = get_layout(layout)
    sides = np.array([_side_of_name(j) for j in layout.joints], dtype=np.int64)
    for region, joints in layout.regions.items():
        if region.startswith("left_"):
            sides[list(joints)] = LEFT
        elif region.startswith("right_"):
            sides[list(joints)] = RIGHT
    return sides


def edge_sides(layout: "str | Layout") -> np.ndarray:
    """Body side of every edge (``layout.edges`` order), ``[E]`` int64."""
    layout = get_layout(layout)
    s = joint_sides(layout)
    if not layout.edges:
        return np.zeros(0, dtype=np.int64)
    e = np.asarray(layout.edges, dtype=np.int64)
    a, b = s[e[:, 0]], s[e[:, 1]]
    out = np.maximum(a, b)  # one end centre: the other end's side
    out[(a != CENTER) & (b != CENTER) & (a != b)] = CENTER
    return out


def default_sizes(height: int, width: int) -> tuple[int, int, int]:
    """``(joint radius, bone width, font size)`` in pixels for a frame of this size."""
    m = min(int(height), int(width))
    return max(2, m // 100), max(2, m // 150), max(11, m // 24)


# ---------------------------------------------------------------------------------------------------- stamping
@lru_cache(maxsize=32)
def _disc(radius: float, ring: bool = False) -> np.ndarray:
    """Pixel offsets ``[D, 2]`` (dy, dx) of a disc (or a one-to-two pixel ring) of ``radius``."""
    r = int(np.ceil(radius + 0.5))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    d2 = dy * dy + dx * dx
    keep = d2 <= (radius + 0.5) ** 2
    if ring:
        keep &= d2 >= max(radius - 1.5, 0.0) ** 2
    return np.stack([dy[keep], dx[keep]], -1).astype(np.int64)


def _stamp(frames: np.ndarray, t: np.ndarray, xy: np.ndarray, color: np.ndarray, offsets: np.ndarray) -> None:
    """Paint ``color [N, 3]`` discs (``offsets``) centred at ``xy [N, 2]`` (x, y) into ``frames[t]``, in place."""
    if len(t) == 0:
        return
    T, H, W, _ = frames.shape
    cy = np.rint(xy[:, 1]).astype(np.int64)[:, None] + offsets[None, :, 0]
    cx = np.rint(xy[:, 0]).astype(np.int64)[:, None] + offsets[None, :, 1]
    inside = (cy >= 0) & (cy < H) & (cx >= 0) & (cx < W)
    n = np.broadcast_to(np.arange(len(t))[:, None], cy.shape)[inside]
    frames[t[n], cy[inside], cx[inside]] = color[n]


def _stamp_segments(frames: np.ndarray, t: np.ndarray, p0: np.ndarray, p1: np.ndarray, color: np.ndarray,
                    width: float) -> None:
    """Thick line segments ``p0 -> p1`` (``[N, 2]`` x, y) into ``frames[t]``: discs of radius ``width / 2`` every
    ``max(0.5, width / 4)`` px along each segment (all segments in one vectorised stamp)."""
    if len(t) == 0:
        return
    rad = max(width / 2.0 - 0.5, 0.0)
    step = max(0.5, width / 4.0)
    length = np.linalg.norm(p1 - p0, axis=-1)
    counts = np.ceil(length / step).astype(np.int64) + 1
    seg = np.repeat(np.arange(len(t)), counts)
    start = np.cumsum(counts) - counts
    frac = (np.arange(counts.sum()) - start[seg]) / np.maximum(counts[seg] - 1, 1)
    pts = p0[seg] + (p1[seg] - p0[seg]) * frac[:, None]
    _stamp(frames, t[seg], pts, color[seg], _disc(rad))


# ---------------------------------------------------------------------------------------------------- drawing
def _check_sequence(keypoints: np.ndarray, scores: np.ndarray | None, layout: Layout,
                    who: str) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 3:
        kp = kp[:, None]
    if kp.ndim != 4 or kp.shape[-1] != 2:
        raise ValueError(f"{who}: keypoints must be [T, M, V, 2] (or [T, V, 2]) pixel x, y; got shape "
                         f"{tuple(np.shape(keypoints))}")
    if kp.shape[2] != layout.num_joints:
        raise ValueError(f"{who}: keypoints have {kp.shape[2]} joints but layout {layout.name!r} has "
                         f"{layout.num_joints}")
    if scores is None:
        sc = np.ones(kp.shape[:3], dtype=np.float64)
    else:
        sc = np.asarray(scores, dtype=np.float64)
        if sc.ndim == 2 and kp.shape[1] == 1:
            sc = sc[:, None]
        if sc.shape != kp.shape[:3]:
            raise ValueError(f"{who}: scores must be [T, M, V] = {kp.shape[:3]}, got {tuple(np.shape(scores))}")
    return kp, sc


def draw_skeletons(frames: np.ndarray, keypoints: np.ndarray, layout: "str | Layout", *,
                   scores: np.ndarray | None = None, radius: float | None = None, width: float | None = None,
                   color: Sequence[int] | None = None, show_missing: bool = True) -> np.ndarray:
    """Draw skeletons into ``frames [T, H, W, 3]`` uint8 (in place; also returned).

    ``keypoints [T, M, V, 2]`` (or ``[T, V, 2]``) pixel coordinates, ``scores [T, M, V]`` (0 = missing joint; default
    all present). ``color`` draws everything in one colour (e.g. a grey "ghost"); default: by body side.
    ``show_missing``: draw missing joints as grey rings (see the module's Choices).
    """
    layout = get_layout(layout)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"draw_skeletons: frames must be uint8 [T, H, W, 3], got {frames.dtype} "
                         f"{tuple(frames.shape)}")
    kp, sc = _check_sequence(keypoints, scores, layout, "draw_skeletons")
    T, H, W = frames.shape[:3]
    if kp.shape[0] != T:
        raise ValueError(f"draw_skeletons: {T} frames but keypoints for {kp.shape[0]}")
    r0, w0, _ = default_sizes(H, W)
    radius = float(r0 if radius is None else radius)
    width = float(w0 if width is None else width)
    finite = np.isfinite(kp).all(-1)
    present = (sc > 0) & finite
    usable = finite & (kp != 0).any(-1) & (kp[..., 0] >= 0) & (kp[..., 0] < W) & (kp[..., 1] >= 0) & (kp[..., 1] < H)
    ghost = ~present & usable & show_missing
    kp = np.where(finite[..., None], kp, 0.0)
    one = None if color is None else np.asarray(color, np.uint8)
    jc = SIDE_COLORS[joint_sides(layout)] if one is None else np.tile(one, (layout.num_joints, 1))
    if layout.edges:
        e = np.asarray(layout.edges, dtype=np.int64)
        ec = SIDE_COLORS[edge_sides(layout)] if one is None else np.tile(one, (len(e), 1))
        both = present[..., e[:, 0]] & present[..., e[:, 1]]  # [T, M, E]
        drawable = (present | ghost)[..., e[:, 0]] & (present | ghost)[..., e[:, 1]]
        for sel, col, wid in ((drawable & ~both, None, max(1.0, width / 2)), (both, ec, width)):
            t, m, k = np.nonzero(sel)
            c = np.broadcast_to(MISSING_COLOR, (len(k), 3)) if col is None else col[k]
            _stamp_segments(frames, t, kp[t, m, e[k, 0]], kp[t, m, e[k, 1]], c, wid)
    t, m, v = np.nonzero(ghost)
    _stamp(frames, t, kp[t, m, v], np.broadcast_to(MISSING_COLOR, (len(v), 3)), _disc(radius, ring=True))
    t, m, v = np.nonzero(present)
    _stamp(frames, t, kp[t, m, v], jc[v], _disc(radius))
    return frames


@lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def put_text(frame: np.ndarray, text: str, xy: tuple[int, int], *, size: int = 14,
             color: Sequence[int] = TEXT_COLOR, anchor: str = "la") -> np.ndarray:
    """Write ``text`` (white outline for contrast) at ``xy`` into ``frame [H, W, 3]`` uint8, in place."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    ImageDraw.Draw(img).text(xy, text, fill=tuple(int(c) for c in color), font=_font(int(size)), anchor=anchor,
                             stroke_width=max(1, size // 7), stroke_fill=(255, 255, 255))
    frame[...] = np.asarray(img)
    return frame


def fit_to_canvas(keypoints: np.ndarray, scores: np.ndarray | None = None, *, size: int = 480,
                  margin: float = 0.1) -> tuple[float, np.ndarray, tuple[int, int]]:
    """A canvas for coordinates without an image (normalised or metric data): ``(s, offset, (height, width))``
    such that ``pixels = keypoints * s + offset`` puts the box of the present joints (score > 0) in the middle,
    its longer side filling ``1 - 2 * margin`` of ``size`` px (y pointing down as given; even canvas sides)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-1] != 2:
        raise ValueError(f"fit_to_canvas: keypoints must be [..., 2], got {tuple(kp.shape)}")
    ok = np.isfinite(kp).all(-1)
    if scores is not None:
        ok &= np.asarray(scores) > 0
    if not ok.any():
        raise ValueError("fit_to_canvas: no present joint to fit (every score is 0 or coordinate non-finite)")
    pts = kp[ok]
    lo, hi = pts.min(0), pts.max(0)
    span = float(max((hi - lo).max(), 1e-9))
    s = size * (1 - 2 * margin) / span
    h = int(np.ceil((hi[1] - lo[1]) * s + 2 * margin * size)) // 2 * 2 + 2
    w = int(np.ceil((hi[0] - lo[0]) * s + 2 * margin * size)) // 2 * 2 + 2
    return s, np.array([w / 2, h / 2]) - (lo + hi) / 2 * s, (h, w)


def _as_frame(f, who: str, t: int) -> np.ndarray:
    a = np.asarray(f)
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or a.dtype != np.uint8:
        raise ValueError(f"{who}: background frame {t} must be uint8 [H, W, 3] (or a PIL RGB image), got "
                         f"{a.dtype} {tuple(a.shape)}")
    return a[..., :3]


def render_sequence(keypoints: np.ndarray, layout: "str | Layout", *, scores: np.ndarray | None = None,
                    mask: np.ndarray | None = None, frames: "Iterable | None" = None,
                    size: tuple[int, int] | None = None, scale: float = 1.0, title: str | None = None,
                    frame_numbers: Sequence[int] | None = None, frame_info: Sequence[str] | None = None,
                    ghost: np.ndarray | None = None, ghost_scores: np.ndarray | None = None, chunk: int = 32,
                    radius: float | None = None, width: float | None = None) -> Iterator[np.ndarray]:
    """Yield the ``T`` rendered frames ``[H, W, 3]`` uint8 of a sequence, one at a time (``chunk`` frames are drawn
    together, so memory stays bounded for long videos).

    ``keypoints [M, T, V, 2]`` (PYSKL order; ``[T, V, 2]`` for one person) pixel coordinates of the source frames;
    ``scores [M, T, V]``; ``mask [T]`` bool (False = missing frame). Background: ``frames`` (an iterable of ``T``
    images at least, e.g. :func:`finetec.viz.video.read_video`) or a white canvas of ``size = (h, w)``. ``scale``
    resizes frames and coordinates. ``frame_numbers`` (default ``0..T-1``) and ``frame_info`` (extra text per
    frame) label each frame; ``ghost`` (same shape as ``keypoints``; joints with ``ghost_scores`` 0 left out) is
    drawn underneath in light grey (e.g. the ground truth under a completion).
    """
    layout = get_layout(layout)
    kp = np.asarray(keypoints)
    if kp.ndim == 3:
        kp = kp[None]
    if kp.ndim != 4:
        raise ValueError(f"render_sequence: keypoints must be [M, T, V, 2] or [T, V, 2], got {tuple(kp.shape)}")
    kp = np.swapaxes(kp, 0, 1)  # [T, M, V, 2]
    T = kp.shape[0]
    sc = None
    if scores is not None:
        s = np.asarray(scores)
        s = s[None] if s.ndim == 2 else s
        if s.ndim != 3:
            raise ValueError(f"render_sequence: scores must be [M, T, V], got {tuple(np.shape(scores))}")
        sc = np.swapaxes(s, 0, 1)
    kp, sc = _check_sequence(kp, sc, layout, "render_sequence")
    gh = None
    if ghost is not None:
        g = np.asarray(ghost)
        g = np.swapaxes(g[None] if g.ndim == 3 else g, 0, 1)
        if g.shape != kp.shape:
            raise ValueError(f"render_sequence: ghost must have the keypoints' shape {kp.shape}, got {g.shape}")
        gh = g * scale
        gs = None
        if ghost_scores is not None:
            gs = np.asarray(ghost_scores)
            gs = np.swapaxes(gs[None] if gs.ndim == 2 else gs, 0, 1)
            if gs.shape != kp.shape[:3]:
                raise ValueError(f"render_sequence: ghost_scores must be [M, T, V] like the scores, got "
                                 f"{tuple(np.shape(ghost_scores))}")
    mk = np.ones(T, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mk.shape != (T,):
        raise ValueError(f"render_sequence: mask must be [T] = ({T},), got {mk.shape}")
    nums = np.arange(T) if frame_numbers is None else np.asarray(frame_numbers)
    if nums.shape != (T,):
        raise ValueError(f"render_sequence: frame_numbers must have {T} entries, got {nums.shape}")
    if frame_info is not None and len(frame_info) != T:
        raise ValueError(f"render_sequence: frame_info must have {T} entries, got {len(frame_info)}")
    if not scale > 0:
        raise ValueError(f"render_sequence: scale must be > 0, got {scale}")
    if frames is None:
        if size is None:
            raise ValueError("render_sequence: give background frames or a canvas size (h, w)")
        h, w = int(round(size[0] * scale)), int(round(size[1] * scale))
        if h < 1 or w < 1:
            raise ValueError(f"render_sequence: canvas size {size} x scale {scale} is empty")
        source = None
    else:
        source = iter(frames)
    kp = kp * scale
    chunk = max(1, int(chunk))
    for t0 in range(0, T, chunk):
        t1 = min(T, t0 + chunk)
        if source is None:
            batch = np.empty((t1 - t0, h, w, 3), dtype=np.uint8)
            batch[...] = np.asarray(BACKGROUND, np.uint8)
        else:
            imgs = []
            for t in range(t0, t1):
                try:
                    f = next(source)
                except StopIteration:
                    raise ValueError(f"render_sequence: the background has only {t} frames but the sequence has "
                                     f"{T}") from None
                imgs.append(_resize(_as_frame(f, "render_sequence", t), scale))
            if len({im.shape for im in imgs}) > 1:
                raise ValueError(f"render_sequence: background frames differ in size: "
                                 f"{sorted({im.shape for im in imgs})}")
            batch = np.stack(imgs)
        miss = ~mk[t0:t1]
        if miss.any():  # grey tint: flat on a canvas, half-transparent over video
            bg = batch[miss].astype(np.uint16)
            batch[miss] = MISSING_FRAME_COLOR if source is None else ((bg + MISSING_FRAME_COLOR) // 2).astype(np.uint8)
        show = mk[t0:t1, None, None]
        if gh is not None:
            draw_skeletons(batch, np.where(show[..., None], gh[t0:t1], np.nan), layout,
                           scores=None if gs is None else gs[t0:t1], radius=radius, width=width, color=GHOST_COLOR,
                           show_missing=False)
        # a missing frame shows no skeleton at all, not even rings at coordinates it may still carry
        draw_skeletons(batch, np.where(show[..., None], kp[t0:t1], np.nan), layout, scores=sc[t0:t1],
                       radius=radius, width=width)
        fs = default_sizes(*batch.shape[1:3])[2]
        for i, t in enumerate(range(t0, t1)):
            label = f"frame {int(nums[t])}"
            if frame_info is not None and frame_info[t]:
                label += f"  {frame_info[t]}"
            put_text(batch[i], label, (4, batch.shape[1] - 4), size=fs, anchor="ld")
            if not mk[t]:
                put_text(batch[i], "missing", (batch.shape[2] // 2, batch.shape[1] // 2), size=2 * fs,
                         color=ALERT_COLOR, anchor="mm")
            if title:
                put_text(batch[i], title, (batch.shape[2] // 2, 4), size=fs, anchor="ma")
        yield from batch


def _resize(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return np.ascontiguousarray(frame)
    from PIL import Image

    h, w = frame.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize(size, Image.BILINEAR))
