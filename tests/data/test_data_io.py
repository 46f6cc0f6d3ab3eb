"""finetec.data.io: restricted unpickling, annotation validation, save/load round trip, samples, dataset info."""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from finetec.data.io import (
    AnnotationError,
    DataFileError,
    UnsafePickleError,
    dataset_info,
    format_info,
    load_annotations,
    load_samples,
    safe_pickle_load,
    save_annotations,
)
from finetec.data.sample import SkeletonSample


def _write(path: Path, obj, protocol: int = 4) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def _ann(fd="a", T=5, V=17, M=1, C=2, label=0, **kw):
    rng = np.random.default_rng(len(fd) + T)
    d = {"frame_dir": fd, "label": label, "total_frames": T,
         "keypoint": rng.normal(size=(M, T, V, C)).astype(np.float32)}
    d.update(kw)
    return d


# ------------------------------------------------------------------------------------------- restricted unpickler
class _Exploit:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _EvalExploit:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    target = tmp_path / "pwned"
    bad = _write(tmp_path / "bad.pkl", {"split": {}, "annotations": [_Exploit(target)]})
    with pytest.raises(UnsafePickleError) as e:
        load_annotations(bad)
    msg = str(e.value)
    assert "system" in msg and str(bad) in msg
    assert not target.exists()
    # the exploit is real: plain pickle.load would have run it
    with open(bad, "rb") as f:
        pickle.load(f)
    assert target.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_refuses_builtins_eval_in_every_protocol(tmp_path, protocol):
    p = _write(tmp_path / "eval.pkl", [_EvalExploit()], protocol)
    with pytest.raises(UnsafePickleError, match="eval"):
        safe_pickle_load(p)


def test_refuses_getattr_gadget():
    # builtins.getattr is the usual stepping stone to arbitrary attributes
    payload = b"cbuiltins\ngetattr\n(cbuiltins\ndict\nS'get'\ntR."
    with pytest.raises(UnsafePickleError, match="builtins.getattr"):
        safe_pickle_load(io.BytesIO(payload), what="payload")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_accepts_numpy_and_containers(tmp_path, protocol):
    obj = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "f32_t": np.arange(6, dtype=np.float32).reshape(2, 3).T,  # non-contiguous
        "b": np.array([True, False]),
        "u8": np.arange(3, dtype=np.uint8),
        "s": np.array(["ab", "c"]),
        "scalar": np.int64(7),
        "f": np.float32(1.5),
        "dt": np.dtype("float16"),
        "set": {1, 2},
        "fs": frozenset({3}),
        "tuple": (1, "x"),
        "od": collections.OrderedDict(a=1),
        "bytes": b"\x00\xff",
        "complex": 1 + 2j,
        "slice": slice(1, 5, 2),
    }
    back = safe_pickle_load(_write(tmp_path / "ok.pkl", obj, protocol))
    assert back.keys() == obj.keys()
    for k in ("f16", "f32_t", "b", "u8", "s"):
        assert back[k].dtype == obj[k].dtype
        np.testing.assert_array_equal(back[k], obj[k])
    for k in ("scalar", "f", "dt", "set", "fs", "tuple", "od", "bytes", "complex", "slice"):
        assert back[k] == obj[k]
    assert type(back["od"]) is collections.OrderedDict


@pytest.mark.parametrize("cut", [0, 1, 20, -1])
def test_truncated_pickle_gives_clear_error(tiny_pyskl, tmp_path, cut):
    raw = tiny_pyskl.read_bytes()
    p = tmp_path / "cut.pkl"
    p.write_bytes(raw[:cut] if cut >= 0 else raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match=str(p)):
        load_annotations(p)


def test_garbage_file_gives_clear_error(tmp_path):
    p = tmp_path / "junk.pkl"
    p.write_text("this is not a pickle\n")
    with pytest.raises(DataFileError, match="junk.pkl"):
        load_annotations(p)


# ------------------------------------------------------------------------------------------- load / validate
def test_load_tiny_pyskl(tiny_pyskl):
    data = load_annotations(tiny_pyskl)
    assert set(data) == {"split", "annotations", "meta"}
    assert data["split"] == {"train": ["clip_000", "clip_002", "clip_004"],
                             "val": ["clip_001", "clip_003", "clip_005"]}
    assert data["annotations"][0]["keypoint"].dtype == np.float16  # stored dtype kept
    assert data["meta"]["classes"] == ["vault", "floor", "beam"]


def test_bare_list_has_no_split(tmp_path):
    p = _write(tmp_path / "bare.pkl", [_ann("a"), _ann("b", label=1)])
    data = load_annotations(p)
    assert data["split"] == {} and data["meta"] == {} and len(data["annotations"]) == 2


@pytest.mark.parametrize("split", [{"train": ["a"], "val": ["b"]}, {"train": ["a"], "test": ["b"]},
                                   {"xsub_train": ["a"], "xsub_val": ["b"]}])
def test_any_split_names(tmp_path, split):
    p = _write(tmp_path / "s.pkl", {"split": split, "annotations": [_ann("a"), _ann("b")]})
    assert load_annotations(p)["split"] == split


BAD_CASES = {
    "not a dict": ([_ann("a"), 3], "annotation 1 is a int"),
    "no frame_dir": ([{k: v for k, v in _ann("a").items() if k != "frame_dir"}], "frame_dir"),
    "no label": ([{k: v for k, v in _ann("a").items() if k != "label"}], "missing 'label'"),
    "no keypoint": ([{k: v for k, v in _ann("a").items() if k != "keypoint"}], "missing 'keypoint'"),
    "3d keypoint array": ([_ann("a", keypoint=np.zeros((5, 17, 2), np.float32))], r"\[M, T, V, C\]"),
    "int keypoints": ([_ann("a", keypoint=np.zeros((1, 5, 17, 2), np.int32))], "floating point"),
    "C=4": ([_ann("a", keypoint=np.zeros((1, 5, 17, 4), np.float32))], "C must be 2 or 3"),
    "total_frames": ([_ann("a", total_frames=6)], "'total_frames' is 6 but keypoint has T=5"),
    "NaN": ([_ann("a", keypoint=np.full((1, 5, 17, 2), np.nan, np.float32))], "non-finite keypoint"),
    "score shape": ([_ann("a", keypoint_score=np.ones((1, 4, 17), np.float32))], "keypoint_score"),
    "img_shape": ([_ann("a", img_shape=(480,))], "img_shape"),
    "negative img_shape": ([_ann("a", img_shape=(480, -640))], "img_shape"),
    "frame_mask": ([_ann("a", frame_mask=np.ones(4, bool))], "frame_mask"),
    "bool label": ([_ann("a", label=True)], "'label'"),
    "duplicate": ([_ann("a"), _ann("a")], "appears twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_structure_errors_name_file_and_annotation(tmp_path, case):
    anns, pattern = BAD_CASES[case]
    p = _write(tmp_path / "bad.pkl", {"split": {}, "annotations": anns})
    with pytest.raises(AnnotationError, match=pattern) as e:
        load_annotations(p)
    assert str(p) in str(e.value)


def test_error_names_annotation_index_and_frame_dir(tmp_path):
    p = _write(tmp_path / "bad.pkl", [_ann("ok"), _ann("broken", total_frames=3)])
    with pytest.raises(AnnotationError, match=r"annotation 1 \(frame_dir 'broken'\)"):
        load_annotations(p)


@pytest.mark.parametrize("obj, pattern", [
    ({"split": {"train": ["a", "zz"]}, "annotations": [_ann("a")]}, "split 'train' references 1 frame_dir.*'zz'"),
    ({"split": {"train": "a"}, "annotations": [_ann("a")]}, "list of frame_dir"),
    ({"split": {"train": [1]}, "annotations": [_ann("a")]}, "list of frame_dir"),
    ({"split": ["a"], "annotations": [_ann("a")]}, "'split' must be a dict"),
    ({"annotations": {"a": 1}}, "'annotations' must be a list"),
    ({"split": {}}, "no 'annotations' key"),
    ({"annotations": [], "extra": 1}, "unexpected top-level keys"),
    ({"annotations": [_ann("a", label=3)], "meta": {"classes": ["x", "y"]}}, "label 3 out of range"),
    ("just a string", "expected a dict"),
])
def test_top_level_and_split_errors(tmp_path, obj, pattern):
    p = _write(tmp_path / "bad.pkl", obj)
    with pytest.raises(AnnotationError, match=pattern):
        load_annotations(p)


# ------------------------------------------------------------------------------------------- save
def test_save_load_round_trip(tiny_pyskl, tmp_path):
    data = load_annotations(tiny_pyskl)
    out = tmp_path / "sub" / "round.pkl"
    save_annotations(data, out)
    back = load_annotations(out)
    assert back["split"] == data["split"] and back["meta"] == data["meta"]
    assert len(back["annotations"]) == len(data["annotations"])
    for a, b in zip(data["annotations"], back["annotations"]):
        assert b["keypoint"].dtype == np.float32 and b["keypoint_score"].dtype == np.float32
        np.testing.assert_array_equal(b["keypoint"], a["keypoint"].astype(np.float32))
        assert b["img_shape"] == a["img_shape"] and b["label"] == a["label"]
    np.testing.assert_array_equal(back["annotations"][1]["frame_mask"], data["annotations"][1]["frame_mask"])
    assert data["annotations"][0]["keypoint"].dtype == np.float16  # caller's dicts untouched
    assert not [f for f in out.parent.iterdir() if f.name != "round.pkl"]  # no temp file left behind
    # the file is a plain protocol-4 pickle PYSKL can read
    assert out.read_bytes()[:2] == b"\x80\x04"


def test_save_float16(tiny_pyskl, tmp_path):
    data = load_annotations(tiny_pyskl)
    out = tmp_path / "f16.pkl"
    save_annotations(data, out, float16=True)
    back = load_annotations(out)
    assert back["annotations"][0]["keypoint"].dtype == np.float16
    np.testing.assert_array_equal(back["annotations"][0]["keypoint"], data["annotations"][0]["keypoint"])


def test_save_float16_overflow_is_an_error(tmp_path):
    a = _ann("a")
    a["keypoint"][0, 0, 0, 0] = 1e6
    with pytest.raises(AnnotationError, match="float16 range"):
        save_annotations([a], tmp_path / "x.pkl", float16=True)
    assert not (tmp_path / "x.pkl").exists()


def test_save_bare_list_and_samples(tmp_path):
    save_annotations([_ann("a"), _ann("b")], tmp_path / "bare.pkl")
    assert isinstance(safe_pickle_load(tmp_path / "bare.pkl"), list)  # PYSKL's no-split form
    s = SkeletonSample(np.ones((1, 4, 25, 3), np.float32), label=2, id="S001C001P001R001A003", layout="nturgbd25")
    save_annotations({"split": {"xsub_val": [s.id]}, "annotations": [s]}, tmp_path / "s.pkl")
    data = load_annotations(tmp_path / "s.pkl")
    assert data["meta"] == {"layout": "nturgbd25"}
    assert data["annotations"][0]["frame_dir"] == s.id and data["annotations"][0]["total_frames"] == 4


def test_save_refuses_invalid_data(tmp_path):
    with pytest.raises(AnnotationError, match="total_frames"):
        save_annotations([_ann("a", total_frames=9)], tmp_path / "bad.pkl")
    assert not (tmp_path / "bad.pkl").exists()


# ------------------------------------------------------------------------------------------- samples
def test_load_samples_split_order_and_meta(tiny_pyskl):
    samples, meta = load_samples(tiny_pyskl, split="val")
    assert [s.id for s in samples] == ["clip_001", "clip_003", "clip_005"]
    assert meta["layout"] == "coco17" and meta["classes"] == ["vault", "floor", "beam"]
    s = samples[0]
    assert s.keypoint.dtype == np.float32 and s.keypoint.shape == (1, 13, 17, 2)
    assert s.img_shape == (480, 640) and s.label == 1 and s.layout == "coco17"
    assert s.mask.sum() == 10 and not s.mask[[2, 3, 7]].any()
    all_samples, _ = load_samples(tiny_pyskl)
    assert len(all_samples) == 6


def test_load_samples_unknown_split(tiny_pyskl):
    with pytest.raises(AnnotationError, match=r"no split 'test'.*\['train', 'val'\]"):
        load_samples(tiny_pyskl, split="test")


@pytest.mark.parametrize("V, expected", [(17, "coco17"), (18, "openpose18"), (25, "nturgbd25"), (13, "penn13")])
def test_layout_inferred_from_joint_count(tmp_path, V, expected):
    p = _write(tmp_path / "v.pkl", [_ann("a", V=V)])
    _, meta = load_samples(p)
    assert meta["layout"] == expected


def test_layout_argument_and_conflicts(tmp_path, tiny_pyskl):
    p = _write(tmp_path / "v.pkl", [_ann("a", V=17)])
    samples, meta = load_samples(p, layout="h36m17")
    assert meta["layout"] == "h36m17" and samples[0].layout == "h36m17"
    with pytest.raises(AnnotationError, match="has 25 joints but the keypoints have 17"):
        load_samples(p, layout="nturgbd25")
    with pytest.raises(AnnotationError, match="file says layout 'coco17' but 'h36m17'"):
        load_samples(tiny_pyskl, layout="h36m17")
    unknown = _write(tmp_path / "u.pkl", [_ann("a", V=21)])
    with pytest.raises(AnnotationError, match="cannot infer a layout for 21 joints"):
        load_samples(unknown)


def test_custom_layout_object_and_unknown_layout_name(tmp_path):
    from finetec.layouts import get_layout

    joints = [f"j{i}" for i in range(5)]
    custom = get_layout({"name": "hand5", "joints": joints, "edges": [[j, "j0"] for j in joints[1:]]})
    p = _write(tmp_path / "c.pkl", {"annotations": [_ann("a", V=5)], "meta": {"layout": "hand5"}})
    samples, meta = load_samples(p, layout=custom)
    assert meta["layout"] == "hand5" and samples[0].layout == "hand5"
    with pytest.raises(AnnotationError, match="unknown layout 'hand5'"):
        load_samples(p)  # a custom name that is neither built in nor passed


def test_load_samples_rejects_all_dropped(tmp_path):
    p = _write(tmp_path / "d.pkl", [_ann("a", frame_mask=np.zeros(5, bool))])
    with pytest.raises(AnnotationError, match="all 5 frames are dropped"):
        load_samples(p)


# ------------------------------------------------------------------------------------------- info
def test_dataset_info_counts(tiny_pyskl):
    raw = load_annotations(tiny_pyskl)
    info = dataset_info(tiny_pyskl)
    assert info["num_samples"] == 6 and info["splits"] == {"train": 3, "val": 3}
    assert info["num_classes"] == 3 and info["class_counts"] == [2, 2, 2]
    assert info["class_names"] == ["vault", "floor", "beam"]
    T = [10 + 3 * i for i in range(6)]
    assert info["frames"] == {"min": 10, "mean": pytest.approx(np.mean(T)), "max": 25}
    assert info["max_persons"] == 1 and info["joints"] == [17] and info["channels"] == [2]
    assert info["layout"] == "coco17" and info["keypoint_dtypes"] == ["float16"]
    # one joint of 17 has score 0 in every frame; valid frames only
    valid = sum(T) - 3
    assert info["missing_joint_fraction"] == pytest.approx(1 / 17)
    assert info["dropped_frame_fraction"] == pytest.approx(3 / sum(T))
    # the same from the raw arrays (score 0 counted in valid frames only)
    anns = raw["annotations"]
    zeros = sum(int((a["keypoint_score"][:, a.get("frame_mask", slice(None))] == 0).sum()) for a in anns)
    assert zeros == valid
    text = format_info(info)
    for needle in ("samples:     6", "train 3, val 3", "floor", "dropped frames: 2.86%", "layout:      coco17",
                   "missing joints: 5.88%"):
        assert needle in text


def test_dataset_info_without_scores_or_meta(tmp_path):
    p = _write(tmp_path / "n.pkl", [_ann("a", V=25, C=3, label=4), _ann("b", V=25, C=3, M=2, label=4)])
    info = dataset_info(p)
    assert info["missing_joint_fraction"] is None and info["dropped_frame_fraction"] is None
    assert info["num_classes"] == 5 and info["class_counts"] == [0, 0, 0, 0, 2] and info["class_names"] is None
    assert info["layout"] == "nturgbd25" and info["layout_inferred"] and info["max_persons"] == 2
    text = format_info(info)
    assert "n/a (no keypoint_score)" in text and "inferred" in text


def test_split_by_actor():
    from finetec.data.io import split_by_actor

    anns = [{"frame_dir": f"v{i}", "actor": a} for i, a in enumerate([1, 2, 3, 1, 3, 2])]
    out = split_by_actor({"split": {"old": ["v0"]}, "annotations": anns, "meta": {}},
                         {"train": [1, 2], "val": ["3"], "all": [1, 2, 3]})
    assert out["split"] == {"train": ["v0", "v1", "v3", "v5"], "val": ["v2", "v4"], "all": [f"v{i}" for i in range(6)]}
    assert out["annotations"] is anns
    with pytest.raises(AnnotationError, match=r"actor id\(s\) with no annotation: \{'test': \['01'\]\}"):
        split_by_actor({"annotations": anns}, {"train": [1], "test": [3, "01"]})
    with pytest.raises(AnnotationError, match="annotation 0 .* has no 'actor'"):
        split_by_actor({"annotations": [{"frame_dir": "x"}]}, {"a": [1]})
