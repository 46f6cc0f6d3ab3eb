"""Pose-extraction speed: frames/s of MediaPipe (``finetec.pose``) on sports2d_demo.mp4 and a few Florence clips.

For each video: decoding alone (PyAV -> RGB), and the whole extraction (decode + MediaPipe + tracker + arrays),
one process, as ``finetec data extract --workers 1`` runs it; the time of building MediaPipe's graph for each video
is included (it is part of extracting a video). A warm-up video is run first and not timed. Prints a table with the
machine and the date; ``--out`` also writes it as CSV. Runs in the pose environment (no torch)::

    .venv-pose/bin/python benchmarks/extraction.py                 # demo video + 5 Florence clips
    .venv-pose/bin/python benchmarks/extraction.py --clips 10 --out results/extraction_speed.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from finetec.pose.extract import extract_video  # noqa: E402
from finetec.pose.mediapipe_backend import MediaPipeBackend  # noqa: E402
from finetec.utils.io import atomic_write_text  # noqa: E402
from finetec.video.io import VideoReader  # noqa: E402


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def decode_fps(path: Path, max_frames: int | None) -> tuple[int, float]:
    t0 = time.perf_counter()
    with VideoReader(path, max_frames=max_frames) as r:
        n = sum(1 for _ in r)
    return n, n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    data = REPO.parent / "shared" / "data"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, default=data / "videos" / "sports2d_demo.mp4")
    ap.add_argument("--florence", type=Path, default=data / "florence3d" / "videos")
    ap.add_argument("--clips", type=int, default=5, help="Florence clips to time (first N by name)")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per video (default: all)")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as CSV")
    args = ap.parse_args(argv)

    videos = [args.demo] if args.demo.is_file() else []
    if args.florence.is_dir():
        videos += sorted(args.florence.glob("*.mp4"))[: args.clips]
    if not videos:
        print("no videos found (give --demo / --florence)", file=sys.stderr)
        return 2
    import mediapipe

    backend = MediaPipeBackend()
    extract_video(videos[-1], backend, max_frames=5)  # warm-up: libraries loaded, caches filled
    load_before = _load()
    rows = []
    for v in videos:
        n_dec, dec = decode_fps(v, args.max_frames)
        res = extract_video(v, backend, max_frames=args.max_frames)
        h, w = res.annotation["img_shape"]
        rows.append({"video": v.name, "size": f"{w}x{h}", "frames": res.frames, "decode_fps": dec,
                     "extract_fps": res.frames / res.seconds, "with_person": res.detected})
    backend.close()
    total_f = sum(r["frames"] for r in rows)
    total_s = sum(r["frames"] / r["extract_fps"] for r in rows)

    print(f"# pose extraction speed, {_dt.datetime.now().isoformat(timespec='seconds')}")
    print(f"# machine: {_cpu()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}; "
          f"Python {platform.python_version()}, mediapipe {mediapipe.__version__} (model_complexity=1, CPU); "
          f"load average before {load_before}, after {_load()}")
    head = f"{'video':<58} {'size':>9} {'frames':>6} {'decode f/s':>10} {'extract f/s':>11} {'with person':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['video'][:58]:<58} {r['size']:>9} {r['frames']:>6} {r['decode_fps']:>10.1f} "
              f"{r['extract_fps']:>11.1f} {r['with_person']:>6}/{r['frames']:<4}")
    print(f"{'all (frame-weighted)':<58} {'':>9} {total_f:>6} {'':>10} {total_f / total_s:>11.1f}")
    if args.out is not None:
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
        atomic_write_text(args.out, buf.getvalue())
        print(f"# wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
