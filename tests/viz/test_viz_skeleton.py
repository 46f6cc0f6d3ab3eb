"""Skeleton drawing: colours by body side, missing joints / frames, backgrounds, errors."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.layouts import get_layout
from finetec.viz.skeleton import (
    BACKGROUND, CENTER, GHOST_COLOR, LEFT, MISSING_COLOR, MISSING_FRAME_COLOR, RIGHT, SIDE_COLORS, draw_skeletons,
    edge_sides, fit_to_canvas, joint_sides, render_sequence,
)

PENN = get_layout("penn13")
J = {n: i for i, n in enumerate(PENN.joints)}


def _pose() -> np.ndarray:
    """A penn13 pose in a 200 x 200 frame, joints well apart."""
    p = {"head": (100, 20), "left_shoulder": (130, 50), "right_shoulder": (70, 50), "left_elbow": (150, 80),
         "right_elbow": (50, 80), "left_wrist": (160, 110), "right_wrist": (40, 110), "left_hip": (120, 120),
         "right_hip": (80, 120), "left_knee": (125, 150), "right_knee": (75, 150), "left_ankle": (130, 180),
         "right_ankle": (70, 180)}
    return np.array([p[n] for n in PENN.joints], dtype=np.float32)


def _blank(T: int = 1, h: int = 200, w: int = 200) -> np.ndarray:
    f = np.empty((T, h, w, 3), dtype=np.uint8)
    f[...] = BACKGROUND
    return f


def test_sides_from_layout():
    s = joint_sides("penn13")
    assert s[J["head"]] == CENTER and s[J["left_wrist"]] == LEFT and s[J["right_ankle"]] == RIGHT
    coco = get_layout("coco17")
    sc = joint_sides(coco)
    assert sc[coco.index("left_eye")] == LEFT and sc[coco.index("right_ear")] == RIGHT  # by name (head region)
    assert sc[coco.index("nose")] == CENTER
    es = edge_sides("penn13")
    edge = {(PENN.joints[a], PENN.joints[b]): k for k, (a, b) in enumerate(PENN.edges)}
    assert es[edge[("left_shoulder", "head")]] == LEFT
    assert es[edge[("right_knee", "right_hip")]] == RIGHT


def test_joint_pixels_have_side_colours():
    f = draw_skeletons(_blank(), _pose()[None], "penn13", radius=3, width=2)
    for name, side in (("left_wrist", LEFT), ("right_wrist", RIGHT), ("head", CENTER)):
        x, y = _pose()[J[name]].astype(int)
        assert tuple(f[0, y, x]) == tuple(SIDE_COLORS[side]), name
    # a bone's midpoint (left_knee -> left_hip) has the left colour, empty space stays white
    mid = ((_pose()[J["left_knee"]] + _pose()[J["left_hip"]]) / 2).round().astype(int)
    assert tuple(f[0, mid[1], mid[0]]) == tuple(SIDE_COLORS[LEFT])
    assert tuple(f[0, 190, 5]) == BACKGROUND


def test_missing_joint_is_grey_ring_and_grey_bone():
    kp = _pose()[None]
    sc = np.ones((1, 13), np.float32)
    sc[0, J["left_wrist"]] = 0
    sc[0, J["right_wrist"]] = 0
    kp = kp.copy()
    kp[0, J["right_wrist"]] = 0  # no coordinates at all: not drawn
    f = draw_skeletons(_blank(), kp, "penn13", scores=sc, radius=4, width=2)
    x, y = _pose()[J["left_wrist"]].astype(int)
    assert tuple(f[0, y + 1, x + 1]) == BACKGROUND  # hollow inside (the grey bone ends at the centre, up-left)
    assert tuple(f[0, y + 4, x]) == tuple(MISSING_COLOR)  # on the ring
    mid = ((_pose()[J["left_wrist"]] + _pose()[J["left_elbow"]]) / 2).round().astype(int)
    assert tuple(f[0, mid[1], mid[0]]) == tuple(MISSING_COLOR)  # bone to a missing joint: grey
    x, y = _pose()[J["right_wrist"]].astype(int)
    assert tuple(f[0, y, x]) == BACKGROUND and tuple(f[0, 0, 0]) == BACKGROUND
    mid = ((_pose()[J["right_wrist"]] + _pose()[J["right_elbow"]]) / 2).round().astype(int)
    assert tuple(f[0, mid[1], mid[0]]) == BACKGROUND


def test_render_sequence_missing_frame_ghost_and_scale():
    T = 3
    kp = np.repeat(_pose()[None, None], T, axis=1)  # [M=1, T, V, 2]
    mask = np.array([True, False, True])
    ghost = kp + np.array([0, 5], np.float32)
    out = list(render_sequence(kp, "penn13", mask=mask, size=(200, 200), ghost=ghost, radius=3, width=2))
    assert len(out) == T and out[0].shape == (200, 200, 3)
    x, y = _pose()[J["left_wrist"]].astype(int)
    assert tuple(out[0][y, x]) == tuple(SIDE_COLORS[LEFT])
    assert tuple(out[0][y + 6, x]) == tuple(GHOST_COLOR)  # ghost joint 5 px lower, outside the real disc
    # the missing frame is grey and has no skeleton
    assert tuple(out[1][y, x]) == tuple(MISSING_FRAME_COLOR)
    colours = {tuple(c) for c in SIDE_COLORS}
    assert not any(tuple(p) in colours for p in out[1].reshape(-1, 3)[::7])
    half = list(render_sequence(kp[0], "penn13", size=(200, 200), scale=0.5, radius=2, width=2))
    assert half[0].shape == (100, 100, 3)
    assert tuple(half[0][y // 2, x // 2]) == tuple(SIDE_COLORS[LEFT])


def test_render_over_background_frames():
    bg = np.full((2, 200, 200, 3), 40, dtype=np.uint8)
    kp = np.repeat(_pose()[None], 2, axis=0)  # [T, V, 2]
    out = list(render_sequence(kp, "penn13", frames=iter(bg), radius=3, width=2))
    assert tuple(out[1][100, 190]) == (40, 40, 40)
    x, y = _pose()[J["head"]].astype(int)
    assert tuple(out[1][y, x]) == tuple(SIDE_COLORS[CENTER])
    with pytest.raises(ValueError, match="background has only 1 frames but the sequence has 2"):
        list(render_sequence(kp, "penn13", frames=bg[:1]))


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="13 joints.*17|17 joints but layout 'penn13' has 13"):
        list(render_sequence(np.zeros((1, 4, 17, 2)), "penn13", size=(50, 50)))
    with pytest.raises(ValueError, match=r"scores must be \[T, M, V\]"):
        list(render_sequence(np.zeros((1, 4, 13, 2)), "penn13", scores=np.ones((1, 3, 13)), size=(50, 50)))
    with pytest.raises(ValueError, match="canvas size"):
        list(render_sequence(np.zeros((1, 4, 13, 2)), "penn13"))
    with pytest.raises(ValueError, match=r"mask must be \[T\]"):
        list(render_sequence(np.zeros((1, 4, 13, 2)), "penn13", mask=np.ones(5, bool), size=(50, 50)))
    with pytest.raises(ValueError, match="uint8"):
        draw_skeletons(np.zeros((1, 10, 10, 3), np.float32), np.zeros((1, 13, 2)), "penn13")


def test_fit_to_canvas_maps_box_inside():
    kp = np.array([[[-1.0, -0.5], [1.0, 0.5]]])
    s, off, (h, w) = fit_to_canvas(kp, size=200, margin=0.1)
    px = kp * s + off
    assert h % 2 == 0 and w % 2 == 0
    assert np.allclose(px[0, 0], [20, 20], atol=1) and np.allclose(px[0, 1], [180, 100], atol=1.5)
    with pytest.raises(ValueError, match="no present joint"):
        fit_to_canvas(kp, np.zeros((1, 2)))
