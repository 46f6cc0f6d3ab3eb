"""Helpers shared by the model tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model


def bn_ref(bn, y, training):
    """BatchNorm with a module's parameters on channel dim 1, without touching its running stats."""
    return F.batch_norm(y, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias, training, 0.0, bn.eps)


def randomize(model: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> None:
    """Perturb every parameter and BN running statistic so that all paths (alpha, PA, biases) matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)


def check_shapes_grads_and_fused_eval(name: str, layout: str, C: int, M: int) -> None:
    """Output shape, finite gradients on every parameter, and fused eval == plain eval, for a slim model."""
    torch.manual_seed(0)
    V = get_layout(layout).num_joints
    model = create_model(name, num_classes=5, layout=layout, in_channels=C, width="slim")
    x = torch.randn(2, M, 10, V, C)
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    randomize(model)
    model.eval()
    with torch.inference_mode():
        plain = model(x)
        fused = model.fuse_for_inference()(x)
    assert torch.allclose(fused, plain, atol=1e-4 * plain.abs().max().item() + 1e-5, rtol=1e-4)


def check_bf16_close(name: str, layout: str = "coco17", M: int = 2) -> None:
    """bf16 autocast forward of a slim model: finite, close to fp32, and backward runs."""
    torch.manual_seed(0)
    V = get_layout(layout).num_joints
    model = create_model(name, num_classes=4, layout=layout, width="slim")
    randomize(model, scale=0.05)
    x = torch.randn(2, M, 12, V, 3)
    ref = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all()
    assert torch.allclose(out.float(), ref, atol=0.05 * ref.abs().max().item() + 1e-3)
