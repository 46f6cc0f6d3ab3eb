"""The FineTec recognizer (models/finetec/model.py): assembly, switches, aux loss, masks, errors."""

import pytest
import torch

from finetec.layouts import get_layout
from finetec.models import create_model
from finetec.models.finetec import FineTec

T = 12


def _model(**kw):
    torch.manual_seed(0)
    opts = dict(clip_len=T, backbone="stgcn", width="slim", fusion_dim=8, completion_kw={"dim": 32, "depth": 1})
    opts.update(kw)
    m = create_model("finetec", 5, "penn13", 3, **opts)
    if m.completion is not None:
        K = m.completion.bank.sequences.shape[0]
        m.completion.bank.load(torch.randn(K, T, 13, 2) * 0.3, torch.ones(K, T, 13))
    return m


def _input(N=3, valid=6):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 1, T, 13, 3, generator=g) * 0.3
    x[..., 2] = 1.0
    x[:, :, valid:] = 0.0  # compact: survivors first, zero-padded
    mask = torch.zeros(N, T, dtype=torch.bool)
    mask[:, :valid] = True
    return x, mask


def test_registered_with_checked_options():
    m = _model()
    assert isinstance(m, FineTec) and m.needs_mask and m.returns_aux
    with pytest.raises(TypeError, match="unknown option"):
        create_model("finetec", 5, "penn13", 3, clip_len=T, fusoin="ca")
    with pytest.raises(ValueError, match="completion must be one of"):
        create_model("finetec", 5, "penn13", 3, clip_len=T, completion="magic")
    with pytest.raises(ValueError, match="not finetec itself"):
        create_model("finetec", 5, "penn13", 3, clip_len=T, backbone="finetec")


def test_training_forward_returns_loss_ac_and_all_parameters_learn():
    m = _model().train()
    x, mask = _input()
    logits, aux = m(x, mask)
    assert logits.shape == (3, 5) and set(aux) == {"loss_ac"} and aux["loss_ac"].ndim == 0
    (logits.logsumexp(-1).mean() + aux["loss_ac"]).backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing


def test_eval_is_deterministic_and_has_no_aux():
    m = _model().eval()
    x, mask = _input()
    with torch.no_grad():
        a, aux = m(x, mask)
        b, _ = m(x, mask)
    assert aux == {} and torch.equal(a, b)


def test_padding_beyond_the_mask_is_ignored():
    m = _model().eval()
    x, mask = _input()
    y = x.clone()
    y[:, :, 6:, :, :2] = 5.0  # garbage in the zero-padded tail, still marked invalid (score 0, mask False)
    y[:, :, 6:, :, 2] = 0.0
    with torch.no_grad():
        assert torch.allclose(m(x, mask)[0], m(y, mask)[0], atol=1e-5)


@pytest.mark.parametrize("kw", [dict(completion="none"), dict(completion="interpolation"),
                                dict(completion="duplication"), dict(decomposition=False), dict(physics=False),
                                dict(use_dyna=False), dict(use_stat=False), dict(fusion="mlp"),
                                dict(mode="inplace")])
def test_ablation_switches_run(kw):
    m = _model(**kw).train()
    x, mask = _input()
    logits, aux = m(x, mask)
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    assert ("loss_ac" in aux) == (kw.get("physics", True))
    if kw.get("completion", "icl") != "icl":
        assert m.completion is None


def test_bf16_autocast_and_wrong_inputs():
    m = _model().train()
    x, mask = _input()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, aux = m(x, mask)
    assert torch.isfinite(logits.float()).all() and torch.isfinite(aux["loss_ac"])
    with pytest.raises(ValueError, match="V=13 joints"):
        m(torch.zeros(2, 1, T, 17, 3), torch.ones(2, T, dtype=torch.bool))
    with pytest.raises(ValueError, match="clip_len=12"):
        m(torch.zeros(2, 1, 20, 13, 3), torch.ones(2, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must be \[N, T\]"):
        m(x, mask[:, :5])


def test_padded_person_gives_finite_output():
    m = _model().train()
    x, mask = _input()
    x2 = torch.cat([x, torch.zeros_like(x)], 1)  # M = 2, second person absent
    logits, aux = m(x2, mask)
    assert torch.isfinite(logits).all() and torch.isfinite(aux["loss_ac"])


def test_regions_come_from_the_layout():
    m = _model()
    assert m.decomposition.region_index.tolist() == get_layout("penn13").region_index.tolist()


def test_compact_input_with_holes_is_compacted_again():
    """Table 6's T-low / T-high drop frames in place after the compact level drop: FineTec must still run."""
    from finetec.models.finetec.model import observed_sequences

    x, mask = _input(N=2, valid=8)
    holes = mask.clone()
    holes[:, 2] = False
    holes[:, 5] = False
    x_h = x * holes[:, None, :, None, None]
    S, obs, w = observed_sequences(x_h, holes, "compact")
    assert obs.tolist() == [[True] * 6 + [False] * 6] * 2
    keep = holes[0].nonzero().squeeze(1)
    assert torch.equal(S[0, :6], x[0, 0, keep, :, :2])
    m = _model().eval()
    with torch.no_grad():
        logits, _ = m(x_h, holes)
    assert torch.isfinite(logits).all()


def test_frozen_completion_stays_in_eval_mode():
    m = _model()
    m.completion.requires_grad_(False)
    m.train()
    assert m.training and m.recognizer.training and not m.completion.training
    m.completion.requires_grad_(True)
    m.train()
    assert m.completion.training
