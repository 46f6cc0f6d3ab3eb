"""OpenPose JSON folders and COCO keypoint JSON -> per-frame COCO-17 candidates -> PYSKL annotation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finetec.pose.extract import annotation_from_poses
from finetec.pose.importers import PoseImportError, import_coco_keypoints, import_openpose

# COCO-17 joint -> its index in BODY_25 and in OpenPose COCO-18 (hand-written from the OpenPose docs)
COCO_FROM_BODY25 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
COCO_FROM_COCO18 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def op_person(V: int, shift: float = 0.0, zero: int | None = None) -> list[float]:
    j = np.arange(V, dtype=float)
    arr = np.stack([j * 10 + shift, j * 10 + 1 + shift, 0.5 + j / 100], 1)
    if zero is not None:
        arr[zero] = 0.0
    return arr.reshape(-1).tolist()


def write_op(folder, t, people):
    folder.mkdir(exist_ok=True)
    (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(
        {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p} for p in people]}))


@pytest.mark.parametrize("V,table", [(25, COCO_FROM_BODY25), (18, COCO_FROM_COCO18)])
def test_openpose_folder_maps_to_coco17(tmp_path, V, table):
    d = tmp_path / "op"
    write_op(d, 0, [op_person(V)])
    write_op(d, 1, [op_person(V, 5.0, zero=table[9])])  # left wrist not found
    write_op(d, 2, [])
    write_op(d, 4, [op_person(V), op_person(V, 300.0)])  # frame 3 has no file
    poses = import_openpose(d, img_shape=(480, 640))
    assert poses.total_frames == 5 and [len(f) for f in poses.frames] == [1, 1, 0, 0, 2]
    p0 = poses.frames[0][0]
    src = np.array(table, dtype=float)
    np.testing.assert_allclose(p0.keypoints, np.stack([src * 10, src * 10 + 1], 1))
    np.testing.assert_allclose(p0.scores, 0.5 + src / 100, rtol=1e-6)
    p1 = poses.frames[1][0]
    assert p1.scores[9] == 0 and (p1.keypoints[9] == 0).all() and p1.scores[10] > 0
    assert poses.meta["openpose_model"] == ("BODY_25" if V == 25 else "COCO-18")
    assert import_openpose(d, total_frames=7).total_frames == 7


def test_openpose_errors_name_the_file(tmp_path):
    d = tmp_path / "op"
    write_op(d, 0, [[1.0, 2.0, 3.0] * 10])
    with pytest.raises(PoseImportError, match=r"clip_000000000000_keypoints\.json: people\[0\]: 30 keypoint"):
        import_openpose(d)
    with pytest.raises(PoseImportError, match="no such folder"):
        import_openpose(tmp_path / "none")
    (d / "clip_000000000000_keypoints.json").write_text("{broken")
    with pytest.raises(PoseImportError, match="not readable JSON"):
        import_openpose(d)
    write_op(d, 0, [op_person(25)])
    with pytest.raises(PoseImportError, match="beyond total_frames=0"):
        import_openpose(d, total_frames=0)


def coco_kps(x0: float, v: float = 0.8) -> list[float]:
    j = np.arange(17, dtype=float)
    return np.stack([x0 + j, 100 + j, np.full(17, v)], 1).reshape(-1).tolist()


def test_coco_results_list(tmp_path):
    f = tmp_path / "res.json"
    f.write_text(json.dumps([
        {"image_id": 10, "category_id": 1, "keypoints": coco_kps(0), "score": 0.95},
        {"image_id": 10, "category_id": 1, "keypoints": coco_kps(500, 0.3), "score": 0.4},
        {"image_id": 12, "category_id": 1, "keypoints": coco_kps(3)},
    ]))
    poses = import_coco_keypoints(f, image_id_offset=10, total_frames=4)
    assert [len(x) for x in poses.frames] == [2, 0, 1, 0]
    a, b = poses.frames[0]
    assert a.score == pytest.approx(0.95) and b.score == pytest.approx(0.4)
    np.testing.assert_allclose(a.keypoints[:, 0], np.arange(17))
    np.testing.assert_allclose(b.scores, 0.3, rtol=1e-6)
    assert poses.frames[2][0].score == pytest.approx(0.8)  # no 'score': mean joint score
    with pytest.raises(PoseImportError, match="entry 0: image_id 10 < image_id_offset 13"):
        import_coco_keypoints(f, image_id_offset=13)
    f.write_text(json.dumps([{"image_id": 0, "keypoints": [1, 2, 3]}]))
    with pytest.raises(PoseImportError, match=r"res\.json: entry 0: 3 keypoint numbers"):
        import_coco_keypoints(f)


def test_coco_dataset_dict_uses_images_and_visibility(tmp_path):
    f = tmp_path / "gt.json"
    kps = coco_kps(20, v=2)
    kps[2] = 0  # nose not labelled
    f.write_text(json.dumps({
        "images": [{"id": 7, "frame_id": 1, "height": 480, "width": 640},
                   {"id": 5, "frame_id": 0, "height": 480, "width": 640},
                   {"id": 9, "frame_id": 2, "height": 480, "width": 640}],
        "annotations": [{"image_id": 7, "category_id": 1, "keypoints": kps}]}))
    poses = import_coco_keypoints(f)
    assert poses.img_shape == (480, 640) and [len(x) for x in poses.frames] == [0, 1, 0]
    p = poses.frames[1][0]
    assert p.scores[0] == 0 and (p.scores[1:] == 1).all()


def test_annotation_from_imported_poses(tmp_path):
    f = tmp_path / "res.json"
    items = [{"image_id": t, "keypoints": coco_kps(10 + t)} for t in (0, 1, 3)]
    items += [{"image_id": t, "keypoints": coco_kps(300 + t)} for t in (0, 1, 2, 3)]  # a second person
    f.write_text(json.dumps(items))
    poses = import_coco_keypoints(f, img_shape=(480, 640))
    ann = annotation_from_poses(poses, frame_dir="clip", label=2, box=(5, 95, 35, 120))
    assert ann["keypoint"].shape == (1, 4, 17, 2) and ann["keypoint_score"].shape == (1, 4, 17)
    np.testing.assert_array_equal(ann["frame_mask"], [True, True, False, True])  # person 1 absent in frame 2
    np.testing.assert_allclose(ann["keypoint"][0, 3, :, 0], 13 + np.arange(17))
    assert (ann["keypoint"][0, 2] == 0).all() and (ann["keypoint_score"][0, 2] == 0).all()
    assert ann["img_shape"] == (480, 640) and ann["total_frames"] == 4 and ann["label"] == 2
    with pytest.raises(ValueError, match="img_shape"):
        annotation_from_poses(import_coco_keypoints(f), frame_dir="clip")
