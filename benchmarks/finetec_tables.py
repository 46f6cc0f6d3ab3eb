"""FineTec's experiments on Penn Action (or any PYSKL pickle): Tables 1, 3, 4, 5, 6, CA vs MLP and Figure 4.

    python benchmarks/finetec_tables.py                       # quick CPU preset (slim widths, short schedules)
    python benchmarks/finetec_tables.py --full                # standard widths, the configs' schedules
    python benchmarks/finetec_tables.py --only table3 table1  # a subset; finished runs are reused (resumable)
    python benchmarks/finetec_tables.py --ann-file my.pkl --layout coco17 ...   # another dataset

Protocol (docs/finetec.md): every recognizer -- the Table-1 baselines, FineTec and its ablations -- is trained once
on clips corrupted at a random paper level per clip (minor / moderate / severe: 25 / 50 / 75 % of the frames dropped,
survivors compacted, zero-padded) and tested at each level on the test split with the fixed evaluation corruption.
Completion models (FineTec's stage 1, siMLPe, SiC) are trained the same way on (corrupted, clean) pairs; the
restoration metrics are measured on the test split. FineTec's stage 2 starts from the stage-1 completion, frozen.

Writes ``OUT/<run>/finetec_tables.md``, one CSV per table and ``figure4.png``; each run's work dir (weights,
logs, metrics.json) stays under ``OUT/<run>/runs/<key>`` and is reused when the script is run again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import dataclasses
from functools import partial

from tables_common import Run as _Run
from tables_common import (REPO, cached_run, file_hash, machine_line, md_table as _md, quiet as _quiet,
                           save_figure, utc_now, write_csv as _csv)

LEVELS = ("minor", "moderate", "severe")
ROBUST = ("S-low", "S-high", "T-low", "T-high")
Run = partial(_Run, levels=LEVELS)  # every run here is tested at the three paper levels unless told otherwise
TABLES = ("table3", "table1", "table4", "table5", "fusion", "figure4", "table6")


def completion_runs() -> list[_Run]:
    c = "configs/_base_/penn_completion.yaml"
    return [
        Run("c_lr_copy", "L-R Copy", c, ["model.name=lr_copy"], "completion", trained=False),
        Run("c_rl_copy", "R-L Copy", c, ["model.name=rl_copy"], "completion", trained=False),
        Run("c_interp", "Interpolation", c, ["model.name=interpolation"], "completion", trained=False),
        Run("c_dup", "Duplication", c, ["model.name=duplication"], "completion", trained=False),
        Run("c_simlpe", "siMLPe", "configs/completion/simlpe_penn.yaml", [], "completion"),
        Run("c_sic_stat", "SiC-Stat", "configs/completion/sic_stat_penn.yaml", [], "completion"),
        Run("c_sic_dyna", "SiC-Dyna", "configs/completion/sic_dyna_penn.yaml", [], "completion"),
        Run("c_ours_noicl", "Ours w/o ICL", "configs/finetec/completion_penn.yaml",
            ["model.train_prompt=null", "model.eval_prompt=null"], "completion"),
        Run("c_ours", "Ours (context-aware completion)", "configs/finetec/completion_penn.yaml", [], "completion"),
    ]


def baseline_runs() -> list[_Run]:
    return [
        Run("stgcn", "ST-GCN", "configs/stgcn/penn_j.yaml"),
        Run("pyskl_j", "PYSKL-J (ST-GCN++)", "configs/stgcnpp/penn_j.yaml"),
        Run("pyskl_b", "PYSKL-B (ST-GCN++)", "configs/stgcnpp/penn_b.yaml"),
        Run("posec3d_j", "PoseC3D-J", "configs/posec3d/penn_j.yaml"),
        Run("posec3d_l", "PoseC3D-L", "configs/posec3d/penn_l.yaml"),
        Run("aagcn", "AAGCN", "configs/aagcn/penn_j.yaml"),
        Run("ctrgcn", "CTR-GCN", "configs/ctrgcn/penn_j.yaml"),
        Run("sparse", "Sparse ST-GCN", "configs/sparse_stgcn/penn_j.yaml"),
    ]


def finetec_run(key: str, label: str, *overrides: str, levels: tuple[str, ...] = LEVELS) -> _Run:
    return Run(key, label, "configs/finetec/penn_j.yaml", list(overrides), levels=levels)


NO_INIT = ("init.ckpt=null", "init.into=")
RUNS_BY_TABLE: dict[str, list[_Run]] = {
    "table3": completion_runs(),
    "table1": baseline_runs() + [finetec_run("finetec", "FineTec (ours)")],
    "table4": [
        finetec_run("abl_no_cont", "w/o Cont.", "model.completion=none", *NO_INIT),
        finetec_run("abl_no_skel", "w/o Skel.", "model.decomposition=false"),
        finetec_run("abl_no_phys", "w/o Phys.", "model.physics=false"),
        finetec_run("finetec", "FineTec (ours)"),
    ],
    "table5": [
        finetec_run("abl_stat_only", "S_stat only", "model.use_dyna=false"),
        finetec_run("abl_dyna_only", "S_dyna only", "model.use_stat=false"),
        finetec_run("finetec", "S_dyna + S_stat (FineTec)"),
    ],
    "fusion": [
        finetec_run("abl_mlp", "MLP fusion", "model.fusion=mlp"),
        finetec_run("finetec", "CA fusion (FineTec)"),
    ],
    "figure4": [
        finetec_run("fig4_dup", "Duplication", "model.completion=duplication", *NO_INIT),
        finetec_run("fig4_interp", "Interpolation", "model.completion=interpolation", *NO_INIT),
        finetec_run("finetec", "FineTec (ours)"),
    ],
    "table6": [
        finetec_run("finetec", "FineTec (ours)", levels=tuple(f"{b}+{p}" for b in ("minor", "severe") for p in ROBUST)
                    + ("minor", "severe")),
        Run("pyskl_j", "PYSKL-J (ST-GCN++)", "configs/stgcnpp/penn_j.yaml",
            levels=tuple(f"{b}+{p}" for b in ("minor", "severe") for p in ROBUST) + ("minor", "severe")),
    ],
}


# ---------------------------------------------------------------------------------------------------- running
def common_overrides(args: argparse.Namespace, work_dir: Path, task: str) -> list[str]:
    ov = [f"data.ann_file={args.ann_file}", f"trainer.work_dir={work_dir}", "trainer.val_every_n_epochs=0",
          "trainer.progress_bar=false", f"data.num_workers={args.workers}", f"trainer.seed={args.seed}",
          f"test.seed={args.seed}", "data.corruption.train=[minor, moderate, severe]",
          "data.corruption.test=severe"]
    if args.layout:
        ov.append(f"data.layout={args.layout}")
    if not args.full:
        ov += [f"trainer.precision={args.precision}", f"data.num_clips_test={args.test_clips}"]
        if task == "completion":
            ov.append(f"optim.epochs={args.completion_epochs}")
        else:
            ov += ["model.width=slim", f"optim.epochs={args.epochs}"]
    return ov


def run_one(run: _Run, args: argparse.Namespace, root: Path, stage1: Path | None) -> dict[str, dict[str, float]]:
    """Train (if needed) and test ``run`` at its levels; cached in ``root/runs/<key>/results.json``."""
    from finetec.engine import load_config

    work_dir = root / "runs" / run.key
    ov = common_overrides(args, work_dir, run.task) + list(run.overrides) + list(args.override)
    if run.config.endswith("finetec/penn_j.yaml") and not any(o.startswith("init.ckpt=") for o in run.overrides):
        if stage1 is None:
            raise RuntimeError(f"{run.key}: needs the stage-1 completion weights (run table3 first)")
        ov.append(f"init.ckpt={stage1}")
    cfg = load_config(REPO / run.config, ov)
    # a cached run is reused only if it was made from the same resolved config (and the same stage-1 weights)
    tag = file_hash(cfg["init"]["ckpt"]) if cfg["init"].get("ckpt") else ""
    return cached_run(run, cfg, work_dir, tag)["metrics"]


# ---------------------------------------------------------------------------------------------------- tables
def recognition_table(runs: list[_Run], res: dict[str, dict], levels=LEVELS, mean: bool = True):
    header = ["method"] + [f"{lv} {k}" for lv in levels for k in (("top-1", "mean") if mean else ("top-1",))]
    rows = []
    for r in runs:
        m = res.get(r.key)
        row: list[Any] = [r.label]
        if m is None or any(lv not in m for lv in levels):
            rows.append(row + ["not run"] * (len(header) - 1))
            continue
        for lv in levels:
            row.append(m[lv]["top1"])
            if mean:
                row.append(m[lv]["mean_class_accuracy"])
        rows.append(row)
    return header, rows


def restoration_tables(runs: list[_Run], res: dict[str, dict]):
    out = {}
    for frames in ("missing", "all"):
        header = ["method"] + [f"{lv} {k}" for lv in LEVELS for k in ("MPJPE", "N-MPJPE", "MPJVE")]
        rows = []
        for r in runs:
            m = res[r.key]
            rows.append([r.label] + [m[lv][f"{k}_{frames}"] for lv in LEVELS for k in ("mpjpe", "n_mpjpe", "mpjve")])
        out[frames] = (header, rows)
    return out


def plot_figure4(runs: list[_Run], res: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for r in runs:
        ax.plot(range(len(LEVELS)), [res[r.key][lv]["top1"] for lv in LEVELS], marker="o", label=r.label)
    ax.set_xticks(range(len(LEVELS)), [f"{lv}\n({p} % dropped)" for lv, p in zip(LEVELS, (25, 50, 75))])
    ax.set_ylabel("top-1 (Penn Action test)")
    ax.set_title("Completion feeding the same FineTec recognizer")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


TITLES = {
    "table3": "Table 3 -- skeleton restoration on the test split (normalised coordinates; lower is better)",
    "table1": "Table 1 -- recognition under temporal corruption (top-1 / mean-class)",
    "table4": "Table 4 -- module ablation (top-1)",
    "table5": "Table 5 -- S_dyna / S_stat (top-1)",
    "fusion": "Cross-attention vs MLP fusion (top-1)",
    "figure4": "Figure 4 -- completion method feeding the FineTec recognizer (top-1)",
    "table6": "Table 6 -- robustness to noise (S-low/S-high) and extra frame drops (T-low/T-high) (top-1 / top-5)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann-file", default="data_cache/penn_action.pkl")
    p.add_argument("--data", help="Penn Action labels folder or data root (to prepare --ann-file when missing)")
    p.add_argument("--layout", help="layout of --ann-file when its meta does not say")
    p.add_argument("--out", default="results")
    p.add_argument("--run", help="run name (default: finetec_tables_<quick|full>)")
    p.add_argument("--full", action="store_true", help="standard widths and the configs' schedules")
    p.add_argument("--only", nargs="+", choices=TABLES, default=list(TABLES))
    p.add_argument("--epochs", type=int, default=6, help="quick preset: recognition epochs")
    p.add_argument("--completion-epochs", type=int, default=10, help="quick preset: completion epochs")
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--test-clips", type=int, default=1)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", nargs="+", default=[], help="run keys not to run (their rows read 'not run')")
    p.add_argument("override", nargs="*", help="extra key=value overrides for every run")
    args = p.parse_args(argv)
    _quiet()
    os.chdir(REPO)
    ann = Path(args.ann_file)
    if not ann.is_file():
        from finetec.data.readers.penn import prepare_penn_action
        from finetec.demo import find_penn_labels

        prepare_penn_action(find_penn_labels(args.data), ann)
    root = Path(args.out) / (args.run or f"finetec_tables_{'full' if args.full else 'quick'}")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tables = [t for t in TABLES if t in args.only]
    needs_stage1 = any(t != "table3" for t in tables)
    res: dict[str, dict] = {}
    stage1 = None
    if "table3" in tables or needs_stage1:
        wanted = completion_runs() if "table3" in tables else [r for r in completion_runs() if r.key == "c_ours"]
        for r in wanted:
            res[r.key] = run_one(r, args, root, None)
        stage1 = root / "runs" / "c_ours" / "model.pth"
    failed: dict[str, str] = {}
    queue: dict[str, _Run] = {}
    for t in tables:
        if t == "table3":
            continue
        for r in RUNS_BY_TABLE[t]:
            if r.key in queue:  # the same run in several tables: test it at the union of their levels
                queue[r.key].levels = tuple(dict.fromkeys(queue[r.key].levels + r.levels))
            else:
                queue[r.key] = dataclasses.replace(r, overrides=list(r.overrides))
    # the 3D-CNN baselines are by far the slowest on a CPU: run them last
    for r in sorted(queue.values(), key=lambda r: r.key.startswith("posec3d")):
        if r.key in args.skip:
            continue
        try:
            res[r.key] = run_one(r, args, root, stage1)
        except Exception as e:  # one failed run must not lose the others' tables
            failed[r.key] = f"{type(e).__name__}: {e}"
            print(f"[tables] {r.key} FAILED: {failed[r.key]}", flush=True)
    # ---- report
    preset = ("full: standard widths, the configs' schedules" if args.full else
              f"quick: slim widths, {args.epochs} recognition / {args.completion_epochs} completion epochs, "
              f"{args.precision}, {args.test_clips} test clip(s)")
    cmd = "python benchmarks/finetec_tables.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = [f"# FineTec experiments on {ann.name}\n",
          f"- preset: {preset}\n- command: `{cmd.strip()}`\n"
          f"- machine: {machine_line()}\n"
          f"- date: {utc_now()}; wall time of this invocation "
          f"{time.time() - t0:.0f} s (finished runs are reused)\n"
          "- protocol: trained on a random level per clip, tested at each level (see the module docstring)\n"]
    for t in tables:
        md.append(f"\n## {TITLES[t]}\n")
        lost = [r.key for r in RUNS_BY_TABLE[t] if r.key not in res or any(lv not in res[r.key] for lv in r.levels)]
        if lost and t == "table1":  # a partial Table 1 is still worth printing; the missing rows say "not run"
            md.append("\nnot run: " + ", ".join(f"{k} ({failed.get(k, 'skipped')})" for k in lost) + "\n\n")
        elif lost:
            md.append("\nnot available, failed runs: " + "; ".join(f"{k}: {failed.get(k, '?')}" for k in lost) + "\n")
            continue
        if t == "table3":
            for frames, (h, rows) in restoration_tables(RUNS_BY_TABLE[t], res).items():
                md.append(f"\n{frames} frames\n\n" + _md(h, rows))
                _csv(root / f"table3_{frames}.csv", h, rows)
            continue
        runs = RUNS_BY_TABLE[t]
        if t == "table6":
            levels = RUNS_BY_TABLE[t][0].levels
            h = ["method"] + list(levels)
            rows = [[r.label] + [f"{res[r.key][lv]['top1']:.3f} / {res[r.key][lv]['top5']:.3f}" for lv in levels]
                    for r in runs]
        else:
            h, rows = recognition_table(runs, res, mean=(t == "table1"))
        md.append(_md(h, rows))
        _csv(root / f"{t}.csv", h, rows)
        if t == "figure4":
            plot_figure4(runs, res, root / "figure4.png")
            md.append("\n![figure 4](figure4.png)\n")
    from finetec.utils.io import atomic_write_text

    atomic_write_text(root / "finetec_tables.md", "".join(md))
    print(f"[tables] wrote {root / 'finetec_tables.md'} ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
