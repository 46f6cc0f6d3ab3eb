"""Physics-driven acceleration modelling (FineTec Eq. 4-13) and L_Ac (Eq. 16) on hand-made inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from finetec.models.finetec.physics import (
    PhysicsAcceleration,
    finite_difference_velocity,
    l_ac,
    pseudo_acceleration,
    stencil_valid,
    symmetrize,
)


def quadratic(T: int = 6) -> torch.Tensor:
    """S_t = (t^2, t) for one joint: [1, T, 1, 2]."""
    t = torch.arange(T, dtype=torch.float32)
    return torch.stack([t ** 2, t], -1)[None, :, None, :]


def test_velocity_on_a_quadratic_trajectory():
    T = 6
    v = finite_difference_velocity(quadratic(T))[0, :, 0]
    # central 2t inside, one-sided at the ends: S_1 - S_0 = 1, S_5 - S_4 = 9
    assert torch.equal(v[:, 0], torch.tensor([1.0, 2.0, 4.0, 6.0, 8.0, 9.0]))
    assert torch.equal(v[:, 1], torch.ones(T))
    v = finite_difference_velocity(quadratic(T), dt=0.5)[0, :, 0, 0]
    assert torch.equal(v, torch.tensor([2.0, 4.0, 8.0, 12.0, 16.0, 18.0]))
    # the paper's printed formula (S_{t+1} - S_t) / (2 dt), last frame copies its neighbour
    v = finite_difference_velocity(quadratic(T), scheme="paper")[0, :, 0, 0]
    assert torch.equal(v, torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5, 4.5]))
    assert torch.equal(finite_difference_velocity(quadratic(1)), torch.zeros(1, 1, 1, 2))
    with pytest.raises(ValueError, match="scheme"):
        finite_difference_velocity(quadratic(), scheme="forward")


def test_pseudo_acceleration_on_a_quadratic_trajectory():
    a = pseudo_acceleration(quadratic(7))[0, :, 0]
    assert torch.equal(a[:, 0], torch.full((7,), 2.0))  # inside exactly 2, the ends copy the neighbour
    assert torch.equal(a[:, 1], torch.zeros(7))
    assert torch.equal(pseudo_acceleration(quadratic(7), dt=0.5)[0, :, 0, 0], torch.full((7,), 8.0))
    cubic = torch.arange(5, dtype=torch.float32) ** 3  # a = 6t inside: 6, 12, 18; ends copy -> 6 and 18
    a = pseudo_acceleration(cubic[None, :, None, None].expand(1, 5, 1, 2))[0, :, 0, 0]
    assert torch.equal(a, torch.tensor([6.0, 6.0, 12.0, 18.0, 18.0]))
    assert torch.equal(pseudo_acceleration(quadratic(2)), torch.zeros(1, 2, 1, 2))


def test_finite_differences_skip_invisible_frames():
    S = quadratic(6)
    w = torch.ones(1, 6, 1)
    w[0, 3, 0] = 0
    v = finite_difference_velocity(S, weight=w)[0, :, 0, 0]
    assert torch.equal(v, torch.tensor([1.0, 2.0, 0.0, 6.0, 0.0, 9.0]))  # frames 2 and 4 use frame 3
    a = pseudo_acceleration(S, weight=w)[0, :, 0, 0]
    assert torch.equal(a, torch.tensor([2.0, 2.0, 0.0, 0.0, 0.0, 0.0]))  # centres 2, 3, 4 touch frame 3
    assert stencil_valid(w, "acceleration")[0, :, 0].tolist() == [True, True, False, False, False, False]
    assert stencil_valid(w, "velocity")[0, :, 0].tolist() == [True, True, False, True, False, True]


def test_symmetrize_places_the_upper_triangle_exactly():
    up = torch.arange(1.0, 7.0)
    M = symmetrize(up, 3)
    assert torch.equal(M, torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]]))
    M = symmetrize(torch.randn(4, 5, 55), 10)
    assert M.shape == (4, 5, 10, 10) and torch.equal(M, M.transpose(-1, -2))
    with pytest.raises(ValueError, match="D\\(D\\+1\\)/2 = 6"):
        symmetrize(torch.zeros(5), 3)


def test_estimated_matrices_are_exactly_symmetric_and_shapes():
    torch.manual_seed(0)
    m = PhysicsAcceleration(num_joints=4, hidden=8)
    S = torch.randn(3, 7, 4, 2)
    a, parts = m(S, return_matrices=True)
    assert a.shape == (3, 7, 4, 2)
    assert parts["C_hat"].shape == parts["M_hat"].shape == (3, 7, 8, 8)
    assert torch.equal(parts["C_hat"], parts["C_hat"].transpose(-1, -2))
    assert torch.equal(parts["M_hat"], parts["M_hat"].transpose(-1, -2))
    assert parts["g_hat"].shape == (3, 7, 8) and parts["tau_hat"].shape == (3, 8)
    assert parts["S_ddot"].abs().max() < 0.05  # small last layers: S_ddot starts near 0
    _, parts = m(S)
    assert "C_hat" not in parts and "M_hat" not in parts


class Const(nn.Module):
    """Stands in for an estimator: returns a fixed vector for every input row."""

    def __init__(self, value):
        super().__init__()
        self.register_buffer("value", torch.tensor(value, dtype=torch.float32))

    def forward(self, x):
        return self.value.expand(*x.shape[:-1], self.value.numel())


def test_eq12_equals_a_hand_computed_value():
    m = PhysicsAcceleration(num_joints=1, hidden=4)
    m.E_M = Const([1.0, 2.0, 3.0])      # M_hat = [[1, 2], [2, 3]]
    m.E_tau = Const([1.0, -1.0])        # M_hat tau = (-1, -1)
    m.E_C = Const([0.5, 0.0, 1.0])      # C_hat = diag(0.5, 1)
    m.E_g = Const([0.25, 0.5])
    with torch.no_grad():
        m.beta.fill_(0.0)               # gate 0.5
    a, parts = m(quadratic(4))
    # v = (1, 1), (2, 1), (4, 1), (5, 1); C_hat v = (0.5 v_x, v_y)
    vx = torch.tensor([1.0, 2.0, 4.0, 5.0])
    expect = torch.stack([-1 - 0.5 * vx - 0.25, torch.full((4,), -1 - 1 - 0.5)], -1)
    assert torch.allclose(parts["S_ddot"][0, :, 0], expect)
    assert parts["S_ddot"][0, 1, 0].tolist() == pytest.approx([-2.25, -2.5])
    a_hat = torch.tensor([[2.0, 0.0]]).expand(4, 2)
    assert torch.allclose(a[0, :, 0], 0.5 * a_hat + 0.5 * expect)  # Eq. 13, gate 0.5


def test_fusion_starts_close_to_the_pseudo_acceleration():
    torch.manual_seed(0)
    S = torch.randn(2, 9, 3, 2).cumsum(1)
    gate = PhysicsAcceleration(3, hidden=8)
    a, parts = gate(S)
    gamma = torch.sigmoid(torch.tensor(-3.0))
    assert torch.allclose(a, (1 - gamma) * parts["a_hat"] + gamma * parts["S_ddot"], atol=1e-6)
    assert (a - parts["a_hat"]).abs().max() < 0.06 * parts["a_hat"].abs().max() + 1e-3
    lin = PhysicsAcceleration(3, hidden=8, fusion="linear")
    a, parts = lin(S)
    assert torch.allclose(a, parts["a_hat"] + 0.1 * parts["S_ddot"], atol=1e-6)
    with pytest.raises(ValueError, match="fusion"):
        PhysicsAcceleration(3, fusion="sum")


def test_l_ac_hand_values():
    z = torch.zeros(1, 2, 1, 2)
    p1 = (z, torch.full_like(z, 1.0))   # MSE 1
    p2 = (z, torch.full_like(z, 2.0))   # MSE 4
    p3 = (z, z)                         # MSE 0
    assert l_ac([p1, p2, p3]).item() == pytest.approx(5 / 3)
    a = torch.tensor([[[[1.0, 1.0]], [[3.0, 3.0]]]])  # frame 0 error 1, frame 1 error 3
    w = torch.tensor([[[1.0], [0.0]]])
    assert l_ac([(z, a)]).item() == pytest.approx(5.0)
    assert l_ac([(z, a)], w).item() == pytest.approx(1.0)
    assert l_ac([(z, a), (z, a)], [w, None]).item() == pytest.approx(3.0)
    assert l_ac([(z, a)], torch.zeros(1, 2, 1)).item() == 0.0
    with pytest.raises(ValueError, match="at least one"):
        l_ac([])
    with pytest.raises(ValueError, match="differ in shape"):
        l_ac([(z, torch.zeros(1, 3, 1, 2))])
    with pytest.raises(ValueError, match="weights"):
        l_ac([p1, p2], [w])


@pytest.mark.parametrize("fusion", ["gate", "linear"])
def test_gradients_flow_to_all_parameters(fusion):
    torch.manual_seed(0)
    m = PhysicsAcceleration(3, hidden=8, fusion=fusion)
    S = torch.randn(2, 6, 3, 2, requires_grad=True)
    a, parts = m(S, torch.ones(2, 6, 3))
    (a.pow(2).sum() + l_ac([(parts["a_hat"], a)])).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    assert torch.isfinite(S.grad).all()


def test_all_zero_sequences_bf16_and_bad_input():
    m = PhysicsAcceleration(17, hidden=16)
    S = torch.zeros(2, 8, 17, 2)
    a, parts = m(S, torch.zeros(2, 8, 17))
    assert torch.equal(a, torch.zeros_like(a))
    assert all(torch.isfinite(v).all() for v in parts.values())
    a, _ = m(S)
    assert torch.isfinite(a).all()
    x = torch.randn(2, 8, 17, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a16, parts16 = m(x.bfloat16(), return_matrices=True)
    assert a16.dtype == torch.float32 and torch.isfinite(a16).all()
    assert torch.equal(parts16["M_hat"], parts16["M_hat"].transpose(-1, -2))
    a32, _ = m(x)
    assert torch.allclose(a16, a32, atol=0.05 * a32.abs().max().item())
    with pytest.raises(ValueError, match=r"\[B, T, 17, 2\]"):
        m(torch.zeros(2, 8, 13, 2))
    with pytest.raises(ValueError, match="weight"):
        m(x, torch.ones(2, 8))
