"""SF-Head plugged into every registered GCN: shapes, inline vs auxiliary, the exported auxiliary model has
exactly the backbone's parameters, losses in training only, options and errors."""

from __future__ import annotations

import pytest
import torch

from finetec.models import create_model, list_models
from finetec.models.backbones.common import Block
from finetec.models.sfhead import SFHeadRecognizer, SFHeadSlot, attach_sfhead

NON_GCN = {"posec3d", "posec3d_limb", "finetec"}


def gcn_models() -> list[str]:
    return [n for n in list_models() if n not in NON_GCN and not n.startswith(("lr_", "rl_"))
            and _is_gcn(n)]


def _is_gcn(name: str) -> bool:
    try:
        m = create_model(name, 3, "penn13", 3, width="slim")
    except TypeError:
        return False
    return any(isinstance(b, Block) for b in m.modules())


@pytest.mark.parametrize("name", gcn_models())
@pytest.mark.parametrize("width", ["slim", "standard"])
def test_every_backbone_width_and_mode(name, width):
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, 13, 3)
    base = create_model(name, 5, "penn13", 3, width=width)
    for mode in ("inline", "auxiliary"):
        torch.manual_seed(0)
        model = create_model(name, 5, "penn13", 3, width=width, sfhead={"mode": mode})
        assert isinstance(model, SFHeadRecognizer)
        slots = [m for m in model.modules() if isinstance(m, SFHeadSlot)]
        assert slots and len(slots) == sum(isinstance(b, Block) for b in base.modules())
        for s in slots:  # SF-Head output shape == its input (the gcn output) at every width
            seen = {}
            h = s.head.register_forward_hook(lambda mod, inp, out: seen.update(i=inp[0].shape, o=out.shape))
            model.eval()
            with torch.no_grad():
                model(x)
            h.remove()
            if mode == "inline":
                assert seen["i"] == seen["o"]
        inf = model.inference_model()
        n_inf = sum(p.numel() for p in inf.parameters())
        if mode == "auxiliary":
            assert n_inf == base.num_parameters()
            assert not any(isinstance(m, SFHeadSlot) for m in inf.modules())
        else:
            assert n_inf == model.num_parameters() > base.num_parameters()


def test_auxiliary_eval_equals_backbone_and_inline_differs():
    torch.manual_seed(0)
    x = torch.randn(3, 1, 10, 13, 3)
    aux = create_model("ctrgcn", 4, "penn13", 3, width="slim", sfhead={"mode": "auxiliary"}).eval()
    base = create_model("ctrgcn", 4, "penn13", 3, width="slim").eval()
    inf = aux.inference_model().eval()
    base.load_state_dict(inf.state_dict())  # the stripped model has exactly the backbone's keys
    with torch.no_grad():
        logits, extra = aux(x)
        assert extra == {}
        assert torch.allclose(logits, base(x), atol=1e-5)
        assert torch.allclose(inf(x), base(x), atol=1e-5)
    inline = create_model("ctrgcn", 4, "penn13", 3, width="slim", sfhead={"mode": "inline"}).eval()
    inline.model.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        assert not torch.allclose(inline(x)[0], base(x), atol=1e-3)


@pytest.mark.parametrize("mode", ["inline", "auxiliary"])
def test_losses_in_training_reach_backbone(mode):
    torch.manual_seed(0)
    model = create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"mode": mode, "lambda_con": 0.5})
    model.train()
    logits, aux = model(torch.randn(4, 1, 8, 13, 3))
    assert set(aux) == {"loss_con", "loss_red"} and all(torch.isfinite(v) for v in aux.values())
    (aux["loss_con"] + aux["loss_red"]).backward()
    gcn_w = model.model.backbone.blocks[1].gcn.gcn
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gcn_w.parameters())
    assert all(s.features is None for s in model.modules() if isinstance(s, SFHeadSlot))  # cleared
    model.zero_grad()
    model.rcl = False
    _, aux = model(torch.randn(4, 1, 8, 13, 3))
    assert aux == {}


def test_loss_terms_are_lambda_times_slot_means_over_clips():
    from finetec.models.sfhead import feature_consistency_loss, feature_redundancy_loss

    torch.manual_seed(0)
    model = create_model("stgcn", 4, "penn13", 3, width="slim",
                         sfhead={"blocks": [0, 2], "lambda_con": 0.5, "lambda_red": 0.25})
    model.train()
    seen = []
    for s in (m for m in model.modules() if isinstance(m, SFHeadSlot)):
        s.head.register_forward_hook(lambda mod, inp, out: seen.append(out[1]))
    x = torch.randn(3, 2, 8, 13, 3)  # N = 3 clips of M = 2 persons
    _, aux = model(x)
    assert len(seen) == 2 and all(f.batch == 6 for f in seen)
    red = sum(feature_redundancy_loss(f.f_s.reshape(3, -1), f.f_t.reshape(3, -1)) for f in seen) / 2
    con = sum(feature_consistency_loss(f.f_a.reshape(3, -1), [o.reshape(3, -1) for o in (f.f_c, f.f_t, f.f_s, f.f_o)])
              for f in seen) / 2
    assert aux["loss_red"].item() == pytest.approx(0.25 * red.item(), rel=1e-5)
    assert aux["loss_con"].item() == pytest.approx(0.5 * con.item(), rel=1e-5)


def test_blocks_option_and_errors():
    m = create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"blocks": [0, -1], "groups": 4})
    assert len([s for s in m.modules() if isinstance(s, SFHeadSlot)]) == 2
    m = create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"blocks": "last"})
    assert len([s for s in m.modules() if isinstance(s, SFHeadSlot)]) == 1
    with pytest.raises(ValueError, match="out of range"):
        create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"blocks": [6]})
    with pytest.raises(ValueError, match="not divisible"):
        create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"groups": 16})
    with pytest.raises(ValueError, match="mode"):
        create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"mode": "sideways"})
    with pytest.raises(ValueError, match="does nothing"):
        create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"mode": "auxiliary", "rcl": False})
    with pytest.raises(TypeError, match="unknown option"):
        create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={"lamda_con": 0.1})
    with pytest.raises(ValueError, match="no GCN blocks"):
        create_model("posec3d", 4, "penn13", 3, width="slim", sfhead={})
    base = create_model("stgcn", 4, "penn13", 3, width="slim", sfhead={})
    with pytest.raises(ValueError, match="already has SF-Head"):
        attach_sfhead(base)


def test_finetec_accepts_sfhead():
    model = create_model("finetec", 4, "penn13", 3, width="slim", clip_len=16, sfhead={"mode": "auxiliary"})
    model.model.completion.bank.load(torch.randn(8, 16, 13, 2) * 0.3, torch.ones(8, 16, 13))
    model.train()
    x = torch.randn(2, 1, 16, 13, 3)
    logits, aux = model(x, mask=torch.ones(2, 16, dtype=torch.bool)) if model.needs_mask else model(x)
    assert logits.shape == (2, 4) and {"loss_con", "loss_red"} <= set(aux)


def test_config_model_section_trains_with_feature_losses():
    from finetec.engine.lit import LitRecognizer

    lit = LitRecognizer({"name": "stgcn", "width": "slim", "sfhead": {"mode": "auxiliary", "blocks": "last"}},
                        num_classes=4, layout="penn13", in_channels=3, optim={"lr": 0.1})
    g = torch.Generator().manual_seed(0)
    batch = {"keypoint": torch.randn(3, 1, 1, 8, 13, 3, generator=g), "mask": torch.ones(3, 1, 8, dtype=torch.bool),
             "label": torch.tensor([0, 1, 2]), "index": torch.arange(3), "frame_dir": ["a", "b", "c"]}
    lit.train()
    loss, logs = lit.compute_loss(batch)
    assert {"loss_con", "loss_red", "loss_cls"} <= set(logs)
    assert loss.item() == pytest.approx((logs["loss_cls"] + logs["loss_con"] + logs["loss_red"]).item(), rel=1e-5)
