"""Pose extraction: one video -> a PYSKL annotation; many videos (+ a labels CSV) -> a dataset pickle.

One video (:func:`extract_video`): frames are streamed from PyAV, a backend finds persons in each frame, the
:class:`~finetec.pose.tracker.SingleTracker` keeps one identity, and the result is PYSKL's annotation dict with
``keypoint [1, T, 17, 2]`` (pixels), ``keypoint_score [1, T, 17]``, ``frame_mask [T]`` (False where the person was
not found: a real missing frame, keypoints 0 and scores 0, never filled in), ``img_shape``/``original_shape``
``(h, w)``, ``total_frames``, ``frame_dir``, ``label`` and ``fps`` (plus ``actor`` when the labels give one).

Many videos (:func:`extract_dataset`): each video's result is written to its own part file (``OUT.parts/``) as
soon as it is done, keyed by the video (path, size, mtime) and the extraction settings, so a rerun skips finished
videos; videos run in parallel over processes (``workers``); a tqdm bar shows progress. The parts are then
assembled into ``{'split', 'annotations', 'meta': {'layout': 'coco17', 'classes', 'source'}}`` and written
atomically. Nothing here imports torch (this runs in the MediaPipe environment).

Labels CSV (:func:`read_labels`): a header row with ``video`` (path, relative to the CSV's folder) and a label
column: ``label`` (class name or 0-based index), else ``class_name``; optional ``actor`` (or ``subject``),
``split`` and ``box`` (``"x1 y1 x2 y2"``, the person's first-frame box in pixels) columns.

Choices: ``frame_dir`` is the video's file name without suffix (the path relative to the videos' common folder
when names collide). Class names are numbered in order of first appearance in the CSV unless ``classes`` is given.
Split: a ``split`` column gives the lists directly; otherwise, with actors, ``test`` holds the test actors (default:
the last 30% of the sorted actor ids, rounded up: actors 8-10 of Florence's 10) and ``train`` the others; with
neither there is no split. A video that fails (unreadable) is reported, left out of the pickle and its splits, and
makes the command's exit status 1; a video whose decoding stops part-way keeps the frames read (reported).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import pickle
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from finetec.data.io import DataFileError, safe_pickle_load, save_annotations
from finetec.layouts import convert_keypoints, get_layout
from finetec.utils.io import atomic_write
from finetec.video.io import VIDEO_SUFFIXES, VideoError, VideoReader

from .base import Box, PersonPose, PoseBackend, check_box
from .importers import ImportedPoses
from .tracker import SingleTracker

__all__ = ["BACKENDS", "VideoEntry", "LabelsError", "build_backend", "annotation_from_poses", "extract_video",
           "read_labels", "collect_videos", "make_split", "extract_dataset", "detection_rates",
           "format_detection_rates"]

#: backend name -> "module:Class"; any other "module:Class" string is accepted as well
BACKENDS = {"mediapipe": "finetec.pose.mediapipe_backend:MediaPipeBackend"}
LAYOUT = "coco17"
_PART_VERSION = 1


class LabelsError(DataFileError):
    """A labels CSV or a video list is malformed; the message names the file and the row."""


def build_backend(spec: str, **kwargs: Any) -> PoseBackend:
    """A backend from a name in :data:`BACKENDS` or a ``"module:Class"`` path."""
    target = BACKENDS.get(spec, spec)
    if ":" not in target:
        raise ValueError(f"unknown pose backend {spec!r}; use one of {sorted(BACKENDS)} or 'module:Class'")
    mod, _, cls = target.partition(":")
    backend = getattr(import_module(mod), cls)(**kwargs)
    if not isinstance(backend, PoseBackend):
        raise TypeError(f"pose backend {spec!r} built a {type(backend).__name__}, not a PoseBackend")
    return backend


# ---------------------------------------------------------------------------------------------------- one video
def _assemble(selected: Sequence[PersonPose | None], layout: str = LAYOUT) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """Chosen person per frame (None = missing) -> ``keypoint [T, V, 2]``, ``score [T, V]``, ``mask [T]``."""
    V = get_layout(layout).num_joints
    T = len(selected)
    kp = np.zeros((T, V, 2), dtype=np.float32)
    sc = np.zeros((T, V), dtype=np.float32)
    mask = np.array([p is not None for p in selected], dtype=bool)
    by_layout: dict[str, list[int]] = {}
    for t, p in enumerate(selected):
        if p is not None:
            by_layout.setdefault(p.layout, []).append(t)
    for src, ts in by_layout.items():
        k = np.stack([selected[t].keypoints for t in ts])  # type: ignore[union-attr]
        s = np.stack([selected[t].scores for t in ts])  # type: ignore[union-attr]
        if src != layout:
            k, s = convert_keypoints(k, s, src, layout)
        kp[ts], sc[ts] = k, s
    return kp, sc, mask


def _annotation(kp: np.ndarray, sc: np.ndarray, mask: np.ndarray, *, frame_dir: str, label: int,
                img_shape: tuple[int, int], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    h, w = int(img_shape[0]), int(img_shape[1])
    ann = {"frame_dir": str(frame_dir), "label": int(label), "total_frames": int(kp.shape[0]),
           "img_shape": (h, w), "original_shape": (h, w), "keypoint": kp[None].astype(np.float32),
           "keypoint_score": sc[None].astype(np.float32), "frame_mask": mask.astype(bool)}
    ann.update(extra or {})
    return ann


def annotation_from_poses(poses: "ImportedPoses | Sequence[Sequence[PersonPose]]", *, frame_dir: str,
                          label: int = -1, img_shape: tuple[int, int] | None = None, box: Box | None = None,
                          tracker: SingleTracker | None = None) -> dict[str, Any]:
    """PYSKL annotation from per-frame candidates (e.g. an importer's output): the tracker picks one person per
    frame; frames where it picks nobody are missing."""
    frames = poses.frames if isinstance(poses, ImportedPoses) else list(poses)
    if img_shape is None and isinstance(poses, ImportedPoses):
        img_shape = poses.img_shape
    if img_shape is None:
        raise ValueError(f"annotation_from_poses({frame_dir!r}): img_shape (h, w) is needed (the keypoint file does "
                         "not say it; pass it or probe the video)")
    if not frames:
        raise ValueError(f"annotation_from_poses({frame_dir!r}): no frames")
    tracker = tracker or SingleTracker(box)
    selected = [tracker.update(c) for c in frames]
    kp, sc, mask = _assemble(selected)
    return _annotation(kp, sc, mask, frame_dir=frame_dir, label=label, img_shape=img_shape)


@dataclass
class VideoResult:
    """An annotation plus how extraction went (frames, detected frames, seconds, decode error)."""

    annotation: dict[str, Any]
    frames: int
    detected: int
    seconds: float
    error: str | None = None


def extract_video(path: "str | os.PathLike", backend: PoseBackend, *, frame_dir: str | None = None, label: int = -1,
                  box: Box | None = None, tracker_kwargs: Mapping[str, Any] | None = None,
                  max_frames: int | None = None, threads: int = 0,
                  on_frame: Callable[[int], None] | None = None) -> VideoResult:
    """Run ``backend`` over a video and track one person. ``box``: the person's first-frame box ``(x1, y1, x2,
    y2)``; with it the backend searches only around the tracked person (``tracker.roi``). ``on_frame(t)`` is called
    after each frame (progress)."""
    t0 = time.perf_counter()
    tracker = SingleTracker(box, **dict(tracker_kwargs or {}))
    backend.reset()
    selected: list[PersonPose | None] = []
    with VideoReader(path, threads=threads, max_frames=max_frames) as reader:
        h, w = reader.info.height, reader.info.width
        for frame in reader:
            roi = None
            if box is not None:
                roi = tracker.roi(frame.shape) or (0.0, 0.0, float(w), float(h))
            selected.append(tracker.update(backend.process(frame, roi)))
            if on_frame is not None:
                on_frame(len(selected))
        error, fps = reader.error, reader.info.fps
    kp, sc, mask = _assemble(selected)
    name = frame_dir if frame_dir is not None else Path(path).stem
    ann = _annotation(kp, sc, mask, frame_dir=name, label=label, img_shape=(h, w), extra={"fps": float(fps)})
    return VideoResult(ann, len(selected), int(mask.sum()), time.perf_counter() - t0, error)


# ---------------------------------------------------------------------------------------------------- labels
@dataclass
class VideoEntry:
    """One video to extract and what the labels say about it."""

    video: Path
    frame_dir: str
    label: int = -1
    actor: "int | str | None" = None
    split: str | None = None
    box: Box | None = None


_LABEL_COLUMNS = ("label", "class_name")
_ACTOR_COLUMNS = ("actor", "subject")


def _parse_int(s: str) -> int | None:
    s = s.strip()
    return int(s) if re.fullmatch(r"[+-]?\d+", s) else None


def read_labels(path: "str | os.PathLike", *, classes: Sequence[str] | None = None,
                label_column: str | None = None) -> tuple[list[VideoEntry], list[str] | None]:
    """Read a labels CSV (see the module docstring) -> ``(entries, classes)``; ``classes`` is None when labels
    are bare indices and no names are known."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except FileNotFoundError:
        raise LabelsError(f"labels file {path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LabelsError(f"labels file {path}: cannot read ({type(e).__name__}: {e})") from e
    if not rows:
        raise LabelsError(f"labels file {path}: no rows (expected a header with 'video' and a label column)")
    cols = {c.strip().lower(): c for c in header if c is not None}
    if "video" not in cols:
        raise LabelsError(f"labels file {path}: no 'video' column (columns: {header})")
    if label_column is not None:
        if label_column.lower() not in cols:
            raise LabelsError(f"labels file {path}: no column {label_column!r} (columns: {header})")
        lab_col = cols[label_column.lower()]
    else:
        found = [cols[c] for c in _LABEL_COLUMNS if c in cols]
        if not found:
            raise LabelsError(f"labels file {path}: no label column; expected one of {list(_LABEL_COLUMNS)} "
                              f"(columns: {header})")
        lab_col = found[0]
    actor_col = next((cols[c] for c in _ACTOR_COLUMNS if c in cols), None)
    split_col, box_col = cols.get("split"), cols.get("box")
    raw = [(r.get(lab_col) or "").strip() for r in rows]
    for i, v in enumerate(raw):
        if not v:
            raise LabelsError(f"labels file {path}: row {i + 2}: empty {lab_col!r}")
    as_int = [_parse_int(v) for v in raw]
    names: list[str] | None
    if all(v is not None for v in as_int):
        labels = [int(v) for v in as_int]  # type: ignore[arg-type]
        bad = [i for i, v in enumerate(labels) if v < 0 or (classes is not None and v >= len(classes))]
        if bad:
            raise LabelsError(f"labels file {path}: row {bad[0] + 2}: label {labels[bad[0]]} is not a 0-based class "
                              f"index" + (f" < {len(classes)}" if classes is not None else ""))
        names = list(classes) if classes is not None else None
    else:
        names = list(classes) if classes is not None else list(dict.fromkeys(raw))
        index = {n: i for i, n in enumerate(names)}
        unknown = [i for i, v in enumerate(raw) if v not in index]
        if unknown:
            raise LabelsError(f"labels file {path}: row {unknown[0] + 2}: class {raw[unknown[0]]!r} not in the "
                              f"{len(names)} given classes")
        labels = [index[v] for v in raw]
    entries = []
    for i, r in enumerate(rows):
        where = f"labels file {path}: row {i + 2}"
        vid = (r.get(cols["video"]) or "").strip()
        if not vid:
            raise LabelsError(f"{where}: empty 'video'")
        p = Path(vid)
        p = p if p.is_absolute() else path.parent / p
        actor: int | str | None = None
        if actor_col is not None and (r.get(actor_col) or "").strip():
            a = r[actor_col].strip()
            actor = _parse_int(a) if _parse_int(a) is not None else a
        split = (r.get(split_col) or "").strip() or None if split_col else None
        box = None
        if box_col is not None and (r.get(box_col) or "").strip():
            try:
                box = check_box([float(x) for x in re.split(r"[\s,;]+", r[box_col].strip())], f"{where}: box")
            except ValueError as e:
                raise LabelsError(str(e)) from None
        entries.append(VideoEntry(p, "", labels[i], actor, split, box))
    return entries, names


def _frame_dirs(videos: Sequence[Path]) -> list[str]:
    stems = [v.stem for v in videos]
    if len(set(stems)) == len(stems):
        return stems
    root = Path(os.path.commonpath([str(v.resolve().parent) for v in videos]))
    return [str(v.resolve().relative_to(root).with_suffix("")).replace(os.sep, "/") for v in videos]


def collect_videos(videos: Sequence["str | os.PathLike"] = (), labels: "str | os.PathLike | None" = None, *,
                   classes: Sequence[str] | None = None, label_column: str | None = None
                   ) -> tuple[list[VideoEntry], list[str] | None]:
    """The videos to extract: the files (or every video in the folders) given, labelled from ``labels`` (every
    given video must have a row); with no videos, every row of ``labels``."""
    entries: list[VideoEntry] = []
    names: list[str] | None = None
    by_path: dict[Path, VideoEntry] = {}
    if labels is not None:
        rows, names = read_labels(labels, classes=classes, label_column=label_column)
        for e in rows:
            key = e.video.resolve()
            if key in by_path:
                raise LabelsError(f"labels file {labels}: video {e.video} is listed twice")
            by_path[key] = e
    files: list[Path] = []
    for v in videos:
        p = Path(v)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise LabelsError(f"video folder {p}: no video files ({', '.join(VIDEO_SUFFIXES)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise VideoError(f"video {p}: no such file or folder")
    if not files and labels is None:
        raise LabelsError("no videos given (pass video files/folders and/or a labels CSV)")
    if files:
        by_name: dict[str, list[VideoEntry]] = {}
        for e in by_path.values():
            by_name.setdefault(e.video.name, []).append(e)
        seen = set()
        for f in files:
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            if labels is None:
                entries.append(VideoEntry(f, ""))
                continue
            e = by_path.get(key)
            if e is None:
                cands = by_name.get(f.name, [])
                if len(cands) != 1:
                    raise LabelsError(f"video {f} has no row in {labels}" if not cands else
                                      f"video {f}: {len(cands)} rows of {labels} have its file name")
                e = cands[0]
            entries.append(VideoEntry(f, "", e.label, e.actor, e.split, e.box))
    else:
        entries = list(by_path.values())
        missing = [e.video for e in entries if not e.video.is_file()]
        if missing:
            raise VideoError(f"labels file {labels}: {len(missing)} listed video(s) not found, e.g. {missing[0]}")
    for e, fd in zip(entries, _frame_dirs([e.video for e in entries])):
        e.frame_dir = fd
    return entries, names


def make_split(entries: Sequence[VideoEntry], test_actors: "Sequence[int | str] | str | None" = "auto",
               test_fraction: float = 0.3) -> dict[str, list[str]]:
    """Split lists: from the entries' ``split`` values if any, else by actor (``test_actors``: ids, ``'auto'`` =
    the last ``test_fraction`` of the sorted ids, None = no actor split); ``{}`` without either."""
    if any(e.split for e in entries):
        if test_actors not in (None, "auto"):
            raise ValueError("make_split: the labels have a 'split' column; test actors cannot be given as well")
        out: dict[str, list[str]] = {}
        for e in entries:
            if e.split:
                out.setdefault(e.split, []).append(e.frame_dir)
        return out
    actors = [e.actor for e in entries if e.actor is not None]
    if test_actors is None or not actors:
        if test_actors not in (None, "auto"):
            raise ValueError("make_split: test actors were given but the labels have no actor column")
        return {}
    ids = sorted(set(actors), key=lambda a: (isinstance(a, str), a))
    if test_actors == "auto":
        test = set(ids[len(ids) - max(1, math.ceil(test_fraction * len(ids))):]) if len(ids) > 1 else set()
    else:
        test = set(test_actors)  # type: ignore[arg-type]
        unknown = test - set(ids)
        if unknown:
            raise ValueError(f"make_split: test actors {sorted(map(str, unknown))} are not in the labels "
                             f"(actors: {ids})")
    if not test:
        return {}
    return {"train": [e.frame_dir for e in entries if e.actor is not None and e.actor not in test],
            "test": [e.frame_dir for e in entries if e.actor in test]}


# ---------------------------------------------------------------------------------------------------- many videos
_WORKER_BACKENDS: dict[str, PoseBackend] = {}


def _job_key(entry: VideoEntry, settings: Mapping[str, Any]) -> str:
    st = entry.video.stat()
    return json.dumps({"v": _PART_VERSION, "video": str(entry.video.resolve()), "size": st.st_size,
                       "mtime_ns": st.st_mtime_ns, "box": entry.box, "frame_dir": entry.frame_dir,
                       **settings}, sort_keys=True)


def _part_path(parts_dir: Path, frame_dir: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", frame_dir)[:80]
    return parts_dir / f"{safe}.{hashlib.sha1(frame_dir.encode()).hexdigest()[:8]}.pkl"


def _read_part(path: Path, key: str) -> dict[str, Any] | None:
    """A finished part with the same key, else None (missing, stale or unreadable parts are redone)."""
    if not path.is_file():
        return None
    try:
        part = safe_pickle_load(path, str(path))
    except DataFileError:
        return None
    return part if isinstance(part, dict) and part.get("key") == key else None


def _run_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Extract one video and write its part file (runs in a worker process or inline)."""
    settings = job["settings"]
    cache_key = json.dumps([settings["backend"], settings["backend_kwargs"]], sort_keys=True)
    backend = _WORKER_BACKENDS.get(cache_key)
    if backend is None:
        backend = build_backend(settings["backend"], **settings["backend_kwargs"])
        _WORKER_BACKENDS[cache_key] = backend
    try:
        res = extract_video(job["video"], backend, frame_dir=job["frame_dir"], box=job["box"],
                            tracker_kwargs=settings["tracker"], max_frames=settings["max_frames"],
                            threads=settings["threads"])
    except VideoError as e:
        return {"frame_dir": job["frame_dir"], "failed": str(e)}
    except Exception as e:  # one bad video must not stop the others: reported, the rest goes on
        return {"frame_dir": job["frame_dir"], "failed": f"{job['video']}: {type(e).__name__}: {e}"}
    part = {"key": job["key"], "annotation": res.annotation,
            "stats": {"frames": res.frames, "detected": res.detected, "seconds": res.seconds, "error": res.error}}
    with atomic_write(job["part"], "wb") as f:
        pickle.dump(part, f, protocol=4)
    return {"frame_dir": job["frame_dir"], "stats": part["stats"]}


@dataclass
class DatasetSummary:
    """What :func:`extract_dataset` did."""

    out: Path
    videos: int
    extracted: int
    reused: int
    failed: dict[str, str]
    decode_errors: dict[str, str]
    frames: int
    detected: int
    seconds: float
    frames_done: int
    per_class: list[dict[str, Any]]

    @property
    def frames_per_second(self) -> float:
        """Frames extracted in this run per second of wall time (reused parts not counted)."""
        return self.frames_done / self.seconds if self.seconds > 0 and self.frames_done else float("nan")


def extract_dataset(entries: Sequence[VideoEntry], out: "str | os.PathLike", *, classes: Sequence[str] | None = None,
                    backend: str = "mediapipe", backend_kwargs: Mapping[str, Any] | None = None,
                    tracker_kwargs: Mapping[str, Any] | None = None, workers: int = 1,
                    parts_dir: "str | os.PathLike | None" = None, split: Mapping[str, Sequence[str]] | None = None,
                    max_frames: int | None = None, progress: bool = True, source: str = "") -> DatasetSummary:
    """Extract every entry (resuming from finished part files) and write the dataset pickle ``out``."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not entries:
        raise LabelsError("extract_dataset: no videos")
    out = Path(out)
    parts = Path(parts_dir) if parts_dir is not None else out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    settings = {"backend": backend, "backend_kwargs": dict(backend_kwargs or {}),
                "tracker": dict(tracker_kwargs or {}), "max_frames": max_frames,
                "threads": 1 if workers > 1 else 0}
    key_settings = {k: v for k, v in settings.items() if k != "threads"}
    jobs, done = [], {}
    for e in entries:
        key = _job_key(e, key_settings)
        part_path = _part_path(parts, e.frame_dir)
        part = _read_part(part_path, key)
        if part is not None:
            done[e.frame_dir] = part
        else:
            jobs.append({"video": str(e.video), "frame_dir": e.frame_dir, "box": e.box, "key": key,
                         "part": str(part_path), "settings": settings})
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    frames_done = 0
    bar = _progress(len(entries), len(done), progress)
    try:
        if workers == 1 or len(jobs) <= 1:
            results: Iterable[dict[str, Any]] = (_run_job(j) for j in jobs)
            frames_done = _consume(results, bar, failed)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as ex:
                futures = [ex.submit(_run_job, j) for j in jobs]
                frames_done = _consume((f.result() for f in as_completed(futures)), bar, failed)
    finally:
        bar.close()
        for b in _WORKER_BACKENDS.values():
            b.close()
        _WORKER_BACKENDS.clear()
    seconds = time.perf_counter() - t0
    for j in jobs:
        if j["frame_dir"] not in failed:
            part = _read_part(Path(j["part"]), j["key"])
            if part is None:
                failed[j["frame_dir"]] = f"part file {j['part']} missing after extraction"
            else:
                done[j["frame_dir"]] = part
    anns = []
    for e in entries:
        part = done.get(e.frame_dir)
        if part is None:
            continue
        ann = dict(part["annotation"])
        ann["label"] = int(e.label)
        if e.actor is not None:
            ann["actor"] = e.actor
        anns.append(ann)
    if split is None:
        split = make_split(entries)
    kept = {a["frame_dir"] for a in anns}
    split_out = {k: [x for x in v if x in kept] for k, v in split.items()}
    meta: dict[str, Any] = {"layout": LAYOUT, "source": source or f"finetec data extract ({backend})"}
    if classes is not None:
        meta["classes"] = list(classes)
    if anns:
        save_annotations({"split": split_out, "annotations": anns, "meta": meta}, out)
    decode_errors = {fd: p["stats"]["error"] for fd, p in done.items() if p["stats"].get("error")}
    frames = sum(int(a["total_frames"]) for a in anns)
    detected = sum(int(np.asarray(a["frame_mask"]).sum()) for a in anns)
    return DatasetSummary(out, len(entries), len(jobs) - len(failed), len(entries) - len(jobs), failed, decode_errors,
                          frames, detected, seconds, frames_done, detection_rates(anns, classes))


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of both environments
        return _NoBar()
    return tqdm(total=total, initial=initial, unit="video", desc="extract", file=sys.stderr, dynamic_ncols=True)


def _consume(results: Iterable[dict[str, Any]], bar: Any, failed: dict[str, str]) -> int:
    frames = 0
    t0 = time.perf_counter()
    for r in results:
        if "failed" in r:
            failed[r["frame_dir"]] = r["failed"]
        else:
            frames += int(r["stats"]["frames"])
            bar.set_postfix_str(f"{frames / max(time.perf_counter() - t0, 1e-9):.1f} frames/s")
        bar.update(1)
    return frames


# ---------------------------------------------------------------------------------------------------- statistics
def detection_rates(annotations: Sequence[Mapping[str, Any]], classes: Sequence[str] | None = None
                    ) -> list[dict[str, Any]]:
    """Per class: videos, frames, frames with a person (``frame_mask``) and their ratio, plus videos where nobody
    was found; one row per label present, in label order."""
    rows: dict[int, dict[str, Any]] = {}
    for a in annotations:
        lab = int(a["label"])
        fm = np.asarray(a.get("frame_mask", np.ones(int(a["total_frames"]), dtype=bool)), dtype=bool)
        r = rows.setdefault(lab, {"label": lab, "videos": 0, "frames": 0, "detected": 0, "empty_videos": 0})
        r["videos"] += 1
        r["frames"] += int(fm.size)
        r["detected"] += int(fm.sum())
        r["empty_videos"] += int(not fm.any())
    out = []
    for lab in sorted(rows):
        r = rows[lab]
        r["class"] = (classes[lab] if classes is not None and 0 <= lab < len(classes)
                      else "(no label)" if lab == -1 else str(lab))
        r["rate"] = r["detected"] / r["frames"] if r["frames"] else float("nan")
        out.append(r)
    return out


def format_detection_rates(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`detection_rates` rows with a total line."""
    lines = [f"{'class':<20} {'videos':>6} {'frames':>7} {'with person':>11} {'rate':>7} {'no person at all':>16}"]
    for r in rows:
        lines.append(f"{r['class'][:20]:<20} {r['videos']:>6} {r['frames']:>7} {r['detected']:>11} "
                     f"{r['rate']:>7.1%} {r['empty_videos']:>16}")
    F = sum(r["frames"] for r in rows)
    D = sum(r["detected"] for r in rows)
    lines.append(f"{'all':<20} {sum(r['videos'] for r in rows):>6} {F:>7} {D:>11} "
                 f"{(D / F if F else float('nan')):>7.1%} {sum(r['empty_videos'] for r in rows):>16}")
    return "\n".join(lines)
