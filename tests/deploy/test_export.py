"""ONNX / TorchScript export (finetec.deploy): parity with PyTorch for every recognizer, SF-Head, tracing fixes,
model cards and the `finetec export` command."""

import argparse
import inspect
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from finetec.deploy import cli as export_cli
from finetec.deploy import export as ex
from finetec.engine.checkpoint import export_model
from finetec.engine.config import load_config
from finetec.layouts import get_layout
from finetec.models import create_model, get_builder, list_models
from finetec.models.backbones import common
from finetec.models.backbones.common import conv2d, plain_ops

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "tiny" / "tiny.yaml"
T = 8
SHORT = dict(num_stages=3, inflate_stages=(3,), down_stages=(3,))  # slim widths, 3 blocks (all residual kinds)


def _small(name, layout="coco17", num_classes=5, seed=0, **kw):
    """A slim, short model of any registered recognizer (FineTec with a random skeleton bank)."""
    params = inspect.signature(get_builder(name)).parameters
    opts = dict(width="slim")
    if "num_stages" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        opts.update(SHORT)
    if "stage_blocks" in params:
        opts["stage_blocks"] = (1, 1, 1)
    if name == "finetec":
        opts = dict(clip_len=T, backbone="stgcn", width="slim", backbone_kw=SHORT, fusion_dim=8,
                    completion_kw={"dim": 32, "depth": 1})
    opts.update(kw)
    torch.manual_seed(seed)
    m = create_model(name, num_classes, layout, 3, **opts)
    if name == "finetec":
        V = get_layout(layout).num_joints
        K = m.completion.bank.sequences.shape[0]
        g = torch.Generator().manual_seed(seed)
        m.completion.bank.load(torch.randn(K, T, V, 2, generator=g) * 0.3, torch.ones(K, T, V))
    return m


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


# ---------------------------------------------------------------------------------------------- plain_ops
@pytest.mark.skipif(not common._MKLDNN, reason="oneDNN not available in this build")
def test_plain_ops_routes_conv2d_to_f_conv2d():
    x = torch.randn(2, 4, 6, 5).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(3, 4, 3, 1), torch.randn(3)

    def kinds():
        with torch.no_grad():
            g = torch.jit.trace(lambda x: conv2d(x, w, b, padding=(1, 0)), (x,), check_trace=False).graph
        return {n.kind() for n in g.nodes()}

    assert "aten::mkldnn_convolution" in kinds()
    with plain_ops():
        with plain_ops(False):
            assert "aten::mkldnn_convolution" in kinds()
        k = kinds()
        assert "aten::_convolution" in k and not any("mkldnn" in s for s in k)
    assert "aten::mkldnn_convolution" in kinds()  # restored on exit
    with torch.no_grad(), plain_ops():
        assert torch.allclose(conv2d(x, w, b, padding=(1, 0)), torch.nn.functional.conv2d(x, w, b, padding=(1, 0)),
                              atol=1e-5)


# ---------------------------------------------------------------------------------------------- tracing fixes
def test_cummax_cummin_decomposition_matches_torch_with_ties():
    g = torch.Generator().manual_seed(0)
    for x in (torch.randint(0, 4, (3, 9, 2), generator=g), torch.randint(0, 3, (5, 7), generator=g).float()):
        for dim in range(-x.dim(), x.dim()):
            for largest, ref in ((True, torch.cummax), (False, torch.cummin)):
                got, want = ex._cum_extreme(x, dim, largest), ref(x, dim)
                assert torch.equal(got.values, want.values) and torch.equal(got.indices, want.indices)


class _TrickyOps(torch.nn.Module):
    """Ops the tracer or the ONNX exporter cannot record as written (bool Scalars, stable sorts, cummax, trunc,
    where on bool data)."""

    def forward(self, x):
        B, L = x.shape
        key = (x * 2).round()  # many ties
        order = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :3]
        top = torch.zeros(B, L, dtype=torch.bool).scatter(1, order, True)
        low = (x < 0).to(torch.uint8)
        keep = torch.argsort(low, dim=1, stable=True)
        flags = torch.where(x > 0.5, torch.ones_like(top), top)  # where on bool data
        filled = (x > 0).masked_fill(x < -1, True)
        cm = torch.where(x > 0, torch.arange(L)[None].expand(B, L), 0).cummax(1).values
        t = torch.trunc(x * 3)
        return torch.cat([top.float(), keep.float(), flags.float(), filled.float(), cm.float(), t], 1)


def test_tricky_ops_export_to_onnx_and_torchscript(tmp_path):
    m = _TrickyOps()
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(1))
    x2 = torch.randn(6, 10, generator=torch.Generator().manual_seed(2))
    with pytest.raises(Exception):  # the tracer itself fails on a bool Scalar without the fixes
        torch.jit.trace(m, (x,), check_trace=False)
    with ex.exportable_ops():
        ts = torch.jit.trace(m, (x,), check_trace=False)
    assert torch.equal(ts(x2), m(x2))
    path = tmp_path / "t.onnx"
    with ex.exportable_ops(onnx_opset=17):
        torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "b"}}, opset_version=17)
    proto = onnx.load(str(path))
    assert ex._bool_where_as_logic(proto) >= 1
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x2.numpy()})[0]
    np.testing.assert_array_equal(got, m(x2).numpy())


# ---------------------------------------------------------------------------------------------- parity
SKELETON_MODELS = [n for n in list_models() if n != "tsm"]  # tsm takes video frames: tested below


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_rgb_model_exports_with_dynamic_batch_and_time(fmt, tmp_path):
    torch.manual_seed(0)
    m = create_model("tsm", 5, "coco17", 3, width="slim")
    path = tmp_path / f"tsm.{fmt}"
    export = ex.export_onnx if fmt == "onnx" else ex.export_torchscript
    spec = export(m, path, clip_len=8, image_size=32)
    assert spec["kind"] == "rgb" and spec["inputs"][0]["shape"] == ["batch", "time", 3, 32, 32]
    res = ex.check_parity(m, path, clip_len=8, image_size=32, batches=(1, 3), times=(8, 5))
    assert res["ok"] and res["max_abs_diff"] < 1e-4, res
    if fmt == "onnx":
        assert _dims(onnx.load(str(path)).graph.input[0]) == ["batch", "time", 3, 32, 32]


@pytest.mark.parametrize("name", SKELETON_MODELS)
def test_onnx_parity_every_recognizer(name, tmp_path):
    layout = "penn13" if SKELETON_MODELS.index(name) % 2 else "coco17"
    m = _small(name, layout)
    path = tmp_path / f"{name}.onnx"
    spec = ex.export_onnx(m, path, clip_len=T, num_person=2)
    fixed = name == "finetec"
    res = ex.check_parity(m, path, clip_len=T, num_person=2, batches=(3,), times=(T if fixed else T + 3,))
    assert res["ok"] and res["max_abs_diff"] < 1e-4, res  # batch 3 and T + 3: both differ from the trace's
    V = get_layout(layout).num_joints
    proto = onnx.load(str(path))
    ins = {i.name: i for i in proto.graph.input}
    assert _dims(ins["x"]) == ["batch", 2, T if fixed else "time", V, 3]
    assert _dims(proto.graph.output[0]) == ["batch", 5]
    if fixed:
        assert _dims(ins["mask"]) == ["batch", T]
        assert ins["mask"].type.tensor_type.elem_type == onnx.TensorProto.BOOL
    else:
        assert set(ins) == {"x"}
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["finetec"])
    assert meta["inputs"] == spec["inputs"] and meta["outputs"][0]["shape"] == ["batch", 5]


@pytest.mark.parametrize("name", ["stgcn", "posec3d", "finetec"])
def test_torchscript_parity(name, tmp_path):
    m = _small(name, "penn13")
    path = tmp_path / f"{name}.pt"
    ex.export_torchscript(m, path, clip_len=T, num_person=1)
    res = ex.check_parity(m, path, clip_len=T, num_person=1, batches=(3,))
    assert res["format"] == "torchscript" and res["ok"] and res["max_abs_diff"] < 1e-4, res
    ts = torch.jit.load(str(path))
    assert not any("mkldnn" in n.kind() for n in ts.inlined_graph.nodes())
    extra = {"finetec.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["finetec.json"])["num_person"] == 1


def _initializer_elements(path):
    return sum(int(np.prod(i.dims)) for i in onnx.load(str(path)).graph.initializer)


def test_sfhead_auxiliary_exports_exactly_the_backbone(tmp_path):
    aux = _small("stgcn", "penn13", seed=3, sfhead={"mode": "auxiliary", "groups": 2})
    bare = _small("stgcn", "penn13", seed=3)
    dep = ex.deployable(aux)
    n_bare = sum(p.numel() for p in bare.parameters())
    assert sum(p.numel() for p in aux.parameters()) > n_bare  # SF-Head's own parameters exist in training
    assert sum(p.numel() for p in dep.parameters()) == n_bare
    ex.export_onnx(aux, tmp_path / "aux.onnx", clip_len=T)
    ex.export_onnx(bare, tmp_path / "bare.onnx", clip_len=T)
    assert _initializer_elements(tmp_path / "aux.onnx") == _initializer_elements(tmp_path / "bare.onnx")
    assert ex.check_parity(aux, tmp_path / "aux.onnx", clip_len=T, batches=(2,), times=(T,))["ok"]


def test_sfhead_inline_keeps_the_head_and_matches(tmp_path):
    inline = _small("stgcn", "penn13", seed=3, sfhead={"mode": "inline", "groups": 2, "blocks": "last"})
    bare = _small("stgcn", "penn13", seed=3)
    ex.export_onnx(inline, tmp_path / "in.onnx", clip_len=T)
    ex.export_onnx(bare, tmp_path / "bare.onnx", clip_len=T)
    assert _initializer_elements(tmp_path / "in.onnx") > _initializer_elements(tmp_path / "bare.onnx")
    res = ex.check_parity(inline, tmp_path / "in.onnx", clip_len=T, batches=(2,), times=(T,))
    assert res["ok"] and res["max_abs_diff"] < 1e-4


# ---------------------------------------------------------------------------------------------- inputs, errors
def test_example_inputs_follow_the_spec():
    m = ex.deployable(_small("finetec", "penn13"))
    with pytest.raises(ex.ExportError, match=f"finetec: T is fixed to the model's clip_len={T}, got clip_len=99"):
        ex.input_spec(m, clip_len=99, num_person=2)
    spec = ex.input_spec(m, clip_len=T, num_person=2)
    assert spec["clip_len"] == T and not spec["dynamic_time"]
    assert [i["name"] for i in spec["inputs"]] == ["x", "mask"]
    x, mask = ex.example_inputs(spec, batch=4, seed=3)
    assert x.shape == (4, 2, T, 13, 3) and mask.shape == (4, T) and mask.dtype == torch.bool
    n = mask.sum(1)
    assert torch.equal(mask, torch.arange(T)[None] < n[:, None]) and (n >= 1).all()  # a valid prefix
    assert (x[~mask[:, None, :].expand(4, 2, T)] == 0).all()
    assert ((x[..., 2] == 0) | (x[..., 2] >= 0.05)).all() and (x[..., :2].abs() <= 1).all()
    assert all(torch.equal(a, b) for a, b in zip(ex.example_inputs(spec, batch=4, seed=3), (x, mask)))
    spec2 = ex.input_spec(ex.deployable(_small("stgcn")), clip_len=12, num_person=1)
    assert spec2["dynamic_time"] and spec2["inputs"][0]["shape"] == ["batch", 1, "time", 17, 3]


def test_bad_export_requests_raise_clear_errors(tmp_path):
    m = _small("stgcn")
    with pytest.raises(ex.ExportError, match="opset must be an int in 11..20"):
        ex.export_onnx(m, tmp_path / "a.onnx", clip_len=T, opset=9)
    with pytest.raises(ex.ExportError, match="clip_len must be a positive int"):
        ex.export_onnx(m, tmp_path / "a.onnx", clip_len=0)
    empty = create_model("finetec", 5, "penn13", 3, clip_len=T, backbone="stgcn", width="slim", backbone_kw=SHORT,
                         completion_kw={"dim": 32, "depth": 1})
    with pytest.raises(ex.ExportError, match="finetec: the model fails on an example input.*bank is empty"):
        ex.export_torchscript(empty, tmp_path / "b.pt", clip_len=T)
    with pytest.raises(ex.ExportError, match="exported model not found"):
        ex.check_parity(m, tmp_path / "missing.onnx", clip_len=T)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- checkpoints, CLI
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An exported model.pth of a slim ST-GCN on penn13 with the run's config and test metrics beside it."""
    root = tmp_path_factory.mktemp("run")
    work = root / "work"
    cfg = load_config(TINY, [f"data.ann_file={root / 'tiny.pkl'}", f"trainer.work_dir={work}", "data.clip_len=8",
                             "data.num_person=1", "data.corruption.train=[minor, severe]"])
    cfg["model"] = {"name": "stgcn", "width": "slim", "dropout": 0.0, **SHORT}
    model = _small("stgcn", "penn13", num_classes=3, seed=7)
    classes = ["walk", "run", "jump"]
    meta = {"num_classes": 3, "layout": "penn13", "in_channels": 3, "classes": classes}
    export_model(model, meta, cfg, work / "model.pth")
    (work / "config.yaml").write_text("placeholder\n")
    metrics = {"clean": {"top1": 0.5, "top5": 1.0, "mean_class_accuracy": 0.25, "num_samples": 9}}
    (work / "test").mkdir()
    (work / "test" / "metrics.json").write_text(json.dumps(metrics))
    lightning = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                 "hyper_parameters": {**meta, "config": cfg}}
    (work / "checkpoints").mkdir()
    torch.save(lightning, work / "checkpoints" / "last.ckpt")
    return work, cfg, metrics, classes


def _run_cli(argv):
    p = argparse.ArgumentParser(prog="finetec")
    export_cli.add_commands(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_export_onnx_writes_model_and_card(run_dir, tmp_path, capsys):
    work, cfg, metrics, classes = run_dir
    out = tmp_path / "deploy" / "stgcn.onnx"
    assert _run_cli(["export", "--ckpt", str(work / "model.pth"), "--format", "onnx", "--out", str(out),
                     "--opset", "17"]) == 0
    printed = capsys.readouterr().out
    assert f"exported onnx: {out}" in printed and "parity with PyTorch" in printed
    md, js = ex.card_paths(out)
    assert md.name == "stgcn.onnx.card.md" and js.name == "stgcn.onnx.card.json" and md.is_file()
    card = json.loads(js.read_text())
    assert card["model"]["name"] == "stgcn" and card["model"]["config"]["num_stages"] == 3
    assert card["layout"] == "penn13" and card["classes"] == classes and card["num_classes"] == 3
    assert [i["name"] for i in card["inputs"]] == ["x"]
    assert card["inputs"][0]["shape"] == ["batch", 1, "time", 13, 3]
    assert card["outputs"][0]["shape"] == ["batch", 3]
    assert card["data"] == json.loads(json.dumps(cfg["data"]))
    assert card["protocol"]["train_corruption"] == ["minor", "severe"]
    assert card["protocol"]["test_levels"] == ["clean", "severe"]
    assert card["metrics"] == metrics
    assert card["train_command"] == f"finetec train {work / 'model.yaml'}"
    assert card["export"]["command"].startswith(f"finetec export --ckpt {work / 'model.pth'} --format onnx")
    assert card["export"]["opset"] == 17 and card["export"]["parity"]["ok"]
    assert card["export"]["parity"]["max_abs_diff"] < 1e-4 and len(card["export"]["sha256"]) == 64
    assert card["versions"]["torch"] == torch.__version__ and card["versions"]["onnx"] == onnx.__version__
    assert card["date"][:2] == "20"
    text = md.read_text()
    for s in ("# Model card: stgcn (onnx)", "| `x` | [batch, 1, time, 13, 3] | float32", "0: walk, 1: run, 2: jump",
              "| clean | 50.00% | 100.00% | 25.00% | 9 |", "finetec train", "finetec export", "ann_file:"):
        assert s in text, s
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((2, 1, 11, 13, 3), np.float32)})[0].shape == (2, 3)


def test_cli_export_torchscript_from_lightning_ckpt(run_dir, capsys):
    work, _, metrics, _ = run_dir
    ckpt = work / "checkpoints" / "last.ckpt"
    assert _run_cli(["export", "--ckpt", str(ckpt), "--format", "torchscript"]) == 0
    out = work / "checkpoints" / "last.torchscript.pt"
    assert out.is_file()
    card = json.loads(ex.card_paths(out)[1].read_text())
    assert card["export"]["format"] == "torchscript" and card["export"]["opset"] is None
    assert card["metrics"] == metrics and card["checkpoint"]["path"] == str(ckpt)
    assert card["train_command"] == f"finetec train {work / 'config.yaml'}"
    ts = torch.jit.load(str(out))
    assert ts(torch.zeros(1, 1, 8, 13, 3)).shape == (1, 3)


def test_cli_bad_ckpt_and_options_exit_2(run_dir, tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    assert _run_cli(["export", "--ckpt", str(missing)]) == 2
    assert f"finetec: error: checkpoint not found: {missing}" in capsys.readouterr().err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    assert _run_cli(["export", "--ckpt", str(junk)]) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err
    assert _run_cli(["export", "--ckpt", str(run_dir[0] / "model.pth"), "--format", "torchscript",
                     "--opset", "17", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--opset applies to --format onnx only" in capsys.readouterr().err
    completion = tmp_path / "completion.pth"
    export_model(torch.nn.Linear(2, 2), {"task": "completion", "layout": "penn13"}, {"task": "completion"},
                 completion)
    assert _run_cli(["export", "--ckpt", str(completion)]) == 2
    assert "a completion checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run_cli(["export", "--ckpt", str(completion), "--format", "tflite"])
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("x.pt*"))


def test_cli_parity_failure_exits_1_and_removes_the_export(run_dir, tmp_path, monkeypatch, capsys):
    def bad_parity(*a, **k):
        return {"format": "onnx", "atol": 1e-4, "max_abs_diff": 0.5, "ok": False,
                "cases": [{"batch": 1, "time": 8, "max_abs_diff": 0.5}]}

    monkeypatch.setattr(ex, "check_parity", bad_parity)
    out = tmp_path / "m.onnx"
    assert _run_cli(["export", "--ckpt", str(run_dir[0] / "model.pth"), "--out", str(out)]) == 1
    assert "differ from PyTorch by 0.5 > 0.0001" in capsys.readouterr().err
    assert not out.exists() and not ex.card_paths(out)[1].exists()
