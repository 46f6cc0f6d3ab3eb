"""What the experiment-table scripts share (finetec_tables.py, sfhead_tables.py): a cached train-and-test run,
markdown / CSV / PNG writers and the machine line of a report. Not a user API: scripts import it by name."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    key: str
    label: str
    config: str
    overrides: list[str] = field(default_factory=list)
    task: str = "recognition"
    trained: bool = True
    levels: tuple[str, ...] = ("clean",)


def quiet() -> None:
    """Lightning's info lines and the known harmless warnings off (the tables print their own progress)."""
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning(\..*)?")
    warnings.filterwarnings("ignore", message=r".*skipped \d+ sample\(s\) with no visible joint.*")


def cached_run(run: Run, cfg: Mapping[str, Any], work_dir: Path, tag: str = "") -> dict[str, Any]:
    """Train ``cfg`` (if ``run.trained`` and not done) and test it at ``run.levels``; cached in
    ``work_dir/results.json`` and reused only when made from the same resolved config (plus ``tag``, e.g. the hash
    of weights it starts from). Returns the cache dict: ``metrics`` per level, ``train_s``, ``test_s``."""
    from finetec.engine import test, train
    from finetec.utils.io import atomic_write_text

    key = hashlib.sha256((json.dumps(cfg, sort_keys=True, default=str) + tag).encode()).hexdigest()
    cache = work_dir / "results.json"
    done: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    if done and done.get("key") != key:
        print(f"[tables] {run.key}: config or starting weights changed, retraining", flush=True)
        shutil.rmtree(work_dir)
        done = {}
    missing = [lv for lv in run.levels if lv not in done.get("metrics", {})]
    if not missing:
        return done
    done["key"] = key
    ckpt = work_dir / "model.pth"
    t0 = time.time()
    if run.trained and not ckpt.is_file():
        train(cfg, run_test=False)
        done["train_s"] = time.time() - t0
    t1 = time.time()
    done.setdefault("metrics", {}).update(test(cfg, ckpt if run.trained else None, missing))
    done["test_s"] = done.get("test_s", 0.0) + time.time() - t1
    done["config"], done["overrides"] = run.config, run.overrides
    atomic_write_text(cache, json.dumps(done, indent=2) + "\n")
    shown = "  ".join(f"{lv}: " + (f"{m['top1']:.3f}" if "top1" in m else f"{m['mpjpe_missing']:.4f}")
                      for lv, m in done["metrics"].items())
    print(f"[tables] {run.key:14s} {run.label:34s} ({time.time() - t0:5.0f} s) {shown}", flush=True)
    return done


def file_hash(path: "str | os.PathLike") -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    from finetec.utils.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from finetec.utils.io import atomic_write

    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def machine_line() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {platform.platform()}")


def utc_now() -> str:
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}"
