"""Physics-driven acceleration modelling (FineTec, Eq. 4-13) and the acceleration loss L_Ac (Eq. 16).

The joint positions ``S [B, T, V, C]`` (channels-last, ``C = 2``) are the generalised coordinates of the
Lagrangian ``M(S) S'' + C(S, S') S' + g(S) = tau`` (Eq. 4). Networks estimate ``g_hat = M^-1 g``,
``tau_hat``, ``C_hat = M^-1 C`` and ``M_hat = M^-1`` from global/local position and velocity features, and the
physics acceleration ``S''_t = M_hat_t tau_hat - C_hat_t v_t - g_hat_t`` (Eq. 12) is fused with the finite-difference
pseudo-acceleration ``a_hat`` into ``a`` (Eq. 13). ``D = V * C`` is the size of the flattened pose.

Choices (the paper leaves these open or prints them inconsistently):

* Velocity (Eq. 7): the paper prints ``v_t = (S_{t+1} - S_t) / (2 dt)``; the default ``scheme='central'`` uses the
  central difference ``(S_{t+1} - S_{t-1}) / (2 dt)`` inside and one-sided differences ``(S_1 - S_0) / dt``,
  ``(S_{T-1} - S_{T-2}) / dt`` at the ends; ``scheme='paper'`` is the printed formula, the last frame copying its
  neighbour. One frame: velocity 0.
* Pseudo-acceleration (Eq. 13's text): ``(S_{t+1} - 2 S_t + S_{t-1}) / dt^2`` inside; the two end frames copy their
  neighbour's value; fewer than three frames: 0.
* With joint weights, a finite difference is set to 0 where its stencil touches a frame in which the joint is not
  visible (``weight <= 0``); that validity is returned as ``parts['a_weight']`` for the loss.
* Features (Eq. 6-7): local = a per-frame MLP on the flattened ``V * C`` pose (or velocity); global = an MLP on
  the temporal mean (over frames with a visible joint) of a per-frame MLP. Estimators E_g, E_tau, E_C, E_M
  (Eq. 8-11) are two-layer MLPs on the concatenated features; their last layers start small (std 1e-3, bias 0),
  so ``S''`` starts near 0.
* Eq. 12 multiplies ``C_hat_t`` with the finite-difference velocity ``v_t`` (size ``D``); the paper writes the
  feature ``s_dot_t`` there, which does not have size ``D``. ``M_hat`` and ``C_hat`` are only symmetric (Eq. 10-11),
  no definiteness is imposed. Eq. 12 runs in float32 with autocast off.
* Fusion (Eq. 13): ``fusion='gate'``: ``a = (1 - gamma) a_hat + gamma S''`` with ``gamma = sigmoid(beta)`` per
  (joint, coordinate), ``beta = -3`` at start (``gamma ~ 0.05``, ``a`` close to ``a_hat``); ``fusion='linear'``:
  ``a = W [a_hat, S''] + b`` per joint, ``W`` shared over joints, initialised to ``[I, 0.1 I]``, ``b = 0``.
  With joint weights, ``a`` is 0 at joints that are not visible (missing joints carry 0, as their coordinates do).
* L_Ac (Eq. 16) is the mean over the given pairs of the (optionally joint-weighted) MSE; the pairs are passed as
  they are (no detach), following the paper's ``MSE(a_hat_alpha, a_alpha)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

__all__ = [
    "finite_difference_velocity",
    "pseudo_acceleration",
    "stencil_valid",
    "symmetrize",
    "PhysicsAcceleration",
    "l_ac",
]

SCHEMES = ("central", "paper")
FUSIONS = ("gate", "linear")


def _check_seq(S: torch.Tensor, where: str) -> None:
    if not isinstance(S, torch.Tensor):
        raise TypeError(f"{where}: S must be a torch.Tensor, got {type(S).__name__}")
    if S.dim() < 3 or S.shape[-3] < 1:
        raise ValueError(f"{where}: S must be [..., T, V, C] with T >= 1, got shape {tuple(S.shape)}")


def _check_weight(S: torch.Tensor, weight: torch.Tensor | None, where: str) -> None:
    if weight is not None and tuple(weight.shape) != tuple(S.shape[:-1]):
        raise ValueError(f"{where}: weight must have shape {tuple(S.shape[:-1])} (S without its last dim), "
                         f"got {tuple(weight.shape)}")


def _stencil(S: torch.Tensor, weight: torch.Tensor | None, idx: Sequence[torch.Tensor],
             coef: Sequence[float | torch.Tensor]) -> torch.Tensor:
    """``sum_k coef_k * S[..., idx_k[t], :, :]`` along the time dim (-3), 0 where a used frame is invisible."""
    out = sum(c * S.index_select(-3, i) for c, i in zip(coef, idx))
    if weight is not None:
        ok = torch.stack([weight.index_select(-2, i) > 0 for i in idx]).all(0)
        out = out * ok[..., None].to(out.dtype)
    return out


def stencil_valid(weight: torch.Tensor, kind: str, scheme: str = "central") -> torch.Tensor:
    """``bool`` validity of the velocity (``kind='velocity'``) or pseudo-acceleration (``'acceleration'``) of each
    joint-frame of ``weight [..., T, V]``: every frame the finite difference uses has the joint visible."""
    if kind not in ("velocity", "acceleration"):
        raise ValueError(f"stencil_valid: kind must be 'velocity' or 'acceleration', got {kind!r}")
    T = weight.shape[-2]
    if kind == "acceleration" and T < 3:
        return torch.zeros(weight.shape, dtype=torch.bool, device=weight.device)
    idx = _velocity_index(T, scheme, weight.device)[:2] if kind == "velocity" else _accel_index(T, weight.device)
    return torch.stack([weight.index_select(-2, i) > 0 for i in idx]).all(0)


def _velocity_index(T: int, scheme: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.arange(T, device=device)
    if scheme == "central":
        prev = (t - 1).clamp(min=0)
        nxt = (t + 1).clamp(max=T - 1)
        denom = (nxt - prev).clamp(min=1).float()  # 2 inside, 1 at the ends (one-sided)
    elif scheme == "paper":
        prev = t.clamp(max=max(T - 2, 0))
        nxt = (prev + 1).clamp(max=T - 1)
        denom = torch.full((T,), 2.0, device=device)
    else:
        raise ValueError(f"unknown velocity scheme {scheme!r}; use one of {list(SCHEMES)}")
    return nxt, prev, denom


def _accel_index(T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    c = torch.arange(T, device=device).clamp(min=1, max=max(T - 2, 1)).clamp(max=max(T - 1, 0))
    return (c + 1).clamp(max=T - 1), c, (c - 1).clamp(min=0)


def finite_difference_velocity(S: torch.Tensor, dt: float = 1.0, scheme: str = "central",
                               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Velocity ``[..., T, V, C]`` of ``S [..., T, V, C]`` by finite differences along T (see module Choices)."""
    _check_seq(S, "finite_difference_velocity")
    _check_weight(S, weight, "finite_difference_velocity")
    if dt <= 0:
        raise ValueError(f"dt must be positive, got {dt}")
    nxt, prev, denom = _velocity_index(S.shape[-3], scheme, S.device)
    scale = (1.0 / (denom * dt)).to(S.dtype)[:, None, None]
    # Eq. 7 (v_t)
    return _stencil(S, weight, (nxt, prev), (scale, -scale))


def pseudo_acceleration(S: torch.Tensor, dt: float = 1.0, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pseudo-acceleration ``a_hat [..., T, V, C]``: second-order finite difference along T, ends copy neighbours."""
    _check_seq(S, "pseudo_acceleration")
    _check_weight(S, weight, "pseudo_acceleration")
    if dt <= 0:
        raise ValueError(f"dt must be positive, got {dt}")
    if S.shape[-3] < 3:
        return torch.zeros_like(S)
    inv = 1.0 / (dt * dt)
    # Eq. 13 (a_hat_t)
    return _stencil(S, weight, _accel_index(S.shape[-3], S.device), (inv, -2.0 * inv, inv))


def _upper_map(D: int, device: torch.device) -> torch.Tensor:
    """``[D * D]`` index into the ``D(D+1)/2`` upper-triangle entries (row-major ``triu_indices`` order)."""
    iu = torch.triu_indices(D, D, device=device)
    pos = torch.empty(D, D, dtype=torch.long, device=device)
    k = torch.arange(iu.shape[1], device=device)
    pos[iu[0], iu[1]] = k
    pos[iu[1], iu[0]] = k
    return pos.reshape(-1)


def symmetrize(upper: torch.Tensor, D: int) -> torch.Tensor:
    """The S-dagger operator of Eq. 10-11: ``upper [..., D(D+1)/2]`` (row-major upper triangle incl. diagonal,
    ``torch.triu_indices`` order) -> the symmetric ``[..., D, D]``."""
    P = D * (D + 1) // 2
    if not isinstance(upper, torch.Tensor) or upper.dim() < 1 or upper.shape[-1] != P:
        raise ValueError(f"symmetrize: last dim must be D(D+1)/2 = {P} for D = {D}, got "
                         f"{tuple(upper.shape) if isinstance(upper, torch.Tensor) else type(upper).__name__}")
    out = upper.index_select(-1, _upper_map(D, upper.device))
    return out.reshape(*upper.shape[:-1], D, D)


def _mlp(d_in: int, hidden: int, d_out: int, small_last: bool = False) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))
    if small_last:
        nn.init.normal_(net[-1].weight, std=1e-3)
        nn.init.zeros_(net[-1].bias)
    return net


class _FeatureExtractor(nn.Module):
    """Global and local features of a per-frame quantity ``X [B, T, D]`` (Eq. 6 / Eq. 7)."""

    def __init__(self, D: int, hidden: int) -> None:
        super().__init__()
        self.local = _mlp(D, hidden, hidden)
        self.frame = _mlp(D, hidden, hidden)
        self.glob = _mlp(hidden, hidden, hidden)

    def forward(self, X: torch.Tensor, frame_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local = self.local(X).float()
        fv = frame_valid.float()[..., None]
        pooled = (self.frame(X).float() * fv).sum(1) / fv.sum(1).clamp(min=1)
        return self.glob(pooled).float(), local


class PhysicsAcceleration(nn.Module):
    """Physics-driven acceleration: ``forward(S [B, T, V, C], weight=None) -> (a [B, T, V, C], parts)``.

    ``parts``: ``a_hat`` and ``S_ddot`` ``[B, T, V, C]``, ``g_hat [B, T, D]``, ``tau_hat [B, D]``, ``velocity``
    ``[B, T, V, C]``, ``a_weight [B, T, V]`` (1 where ``a_hat`` is defined), and ``C_hat``/``M_hat``
    ``[B, T, D, D]`` only when ``return_matrices=True``.
    """

    def __init__(self, num_joints: int, channels: int = 2, hidden: int = 64, fusion: str = "gate",
                 dt: float = 1.0, velocity_scheme: str = "central") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; use one of {list(FUSIONS)}")
        if velocity_scheme not in SCHEMES:
            raise ValueError(f"unknown velocity scheme {velocity_scheme!r}; use one of {list(SCHEMES)}")
        if num_joints < 1 or channels < 1 or hidden < 1 or dt <= 0:
            raise ValueError(f"num_joints, channels, hidden and dt must be positive, got {num_joints}, "
                             f"{channels}, {hidden}, {dt}")
        self.num_joints, self.channels, self.hidden = int(num_joints), int(channels), int(hidden)
        self.fusion, self.dt, self.velocity_scheme = fusion, float(dt), velocity_scheme
        D = self.D = self.num_joints * self.channels
        P = D * (D + 1) // 2
        H = self.hidden
        self.f_s = _FeatureExtractor(D, H)     # Eq. 6
        self.f_sdot = _FeatureExtractor(D, H)  # Eq. 7
        self.E_g = _mlp(2 * H, H, D, small_last=True)    # Eq. 8
        self.E_tau = _mlp(2 * H, H, D, small_last=True)  # Eq. 9
        self.E_C = _mlp(4 * H, H, P, small_last=True)    # Eq. 10
        self.E_M = _mlp(2 * H, H, P, small_last=True)    # Eq. 11
        if fusion == "gate":
            self.beta = nn.Parameter(torch.full((self.num_joints, self.channels), -3.0))
        else:
            self.mix = nn.Linear(2 * self.channels, self.channels)
            with torch.no_grad():
                eye = torch.eye(self.channels)
                self.mix.weight.copy_(torch.cat([eye, 0.1 * eye], 1))
                self.mix.bias.zero_()

    def extra_repr(self) -> str:
        return (f"num_joints={self.num_joints}, channels={self.channels}, hidden={self.hidden}, "
                f"fusion={self.fusion!r}, dt={self.dt}, velocity_scheme={self.velocity_scheme!r}")

    def fuse(self, a_hat: torch.Tensor, S_ddot: torch.Tensor) -> torch.Tensor:
        """Eq. 13: ``a = Fusion(a_hat, S_ddot)`` (see module Choices)."""
        if self.fusion == "gate":
            gamma = torch.sigmoid(self.beta.float())
            return (1 - gamma) * a_hat + gamma * S_ddot
        return self.mix(torch.cat([a_hat, S_ddot], -1)).float()

    def forward(self, S: torch.Tensor, weight: torch.Tensor | None = None,
                return_matrices: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not isinstance(S, torch.Tensor) or S.dim() != 4 or tuple(S.shape[2:]) != (self.num_joints,
                                                                                      self.channels):
            got = tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__
            raise ValueError(f"PhysicsAcceleration: S must be [B, T, {self.num_joints}, {self.channels}], got {got}")
        B, T = S.shape[:2]
        if T < 1:
            raise ValueError("PhysicsAcceleration: S has no frames")
        if weight is not None:
            _check_weight(S, weight, "PhysicsAcceleration")
            visible = weight > 0
        else:
            visible = torch.ones(S.shape[:3], dtype=torch.bool, device=S.device)
        Sf = S.float() * visible[..., None]
        w = visible.float()
        v = finite_difference_velocity(Sf, self.dt, self.velocity_scheme, w)
        a_hat = pseudo_acceleration(Sf, self.dt, w)
        v_ok = stencil_valid(w, "velocity", self.velocity_scheme)
        a_ok = stencil_valid(w, "acceleration")

        D, H = self.D, self.hidden
        s_g, s_t = self.f_s(Sf.reshape(B, T, D), visible.any(-1))            # Eq. 6
        sd_g, sd_t = self.f_sdot(v.reshape(B, T, D), v_ok.any(-1))          # Eq. 7
        s_gT = s_g[:, None].expand(B, T, H)
        sd_gT = sd_g[:, None].expand(B, T, H)
        g_hat = self.E_g(torch.cat([s_gT, s_t], -1)).float()                         # Eq. 8
        tau_hat = self.E_tau(torch.cat([s_g, sd_g], -1)).float()                     # Eq. 9
        c_upper = self.E_C(torch.cat([s_gT, s_t, sd_gT, sd_t], -1)).float()          # Eq. 10
        m_upper = self.E_M(torch.cat([s_gT, s_t], -1)).float()                       # Eq. 11
        with torch.autocast(device_type=S.device.type, enabled=False):
            C_hat = symmetrize(c_upper, D)
            M_hat = symmetrize(m_upper, D)
            # Eq. 12
            S_ddot = (torch.einsum("btij,bj->bti", M_hat, tau_hat)
                      - torch.einsum("btij,btj->bti", C_hat, v.reshape(B, T, D)) - g_hat)
            S_ddot = S_ddot.reshape(B, T, self.num_joints, self.channels)
            a = self.fuse(a_hat, S_ddot)  # Eq. 13
        if weight is not None:
            a = a * w[..., None]
        parts = {"a_hat": a_hat, "S_ddot": S_ddot, "g_hat": g_hat, "tau_hat": tau_hat, "velocity": v,
                 "a_weight": a_ok.float()}
        if return_matrices:
            parts["C_hat"] = C_hat
            parts["M_hat"] = M_hat
        return a, parts


def l_ac(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
         weights: torch.Tensor | Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
    """Eq. 16: the mean over ``pairs`` of ``MSE(a_hat_alpha, a_alpha)`` (the paper: alpha in base, dyna, stat).

    Each pair is ``(a_hat [B, T, V, C], a [B, T, V, C])``. ``weights``: None, one ``[B, T, V]`` tensor for every
    pair, or one per pair (None allowed); a weighted MSE is ``sum w (a_hat - a)^2 / (C * sum w)``, 0 if
    ``sum w == 0``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("l_ac: needs at least one (a_hat, a) pair")
    if weights is None or isinstance(weights, torch.Tensor):
        ws: list[torch.Tensor | None] = [weights] * len(pairs)
    else:
        ws = list(weights)
        if len(ws) != len(pairs):
            raise ValueError(f"l_ac: {len(pairs)} pairs but {len(ws)} weights")
    terms = []
    for k, ((a_hat, a), w) in enumerate(zip(pairs, ws)):
        if a_hat.shape != a.shape:
            raise ValueError(f"l_ac: pair {k}: a_hat {tuple(a_hat.shape)} and a {tuple(a.shape)} differ in shape")
        sq = (a_hat.float() - a.float()).pow(2)
        if w is None:
            terms.append(sq.mean())
            continue
        if tuple(w.shape) != tuple(a.shape[:-1]):
            raise ValueError(f"l_ac: pair {k}: weight must be {tuple(a.shape[:-1])}, got {tuple(w.shape)}")
        wf = w.float()[..., None]
        terms.append((sq * wf).sum() / (wf.sum() * a.shape[-1]).clamp(min=1e-12))
    # Eq. 16
    return torch.stack(terms).mean()
