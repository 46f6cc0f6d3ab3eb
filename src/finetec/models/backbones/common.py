"""Building blocks shared by the GCN backbones (PYSKL's ``unit_gcn``, ``unit_tcn``, ``mstcn``, data BN, stage plan).

Tensor convention inside a backbone: every block takes and returns a *logical* ``[B, C, T, V]`` tensor
(``B = N * M``), PYSKL's order. Its memory format is an implementation detail: the units here produce
``torch.channels_last`` tensors (memory ``[B, T, V, C]``), because on CPU the temporal convolutions and the
channel mixing are fastest there and the graph aggregation then needs no transposes. A module that wraps a
block's ``gcn`` or ``tcn`` may hand back any memory format (use ``reshape``, not ``view``, on these tensors).

Speed notes (measured on a 2-core AVX-512 CPU, see ``benchmarks/throughput.py``):

* the K adjacency partitions are folded: one 1x1 convolution for all K channel mixings and one batched matmul
  that contracts joints and partitions together (``[V, V*K] @ [V*K, C]`` per frame, the adjacency expanded over
  the batch, so nothing is copied);
* the order of mixing and aggregation is chosen per layer (aggregate first when the layer widens the channels,
  as in the first block with C=3), which computes the same function as PYSKL's ``conv_pos='pre'`` including its
  bias (the bias passes the aggregation as ``sum_k colsum(A_k)[w] * b_k``);
* 1x1 convolutions run through oneDNN on the channels_last view (faster than MKL's GEMM on AMD CPUs), temporal
  conv weights are stored channels_last, batch norms run on the ``[B*T*V, C]`` view, ReLUs are in place;
* ``fuse_for_inference()`` folds every BatchNorm that follows a convolution into it, caches the effective
  adjacency, forces oneDNN for batch-1 inputs and pre-packs the weights (see :func:`conv2d`), for evaluation
  under ``torch.no_grad``/``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "WIDTHS",
    "resolve_width",
    "stage_plan",
    "DataBN",
    "UnitGCN",
    "UnitTCN",
    "MSTCN",
    "bn_cl",
    "mix",
    "conv2d",
    "plain_ops",
    "cl_weights",
    "to_cl",
    "from_cl",
    "conv_init",
    "kaiming_fan_out",
    "bn_init",
    "fold_bn",
    "FusableMixin",
    "aggregate_post",
]

EPS = 1e-4

# standard = PYSKL's default: 10 stages, base 64, channels doubled and time strided by 2 at stages 5 and 8.
# slim = CPU-friendly variant for tests and quick experiments: 6 stages, base 32, doubled/strided at 3 and 5
# (channels 32,32,64,64,128,128; 1/6 of standard's FLOPs at the same T and V, 1/6 of its parameters).
WIDTHS: dict[str, dict[str, Any]] = {
    "standard": dict(base_channels=64, num_stages=10, inflate_stages=(5, 8), down_stages=(5, 8)),
    "slim": dict(base_channels=32, num_stages=6, inflate_stages=(3, 5), down_stages=(3, 5)),
}


def resolve_width(width: str, **overrides: Any) -> dict[str, Any]:
    """The stage settings of a named width with explicit (non-``None``) overrides applied."""
    if width not in WIDTHS:
        raise ValueError(f"unknown width {width!r}; choose one of {sorted(WIDTHS)}")
    cfg = dict(WIDTHS[width])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def stage_plan(
    in_channels: int,
    base_channels: int,
    num_stages: int,
    inflate_stages: Sequence[int],
    down_stages: Sequence[int],
    ch_ratio: float = 2,
) -> list[tuple[int, int, int, bool]]:
    """``(in, out, temporal stride, residual)`` per block, PYSKL's STGCN schedule.

    Block 1 maps ``in_channels -> base_channels`` without residual; blocks 2..num_stages multiply the width by
    ``ch_ratio`` at each stage in ``inflate_stages`` and stride time by 2 at each stage in ``down_stages``.
    (PYSKL drops block 1 when ``in_channels == base_channels``; here it is always built.)
    """
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    if base_channels < 1 or in_channels < 1:
        raise ValueError(f"channels must be positive, got in_channels={in_channels}, base_channels={base_channels}")
    bad = [s for s in (*inflate_stages, *down_stages) if not 2 <= int(s) <= num_stages]
    if bad:
        raise ValueError(f"inflate/down stages {bad} outside 2..{num_stages}")
    plan = [(in_channels, base_channels, 1, False)]
    cur, inflate = base_channels, 0
    for i in range(2, num_stages + 1):
        if i in inflate_stages:
            inflate += 1
        out = int(base_channels * ch_ratio**inflate + EPS)
        plan.append((cur, out, 1 + (i in down_stages), True))
        cur = out
    return plan


# ---------------------------------------------------------------------------------------------- layout helpers
def to_cl(x: torch.Tensor) -> torch.Tensor:
    """Logical ``[B, C, T, V]`` -> contiguous ``[B, T, V, C]`` (free when ``x`` is channels_last)."""
    return x.permute(0, 2, 3, 1).contiguous()


def from_cl(y: torch.Tensor) -> torch.Tensor:
    """Contiguous ``[B, T, V, C]`` -> logical ``[B, C, T, V]`` view in channels_last memory."""
    return y.permute(0, 3, 1, 2)


_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_convolution")
_PACK_OK: bool | None = None  # whether oneDNN pre-packed weights work here (checked once, on first use)


def _pack_ok() -> bool:
    global _PACK_OK
    if _PACK_OK is None:
        try:
            with torch.autocast("cpu", enabled=False):
                ops = torch.ops.mkldnn
                g = torch.Generator().manual_seed(0)
                x = torch.randn(1, 5, 7, 3, generator=g).contiguous(memory_format=torch.channels_last)
                w, b = torch.randn(4, 5, 3, 1, generator=g), torch.randn(4, generator=g)
                wp = ops._reorder_convolution_weight(w, [2, 0], [1, 1], [2, 1], 1, list(x.shape))
                y = ops._convolution_pointwise(x, wp, b, [2, 0], [1, 1], [2, 1], 1, "none", [], "")
                ref = F.conv2d(x, w, b, padding=(2, 0), dilation=(2, 1))
                _PACK_OK = bool(y.shape == ref.shape and torch.allclose(y, ref, atol=1e-4))
        except Exception:  # older/other builds: plain oneDNN convolution instead
            _PACK_OK = False
    return _PACK_OK


_PLAIN_OPS: contextvars.ContextVar[bool] = contextvars.ContextVar("finetec_plain_ops", default=False)


@contextlib.contextmanager
def plain_ops(enabled: bool = True) -> Iterator[None]:
    """Within the block :func:`conv2d` calls ``F.conv2d`` only (no ``torch.mkldnn_convolution`` or
    ``torch.ops.mkldnn``): for ONNX export and TorchScript tracing, which cannot record the oneDNN-only ops."""
    token = _PLAIN_OPS.set(bool(enabled))
    try:
        yield
    finally:
        _PLAIN_OPS.reset(token)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: Sequence[int] = (1, 1),
           padding: Sequence[int] = (0, 0), dilation: Sequence[int] = (1, 1),
           cache: dict | None = None) -> torch.Tensor:
    """``F.conv2d``, always through oneDNN on CPU when no gradient is needed.

    PyTorch's dispatcher sends a batch-1 input with fewer than 20480 elements to its slow native kernel (e.g. the
    dilated 3x1 convs of ST-GCN++ at single-sequence latency); ``torch.mkldnn_convolution`` computes the same
    function. With a ``cache`` dict (the fused-inference cache of the calling module) and a channels_last input,
    the weight is pre-packed once per input shape into oneDNN's blocked layout, which saves the reorder done at
    every call (measured about 13% of the single-sequence latency of ST-GCN). Neither op is autocast-aware, so
    the autocast dtype is applied here. Under :func:`plain_ops` it is plain ``F.conv2d``.
    """
    if _MKLDNN and not _PLAIN_OPS.get() and x.device.type == "cpu" and not (torch.is_grad_enabled() and (
            x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))):
        dt = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        if dt in (torch.float32, torch.bfloat16) and weight.dtype in (torch.float32, torch.bfloat16):
            x = x.to(dt)
            bias = None if bias is None else bias.to(dt)
            pad, st, dil = [int(p) for p in padding], [int(v) for v in stride], [int(v) for v in dilation]
            if cache is not None and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
                    and _pack_ok():
                # key on the weight's memory; the entry holds its storage, so the address is not reused meanwhile
                storage = weight.untyped_storage()
                key = (storage.data_ptr(), weight.storage_offset(), tuple(weight.shape), tuple(weight.stride()),
                       tuple(x.shape), dt, tuple(st), tuple(pad), tuple(dil))
                hit = cache.get(key)
                if hit is None:
                    if len(cache) > 256:  # e.g. many different clip lengths
                        cache.clear()
                    hit = (torch.ops.mkldnn._reorder_convolution_weight(weight.to(dt).contiguous(), pad, st, dil,
                                                                       1, list(x.shape)), storage)
                    cache[key] = hit
                return torch.ops.mkldnn._convolution_pointwise(x, hit[0], bias, pad, st, dil, 1, "none", [], "")
            return torch.mkldnn_convolution(x, weight.to(dt), bias, pad, st, dil, 1)
    return F.conv2d(x, weight, bias, stride, padding, dilation)


def mix(xc: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
        cache: dict | None = None) -> torch.Tensor:
    """Channel mixing (a 1x1 conv) of a contiguous ``[B, T, V, C]`` tensor: ``[B, T, V, O]``.

    Runs as a oneDNN 1x1 convolution on the channels_last view, measured 10-25% faster than ``F.linear`` (MKL)
    for these shapes on AMD CPUs, forward and backward.
    """
    w4 = weight[:, :, None, None] if weight.dim() == 2 else weight
    return to_cl(conv2d(from_cl(xc), w4, bias, cache=cache))


def cl_weights(module: nn.Module) -> None:
    """Store the weights of the temporal (k x 1, k > 1) convolutions of ``module`` in channels_last memory.

    oneDNN then uses them without a per-call reorder: measured 1.1-1.5x faster convolutions at batch 1, slightly
    faster in training. ``state_dict``/``load_state_dict`` are unaffected (values are copied into the tensors).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1:
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)


def bn_cl(bn: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """Apply a ``BatchNorm1d`` over the last dim of a contiguous ``[..., C]`` tensor (all leading dims pooled)."""
    return bn(y.reshape(-1, y.shape[-1])).view(y.shape)


def bn_affine(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = x * scale + shift``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
    return scale, shift


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an eval-mode BatchNorm that follows a conv/linear (output channels first) into its weight and bias."""
    scale, shift = bn_affine(bn)
    w = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
    b = shift if bias is None else bias * scale + shift
    return w, b


# ---------------------------------------------------------------------------------------------- init (PYSKL)
def conv_init(conv: nn.Module) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


def kaiming_fan_out(w: torch.Tensor, fan_out: int) -> None:
    """``N(0, 2 / fan_out)`` in place: :func:`conv_init` for a weight whose fan-out is given explicitly (fused or
    reshaped weights, where PyTorch's shape-based fan-out would be wrong)."""
    nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_out))


def bn_init(bn: nn.Module, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0)


# ---------------------------------------------------------------------------------------------- fusion plumbing
class FusableMixin:
    """Eval fast path plumbing: ``fused()`` gives folded tensors computed by ``_compute_fused()``.

    The fast path is used only when enabled by ``enable_fusion()`` (``Recognizer.fuse_for_inference``), the module
    is in eval mode and autograd is off. The cache is recomputed when any parameter or buffer of the module changed
    since (version counters), so stale folded weights are never used; under CPU autocast the cached tensors are
    also kept in the autocast dtype, so they are not cast again at every call.
    """

    _fuse_enabled: bool = False
    _fused: dict[str, Any] | None = None
    _fused_key: tuple | None = None
    _fused_cast: dict[torch.dtype, dict[str, Any]] | None = None

    def _state_key(self) -> tuple:
        # inference tensors (e.g. a model deep-copied under inference_mode) have no version counter
        return tuple((id(t), None if t.is_inference() else t._version)
                     for t in (*self.parameters(), *self.buffers()))  # type: ignore[attr-defined]

    def enable_fusion(self, enabled: bool = True) -> None:
        self._fuse_enabled = enabled
        self._fused, self._fused_key, self._fused_cast = None, None, None

    def _use_fused(self) -> bool:
        return self._fuse_enabled and not self.training and not torch.is_grad_enabled()  # type: ignore[attr-defined]

    def fused(self) -> dict[str, Any]:
        key = self._state_key()
        if self._fused is None or key != self._fused_key:
            with torch.no_grad():
                self._fused = self._compute_fused()
                self._fused["_packed"] = {}  # oneDNN pre-packed weights, see conv2d()
            self._fused_key, self._fused_cast = key, {}
        if not torch.is_autocast_enabled("cpu"):
            return self._fused
        dt = torch.get_autocast_dtype("cpu")
        if dt not in self._fused_cast:
            self._fused_cast[dt] = {**_cast_tree({k: v for k, v in self._fused.items() if k != "_packed"}, dt),
                                    "_packed": {}}
        return self._fused_cast[dt]

    def _compute_fused(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        # the cache (with oneDNN-packed tensors) is not part of the model: never pickle or deep-copy it
        state = super().__getstate__()  # type: ignore[misc]
        state = dict(state)
        state["_fused"], state["_fused_key"], state["_fused_cast"] = None, None, None
        return state


def _cast_tree(obj: Any, dtype: torch.dtype) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _cast_tree(v, dtype) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_cast_tree(v, dtype) for v in obj)
    return obj


# ---------------------------------------------------------------------------------------------- data BN
class DataBN(nn.Module):
    """PYSKL's input normalisation over ``[N, M, T, V, C]``.

    ``'VC'``: BatchNorm1d over the ``V*C`` coordinates (statistics over persons, samples and frames; works for
    any M); ``'MVC'``: over ``M*V*C`` (one set per person slot, needs ``M == num_person``); ``None``: identity.
    Returns a contiguous ``[N*M, T, V, C]`` tensor.
    """

    def __init__(self, in_channels: int, num_joints: int, mode: str | None = "VC", num_person: int = 2) -> None:
        super().__init__()
        if mode not in ("VC", "MVC", None):
            raise ValueError(f"data_bn_type must be 'VC', 'MVC' or None, got {mode!r}")
        self.mode, self.num_person = mode, num_person
        self.in_channels, self.num_joints = in_channels, num_joints
        if mode == "VC":
            self.bn = nn.BatchNorm1d(in_channels * num_joints)
        elif mode == "MVC":
            self.bn = nn.BatchNorm1d(num_person * in_channels * num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M, T, V, C = x.shape
        if self.mode is None:
            return x.reshape(N * M, T, V, C).contiguous()
        if self.mode == "VC":
            return self.bn(x.reshape(N * M * T, V * C)).view(N * M, T, V, C)
        if M != self.num_person:
            raise ValueError(f"data_bn_type='MVC' was built for num_person={self.num_person} but the input has "
                             f"M={M} persons; use data_bn_type='VC' for a variable number of persons")
        y = self.bn(x.permute(0, 2, 1, 3, 4).reshape(N * T, M * V * C))
        return y.view(N, T, M, V, C).permute(0, 2, 1, 3, 4).reshape(N * M, T, V, C)


# ---------------------------------------------------------------------------------------------- graph conv
def aggregate_post(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``x [B, T, V, C]``, ``A [K, V, W]`` -> ``[B, T, W, K*C]``: ``out[..., w, k*C + c] = sum_v A[k,v,w] x[..., v, c]``."""
    B, T, V, C = x.shape
    K, W = A.shape[0], A.shape[2]
    Ap = A.permute(2, 0, 1).reshape(W * K, V).to(x.dtype)
    out = torch.bmm(Ap.expand(B * T, W * K, V), x.reshape(B * T, V, C))
    return out.view(B, T, W, K * C)


class UnitGCN(FusableMixin, nn.Module):
    """PYSKL's ``unit_gcn``: ``act(BN(sum_k (W_k x) A_k) + res(x))`` on logical ``[B, C, T, V]``.

    Parameters are PYSKL's: ``weight [K*O, C]`` and ``bias [K*O]`` (its 1x1 ``conv`` with ``conv_pos='pre'``,
    channel ``k*O + o``), ``A`` (buffer, or parameter for ``adaptive='init'``), ``PA`` for ``'importance'``
    (``A * PA``, ST-GCN's edge-importance weighting) and ``'offset'`` (``A + PA``).

    Args:
        order: ``'auto'`` (aggregate first when the layer widens, ``in < out``), ``'pre'`` or ``'post'``; the same
            function either way, only the cost differs.
        with_res: ST-GCN++'s residual inside the unit (1x1 conv + BN when the width changes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: torch.Tensor,
        adaptive: str | None = "importance",
        with_res: bool = False,
        order: str = "auto",
    ) -> None:
        super().__init__()
        if adaptive not in (None, "init", "offset", "importance"):
            raise ValueError(f"gcn adaptive must be None, 'init', 'offset' or 'importance', got {adaptive!r}")
        if order not in ("auto", "pre", "post"):
            raise ValueError(f"gcn order must be 'auto', 'pre' or 'post', got {order!r}")
        A = torch.as_tensor(A, dtype=torch.float32)
        if A.dim() != 3 or A.shape[1] != A.shape[2]:
            raise ValueError(f"adjacency must be [K, V, V], got {tuple(A.shape)}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_subsets = K = A.shape[0]
        self.adaptive = adaptive
        self.order = ("post" if in_channels < out_channels else "pre") if order == "auto" else order
        if adaptive == "init":
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A.clone())
        if adaptive == "importance":
            self.PA = nn.Parameter(torch.ones_like(A))
        elif adaptive == "offset":
            self.PA = nn.Parameter(torch.empty_like(A).uniform_(-1e-6, 1e-6))
        # PYSKL: nn.Conv2d(in, out * K, 1) with PyTorch's default init
        conv = nn.Conv2d(in_channels, out_channels * K, 1)
        self.weight = nn.Parameter(conv.weight.detach().view(out_channels * K, in_channels).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())
        self.bn = nn.BatchNorm1d(out_channels)
        self.with_res = with_res
        if with_res and in_channels != out_channels:
            self.down = _conv1x1(in_channels, out_channels)
            self.down_bn = nn.BatchNorm1d(out_channels)
        else:
            self.down, self.down_bn = None, None

    def effective_A(self) -> torch.Tensor:
        if self.adaptive == "importance":
            return self.A * self.PA
        if self.adaptive == "offset":
            return self.A + self.PA
        return self.A

    def _prepare(self, A: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                 shift: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Operands of the chosen evaluation order (cached by the fused path)."""
        K, O, C, V = self.num_subsets, self.out_channels, self.in_channels, A.shape[-1]
        if self.order == "pre":
            A2 = A.permute(2, 1, 0).reshape(V, V * K)  # [w, (v, k)]
            return weight, bias, A2, shift
        Ap = A.permute(2, 0, 1).reshape(V * K, V)  # [(w, k), v]
        w_post = weight.view(K, O, C).permute(1, 0, 2).reshape(O, K * C)  # [o, (k, c)]
        # the bias of PYSKL's pre-aggregation conv, carried through the aggregation: sum_k colsum(A_k)[w] b_k[o]
        b_eff = A.sum(1).t() @ bias.view(K, O)  # [W, O]
        if shift is not None:
            b_eff = b_eff + shift
        return Ap, w_post, b_eff

    def _mix_aggregate(self, xc: torch.Tensor, ops: tuple[torch.Tensor, ...], cache: dict | None = None) -> torch.Tensor:
        """``xc [B, T, V, C]`` -> ``[B, T, V, O]`` = ``sum_k A_k^T (x W_k^T + b_k)`` (+ BN shift when fused)."""
        B, T, V, C = xc.shape
        if self.order == "pre":
            weight, bias, A2, shift = ops
            z = mix(xc, weight, bias, cache)  # [B, T, V, K*O], channel k*O + o
            y = torch.bmm(A2.to(z.dtype).expand(B * T, V, A2.shape[1]), z.view(B * T, A2.shape[1], -1))
            y = y.view(B, T, V, -1)
            return y if shift is None else y.add_(shift.to(y.dtype))
        Ap, w_post, b_eff = ops
        xa = torch.bmm(Ap.to(xc.dtype).expand(B * T, Ap.shape[0], V), xc.view(B * T, V, C))  # [BT, (w, k), C]
        y = mix(xa.view(B, T, V, -1), w_post, None, cache)
        return y.add_(b_eff.to(y.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = to_cl(x)
        if self._use_fused():
            f = self.fused()
            y = self._mix_aggregate(xc, f["ops"], f["_packed"])
            if self.with_res:
                y = y.add_(mix(xc, f["down_w"], f["down_b"], f["_packed"]) if self.down is not None else xc)
            return from_cl(y.relu_())
        y = self._mix_aggregate(xc, self._prepare(self.effective_A(), self.weight, self.bias, None))
        y = bn_cl(self.bn, y)
        if self.with_res:
            y = y.add_(bn_cl(self.down_bn, mix(xc, self.down.weight, self.down.bias)) if self.down is not None else xc)
        return from_cl(y.relu_())

    def _compute_fused(self) -> dict[str, Any]:
        scale, shift = bn_affine(self.bn)
        K = self.num_subsets
        ops = self._prepare(self.effective_A(), self.weight * scale.repeat(K)[:, None], self.bias * scale.repeat(K),
                            shift)
        f: dict[str, Any] = {"ops": tuple(o.contiguous() if o is not None else None for o in ops)}
        if self.down is not None:
            f["down_w"], f["down_b"] = fold_bn(self.down.weight, self.down.bias, self.down_bn)
        return f


# ---------------------------------------------------------------------------------------------- temporal conv
class UnitTCN(FusableMixin, nn.Module):
    """PYSKL's ``unit_tcn``: ``(kernel x 1)`` temporal conv (+ BN) (+ dropout) on logical ``[B, C, T, V]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1,
                 dilation: int = 1, norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1),
                              dilation=(dilation, 1))
        self.bn = nn.BatchNorm1d(out_channels) if norm else None
        self.drop = nn.Dropout(dropout, inplace=True) if dropout > 0 else None
        self.stride = stride
        cl_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self._use_fused():
            f = self.fused()
            return conv2d(x, f["w"], f["b"], self.conv.stride, self.conv.padding, self.conv.dilation, f["_packed"])
        y = self.conv(x)
        if self.bn is not None:
            y = from_cl(bn_cl(self.bn, to_cl(y)))
        if self.drop is not None:
            y = self.drop(y)
        return y

    def _compute_fused(self) -> dict[str, Any]:
        if self.bn is None:
            return {"w": self.conv.weight, "b": self.conv.bias}
        w, b = fold_bn(self.conv.weight, self.conv.bias, self.bn)
        return {"w": w.contiguous(memory_format=torch.channels_last), "b": b}


class MSTCN(FusableMixin, nn.Module):
    """PYSKL's ``mstcn`` (ST-GCN++'s multi-scale TCN) on logical ``[B, C, T, V]``.

    Branches (``ms_cfg`` default ``[(3,1), (3,2), (3,3), (3,4), ('max',3), '1x1']``, channels ``out // 6`` each,
    the first one taking the remainder): 1x1 conv -> BN -> ReLU -> 3x1 conv with dilation d (no BN); 1x1 conv ->
    BN -> ReLU -> 3x1 max-pool; a strided 1x1 conv. Concatenated, then BN -> ReLU -> 1x1 conv -> BN -> dropout.

    The leading 1x1 convs of the BN'd branches run as one ``linear`` (``pre``) with one BN (``pre_bn``, per
    channel, so the same as one BN per branch); the plain 1x1 branches as another (``pre1``, on the strided
    input). Inside ``transform`` the concatenation is ordered [BN'd branches, 1x1 branches]: a fixed permutation
    of the transform's input channels, so the same family of functions as PYSKL's.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dropout: float = 0.0,
                 ms_cfg: Sequence[Any] = ((3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1")) -> None:
        super().__init__()
        nb = len(ms_cfg)
        mid = out_channels // nb
        rem = out_channels - mid * (nb - 1)
        chans = [rem] + [mid] * (nb - 1)
        self.stride = stride
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kinds: list[tuple[str, int, int, int]] = []  # (kind, kernel, dilation, channels) of BN'd branches
        c1 = 0
        for cfg, c in zip(ms_cfg, chans):
            if cfg == "1x1":
                c1 += c
            elif isinstance(cfg, (list, tuple)) and len(cfg) == 2 and cfg[0] == "max":
                self.kinds.append(("max", int(cfg[1]), 1, c))
            elif isinstance(cfg, (list, tuple)) and len(cfg) == 2 and all(isinstance(v, int) for v in cfg):
                self.kinds.append(("conv", cfg[0], cfg[1], c))
            else:
                raise ValueError(f"mstcn branch config {cfg!r} is not (kernel, dilation), ('max', kernel) or '1x1'")
        nbn = sum(k[3] for k in self.kinds)
        self.pre = _conv1x1(in_channels, nbn) if nbn else None
        self.pre_bn = nn.BatchNorm1d(nbn) if nbn else None
        self.pre1 = _conv1x1(in_channels, c1) if c1 else None
        self.tconvs = nn.ModuleList()
        for kind, ks, d, c in self.kinds:
            if kind == "conv":
                pad = (ks + (ks - 1) * (d - 1) - 1) // 2
                self.tconvs.append(nn.Conv2d(c, c, (ks, 1), padding=(pad, 0), stride=(stride, 1), dilation=(d, 1)))
        total = nbn + c1
        self.transform_bn = nn.BatchNorm1d(total)
        self.transform = _conv1x1(total, out_channels)
        self.bn = nn.BatchNorm1d(out_channels)
        self.drop = nn.Dropout(dropout, inplace=True) if dropout > 0 else None
        cl_weights(self)

    def _branches(self, xc: torch.Tensor, pre: tuple | None, pre1: tuple | None, normed: bool,
                  cache: dict | None = None) -> torch.Tensor:
        """``xc [B, T, V, C]`` -> concatenated branch outputs ``[B, T', V, total]``."""
        s = self.stride
        outs = []
        if self.pre is not None:
            h = mix(xc, *pre, cache) if pre is not None else mix(xc, self.pre.weight, self.pre.bias)
            h = (h if normed else bn_cl(self.pre_bn, h)).relu_()
            start, conv_i = 0, 0
            for kind, ks, d, c in self.kinds:
                hb = from_cl(h[..., start:start + c]).contiguous(memory_format=torch.channels_last)
                start += c
                if kind == "conv":
                    conv = self.tconvs[conv_i]
                    conv_i += 1
                    outs.append(to_cl(conv2d(hb, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation,
                                             cache)))
                else:
                    outs.append(to_cl(F.max_pool2d(hb, (ks, 1), (s, 1), ((ks - 1) // 2, 0))))
        if self.pre1 is not None:
            xs = xc[:, ::s] if s > 1 else xc
            outs.append(mix(xs.contiguous(), *pre1, cache) if pre1 is not None
                        else mix(xs, self.pre1.weight, self.pre1.bias))
        return torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = to_cl(x)
        if self._use_fused():
            f = self.fused()
            feat = self._branches(xc, f["pre"], f["pre1"], normed=True, cache=f["_packed"])
            feat = torch.addcmul(f["t_shift"], feat, f["t_scale"]).relu_()
            return from_cl(mix(feat, f["tr_w"], f["tr_b"], f["_packed"]))
        feat = F.relu(bn_cl(self.transform_bn, self._branches(xc, None, None, normed=False)), inplace=True)
        out = bn_cl(self.bn, mix(feat, self.transform.weight, self.transform.bias))
        if self.drop is not None:
            out = self.drop(out)
        return from_cl(out)

    def _compute_fused(self) -> dict[str, Any]:
        t_scale, t_shift = bn_affine(self.transform_bn)
        return {
            "pre": fold_bn(self.pre.weight, self.pre.bias, self.pre_bn) if self.pre is not None else None,
            "pre1": (self.pre1.weight, self.pre1.bias) if self.pre1 is not None else None,
            "t_scale": t_scale,
            "t_shift": t_shift,
            **dict(zip(("tr_w", "tr_b"), fold_bn(self.transform.weight, self.transform.bias, self.bn))),
        }


def _conv1x1(cin: int, cout: int) -> nn.Linear:
    """A 1x1 convolution as ``nn.Linear`` over the channel (last) dim, with ``nn.Conv2d``'s default init."""
    return nn.Linear(cin, cout)  # same kaiming_uniform(a=sqrt(5)) / bias bound 1/sqrt(fan_in) as Conv2d


# ---------------------------------------------------------------------------------------------- block / backbone
class Block(nn.Module):
    """One GCN block: ``relu(tcn(gcn(x)) + residual(x))``.

    ``gcn`` and ``tcn`` are separate submodules so a plug-in can wrap either; ``residual`` is ``'none'``,
    ``'identity'`` or a module (PYSKL's strided 1x1 ``unit_tcn``).
    """

    def __init__(self, gcn: nn.Module, tcn: nn.Module, residual: nn.Module | str) -> None:
        super().__init__()
        self.gcn, self.tcn = gcn, tcn
        if isinstance(residual, nn.Module):
            self.residual, self.res_mode = residual, "module"
        elif residual in ("none", "identity"):
            self.residual, self.res_mode = None, residual
        else:
            raise ValueError(f"residual must be a module, 'none' or 'identity', got {residual!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.res_mode == "identity":
            y = y + x
        elif self.res_mode == "module":
            y = y + self.residual(x)
        return F.relu(y, inplace=self.res_mode != "none")


def make_residual(residual: bool, in_channels: int, out_channels: int, stride: int) -> nn.Module | str:
    """PYSKL's block residual: none, identity, or a strided 1x1 ``unit_tcn`` (conv + BN)."""
    if not residual:
        return "none"
    if in_channels == out_channels and stride == 1:
        return "identity"
    return UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)


class GCNBackbone(nn.Module):
    """Data BN followed by a list of :class:`Block`; ``x [N, M, T, V, C]`` -> features ``[N, M, C', T', V]``.

    The features are a view of channels_last memory (``[N*M, T', V, C']``); use ``reshape`` rather than ``view``.
    """

    def __init__(self, data_bn: DataBN, blocks: Sequence[nn.Module], in_channels: int, num_joints: int,
                 out_channels: int) -> None:
        super().__init__()
        self.data_bn = data_bn
        self.blocks = nn.ModuleList(blocks)
        self.in_channels, self.num_joints, self.out_channels = in_channels, num_joints, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, M = x.shape[:2]
        x = from_cl(self.data_bn(x))  # logical [N*M, C, T, V], channels_last
        for blk in self.blocks:
            x = blk(x)
        return x.reshape(N, M, *x.shape[1:])
