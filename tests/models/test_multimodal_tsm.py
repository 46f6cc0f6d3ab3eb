"""TSM ResNet-50 (+ STAA): temporal shift, torchvision key compatibility, forward/backward, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import finetec.models.multimodal.tsm  # noqa: F401  (registers 'tsm' before create_model)
from finetec.models import create_model
from finetec.models.multimodal.tsm import Bottleneck, load_torchvision_resnet50, temporal_shift
from model_helpers import randomize


# ---------------------------------------------------------------------------------------------- shift
@pytest.mark.parametrize("C,shift_div", [(16, 8), (20, 8), (12, 4)])
def test_temporal_shift_moves_exact_fraction(C, shift_div):
    N, T, H, W = 2, 4, 2, 3
    x5 = torch.arange(N * T * C * H * W, dtype=torch.float32).view(N, T, C, H, W)  # every value distinct
    out = temporal_shift(x5.reshape(N * T, C, H, W), T, shift_div).view(N, T, C, H, W)
    fold = C // shift_div
    for c in range(C):
        if c < fold:  # from the next frame, zeros at the end of each clip
            assert torch.equal(out[:, :-1, c], x5[:, 1:, c]) and not out[:, -1, c].any()
        elif c < 2 * fold:  # from the previous frame, zeros at the start
            assert torch.equal(out[:, 1:, c], x5[:, :-1, c]) and not out[:, 0, c].any()
        else:
            assert torch.equal(out[:, :, c], x5[:, :, c])
    changed = [c for c in range(C) if not torch.equal(out[:, :, c], x5[:, :, c])]
    assert changed == list(range(2 * fold))


def test_temporal_shift_errors_and_grad():
    with pytest.raises(ValueError, match="multiple of num_frames=3"):
        temporal_shift(torch.zeros(8, 16, 2, 2), 3)
    with pytest.raises(ValueError, match="nothing would shift"):
        temporal_shift(torch.zeros(8, 4, 2, 2), 4, 8)
    with pytest.raises(ValueError, match=r"\[N\*T, C, H, W\]"):
        temporal_shift(torch.zeros(8, 16, 2), 4)
    x = torch.randn(4, 8, 2, 2, requires_grad=True)
    temporal_shift(x, 4, 4).sum().backward()
    g = x.grad.view(1, 4, 8, 2, 2)
    # channels 0-1 are read from frames 1..3, channels 2-3 from frames 0..2, the rest from every frame
    assert g[0, 0, :2].sum() == 0 and g[0, 3, 2:4].sum() == 0 and (g[0, :, 4:] == 1).all()


@pytest.mark.parametrize("inplanes,planes,stride,staa", [(32, 8, 1, "none"), (16, 8, 2, "staa"), (32, 8, 1, "ma")])
def test_bottleneck_residual_shift_and_staa_placement(inplanes, planes, stride, staa):
    """Residual shift: only the conv1 branch sees shifted input; STAA between relu(bn1(conv1)) and conv2."""
    torch.manual_seed(0)
    b = Bottleneck(inplanes, planes, stride, shift_div=4, staa=staa)
    randomize(b)
    b.eval()
    x = torch.randn(2 * 3, inplanes, 6, 6)
    y = F.relu(b.bn1(F.conv2d(temporal_shift(x, 3, 4), b.conv1.weight)))
    if staa != "none":
        y = b.staa(y, 3)
    y = F.relu(b.bn2(F.conv2d(y, b.conv2.weight, stride=stride, padding=1)))
    y = b.bn3(F.conv2d(y, b.conv3.weight))
    ident = x if b.downsample is None else b.downsample[1](F.conv2d(x, b.downsample[0].weight, stride=stride))
    with torch.no_grad():
        assert torch.allclose(b(x, 3), F.relu(y + ident), atol=1e-5)
    assert (b.downsample is None) == (stride == 1 and inplanes == 4 * planes)


# ---------------------------------------------------------------------------------------------- torchvision keys
def torchvision_resnet50_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """The published ResNet-50 (torchvision naming, v1.5): every state-dict key and its shape."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{k}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for s, (blocks, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), start=1):
        for i in range(blocks):
            p = f"layer{s}.{i}"
            cin = inplanes if i == 0 else planes * 4
            shapes[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if i == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, cin, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
        inplanes = planes * 4
    shapes["fc.weight"] = (num_classes, 2048)
    shapes["fc.bias"] = (num_classes,)
    return shapes


@pytest.fixture(scope="module")
def r50_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.randint(0, 1000, (), generator=g) if k.endswith("num_batches_tracked")
              else torch.randn(s, generator=g))
          for k, s in torchvision_resnet50_shapes().items()}
    assert len(sd) == 320  # torchvision's resnet50().state_dict() has 320 entries
    path = tmp_path_factory.mktemp("r50") / "resnet50.pth"
    torch.save(sd, path)
    return path, sd


def _assert_loaded(model, sd, keys):
    own = model.state_dict()
    for k in keys:
        assert torch.equal(own[k], sd[k]), k


def test_torchvision_state_dict_loads_exactly(r50_file):
    path, sd = r50_file
    model = create_model("tsm", 1000, pretrained=str(path))
    rep = model.pretrained_report
    assert rep["missing"] == [] and rep["unexpected"] == [] and rep["skipped"] == []
    assert sorted(rep["loaded"]) == sorted(sd)
    assert set(model.state_dict()) == set(sd)  # same names, no extra persistent buffers
    _assert_loaded(model, sd, sd)
    # {'state_dict': ...} with a DataParallel prefix, given as a dict
    fresh = create_model("tsm", 1000)
    rep = load_torchvision_resnet50(fresh, {"state_dict": {"module." + k: v for k, v in sd.items()}})
    assert rep["missing"] == [] and len(rep["loaded"]) == 320
    _assert_loaded(fresh, sd, sd)


def test_other_class_count_skips_fc(r50_file):
    path, sd = r50_file
    model = create_model("tsm", 9)
    fc_before = model.fc.weight.detach().clone()
    rep = load_torchvision_resnet50(model, path)
    assert sorted(rep["skipped"]) == ["fc.bias", "fc.weight"]
    assert rep["missing"] == [] and rep["unexpected"] == []
    assert torch.equal(model.fc.weight, fc_before) and model.fc.weight.shape == (9, 2048)
    _assert_loaded(model, sd, [k for k in sd if not k.startswith("fc.")])


def test_staa_model_misses_only_staa_keys(r50_file):
    path, sd = r50_file
    model = create_model("tsm", 1000, staa="staa")
    rep = load_torchvision_resnet50(model, path)
    staa_keys = [k for k in model.state_dict() if ".staa." in k]
    assert staa_keys and sorted(rep["missing"]) == sorted(staa_keys)
    assert set(model.state_dict()) - set(staa_keys) == set(sd)
    assert rep["unexpected"] == [] and rep["skipped"] == []
    _assert_loaded(model, sd, sd)


def test_load_errors(r50_file):
    path, sd = r50_file
    slim = create_model("tsm", 1000, width="slim")
    with pytest.raises(ValueError, match=r"'conv1.weight'.*\(64, 3, 7, 7\).*\(16, 3, 7, 7\)"):
        load_torchvision_resnet50(slim, path)
    model = create_model("tsm", 1000, staa="ma", staa_stages=(4,))
    extra = dict(sd, **{"extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="extra.weight.*strict=False"):
        load_torchvision_resnet50(model, extra)
    assert load_torchvision_resnet50(model, extra, strict=False)["unexpected"] == ["extra.weight"]
    lacking = {k: v for k, v in sd.items() if k != "layer3.2.conv2.weight"}
    with pytest.raises(ValueError, match="layer3.2.conv2.weight"):
        load_torchvision_resnet50(model, lacking)
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # torchvision's 2017 file
    rep = load_torchvision_resnet50(model, old)
    assert len([k for k in rep["missing"] if ".staa." not in k]) == 53
    with pytest.raises(TypeError, match="state dict"):
        load_torchvision_resnet50(model, [1, 2])


# ---------------------------------------------------------------------------------------------- model
def test_names_stages_attributes_and_init():
    base = create_model("tsm", 7, width="slim")
    keys = set(base.state_dict())
    assert set(torchvision_resnet50_shapes(7)) == keys  # same names at any width
    m = create_model("tsm", 7, width="slim", staa="ma", staa_stages=[2])
    extra = set(m.state_dict()) - keys
    assert extra and all(k.startswith("layer2.") and ".staa.ma." in k for k in extra)
    assert {k.split(".")[1] for k in extra} == {"0", "1", "2", "3"}  # every block of the stage
    assert m.layer2[1].staa.ta is None and m.layer1[0].staa is None
    assert m.needs_mask is False and m.returns_aux is False and m.input_kind == "rgb"
    s = create_model("tsm", 7, width="slim", staa="staa")
    assert s.fc.weight.shape == (7, 512) and s.fc.bias.abs().sum() == 0
    assert 0.008 < s.fc.weight.std().item() < 0.012
    assert (s.layer1[0].bn2.weight == 1).all()
    # STAA keeps its own initialisation (phi's BN weight 0, ChannelSplit the identity)
    st = s.layer3[0].staa
    assert (st.ma.phi_bn.weight == 0).all()
    assert torch.equal(st.ta.split.weight[:, :, 0, 0], torch.eye(st.channels))


def test_normalisation_and_consensus():
    torch.manual_seed(0)
    m = create_model("tsm", 5, width="slim", staa="staa", dropout=0.0).eval()
    seen = {}
    m.conv1.register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0]))  # returns None: output kept
    x = torch.rand(2, 3, 3, 16, 16) * 255
    with torch.no_grad():
        out = m(x)
        mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
        std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
        assert torch.allclose(seen["x"], (x.view(6, 3, 16, 16) - mean) / std)
        assert torch.allclose(out, m.fc(m.frame_features(x)).mean(1), atol=1e-6)
    assert out.shape == (2, 5)


def test_clips_do_not_leak_and_frames_interact():
    torch.manual_seed(0)
    m = create_model("tsm", 4, width="slim", staa="staa", dropout=0.0)
    randomize(m, scale=0.05)
    m.eval()
    x = torch.rand(2, 4, 3, 32, 32) * 255
    y = x.clone()
    y[1] = torch.rand(4, 3, 32, 32) * 255
    with torch.no_grad():
        a, b = m.frame_features(x), m.frame_features(y)
        assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
        z = x.clone()
        z[0, 0] = 0.0  # change one frame: the shift and STAA carry it to the other frames of its clip
        c = m.frame_features(z)
    assert not torch.allclose(c[0, 1:], a[0, 1:])


@pytest.mark.parametrize("staa", ["none", "ma", "staa"])
def test_forward_backward_fp32_and_bf16(staa):
    torch.manual_seed(0)
    m = create_model("tsm", 6, width="slim", staa=staa)
    x = torch.rand(2, 4, 3, 32, 32) * 255
    out = m(x)
    assert out.shape == (2, 6) and torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if staa != "none":
        staa_grads = {n: p.grad for n, p in m.named_parameters() if ".staa." in n}
        assert staa_grads and all(g.abs().sum() > 0 for n, g in staa_grads.items() if "phi." not in n)
        assert any("ta." in n for n in staa_grads) == (staa == "staa")
    m.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.rand(2, 3, 3, 32, 32) * 255)  # T from the input
    assert out.shape == (2, 6) and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_bad_input_and_options():
    m = create_model("tsm", 3, width="slim")
    with pytest.raises(ValueError, match=r"\[N, T, 3, H, W\]"):
        m(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="C=3"):
        m(torch.zeros(1, 2, 1, 16, 16))
    with pytest.raises(ValueError, match="empty input"):
        m(torch.zeros(1, 0, 3, 16, 16))
    with pytest.raises(TypeError, match="floating-point"):
        m(torch.zeros(1, 2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="in_channels must be 3"):
        create_model("tsm", 3, in_channels=2)
    with pytest.raises(ValueError, match="staa must be one of"):
        create_model("tsm", 3, width="slim", staa="ta")
    with pytest.raises(ValueError, match="staa_stages"):
        create_model("tsm", 3, width="slim", staa="ma", staa_stages=(0, 5))
    with pytest.raises(ValueError, match="unknown width"):
        create_model("tsm", 3, width="tiny")
    with pytest.raises(TypeError, match="unknown option"):
        create_model("tsm", 3, num_segments=8)
