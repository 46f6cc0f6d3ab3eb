"""finetec.data.readers.ntu on generated ``.skeleton`` files written in the NTU RGB+D format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from finetec.data.io import DataFileError
from finetec.data.readers.ntu import parse_ntu_name, read_ntu_skeleton
from finetec.data.sample import SampleError

V = 25


def _joints(rng, centre, spread, T, state=2):
    """[T, 25, 12] joint rows: xyz around ``centre`` moving with amplitude ``spread``; colour = 100 * xyz."""
    xyz = centre + spread * rng.normal(size=(T, V, 3))
    rows = np.zeros((T, V, 12))
    rows[..., 0:3] = xyz
    rows[..., 3:5] = xyz[..., :2] * 50 + 256  # depthX, depthY
    rows[..., 5:7] = xyz[..., :2] * 100 + 900  # colorX, colorY
    rows[..., 7] = 1.0  # orientation W
    rows[..., 11] = state
    return rows


def _write_skeleton(path: Path, frames: list[list[tuple[str, np.ndarray]]]) -> Path:
    """frames: per frame a list of (bodyID, [25, 12] joint rows)."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, rows in bodies:
            out.append(f"{body_id} 0 1 1 1 1 0 0.1 -0.05 2")
            out.append(str(V))
            out += [" ".join(f"{v:.7g}" for v in r[:11]) + f" {int(r[11])}" for r in rows]
    path.write_text("\n".join(out) + "\n")
    return path


ID_A, ID_B, ID_C = "72057594037931101", "72057594037931102", "72057594037931103"  # differ only past float precision


@pytest.fixture
def two_person(tmp_path):
    """6 frames: A (moves a lot) in frames 0-4, B (barely moves) in 1-5, C (moves a little) in 2-3; frame 5 has B
    only; tracking states vary for A."""
    rng = np.random.default_rng(0)
    T = 6
    a = _joints(rng, np.array([0.0, 0.0, 3.0]), 0.30, T)
    a[0, 3, 11] = 1  # inferred
    a[1, 4, 11] = 0  # not tracked
    b = _joints(rng, np.array([1.0, 0.0, 3.5]), 0.01, T)
    c = _joints(rng, np.array([-1.0, 0.0, 4.0]), 0.05, T)
    frames = []
    for t in range(T):
        bodies = []
        if t <= 4:
            bodies.append((ID_A, a[t]))
        if 2 <= t <= 3:
            bodies.append((ID_C, c[t]))
        if t >= 1:
            bodies.append((ID_B, b[t]))
        frames.append(bodies)
    path = _write_skeleton(tmp_path / "S002C003P004R001A050.skeleton", frames)
    return path, a, b, c


def test_reads_3d_ranks_by_motion_energy(two_person):
    path, a, b, c = two_person
    s = read_ntu_skeleton(path)
    assert s.layout == "nturgbd25" and s.id == "S002C003P004R001A050" and s.label == 49
    assert s.img_shape is None
    assert s.meta == {"setup": 2, "camera": 3, "performer": 4, "replication": 1}
    assert s.keypoint.shape == (2, 6, 25, 3) and s.keypoint.dtype == np.float32
    # A moves most, then C; B (almost static) is dropped with max_person=2
    np.testing.assert_allclose(s.keypoint[0, :5], a[:5, :, :3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.keypoint[1, 2:4], c[2:4, :, :3], rtol=1e-6, atol=1e-6)
    assert (s.keypoint[0, 5] == 0).all() and (s.keypoint[1, [0, 1, 4, 5]] == 0).all()
    # score: tracked 1, inferred 0.5, not tracked 0, absent 0
    assert s.score[0, 0, 3] == 0.5 and s.score[0, 1, 4] == 0.0 and s.score[0, 0, 0] == 1.0
    assert (s.score[0, 5] == 0).all() and (s.score[1, [0, 1, 4, 5]] == 0).all() and (s.score[1, 2:4] == 1).all()
    # frame 5 holds only the dropped body B -> no kept person -> not a valid frame
    np.testing.assert_array_equal(s.mask, [True, True, True, True, True, False])
    s.validate(25)


def test_max_person_and_2d(two_person):
    path, a, b, c = two_person
    s3 = read_ntu_skeleton(path, max_person=3)
    assert s3.num_person == 3
    np.testing.assert_allclose(s3.keypoint[2, 1:], b[1:, :, :3], rtol=1e-6, atol=1e-6)
    assert s3.mask.all()
    s1 = read_ntu_skeleton(path, max_person=1, coords="2d")
    assert s1.keypoint.shape == (1, 6, 25, 2) and s1.img_shape == (1080, 1920)
    np.testing.assert_allclose(s1.keypoint[0, :5], a[:5, :, 5:7], rtol=1e-6)


def test_body_ids_are_not_merged_by_float_rounding(tmp_path):
    # the two ids are equal as float64; parsed as numbers they would collapse into one body
    assert float(ID_A) == float(ID_B)
    rng = np.random.default_rng(1)
    a, b = _joints(rng, np.zeros(3), 0.2, 2), _joints(rng, np.ones(3), 0.1, 2)
    p = _write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", [[(ID_A, a[0]), (ID_B, b[0])],
                                                                     [(ID_A, a[1]), (ID_B, b[1])]])
    s = read_ntu_skeleton(p)
    assert s.num_person == 2 and s.label == 0


def test_single_person_file(tmp_path):
    rng = np.random.default_rng(2)
    a = _joints(rng, np.zeros(3), 0.2, 3)
    p = _write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", [[(ID_A, a[t])] for t in range(3)])
    s = read_ntu_skeleton(p)
    assert s.num_person == 1 and s.mask.all() and (s.score == 1).all()


def test_name_parsing():
    assert parse_ntu_name("S017C003P020R002A120") == {"setup": 17, "camera": 3, "performer": 20,
                                                       "replication": 2, "action": 120}
    assert parse_ntu_name("clip_A007") == {"action": 7}
    assert parse_ntu_name("noname") == {}


def test_unlabelled_name(tmp_path):
    rng = np.random.default_rng(3)
    p = _write_skeleton(tmp_path / "myclip.skeleton", [[(ID_A, _joints(rng, np.zeros(3), 0.1, 1)[0])]])
    s = read_ntu_skeleton(p)
    assert s.label == -1 and s.id == "myclip" and s.meta == {}


def _good_lines(tmp_path) -> list[str]:
    rng = np.random.default_rng(4)
    a = _joints(rng, np.zeros(3), 0.1, 3)
    p = _write_skeleton(tmp_path / "src.skeleton", [[(ID_A, a[t])] for t in range(3)])
    return p.read_text().splitlines()


@pytest.mark.parametrize("keep_lines, pattern", [
    (0, "truncated at line 1"),
    (1, "truncated at line 2 .* expected body count of frame 1/3"),
    (2, "truncated at line 3 .* expected body info line"),
    (3, "truncated at line 4 .* expected joint count"),
    (10, "truncated at line 11 .* needs 25 joint lines from line 5"),
    (29, "truncated at line 30 .* body count of frame 2/3"),
    (84, "truncated at line 85 .* needs 25 joint lines from line 61"),
])
def test_truncated_file_names_file_and_line(tmp_path, keep_lines, pattern):
    lines = _good_lines(tmp_path)
    assert len(lines) == 1 + 3 * (1 + 1 + 1 + 25)
    p = tmp_path / "S001C001P001R001A001.skeleton"
    p.write_text("\n".join(lines[:keep_lines]) + "\n")
    with pytest.raises(DataFileError, match=pattern) as e:
        read_ntu_skeleton(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("lineno, replacement, pattern", [
    (1, "three", ":1: expected frame count"),
    (3, "123 0 1", ":3: body info line must have 10 values"),
    (4, "24", ":4: expected 25 joints, got 24"),
    (10, "1 2 3", ":10: joint line must have 12 numbers"),
    (12, "1 2 3 4 5 6 7 8 9 10 11 x", ":12: joint line must have 12 numbers"),
    (40, "1 2 3 4 5 6 7 8 9 10 11 7", ":40: joint trackingState must be 0, 1 or 2, got 7"),
    (41, "nan 2 3 4 5 6 7 8 9 10 11 2", ":41: non-finite joint value"),
])
def test_malformed_line_is_reported(tmp_path, lineno, replacement, pattern):
    lines = _good_lines(tmp_path)
    lines[lineno - 1] = replacement
    p = tmp_path / "S001C001P001R001A001.skeleton"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFileError, match=pattern):
        read_ntu_skeleton(p)


def test_trailing_garbage_and_duplicate_body(tmp_path):
    lines = _good_lines(tmp_path)
    p = tmp_path / "x.skeleton"
    p.write_text("\n".join(lines + ["1"]) + "\n")
    with pytest.raises(DataFileError, match=r":86: unexpected data after the last of 3 frames"):
        read_ntu_skeleton(p)
    rng = np.random.default_rng(5)
    a = _joints(rng, np.zeros(3), 0.1, 1)[0]
    _write_skeleton(p, [[(ID_A, a), (ID_A, a)]])
    with pytest.raises(DataFileError, match="appears twice in frame 1"):
        read_ntu_skeleton(p)


def test_file_without_bodies(tmp_path):
    p = tmp_path / "S001C001P001R001A001.skeleton"
    p.write_text("3\n0\n0\n0\n")
    with pytest.raises(SampleError, match="no body in any of the 3 frames"):
        read_ntu_skeleton(p)


def test_bad_arguments(two_person):
    path = two_person[0]
    with pytest.raises(ValueError, match="coords"):
        read_ntu_skeleton(path, coords="depth")
    with pytest.raises(ValueError, match="max_person"):
        read_ntu_skeleton(path, max_person=0)
