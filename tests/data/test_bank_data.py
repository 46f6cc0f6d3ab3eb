"""build_skeleton_bank: pipeline-consistent clips, deterministic draw, layout conversion, clear errors."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest

from finetec.data.bank import BankError, build_skeleton_bank
from finetec.data.transforms import PreNormalize2D, UniformSampleFrames
from finetec.layouts import get_layout

from conftest import make_tiny_pyskl


def _h36m_dict(num: int = 5, T: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    anns = []
    for i in range(num):
        kp = rng.uniform(10, 470, size=(2, T, 17, 2)).astype(np.float32)  # two persons: only the first is used
        anns.append({"frame_dir": f"h36m_{i}", "label": 0, "total_frames": T, "img_shape": (480, 640),
                     "keypoint": kp, "keypoint_score": np.ones((2, T, 17), np.float32)})
    return {"split": {"train": [a["frame_dir"] for a in anns]}, "annotations": anns,
            "meta": {"layout": "h36m17"}}


def test_tiny_pyskl_matches_pipeline(tiny_pyskl: Path):
    bank = build_skeleton_bank(tiny_pyskl, layout="coco17", clip_len=8, size=10, seed=0)
    assert bank["sequences"].shape == (3, 8, 17, 2) and bank["sequences"].dtype == np.float32
    assert bank["weights"].shape == (3, 8, 17) and bank["weights"].dtype == np.float32
    data = make_tiny_pyskl()
    train = set(data["split"]["train"])
    assert set(bank["ids"]) == train  # default split 'train', all of it (fewer than size)
    by_id = {a["frame_dir"]: a for a in data["annotations"]}
    for k, fd in enumerate(bank["ids"]):
        a = by_id[fd]
        res = {"keypoint": a["keypoint"].astype(np.float32), "keypoint_score": a["keypoint_score"].astype(np.float32),
               "img_shape": a["img_shape"], "total_frames": a["total_frames"], "frame_dir": fd}
        res = UniformSampleFrames(8, test_mode=True)(PreNormalize2D()(res))
        w = (res["keypoint_score"][0] > 0).astype(np.float32)
        np.testing.assert_array_equal(bank["weights"][k], w)
        np.testing.assert_allclose(bank["sequences"][k], res["keypoint"][0] * w[..., None], atol=1e-6)
        assert (np.abs(bank["sequences"][k]) <= 1).all()
    # the missing joint track (score 0) has weight 0 and coordinates 0
    i = int(bank["ids"][0].split("_")[1])
    assert (bank["weights"][0][:, i % 17] == 0).all() and (bank["sequences"][0][:, i % 17] == 0).all()


def test_deterministic_subset_and_split(tiny_pyskl: Path):
    a = build_skeleton_bank(tiny_pyskl, layout="coco17", clip_len=6, size=2, seed=3)
    b = build_skeleton_bank(tiny_pyskl, layout="coco17", clip_len=6, size=2, seed=3)
    assert a["ids"] == b["ids"] and len(a["ids"]) == 2 and len(set(a["ids"])) == 2
    np.testing.assert_array_equal(a["sequences"], b["sequences"])
    val = build_skeleton_bank(tiny_pyskl, layout="coco17", clip_len=6, size=5, split="val")
    assert sorted(val["ids"]) == ["clip_001", "clip_003", "clip_005"]
    # clip_001 has three dropped frames: their weights are 0 wherever the clip samples them
    k = val["ids"].index("clip_001")
    assert val["weights"][k].sum() < 6 * 16


def test_h36m_to_coco_conversion_first_person():
    data = _h36m_dict()
    bank = build_skeleton_bank(data, layout="coco17", clip_len=12, size=3, seed=1)
    assert bank["sequences"].shape == (3, 12, 17, 2)
    coco, h36m = get_layout("coco17"), get_layout("h36m17")
    w = bank["weights"]
    for name in ("left_eye", "right_eye", "left_ear", "right_ear"):  # not in h36m17: missing, never invented
        assert (w[:, :, coco.index(name)] == 0).all() and (bank["sequences"][:, :, coco.index(name)] == 0).all()
    k = bank["ids"].index("h36m_0") if "h36m_0" in bank["ids"] else 0
    src = next(a for a in data["annotations"] if a["frame_dir"] == bank["ids"][k])
    expect = src["keypoint"][0, :, h36m.index("left_wrist")] / np.array([320, 240]) - 1  # T == clip_len: no resample
    np.testing.assert_allclose(bank["sequences"][k, :, coco.index("left_wrist")], expect, atol=1e-5)


def test_invisible_sequences_skipped_and_empty_error():
    data = _h36m_dict(num=3)
    data["annotations"][1]["keypoint_score"][0] = 0  # first person never visible
    bank = build_skeleton_bank(data, layout="h36m17", clip_len=4, size=5)
    assert sorted(bank["ids"]) == ["h36m_0", "h36m_2"]
    for a in data["annotations"]:
        a["keypoint_score"][0] = 0
    with pytest.raises(BankError, match="no usable sequence"):
        build_skeleton_bank(data, layout="h36m17", clip_len=4, size=5)


def test_errors():
    data = _h36m_dict(num=2)
    with pytest.raises(BankError, match="unknown layout"):
        build_skeleton_bank(data, layout="nope17", clip_len=4, size=2)
    with pytest.raises(BankError, match="no split 'test'"):
        build_skeleton_bank(data, layout="coco17", clip_len=4, size=2, split="test")
    three = _h36m_dict(num=2)
    for a in three["annotations"]:
        a["keypoint"] = np.concatenate([a["keypoint"], np.ones_like(a["keypoint"][..., :1])], -1)
    with pytest.raises(BankError, match="3D"):
        build_skeleton_bank(three, layout="h36m17", clip_len=4, size=2)
    with pytest.raises(BankError, match="no 'train' split"):
        build_skeleton_bank({"split": {"a": ["h36m_0"]}, "annotations": data["annotations"], "meta": data["meta"]},
                            layout="coco17", clip_len=4, size=2)
    with pytest.raises(ValueError, match="size must be >= 1"):
        build_skeleton_bank(data, layout="coco17", clip_len=4, size=0)
    with pytest.raises(FileNotFoundError):
        build_skeleton_bank("/nonexistent/file.pkl", layout="coco17", clip_len=4, size=2)


def test_pickle_path_and_source_layout(tmp_path: Path):
    path = tmp_path / "h36m.pkl"
    data = _h36m_dict(num=2)
    del data["meta"]
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    bank = build_skeleton_bank(path, layout="coco17", clip_len=5, size=2, source_layout="h36m17")
    assert (bank["weights"][:, :, get_layout("coco17").index("left_eye")] == 0).all()
    guessed = build_skeleton_bank(path, layout="coco17", clip_len=5, size=2)  # 17 joints guessed as coco17
    assert guessed["weights"].all()


def test_data_side_does_not_import_models():
    src = Path(__file__).resolve().parents[2] / "src" / "finetec" / "data" / "bank.py"
    tree = ast.parse(src.read_text())
    mods = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    mods += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not any("models" in m or m == "torch" for m in mods)
