"""Config loading: defaults, _base_ inheritance, overrides, validation."""

from pathlib import Path

import pytest
import yaml

from finetec.engine.config import DEFAULTS, ConfigError, apply_overrides, dump_config, load_config, merge

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else yaml.safe_dump(obj))
    return path


def test_defaults_without_file():
    cfg = load_config()
    assert cfg["optim"] == {**DEFAULTS["optim"]}
    assert cfg["optim"]["lr"] == 0.1 and cfg["optim"]["nesterov"] is True and cfg["optim"]["weight_decay"] == 5e-4
    assert cfg["trainer"]["work_dir"] == str(Path("work_dirs") / "default")


def test_base_chain_relative_list_and_delete(tmp_path):
    _write(tmp_path / "base" / "a.yaml", {"data": {"clip_len": 50, "batch_size": 8}, "model": {"name": "stgcn",
                                                                                              "extra": 1}})
    _write(tmp_path / "base" / "b.yaml", {"_base_": "a.yaml", "data": {"batch_size": 32}})
    _write(tmp_path / "other.yaml", {"optim": {"lr": 0.05}})
    cfg_path = _write(tmp_path / "exp" / "run.yaml", {
        "_base_": ["../base/b.yaml", "../other.yaml"],
        "model": {"_delete_": True, "name": "ctrgcn"},
        "data": {"feats": ["b"]},
    })
    cfg = load_config(cfg_path)
    assert cfg["data"]["clip_len"] == 50  # from a, through b
    assert cfg["data"]["batch_size"] == 32  # b overrides a
    assert cfg["optim"]["lr"] == 0.05  # second base
    assert cfg["data"]["feats"] == ["b"]
    assert "extra" not in cfg["model"] and cfg["model"]["name"] == "ctrgcn"  # _delete_ dropped inherited keys
    assert cfg["model"]["width"] == "standard"  # schema defaults still fill in
    assert cfg["trainer"]["work_dir"] == str(Path("work_dirs") / "exp" / "run")


def test_overrides_parsed_with_yaml(tmp_path):
    cfg = load_config(None, ["optim.lr=0.05", "model.name=ctrgcn", "data.corruption.train=minor",
                             "data.feats=[j, b]", "trainer.progress_bar=false", "model.new_kw=3",
                             "data.layout=null"])
    assert cfg["optim"]["lr"] == 0.05 and isinstance(cfg["optim"]["lr"], float)
    assert cfg["model"]["name"] == "ctrgcn" and cfg["model"]["new_kw"] == 3  # model keys are free
    assert cfg["data"]["corruption"]["train"] == "minor"
    assert cfg["data"]["feats"] == ["j", "b"]
    assert cfg["trainer"]["progress_bar"] is False
    assert cfg["data"]["layout"] is None


@pytest.mark.parametrize(
    "override, match",
    [
        ("optim.lrr=0.1", "unknown key 'optim.lrr'"),
        ("optimizer.lr=0.1", "unknown key 'optimizer'"),
        ("optim.lr", "not of the form"),
        ("data.batch_size=0", "data.batch_size must be a positive int"),
        ("data.corruption.test=awful", "unknown corruption preset"),
        ("optim.epochs=2.5", "optim.epochs must be a positive int"),
        ("optim.lr.x=1", "is not a mapping"),
        ("data.feats=[j, x]", "data.feats must be"),
        ("data.norm=pixels", "data.norm must be"),
        ("trainer.precision=bf16", "trainer.precision must be"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = _write(tmp_path / "bad.yaml", "data: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)
    unk = _write(tmp_path / "unk.yaml", {"data": {"bach_size": 3}})
    with pytest.raises(ConfigError, match=r"unk.yaml: unknown key 'data.bach_size'"):
        load_config(unk)
    a = _write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    _write(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="_base_ cycle"):
        load_config(a)
    missing_base = _write(tmp_path / "m.yaml", {"_base_": "gone.yaml"})
    with pytest.raises(ConfigError, match="gone.yaml.*base of"):
        load_config(missing_base)


def test_merge_does_not_mutate():
    a = {"optim": {"lr": 1, "z": [1]}}
    b = {"optim": {"lr": 2}}
    out = merge(a, b)
    assert out == {"optim": {"lr": 2, "z": [1]}} and a == {"optim": {"lr": 1, "z": [1]}}
    out2 = apply_overrides(a, ["optim.lr=5"])
    assert out2["optim"]["lr"] == 5 and a["optim"]["lr"] == 1


def test_dump_roundtrip(tmp_path):
    cfg = load_config(None, ["optim.lr=0.02"])
    p = _write(tmp_path / "dump.yaml", dump_config(cfg))
    assert load_config(p) == cfg


@pytest.mark.parametrize("rel", sorted(str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml")
                                       if "_base_" not in p.parts))
def test_shipped_configs_load(rel):
    cfg = load_config(REPO / "configs" / rel)
    assert cfg["model"]["name"]
    if rel.startswith("florence3d"):
        assert cfg["data"]["layout"] == "coco17" and cfg["data"]["ann_file"].endswith("florence3d_coco17.pkl")
    elif rel.startswith("multimodal"):  # Florence re-split with a validation actor
        assert cfg["data"]["layout"] == "coco17" and cfg["data"]["ann_file"].endswith("florence3d_coco17_val.pkl")
        assert cfg["test"]["levels"] == ["clean"]
        assert (cfg["task"] == "rgb") == (cfg["model"]["name"] == "tsm")
    elif not rel.startswith("tiny"):
        assert cfg["data"]["layout"] == "penn13" and cfg["data"]["clip_len"] == 48 and cfg["data"]["batch_size"] == 16
