"""``finetec export``: a trained recognizer to ONNX or TorchScript, with a parity check and a model card.

::

    finetec export --ckpt PATH [--format onnx|torchscript] [--out PATH] [--opset N] [--clip-len T] [--atol A]

Writes the model (default: next to the checkpoint, ``<stem>.onnx`` / ``<stem>.torchscript.pt``) and its card
(``<file>.card.md``, ``<file>.card.json``). Exit status 0 on success, 2 on bad input (missing or unreadable
checkpoint, a model that cannot be exported, bad options), 1 when the exported model fails the parity check.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

__all__ = ["add_commands"]


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _command_line(args: argparse.Namespace) -> str:
    parts = ["finetec", "export", "--ckpt", str(args.ckpt), "--format", args.format]
    for flag, value in (("--out", args.out), ("--opset", args.opset), ("--clip-len", args.clip_len),
                        ("--atol", args.atol if args.atol != 1e-4 else None)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _cmd_export(args: argparse.Namespace) -> int:
    from ..engine.checkpoint import CheckpointError
    from ..engine.config import ConfigError
    from .export import ExportError, ParityError, export_checkpoint

    try:
        res = export_checkpoint(args.ckpt, args.format, args.out, opset=args.opset, clip_len=args.clip_len,
                                atol=args.atol, command=_command_line(args))
    except ParityError as e:
        print(f"finetec: error: {e}", file=sys.stderr)
        return 1
    except (CheckpointError, ConfigError, ExportError, FileNotFoundError) as e:
        print(f"finetec: error: {e}", file=sys.stderr)
        return 2
    par = res["parity"]
    cases = ", ".join(f"N={c['batch']} T={c['time']}" for c in par["cases"])
    print(f"exported {args.format}: {res['model']}")
    print(f"parity with PyTorch: max |diff| {par['max_abs_diff']:.2e} <= {par['atol']:g} ({cases})")
    print(f"model card: {res['card_md']}, {res['card_json']}")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``export`` to an argparse sub-parser collection (``parser.add_subparsers()``)."""
    p = subparsers.add_parser(
        "export", help="export a trained recognizer to ONNX or TorchScript",
        description="Export the recognizer of --ckpt (exported model.pth or Lightning .ckpt) with dynamic batch "
                    "(and clip length where the model allows), check it against PyTorch on random inputs and "
                    "write a model card next to it.")
    p.add_argument("--ckpt", required=True, help="exported model.pth or a Lightning .ckpt of a finetec run")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    p.add_argument("--out", default=None,
                   help="output file (default: next to the checkpoint, <stem>.onnx or <stem>.torchscript.pt)")
    p.add_argument("--opset", type=_positive_int, default=None, help="ONNX opset (default 17; 11..20)")
    p.add_argument("--clip-len", type=_positive_int, default=None,
                   help="T of the traced input (default: the config's data.clip_len; for RGB models "
                        "data.video.num_segments x frames_per_segment)")
    p.add_argument("--atol", type=_positive_float, default=1e-4,
                   help="parity tolerance on the logits (default 1e-4)")
    p.set_defaults(func=_cmd_export)
