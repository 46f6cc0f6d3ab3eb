"""SGD + per-iteration warm-up/cosine schedule (MMCV CosineAnnealing by_epoch=False with linear warm-up)."""

import math

import pytest
import torch

from finetec.engine.optim import WarmupCosine, build_optimizer, build_scheduler


def _lrs(optim_cfg, total, per_epoch):
    p = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([p], optim_cfg)
    sched = build_scheduler(opt, optim_cfg, total_steps=total, steps_per_epoch=per_epoch)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return opt, sched, lrs


def test_sgd_settings():
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], {"lr": 0.1})
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == (0.1, 0.9, True, 5e-4)


def test_cosine_by_iteration():
    _, _, lrs = _lrs({"lr": 0.1, "min_lr": 0.0}, total=10, per_epoch=5)
    # by hand: lr_i = 0.1 * (1 + cos(pi * i / 10)) / 2
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[5] == pytest.approx(0.05)
    assert lrs[9] == pytest.approx(0.1 * (1 + math.cos(math.pi * 0.9)) / 2)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_min_lr_and_warmup():
    cfg = {"lr": 0.1, "min_lr": 0.01, "warmup_epochs": 1, "warmup_ratio": 0.1}
    _, _, lrs = _lrs(cfg, total=20, per_epoch=4)
    # i = 0: cosine part 0.1, warm-up factor 1 - 0.9 * (1 - 0/4) = 0.1 -> 0.01
    assert lrs[0] == pytest.approx(0.01)
    # i = 2: cosine 0.01 + 0.09 * (1 + cos(pi * 2/20)) / 2; factor 1 - 0.9 * 0.5 = 0.55
    assert lrs[2] == pytest.approx((0.01 + 0.09 * (1 + math.cos(math.pi * 0.1)) / 2) * 0.55)
    # after warm-up: pure cosine, ending near min_lr
    assert lrs[4] == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi * 0.2)) / 2)
    assert min(lrs) >= 0.01 - 1e-12
    assert WarmupCosine(20, 4, 0.1, 0.1)(20) == pytest.approx(0.1)


def test_scheduler_state_roundtrip_is_plain():
    opt, sched, _ = _lrs({"lr": 0.1, "warmup_epochs": 1}, total=6, per_epoch=3)
    state = sched.state_dict()
    assert state["lr_lambdas"][0] == {"total_steps": 6, "warmup_steps": 3, "warmup_ratio": 0.1, "min_ratio": 0.0}
    p = torch.nn.Parameter(torch.zeros(2))
    opt2 = build_optimizer([p], {"lr": 0.1})
    sched2 = build_scheduler(opt2, {"lr": 0.1}, total_steps=99, steps_per_epoch=1)
    sched2.load_state_dict(state)
    assert sched2.lr_lambdas[0].total_steps == 6 and sched2.last_epoch == sched.last_epoch


def test_zero_steps_rejected():
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], {"lr": 0.1})
    with pytest.raises(ValueError, match="at least one step"):
        build_scheduler(opt, {"lr": 0.1}, total_steps=0, steps_per_epoch=1)
