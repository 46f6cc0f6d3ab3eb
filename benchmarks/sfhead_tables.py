"""SF-Head's experiments on Penn Action (or any PYSKL pickle): Tables 4, 2, 3, a Table-1-style sweep, Fig. 3's
ambiguous-action analysis, the inline / auxiliary cost comparison and a multi-stream ensemble.

    python benchmarks/sfhead_tables.py                        # quick CPU preset (slim widths, short schedules)
    python benchmarks/sfhead_tables.py --full                 # standard widths, the configs' schedules
    python benchmarks/sfhead_tables.py --only table4 figure3  # a subset; finished runs are reused (resumable)

Protocol: joint stream, clean clips (SF-Head is about look-alike actions, not corruption), trained on the training
split and tested on the test split; every variant is the same config with a different ``model.sfhead`` (default:
``inline`` SF-Head in every block, g = 8, m = 0.4, gamma = 2, lambda_con = 0.2, lambda_red = 0.1; see
docs/sfhead.md). One seed per row: on Penn Action's 1,068 test clips one clip is 0.09 %, and seed-to-seed spread of
short schedules is larger than most of the paper's gains, so read small differences as noise.

Writes ``OUT/<run>/sfhead_tables.md``, one CSV per table and ``figure3.png``; runs stay in ``OUT/<run>/runs/<key>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tables_common import (REPO, Run, cached_run, machine_line, md_table, quiet, save_figure, utc_now,
                           write_csv)

BACKBONES = {"stgcn": "ST-GCN", "aagcn": "2s-AGCN (AAGCN)", "ctrgcn": "CTR-GCN", "infogcn": "InfoGCN",
             "hdgcn": "HD-GCN", "blockgcn": "BlockGCN", "protogcn": "ProtoGCN"}
# the paper's Table 4 (NTU-120 X-Sub, joint): params (M) and top-1 (%) without / with SF-Head
PAPER_T4 = {"stgcn": (2.11, 83.62, 84.74), "aagcn": (3.80, 84.51, 85.56), "ctrgcn": (1.46, 84.72, 86.04),
            "infogcn": (1.62, 85.24, 85.92), "hdgcn": (1.68, 85.42, 85.94), "blockgcn": (1.30, 86.88, 87.25),
            "protogcn": (4.34, 85.52, 85.95)}
# Penn Action's look-alike pairs (the analogue of the paper's Fig. 3 groups)
PAIRS = [("tennis_serve", "tennis_forehand"), ("baseball_pitch", "baseball_swing"), ("squat", "clean_and_jerk"),
         ("situp", "pushup")]
TABLES = ("table4", "table2", "figure3", "cost", "table3", "sweep", "streams")


def sf(**kw: Any) -> str:
    """A ``model.sfhead`` override (YAML flow mapping)."""
    return "model.sfhead={" + ", ".join(f"{k}: {v}" for k, v in kw.items()) + "}"


def bb_run(bb: str, key: str, label: str, *overrides: str) -> Run:
    return Run(key, label, f"configs/{bb}/penn_j.yaml", list(overrides))


FULL = sf(mode="inline")
T2 = [  # (SSTE, AC-FA, F-RCL)
    ((0, 0, 0), bb_run("ctrgcn", "ctrgcn", "CTR-GCN")),
    ((1, 0, 0), bb_run("ctrgcn", "t2_s", "+SSTE", sf(acfa="false", rcl="false"))),
    ((0, 1, 0), bb_run("ctrgcn", "t2_a", "+AC-FA", sf(sste="false", rcl="false"))),
    ((0, 0, 1), bb_run("ctrgcn", "t2_r", "+F-RCL", sf(sste="false", acfa="false"))),
    ((1, 1, 0), bb_run("ctrgcn", "t2_sa", "+SSTE +AC-FA", sf(rcl="false"))),
    ((1, 0, 1), bb_run("ctrgcn", "t2_sr", "+SSTE +F-RCL", sf(acfa="false"))),
    ((0, 1, 1), bb_run("ctrgcn", "t2_ar", "+AC-FA +F-RCL", sf(sste="false"))),
    ((1, 1, 1), bb_run("ctrgcn", "ctrgcn_sf", "SF-Head (all)", FULL)),
]
T3 = [  # (ACDA, ATDA, ASDA), with SSTE and F-RCL; none = AC-FA off (the paper's No. 1 equals Table 2's SSTE+F-RCL)
    ((0, 0, 0), bb_run("ctrgcn", "t2_sr", "SSTE + F-RCL", sf(acfa="false"))),
    ((1, 0, 0), bb_run("ctrgcn", "t3_c", "+ACDA", sf(branches="[acda]"))),
    ((0, 1, 0), bb_run("ctrgcn", "t3_t", "+ATDA", sf(branches="[atda]"))),
    ((0, 0, 1), bb_run("ctrgcn", "t3_s", "+ASDA", sf(branches="[asda]"))),
    ((1, 1, 0), bb_run("ctrgcn", "t3_ct", "+ACDA +ATDA", sf(branches="[acda, atda]"))),
    ((1, 0, 1), bb_run("ctrgcn", "t3_cs", "+ACDA +ASDA", sf(branches="[acda, asda]"))),
    ((0, 1, 1), bb_run("ctrgcn", "t3_ts", "+ATDA +ASDA", sf(branches="[atda, asda]"))),
    ((1, 1, 1), bb_run("ctrgcn", "ctrgcn_sf", "all three", FULL)),
]
SWEEP = [  # (m, gamma, lambda_con, lambda_red): the paper's Table 1 rows 1, 2, 5, 10 and 11 (its best)
    ((0.5, 2, 1.0, 1.0), bb_run("ctrgcn", "sw_1", "No. 1", sf(m=0.5, lambda_con=1.0, lambda_red=1.0))),
    ((0.5, 2, 0.1, 0.1), bb_run("ctrgcn", "sw_2", "No. 2", sf(m=0.5, lambda_con=0.1, lambda_red=0.1))),
    ((0.5, 2, 0.2, 0.1), bb_run("ctrgcn", "sw_5", "No. 5", sf(m=0.5))),
    ((0.8, 2, 0.2, 0.1), bb_run("ctrgcn", "sw_10", "No. 10", sf(m=0.8))),
    ((0.4, 2, 0.2, 0.1), bb_run("ctrgcn", "ctrgcn_sf", "No. 11 (default)", FULL)),
]
PAPER_T2 = [84.72, 84.81, 85.58, 85.36, 85.74, 85.50, 85.70, 86.04]
PAPER_T3 = [85.50, 85.68, 85.70, 85.60, 85.92, 85.75, 85.84, 86.04]
PAPER_SWEEP = [85.48, 85.80, 85.96, 85.88, 86.04]


def t4_runs() -> list[tuple[str, Run, Run]]:
    return [(bb, bb_run(bb, bb, name), bb_run(bb, f"{bb}_sf", f"{name} + SF-Head", FULL))
            for bb, name in BACKBONES.items()]


AUX = bb_run("ctrgcn", "ctrgcn_sf_aux", "CTR-GCN + SF-Head (auxiliary)", sf(mode="auxiliary"))
STREAMS = ("j", "b", "jm", "bm")


def stream_runs() -> list[Run]:
    return [Run(f"ctrgcn_sf_{s}" if s != "j" else "ctrgcn_sf", f"CTR-GCN + SF-Head, {s}", "configs/ctrgcn/penn_j.yaml",
                [FULL] + ([f"data.feats=[{s}]"] if s != "j" else [])) for s in STREAMS]


def runs_for(table: str) -> list[Run]:
    if table == "table4":
        return [r for _, a, b in t4_runs() for r in (a, b)]
    if table == "table2":
        return [r for _, r in T2]
    if table == "table3":
        return [r for _, r in T3]
    if table == "sweep":
        return [r for _, r in SWEEP]
    if table == "figure3":
        return [T2[0][1], T2[-1][1]]
    if table == "cost":
        return [T2[0][1], T2[-1][1], AUX]
    if table == "streams":
        return stream_runs()
    raise KeyError(table)


# ---------------------------------------------------------------------------------------------------- running
def overrides(args: argparse.Namespace, work_dir: Path) -> list[str]:
    ov = [f"data.ann_file={args.ann_file}", f"trainer.work_dir={work_dir}", "trainer.val_every_n_epochs=0",
          "trainer.progress_bar=false", f"data.num_workers={args.workers}", f"trainer.seed={args.seed}",
          "data.corruption.train=null", "data.corruption.test=clean"]
    if not args.full:
        ov += ["model.width=slim", f"optim.epochs={args.epochs}", f"trainer.precision={args.precision}",
               f"data.num_clips_test={args.test_clips}"]
    return ov


def run_one(run: Run, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from finetec.engine import load_config

    work_dir = root / "runs" / run.key
    cfg = load_config(REPO / run.config, overrides(args, work_dir) + list(run.overrides) + list(args.override))
    return cached_run(run, cfg, work_dir)


def build(run: Run, args: argparse.Namespace, root: Path):
    """The run's model (untrained) as the engine builds it, for parameter and FLOP counts."""
    from finetec.engine import load_config
    from finetec.engine.lit import build_model
    from finetec.engine.runner import model_config
    from finetec.layouts import get_layout

    cfg = load_config(REPO / run.config, overrides(args, root / "runs" / run.key) + list(run.overrides))
    lay = cfg["data"]["layout"] or "penn13"
    return build_model(model_config(cfg), num_classes=15, layout=lay, in_channels=3), get_layout(lay).num_joints


def inference_cost(run: Run, args: argparse.Namespace, root: Path, clip_len: int = 48) -> dict[str, float]:
    """Parameters in training and at inference, and inference GFLOPs of one clip (``torch.utils.flop_counter``)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model, V = build(run, args, root)
    train_params = sum(p.numel() for p in model.parameters())
    inf = model.inference_model() if hasattr(model, "inference_model") else model
    inf.eval()
    x = torch.randn(1, 1, clip_len, V, 3)
    with FlopCounterMode(display=False) as fc, torch.enable_grad():  # grad on: the plain conv path is counted
        inf(x)
    return {"train_params": train_params, "inference_params": sum(p.numel() for p in inf.parameters()),
            "gflops": fc.get_total_flops() / 1e9}


# ---------------------------------------------------------------------------------------------------- reports
def per_class(work_dir: Path) -> Any:
    import numpy as np

    from finetec.engine.ensemble import load_scores

    d = load_scores(work_dir, "clean")
    K = d["scores"].shape[1]
    pred = d["scores"].argmax(1)
    acc = np.array([(pred[d["label"] == k] == k).mean() if (d["label"] == k).any() else np.nan for k in range(K)])
    return acc


def plot_figure3(root: Path, classes: list[str], base: Any, ours: Any) -> list[list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    delta = 100 * (ours - base)
    in_pair = {c for p in PAIRS for c in p}
    order = np.argsort(-delta)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    colors = ["tab:red" if classes[i] in in_pair else "tab:gray" for i in order]
    ax.bar(range(len(order)), delta[order], color=colors)
    ax.set_xticks(range(len(order)), [classes[i] for i in order], rotation=60, ha="right", fontsize=8)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("per-class top-1 change (points)")
    ax.set_title("CTR-GCN + SF-Head minus CTR-GCN on Penn Action (red: look-alike pairs)")
    fig.tight_layout()
    save_figure(fig, root / "figure3.png")
    rows = []
    for a, b in PAIRS:
        for c in (a, b):
            if c in classes:
                i = classes.index(c)
                rows.append([f"{a} / {b}", c, float(base[i]), float(ours[i]), float(ours[i] - base[i])])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ann-file", default="data_cache/penn_action.pkl")
    p.add_argument("--data", help="Penn Action labels folder or data root (to prepare --ann-file when missing)")
    p.add_argument("--out", default="results")
    p.add_argument("--run", help="run name (default: sfhead_tables_<quick|full>)")
    p.add_argument("--full", action="store_true", help="standard widths and the configs' schedules")
    p.add_argument("--only", nargs="+", choices=TABLES, default=list(TABLES))
    p.add_argument("--epochs", type=int, default=6, help="quick preset: epochs")
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--test-clips", type=int, default=1)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the tables from the finished runs (the others read 'not run')")
    p.add_argument("override", nargs="*", help="extra key=value overrides for every run")
    args = p.parse_args(argv)
    quiet()
    os.chdir(REPO)
    ann = Path(args.ann_file)
    if not ann.is_file():
        from finetec.data.readers.penn import prepare_penn_action
        from finetec.demo import find_penn_labels

        prepare_penn_action(find_penn_labels(args.data), ann)
    root = Path(args.out) / (args.run or f"sfhead_tables_{'full' if args.full else 'quick'}")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tables = [t for t in TABLES if t in args.only]
    res: dict[str, dict] = {}
    failed: dict[str, str] = {}
    for t in tables:
        for r in runs_for(t):
            if r.key in res or r.key in failed:
                continue
            if args.report_only and not (root / "runs" / r.key / "results.json").is_file():
                continue
            try:
                res[r.key] = run_one(r, args, root)
            except Exception as e:  # one failed run must not lose the others' tables
                failed[r.key] = f"{type(e).__name__}: {e}"
                print(f"[tables] {r.key} FAILED: {failed[r.key]}", flush=True)

    def top1(key: str) -> Any:
        return res[key]["metrics"]["clean"]["top1"] if key in res else "not run"

    preset = ("full: standard widths, the configs' schedules" if args.full else
              f"quick: slim widths, {args.epochs} epochs, {args.precision}, {args.test_clips} test clip(s)")
    cmd = "python benchmarks/sfhead_tables.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = [f"# SF-Head experiments on {ann.name}\n",
          f"- preset: {preset}\n- command: `{cmd.strip()}`\n- machine: {machine_line()}\n"
          f"- date: {utc_now()}; wall time of this invocation {time.time() - t0:.0f} s (finished runs are reused)\n"
          "- protocol: joint stream, clean train / test split, one seed (see the module docstring)\n"]
    if failed:
        md.append("\nfailed runs: " + "; ".join(f"{k}: {v}" for k, v in failed.items()) + "\n")
    if "table4" in tables:
        h = ["backbone", "params", "top-1", "+ SF-Head params", "+ SF-Head top-1", "change",
             "paper params / + SF-Head (NTU)", "paper top-1 / + SF-Head (NTU-120 X-Sub)"]
        rows = []
        for bb, a, b in t4_runs():
            try:
                pa = inference_cost(a, args, root)["train_params"]
                pb = inference_cost(b, args, root)["train_params"]
            except Exception as e:
                pa = pb = f"error: {type(e).__name__}"
            ta, tb = top1(a.key), top1(b.key)
            ch = f"{100 * (tb - ta):+.2f}" if isinstance(ta, float) and isinstance(tb, float) else "-"
            pp = PAPER_T4[bb]
            rows.append([a.label, pa, ta, pb, tb, ch, f"{pp[0]:.2f}M / {pp[0] + 0.01:.2f}M", f"{pp[1]:.2f} / {pp[2]:.2f}"])
        md.append("\n## Table 4 -- SF-Head on seven GCN backbones (top-1, clean test split)\n\n" + md_table(h, rows))
        write_csv(root / "table4.csv", h, rows)
    for name, spec, paper, cols in (("table2", T2, PAPER_T2, ["SSTE", "AC-FA", "F-RCL"]),
                                    ("table3", T3, PAPER_T3, ["ACDA", "ATDA", "ASDA"]),
                                    ("sweep", SWEEP, PAPER_SWEEP, ["m", "gamma", "lambda_con", "lambda_red"])):
        if name not in tables:
            continue
        h = ["row"] + cols + ["top-1", "paper (NTU-120 X-Sub, %)"]
        rows = [[r.label] + [("x" if v == 1 else "") if name != "sweep" else v for v in flags] + [top1(r.key), pp]
                for (flags, r), pp in zip(spec, paper)]
        title = {"table2": "Table 2 -- SSTE / AC-FA / F-RCL ablation on CTR-GCN",
                 "table3": "Table 3 -- AC-FA dimensions (with SSTE and F-RCL) on CTR-GCN",
                 "sweep": "Table 1 -- loss hyper-parameters on CTR-GCN + SF-Head"}[name]
        md.append(f"\n## {title}\n\n" + md_table(h, rows))
        write_csv(root / f"{name}.csv", h, rows)
    if "figure3" in tables and "ctrgcn" in res and "ctrgcn_sf" in res:
        from finetec.data.io import load_annotations

        classes = list(load_annotations(ann)["meta"]["classes"])
        base, ours = per_class(root / "runs" / "ctrgcn"), per_class(root / "runs" / "ctrgcn_sf")
        rows = plot_figure3(root, classes, base, ours)
        h = ["pair", "class", "CTR-GCN", "+ SF-Head", "change"]
        md.append("\n## Figure 3 -- look-alike pairs, per-class top-1\n\n" + md_table(h, rows)
                  + "\n![figure 3](figure3.png)\n")
        write_csv(root / "figure3.csv", h, rows)
    if "cost" in tables:
        h = ["model", "params in training", "params at inference", "inference GFLOPs (1 clip, T=48)", "top-1"]
        rows = []
        for r in runs_for("cost"):
            c = inference_cost(r, args, root)
            rows.append([r.label, c["train_params"], c["inference_params"], round(c["gflops"], 4), top1(r.key)])
        md.append("\n## SF-Head inline vs auxiliary: cost and accuracy\n\n" + md_table(h, rows))
        write_csv(root / "cost.csv", h, rows)
    if "streams" in tables and all(r.key in res for r in stream_runs()):
        from finetec.engine.ensemble import CONVENTIONS, fuse_scores

        dirs = {s: root / "runs" / r.key for s, r in zip(STREAMS, stream_runs())}
        h = ["streams", "weights", "top-1", "mean-class"]
        rows = [[s, "-", top1(r.key), res[r.key]["metrics"]["clean"]["mean_class_accuracy"]]
                for s, r in zip(STREAMS, stream_runs())]
        for name, wts in CONVENTIONS.items():
            f = fuse_scores([dirs[s] for s in wts], list(wts.values()), "clean")["fused"]
            rows.append([name, ":".join(f"{w:g}" for w in wts.values()), f["top1"], f["mean_class_accuracy"]])
        md.append("\n## Multi-stream ensemble of CTR-GCN + SF-Head (weighted softmax scores)\n\n" + md_table(h, rows))
        write_csv(root / "streams.csv", h, rows)
    from finetec.utils.io import atomic_write_text

    atomic_write_text(root / "sfhead_tables.md", "".join(md))
    print(f"[tables] wrote {root / 'sfhead_tables.md'} ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
