"""Export of any registered recognizer to ONNX or TorchScript, parity checks against PyTorch, model cards.

What is exported is the *deployable* model (:func:`deployable`): an SF-Head recognizer is replaced by its
``inference_model()`` (``auxiliary`` mode: the bare backbone recognizer, ``inline``: with SF-Head), and a model that
returns ``(logits, aux)`` (FineTec) is wrapped so that it returns the logits only. Inputs and output:

* ``x``: float32 ``[N, M, T, V, C]`` (PYSKL order; 2D: ``x, y`` normalised to [-1, 1] and the score, missing joints
  0 with score 0);
* ``mask``: bool ``[N, T]``, the valid frames -- only for models with ``needs_mask`` (FineTec), as a second input;
* ``logits``: float32 ``[N, num_classes]`` (no softmax).

The graph is recorded by tracing (:func:`exportable_ops`): the oneDNN-only convolutions of the backbones are
replaced by ``F.conv2d`` (:func:`finetec.models.backbones.common.plain_ops`); ``fuse_for_inference`` is not used.

Choices:

* ONNX goes through PyTorch's TorchScript-based exporter (``dynamo=False``; the dynamo exporter needs
  ``onnxscript``, which the project does not install); default opset 17.
* N is dynamic. T is dynamic unless the model has a ``clip_len`` attribute (FineTec: its completion networks are
  built for ``clip_len``), then it is fixed to it (another T is an error). M is fixed to the config's
  ``data.num_person`` (PYSKL's ``'MVC'`` data BN needs it).
* Tracing fixes (:func:`exportable_ops`), each an equal computation, active only while tracing: a Python ``bool``
  given as an op's Scalar value (``scatter(dim, index, True)``, ``masked_fill(m, True)``, ...) is passed as a
  tensor (torch 2.13's tracer cannot record bool Scalars); for ONNX also ``cummax``/``cummin`` are computed from a
  ``[T, T]`` triangle, ``contiguous(memory_format=...)`` drops the memory format, ``Where`` on bool data becomes
  ``And``/``Or``/``Not`` (onnxruntime has no bool ``Where``), and ONNX symbolics are added for ``aten::sort`` /
  ``argsort`` with ``stable=True`` (``TopK``, whose ties keep the lower index first: stable) and ``aten::trunc``
  (``sign(x) * floor(|x|)``). These symbolics stay registered after an export (the exporter cannot unregister
  an op that has no built-in symbolic).
* Parity (:func:`check_parity`) compares the exported model with the PyTorch model (its ordinary eval path, oneDNN
  included) on seeded random inputs at batch sizes 1 and 3, and, when T is dynamic, also at ``T + 3``; the
  tolerance is an absolute 1e-4 on the logits. :func:`export_checkpoint` removes an export that fails it.
* The model card is written next to the exported file as ``<file>.card.json`` and ``<file>.card.md``; the
  training command is ``finetec train`` on the resolved config the run saved (``<ckpt stem>.yaml`` next to an
  exported ``model.pth``, else ``<work_dir>/config.yaml``); metrics come from the run's ``test/metrics.json``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from ..utils.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "FORMATS",
    "DEFAULT_OPSET",
    "ExportError",
    "ParityError",
    "LogitsOnly",
    "deployable",
    "input_spec",
    "example_inputs",
    "exportable_ops",
    "export_onnx",
    "export_torchscript",
    "check_parity",
    "load_recognizer",
    "build_model_card",
    "write_model_card",
    "card_paths",
    "default_output",
    "export_checkpoint",
]

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 11, 20  # TopK with `largest` needs 11; 20 is the TorchScript-based exporter's last
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
CARD_FORMAT = "finetec-model-card-v1"


class ExportError(ValueError):
    """A model, checkpoint or option cannot be exported as asked; the message says what and where."""


class ParityError(RuntimeError):
    """The exported model's outputs differ from PyTorch's by more than the tolerance."""


# ---------------------------------------------------------------------------------------------- the model
class LogitsOnly(nn.Module):
    """``(x[, mask]) -> logits`` of a model that returns ``(logits, aux)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.needs_mask = bool(getattr(model, "needs_mask", False))
        for attr in ("num_classes", "clip_len", "name"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(x, mask=mask) if self.needs_mask else self.model(x)
        return out[0]


def deployable(model: nn.Module) -> nn.Module:
    """The model to export, in eval mode: ``inference_model()`` of an SF-Head recognizer (a copy), wrapped in
    :class:`LogitsOnly` when it returns ``(logits, aux)``. Puts ``model`` itself in eval mode."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"deployable: expected an nn.Module, got {type(model).__name__}")
    model.eval()
    m = model.inference_model() if callable(getattr(model, "inference_model", None)) else model
    if getattr(m, "returns_aux", False):
        m = LogitsOnly(m)
    return m.eval()


def _model_dims(model: nn.Module) -> tuple[int, int]:
    """``(V, C)`` the model was built for."""
    for owner in (model, getattr(model, "model", None), getattr(model, "backbone", None)):
        if owner is not None and isinstance(getattr(owner, "num_joints", None), int) \
                and isinstance(getattr(owner, "in_channels", None), int):
            return owner.num_joints, owner.in_channels
    for m in model.modules():
        bb = getattr(m, "backbone", None)
        if isinstance(getattr(bb, "num_joints", None), int) and isinstance(getattr(bb, "in_channels", None), int):
            return bb.num_joints, bb.in_channels
    raise ExportError(f"{type(model).__name__}: cannot tell its joints and channels (no num_joints / in_channels "
                      "on the model or its backbone)")


def _fixed_clip_len(model: nn.Module) -> int | None:
    for m in (model, getattr(model, "model", None)):
        t = getattr(m, "clip_len", None) if m is not None else None
        if isinstance(t, int):
            return t
    return None


def input_spec(model: nn.Module, *, clip_len: int, num_person: int = 2, image_size: int = 112) -> dict[str, Any]:
    """Names, shapes (``'batch'`` / ``'time'`` for dynamic dims), dtypes of the deployable model's inputs/outputs.

    ``model`` is a deployable model (:func:`deployable`); ``clip_len`` is T of the traced input (a model with a
    ``clip_len`` attribute accepts only that T). RGB models (``input_kind = 'rgb'``) take frames
    ``[N, T, 3, image_size, image_size]`` (``num_person`` does not apply).
    """
    for what, v in (("clip_len", clip_len), ("num_person", num_person), ("image_size", image_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ExportError(f"input_spec: {what} must be a positive int, got {v!r}")
    num_classes = getattr(model, "num_classes", None)
    outputs = [{"name": "logits", "shape": ["batch", num_classes], "dtype": "float32",
                "description": "class logits [N, num_classes] (no softmax)"}]
    if getattr(model, "input_kind", "skeleton") == "rgb":
        return {"kind": "rgb",
                "inputs": [{"name": "x", "shape": ["batch", "time", 3, image_size, image_size], "dtype": "float32",
                            "description": "RGB frames [N, T, 3, H, W], pixel values 0..255 (cropped and resized as "
                                           "in training; the model normalises)"}],
                "outputs": outputs, "clip_len": clip_len, "num_person": None, "image_size": image_size,
                "dynamic_time": True, "time_dim": 1}
    V, C = _model_dims(model)
    fixed = _fixed_clip_len(model)
    if fixed is not None and fixed != clip_len:
        raise ExportError(f"{getattr(model, 'name', type(model).__name__)}: T is fixed to the model's "
                          f"clip_len={fixed}, got clip_len={clip_len}")
    time: int | str = clip_len if fixed is not None else "time"
    inputs = [{"name": "x", "shape": ["batch", num_person, time, V, C], "dtype": "float32",
               "description": "skeletons [N, M, T, V, C] (PYSKL order)"}]
    if getattr(model, "needs_mask", False):
        mode = getattr(getattr(model, "model", model), "mode", None)
        layout = {"compact": "; compact clips: the kept frames first, zero-padded",
                  "inplace": "; in-place clips: dropped frames zeroed where they were"}.get(mode, "")
        inputs.append({"name": "mask", "shape": ["batch", time], "dtype": "bool",
                       "description": f"valid frames [N, T] (True = frame present, all True for a clean clip"
                                      f"{layout})"})
    return {
        "kind": "skeleton",
        "inputs": inputs,
        "outputs": outputs,
        "time_dim": 2,
        "clip_len": clip_len,
        "num_person": num_person,
        "num_joints": V,
        "in_channels": C,
        "dynamic_time": fixed is None,
    }


def example_inputs(spec: Mapping[str, Any], *, batch: int = 2, clip_len: int | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Seeded random inputs following ``spec``: coordinates uniform in [-1, 1], scores in [0.05, 1], about 10% of
    the joints missing (0, score 0); with a mask input, a valid prefix of random length per sample (compact
    layout: the frames after it are zero). RGB specs: frames uniform in [0, 255]."""
    T = int(clip_len if clip_len is not None else spec["clip_len"])
    g = torch.Generator().manual_seed(int(seed))
    if spec.get("kind") == "rgb":
        S = spec["image_size"]
        return (torch.rand(batch, T, 3, S, S, generator=g) * 255,)
    M, V, C = spec["num_person"], spec["num_joints"], spec["in_channels"]
    x = torch.rand(batch, M, T, V, C, generator=g) * 2 - 1
    if C >= 3:
        x[..., 2] = 0.05 + 0.95 * torch.rand(batch, M, T, V, generator=g)
    present = torch.rand(batch, M, T, V, generator=g) >= 0.1
    x = x * present[..., None]
    if len(spec["inputs"]) == 1:
        return (x,)
    n = torch.randint(max(1, T // 3), T + 1, (batch,), generator=g)
    mask = torch.arange(T)[None, :] < n[:, None]
    return x * mask[:, None, :, None, None], mask


# ---------------------------------------------------------------------------------------------- tracing fixes
_BOOL_VALUE_POS = {  # ops taking a Scalar value: position of the value in the call's positional arguments
    "scatter": 3, "scatter_": 3, "masked_fill": 2, "masked_fill_": 2, "index_fill": 3, "index_fill_": 3,
    "fill_": 1, "__setitem__": 2,
}


def _bool_tensor(value: bool, like: torch.Tensor, shape: Sequence[int] = ()) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device).expand(tuple(shape))


def _cum_extreme(x: torch.Tensor, dim: int, largest: bool) -> Any:
    """``torch.cummax`` / ``cummin`` from comparisons over a ``[T, T]`` triangle (ops ONNX has); ties give the
    last index, as torch's."""
    n = x.dim()
    d = dim % n
    perm = [i for i in range(n) if i != d] + [d]  # non-negative: the exporter writes perm as given
    back = [perm.index(i) for i in range(n)]
    xt = x.permute(perm)
    s = torch.arange(xt.shape[-1], device=x.device)
    tri = s[None, :] <= s[:, None]  # [t, s]: s <= t
    if x.is_floating_point():
        fill = float("-inf") if largest else float("inf")
    else:
        info = torch.iinfo(x.dtype)
        fill = info.min if largest else info.max
    masked = torch.where(tri, xt[..., None, :], torch.full((), fill, dtype=x.dtype, device=x.device))
    values = masked.amax(-1) if largest else masked.amin(-1)
    hit = tri & (xt[..., None, :] == values[..., None])
    indices = torch.where(hit, s, torch.full((), -1, dtype=s.dtype, device=x.device)).amax(-1)
    rt = torch.return_types.cummax if largest else torch.return_types.cummin
    return rt((values.permute(back), indices.permute(back)))


class _ExportRewrites(TorchFunctionMode):
    """Rewrites of ops the tracer or the ONNX exporter cannot record, to equal computations (see the module's
    Choices): bool Scalars as tensors; with ``onnx``, also ``cummax``/``cummin`` decomposed and the memory format of
    ``contiguous`` dropped (ONNX has no memory formats; values are unchanged)."""

    def __init__(self, onnx: bool = False) -> None:
        super().__init__()
        self.onnx = onnx

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        pos = _BOOL_VALUE_POS.get(name)
        if pos is not None and args and isinstance(args[0], torch.Tensor):
            args = list(args)
            scatter = name.startswith("scatter")
            if len(args) > pos and isinstance(args[pos], bool):
                args[pos] = _bool_tensor(args[pos], args[0], args[2].shape if scatter else ())
            elif isinstance(kwargs.get("value"), bool) and "reduce" not in kwargs and len(args) == pos:
                args.append(_bool_tensor(kwargs.pop("value"), args[0], args[2].shape if scatter else ()))
            args = tuple(args)
        elif func is torch.where and len(args) == 3:
            cond = args[0]
            args = (cond, *[torch.tensor(a, device=cond.device) if isinstance(a, bool) else a for a in args[1:]])
        elif func is torch.full and len(args) >= 2 and isinstance(args[1], bool) and "dtype" not in kwargs:
            kwargs["dtype"] = torch.bool
            args = (args[0], int(args[1]), *args[2:])
        elif self.onnx and name in ("cummax", "cummin") and args and isinstance(args[0], torch.Tensor):
            dim = args[1] if len(args) > 1 else kwargs["dim"]
            return _cum_extreme(args[0], int(dim), name == "cummax")
        elif self.onnx and name == "contiguous" and "memory_format" in kwargs:
            kwargs.pop("memory_format")
        return func(*args, **kwargs)


_TOPK_TYPES = {"Float", "Double", "Int", "Long"}  # onnxruntime's TopK kernels; others go through int32 / float
_ONNX_TYPE = {"Byte": 2, "Char": 3, "Short": 5, "Int": 6, "Long": 7, "Bool": 9, "Half": 10, "Float": 1,
              "Double": 11, "BFloat16": 16}


def _topk_sort(g: Any, self: Any, dim: int, descending: bool) -> tuple[Any, Any]:
    """ONNX TopK over the whole axis: ties keep the lower index first (ONNX spec), i.e. a stable sort."""
    st = self.type().scalarType() if hasattr(self.type(), "scalarType") else None
    x = self
    if st is not None and st not in _TOPK_TYPES:
        x = g.op("Cast", self, to_i=6 if st in ("Byte", "Char", "Short", "Bool") else 1)
    k = g.op("Gather", g.op("Shape", self), g.op("Constant", value_t=torch.tensor([dim], dtype=torch.long)),
             axis_i=0)
    values, indices = g.op("TopK", x, k, axis_i=dim, largest_i=int(bool(descending)), sorted_i=1, outputs=2)
    if x is not self:
        values = g.op("Cast", values, to_i=_ONNX_TYPE[st])
    return values, indices


def _sort_symbolic(g: Any, self: Any, *args: Any) -> Any:
    """``aten::sort(self, dim, descending)`` and ``aten::sort.stable(self, stable, dim, descending)``."""
    from torch.onnx.symbolic_helper import parse_args

    if len(args) == 2:
        return parse_args("v", "i", "b")(_topk_sort)(g, self, *args)
    return parse_args("v", "i", "b")(_topk_sort)(g, self, *args[1:])


def _argsort_symbolic(g: Any, self: Any, *args: Any) -> Any:
    return _sort_symbolic(g, self, *args)[1]


def _trunc_symbolic(g: Any, self: Any) -> Any:
    st = self.type().scalarType() if hasattr(self.type(), "scalarType") else None
    if st not in ("Float", "Double", "Half", "BFloat16"):
        return self
    return g.op("Mul", g.op("Sign", self), g.op("Floor", g.op("Abs", self)))


_SYMBOLICS = {"aten::sort": _sort_symbolic, "aten::argsort": _argsort_symbolic, "aten::trunc": _trunc_symbolic}


@contextlib.contextmanager
def exportable_ops(onnx_opset: int | None = None) -> Iterator[None]:
    """While tracing: plain convolutions (``plain_ops``), no autograd, no autocast (the graph is float32) and the
    rewrites of :class:`_ExportRewrites`; with ``onnx_opset``, its ONNX rewrites and this module's ONNX symbolics.

    The symbolics are registered with ``torch.onnx.register_custom_op_symbolic`` for ``onnx_opset`` and stay
    registered (the exporter cannot unregister an op it has no built-in symbolic for, e.g. ``aten::trunc``); they
    compute what torch does, so later exports only gain the ops.
    """
    from ..models.backbones.common import plain_ops

    if onnx_opset is not None:
        for name, fn in _SYMBOLICS.items():
            torch.onnx.register_custom_op_symbolic(name, fn, onnx_opset)
    with plain_ops(), _ExportRewrites(onnx=onnx_opset is not None), torch.no_grad(), \
            torch.autocast("cpu", enabled=False), warnings.catch_warnings():
        # shape checks on traced sizes (e.g. `V != num_joints`) are recorded as constants: harmless here, and
        # check_parity runs other shapes
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _bool_where_as_logic(proto: Any) -> int:
    """Replace every ONNX ``Where`` on bool data (onnxruntime has no such kernel) by ``(c & x) | (~c & y)``, in
    place; returns how many were replaced."""
    import onnx
    from onnx import TensorProto, helper

    inferred = onnx.shape_inference.infer_shapes(proto)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    nodes, n = [], 0
    for node in proto.graph.node:
        if node.op_type != "Where" or types.get(node.output[0]) != TensorProto.BOOL:
            nodes.append(node)
            continue
        c, x, y = node.input
        base = f"{node.name or node.output[0]}_bool"
        nodes += [helper.make_node("And", [c, x], [f"{base}_cx"], name=f"{base}_and0"),
                  helper.make_node("Not", [c], [f"{base}_nc"], name=f"{base}_not"),
                  helper.make_node("And", [f"{base}_nc", y], [f"{base}_ny"], name=f"{base}_and1"),
                  helper.make_node("Or", [f"{base}_cx", f"{base}_ny"], [node.output[0]], name=f"{base}_or")]
        n += 1
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return n


# ---------------------------------------------------------------------------------------------- export
def _prepare(model: nn.Module, clip_len: int, num_person: int, image_size: int = 112
             ) -> tuple[nn.Module, dict[str, Any], tuple[torch.Tensor, ...]]:
    m = deployable(model)
    spec = input_spec(m, clip_len=clip_len, num_person=num_person, image_size=image_size)
    args = example_inputs(spec, batch=2)
    name = getattr(m, "name", type(m).__name__)
    try:
        with exportable_ops():  # the ops the trace will run
            out = m(*args)
    except (RuntimeError, ValueError, TypeError) as e:
        shapes = [tuple(a.shape) for a in args]
        raise ExportError(f"{name}: the model fails on an example input {shapes}: {e}") from e
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != args[0].shape[0]:
        raise ExportError(f"{name}: expected logits [N, num_classes] from the deployable model, got "
                          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    spec["outputs"][0]["shape"][1] = int(out.shape[1])
    return m, spec, args


def _check_opset(opset: int) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"ONNX opset must be an int in {MIN_OPSET}..{MAX_OPSET}, got {opset!r}")
    return opset


def export_onnx(model: nn.Module, path: "str | os.PathLike", *, clip_len: int, num_person: int = 2,
                opset: int = DEFAULT_OPSET, metadata: Mapping[str, Any] | None = None,
                image_size: int = 112) -> dict[str, Any]:
    """Export the deployable ``model`` to ONNX at ``path`` (atomically); returns the input spec.

    ``metadata`` (JSON-able) is stored in the model's ``metadata_props`` under ``finetec``, with the spec.
    """
    import onnx

    opset = _check_opset(opset)
    m, spec, args = _prepare(model, clip_len, num_person, image_size)
    names = [i["name"] for i in spec["inputs"]]
    dyn: dict[str, dict[int, str]] = {"x": {0: "batch"}, "logits": {0: "batch"}}
    if spec["dynamic_time"]:
        dyn["x"][spec["time_dim"]] = "time"
    if "mask" in names:
        dyn["mask"] = {0: "batch", **({1: "time"} if spec["dynamic_time"] else {})}
    buf = io.BytesIO()
    try:
        with exportable_ops(onnx_opset=opset):
            torch.onnx.export(m, args, buf, dynamo=False, input_names=names, output_names=["logits"],
                              dynamic_axes=dyn, opset_version=opset, do_constant_folding=True)
    except Exception as e:
        raise ExportError(f"{getattr(m, 'name', type(m).__name__)}: ONNX export (opset {opset}) failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    proto = onnx.load_from_string(buf.getvalue())
    _bool_where_as_logic(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "finetec", json.dumps({**dict(metadata or {}), **spec})
    atomic_write_bytes(path, proto.SerializeToString())
    return spec


def export_torchscript(model: nn.Module, path: "str | os.PathLike", *, clip_len: int, num_person: int = 2,
                       metadata: Mapping[str, Any] | None = None, image_size: int = 112) -> dict[str, Any]:
    """Trace the deployable ``model`` to TorchScript at ``path`` (atomically); returns the input spec.

    ``metadata`` and the spec are stored in the archive as the extra file ``finetec.json``.
    """
    m, spec, args = _prepare(model, clip_len, num_person, image_size)
    try:
        with exportable_ops():
            traced = torch.jit.trace(m, args, check_trace=False)
    except Exception as e:
        raise ExportError(f"{getattr(m, 'name', type(m).__name__)}: TorchScript tracing failed: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={"finetec.json": json.dumps({**dict(metadata or {}), **spec})})
    atomic_write_bytes(path, buf.getvalue())
    return spec


# ---------------------------------------------------------------------------------------------- parity
def _detect_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    return "torchscript" if head[:2] == b"PK" else "onnx"


def check_parity(model: nn.Module, path: "str | os.PathLike", *, clip_len: int, num_person: int = 2,
                 atol: float = 1e-4, batches: Sequence[int] = (1, 3), times: Sequence[int] | None = None,
                 seed: int = 0, fmt: str | None = None, image_size: int = 112) -> dict[str, Any]:
    """Run the exported file (onnxruntime / ``torch.jit.load``) and the PyTorch model on the same seeded random
    inputs; returns ``{'format', 'atol', 'max_abs_diff', 'ok', 'cases': [{'batch', 'time', 'max_abs_diff'}]}``.

    Cases: each batch size in ``batches`` at each T in ``times`` (default: ``clip_len``, and ``clip_len + 3`` when
    T is dynamic; a model with a fixed T accepts only that one).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"check_parity: exported model not found: {path}")
    fmt = fmt or _detect_format(path)
    if fmt not in FORMATS:
        raise ExportError(f"check_parity: format must be one of {FORMATS}, got {fmt!r}")
    m = deployable(model)
    spec = input_spec(m, clip_len=clip_len, num_person=num_person, image_size=image_size)
    if times is None:
        times = [spec["clip_len"]] + ([spec["clip_len"] + 3] if spec["dynamic_time"] else [])
    elif not spec["dynamic_time"] and any(int(t) != spec["clip_len"] for t in times):
        raise ExportError(f"check_parity: the model's T is fixed to {spec['clip_len']}, got times={list(times)}")
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]

        def run(args: tuple[torch.Tensor, ...]) -> np.ndarray:
            return sess.run(["logits"], {n: a.numpy() for n, a in zip(names, args)})[0]
    else:
        ts = torch.jit.load(str(path), map_location="cpu")

        def run(args: tuple[torch.Tensor, ...]) -> np.ndarray:
            with torch.no_grad():
                return ts(*args).float().numpy()
    cases = []
    for i, (B, T) in enumerate((b, t) for t in times for b in batches):
        args = example_inputs(spec, batch=int(B), clip_len=T, seed=seed + 1 + i)
        with torch.no_grad():
            ref = m(*args).float().numpy()
        got = run(args)
        if got.shape != ref.shape:
            raise ParityError(f"{path}: output shape {got.shape} != PyTorch's {ref.shape} at batch {B}, T={T}")
        diff = float(np.abs(got.astype(np.float64) - ref).max()) if ref.size else 0.0
        if not np.isfinite(diff):
            diff = float("inf")
        cases.append({"batch": int(B), "time": int(T), "max_abs_diff": diff})
    worst = max(c["max_abs_diff"] for c in cases)
    return {"format": fmt, "atol": float(atol), "max_abs_diff": worst, "ok": worst <= atol, "cases": cases}


# ---------------------------------------------------------------------------------------------- checkpoints
def load_recognizer(ckpt: "str | os.PathLike") -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """``(model, meta, config)``: the recognizer of an exported ``model.pth`` or a Lightning ``.ckpt``, rebuilt
    from the saved config and loaded strictly (FineTec's skeleton bank comes with the weights)."""
    from ..engine.checkpoint import CheckpointError, load_weights
    from ..engine.lit import build_model
    from ..engine.runner import model_config

    state, meta, cfg = load_weights(ckpt)
    if meta.get("task") == "completion" or cfg.get("task") == "completion":
        raise ExportError(f"{ckpt}: a completion checkpoint (task: completion); export takes recognizers")
    if not cfg.get("model") or not cfg.get("data"):
        raise ExportError(f"{ckpt}: the checkpoint has no config (model / data sections) to rebuild the model from")
    missing = [k for k in ("num_classes", "layout", "in_channels") if meta.get(k) is None]
    if missing:
        raise ExportError(f"{ckpt}: the checkpoint's meta lacks {missing}")
    model = build_model(model_config(cfg, for_weights=True), num_classes=int(meta["num_classes"]),
                        layout=meta["layout"], in_channels=int(meta["in_channels"]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt}: weights do not fit model {cfg['model'].get('name')!r}: {e}") from e
    return model.eval(), meta, cfg


def default_output(ckpt: "str | os.PathLike", fmt: str) -> Path:
    """``<ckpt without suffix><.onnx | .torchscript.pt>``, next to the checkpoint."""
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, got {fmt!r}")
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.stem + SUFFIX[fmt])


def card_paths(path: "str | os.PathLike") -> tuple[Path, Path]:
    """``(<file>.card.md, <file>.card.json)`` next to an exported model."""
    path = Path(path)
    return path.with_name(path.name + ".card.md"), path.with_name(path.name + ".card.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run_files(ckpt: Path, cfg: Mapping[str, Any]) -> tuple[Path | None, Path | None]:
    """The run's resolved config and ``test/metrics.json`` (each ``None`` when absent)."""
    work = (cfg.get("trainer") or {}).get("work_dir")
    dirs = [ckpt.parent, ckpt.parent.parent] + ([Path(work)] if work else [])
    config = next((p for p in [ckpt.with_suffix(".yaml")] + [d / "config.yaml" for d in dirs] if p.is_file()), None)
    metrics = next((p for p in (d / "test" / "metrics.json" for d in dirs) if p.is_file()), None)
    return config, metrics


def _versions() -> dict[str, str | None]:
    from .. import __version__

    out: dict[str, str | None] = {"finetec": __version__, "torch": torch.__version__,
                                  "python": platform.python_version()}
    for mod in ("onnx", "onnxruntime"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def build_model_card(*, model: nn.Module, meta: Mapping[str, Any], config: Mapping[str, Any],
                     spec: Mapping[str, Any], export: Mapping[str, Any], ckpt: "str | os.PathLike | None" = None,
                     parity: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's JSON content (see :func:`write_model_card`). ``export``: ``{'format', 'file', 'opset',
    'command'}``."""
    cfg_model = dict(config.get("model") or {})
    data = dict(config.get("data") or {})
    test = dict(config.get("test") or {})
    corruption = dict(data.get("corruption") or {})
    train_config = metrics_file = None
    metrics = None
    ckpt_info = None
    if ckpt is not None:
        ckpt = Path(ckpt)
        train_config, metrics_file = _run_files(ckpt, config)
        ckpt_info = {"path": str(ckpt), "sha256": _sha256(ckpt) if ckpt.is_file() else None}
        if metrics_file is not None:
            try:
                metrics = json.loads(metrics_file.read_text())
            except (OSError, ValueError):
                metrics = None
    sfhead = cfg_model.get("sfhead")
    dep = deployable(model)
    exp = dict(export)
    f = Path(exp["file"])
    exp["file"] = str(f)
    exp["sha256"] = _sha256(f) if f.is_file() else None
    if parity is not None:
        exp["parity"] = dict(parity)
    return {
        "format": CARD_FORMAT,
        "model": {
            "name": cfg_model.get("name", getattr(model, "name", type(model).__name__)),
            "class": type(getattr(dep, "model", dep) if isinstance(dep, LogitsOnly) else dep).__name__,
            "sfhead": (sfhead.get("mode", "inline") if isinstance(sfhead, Mapping) else ("inline" if sfhead else None)),
            "config": cfg_model,
            "parameters": int(sum(p.numel() for p in dep.parameters())),
        },
        "task": config.get("task", "recognition"),
        "layout": meta.get("layout"),
        "num_classes": meta.get("num_classes"),
        "classes": list(meta.get("classes") or []),
        "inputs": list(spec["inputs"]),
        "outputs": list(spec["outputs"]),
        "data": data,
        "protocol": {"train_corruption": corruption.get("train"), "test_corruption": corruption.get("test"),
                     "test_levels": test.get("levels"), "test_seed": test.get("seed")},
        "metrics": metrics,
        "metrics_file": str(metrics_file) if metrics_file else None,
        "checkpoint": ckpt_info,
        "train_config": str(train_config) if train_config else None,
        "train_command": f"finetec train {train_config}" if train_config else None,
        "export": exp,
        "versions": _versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _fmt_shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _card_markdown(card: Mapping[str, Any]) -> str:
    import yaml

    m, exp = card["model"], card["export"]
    lines = [f"# Model card: {m['name']} ({exp['format']})", "",
             f"- model: `{m['name']}` ({m['class']}), {m['parameters']:,} parameters in the exported model"
             + (f", SF-Head `{m['sfhead']}`" if m.get("sfhead") else ""),
             f"- layout: `{card['layout']}`; {card['num_classes']} classes", f"- task: {card['task']}",
             f"- exported: {card['date']} with torch {card['versions']['torch']}, onnx {card['versions']['onnx']}, "
             f"onnxruntime {card['versions']['onnxruntime']} (finetec {card['versions']['finetec']})", "",
             "## Inputs and output", "", "| name | shape | dtype | meaning |", "|---|---|---|---|"]
    for io_ in (*card["inputs"], *card["outputs"]):
        lines.append(f"| `{io_['name']}` | {_fmt_shape(io_['shape'])} | {io_['dtype']} | {io_['description']} |")
    lines += ["", "Named dims (`batch`, `time`) are dynamic; the others are fixed.", "", "## Classes", ""]
    lines.append(", ".join(f"{i}: {c}" for i, c in enumerate(card["classes"])) if card["classes"] else "(not recorded)")
    p = card["protocol"]
    lines += ["", "## Data and protocol", "",
              f"- training corruption: {p['train_corruption']}; test corruption: {p['test_corruption']}; "
              f"test levels: {p['test_levels']} (seed {p['test_seed']})", "", "```yaml",
              yaml.safe_dump({"data": card["data"]}, sort_keys=False).rstrip(), "```", "", "## Metrics", ""]
    if card["metrics"]:
        lines += ["| level | top1 | top5 | mean class acc. | N |", "|---|---|---|---|---|"]
        for level, v in card["metrics"].items():
            if isinstance(v, Mapping):
                cells = [v.get(k) for k in ("top1", "top5", "mean_class_accuracy")]
                pct = [f"{100 * c:.2f}%" if isinstance(c, (int, float)) else "-" for c in cells]
                lines.append(f"| {level} | {' | '.join(pct)} | {v.get('num_samples', '-')} |")
        lines.append(f"\n(from `{card['metrics_file']}`)")
    else:
        lines.append("(no test/metrics.json found for this run)")
    lines += ["", "## Commands", "", "```sh"]
    lines.append(card["train_command"] or "# training command unknown (no saved config found next to the checkpoint)")
    lines += [exp.get("command") or "", "```", "", "## Export", "",
              f"- file: `{exp['file']}` (sha256 `{exp['sha256']}`)"]
    if exp.get("opset") is not None:
        lines.append(f"- ONNX opset {exp['opset']}")
    if card["checkpoint"]:
        lines.append(f"- from checkpoint `{card['checkpoint']['path']}` (sha256 `{card['checkpoint']['sha256']}`)")
    par = exp.get("parity")
    if par:
        cases = ", ".join(f"N={c['batch']} T={c['time']}: {c['max_abs_diff']:.2e}" for c in par["cases"])
        lines.append(f"- parity with PyTorch: max |diff| {par['max_abs_diff']:.2e} (tolerance {par['atol']:g}; "
                     f"{cases}) -> {'ok' if par['ok'] else 'FAILED'}")
    return "\n".join(lines) + "\n"


def write_model_card(path: "str | os.PathLike", card: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``card`` (:func:`build_model_card`) next to the exported model ``path`` as markdown and JSON
    (:func:`card_paths`), atomically; returns both paths."""
    md, js = card_paths(path)
    atomic_write_text(js, json.dumps(card, indent=2, default=str) + "\n")
    atomic_write_text(md, _card_markdown(card))
    return md, js


def export_checkpoint(ckpt: "str | os.PathLike", fmt: str = "onnx", out: "str | os.PathLike | None" = None, *,
                      opset: int | None = None, clip_len: int | None = None, atol: float = 1e-4,
                      command: str | None = None) -> dict[str, Any]:
    """Load ``ckpt``, export it as ``fmt`` to ``out`` (default :func:`default_output`), check parity and write the
    model card. Returns ``{'model', 'card_md', 'card_json', 'parity', 'spec'}``.

    Raises :class:`ParityError` (after removing the exported file) when the outputs differ by more than ``atol``.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {FORMATS}, got {fmt!r}")
    if opset is not None and fmt != "onnx":
        raise ExportError("--opset applies to --format onnx only")
    model, meta, cfg = load_recognizer(ckpt)
    out = Path(out) if out is not None else default_output(ckpt, fmt)
    video = cfg["data"].get("video") or {}
    rgb = cfg.get("task") == "rgb"
    default_T = int(video["num_segments"]) * int(video["frames_per_segment"]) if rgb else cfg["data"]["clip_len"]
    T = int(clip_len if clip_len is not None else default_T)
    M = int(cfg["data"].get("num_person", 2))
    S = int(video.get("size", 112))
    info = {"model": cfg["model"].get("name"), "layout": meta.get("layout"), "classes": meta.get("classes")}
    if fmt == "onnx":
        opset = DEFAULT_OPSET if opset is None else opset
        spec = export_onnx(model, out, clip_len=T, num_person=M, opset=opset, metadata=info, image_size=S)
    else:
        spec = export_torchscript(model, out, clip_len=T, num_person=M, metadata=info, image_size=S)
    parity = check_parity(model, out, clip_len=T, num_person=M, atol=atol, fmt=fmt, image_size=S)
    if not parity["ok"]:
        with contextlib.suppress(FileNotFoundError):
            out.unlink()
        raise ParityError(f"{out}: {fmt} outputs differ from PyTorch by {parity['max_abs_diff']:.3g} > {atol:g} "
                          f"(cases {parity['cases']}); the export was removed")
    if command is None:
        command = f"finetec export --ckpt {ckpt} --format {fmt} --out {out}" + (
            f" --opset {opset}" if fmt == "onnx" else "")
    card = build_model_card(model=model, meta=meta, config=cfg, spec=spec, ckpt=ckpt, parity=parity,
                            export={"format": fmt, "file": str(out), "opset": opset if fmt == "onnx" else None,
                                    "command": command, "clip_len": spec["clip_len"],
                                    "num_person": spec["num_person"]})
    md, js = write_model_card(out, card)
    return {"model": out, "card_md": md, "card_json": js, "parity": parity, "spec": spec}

