"""YAML experiment configs: defaults, ``_base_`` inheritance and dotted command-line overrides.

A config file is a YAML mapping with the sections below. ``_base_`` (a path relative to the file, or a list of
them) names files merged first, in order; the file's own keys are merged on top (mappings merge key by key, any
other value replaces). A mapping with ``_delete_: true`` replaces the inherited mapping instead of merging into it
(MMCV's convention). Overrides ``a.b.c=VALUE`` are applied last; ``VALUE`` is parsed with ``yaml.safe_load``
(``0.05`` -> float, ``[j, b]`` -> list, ``null`` -> None).

Schema (defaults in :data:`DEFAULTS`)::

    data:
      ann_file        path to a PYSKL-style pickle (relative paths: to the working directory; ~ and $VARS expand)
      split_train     split name used for training                   split_test   split used for val/test
      layout          joint layout name; null = the pickle's meta['layout']
      clip_len        frames per clip (UniformSampleFrames)          num_clips_test  clips per test sample
      feats           streams: any of j, b, jm, bm                    norm  'image' | 'box' | '3d' | null
      num_person      persons per sample fed to the model            augment  train-time augmentation
      batch_size      per process                                    num_workers  DataLoader workers
      corruption      {train: preset, list of presets or null, test: preset}; presets: clean, minor, moderate,
                      severe (the paper's levels), S-low, S-high, T-low, T-high, composed with '+'
                      (see finetec.corruption.presets)
      video           task 'rgb' only: root (folder of the videos; a sample's 'filename' is relative to it, else
                      <root>/<frame_dir><suffix>), suffix, num_segments x frames_per_segment (TSM sampling; the
                      paper: 8 x 6), size (frames resized to size x size; the paper: 256), crop (skeleton-guided
                      crop, Eq. 1-2), alpha (its margin), min_box (pixels), flip (train-time horizontal flip)
    model:            name, width ('standard' | 'slim'), dropout; every other key goes to create_model(**kw)
    optim:            type ('sgd' | 'adamw'), lr, momentum, nesterov, weight_decay, epochs, warmup_epochs, warmup_ratio, min_lr
    trainer:          precision ('32' | 'bf16-mixed' | ...), accelerator ('cpu' | 'gpu' | 'auto'), devices,
                      num_nodes, strategy ('auto' | 'ddp' | ...), seed, work_dir (null = work_dirs/<config name>),
                      ckpt_every_n_steps (0 = only per epoch), log_every_n_steps, progress_bar,
                      val_every_n_epochs (0 = no validation), deterministic, limit_train_batches
    task:             'recognition' (default: a recognizer from the model registry, cross-entropy + its aux losses)
                      or 'completion' (a completer from finetec.models.completion trained on corrupted / clean
                      pairs, evaluated with the restoration metrics; FineTec's stage 1) or 'rgb' (an RGB recognizer,
                      e.g. 'tsm', on the videos of data.video, guided by the skeletons of data.ann_file)
    bank:             the skeleton bank for models that own one (FineTec's completion, SiC): source (a PYSKL pickle;
                      null = data.ann_file), split (null = data.split_train), size, source_layout (null = the
                      pickle's meta layout; converted to data.layout), seed
    init:             ckpt (exported model.pth or Lightning .ckpt to load before training, e.g. the stage-1
                      completion), into (the submodule it loads into, e.g. 'completion'; '' = the whole model),
                      freeze (true: that submodule is not trained)
    test:             levels (corruption levels `finetec test --corruption all` runs), seed (evaluation seed: the
                      test-set corruption depends only on it, the level and the sample id; test-time frame sampling
                      does not depend on it: UniformSampleFrames uses PYSKL's fixed seed 255 in test mode)
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..corruption.presets import LEVELS

__all__ = ["ConfigError", "DEFAULTS", "load_config", "merge", "apply_overrides", "dump_config", "LEVELS_ALL"]

LEVELS_ALL = tuple(LEVELS)  # the paper's levels, what test.levels 'all' / --corruption all run


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file or key."""


DEFAULTS: dict[str, Any] = {
    "task": "recognition",
    "data": {
        "ann_file": None,
        "split_train": "train",
        "split_test": "test",
        "layout": None,
        "clip_len": 100,
        "num_clips_test": 10,
        "feats": ["j"],
        "norm": "image",
        "num_person": 2,
        "augment": True,
        "batch_size": 16,
        "num_workers": 2,
        "corruption": {"train": None, "test": "clean"},
        "video": {"root": None, "suffix": ".mp4", "num_segments": 8, "frames_per_segment": 1, "size": 112,
                  "crop": True, "alpha": 0.3, "min_box": 32, "flip": True},
    },
    "model": {"name": "stgcn", "width": "standard", "dropout": 0.0},
    "optim": {
        "type": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "epochs": 16,
        "warmup_epochs": 0,
        "warmup_ratio": 0.1,
        "min_lr": 0.0,
    },
    "trainer": {
        "precision": "32",
        "accelerator": "auto",
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "seed": 0,
        "work_dir": None,
        "ckpt_every_n_steps": 0,
        "log_every_n_steps": 10,
        "progress_bar": True,
        "val_every_n_epochs": 1,
        "deterministic": False,
        "limit_train_batches": None,
    },
    "test": {"levels": list(LEVELS_ALL), "seed": 0},
    "bank": {"source": None, "split": None, "size": 256, "source_layout": None, "seed": 0},
    "init": {"ckpt": None, "into": "", "freeze": False},
}
TASKS = ("recognition", "completion", "rgb")

FEATS = ("j", "b", "jm", "bm")
NORMS = ("image", "box", "3d", None)
PRECISIONS = ("32", "32-true", "64", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")

# sections whose keys are free (passed through as keyword arguments)
_OPEN_SECTIONS = ("model",)


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, other values replace; ``_delete_: true`` replaces a mapping."""
    out = copy.deepcopy(dict(base))
    for k, v in update.items():
        if isinstance(v, Mapping):
            v = dict(v)
            delete = v.pop("_delete_", False)
            if not delete and isinstance(out.get(k), Mapping):
                out[k] = merge(out[k], v)
            else:
                out[k] = merge({}, v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        raise ConfigError(f"config {path}: _base_ cycle {' -> '.join(str(p) for p in chain + (path,))}")
    if not path.is_file():
        where = f" (base of {chain[-1]})" if chain else ""
        raise ConfigError(f"config file not found: {path}{where}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path}: invalid YAML: {e}") from e
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: top level must be a mapping, got {type(raw).__name__}")
    bases = raw.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config {path}: _base_ must be a path or a list of paths")
    out: dict[str, Any] = {}
    for b in bases:
        out = merge(out, _read_yaml(path.parent / b, chain + (path,)))
    return merge(out, raw)


def _check_keys(cfg: Mapping[str, Any], schema: Mapping[str, Any], where: str, prefix: str = "") -> None:
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if k not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{where}: unknown key {key!r} (known at this level: {known})")
        if prefix == "" and k in _OPEN_SECTIONS:
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: {key!r} must be a mapping")
            continue
        if isinstance(schema[k], Mapping):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: {key!r} must be a mapping, got {v!r}")
            _check_keys(v, schema[k], where, f"{key}.")


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (values parsed with ``yaml.safe_load``); unknown keys are errors."""
    out = copy.deepcopy(dict(cfg))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        key, _, text = item.partition("=")
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key component")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: cannot parse value: {e}") from e
        node, schema = out, DEFAULTS
        for i, p in enumerate(parts[:-1]):
            open_section = i == 0 and p in _OPEN_SECTIONS
            if schema is not None and p not in schema:
                raise ConfigError(f"override {item!r}: unknown key {'.'.join(parts[: i + 1])!r}")
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])!r} is not a mapping")
            node = nxt
            schema = None if (open_section or schema is None) else schema[p]
            if schema is not None and not isinstance(schema, Mapping):
                raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])!r} is not a mapping")
        last = parts[-1]
        if schema is not None and last not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"override {item!r}: unknown key {key!r} (known: {known})")
        node[last] = value
    return out


def _check_level(level: Any, where: str) -> None:
    """A corruption preset name (``clean``, ``minor``, ``severe+S-low``, ...) that ``get_spec`` accepts."""
    from ..corruption import get_spec

    if not isinstance(level, str):
        raise ConfigError(f"{where}: corruption level must be a preset name, got {level!r}")
    try:
        get_spec(level)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


def _validate(cfg: dict[str, Any], where: str) -> None:
    d, o, t = cfg["data"], cfg["optim"], cfg["trainer"]

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{where}: {msg}")

    need(isinstance(d["batch_size"], int) and d["batch_size"] > 0, f"data.batch_size must be a positive int, got {d['batch_size']!r}")
    need(isinstance(d["clip_len"], int) and d["clip_len"] > 0, f"data.clip_len must be a positive int, got {d['clip_len']!r}")
    need(isinstance(d["num_clips_test"], int) and d["num_clips_test"] > 0, "data.num_clips_test must be a positive int")
    need(isinstance(d["num_workers"], int) and d["num_workers"] >= 0, "data.num_workers must be an int >= 0")
    if isinstance(d["feats"], str):
        d["feats"] = [d["feats"]]
    need(isinstance(d["feats"], list) and len(d["feats"]) > 0 and set(d["feats"]) <= set(FEATS)
         and len(set(d["feats"])) == len(d["feats"]),
         f"data.feats must be a non-empty list of distinct streams from {list(FEATS)}, got {d['feats']!r}")
    need(d["norm"] in NORMS, f"data.norm must be one of {list(NORMS)}, got {d['norm']!r}")
    need(isinstance(d["num_person"], int) and d["num_person"] >= 1, "data.num_person must be an int >= 1")
    for split in ("train", "test"):
        lvl = d["corruption"].get(split)
        if lvl is None:
            continue
        if split == "test" and not isinstance(lvl, str):
            raise ConfigError(f"{where}: data.corruption.test must be one preset name, got {lvl!r}")
        for one in (lvl if isinstance(lvl, list) else [lvl]):
            _check_level(one, f"{where}: data.corruption.{split}")
    levels = cfg["test"]["levels"]
    if isinstance(levels, str):
        levels = cfg["test"]["levels"] = list(LEVELS_ALL) if levels == "all" else [levels]
    need(isinstance(levels, list) and len(levels) > 0, f"test.levels must be a non-empty list, got {levels!r}")
    for one in levels:
        _check_level(one, f"{where}: test.levels")
    for k in ("lr", "momentum", "weight_decay", "min_lr", "warmup_ratio"):
        need(isinstance(o[k], (int, float)) and o[k] >= 0, f"optim.{k} must be a number >= 0, got {o[k]!r}")
    need(o["type"] in ("sgd", "adamw"), f"optim.type must be 'sgd' or 'adamw', got {o['type']!r}")
    need(isinstance(o["epochs"], int) and o["epochs"] > 0, f"optim.epochs must be a positive int, got {o['epochs']!r}")
    need(isinstance(o["warmup_epochs"], (int, float)) and 0 <= o["warmup_epochs"] <= o["epochs"],
         "optim.warmup_epochs must lie in 0..optim.epochs")
    need(o["min_lr"] <= o["lr"], "optim.min_lr must not exceed optim.lr")
    t["precision"] = str(t["precision"])
    need(t["precision"] in PRECISIONS, f"trainer.precision must be one of {list(PRECISIONS)}, got {t['precision']!r}")
    need(isinstance(t["seed"], int), f"trainer.seed must be an int, got {t['seed']!r}")
    need(isinstance(t["ckpt_every_n_steps"], int) and t["ckpt_every_n_steps"] >= 0, "trainer.ckpt_every_n_steps must be an int >= 0")
    need(isinstance(t["val_every_n_epochs"], int) and t["val_every_n_epochs"] >= 0, "trainer.val_every_n_epochs must be an int >= 0")
    need(isinstance(cfg["model"].get("name"), str), "model.name must be a string")
    need(cfg["task"] in TASKS, f"task must be one of {list(TASKS)}, got {cfg['task']!r}")
    if cfg["task"] == "rgb":
        v = d["video"]
        need(v["root"] is None or isinstance(v["root"], str), "data.video.root must be a folder path")
        for k in ("num_segments", "frames_per_segment", "size"):
            need(isinstance(v[k], int) and v[k] > 0, f"data.video.{k} must be a positive int, got {v[k]!r}")
        need(isinstance(v["alpha"], (int, float)) and v["alpha"] >= 0, "data.video.alpha must be a number >= 0")
        need(all(lv == "clean" for lv in levels) and d["corruption"]["train"] in (None, "clean")
             and d["corruption"]["test"] in (None, "clean"),
             "task 'rgb' reads video frames; skeleton corruption levels do not apply (use clean)")
    b = cfg["bank"]
    need(isinstance(b["size"], int) and b["size"] > 0, f"bank.size must be a positive int, got {b['size']!r}")
    if cfg["init"]["into"] is None:
        cfg["init"]["into"] = ""
    need(isinstance(cfg["init"]["into"], str), "init.into must be a submodule name ('' = the whole model)")


def _expand(p: Any) -> Any:
    return os.path.expanduser(os.path.expandvars(p)) if isinstance(p, str) else p


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults <- ``base`` dict <- YAML file (with its ``_base_`` chain) <- overrides; validated.

    ``trainer.work_dir`` left null becomes ``work_dirs/<config file stem>`` (``work_dirs/default`` without a file).
    """
    where = str(path) if path is not None else "config"
    cfg = merge(DEFAULTS, {})
    if base is not None:
        _check_keys(base, DEFAULTS, where)
        cfg = merge(cfg, base)
    if path is not None:
        raw = _read_yaml(Path(path))
        _check_keys(raw, DEFAULTS, where)
        cfg = merge(cfg, raw)
    cfg = apply_overrides(cfg, overrides)
    _validate(cfg, where)
    cfg["data"]["ann_file"] = _expand(cfg["data"]["ann_file"])
    cfg["data"]["video"]["root"] = _expand(cfg["data"]["video"]["root"])
    cfg["bank"]["source"] = _expand(cfg["bank"]["source"])
    cfg["init"]["ckpt"] = _expand(cfg["init"]["ckpt"])
    if cfg["trainer"]["work_dir"] is None:
        stem = Path(path).stem if path is not None else "default"
        parent = Path(path).parent.name if path is not None else ""
        cfg["trainer"]["work_dir"] = str(Path("work_dirs") / parent / stem) if parent and parent != "configs" \
            else str(Path("work_dirs") / stem)
    cfg["trainer"]["work_dir"] = _expand(cfg["trainer"]["work_dir"])
    return cfg


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The config as YAML text (loadable again with :func:`load_config`)."""
    return yaml.safe_dump(dict(cfg), sort_keys=False)
