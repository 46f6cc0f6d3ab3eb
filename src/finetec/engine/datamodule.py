"""Data module: datasets from the config, deterministic and resumable sampling, DDP sharding without padding at
evaluation.

Sampling is owned here, not by Lightning (the runner sets ``use_distributed_sampler=False``):

* :class:`EpochSampler` orders the training set by ``default_rng([seed, epoch]).permutation`` (a pure function of
  seed and epoch), shards it across processes like ``DistributedSampler`` (padded by wrapping so every process gets
  the same number of batches) and yields ``(index, epoch)`` pairs: the dataset builds each sample's generator from
  them, so the epoch reaches DataLoader workers without any shared state.
* Resuming: Lightning 2.6 restores its loop counters and then *iterates the train DataLoader from the start*,
  counting the restored batches as done (it only warns that the loader is "not resumable"), and it creates that
  iterator before it calls ``set_epoch``. So :meth:`SkeletonDataModule.train_dataloader`, which Lightning calls
  after restoring the checkpoint and before creating the iterator, reads the restored counters and tells the
  sampler which epoch it is in and how many batches of it were already trained; the first iteration skips them.
* Evaluation: :class:`EvalSampler` gives process ``r`` the samples ``r, r + W, r + 2W, ...`` with no padding, so
  every test sample is counted exactly once by the synchronised torchmetrics states.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..data.dataset import SkeletonDataset
from ..data.io import AnnotationError, infer_layout, load_annotations
from ..data.transforms import default_pipeline

__all__ = ["EpochSampler", "EvalSampler", "SkeletonDataModule", "VideoDataModule", "resume_position", "build_datamodule"]


class EpochSampler(Sampler):
    """Deterministic, shardable, resumable training order; yields ``(index, epoch)``.

    ``len()`` is always the full per-process epoch length (Lightning counts restored batches itself).
    """

    def __init__(self, num_samples: int, *, seed: int = 0, shuffle: bool = True, num_replicas: int = 1,
                 rank: int = 0) -> None:
        if num_samples < 1:
            raise ValueError("EpochSampler needs at least one sample")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} out of range for {num_replicas} replicas")
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume(self, epoch: int, skip: int) -> None:
        """Start the next iteration at epoch ``epoch``, leaving out this process's first ``skip`` samples."""
        self.epoch, self._skip = int(epoch), int(skip)

    def order(self, epoch: int) -> np.ndarray:
        """This process's sample indices for ``epoch``."""
        idx = (np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples) if self.shuffle
               else np.arange(self.num_samples))
        total = len(self) * self.num_replicas
        idx = np.resize(idx, total)  # wrap-around padding, as DistributedSampler
        return idx[self.rank::self.num_replicas]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.epoch, self._skip
        self._skip = 0
        for i in self.order(epoch)[skip:].tolist():
            yield (i, epoch)


class EvalSampler(Sampler):
    """Process ``rank`` of ``num_replicas`` gets indices ``rank::num_replicas`` (no padding, no duplicates)."""

    def __init__(self, num_samples: int, num_replicas: int = 1, rank: int = 0) -> None:
        if num_samples < num_replicas:
            raise ValueError(f"{num_samples} evaluation samples cannot be split over {num_replicas} processes")
        self.num_samples, self.num_replicas, self.rank = int(num_samples), int(num_replicas), int(rank)

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.num_samples, self.num_replicas))


def resume_position(trainer: "pl.Trainer", batches_per_epoch: int) -> tuple[int, int]:
    """``(epoch, batches already trained in it)`` from the trainer's (possibly just restored) loop counters.

    Mid-epoch (the epoch started but was not processed), the batch counter says how far it got; a checkpoint taken
    after the last batch of an epoch means the next epoch. Otherwise the epoch counter is the next epoch.
    """
    ep = trainer.fit_loop.epoch_progress.current
    bp = trainer.fit_loop.epoch_loop.batch_progress
    done = bp.current.processed
    if ep.started > ep.processed:
        # is_last_batch (saved with the counters) also covers epochs shortened by limit_train_batches
        if done >= batches_per_epoch or (done > 0 and bp.is_last_batch):
            return ep.processed + 1, 0
        return ep.processed, done
    return ep.processed, 0


class SkeletonDataModule(pl.LightningDataModule):
    """Train / val / test datasets of one config.

    ``test_level`` selects the corruption level of the test set (default: ``data.corruption.test``); validation
    always uses ``data.corruption.test``. Properties ``num_classes``, ``classes``, ``layout`` and ``in_channels``
    are available after :meth:`setup`.
    """

    def __init__(self, cfg: Mapping[str, Any], test_level: str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.data_cfg = cfg["data"]
        self.test_level = test_level if test_level is not None else self.data_cfg["corruption"]["test"]
        self._annotations: dict[str, Any] | None = None
        self._datasets: dict[tuple[str, str | None], SkeletonDataset] = {}
        self.train_sampler: EpochSampler | None = None
        self._in_channels: int | None = None

    # ------------------------------------------------------------------ datasets
    def _load(self) -> dict[str, Any]:
        if self._annotations is None:
            ann_file = self.data_cfg["ann_file"]
            if not ann_file:
                raise FileNotFoundError("data.ann_file is not set; give the path of a prepared pickle "
                                        "(e.g. `finetec data prepare penn-action SRC data_cache/penn_action.pkl`)")
            self._annotations = load_annotations(ann_file)
        return self._annotations

    def dataset(self, stage: str, level: "str | list[str] | None" = None) -> SkeletonDataset:
        """``stage`` 'train' or 'test'; ``level`` the corruption preset (None / 'clean': none; in training a list
        draws one preset per sample)."""
        key = (stage, tuple(level) if isinstance(level, list) else level)
        if key not in self._datasets:
            d = self.data_cfg
            test = stage != "train"
            data = self._load()
            where = str(d["ann_file"])
            anns = data["annotations"]
            if not anns:
                raise AnnotationError(f"{where}: no annotations")
            layout = infer_layout(anns[0]["keypoint"].shape[2], d["layout"], data["meta"], where)
            seed = self.cfg["test"]["seed"] if test else self.cfg["trainer"]["seed"]
            pipeline = default_pipeline(
                layout,
                clip_len=d["clip_len"],
                num_clips=d["num_clips_test"] if test else 1,
                test_mode=test,
                feats=tuple(d["feats"]),
                corruption=level,
                norm=d["norm"],
                augment=bool(d["augment"]) and not test,
                num_person=d["num_person"],
                corruption_seed=seed,
                keep_clean=self.cfg.get("task") == "completion",
            )
            ds = SkeletonDataset(data, d["split_test"] if test else d["split_train"], pipeline, layout=layout,
                                 seed=seed, test_mode=test, name=where, trusted=True)
            self._datasets[key] = ds
        return self._datasets[key]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.dataset("train", self.data_cfg["corruption"]["train"])
        self.dataset("test", self.test_level)

    @property
    def _any(self) -> SkeletonDataset:
        if not self._datasets:
            self.setup("test")
        return next(iter(self._datasets.values()))

    @property
    def num_classes(self) -> int:
        return self._any.num_classes

    @property
    def classes(self) -> list[str]:
        return list(self._any.classes)

    @property
    def layout(self) -> str:
        return self._any.layout.name

    @property
    def input_key(self) -> str:
        """The batch key holding the model input."""
        return "keypoint"

    @property
    def in_channels(self) -> int:
        """Input channels the pipeline produces (C' of ``keypoint``)."""
        if self._in_channels is None:
            self._in_channels = int(self.dataset("test", self.test_level)[0]["keypoint"].shape[-1])
        return self._in_channels

    # ------------------------------------------------------------------ loaders
    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _loader(self, ds: SkeletonDataset, sampler: Sampler, seed: int) -> DataLoader:
        nw = int(self.data_cfg["num_workers"])
        return DataLoader(
            ds,
            batch_size=int(self.data_cfg["batch_size"]),
            sampler=sampler,
            num_workers=nw,
            persistent_workers=nw > 0,
            pin_memory=False,
            drop_last=False,
            # a private generator: creating iterators must not draw from the global torch RNG (exact resume)
            generator=torch.Generator().manual_seed(seed),
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train", self.data_cfg["corruption"]["train"])
        world, rank = self._world()
        sampler = EpochSampler(len(ds), seed=self.cfg["trainer"]["seed"], shuffle=True, num_replicas=world, rank=rank)
        bs = int(self.data_cfg["batch_size"])
        if self.trainer is not None:
            epoch, batches = resume_position(self.trainer, math.ceil(len(sampler) / bs))
            sampler.resume(epoch, batches * bs)
        self.train_sampler = sampler
        return self._loader(ds, sampler, self.cfg["trainer"]["seed"])

    def steps_per_epoch(self, world_size: int = 1) -> int:
        """Training batches per epoch and process (before Lightning's ``limit_train_batches``)."""
        n = len(self.dataset("train", self.data_cfg["corruption"]["train"]))
        return math.ceil(math.ceil(n / world_size) / int(self.data_cfg["batch_size"]))

    def _eval_loader(self, level: str | None) -> DataLoader:
        ds = self.dataset("test", level)
        world, rank = self._world()
        return self._loader(ds, EvalSampler(len(ds), world, rank), self.cfg["test"]["seed"])

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.data_cfg["corruption"]["test"])

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_level)


class VideoDataModule(SkeletonDataModule):
    """Config ``task: rgb``: :class:`~finetec.data.video.VideoDataset` samples (decoded, skeleton-cropped frames,
    batch key ``imgs [N, nc, T, 3, H, W]``) from ``data.ann_file`` and the videos of ``data.video``; same sampling,
    resumption and sharding as :class:`SkeletonDataModule`."""

    def dataset(self, stage: str, level: "str | list[str] | None" = None) -> SkeletonDataset:
        from ..data.video import VideoDataset, video_pipeline

        key = (stage, None)
        if key not in self._datasets:
            d, v = self.data_cfg, self.data_cfg["video"]
            test = stage != "train"
            data = self._load()
            where = str(d["ann_file"])
            if not data["annotations"]:
                raise AnnotationError(f"{where}: no annotations")
            layout = infer_layout(data["annotations"][0]["keypoint"].shape[2], d["layout"], data["meta"], where)
            seed = self.cfg["test"]["seed"] if test else self.cfg["trainer"]["seed"]
            pipeline = video_pipeline(num_segments=v["num_segments"], frames_per_segment=v["frames_per_segment"],
                                      num_clips=d["num_clips_test"] if test else 1, test_mode=test,
                                      video_root=v["root"], suffix=v["suffix"], size=v["size"], crop=bool(v["crop"]),
                                      alpha=float(v["alpha"]), min_box=float(v["min_box"]),
                                      flip=bool(v["flip"]) and bool(d["augment"]))
            self._datasets[key] = VideoDataset(data, d["split_test"] if test else d["split_train"], pipeline,
                                               layout=layout, seed=seed, test_mode=test, name=where, trusted=True)
        return self._datasets[key]

    @property
    def input_key(self) -> str:
        return "imgs"

    @property
    def in_channels(self) -> int:
        return 3


def build_datamodule(cfg: Mapping[str, Any], test_level: str | None = None) -> SkeletonDataModule:
    """The data module a config's ``task`` needs."""
    cls = VideoDataModule if cfg.get("task") == "rgb" else SkeletonDataModule
    return cls(cfg, test_level=test_level)
