"""The ``finetec`` command.

::

    finetec train CONFIG [key=value ...] [--resume auto|PATH]
    finetec test CONFIG [--ckpt PATH] [--corruption clean|minor|moderate|severe|all|PRESET] [key=value ...]
    finetec corrupt IN.pkl OUT.pkl --level LEVEL [--mode compact|inplace] [--seed N]
    finetec data prepare penn-action SRC_DIR OUT.pkl
    finetec data info FILE
    finetec data extract VIDEOS... --labels labels.csv --out DATA.pkl [--workers N] [--box X1,Y1,X2,Y2]
    finetec ensemble train CONFIG [key=value ...] [--streams j b jm bm] [--out DIR]
    finetec ensemble fuse RUN_DIR... [--weights 2 2 1 1 | --fit-on val] [--level clean]
    finetec predict INPUT --ckpt PATH [--topk K] [--out JSON]       (INPUT: video, keypoint JSON or pickle)
    finetec stream VIDEO --ckpt PATH [--window T] [--stride S]
    finetec viz skeleton|compare|confusion|curves ...              (pictures and videos)
    finetec export --ckpt PATH [--format onnx|torchscript] [--out PATH]
    finetec demo [args ...]

Bad input (a malformed sample or file, an unsafe pickle, a config error, a missing file) prints one line
``finetec: error: ...`` to stderr and exits with status 2, without a traceback. The CLI only parses arguments and
calls the library; heavy modules (torch, lightning) are imported by the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input (reported in one line), imported lazily."""
    from .data.io import DataFileError, UnsafePickleError
    from .data.sample import SampleError
    from .data.transforms import TransformError
    from .engine.config import ConfigError
    from .layouts import LayoutError

    from .engine.ensemble import EnsembleError
    from .inference_cli import InputError

    errs: list[type[BaseException]] = [EnsembleError, InputError, SampleError, DataFileError, UnsafePickleError, ConfigError, TransformError,
                                       LayoutError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                                       PermissionError]
    if "finetec.engine.checkpoint" in sys.modules:  # torch-heavy: only when a subcommand has loaded it
        errs.append(sys.modules["finetec.engine.checkpoint"].CheckpointError)
    return tuple(errs)


# ---------------------------------------------------------------------------------------------------- commands
def _cmd_train(args: argparse.Namespace) -> int:
    from .engine.config import load_config

    cfg = load_config(args.config, args.overrides)
    from .engine.runner import train

    out = train(cfg, resume=args.resume)
    if _is_rank_zero():
        print(json.dumps({"work_dir": out["work_dir"], "ckpt": out["ckpt"], "metrics": out["metrics"]}, indent=2))
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from .engine.config import LEVELS_ALL, load_config

    cfg = load_config(args.config, args.overrides)
    if args.corruption is None:
        levels = list(cfg["test"]["levels"])
    elif args.corruption == "all":
        levels = list(LEVELS_ALL)
    else:
        levels = [args.corruption]
    from .corruption import get_spec

    for lv in levels:
        try:
            get_spec(lv)
        except ValueError as e:
            raise _UsageError(f"--corruption: {e}") from e
    from .engine.runner import test

    res = test(cfg, args.ckpt, levels, out_dir=args.out_dir)
    if _is_rank_zero():
        print(_format_results(res))
    return 0


def _format_results(res: dict) -> str:
    lines = [f"{'level':<12} {'top1':>7} {'top5':>7} {'mean_cls':>9} {'N':>6}"]
    for level, m in res.items():
        lines.append(f"{level:<12} {100 * m['top1']:>6.2f}% {100 * m.get('top5', float('nan')):>6.2f}% "
                     f"{100 * m['mean_class_accuracy']:>8.2f}% {m['num_samples']:>6d}")
    return "\n".join(lines)


def _format_fusion(name: str, res: dict) -> str:
    lines = [f"{name} [{res['level']}, N={res['num_samples']}]"]
    for r in res["runs"]:
        lines.append(f"  {r['run']:<40} w={r['weight']:<5g} top1 {100 * r['top1']:6.2f}%  "
                     f"mean_cls {100 * r['mean_class_accuracy']:6.2f}%")
    f = res["fused"]
    lines.append(f"  {'fused':<40} {'':7} top1 {100 * f['top1']:6.2f}%  mean_cls {100 * f['mean_class_accuracy']:6.2f}%")
    return "\n".join(lines)


def _cmd_ensemble_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .engine.config import load_config
    from .engine.ensemble import train_streams

    cfg = load_config(args.config, args.overrides)
    out = args.out or str(Path(cfg["trainer"]["work_dir"]) / "ensemble")
    res = train_streams(cfg, out, args.streams)
    if _is_rank_zero():
        print("\n".join(_format_fusion(k, v) for k, v in res["fusions"].items()))
        print(f"written: {Path(out) / 'ensemble.json'}")
    return 0


def _cmd_ensemble_fuse(args: argparse.Namespace) -> int:
    from .engine.ensemble import fuse_scores

    res = fuse_scores(args.runs, args.weights, args.level, fit_on=args.fit_on)
    if args.fit_on:
        print(f"weights fitted on {args.fit_on}/{args.level}.npz: {', '.join(f'{w:.2f}' for w in res['weights'])}")
    print(_format_fusion("weighted score fusion", res))
    if args.out:
        from .utils.io import atomic_write_text

        atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
    return 0


def _cmd_corrupt(args: argparse.Namespace) -> int:
    from .corruption import corrupt_sample, get_spec
    from .data.io import infer_layout, load_annotations, save_annotations
    from .data.sample import SampleError, SkeletonSample

    try:
        spec = get_spec(args.level)
    except ValueError as e:
        raise _UsageError(str(e)) from e
    if args.mode is not None:
        spec = spec.replace(mode=args.mode)  # same preset name -> same dropped frames, different arrangement
    data = load_annotations(args.input)
    anns = data["annotations"]
    where = str(args.input)
    out = []
    for i, a in enumerate(anns):
        layout = infer_layout(a["keypoint"].shape[2], None, data["meta"], where)
        try:
            s = SkeletonSample.from_pyskl(dict(a), layout=layout).validate(allow_no_joints=True)
            c = corrupt_sample(s, spec, seed=args.seed)
        except (SampleError, ValueError) as e:
            raise SampleError(f"{where}: annotation {i} ({a.get('frame_dir')!r}): {e}") from e
        d = c.to_pyskl()
        if "frame_mask" not in d:  # store the mask even when nothing was dropped, so the file says so
            d["frame_mask"] = c.mask.copy()
        out.append(d)
    meta = dict(data["meta"])
    meta["corruption"] = {"level": spec.key, "mode": spec.mode, "seed": int(args.seed)}
    save_annotations({"split": data["split"], "annotations": out, "meta": meta}, args.output)
    print(f"wrote {len(out)} corrupted samples ({spec.key}, {spec.mode}, seed {args.seed}) to {args.output}")
    return 0


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    if args.dataset == "penn-action":
        from .data.readers.penn import prepare_penn_action

        prepare_penn_action(args.src, args.out)
    else:  # argparse restricts the choices
        raise _UsageError(f"unknown dataset {args.dataset!r}")
    from .data.io import dataset_info, format_info

    print(format_info(dataset_info(args.out)))
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from .data.io import dataset_info, format_info

    print(format_info(dataset_info(args.file)))
    return 0


def _cmd_data_split(args: argparse.Namespace) -> int:
    from .data.io import load_annotations, save_annotations, split_by_actor

    splits: dict[str, list[str]] = {}
    for item in args.splits:
        name, sep, ids = item.partition("=")
        if not sep or not name or not ids:
            raise _UsageError(f"split {item!r} is not NAME=ACTOR[,ACTOR...] (e.g. val=7 or train=1,2,3)")
        if name in splits:
            raise _UsageError(f"split {name!r} is given twice")
        splits[name] = [a for a in ids.split(",") if a]
    data = split_by_actor(load_annotations(args.input), splits, where=str(args.input))
    save_annotations(data, args.output)
    print(", ".join(f"{k}: {len(v)}" for k, v in data["split"].items()) + f"; written: {args.output}")
    names = list(data["split"])
    for i, a in enumerate(names):  # overlaps are legitimate (trainval) but worth seeing (train/test would leak)
        for b in names[i + 1:]:
            shared = set(data["split"][a]) & set(data["split"][b])
            if shared:
                print(f"note: splits {a!r} and {b!r} share {len(shared)} clips")
    left = len(data["annotations"]) - len(set().union(*map(set, data["split"].values())))
    if left:
        print(f"note: {left} clips are in no split (their actors were not named)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo  # written by the lead; imported only for this command

    rc = demo.main(list(args.demo_args))
    return int(rc or 0)


# ---------------------------------------------------------------------------------------------------- parser
class _UsageError(Exception):
    pass


def _is_rank_zero() -> bool:
    import os

    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def build_parser() -> argparse.ArgumentParser:
    from .corruption.presets import LEVELS

    levels = "|".join(LEVELS)
    p = argparse.ArgumentParser(prog="finetec", description="Skeleton action recognition under temporal corruption.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a config", description="Train CONFIG; overrides are key.path=value.")
    t.add_argument("config")
    t.add_argument("overrides", nargs="*", metavar="key=value")
    t.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue from WORK_DIR/checkpoints/last.ckpt ('auto') or a checkpoint")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("test", help="evaluate weights", description="Evaluate --ckpt on the test split.")
    e.add_argument("config")
    e.add_argument("overrides", nargs="*", metavar="key=value")
    e.add_argument("--ckpt", default=None, help="exported model.pth or a Lightning .ckpt (not needed for the "
                   "non-learned completers of task: completion)")
    e.add_argument("--corruption", default=None, metavar=f"{levels}|all",
                   help="corruption level (or any preset, e.g. severe+S-low); default: the config's test.levels")
    e.add_argument("--out-dir", default=None, help="where scores and metrics.json go (default WORK_DIR/test)")
    e.set_defaults(func=_cmd_test)

    c = sub.add_parser("corrupt", help="corrupt the raw sequences of a pickle",
                       description="Corrupt every sequence of IN.pkl (seeded per sample id) and write OUT.pkl "
                                   "with frame_mask.")
    c.add_argument("input", metavar="IN.pkl")
    c.add_argument("output", metavar="OUT.pkl")
    c.add_argument("--level", required=True, help=f"{levels} or another preset")
    c.add_argument("--mode", choices=("compact", "inplace"), default=None,
                   help="compact: survivors first, zero-padded end (the paper); inplace: dropped frames stay in place")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=_cmd_corrupt)

    d = sub.add_parser("data", help="dataset preparation and statistics")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    dp = dsub.add_parser("prepare", help="convert a dataset to a PYSKL pickle")
    dp.add_argument("dataset", choices=("penn-action",))
    dp.add_argument("src", metavar="SRC", help="folder of the dataset's label files (e.g. Penn Action's labels/)")
    dp.add_argument("out", metavar="OUT.pkl")
    dp.set_defaults(func=_cmd_data_prepare)
    di = dsub.add_parser("info", help="statistics of a PYSKL pickle")
    di.add_argument("file", metavar="FILE")
    di.set_defaults(func=_cmd_data_info)
    ds = dsub.add_parser("split", help="re-split a PYSKL pickle by actor (e.g. a validation actor)",
                         description="Write a copy of INPUT whose splits are the given actors' clips, e.g. "
                                     "`finetec data split in.pkl out.pkl train=1,2,3,4,5,6 val=7 test=8,9,10`.")
    ds.add_argument("input")
    ds.add_argument("output")
    ds.add_argument("splits", nargs="+", metavar="NAME=ACTORS")
    ds.set_defaults(func=_cmd_data_split)
    from .pose.cli import add_commands as add_extract_command

    add_extract_command(dsub)

    en = sub.add_parser("ensemble", help="multi-stream ensembles (joint / bone / motion streams, weighted scores)")
    esub = en.add_subparsers(dest="ensemble_command", required=True, metavar="SUBCOMMAND")
    et = esub.add_parser("train", help="train CONFIG once per stream, then fuse (PYSKL's 1:1 and 2:2:1:1)",
                         description="Train CONFIG with data.feats=[s] for each stream s into OUT/s (a stream whose "
                                     "test scores exist is reused), then fuse the scores; writes OUT/ensemble.json.")
    et.add_argument("config")
    et.add_argument("overrides", nargs="*", metavar="key=value")
    et.add_argument("--streams", nargs="+", default=["j", "b", "jm", "bm"], choices=("j", "b", "jm", "bm"))
    et.add_argument("--out", default=None, help="default: WORK_DIR/ensemble")
    et.set_defaults(func=_cmd_ensemble_train)
    ef = esub.add_parser("fuse", help="fuse the test scores of trained runs with weights")
    ef.add_argument("runs", nargs="+", metavar="RUN", help="run dirs (their test/<level>.npz) or .npz files")
    ef.add_argument("--weights", nargs="+", type=float, default=None, help="one per run (default: equal)")
    ef.add_argument("--level", default="clean", help="which test/<level>.npz to read (default clean)")
    ef.add_argument("--fit-on", default=None, metavar="SUBDIR",
                    help="fit the weights on each run's validation scores RUN/SUBDIR/<level>.npz (e.g. written by "
                         "`finetec test CONFIG --ckpt W data.split_test=val --out-dir RUN/val`)")
    ef.add_argument("--out", default=None, help="write the result as JSON here")
    ef.set_defaults(func=_cmd_ensemble_fuse)

    from .deploy.cli import add_commands as add_export_commands

    add_export_commands(sub)
    from .inference_cli import add_commands as add_inference_commands

    add_inference_commands(sub)
    from .viz.cli import add_commands as add_viz_commands

    add_viz_commands(sub)

    m = sub.add_parser("demo", help="run the end-to-end demo", add_help=False)
    m.add_argument("demo_args", nargs=argparse.REMAINDER)
    m.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["demo"]:  # pass everything after 'demo' through untouched (including --help)
        args = argparse.Namespace(func=_cmd_demo, demo_args=argv[1:])
    else:
        # overrides (key=value) may come before or after options: argparse leaves the later ones unparsed
        args, extra = parser.parse_known_args(argv)
        if hasattr(args, "overrides"):
            args.overrides = list(args.overrides) + [e for e in extra if "=" in e and not e.startswith("-")]
            extra = [e for e in extra if not ("=" in e and not e.startswith("-"))]
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except _UsageError as e:
        print(f"finetec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("finetec: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, _user_errors()):
            msg = str(e)
            if isinstance(e, FileNotFoundError) and e.filename and str(e.filename) not in msg:
                msg = f"{msg}: {e.filename}"
            print(f"finetec: error: {msg}", file=sys.stderr)
            return 2
        raise
    return 0  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
