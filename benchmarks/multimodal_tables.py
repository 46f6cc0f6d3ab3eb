"""The multimodal paper's experiments on Florence 3D Actions (real RGB clips, CPU): RGB-only, skeleton-only and fused
accuracy under one actor-disjoint protocol (Table 4's components), the negative sampling strategies (Table 5), with
the cost of each run.

Protocol: ``data_cache/florence3d_coco17_val.pkl`` (the project's own MediaPipe poses of the 215 clips, re-split by
actor: train 1-6, val 7, test 8-10; see configs/_base_/florence3d_mm.yaml for the two commands that make it). Every
model trains on actors 1-6 and is tested on actors 8-10; each run also scores actor 7 (``<run>/val``), on which the
fusion weights are fitted (Eq. 14, :func:`finetec.models.multimodal.fusion.fit_fusion_weights`); fixed 1:1 fusion is
reported as well. RGB: TSM ResNet-50 (slim, from scratch, 8 segments x 1 frame at 112 x 112); skeleton: CTR-GCN
(slim) with or without class-aware contrastive learning.

Usage::

    python benchmarks/multimodal_tables.py                  # trains what is not cached (about 40 min on 2 cores)
    python benchmarks/multimodal_tables.py --run NAME       # results/NAME/ (default multimodal_florence)
    python benchmarks/multimodal_tables.py --only rgb_crop pose   # a subset of the runs
    python benchmarks/multimodal_tables.py --run smoke --set optim.epochs=1   # overrides for every run

Writes ``results/<run>/report.md``, ``table4.csv`` and ``table5.csv``; runs are cached in ``results/<run>/runs/<key>`` and reused
when their resolved config is unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tables_common import REPO, Run, cached_run, machine_line, md_table, quiet, utc_now, write_csv

RUNS = [
    Run("rgb_base", "TSM (whole frame)", "configs/multimodal/tsm_florence.yaml"),
    Run("rgb_crop", "TSM + Crop", "configs/multimodal/tsm_crop_florence.yaml"),
    Run("rgb_crop_ma", "TSM + Crop + MA", "configs/multimodal/tsm_crop_ma_florence.yaml"),
    Run("rgb_crop_staa", "TSM + Crop + STAA", "configs/multimodal/tsm_crop_staa_florence.yaml"),
    Run("pose", "CTR-GCN (cross-entropy)", "configs/multimodal/ctrgcn_florence.yaml"),
    Run("cl_hard", "CTR-GCN + CL, hard", "configs/multimodal/ctrgcn_cl_florence.yaml", ["model.sampling=hard"]),
    Run("cl_random", "CTR-GCN + CL, random", "configs/multimodal/ctrgcn_cl_florence.yaml",
        ["model.sampling=random"]),
    Run("cl_class_aware", "CTR-GCN + CL, class-aware", "configs/multimodal/ctrgcn_cl_florence.yaml",
        ["model.sampling=class_aware"]),
    Run("cl_random_ca", "CTR-GCN + CL, random + class-aware", "configs/multimodal/ctrgcn_cl_florence.yaml",
        ["model.sampling=random+class_aware"]),
]
RGB = ["rgb_base", "rgb_crop", "rgb_crop_ma", "rgb_crop_staa"]
SKELETON = "cl_class_aware"  # the paper's skeleton branch


def run_one(run: Run, out: Path, extra: list[str]) -> dict[str, Any]:
    """Train + test (actors 8-10) + score the validation actor (``<work_dir>/val``)."""
    from finetec.engine import test
    from finetec.engine.config import load_config

    wd = out / "runs" / run.key
    ov = [*run.overrides, *extra, f"trainer.work_dir={wd}", "trainer.progress_bar=false"]
    cfg = load_config(REPO / run.config, ov)
    res = cached_run(run, cfg, wd)
    if "val" not in res:
        vcfg = load_config(REPO / run.config, [*ov, "data.split_test=val"])
        res["val"] = test(vcfg, wd / "model.pth", ["clean"], out_dir=wd / "val")["clean"]
        from finetec.utils.io import atomic_write_text

        atomic_write_text(wd / "results.json", json.dumps(res, indent=2) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="multimodal_florence", help="results/<RUN>/")
    ap.add_argument("--only", nargs="+", default=None, choices=[r.key for r in RUNS])
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for every run (e.g. optim.epochs=1 for a smoke test)")
    args = ap.parse_args(argv)
    quiet()
    out = REPO / "results" / args.run
    out.mkdir(parents=True, exist_ok=True)
    ann = REPO / "data_cache" / "florence3d_coco17_val.pkl"
    if not ann.is_file():
        print(f"missing {ann}: make it with the two commands in configs/_base_/florence3d_mm.yaml", file=sys.stderr)
        return 2
    t0 = time.time()
    runs = [r for r in RUNS if args.only is None or r.key in args.only]
    res = {r.key: run_one(r, out, list(args.set)) for r in runs}
    from finetec.engine.ensemble import fuse_scores

    def top1(key: str) -> float:
        return float(res[key]["metrics"]["clean"]["top1"])

    lines = [f"# Multimodal collaboration and fusion on Florence 3D Actions ({utc_now()})\n",
             f"Machine: {machine_line()}. Wall time of this invocation: {time.time() - t0:.0f} s.\n",
             "Protocol: train actors 1-6 (129 clips), fusion weights fitted on actor 7 (19 clips), test actors 8-10 "
             "(67 clips; one clip = 1.5 points). One seed. Top-1 on the test actors.\n"]
    if SKELETON in res:
        rows = []
        skel = out / "runs" / SKELETON
        for key in [k for k in RGB if k in res]:
            rgb = out / "runs" / key
            eq = fuse_scores([rgb, skel])
            fit = fuse_scores([rgb, skel], fit_on="val")
            rows.append([next(r.label for r in RUNS if r.key == key), top1(key), top1(SKELETON), eq["fused"]["top1"],
                         fit["fused"]["top1"], f"{fit['weights'][0]:.2f} : {fit['weights'][1]:.2f}",
                         f"{res[key].get('train_s', float('nan')):.0f}"])
        header = ["RGB branch", "RGB only", "skeleton only", "fused 1:1", "fused (val-fitted)", "weights RGB : skel",
                  "RGB train s"]
        lines += ["\n## Table 4 on Florence: RGB components, skeleton branch and score fusion (Eq. 14)\n",
                  f"Skeleton branch: {next(r.label for r in RUNS if r.key == SKELETON)}.\n\n", md_table(header, rows)]
        write_csv(out / "table4.csv", header, rows)
    cl = [k for k in ("pose", "cl_hard", "cl_random", "cl_class_aware", "cl_random_ca") if k in res]
    if cl:
        rows = [[next(r.label for r in RUNS if r.key == k), top1(k),
                 float(res[k]["metrics"]["clean"]["mean_class_accuracy"]), float(res[k]["val"]["top1"]),
                 f"{res[k].get('train_s', float('nan')):.0f}"] for k in cl]
        header = ["skeleton model", "top-1", "mean class acc.", "val top-1 (actor 7)", "train s"]
        lines += ["\n## Table 5 on Florence: negative sampling strategies of the contrastive loss\n\n",
                  md_table(header, rows)]
        write_csv(out / "table5.csv", header, rows)
    from finetec.utils.io import atomic_write_text

    atomic_write_text(out / "report.md", "".join(x if x.endswith("\n") else x + "\n" for x in lines))
    print((out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
