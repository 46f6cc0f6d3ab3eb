"""``LitCompletion``: a sequence completer (FineTec's stage 1 and the completion baselines) as a LightningModule.

Batches come from the data module with ``Corrupt(keep_clean=True)`` (``task: completion``): ``keypoint
[N, nc, M, T, V, C']`` (the corrupted input; channels 0-1 are x, y), ``mask [N, nc, T]``, ``keypoint_clean
[N, nc, M, T, V, 2]``, ``score_clean [N, nc, M, T, V]`` and ``kept [N, nc, T]`` (which clean frames survived). Every
(sample, clip, person) is one sequence for the completer: ``x [B, T, V, 2]``, ``mask [B, T]``.

Observed frames and the filling of joints hidden inside them follow
:func:`finetec.models.finetec.model.observed_sequences`, exactly as the FineTec recognizer sees its input. Ground-truth
joints with score 0 are excluded from losses and metrics.

Learned completers (``nn.Module`` with ``compute_loss``) are trained on their own loss; plain functions (copy,
interpolation, duplication) have nothing to train and are only evaluated. Evaluation accumulates
:class:`~finetec.metrics.restoration.RestorationMetrics` (MPJPE, N-MPJPE, MPJVE on all frames and on the missing
frames).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import lightning.pytorch as pl
import torch

from ..metrics.restoration import RestorationMetrics
from .config import ConfigError
from .optim import build_optimizer, build_scheduler

__all__ = ["LitCompletion", "build_completer", "completion_batch"]


def build_completer(model: Mapping[str, Any], *, clip_len: int, num_joints: int) -> "torch.nn.Module | Callable":
    """A completer from the config's ``model`` section (``name`` + options for its builder)."""
    import torch.nn as nn

    from ..models.completion import create_completer, get_completer, list_completers

    kw = dict(model)
    name = kw.pop("name", None)
    kw.pop("width", None)  # recognition-only options of the shared defaults
    kw.pop("dropout", None)
    if not isinstance(name, str) or name not in list_completers():
        raise ConfigError(f"model.name {name!r} is not a registered completer; available: "
                          f"{', '.join(list_completers())}")
    obj = get_completer(name)
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        kw = {"clip_len": clip_len, "num_joints": num_joints, **kw}
    try:
        return create_completer(name, **kw)
    except TypeError as e:
        raise ConfigError(f"model: {e}") from e


def completion_batch(batch: Mapping[str, Any], mode: str = "compact") -> dict[str, torch.Tensor]:
    """Flatten (sample, clip, person) into sequences: ``x, mask, target, weight, kept`` (see the module doc)."""
    for k in ("keypoint", "mask", "keypoint_clean", "score_clean", "kept"):
        if k not in batch:
            raise KeyError(f"completion batch lacks {k!r}: the data pipeline must corrupt with keep_clean=True "
                           "(task: completion)")
    from ..models.finetec.model import observed_sequences

    kp = batch["keypoint"]
    if kp.ndim != 6:
        raise ValueError(f"batch keypoint must be [N, num_clips, M, T, V, C], got {tuple(kp.shape)}")
    N, nc, M, T, V, C = kp.shape
    x, observed, _ = observed_sequences(kp.reshape(N * nc, M, T, V, C), batch["mask"].reshape(N * nc, T), mode)
    kept = batch["kept"][:, :, None, :].expand(N, nc, M, T).reshape(-1, T)
    target = batch["keypoint_clean"][..., :2].reshape(-1, T, V, 2)
    weight = (batch["score_clean"] > 0).to(target.dtype).reshape(-1, T, V)
    return {"x": x, "mask": observed, "target": target, "weight": weight, "kept": kept}


class LitCompletion(pl.LightningModule):
    """Train / evaluate a completer.

    Args:
        model: the ``model`` config section (a completer name + options) or a ready completer.
        clip_len, num_joints: the sequences' T and V.
        mode: ``'compact'`` or ``'inplace'``, the corruption mode of the data.
        optim: the config's ``optim`` section.
        config: the full experiment config, kept in checkpoints.
    """

    def __init__(self, model: "Mapping[str, Any] | torch.nn.Module | Callable", clip_len: int, num_joints: int,
                 mode: str = "compact", optim: Mapping[str, Any] | None = None,
                 config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if isinstance(model, Mapping):
            self.save_hyperparameters()
            completer = build_completer(model, clip_len=clip_len, num_joints=num_joints)
        else:
            self.save_hyperparameters(ignore=["model"])
            completer = model
        if isinstance(completer, torch.nn.Module):
            self.model = completer
            self.fn = None
        else:
            self.model = torch.nn.Module()  # nothing to train
            self.fn = completer
        self.mode = mode
        self.optim_cfg = dict(optim or {})
        self.val_metrics = RestorationMetrics()
        self.test_metrics = RestorationMetrics()
        self.test_results: dict[str, float] | None = None

    @property
    def learned(self) -> bool:
        return self.fn is None and hasattr(self.model, "compute_loss")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.fn is not None:
            return self.fn(x, mask, self.mode)
        return self.model(x, mask, mode=self.mode)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        if not self.learned:
            raise RuntimeError(f"{self.hparams.get('model', {}).get('name', 'this completer')} has nothing to train")
        b = completion_batch(batch, self.mode)
        _, parts = self.model.compute_loss(b["x"], b["mask"], self.mode, b["target"], b["weight"])
        loss = parts["loss"]
        logs = {f"train/{k}": v.detach().float() for k, v in parts.items()}
        logs["train/lr"] = torch.tensor(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=batch["keypoint"].shape[0])
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=batch["keypoint"].shape[0])
        return loss

    def _evaluate(self, batch: Mapping[str, Any], metrics: RestorationMetrics) -> None:
        b = completion_batch(batch, self.mode)
        pred = self(b["x"], b["mask"])
        metrics.update(pred.float(), b["target"].float(), b["weight"], b["kept"])

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        out = self.val_metrics.compute()
        if not self.trainer.sanity_checking:
            self.log_dict({f"val/{k}": float(v) for k, v in out.items()}, prog_bar=False)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.test_metrics.reset()
        self.test_results = None

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        out = {k: float(v) for k, v in self.test_metrics.compute().items()}
        self.log_dict({f"test/{k}": v for k, v in out.items()})
        self.test_results = out
        self.test_metrics.reset()

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = build_optimizer(params, self.optim_cfg)
        epochs = max(int(self.trainer.max_epochs or 1), 1)
        dm = self.trainer.datamodule
        per_epoch = dm.steps_per_epoch(self.trainer.world_size) if dm is not None else 1
        limit = self.trainer.limit_train_batches
        if isinstance(limit, int):
            per_epoch = min(per_epoch, limit)
        per_epoch = max(math.ceil(per_epoch / self.trainer.accumulate_grad_batches), 1)
        sched = build_scheduler(opt, self.optim_cfg, total_steps=per_epoch * epochs, steps_per_epoch=per_epoch)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
