"""Streaming recognition latency per window (``finetec.inference.StreamRecognizer``) on a real video's poses.

    python benchmarks/streaming.py --ckpt work_dirs/florence3d/stgcnpp_j/model.pth
    python benchmarks/streaming.py --ckpt A.pth --ckpt B.pth --poses data_cache/sports2d_demo_coco17.pkl --stride 4

The poses come from a PYSKL pickle made by ``finetec data extract`` (default: the demo video's,
``data_cache/sports2d_demo_coco17.pkl``; frames where MediaPipe found no person are pushed as ``None``), so the
table isolates the recognizer's cost per window; the pose estimation's own frames/s is ``benchmarks/extraction.py``.
Per model: windows answered, median / 90th percentile / max latency per window (ms, one test clip per window), and
the real-time margin at the video's frame rate (stride / fps versus the median latency).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from finetec.data.io import load_annotations
from finetec.inference import Predictor, StreamRecognizer
from finetec.layouts import convert_keypoints

REPO = Path(__file__).resolve().parents[1]


def run(ckpt: str, ann: dict, window: int | None, stride: int, warmup: int = 2) -> dict[str, float]:
    p = Predictor(ckpt, num_clips=1)
    kp, sc, mask = ann["keypoint"][0], ann["keypoint_score"][0], ann.get("frame_mask")
    mask = np.ones(kp.shape[0], bool) if mask is None else np.asarray(mask, bool)
    if p.layout.name != "coco17":
        kp, sc = convert_keypoints(kp, sc, "coco17", p.layout)
    for _ in range(warmup):  # first calls build oneDNN kernels
        s = StreamRecognizer(p, window, stride, img_shape=tuple(ann["img_shape"]))
        for t in range(min(kp.shape[0], s.window)):
            s.push(kp[t] if mask[t] else None, sc[t])
    s = StreamRecognizer(p, window, stride, img_shape=tuple(ann["img_shape"]))
    lat, t0 = [], time.perf_counter()
    for t in range(kp.shape[0]):  # frames arrive one by one: the stream's own loop
        r = s.push(kp[t] if mask[t] else None, sc[t])
        if r is not None and r.topk:
            lat.append(r.latency_ms)
    total = time.perf_counter() - t0
    if not lat:
        raise SystemExit(f"{ckpt}: no window was answered (video shorter than the window?)")
    return {"model": p.config["model"]["name"], "window": s.window, "stride": s.stride, "windows": len(lat),
            "median_ms": statistics.median(lat), "p90_ms": float(np.percentile(lat, 90)), "max_ms": max(lat),
            "frames": int(kp.shape[0]), "total_s": total}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", action="append", required=True, help="model.pth (repeat for several models)")
    ap.add_argument("--poses", default=str(REPO / "data_cache" / "sports2d_demo_coco17.pkl"))
    ap.add_argument("--window", type=int, default=None, help="default: each model's clip length")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--fps", type=float, default=None, help="video frame rate (default: the pickle's, else 30)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ann = load_annotations(args.poses)["annotations"][0]
    fps = args.fps or float(ann.get("fps") or 30.0)
    print(f"# streaming latency ({datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC})\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} threads, "
          f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}; poses: {args.poses} "
          f"({ann['keypoint'].shape[1]} frames, {int(np.sum(~np.asarray(ann.get('frame_mask', True))))} without a "
          f"person), {fps:g} fps\n")
    print("| model | window | stride | windows | median ms | p90 ms | max ms | budget per window at the video's fps "
          "(stride / fps) | real-time margin |")
    print("|---|---|---|---|---|---|---|---|---|")
    for ck in args.ckpt:
        r = run(ck, ann, args.window, args.stride)
        budget = 1e3 * r["stride"] / fps
        print(f"| {r['model']} | {r['window']} | {r['stride']} | {r['windows']} | {r['median_ms']:.1f} | "
              f"{r['p90_ms']:.1f} | {r['max_ms']:.1f} | {budget:.0f} ms | {budget / r['median_ms']:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
