"""FLOPs and parameters of every model in the registry (``torch.utils.flop_counter``), a table like the multimodal
paper's Table 3.

Skeleton models get one sequence ``[1, M, T, V, C]`` (``--persons``, ``--clip-len``, ``--layout``, C = 3); RGB
models (``input_kind = 'rgb'``: ``tsm``) one clip ``[1, segments * frames_per_segment, 3, size, size]``. Rows:
every registered model at standard and slim width; the RGB variants of Table 4 (TSM, +MA, +STAA) at the paper's
input (8 segments x 6 frames, 256 x 256) and at TSM's usual 8 x 1 at 224 x 224; the CPU presets used on Florence;
and "ours" = TSM + STAA plus the CTR-GCN of the skeleton branch (the projection head and memory bank are training
only: ``inference_model()``). FineTec's skeleton bank is filled with random clips (its size, not its content, sets
the cost).

FLOPs count a multiply-add as 2 (``torch.utils.flop_counter``); the MACs column is half of it, the unit the
paper's Table 3 most likely uses (TSM ResNet-50 at 8 x 224^2 is 33 GMACs).

Usage::

    python benchmarks/flops.py                       # markdown table on stdout (about 1-2 min on 2 cores)
    python benchmarks/flops.py --out results/flops.csv
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import inspect
import io
import platform
import sys
from typing import Any

import torch

from finetec.layouts import get_layout
from finetec.models import create_model, get_builder, list_models
from finetec.models.cost import model_cost
from finetec.utils.io import atomic_write_text

NUM_CLASSES = 99  # Gym99, the paper's fine-grained benchmark


def _skeleton_input(layout: str, T: int, M: int) -> torch.Tensor:
    V = get_layout(layout).num_joints
    return torch.randn(1, M, T, V, 3) * 0.3


def _build(name: str, width: str, layout: str, T: int, M: int, **kw: Any) -> torch.nn.Module:
    params = inspect.signature(get_builder(name)).parameters
    if "width" in params:
        kw["width"] = width
    if "num_person" in params:
        kw["num_person"] = M
    if "clip_len" in params:
        kw["clip_len"] = T
    model = create_model(name, NUM_CLASSES, layout, 3, **kw)
    bank = getattr(getattr(model, "completion", None), "bank", None)
    if bank is not None and getattr(bank, "is_empty", False):
        K, Tb, V = bank.sequences.shape[:3]
        bank.load(torch.randn(K, Tb, V, 2) * 0.3, torch.ones(K, Tb, V))
    return model


def rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    x_skel = _skeleton_input(args.layout, args.clip_len, args.persons)
    skel_shape = "x".join(map(str, x_skel.shape))

    def add(label: str, model: torch.nn.Module, x: torch.Tensor, note: str = "") -> dict[str, Any]:
        c = model_cost(model, x)
        row = {"model": label, "input": "x".join(map(str, x.shape)), "GFLOPs": c["flops"] / 1e9,
               "GMACs": c["macs"] / 1e9, "params_M": c["params"] / 1e6, "note": note}
        out.append(row)
        print(f"  {label:<40} {row['input']:<18} {row['GFLOPs']:9.2f} GFLOPs {row['params_M']:7.2f} M",
              file=sys.stderr, flush=True)
        return row

    for name in list_models():
        for width in ("standard", "slim"):
            if name == "tsm":
                continue  # RGB rows below
            try:
                m = _build(name, width, args.layout, args.clip_len, args.persons)
            except (TypeError, ValueError) as e:
                print(f"  {name} {width}: skipped ({e})", file=sys.stderr)
                continue
            add(f"{name} ({width})", m, x_skel)
    rgb = [("paper input: 8 x 6 frames, 256^2", 48, 256), ("TSM's usual: 8 x 1 frames, 224^2", 8, 224)]
    for variant in ("none", "ma", "staa"):
        label = {"none": "TSM R50", "ma": "TSM R50 + MA", "staa": "TSM R50 + STAA"}[variant]
        for note, T, size in rgb:
            m = create_model("tsm", NUM_CLASSES, args.layout, 3, staa=variant)
            add(label, m, torch.rand(1, T, 3, size, size) * 255, note)
        m = create_model("tsm", NUM_CLASSES, args.layout, 3, staa=variant, width="slim")
        add(label + " (slim)", m, torch.rand(1, 8, 3, 112, 112) * 255, "Florence CPU preset: 8 x 1, 112^2")
    # ours: RGB (TSM + STAA) + skeleton (CTR-GCN; the contrastive head is training only)
    for note, T, size in rgb:
        r = add("ours: TSM R50 + STAA", create_model("tsm", NUM_CLASSES, args.layout, 3, staa="staa"),
                torch.rand(1, T, 3, size, size) * 255, note)
        cl = _build("ctrgcn_cl", "standard", args.layout, args.clip_len, args.persons)
        s = add("ours: CTR-GCN (skeleton branch)", cl.inference_model(), x_skel, f"{skel_shape} skeleton")
        out.append({"model": "ours: total (RGB + skeleton)", "input": f"{r['input']} + {s['input']}",
                    "GFLOPs": r["GFLOPs"] + s["GFLOPs"], "GMACs": r["GMACs"] + s["GMACs"],
                    "params_M": r["params_M"] + s["params_M"], "note": note})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", default="coco17")
    ap.add_argument("--clip-len", type=int, default=100, help="skeleton frames (PYSKL's NTU / Gym setting: 100)")
    ap.add_argument("--persons", type=int, default=2, help="persons per skeleton sequence (PYSKL: 2)")
    ap.add_argument("--out", default=None, help="also write the rows as CSV here")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    table = rows(args)
    print(f"# FLOPs and parameters ({_dt.date.today()}, torch {torch.__version__}, {platform.machine()}; "
          f"{NUM_CLASSES} classes; skeleton input 1 x {args.persons} x {args.clip_len} x "
          f"{get_layout(args.layout).num_joints} x 3)\n")
    print("| model | input | GFLOPs | GMACs | params (M) | note |\n|---|---|---:|---:|---:|---|")
    for r in table:
        print(f"| {r['model']} | {r['input']} | {r['GFLOPs']:.2f} | {r['GMACs']:.2f} | {r['params_M']:.2f} | "
              f"{r['note']} |")
    if args.out:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
        atomic_write_text(args.out, buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
