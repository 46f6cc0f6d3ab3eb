"""PersonPose, box helpers and the single-person tracker (hand-computed boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from finetec.pose.base import PersonPose, box_from_keypoints, box_iou, check_box
from finetec.pose.tracker import SingleTracker


def person(x1, y1, x2, y2, score=0.9) -> PersonPose:
    """17 joints spread over the box (corners included) so that its keypoint box is exactly (x1, y1, x2, y2)."""
    j = np.arange(17)
    kp = np.stack([x1 + (x2 - x1) * (j % 4) / 3, y1 + (y2 - y1) * (j // 4) / 4], 1)
    return PersonPose(kp, np.full(17, score), "coco17")


def test_person_pose_checks_and_box():
    p = person(10, 20, 40, 100)
    assert p.box() == (10.0, 20.0, 40.0, 100.0)
    assert p.score == pytest.approx(0.9)
    sc = np.zeros(17)
    sc[[1, 2]] = 1.0
    kp = np.arange(34, dtype=float).reshape(17, 2)
    q = PersonPose(kp, sc)
    assert q.box() == (2.0, 3.0, 4.0, 5.0)
    assert (q.keypoints[0] == 0).all()  # joints with score 0 carry no position
    assert PersonPose(kp, np.zeros(17)).box() is None
    with pytest.raises(ValueError, match=r"keypoints must be \[V, 2\]"):
        PersonPose(np.zeros((17, 3)), np.ones(17))
    with pytest.raises(ValueError, match="layout 'coco17' has 17 joints"):
        PersonPose(np.zeros((18, 2)), np.ones(18))
    with pytest.raises(ValueError, match="finite"):
        PersonPose(np.full((17, 2), np.nan), np.ones(17))


def test_box_helpers():
    iou = box_iou((0, 0, 10, 10), np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [25 / 175, 1.0, 0.0])
    assert box_from_keypoints(np.array([[1.0, 2.0], [5.0, 2.0]]), np.array([0.5, 0.05]), thr=0.1) == (1, 2, 2, 3)
    with pytest.raises(ValueError, match="x2 > x1"):
        check_box((10, 0, 5, 5))
    with pytest.raises(ValueError, match="4 finite numbers"):
        check_box((1, 2, 3))


def test_tracker_keeps_identity_and_marks_missing():
    tr = SingleTracker()
    big, small = person(100, 100, 200, 300), person(400, 100, 440, 180)
    assert tr.update([small, big]) is big  # no reference: the largest person starts the track
    big2 = person(110, 105, 210, 305)
    huge = person(300, 50, 600, 450)  # a larger person elsewhere does not steal the track
    assert tr.update([huge, big2]) is big2
    assert tr.update([]) is None and tr.lost == 1
    assert tr.update([huge]) is None and tr.lost == 2  # far away: another identity, frame stays missing
    assert tr.box == (110.0, 105.0, 210.0, 305.0)
    back = person(120, 110, 220, 310)
    assert tr.update([back, huge]) is back and tr.lost == 0 and tr.matched == 3


def test_tracker_gate_widens_while_lost():
    tr = SingleTracker(max_shift=0.5, max_gate=2.0)
    tr.update([person(0, 0, 30, 40)])  # diagonal 50, centre (15, 20)
    jumped = person(60, 0, 90, 40)  # centre moved 60 = 1.2 diagonals, no overlap
    assert tr.update([jumped]) is None  # gate 0.5 * (1 + 0)
    assert tr.update([jumped]) is None  # gate 0.5 * (1 + 1) = 1.0 < 1.2
    assert tr.update([jumped]) is jumped  # gate 0.5 * (1 + 2) = 1.5


def test_tracker_gate_stops_widening_and_refuses_another_size():
    tr = SingleTracker(max_shift=0.5, max_gate=2.0)
    tr.update([person(0, 0, 30, 40)])  # diagonal 50, centre (15, 20)
    far = person(135, 0, 165, 40)  # same size, centre 120 px = 2.4 diagonals away
    for lost in range(10):  # gate 0.5 * (1 + lost) passes 2.4 at lost 4, but is capped at 2.0
        assert tr.update([far]) is None and tr.lost == lost + 1
    assert tr.box == (0.0, 0.0, 30.0, 40.0)
    near_tiny = person(40, 10, 52, 26)  # 0.6 diagonals away, but its diagonal is 20 / 50 = 0.4 of the track's
    near_big = person(20, 0, 95, 100)  # 1.0 diagonal away (IoU 0.05), diagonal 125 / 50 = 2.5
    assert tr.update([near_tiny, near_big]) is None
    same = person(45, 0, 75, 40)  # 0.9 diagonals, same size
    assert tr.update([near_tiny, same, near_big]) is same and tr.lost == 0
    with pytest.raises(ValueError, match="max_gate"):
        SingleTracker(max_shift=1.0, max_gate=0.5)
    with pytest.raises(ValueError, match="max_scale"):
        SingleTracker(max_scale=0.5)


def test_user_box_chooses_the_person():
    a, b = person(100, 100, 200, 300), person(400, 100, 440, 180)
    tr = SingleTracker(box=(390, 90, 450, 190))
    assert tr.update([a, b]) is b  # the smaller person, under the user's box
    assert tr.update([a]) is None  # the other person is not the tracked one
    tr.reset()
    assert tr.user_box is None and tr.update([a, b]) is a


def test_roi_grows_and_is_clipped():
    tr = SingleTracker(box=(100, 100, 140, 180), roi_scale=1.5)  # 40 x 80, centre (120, 140)
    assert tr.roi((480, 640, 3)) == (60.0, 80.0, 180.0, 200.0)  # square side 80 * 1.5
    tr.update([])
    assert tr.roi((480, 640, 3)) == (30.0, 50.0, 210.0, 230.0)  # side 80 * 1.5 * 1.5
    assert SingleTracker(box=(0, 0, 630, 470)).roi((480, 640, 3)) is None  # covers the frame: search everywhere
    assert SingleTracker().roi((480, 640, 3)) is None
    with pytest.raises(ValueError, match="min_iou"):
        SingleTracker(min_iou=0)
