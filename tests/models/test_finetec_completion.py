"""ContextCompletion (Eq. 14): zero-init = interpolation, hand-computed L_ICL, prompt isolation, training, bf16."""

from __future__ import annotations

import pytest
import torch

from finetec.corruption.batched import apply_keep, drop_keep_masks
from finetec.models.completion.classic import linear_interp
from finetec.models.finetec.completion import ContextCompletion, weighted_mse


def _sinusoids(N: int, T: int, V: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float32)[None, :, None, None] / T
    amp = 0.2 + 0.3 * torch.rand(N, 1, V, 2, generator=g)
    freq = 1.0 + torch.randint(0, 2, (N, 1, 1, 1), generator=g).float()
    phase = 6.28 * torch.rand(N, 1, V, 2, generator=g)
    return amp * torch.sin(6.2832 * freq * t + phase)


def _model(T=12, V=3, K=6, seed=0, **kw) -> ContextCompletion:
    torch.manual_seed(seed)
    m = ContextCompletion(T, V, bank_size=K, dim=32, depth=2, **kw)
    m.bank.load(_sinusoids(K, T, V, seed=100 + seed), torch.ones(K, T, V))
    return m


def _randomize_head(m: ContextCompletion) -> None:
    with torch.no_grad():
        m.head.weight.normal_(0, 0.1)
        m.head.bias.normal_(0, 0.1)


def _corrupt(S: torch.Tensor, ratio: float, pattern: str, mode: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    keep = drop_keep_masks(torch.ones(S.shape[:2], dtype=torch.bool), ratio, pattern, g)
    return apply_keep(S, keep, mode)


@pytest.mark.parametrize("mode", ["compact", "inplace"])
@pytest.mark.parametrize("prompt", ["random", "nearest", "fixed", None])
def test_zero_init_returns_linear_interp(mode, prompt):
    m = _model()
    S = _sinusoids(4, 12, 3, seed=1)
    x, mask = _corrupt(S, 0.5, "random", mode)
    out = m(x, mask, mode, prompt=prompt)
    assert out.shape == S.shape and out.dtype == torch.float32
    assert torch.equal(out, linear_interp(x, mask, mode))


def test_icl_loss_hand_computed():
    m = _model(T=4, V=1, K=1).eval()
    ctx = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 4.0], [3.0, 9.0]])[None, :, None]  # (t, t^2)
    cw = torch.ones(1, 4, 1)
    cw[0, 1] = 0.0  # frame 1 of the context is invisible: excluded from the prompt loss
    m.bank.load(ctx, cw)
    x = torch.zeros(1, 4, 1, 2)
    x[0, 0, 0] = torch.tensor([0.0, 0.0])
    x[0, 3, 0] = torch.tensor([3.0, 6.0])
    mask = torch.tensor([[True, False, False, True]])
    target = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 5.0], [3.0, 6.0]])[None, :, None]
    S, parts = m.compute_loss(x, mask, "inplace", target, torch.ones(1, 4, 1), prompt="fixed")
    # query: interpolation (0,0) (1,2) (2,4) (3,6) vs target -> one squared error 1 over 4 frames x 2 coords
    assert torch.allclose(S[0, :, 0], torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]))
    assert parts["loss_query"].item() == pytest.approx(1 / 8)
    # prompt (eval: mirror of the query's kept frames 0 and 3): S_mask interpolates to y = 0, 3, 6, 9, so the
    # visible frames 0, 2, 3 have squared errors 0, (6 - 4)^2, 0 over 3 frames x 2 coords
    assert parts["loss_prompt"].item() == pytest.approx(4 / 6)
    assert parts["loss"].item() == pytest.approx(1 / 8 + 4 / 6)
    assert parts["loss"].item() == pytest.approx((parts["loss_query"] + parts["loss_prompt"]).item())


def test_weighted_mse_excludes_invisible_and_handles_no_weight():
    p, t = torch.zeros(1, 2, 2, 2), torch.ones(1, 2, 2, 2)
    t[0, 0, 0] = 100.0
    w = torch.ones(1, 2, 2)
    w[0, 0, 0] = 0.0
    assert weighted_mse(p, t, w).item() == pytest.approx(1.0)
    assert weighted_mse(p, t, torch.zeros(1, 2, 2)).item() == 0.0


def test_prompt_completion_never_sees_context_but_query_reads_prompt():
    m = _model().eval()
    _randomize_head(m)
    S = _sinusoids(1, 12, 3, seed=2)
    x, mask = _corrupt(S, 0.5, "periodic", "inplace")
    a = m.complete(x, mask, "inplace", prompt="fixed")
    with torch.no_grad():  # change S_context only where the (mirror) prompt mask hides it; S_prior stays
        m.bank.sequences[0, ~mask[0]] += 1.0
    b = m.complete(x, mask, "inplace", prompt="fixed")
    assert torch.equal(b["S_mask"], a["S_mask"]) and not torch.equal(b["S_context"], a["S_context"])
    assert torch.allclose(b["S_context_hat"], a["S_context_hat"])  # the prompt's completion never sees S_context
    assert not torch.allclose(b["S_base"], a["S_base"])  # the query reads the prompt pair


def test_query_reads_prompt():
    m = _model().eval()
    _randomize_head(m)
    S = _sinusoids(2, 12, 3, seed=2)
    x, mask = _corrupt(S, 0.5, "random", "compact")
    a = m(x, mask, "compact", prompt="fixed")
    b = m(x, mask, "compact", prompt=None)
    assert not torch.allclose(a, b)
    with torch.no_grad():
        m.bank.sequences[0] += 0.5  # prior unchanged (buffer not recomputed): only the prompt moves
    assert not torch.allclose(m(x, mask, "compact", prompt="fixed"), a)


@pytest.mark.parametrize("mode", ["compact", "inplace"])
def test_loss_decreases_with_adam(mode):
    T, V = 12, 3
    m = _model(T=T, V=V, K=16).train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    S = _sinusoids(32, T, V, seed=7)
    x, mask = _corrupt(S, 0.5, "random", mode, seed=3)
    w = torch.ones(32, T, V)
    losses, query = [], []
    for _ in range(30):
        opt.zero_grad()
        # the same prompt draws at every step, so the objective is fixed and the losses comparable
        _, parts = m.compute_loss(x, mask, mode, S, w, generator=torch.Generator().manual_seed(0))
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
        query.append(parts["loss_query"].item())
    assert losses[-1] < 0.6 * losses[0] and query[-1] < 0.7 * query[0]
    m.eval()
    with torch.no_grad():
        _, ev = m.compute_loss(x, mask, mode, S, w)
    assert torch.isfinite(ev["loss"]) and ev["loss_prompt"] > 0


def test_bf16_autocast_and_padding_rows():
    m = _model().train()
    _randomize_head(m)
    S = _sinusoids(3, 12, 3, seed=4)
    x, mask = _corrupt(S, 0.75, "between", "compact")
    x = torch.cat([x, torch.zeros(2, 12, 3, 2)])  # padding persons: no frame / all-zero frames
    mask = torch.cat([mask, torch.zeros(1, 12, dtype=torch.bool), torch.ones(1, 12, dtype=torch.bool)])
    w = torch.cat([torch.ones(3, 12, 3), torch.zeros(2, 12, 3)])
    target = torch.cat([S, torch.zeros(2, 12, 3, 2)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, parts = m.compute_loss(x, mask, "compact", target, w, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.isfinite(parts["loss"])
    parts["loss"].backward()
    grads = [p.grad for p in m.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert m.head.weight.grad.abs().sum() > 0 and m.embed.weight.grad.abs().sum() > 0


def test_empty_bank_error_and_no_prompt_without_bank():
    m = ContextCompletion(8, 2, bank_size=4, dim=16, depth=1)
    x = torch.randn(2, 8, 2, 2)
    mask = torch.ones(2, 8, dtype=torch.bool)
    with pytest.raises(RuntimeError, match=r"model\.bank\.load.*build_skeleton_bank"):
        m(x, mask, "inplace")
    with pytest.raises(RuntimeError, match="empty"):
        m.compute_loss(x, mask, "inplace", x, torch.ones(2, 8, 2))
    assert torch.equal(m(x, mask, "inplace", prompt=None), x)  # all frames observed: interpolation is identity
    S, parts = m.compute_loss(x, mask, "inplace", x, torch.ones(2, 8, 2), prompt=None)
    assert parts["loss_prompt"].item() == 0.0


def test_bad_input():
    m = _model()
    x = torch.zeros(2, 12, 3, 2)
    mask = torch.ones(2, 12, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"T=12, V=3"):
        m(torch.zeros(2, 10, 3, 2), mask[:, :10])
    with pytest.raises(ValueError, match="bool tensor"):
        m(x, mask.float())
    with pytest.raises(ValueError, match="mode"):
        m(x, mask, "sideways")
    with pytest.raises(ValueError, match="prompt"):
        m(x, mask, "compact", prompt="best")
    with pytest.raises(ValueError, match="target must be"):
        m.compute_loss(x, mask, "compact", x[:, :5], torch.ones(2, 12, 3))
    with pytest.raises(ValueError, match="train_prompt"):
        ContextCompletion(12, 3, train_prompt="always")


def test_state_dict_round_trip_into_fresh_module():
    m = _model(K=5).eval()
    _randomize_head(m)
    fresh = ContextCompletion(12, 3, bank_size=9, dim=32, depth=2).eval()
    fresh.load_state_dict(m.state_dict())
    S = _sinusoids(3, 12, 3, seed=5)
    x, mask = _corrupt(S, 0.5, "suffix", "compact")
    assert fresh.bank.size == 5
    assert torch.equal(fresh(x, mask, "compact"), m(x, mask, "compact"))
