"""Registry, recognizer contract and input checks (all built-in models, slim width, tiny clips)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from finetec.layouts import get_layout
from finetec.models import Recognizer, create_model, list_models, register_model
from finetec.models import registry as reg

BUILTIN = ["aagcn", "ctrgcn", "stgcn", "stgcnpp"]


def test_list_models_has_the_baselines():
    names = list_models()
    assert set(BUILTIN) <= set(names)
    assert {"posec3d", "posec3d_limb", "sparse_stgcn", "finetec"} <= set(names)
    assert names == sorted(names)


def test_unknown_model_lists_available_names():
    with pytest.raises(KeyError) as e:
        create_model("stgcnn", num_classes=3)
    msg = str(e.value)
    assert "stgcnn" in msg
    for n in BUILTIN:
        assert n in msg


def test_unknown_option_lists_accepted_options():
    with pytest.raises(TypeError) as e:
        create_model("stgcn", num_classes=3, widht="slim")
    assert "widht" in str(e.value) and "width" in str(e.value) and "gcn_adaptive" in str(e.value)


@pytest.mark.parametrize("bad", [0, -1, 2.0, "3", True])
def test_bad_num_classes(bad):
    with pytest.raises(ValueError, match="num_classes"):
        create_model("stgcn", num_classes=bad, width="slim")


def test_bad_in_channels_and_width_and_layout():
    with pytest.raises(ValueError, match="in_channels"):
        create_model("stgcn", num_classes=3, in_channels=0)
    with pytest.raises(ValueError, match="width"):
        create_model("stgcn", num_classes=3, width="tiny")
    with pytest.raises(ValueError, match="unknown layout"):
        create_model("stgcn", num_classes=3, layout="nope17")


@pytest.mark.parametrize("name", BUILTIN)
def test_contract(name):
    model = create_model(name, num_classes=4, layout="coco17", width="slim")
    assert isinstance(model, Recognizer)
    assert model.needs_mask is False and model.returns_aux is False
    # every block exposes gcn and tcn as separate submodules, so later plug-ins can wrap them
    for blk in model.backbone.blocks:
        assert isinstance(blk.gcn, nn.Module) and isinstance(blk.tcn, nn.Module)
    x = torch.randn(2, 1, 8, 17, 3)
    assert model(x).shape == (2, 4)
    feat = model.extract_features(x)
    assert feat.shape == (2, 1, model.backbone.out_channels, 2, 17)
    assert torch.allclose(model.head(feat), model(x), atol=1e-6)


def test_layout_given_as_name_dict_path_or_layout(tmp_path):
    lay = get_layout("penn13")
    d = {"name": "tri", "joints": ["a", "b", "c"], "center": "a", "edges": [["b", "a"], ["c", "b"]]}
    p = tmp_path / "tri.yaml"
    p.write_text("name: tri\njoints: [a, b, c]\ncenter: a\nedges: [[b, a], [c, b]]\n")
    for spec, V in (("penn13", 13), (lay, 13), (d, 3), (str(p), 3)):
        model = create_model("stgcn", num_classes=2, layout=spec, width="slim")
        assert model(torch.randn(1, 1, 4, V, 3)).shape == (1, 2)


def test_wrong_input_is_reported_with_shape():
    model = create_model("stgcn", num_classes=3, layout="coco17", width="slim")
    with pytest.raises(ValueError, match=r"V=17 joints and C=3 channels.*\(1, 1, 8, 13, 3\)"):
        model(torch.randn(1, 1, 8, 13, 3))
    with pytest.raises(ValueError, match=r"\[N, M, T, V, C\]"):
        model(torch.randn(1, 8, 17, 3))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(1, 1, 8, 17, 3, dtype=torch.int64))


def test_register_custom_model_and_duplicates():
    @register_model("tiny_test_model")
    def tiny(num_classes, layout, in_channels=3, hidden=4):
        return nn.Sequential(nn.Flatten(1), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    try:
        assert "tiny_test_model" in list_models()
        m = create_model("tiny_test_model", num_classes=5, layout="penn13", hidden=7)
        assert m(torch.randn(2, 1, 3, 13, 3)).shape == (2, 5)
        with pytest.raises(TypeError, match="hidden"):
            create_model("tiny_test_model", num_classes=5, hiden=7)
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny_test_model")(lambda num_classes, layout, in_channels: None)
        register_model("tiny_test_model", overwrite=True)(tiny)  # explicit replacement is allowed
        with pytest.raises(ValueError, match="already registered"):
            register_model("stgcn")(tiny)
    finally:
        reg._MODELS.pop("tiny_test_model", None)
    assert "tiny_test_model" not in list_models()
