"""``LitRecognizer``: any recognizer from :func:`finetec.models.create_model` as a LightningModule.

Batches follow docs/architecture.md: ``keypoint [N, nc, M, T, V, C]``, ``mask [N, nc, T]``, ``label [N]``,
``frame_dir`` (list of str), ``index [N]`` (position in the split). Clips are flattened for the model
(``[N * nc, ...]``); at evaluation the softmax scores are averaged over the clips (PYSKL's
``average_clips='prob'``).

Training loss: cross-entropy on the logits, plus every ``loss_*`` entry of the auxiliary dict of models with
``returns_aux``. Models with ``needs_mask`` get ``mask=``; others never see it. Models with ``needs_label`` (e.g. the
class-aware contrastive CTR-GCN, whose memory bank stores labelled features) get ``label=`` in training steps only.
``input_key`` names the batch entry holding the model input: ``keypoint`` (skeletons) or ``imgs``
(``[N, nc, T, 3, H, W]`` video frames, config ``task: rgb``); a batch without ``mask`` gives the model none. A model with an
``on_train_step(step, total_steps)`` method is called before every training step (schedules of its own, e.g. sparse
training); frozen parameters (``requires_grad=False``, ``init.freeze``) are left out of the optimiser.

Evaluation accumulates top-1/top-5/mean-class accuracy with torchmetrics (summed states, synchronised across
processes) and, in testing, the per-sample scores (:class:`~finetec.metrics.ScoreCollector`), so a DDP run reports
metrics over the whole test set as long as each sample is evaluated by exactly one process (the data module's
evaluation sampler does not pad).

Resumption: the global torch RNG state (dropout, random augment layers) of every process is saved in the
checkpoint and restored at ``on_train_start``, so a run resumed mid-epoch continues with the same random numbers.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from ..metrics import ClassificationMetrics, ScoreCollector
from .config import ConfigError
from .optim import build_optimizer, build_scheduler

__all__ = ["LitRecognizer", "build_model"]

_RNG_KEY = "finetec_rng_states"


def build_model(model: Mapping[str, Any], *, num_classes: int, layout: str, in_channels: int) -> torch.nn.Module:
    """``create_model`` from a config's ``model`` section; an unknown name or option is a :class:`ConfigError`."""
    from ..models import create_model, list_models  # engine wires data and models; lazy keeps import light

    kw = dict(model)
    name = kw.pop("name", None)
    if not isinstance(name, str) or name.lower() not in list_models():
        raise ConfigError(f"model.name {name!r} is not a registered model; available: {', '.join(list_models())}")
    try:
        return create_model(name, num_classes=num_classes, layout=layout, in_channels=in_channels, **kw)
    except TypeError as e:
        if "unknown option" in str(e):  # create_model checks the options against the builder's signature
            raise ConfigError(f"model: {e}") from e
        raise


class LitRecognizer(pl.LightningModule):
    """Wrap a recognizer.

    Args:
        model: ``{'name': ..., 'width': ..., **kwargs}`` for ``create_model``, or a ready ``nn.Module`` (then the
            checkpoint's hyper-parameters cannot rebuild it).
        num_classes, layout, in_channels: passed to ``create_model``.
        optim: the config's ``optim`` section (see :mod:`finetec.engine.optim`).
        classes: class names (kept in checkpoints for reports).
        topk: top-k accuracies to report (``k`` > num_classes is clamped).
        config: the full experiment config, kept in checkpoints.
    """

    def __init__(
        self,
        model: "Mapping[str, Any] | torch.nn.Module",
        num_classes: int,
        layout: str,
        in_channels: int,
        optim: Mapping[str, Any] | None = None,
        classes: Sequence[str] | None = None,
        topk: Sequence[int] = (1, 5),
        config: Mapping[str, Any] | None = None,
        input_key: str = "keypoint",
    ) -> None:
        super().__init__()
        if isinstance(model, torch.nn.Module):  # a ready model (programmatic use); not rebuildable from hparams
            self.save_hyperparameters(ignore=["model"])
            self.model = model
        else:
            self.save_hyperparameters()
            self.model = build_model(model, num_classes=num_classes, layout=layout, in_channels=in_channels)
        self.needs_mask = bool(getattr(self.model, "needs_mask", False))
        self.returns_aux = bool(getattr(self.model, "returns_aux", False))
        self.needs_label = bool(getattr(self.model, "needs_label", False))
        self.input_key = str(input_key)
        self.optim_cfg = dict(optim or {})
        self.topk = tuple(int(k) for k in topk)
        self.val_metrics = ClassificationMetrics(num_classes, self.topk)
        self.test_metrics = ClassificationMetrics(num_classes, self.topk)
        self.test_scores = ScoreCollector()
        self.test_results: dict[str, Any] | None = None
        self._pending_rng: list[dict[str, torch.Tensor]] | None = None

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                label: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """``x [B, M, T, V, C]`` (or ``[B, T, 3, H, W]`` frames) -> ``(logits [B, K], aux dict)`` (aux is empty for
        plain models)."""
        kw: dict[str, Any] = {}
        if self.needs_mask:
            kw["mask"] = mask
        if self.needs_label and label is not None:
            kw["label"] = label
        out = self.model(x, **kw)
        if self.returns_aux:
            if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping)):
                raise TypeError(f"{type(self.model).__name__} sets returns_aux but returned {type(out).__name__}, "
                                "not (logits, aux_dict)")
            return out[0], dict(out[1])
        return out, {}

    def _flatten(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        if self.input_key not in batch:
            raise KeyError(f"the batch has no {self.input_key!r} (keys: {sorted(batch)}); the model takes "
                           f"{self.input_key!r} input")
        x = batch[self.input_key]
        if x.ndim != 6:
            what = "[N, num_clips, T, 3, H, W]" if self.input_key == "imgs" else "[N, num_clips, M, T, V, C]"
            raise ValueError(f"batch {self.input_key} must be {what}, got shape {tuple(x.shape)}")
        N, nc = x.shape[:2]
        mask = batch["mask"].flatten(0, 1) if "mask" in batch else None
        return x.flatten(0, 1), mask, N, nc

    def _scores(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Softmax scores averaged over clips, ``[N, K]`` float32."""
        x, mask, N, nc = self._flatten(batch)
        logits, _ = self(x, mask)
        return logits.float().softmax(-1).view(N, nc, -1).mean(1)

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, logs)``: cross-entropy on every clip plus the model's ``loss_*`` auxiliary terms."""
        x, mask, N, nc = self._flatten(batch)
        labels = batch["label"].repeat_interleave(nc)
        logits, aux = self(x, mask, labels)
        loss_cls = F.cross_entropy(logits.float(), labels)
        loss = loss_cls
        logs = {"loss_cls": loss_cls.detach()}
        for k, v in aux.items():
            if k.startswith("loss_"):
                loss = loss + v.float()
                logs[k] = v.detach().float()
        logs["loss"] = loss.detach()
        logs["top1"] = (logits.detach().argmax(-1) == labels).float().mean()
        return loss, logs

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, logs = self.compute_loss(batch)
        N = batch[self.input_key].shape[0]
        logs = {f"train/{k}": v for k, v in logs.items()}
        logs["train/lr"] = torch.tensor(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, batch_size=N)
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=N)
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # models with a training schedule of their own (e.g. Sparse ST-GCN's prune-and-regrow) get every step
        hook = getattr(self.model, "on_train_step", None)
        if callable(hook):
            hook(int(self.global_step), int(getattr(self, "_total_steps", 0) or self.trainer.estimated_stepping_batches))

    def configure_optimizers(self) -> dict[str, Any]:
        opt = build_optimizer([p for p in self.model.parameters() if p.requires_grad], self.optim_cfg)
        epochs = max(int(self.trainer.max_epochs or 1), 1)
        dm = self.trainer.datamodule
        if dm is not None and hasattr(dm, "steps_per_epoch"):
            # not trainer.estimated_stepping_batches: it builds the train loader before a checkpoint is restored,
            # and Lightning then keeps that loader, so the data module could not position the resumed epoch
            per_epoch = dm.steps_per_epoch(self.trainer.world_size)
            limit = self.trainer.limit_train_batches
            if isinstance(limit, int):
                per_epoch = min(per_epoch, limit)
            elif limit is not None and float(limit) < 1.0:
                per_epoch = max(int(per_epoch * float(limit)), 1)
            per_epoch = max(math.ceil(per_epoch / self.trainer.accumulate_grad_batches), 1)
            total = per_epoch * epochs
        else:
            total = int(self.trainer.estimated_stepping_batches)
            per_epoch = max(total // epochs, 1)
        sched = build_scheduler(opt, self.optim_cfg, total_steps=total, steps_per_epoch=per_epoch)
        self._total_steps = total
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}

    # ------------------------------------------------------------------ evaluation
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self.val_metrics.update(self._scores(batch), batch["label"])

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.val_metrics.reset()
            return
        out = self.val_metrics.compute()
        self.log_dict({f"val/{k}": v for k, v in out.items()}, prog_bar=True)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()
        self.test_scores.reset()
        self.test_results = None

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        scores = self._scores(batch)
        self.test_metrics.update(scores, batch["label"])
        self.test_scores.update(batch["index"], scores, batch["label"])

    def on_test_epoch_end(self) -> None:
        metrics = {k: float(v) for k, v in self.test_metrics.compute().items()}
        collected = self.test_scores.compute()  # gathered from every process, sorted by dataset index
        metrics["num_samples"] = int(collected["index"].numel())
        self.log_dict({f"test/{k}": float(v) for k, v in metrics.items()})
        self.test_results = {"metrics": metrics, **{k: v.cpu() for k, v in collected.items()}}
        self.test_metrics.reset()
        self.test_scores.reset()

    # ------------------------------------------------------------------ exact resumption
    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = self._rng_state()
        if self._trainer is not None and self.trainer.world_size > 1:
            # every rank calls this hook (checkpointing is collective); rank 0 writes all ranks' states
            states = []
            gathered = {k: self.trainer.strategy.all_gather(v.to(self.device)) for k, v in state.items()}
            for r in range(self.trainer.world_size):
                states.append({k: v[r].cpu() for k, v in gathered.items()})
        else:
            states = [state]
        checkpoint[_RNG_KEY] = states

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._pending_rng = checkpoint.get(_RNG_KEY)

    def on_train_start(self) -> None:
        # restored here, after Lightning built the data iterators, i.e. at the point the saved run had reached
        if self._pending_rng:
            rank = self.trainer.global_rank
            if rank < len(self._pending_rng):
                st = self._pending_rng[rank]
                torch.set_rng_state(st["cpu"].cpu())
                if "cuda" in st and self.device.type == "cuda":
                    torch.cuda.set_rng_state(st["cuda"].cpu(), self.device)
        self._pending_rng = None
