"""Answering with a trained recognizer: :class:`Predictor` (whole sequences) and :class:`StreamRecognizer`
(a sliding window over frames arriving one by one).

The predictor rebuilds the model from the weights' own config (``finetec train`` stores it in ``model.pth``),
keeps only what inference needs (SF-Head's ``inference_model()``), and prepares each sequence with the config's
test pipeline (normalisation, ``UniformSampleFrames`` test clips, streams, persons), averaging the softmax over
the test clips as evaluation does. A sequence in another layout is converted to the model's layout when the two
layouts map (``finetec.layouts``); frames without a person stay missing frames (``mask`` False), which is what the
corruption-robust models are trained for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .data.sample import SampleError, SkeletonSample
from .data.transforms import build_pipeline, default_pipeline
from .layouts import convert_keypoints, get_layout

__all__ = ["Prediction", "Predictor", "RGBPredictor", "open_predictor", "fused_predictions", "WindowResult",
           "StreamRecognizer", "FrameStream"]


@dataclass
class Prediction:
    """Class probabilities of one sequence: ``scores [K]`` and the ``topk`` ``(class name, probability)``."""

    id: str
    scores: np.ndarray
    topk: list[tuple[str, float]]
    label: int = -1  # the sample's own label when known (pickles), else -1

    @property
    def top1(self) -> str:
        return self.topk[0][0]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "top1": self.top1, "topk": [{"class": c, "prob": p} for c, p in self.topk],
                "label": self.label}


class Predictor:
    """A trained recognizer ready to answer.

    Args:
        ckpt: exported ``model.pth`` or a Lightning ``.ckpt`` of a recognition run.
        num_clips: test clips averaged per sequence (default: the config's ``data.num_clips_test``).
        batch_size: sequences per forward pass in :meth:`predict`.
    """

    input_kind = "skeleton"

    def __init__(self, ckpt: "str | os.PathLike", num_clips: int | None = None, batch_size: int = 32,
                 loaded: tuple[Any, dict, dict] | None = None) -> None:
        from .engine.checkpoint import CheckpointError

        model, meta, cfg = loaded or _load_recognizer(ckpt)
        if getattr(model, "input_kind", "skeleton") != "skeleton":
            raise CheckpointError(f"{ckpt}: a {model.input_kind!r} model ({cfg['model'].get('name')})"
                                  "; the Predictor answers skeleton sequences only: use RGBPredictor (or "
                                  "open_predictor, which picks the right one)")
        self.model = (model.inference_model() if hasattr(model, "inference_model") else model).eval()
        if callable(getattr(self.model, "fuse_for_inference", None)):
            self.model.fuse_for_inference()  # folded BatchNorm / cached graphs: same outputs up to rounding
        self.needs_mask = bool(getattr(self.model, "needs_mask", False))
        self.returns_aux = bool(getattr(self.model, "returns_aux", False))
        self.layout = get_layout(meta["layout"])
        self.num_classes = int(meta["num_classes"])
        classes = meta.get("classes")
        self.classes = [str(c) for c in classes] if classes else [str(i) for i in range(self.num_classes)]
        d = cfg["data"]
        self.clip_len = int(d["clip_len"])
        self.num_clips = int(num_clips or d["num_clips_test"])
        self.batch_size = int(batch_size)
        self.config, self.ckpt = cfg, str(ckpt)
        self.pipeline = build_pipeline(default_pipeline(
            self.layout, clip_len=self.clip_len, num_clips=self.num_clips, test_mode=True, feats=d["feats"],
            corruption=None, norm=d["norm"], augment=False, num_person=int(d["num_person"])))

    # ------------------------------------------------------------------ inputs
    def to_sample(self, item: "SkeletonSample | Mapping[str, Any]", layout: str | None = None) -> SkeletonSample:
        """A validated :class:`SkeletonSample` in the model's layout from a sample or a PYSKL annotation dict."""
        if isinstance(item, SkeletonSample):
            s = item
        elif isinstance(item, Mapping):
            s = SkeletonSample.from_pyskl(dict(item), layout=layout or self.layout.name)
        else:
            raise TypeError(f"expected a SkeletonSample or a PYSKL annotation dict, got {type(item).__name__}")
        if s.layout != self.layout.name:
            try:
                kp, sc = convert_keypoints(s.keypoint, s.scores, s.layout, self.layout)
            except (ValueError, KeyError) as e:
                raise SampleError(f"sample {s.id!r}: layout {s.layout!r} cannot be converted to the model's "
                                  f"{self.layout.name!r}: {e}") from e
            s = s.copy(keypoint=kp, score=sc, layout=self.layout.name)
        s.validate(self.layout.num_joints, where=f"sample {s.id!r}: ")
        return s

    def _inputs(self, s: SkeletonSample) -> tuple[np.ndarray, np.ndarray]:
        res = self.pipeline({"keypoint": s.keypoint.copy(), "keypoint_score": s.scores.copy(), "mask": s.mask.copy(),
                             "label": int(s.label), "frame_dir": s.id, "img_shape": s.img_shape,
                             "layout": self.layout, "total_frames": s.num_frames,
                             "rng": np.random.default_rng(0)})
        return np.asarray(res["keypoint"], np.float32), np.asarray(res["mask"], bool)

    # ------------------------------------------------------------------ answers
    @torch.inference_mode()
    def scores(self, samples: Sequence[SkeletonSample]) -> np.ndarray:
        """Softmax scores ``[N, K]`` averaged over the test clips, in batches of ``batch_size``."""
        out = []
        for i in range(0, len(samples), self.batch_size):  # batches of sequences, not single ones
            xs, ms = zip(*(self._inputs(s) for s in samples[i:i + self.batch_size]))
            x = torch.from_numpy(np.stack(xs))  # [n, nc, M, T, V, C]
            mask = torch.from_numpy(np.stack(ms))  # [n, nc, T]
            n, nc = x.shape[:2]
            flat_x, flat_m = x.flatten(0, 1), mask.flatten(0, 1)
            logits = self.model(flat_x, mask=flat_m) if self.needs_mask else self.model(flat_x)
            if self.returns_aux:
                logits = logits[0]
            out.append(logits.float().softmax(-1).view(n, nc, -1).mean(1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.num_classes), np.float32)

    def predict(self, items: Sequence["SkeletonSample | Mapping[str, Any]"], topk: int = 5,
                layout: str | None = None) -> list[Prediction]:
        samples = [self.to_sample(it, layout) for it in items]
        sc = self.scores(samples)
        k = max(1, min(int(topk), self.num_classes))
        order = np.argsort(-sc, axis=1)[:, :k]
        return [Prediction(s.id, sc[i], [(self.classes[j], float(sc[i, j])) for j in order[i]], int(s.label))
                for i, s in enumerate(samples)]


def _load_recognizer(ckpt: "str | os.PathLike") -> tuple[Any, dict, dict]:
    from .deploy.export import ExportError, load_recognizer
    from .engine.checkpoint import CheckpointError

    try:  # the one checkpoint -> recognizer loader (config inside the weights, strict load)
        return load_recognizer(ckpt)
    except ExportError as e:
        raise CheckpointError(str(e)) from e


class RGBPredictor:
    """A trained RGB recognizer (config ``task: rgb``, e.g. ``tsm``) answering for videos paired with their skeletons.

    Each item is a PYSKL annotation dict; its video is ``filename`` (absolute, or relative to ``video_root``) or
    ``<video_root>/<frame_dir><suffix>``, and its skeleton guides the crop when the model was trained with it
    (``data.video.crop``). The clips are the config's test clips (``data.num_clips_test``), sampled, cropped and
    resized as evaluation does; the softmax is averaged over them.

    Args:
        ckpt: ``model.pth`` / Lightning ``.ckpt`` of a ``task: rgb`` run.
        num_clips: test clips per video (default: the config's).
        batch_size: videos per forward pass.
        video_root: where relative video names are found (default: the config's ``data.video.root``).
    """

    input_kind = "rgb"

    def __init__(self, ckpt: "str | os.PathLike", num_clips: int | None = None, batch_size: int = 4,
                 video_root: "str | os.PathLike | None" = None, loaded: tuple[Any, dict, dict] | None = None) -> None:
        from .data.video import video_pipeline
        from .engine.checkpoint import CheckpointError

        model, meta, cfg = loaded or _load_recognizer(ckpt)
        if getattr(model, "input_kind", "skeleton") != "rgb":
            raise CheckpointError(f"{ckpt}: a skeleton model ({cfg['model'].get('name')}); use Predictor")
        self.model = model.eval()
        self.layout = get_layout(meta["layout"])
        self.num_classes = int(meta["num_classes"])
        classes = meta.get("classes")
        self.classes = [str(c) for c in classes] if classes else [str(i) for i in range(self.num_classes)]
        d, v = cfg["data"], cfg["data"]["video"]
        self.num_clips = int(num_clips or d["num_clips_test"])
        self.batch_size = int(batch_size)
        self.seed = int(cfg.get("test", {}).get("seed", 0))
        self.config, self.ckpt = cfg, str(ckpt)
        root = video_root if video_root is not None else v.get("root")
        self.pipeline = video_pipeline(
            num_segments=int(v["num_segments"]), frames_per_segment=int(v["frames_per_segment"]),
            num_clips=self.num_clips, test_mode=True, video_root=root, suffix=str(v["suffix"]), size=int(v["size"]),
            crop=bool(v["crop"]), alpha=float(v["alpha"]), min_box=float(v["min_box"]), flip=False)

    @torch.inference_mode()
    def scores(self, items: Sequence[Mapping[str, Any]], layout: str | None = None) -> np.ndarray:
        """Softmax scores ``[N, K]`` of the annotation dicts ``items`` (each with its video), in input order."""
        from .data.video import VideoDataset

        if not items:
            return np.zeros((0, self.num_classes), np.float32)
        ds = VideoDataset({"annotations": [dict(a) for a in items], "split": {}, "meta": {}}, None, self.pipeline,
                          layout=layout or self.layout.name, seed=self.seed, test_mode=True, require_labels=False,
                          name="prediction input")
        out = []
        for i in range(0, len(ds), self.batch_size):  # batches of videos
            x = torch.stack([ds[j]["imgs"] for j in range(i, min(i + self.batch_size, len(ds)))])
            n, nc = x.shape[:2]
            logits = self.model(x.flatten(0, 1))
            out.append(logits.float().softmax(-1).view(n, nc, -1).mean(1).numpy())
        return np.concatenate(out)


def open_predictor(ckpt: "str | os.PathLike", **kwargs: Any) -> "Predictor | RGBPredictor":
    """The predictor a checkpoint needs: :class:`RGBPredictor` for an RGB model, else :class:`Predictor`.
    ``video_root`` is passed to RGB predictors only."""
    loaded = _load_recognizer(ckpt)
    video_root = kwargs.pop("video_root", None)
    if getattr(loaded[0], "input_kind", "skeleton") == "rgb":
        return RGBPredictor(ckpt, loaded=loaded, video_root=video_root, **kwargs)
    return Predictor(ckpt, loaded=loaded, **kwargs)


def fused_predictions(predictors: Sequence["Predictor | RGBPredictor"], items: Sequence[Mapping[str, Any]],
                      weights: Sequence[float] | None = None, topk: int = 5,
                      layout: str | None = None) -> tuple[list[Prediction], list[np.ndarray]]:
    """Eq. 14 score fusion of several trained models (skeleton streams and/or RGB) on the same annotation dicts.

    Returns the fused predictions and each model's scores ``[N, K]``. The models must share their classes (same
    names, same order); weights default to equal and are normalised (:func:`~finetec.models.multimodal.fusion.
    score_fusion`).
    """
    from .models.multimodal.fusion import score_fusion

    if not predictors:
        raise ValueError("fused_predictions: no model given")
    first = predictors[0]
    for p in predictors[1:]:
        if p.classes != first.classes:
            raise ValueError(f"{p.ckpt} and {first.ckpt} do not share their classes ({p.num_classes} vs "
                             f"{first.num_classes}, or other names / order); their scores cannot be fused")
    per = []
    for p in predictors:
        if isinstance(p, RGBPredictor):
            per.append(p.scores(items, layout=layout))
        else:
            per.append(p.scores([p.to_sample(a, layout) for a in items]))
    fused = score_fusion(per, weights) if len(per) > 1 else per[0].astype(np.float64)
    k = max(1, min(int(topk), first.num_classes))
    order = np.argsort(-fused, axis=1)[:, :k]
    preds = [Prediction(str(a.get("frame_dir", i)), fused[i], [(first.classes[j], float(fused[i, j])) for j in order[i]],
                        int(a.get("label", -1))) for i, a in enumerate(items)]
    return preds, per


@dataclass
class WindowResult:
    """The answer for one window of a stream."""

    start: int  # first frame index of the window
    end: int  # last frame index (inclusive)
    valid_frames: int  # frames of the window with a person
    topk: list[tuple[str, float]] = field(default_factory=list)  # empty when no frame had a person
    latency_ms: float = 0.0  # recognition time of this window

    @property
    def label(self) -> str | None:
        return self.topk[0][0] if self.topk else None


class StreamRecognizer:
    """Recognition over a sliding window as frames arrive (:meth:`push`, one frame's pose at a time).

    A frame whose pose estimation failed is pushed as ``None``: it is a missing frame of the window, not an error.
    Every ``stride`` frames once ``window`` frames have arrived, the last ``window`` frames are recognized (a window
    with no person at all gets an empty answer, not a guess).

    Args:
        predictor: the trained recognizer.
        window: frames per window (default: the model's clip length).
        stride: frames between two answers (default: half a window).
        img_shape: ``(h, w)`` of the frames (pixel coordinates are normalised by it, as in training).
        topk: classes reported per window.
    """

    def __init__(self, predictor: Predictor, window: int | None = None, stride: int | None = None,
                 img_shape: tuple[int, int] | None = None, topk: int = 3) -> None:
        self.predictor = predictor
        self.window = int(window or predictor.clip_len)
        self.stride = int(stride or max(1, self.window // 2))
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {self.window}, {self.stride}")
        V = predictor.layout.num_joints
        self.img_shape = img_shape
        self.topk = int(topk)
        self._kp = np.zeros((self.window, V, 2), np.float32)
        self._sc = np.zeros((self.window, V), np.float32)
        self._ok = np.zeros(self.window, bool)
        self.frames = 0  # frames pushed so far

    def push(self, keypoints: np.ndarray | None, scores: np.ndarray | None = None) -> WindowResult | None:
        """Add one frame (``keypoints [V, 2]`` in pixels and ``scores [V]``, or ``None`` when no person was
        found); returns the window's answer when one is due, else ``None``."""
        V = self.predictor.layout.num_joints
        i = self.frames % self.window
        if keypoints is None:
            self._kp[i], self._sc[i], self._ok[i] = 0.0, 0.0, False
        else:
            kp = np.asarray(keypoints, np.float32)
            if kp.shape != (V, 2):
                raise ValueError(f"frame {self.frames}: keypoints must be [{V}, 2] in the model's layout "
                                 f"{self.predictor.layout.name!r}, got {kp.shape}")
            sc = np.ones(V, np.float32) if scores is None else np.asarray(scores, np.float32)
            if sc.shape != (V,):
                raise ValueError(f"frame {self.frames}: scores must be [{V}], got {sc.shape}")
            bad = ~np.isfinite(kp).all(-1)
            self._kp[i] = np.where(bad[:, None], 0.0, kp)
            self._sc[i] = np.where(bad, 0.0, sc)
            self._ok[i] = bool((self._sc[i] > 0).any())
        self.frames += 1
        if self.frames < self.window or (self.frames - self.window) % self.stride:
            return None
        return self._recognize()

    def _recognize(self) -> WindowResult:
        order = (np.arange(self.window) + self.frames) % self.window  # oldest first
        start, end = self.frames - self.window, self.frames - 1
        ok = self._ok[order]
        res = WindowResult(start, end, int(ok.sum()))
        if not ok.any():
            return res
        t0 = time.perf_counter()
        s = SkeletonSample(keypoint=self._kp[order][None].copy(), score=self._sc[order][None].copy(), mask=ok.copy(),
                           id=f"frames {start}-{end}", img_shape=self.img_shape, layout=self.predictor.layout.name)
        res.topk = self.predictor.predict([s], topk=self.topk)[0].topk
        res.latency_ms = (time.perf_counter() - t0) * 1e3
        return res


class FrameStream:
    """Raw video frames in, window answers out: a pose backend (:class:`finetec.pose.PoseBackend`), the single-person
    tracker and a :class:`StreamRecognizer`, one RGB frame ``[H, W, 3]`` uint8 at a time.

    The backend must be importable in this environment (MediaPipe needs the pose environment, which has no torch;
    ``finetec stream`` therefore runs the pose part in a child process, :mod:`finetec.pose.stream`). A frame where
    the backend finds nobody is a missing frame of the window.
    """

    def __init__(self, backend: Any, predictor: Predictor, window: int | None = None, stride: int | None = None,
                 box: tuple[float, float, float, float] | None = None, topk: int = 3) -> None:
        from .pose.tracker import SingleTracker

        self.backend, self.predictor, self.box = backend, predictor, box
        self.tracker = SingleTracker(box)
        self.window, self.stride, self.topk = window, stride, topk
        self.stream: StreamRecognizer | None = None

    def push(self, frame: np.ndarray) -> WindowResult | None:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be RGB uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self.stream is None:
            self.stream = StreamRecognizer(self.predictor, self.window, self.stride, img_shape=(h, w), topk=self.topk)
        roi = (self.tracker.roi(frame.shape) or (0.0, 0.0, float(w), float(h))) if self.box is not None else None
        person = self.tracker.update(self.backend.process(frame, roi))
        if person is None:
            return self.stream.push(None)
        kp, sc = person.keypoints, person.scores
        if person.layout != self.predictor.layout.name:
            kp, sc = convert_keypoints(kp, sc, person.layout, self.predictor.layout)
        return self.stream.push(kp, sc)
