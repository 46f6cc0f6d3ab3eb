"""PYSKL / MMAction2 skeleton pickles: safe reading, validation, atomic writing, dataset statistics.

A dataset file is PYSKL's ``{'split': {name: [frame_dir, ...]}, 'annotations': [ann, ...]}`` (a bare list of
annotations is accepted too) plus an optional ``'meta': {'layout': str, 'classes': [str], 'source': str}`` that
PYSKL ignores. Each annotation holds ``frame_dir``, ``label``, ``total_frames`` and ``keypoint [M, T, V, C]``, and
optionally ``keypoint_score [M, T, V]``, ``img_shape (h, w)`` and ``frame_mask [T]``.

Pickles are never loaded with plain :func:`pickle.load`: :class:`RestrictedUnpickler` resolves only the globals
that numpy arrays and plain containers need, so a crafted file cannot run code.
"""

from __future__ import annotations

import codecs
import os
import pickle
import struct
from collections import Counter, OrderedDict
from typing import IO, Any, Iterable, Mapping, Sequence

import numpy as np

from finetec.layouts import Layout, LayoutError, get_layout
from finetec.utils.io import atomic_write

from .sample import SampleError, SkeletonSample

__all__ = [
    "split_by_actor",
    "DataFileError",
    "UnsafePickleError",
    "AnnotationError",
    "RestrictedUnpickler",
    "safe_pickle_load",
    "validate_annotations",
    "load_annotations",
    "save_annotations",
    "load_samples",
    "infer_layout",
    "dataset_info",
    "format_info",
]

#: joint count -> layout name assumed when a file carries no ``meta['layout']`` and the caller gives none
LAYOUT_BY_JOINTS = {17: "coco17", 18: "openpose18", 25: "nturgbd25", 13: "penn13"}
_FLOAT16_MAX = float(np.finfo(np.float16).max)


class DataFileError(ValueError):
    """A data file cannot be read or has the wrong structure; the message names the file and the place."""


class UnsafePickleError(DataFileError):
    """A pickle asks for a global (function/class) outside the allow-list."""


class AnnotationError(DataFileError):
    """An annotation list or split is malformed."""


# ---------------------------------------------------------------------------------------------------- unpickling
def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy.(_)core.multiarray._reconstruct
    scalar = np.float32(0).__reduce__()[0]  # numpy.(_)core.multiarray.scalar
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numpy.(_)core.numeric._frombuffer (protocol 5)
    allowed: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x module paths
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25: per-type dtype classes
    if dtypes is not None:
        for name in dir(dtypes):
            obj = getattr(dtypes, name)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                allowed[("numpy.dtypes", name)] = obj
    for b in (dict, list, tuple, set, frozenset, slice, complex, bytearray):
        allowed[("builtins", b.__name__)] = b
        allowed[("__builtin__", b.__name__)] = b  # protocol 0-2 pickles written by Python 2 / fix_imports
    allowed[("collections", "OrderedDict")] = OrderedDict
    allowed[("_codecs", "encode")] = codecs.encode  # bytes in protocol-2 pickles
    return allowed


_ALLOWED: dict[tuple[str, str], Any] | None = None


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy-array and plain-container globals; anything else raises
    :class:`UnsafePickleError` naming the refused global and the file."""

    def __init__(self, file: IO[bytes], *, what: str = "pickle") -> None:
        super().__init__(file)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        global _ALLOWED
        if _ALLOWED is None:
            _ALLOWED = _allowed_globals()
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"{self.what}: refusing to load global '{module}.{name}'; only numpy arrays and plain containers "
                "(dict, list, tuple, set, OrderedDict) are allowed in data pickles"
            )
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.what}: persistent ids are not allowed in data pickles (got {pid!r})")


def safe_pickle_load(source: "str | os.PathLike | IO[bytes]", what: str | None = None) -> Any:
    """Unpickle ``source`` (a path or binary file object) with :class:`RestrictedUnpickler`.

    ``what`` names the source in error messages (default: the path). A truncated or corrupt pickle raises
    :class:`DataFileError`, a forbidden global :class:`UnsafePickleError`.
    """
    if isinstance(source, (str, os.PathLike)):
        what = what or str(source)
        with open(source, "rb") as f:
            return safe_pickle_load(f, what)
    what = what or str(getattr(source, "name", "pickle stream"))
    try:
        return RestrictedUnpickler(source, what=what).load()
    except UnsafePickleError:
        raise
    except EOFError as e:
        raise DataFileError(f"{what}: truncated or empty pickle ({e or 'ran out of input'})") from e
    except (pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error,
            UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise DataFileError(f"{what}: not a valid pickle ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------------------------------------------- validation
def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_annotation(ann: Any, i: int, where: str, num_classes: int | None) -> str:
    if isinstance(ann, SkeletonSample):
        raise AnnotationError(f"{where}: annotation {i} is a SkeletonSample; convert it with to_pyskl()")
    if not isinstance(ann, Mapping):
        raise AnnotationError(f"{where}: annotation {i} is a {type(ann).__name__}, expected a dict")
    fd = ann.get("frame_dir")
    tag = f"{where}: annotation {i} (frame_dir {fd!r})"
    if not isinstance(fd, str) or not fd:
        raise AnnotationError(f"{tag}: 'frame_dir' must be a non-empty str")
    for key in ("label", "keypoint", "total_frames"):
        if key not in ann:
            raise AnnotationError(f"{tag}: missing {key!r}")
    label = ann["label"]
    if not _is_int(label) or label < -1:
        raise AnnotationError(f"{tag}: 'label' must be an int >= 0 (or -1 for unknown), got {label!r}")
    if num_classes is not None and label >= num_classes:
        raise AnnotationError(f"{tag}: label {label} out of range for the {num_classes} classes in meta")
    kp = ann["keypoint"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4:
        shape = getattr(kp, "shape", None)
        raise AnnotationError(f"{tag}: 'keypoint' must be a numpy array [M, T, V, C], got {type(kp).__name__} "
                              f"with shape {shape}")
    if not np.issubdtype(kp.dtype, np.floating):
        raise AnnotationError(f"{tag}: 'keypoint' must be floating point, got dtype {kp.dtype}")
    M, T, V, C = kp.shape
    if C not in (2, 3):
        raise AnnotationError(f"{tag}: 'keypoint' last dim C must be 2 or 3, got shape {kp.shape}")
    if M == 0 or T == 0 or V == 0:
        raise AnnotationError(f"{tag}: empty 'keypoint' of shape {kp.shape}")
    tf = ann["total_frames"]
    if not _is_int(tf) or tf != T:
        raise AnnotationError(f"{tag}: 'total_frames' is {tf!r} but keypoint has T={T} frames")
    if not np.isfinite(kp).all():
        m, t, v, _ = np.argwhere(~np.isfinite(kp))[0]
        raise AnnotationError(f"{tag}: non-finite keypoint at person {m}, frame {t}, joint {v}; mark missing "
                              "joints with keypoint_score 0 instead")
    score = ann.get("keypoint_score")
    if score is not None:
        if not isinstance(score, np.ndarray) or score.shape != (M, T, V):
            raise AnnotationError(f"{tag}: 'keypoint_score' shape {getattr(score, 'shape', None)} != "
                                  f"keypoint's (M, T, V) = {(M, T, V)}")
        if not np.issubdtype(score.dtype, np.number) or not np.isfinite(score).all():
            raise AnnotationError(f"{tag}: 'keypoint_score' must be finite numbers (dtype {score.dtype})")
    shape = ann.get("img_shape")
    if shape is not None:
        ok = isinstance(shape, (tuple, list, np.ndarray)) and len(shape) == 2
        ok = ok and all(isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, (bool, np.bool_))
                        and np.isfinite(s) and float(s) == int(s) and s > 0 for s in shape)
        if not ok:
            raise AnnotationError(f"{tag}: 'img_shape' must be (h, w) positive ints, got {shape!r}")
    fm = ann.get("frame_mask")
    if fm is not None:
        fm = np.asarray(fm)
        if fm.shape != (T,) or fm.dtype != bool:
            raise AnnotationError(f"{tag}: 'frame_mask' must be bool [T={T}], got {fm.dtype} {fm.shape}")
    return fd


def validate_annotations(data: Mapping[str, Any], where: str = "annotations") -> None:
    """Check a normalised ``{'split', 'annotations', 'meta'}`` dict; raise :class:`AnnotationError` saying where."""
    anns = data["annotations"]
    if not isinstance(anns, (list, tuple)):
        raise AnnotationError(f"{where}: 'annotations' must be a list, got {type(anns).__name__}")
    meta = data.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise AnnotationError(f"{where}: 'meta' must be a dict, got {type(meta).__name__}")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes)):
        raise AnnotationError(f"{where}: meta['classes'] must be a list of str")
    num_classes = None if classes is None else len(classes)
    seen: dict[str, int] = {}
    for i, ann in enumerate(anns):
        fd = _check_annotation(ann, i, where, num_classes)
        if fd in seen:
            raise AnnotationError(f"{where}: frame_dir {fd!r} appears twice (annotations {seen[fd]} and {i})")
        seen[fd] = i
    split = data.get("split") or {}
    if not isinstance(split, Mapping):
        raise AnnotationError(f"{where}: 'split' must be a dict of name -> list of frame_dir, got "
                              f"{type(split).__name__}")
    for name, ids in split.items():
        if not isinstance(name, str):
            raise AnnotationError(f"{where}: split name {name!r} is not a str")
        if not isinstance(ids, (list, tuple)) or not all(isinstance(x, str) for x in ids):
            raise AnnotationError(f"{where}: split {name!r} must be a list of frame_dir strings")
        unknown = [x for x in ids if x not in seen]
        if unknown:
            raise AnnotationError(f"{where}: split {name!r} references {len(unknown)} frame_dir(s) with no "
                                  f"annotation, e.g. {unknown[:3]}")


def _normalise(obj: Any, where: str) -> dict[str, Any]:
    if isinstance(obj, (list, tuple)):
        return {"split": {}, "annotations": list(obj), "meta": {}}
    if not isinstance(obj, Mapping):
        raise AnnotationError(f"{where}: expected a dict with 'annotations' (or a list of annotations), got "
                              f"{type(obj).__name__}")
    if "annotations" not in obj:
        raise AnnotationError(f"{where}: dict has no 'annotations' key (keys: {sorted(map(str, obj))})")
    unknown = set(obj) - {"split", "annotations", "meta"}
    if unknown:
        raise AnnotationError(f"{where}: unexpected top-level keys {sorted(map(str, unknown))}")
    return {"split": obj.get("split") or {}, "annotations": obj["annotations"], "meta": obj.get("meta") or {}}


# ---------------------------------------------------------------------------------------------------- read / write
def load_annotations(path: "str | os.PathLike") -> dict[str, Any]:
    """Read and validate a PYSKL skeleton pickle.

    Returns ``{'split': {name: [frame_dir]}, 'annotations': [dict], 'meta': dict}`` (``split``/``meta`` empty when
    the file has none). Arrays keep their stored dtype (PYSKL ships float16 keypoints).
    """
    where = str(path)
    data = _normalise(safe_pickle_load(path, where), where)
    validate_annotations(data, where)
    return data


def save_annotations(obj: Any, path: "str | os.PathLike", *, float16: bool = False) -> None:
    """Validate and write annotations atomically as a protocol-4 pickle PYSKL can read.

    ``obj``: a ``{'split', 'annotations', 'meta'}`` dict or a bare list; annotations may be dicts or
    :class:`SkeletonSample`. A bare list without meta is written as a bare list (PYSKL's no-split form).
    ``keypoint``/``keypoint_score`` are stored as float32, or float16 with ``float16=True`` (PYSKL's compact form).
    The caller's dicts are not modified.
    """
    where = f"annotations for {path}"
    bare = isinstance(obj, (list, tuple))
    data = _normalise(obj, where)
    meta = dict(data["meta"])
    anns = []
    layouts = set()
    for i, a in enumerate(data["annotations"]):
        if isinstance(a, SkeletonSample):
            layouts.add(a.layout)
            a = a.to_pyskl()
        elif not isinstance(a, Mapping):
            raise AnnotationError(f"{where}: annotation {i} is a {type(a).__name__}, expected a dict")
        a = dict(a)
        for key in ("keypoint", "keypoint_score"):
            v = a.get(key)
            if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
                if float16:
                    big = np.abs(v) > _FLOAT16_MAX
                    if big.any():
                        raise AnnotationError(f"{where}: annotation {i} ({a.get('frame_dir')!r}) has {key} values "
                                              f"beyond float16 range (max |x| {np.abs(v).max():.4g})")
                    a[key] = v.astype(np.float16)
                else:
                    a[key] = v.astype(np.float32, copy=False)
        anns.append(a)
    if len(layouts) == 1 and "layout" not in meta:
        meta["layout"] = layouts.pop()
    elif len(layouts) > 1:
        raise AnnotationError(f"{where}: samples mix layouts {sorted(layouts)}")
    out: Any
    if bare and not meta:
        out = anns
        validate_annotations({"annotations": anns}, where)
    else:
        out = {"split": {k: list(v) for k, v in data["split"].items()}, "annotations": anns}
        if meta:
            out["meta"] = meta
        validate_annotations(out, where)
    with atomic_write(path, "wb") as f:
        pickle.dump(out, f, protocol=4)


def infer_layout(num_joints: int, layout: "str | Layout | None" = None, meta: Mapping[str, Any] | None = None,
                 where: str = "") -> str:
    """Layout name: ``meta['layout']``, else ``layout``, else guessed from the joint count; they must agree, and
    the layout must have ``num_joints`` joints. A custom :class:`Layout` object may be passed as ``layout``."""
    given = layout if isinstance(layout, Layout) else None
    arg = given.name if given is not None else layout
    from_meta = (meta or {}).get("layout")
    if from_meta is not None and arg is not None and str(from_meta) != str(arg):
        raise AnnotationError(f"{where}: file says layout {from_meta!r} but {arg!r} was requested")
    name = from_meta if from_meta is not None else arg
    if name is None:
        if num_joints not in LAYOUT_BY_JOINTS:
            raise AnnotationError(f"{where}: cannot infer a layout for {num_joints} joints (known: "
                                  f"{LAYOUT_BY_JOINTS}); pass layout=")
        name = LAYOUT_BY_JOINTS[num_joints]
    try:
        V = given.num_joints if given is not None else get_layout(str(name)).num_joints
    except LayoutError as e:
        raise AnnotationError(f"{where}: {e}") from e
    if V != num_joints:
        raise AnnotationError(f"{where}: layout {name!r} has {V} joints but the keypoints have {num_joints}")
    return str(name)


def _select(data: Mapping[str, Any], split: str | None, where: str) -> list[Mapping[str, Any]]:
    anns = data["annotations"]
    if split is None:
        return list(anns)
    if split not in data["split"]:
        raise AnnotationError(f"{where}: no split {split!r}; the file has {sorted(data['split'])}")
    by_id = {a["frame_dir"]: a for a in anns}
    return [by_id[fd] for fd in data["split"][split]]


def load_samples(path: "str | os.PathLike", split: str | None = None,
                 layout: "str | Layout | None" = None) -> tuple[list[SkeletonSample], dict[str, Any]]:
    """Read a PYSKL pickle as validated :class:`SkeletonSample` objects (in split order when ``split`` is given).

    Returns ``(samples, meta)``; ``meta['layout']`` is the resolved layout name (see :func:`infer_layout`).
    """
    where = str(path)
    data = load_annotations(path)
    anns = _select(data, split, where)
    meta = dict(data["meta"])
    arg = layout.name if isinstance(layout, Layout) else layout
    if not anns:
        if meta.get("layout") is not None and arg is not None and str(meta["layout"]) != str(arg):
            raise AnnotationError(f"{where}: file says layout {meta['layout']!r} but {arg!r} was requested")
        meta["layout"] = meta.get("layout", arg)
        return [], meta
    joint_counts = {a["keypoint"].shape[2] for a in anns}
    if len(joint_counts) > 1:
        raise AnnotationError(f"{where}: annotations have different joint counts {sorted(joint_counts)}")
    V = joint_counts.pop()
    name = infer_layout(V, layout, meta, where)
    meta["layout"] = name
    samples = []
    for a in anns:
        try:
            samples.append(SkeletonSample.from_pyskl(dict(a), layout=name, where=where).validate(
                V, where=where, allow_no_joints=True))
        except SampleError as e:
            raise AnnotationError(str(e)) from e
    return samples, meta


# ---------------------------------------------------------------------------------------------------- statistics
def dataset_info(path: "str | os.PathLike") -> dict[str, Any]:
    """Statistics of a PYSKL pickle for ``finetec data info``.

    Keys: ``path``, ``num_samples``, ``splits`` (name -> count), ``layout`` (from meta, else inferred, else None),
    ``source``, ``num_classes``, ``class_counts`` (list, index = label), ``class_names`` (or None), ``unlabelled``,
    ``frames`` (min/mean/max of T), ``max_persons``, ``joints`` (sorted distinct V), ``channels`` (distinct C),
    ``missing_joint_fraction`` (score == 0 among all joints of valid frames; None without scores),
    ``dropped_frame_fraction`` (frames with ``frame_mask`` False; None when no annotation has a mask),
    ``no_visible_joint`` (ids of samples in which no joint is visible; training skips them), ``keypoint_dtypes``.
    """
    data = load_annotations(path)
    anns, meta = data["annotations"], data["meta"]
    n = len(anns)
    T = np.array([a["keypoint"].shape[1] for a in anns], dtype=np.int64)
    M = np.array([a["keypoint"].shape[0] for a in anns], dtype=np.int64)
    Vs = sorted({a["keypoint"].shape[2] for a in anns})
    Cs = sorted({a["keypoint"].shape[3] for a in anns})
    labels = np.array([int(a["label"]) for a in anns], dtype=np.int64)
    classes = meta.get("classes")
    labelled = labels[labels >= 0]
    num_classes = len(classes) if classes is not None else (int(labelled.max()) + 1 if labelled.size else 0)
    counts = np.bincount(labelled, minlength=num_classes) if num_classes else np.zeros(0, np.int64)

    missing = total = 0
    has_score = False
    invisible: list[str] = []
    dropped = frames_total = 0
    has_mask = False
    for a in anns:
        kp = a["keypoint"]
        fm = a.get("frame_mask")
        valid = np.ones(kp.shape[1], bool) if fm is None else np.asarray(fm, bool)
        if fm is not None:
            has_mask = True
            dropped += int((~valid).sum())
        frames_total += kp.shape[1]
        s = a.get("keypoint_score")
        if s is not None:
            has_score = True
            sv = s[:, valid]
            missing += int((sv == 0).sum())
            total += sv.size
            if not (sv > 0).any():
                invisible.append(str(a.get("frame_dir")))
        else:
            total += kp.shape[0] * int(valid.sum()) * kp.shape[2]
    layout = meta.get("layout")
    if layout is None and len(Vs) == 1:
        layout = LAYOUT_BY_JOINTS.get(Vs[0])
        layout_inferred = layout is not None
    else:
        layout_inferred = False
    return {
        "path": str(path),
        "num_samples": n,
        "splits": {k: len(v) for k, v in data["split"].items()},
        "layout": layout,
        "layout_inferred": layout_inferred,
        "source": meta.get("source"),
        "num_classes": num_classes,
        "class_counts": counts.tolist(),
        "class_names": list(classes) if classes is not None else None,
        "unlabelled": int((labels < 0).sum()),
        "frames": {"min": int(T.min()), "mean": float(T.mean()), "max": int(T.max())} if n else None,
        "max_persons": int(M.max()) if n else 0,
        "joints": Vs,
        "channels": Cs,
        "missing_joint_fraction": (missing / total if total else 0.0) if has_score else None,
        "dropped_frame_fraction": (dropped / frames_total if frames_total else 0.0) if has_mask else None,
        "no_visible_joint": invisible,
        "keypoint_dtypes": sorted(Counter(str(a["keypoint"].dtype) for a in anns)),
    }


def split_by_actor(data: Mapping[str, Any], splits: Mapping[str, Iterable[Any]], *,
                   where: str = "annotations") -> dict[str, Any]:
    """A copy of ``data`` whose ``split`` is ``{name: [frame_dir of every annotation whose 'actor' is in ids]}``
    (e.g. ``{'train': [1..6], 'val': [7], 'test': [8, 9, 10], 'trainval': [1..7]}``; splits may overlap, as
    PYSKL's trainval); an annotation without ``actor``, an actor id no annotation has or an empty split is an error."""
    ids = {name: {str(a) for a in actors} for name, actors in splits.items()}
    if not ids:
        raise AnnotationError(f"{where}: no splits given")
    out: dict[str, list[str]] = {name: [] for name in ids}
    for i, ann in enumerate(data["annotations"]):
        if ann.get("actor") is None:
            raise AnnotationError(f"{where}: annotation {i} ({ann.get('frame_dir')!r}) has no 'actor'")
        for name, actors in ids.items():
            if str(ann["actor"]) in actors:
                out[name].append(str(ann["frame_dir"]))
    present = {str(a.get("actor")) for a in data["annotations"]}
    unknown = {n: sorted(ids[n] - present) for n in ids if ids[n] - present}
    if unknown:
        raise AnnotationError(f"{where}: actor id(s) with no annotation: {unknown} (actors present: "
                              f"{sorted(present, key=lambda a: (len(a), a))})")
    empty = [n for n, v in out.items() if not v]
    if empty:
        raise AnnotationError(f"{where}: split(s) {empty} got no annotation (actors {[sorted(ids[n]) for n in empty]})")
    return {**data, "split": out}


def _fmt_list(xs: Iterable[Any]) -> str:
    return ", ".join(str(x) for x in xs)


def format_info(info: Mapping[str, Any], max_classes: int = 400) -> str:
    """Human-readable text for :func:`dataset_info`'s dict."""
    lines = [f"file:        {info['path']}"]
    if info.get("source"):
        lines.append(f"source:      {info['source']}")
    lay = info.get("layout")
    lines.append(f"layout:      {lay if lay else 'unknown'}" + (" (inferred from joint count)"
                                                              if info.get("layout_inferred") else ""))
    lines.append(f"samples:     {info['num_samples']}")
    if info["splits"]:
        lines.append("splits:      " + _fmt_list(f"{k} {v}" for k, v in info["splits"].items()))
    else:
        lines.append("splits:      none")
    fr = info.get("frames")
    if fr:
        lines.append(f"frames:      min {fr['min']}, mean {fr['mean']:.1f}, max {fr['max']}")
    lines.append(f"persons:     max {info['max_persons']}")
    lines.append(f"joints:      {_fmt_list(info['joints'])}    channels: {_fmt_list(info['channels'])}    "
                 f"dtype: {_fmt_list(info['keypoint_dtypes'])}")
    mj = info.get("missing_joint_fraction")
    lines.append("missing joints: " + ("n/a (no keypoint_score)" if mj is None else f"{100 * mj:.2f}% "
                                       "(score 0, valid frames)"))
    df = info.get("dropped_frame_fraction")
    lines.append("dropped frames: " + ("none (no frame_mask)" if df is None else f"{100 * df:.2f}%"))
    inv = info.get("no_visible_joint") or []
    if inv:
        lines.append(f"no visible joint at all: {len(inv)} sample(s) {inv[:5]}{' ...' if len(inv) > 5 else ''} "
                     "(kept in the file; skipped in training)")
    lines.append(f"classes:     {info['num_classes']}" + (f"  (+{info['unlabelled']} unlabelled samples)"
                                                         if info.get("unlabelled") else ""))
    counts: Sequence[int] = info["class_counts"]
    names = info.get("class_names")
    if counts:
        arr = np.asarray(counts)
        lines.append(f"per class:   min {arr.min()}, median {np.median(arr):g}, max {arr.max()}")
        width = max((len(n) for n in names), default=0) if names else 0
        for k, c in enumerate(counts[:max_classes]):
            name = f"  {names[k]:<{width}}" if names else ""
            lines.append(f"  {k:>4}{name}  {c}")
        if len(counts) > max_classes:
            lines.append(f"  ... {len(counts) - max_classes} more classes")
    return "\n".join(lines)
