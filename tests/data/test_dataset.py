"""SkeletonDataset: outputs, per-sample generators, validation errors."""

import copy

import numpy as np
import pytest
import torch

from finetec.data.dataset import SkeletonDataset, synthetic_annotations
from finetec.data.io import AnnotationError, save_annotations
from finetec.data.sample import SampleError
from finetec.data.transforms import default_pipeline


@pytest.fixture(scope="module")
def data():
    return synthetic_annotations(num_classes=3, per_class=(4, 2), seed=1)


def _train_pipe(**kw):
    return default_pipeline("penn13", clip_len=12, num_clips=1, test_mode=False, num_person=1, **kw)


def _test_pipe(**kw):
    return default_pipeline("penn13", clip_len=12, num_clips=3, test_mode=True, num_person=1, **kw)


def test_outputs_from_file(tmp_path, data):
    path = tmp_path / "tiny.pkl"
    save_annotations(data, path)
    ds = SkeletonDataset(path, "train", _train_pipe())
    assert len(ds) == 12 and ds.num_classes == 3 and ds.classes == ["class0", "class1", "class2"]
    assert ds.layout.name == "penn13"
    out = ds[5]
    assert out["keypoint"].dtype == torch.float32 and out["keypoint"].shape == (1, 1, 12, 13, 3)
    assert out["mask"].dtype == torch.bool and out["mask"].shape == (1, 12)
    fd = data["split"]["train"][5]
    label = next(a["label"] for a in data["annotations"] if a["frame_dir"] == fd)
    assert out["label"].dtype == torch.long and int(out["label"]) == label == 1
    assert out["frame_dir"] == fd and int(out["index"]) == 5
    dt = SkeletonDataset(path, "test", _test_pipe(), test_mode=True)
    assert dt[0]["keypoint"].shape == (3, 1, 12, 13, 3)


def test_training_generator_is_seed_epoch_index(data):
    ds = SkeletonDataset(data, "train", _train_pipe(), seed=7)
    a, b = ds[(3, 2)], ds[(3, 2)]
    assert torch.equal(a["keypoint"], b["keypoint"])
    assert not torch.equal(ds[(3, 2)]["keypoint"], ds[(3, 3)]["keypoint"])  # another epoch, another draw
    ds.set_epoch(2)
    assert torch.equal(ds[3]["keypoint"], a["keypoint"])  # integer index uses set_epoch
    expect = np.random.default_rng([7, 2, 3]).random(4)
    assert np.array_equal(ds.rng_for(3, 2).random(4), expect)
    other_seed = SkeletonDataset(data, "train", _train_pipe(), seed=8)
    assert not torch.equal(other_seed[(3, 2)]["keypoint"], a["keypoint"])


def test_eval_generator_depends_on_id_not_position(data):
    pipe = _test_pipe(corruption="moderate")
    ds = SkeletonDataset(data, "test", pipe, test_mode=True, seed=0)
    shuffled = copy.deepcopy(data)
    shuffled["split"]["test"] = shuffled["split"]["test"][::-1]
    ds2 = SkeletonDataset(shuffled, "test", pipe, test_mode=True, seed=0)
    n = len(ds)
    for i in range(n):
        a, b = ds[i], ds2[n - 1 - i]
        assert a["frame_dir"] == b["frame_dir"]
        assert torch.equal(a["keypoint"], b["keypoint"]) and torch.equal(a["mask"], b["mask"])
    assert (~ds[0]["mask"]).any()  # moderate corruption dropped frames


def test_errors_name_file_sample_and_index(tmp_path, data):
    bad = copy.deepcopy(data)
    victim = bad["split"]["train"][2]
    ann = next(a for a in bad["annotations"] if a["frame_dir"] == victim)
    ann["frame_mask"] = np.zeros(ann["total_frames"], dtype=bool)
    path = tmp_path / "bad.pkl"
    save_annotations(bad, path)
    with pytest.raises(SampleError, match=rf"bad.pkl, split 'train' index 2: .*{victim}.*all .* frames are dropped"):
        SkeletonDataset(path, "train", _train_pipe())
    with pytest.raises(AnnotationError, match="no split 'val'"):
        SkeletonDataset(data, "val", _train_pipe())
    with pytest.raises(FileNotFoundError, match="nope.pkl"):
        SkeletonDataset(tmp_path / "nope.pkl", "train", _train_pipe())
    unl = copy.deepcopy(data)
    unl["annotations"][0]["label"] = -1
    with pytest.raises(SampleError, match="has no label"):
        SkeletonDataset(unl, "train", _train_pipe())
    with pytest.raises(AnnotationError, match="layout 'penn13' but 'coco17' was requested"):
        SkeletonDataset(data, "train", _train_pipe(), layout="coco17")


def test_pipeline_must_format(data):
    ds = SkeletonDataset(data, "train", [{"type": "UniformSampleFrames", "clip_len": 8}])
    with pytest.raises(SampleError, match="must end with FormatGCNInput"):
        ds[0]
    with pytest.raises(IndexError):
        SkeletonDataset(data, "train", _train_pipe())[99]


def test_synthetic_is_deterministic():
    a, b = synthetic_annotations(seed=3), synthetic_annotations(seed=3)
    assert all(np.array_equal(x["keypoint"], y["keypoint"]) for x, y in zip(a["annotations"], b["annotations"]))
    assert len(a["split"]["train"]) == 24 and len(a["split"]["test"]) == 12


def test_dataset_skips_invisible_samples_in_training_only():
    import warnings

    import numpy as np
    import pytest

    from finetec.data.dataset import SkeletonDataset, synthetic_annotations
    from finetec.data.io import AnnotationError
    from finetec.data.transforms import default_pipeline

    data = synthetic_annotations(num_classes=2, per_class=(3, 2), layout="penn13", seed=1)
    victim = data["split"]["train"][1]
    for a in data["annotations"]:
        if a["frame_dir"] == victim:
            a["keypoint_score"] = np.zeros_like(a["keypoint_score"])
    pipe = default_pipeline("penn13", clip_len=8, num_clips=1, test_mode=False, num_person=1)
    with pytest.warns(UserWarning, match=f"skipped 1 sample.*{victim}"):
        train = SkeletonDataset(data, "train", pipe)
    assert train.skipped == [victim] and victim not in train.frame_dirs and len(train) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = SkeletonDataset(data, "train", pipe, skip_invisible=False)
        evaluation = SkeletonDataset(data, "train", pipe, test_mode=True)
    assert victim in kept.frame_dirs and victim in evaluation.frame_dirs and evaluation.skipped == []
    for a in data["annotations"]:
        a["keypoint_score"] = np.zeros_like(a["keypoint_score"])
    with pytest.raises(AnnotationError, match="no sample with a visible joint"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SkeletonDataset(data, "train", pipe)
