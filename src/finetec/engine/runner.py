"""Entry points: :func:`train` and :func:`test` (used by the CLI and the demo).

``train`` is the one place that seeds global RNGs (``lightning.seed_everything``), as the entry point of a run.
Work-dir layout::

    work_dir/config.yaml                 resolved config
    work_dir/checkpoints/last.ckpt       Lightning checkpoint at the end of the latest epoch
    work_dir/checkpoints/epoch*-step*.ckpt  the same, named by epoch and step
    work_dir/checkpoints/step*.ckpt      the latest of every trainer.ckpt_every_n_steps optimiser steps
                                         (mid-epoch resume); resume='auto' takes the checkpoint with most steps
    work_dir/logs/version_*/metrics.csv  CSVLogger
    work_dir/model.pth, model.yaml       exported weights + config (checkpoint.export_model)
    work_dir/test/<level>.npz            per-sample scores: frame_dir, label, scores [N, K]
    work_dir/test/metrics.json           metrics per level
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..utils.io import atomic_write, atomic_write_text
from .checkpoint import CheckpointError, export_model, load_weights
from .config import dump_config

__all__ = ["train", "test", "build_trainer", "resolve_resume", "latest_checkpoint"]

# Lightning warns that a mid-epoch resume is unreliable unless the loader is "stateful"; our data module makes the
# sampler skip the trained batches (see datamodule.py), so the warning does not apply.
_RESUME_WARNING = r".*resuming from a checkpoint that ended before the epoch ended.*"
# evaluation metrics are torchmetrics objects, synchronised across processes before they are logged
_SYNC_WARNING = r".*It is recommended to use `self.log\(.*sync_dist=True\)`.*"


@contextlib.contextmanager
def _quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_RESUME_WARNING)
        warnings.filterwarnings("ignore", message=_SYNC_WARNING)
        yield


@contextlib.contextmanager
def _restore_torch_flags() -> Iterator[None]:
    """``Trainer(deterministic=...)`` sets process-wide torch flags; put them back when a run ends."""
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]


def _lightning():
    import lightning.pytorch as pl

    return pl


def build_trainer(cfg: Mapping[str, Any], *, stage: str, callbacks: Iterable[Any] = (), logger: bool = True):
    """A Lightning ``Trainer`` for ``stage`` 'fit' or 'test' from the config's ``trainer`` section."""
    pl = _lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from .checkpoint import SafeCheckpointIO

    t = cfg["trainer"]
    work_dir = Path(t["work_dir"])
    cbs: list[Any] = []
    if stage == "fit":
        ckpt_dir = work_dir / "checkpoints"
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}-step{step:07d}",
                                   auto_insert_metric_name=False, save_last=True, save_top_k=1, every_n_epochs=1))
        if t["ckpt_every_n_steps"]:
            cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
                                       save_last=False, save_top_k=1, every_n_train_steps=t["ckpt_every_n_steps"]))
    if t["progress_bar"]:
        cbs.append(TQDMProgressBar(refresh_rate=max(1, int(t["log_every_n_steps"]))))
    cbs.extend(callbacks)
    limit = t.get("limit_train_batches")
    return pl.Trainer(
        accelerator=t["accelerator"],
        devices=t["devices"],
        num_nodes=t["num_nodes"],
        strategy=t["strategy"],
        precision=t["precision"],
        max_epochs=cfg["optim"]["epochs"],
        callbacks=cbs,
        logger=CSVLogger(str(work_dir), name="logs") if logger else False,
        log_every_n_steps=t["log_every_n_steps"],
        enable_progress_bar=bool(t["progress_bar"]),
        enable_model_summary=False,
        check_val_every_n_epoch=t["val_every_n_epochs"] or 1,
        limit_val_batches=None if t["val_every_n_epochs"] else 0,
        limit_train_batches=limit,
        num_sanity_val_steps=0,
        deterministic=bool(t["deterministic"]),
        use_distributed_sampler=False,  # the data module shards (see datamodule.py)
        plugins=[SafeCheckpointIO()],
        default_root_dir=str(work_dir),
    )


def latest_checkpoint(work_dir: "str | os.PathLike") -> Path | None:
    """The checkpoint in ``work_dir/checkpoints`` with the most optimiser steps (names carry ``step<N>``); on a tie
    the end-of-epoch one; ``last.ckpt`` when no name carries a step; ``None`` when there is none."""
    ckpt_dir = Path(work_dir) / "checkpoints"
    best: tuple[int, int, Path] | None = None
    for p in ckpt_dir.glob("*.ckpt"):
        m = re.search(r"step(\d+)", p.name)
        if m is None:
            continue
        key = (int(m.group(1)), int(p.name.startswith("epoch")), p)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is not None:
        return best[2]
    last = ckpt_dir / "last.ckpt"
    return last if last.is_file() else None


def resolve_resume(resume: "str | os.PathLike | None", work_dir: "str | os.PathLike") -> str | None:
    """``None`` -> fresh run; ``'auto'`` -> :func:`latest_checkpoint` of ``work_dir`` (fresh when there is none);
    else the given path."""
    if resume is None or resume is False:
        return None
    if str(resume) == "auto":
        latest = latest_checkpoint(work_dir)
        return str(latest) if latest is not None else None
    if not Path(resume).is_file():
        raise CheckpointError(f"resume checkpoint not found: {resume}")
    return str(resume)


#: model options that only say where a fresh model's starting weights come from (e.g. ImageNet for ``tsm``)
START_WEIGHT_OPTIONS = ("pretrained",)


def model_config(cfg: Mapping[str, Any], *, for_weights: bool = False) -> dict[str, Any]:
    """The ``model`` section, plus ``num_person = data.num_person``, ``clip_len = data.clip_len`` and ``mode`` (the
    corruption's frame layout) for models that take them and are not told. ``for_weights``: the model is rebuilt to
    load trained weights, so options naming starting weights (:data:`START_WEIGHT_OPTIONS`) are dropped (the file
    they name need not exist where the trained model is used)."""
    import inspect

    from ..models import get_builder

    model = dict(cfg["model"])
    if for_weights:
        for k in START_WEIGHT_OPTIONS:
            model.pop(k, None)
    try:
        params = inspect.signature(get_builder(model["name"])).parameters
    except KeyError:
        return model  # unknown name: build_model reports it
    if "num_person" in params and "num_person" not in model:
        model["num_person"] = int(cfg["data"]["num_person"])
    if "clip_len" in params and "clip_len" not in model:
        model["clip_len"] = int(cfg["data"]["clip_len"])
    if "mode" in params and "mode" not in model:  # how the data lays out dropped frames (compact / inplace)
        model["mode"] = _completion_mode(cfg)
    return model


def prepare_model(model: "Any", cfg: Mapping[str, Any], dm: "Any") -> None:
    """Before training: load ``init.ckpt`` into ``init.into`` (optionally frozen), then fill every empty skeleton
    bank of the model from ``bank`` (default: the training split of ``data.ann_file``)."""
    import torch

    init = cfg["init"]
    if init.get("ckpt"):
        state, _, _ = load_weights(init["ckpt"])
        into = init.get("into") or ""
        try:
            target = model.get_submodule(into) if into else model
        except AttributeError as e:
            inner = getattr(model, "model", None)  # a wrapped recognizer (SF-Head): its inner model's submodule
            try:
                target = inner.get_submodule(into) if isinstance(inner, torch.nn.Module) else None
            except AttributeError:
                target = None
            if target is None:
                raise CheckpointError(f"init.into={into!r}: the model has no such submodule") from e
        try:
            target.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"init.ckpt {init['ckpt']}: weights do not fit {into or 'the model'}: {e}") from e
        if init.get("freeze"):
            target.requires_grad_(False)
    banks = [m for m in model.modules() if type(m).__name__ == "SkeletonBank" and m.is_empty]
    if banks:
        from ..data.bank import build_skeleton_bank

        b, d = cfg["bank"], cfg["data"]
        source = b["source"] if b["source"] else dm._load()
        arrays = build_skeleton_bank(source, layout=dm.layout, clip_len=int(d["clip_len"]), size=int(b["size"]),
                                     split=b["split"] or d["split_train"], seed=int(b["seed"]),
                                     source_layout=b["source_layout"], norm=d["norm"] or "image")
        for bank in banks:
            bank.load(torch.from_numpy(arrays["sequences"]), torch.from_numpy(arrays["weights"]))


def _completion_mode(cfg: Mapping[str, Any]) -> str:
    from ..corruption import get_spec

    d = cfg["data"]["corruption"]
    lv = d["train"] if d["train"] is not None else d["test"]
    return get_spec(lv[0] if isinstance(lv, list) else lv).mode


def _lit_completion(cfg: Mapping[str, Any], dm: "Any"):
    from ..layouts import get_layout
    from .lit_completion import LitCompletion

    return LitCompletion(cfg["model"], clip_len=int(cfg["data"]["clip_len"]),
                         num_joints=get_layout(dm.layout).num_joints, mode=_completion_mode(cfg),
                         optim=cfg["optim"], config=dict(cfg))


def _completion_levels(levels: Sequence[str]) -> list[str]:
    from ..corruption import get_spec

    out = [lv for lv in levels if not get_spec(lv).is_clean]
    if not out:
        raise ValueError(f"completion is evaluated on corrupted data; levels {list(levels)} are all clean")
    return out


def _run_completion_test(trainer, lit, dm, level: str) -> dict[str, float]:
    dm.test_level = level
    with _quiet_warnings():
        trainer.test(lit, datamodule=dm, verbose=False)
    if lit.test_results is None:
        raise RuntimeError("the test loop produced no results")
    return dict(lit.test_results)


def _save_scores(out_dir: Path, level: str, frame_dirs: Sequence[str], results: Mapping[str, Any]) -> Path:
    idx = results["index"].numpy()
    path = out_dir / f"{level}.npz"
    with atomic_write(path, "wb") as f:
        np.savez(f, frame_dir=np.array([frame_dirs[i] for i in idx]), label=results["labels"].numpy(),
                 scores=results["scores"].numpy(), index=idx)
    return path


def _run_test(trainer, lit, dm, level: str, out_dir: Path | None) -> dict[str, float]:
    dm.test_level = level
    with _quiet_warnings():
        trainer.test(lit, datamodule=dm, verbose=False)
    res = lit.test_results
    if res is None:
        raise RuntimeError("the test loop produced no results")
    ds = dm.dataset("test", level)
    if res["metrics"]["num_samples"] != len(ds):
        raise RuntimeError(f"evaluated {res['metrics']['num_samples']} samples but the test split has {len(ds)}")
    if out_dir is not None and trainer.is_global_zero:
        _save_scores(out_dir, level, ds.frame_dirs, res)
    return dict(res["metrics"])


def _write_metrics(out_dir: Path, metrics: Mapping[str, Any]) -> None:
    path = out_dir / "metrics.json"
    old: dict[str, Any] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
    old.update(metrics)
    atomic_write_text(path, json.dumps(old, indent=2) + "\n")


def train(cfg: Mapping[str, Any], *, resume: "str | os.PathLike | None" = None, callbacks: Iterable[Any] = (),
          run_test: bool = True) -> dict[str, Any]:
    with _restore_torch_flags():
        return _train(cfg, resume=resume, callbacks=callbacks, run_test=run_test)


def _train(cfg: Mapping[str, Any], *, resume: "str | os.PathLike | None", callbacks: Iterable[Any],
           run_test: bool) -> dict[str, Any]:
    """Train one config; returns ``{'work_dir', 'ckpt' (exported weights), 'last_ckpt', 'metrics'}``.

    ``resume``: ``None`` (fresh), ``'auto'`` (continue from ``work_dir/checkpoints/last.ckpt`` when present) or a
    checkpoint path. ``metrics``: test-split metrics at ``data.corruption.test`` after training (``run_test``).
    """
    pl = _lightning()
    from .datamodule import build_datamodule
    from .lit import LitRecognizer

    t = cfg["trainer"]
    work_dir = Path(t["work_dir"])
    pl.seed_everything(int(t["seed"]), workers=True, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    completion = cfg["task"] == "completion"
    if completion:
        lit = _lit_completion(cfg, dm)
        if not lit.learned:
            raise ValueError(f"completer {cfg['model']['name']!r} has nothing to train; evaluate it with "
                             "`finetec test CONFIG` (no checkpoint needed)")
    else:
        lit = LitRecognizer(model_config(cfg), num_classes=dm.num_classes, layout=dm.layout,
                            in_channels=dm.in_channels, optim=cfg["optim"], classes=dm.classes, config=dict(cfg),
                            input_key=dm.input_key)
    prepare_model(lit.model, cfg, dm)
    trainer = build_trainer(cfg, stage="fit", callbacks=callbacks)
    ckpt_path = resolve_resume(resume, work_dir)
    if trainer.is_global_zero:
        atomic_write_text(work_dir / "config.yaml", dump_config(cfg))
    with _quiet_warnings():
        trainer.fit(lit, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    weights = work_dir / "model.pth"
    if completion:
        meta = {"task": "completion", "layout": dm.layout, "clip_len": int(cfg["data"]["clip_len"]),
                "mode": lit.mode}
    else:
        meta = {"num_classes": dm.num_classes, "layout": dm.layout, "in_channels": dm.in_channels,
                "classes": dm.classes}
    if trainer.is_global_zero:
        export_model(lit.model, meta, cfg, weights)
    metrics: dict[str, Any] = {}
    if run_test:
        level = cfg["data"]["corruption"]["test"] or "clean"
        out_dir = work_dir / "test"
        if completion:
            metrics = _run_completion_test(trainer, lit, dm, _completion_levels([level])[0])
        else:
            metrics = _run_test(trainer, lit, dm, level, out_dir)
        if trainer.is_global_zero:
            _write_metrics(out_dir, {level: metrics})
    return {"work_dir": str(work_dir), "ckpt": str(weights), "last_ckpt": str(work_dir / "checkpoints" / "last.ckpt"),
            "metrics": metrics}


def test(cfg: Mapping[str, Any], ckpt: "str | os.PathLike | None", levels: Sequence[str] | None = None,
         *, out_dir: "str | os.PathLike | None" = None) -> dict[str, dict[str, float]]:
    """Evaluate weights ``ckpt`` (exported ``.pth`` or Lightning ``.ckpt``) on the test split at each corruption
    level; returns ``{level: {'top1', 'top5', 'mean_class_accuracy', 'num_samples'}}`` and writes per-sample scores
    and ``metrics.json`` under ``out_dir`` (default ``work_dir/test``). With ``task: completion`` the restoration
    metrics of the completer at each corrupted level (``ckpt`` only for learned completers)."""
    from ..corruption import get_spec
    from .datamodule import build_datamodule
    from .lit import LitRecognizer

    levels = list(levels) if levels is not None else list(cfg["test"]["levels"])
    if not levels:
        raise ValueError("no corruption levels to test")
    for lv in levels:
        get_spec(lv)  # ValueError naming the preset when unknown
    if cfg["task"] == "completion":
        return _test_completion(cfg, ckpt, levels, out_dir)
    if ckpt is None:
        raise CheckpointError("testing a recognizer needs its weights (--ckpt)")
    if cfg["task"] == "rgb" and any(lv != "clean" for lv in levels):
        raise ValueError(f"task 'rgb' is evaluated on clean video only, not at levels {levels}")
    state, meta, _ = load_weights(ckpt)
    dm = build_datamodule(cfg, test_level=levels[0])
    dm.setup("test")
    for key, have in (("num_classes", dm.num_classes), ("in_channels", dm.in_channels), ("layout", dm.layout)):
        if meta.get(key) is not None and meta[key] != have:
            raise CheckpointError(f"{ckpt}: weights were trained with {key}={meta[key]!r} but this config/data "
                                  f"gives {have!r}")
    lit = LitRecognizer(model_config(cfg, for_weights=True), num_classes=dm.num_classes, layout=dm.layout,
                        in_channels=dm.in_channels, optim=cfg["optim"], classes=dm.classes, config=dict(cfg),
                        input_key=dm.input_key)
    try:
        lit.model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt}: weights do not fit model {cfg['model']['name']!r}: {e}") from e
    out = Path(out_dir) if out_dir is not None else Path(cfg["trainer"]["work_dir"]) / "test"
    results = {}
    with _restore_torch_flags():
        trainer = build_trainer(cfg, stage="test", logger=False)
        for level in levels:
            results[level] = _run_test(trainer, lit, dm, level, out)
    if trainer.is_global_zero:
        _write_metrics(out, results)
    return results


def _test_completion(cfg: Mapping[str, Any], ckpt: "str | os.PathLike | None", levels: Sequence[str],
                     out_dir: "str | os.PathLike | None") -> dict[str, dict[str, float]]:
    from .datamodule import SkeletonDataModule

    levels = _completion_levels(levels)
    dm = SkeletonDataModule(cfg, test_level=levels[0])
    dm.setup("test")
    lit = _lit_completion(cfg, dm)
    if lit.learned:
        if ckpt is None:
            raise CheckpointError(f"completer {cfg['model']['name']!r} is learned: give its weights (--ckpt)")
        state, _, _ = load_weights(ckpt)
        try:
            lit.model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{ckpt}: weights do not fit completer {cfg['model']['name']!r}: {e}") from e
    else:
        prepare_model(lit.model, cfg, dm)
    out = Path(out_dir) if out_dir is not None else Path(cfg["trainer"]["work_dir"]) / "test"
    results = {}
    with _restore_torch_flags():
        trainer = build_trainer(cfg, stage="test", logger=False)
        for level in levels:
            results[level] = _run_completion_test(trainer, lit, dm, level)
    if trainer.is_global_zero:
        _write_metrics(out, results)
    return results
