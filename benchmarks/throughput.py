"""Training / inference throughput and single-sequence latency of the baseline recognizers on this CPU.

For each model (standard and slim width), dtype (fp32, bf16 autocast) and clip length T:

* training sequences/s: forward + backward + SGD step, batch ``--batch`` (16), model in train mode;
* inference sequences/s: eval mode, ``torch.inference_mode``, ``fuse_for_inference()``, batch ``--batch``;
* latency: one sequence (N=1), same eval setting, median (and min) over ``--lat-runs`` calls.

Throughputs are the best of ``--windows`` timing windows of ``--steps`` steps each, latency the median of
``--lat-runs`` calls; our model and its plain reference are timed in alternating windows/calls, so that a
disturbance of a shared machine hits both alike (the load average before and after the run is printed).

Each standard-width model is also timed as a *plain reference*: a straightforward eager transcription of the
published/PYSKL network (channels-first ``[N, C, T, V]``, one module per partition or branch, einsum graph
aggregation, BatchNorm modules) defined below, with the same parameter count. The table reports our speed
relative to the plain reference measured in the same run, and relative to the PYSKL numbers given in the task
(ST-GCN 47.8, ST-GCN++ 41.9, CTR-GCN 37.5, AAGCN 35.5 training sequences/s; 9.4 / 20.2 / 25.5 / 20.2 ms latency;
fp32, T=48, N=16, coco17, C=3, M=1).

With ``--mmaction2 DIR`` the standard-width ST-GCN, ST-GCN++ and AAGCN are also timed as MMAction2's own code (its
port of PYSKL's; ``mmaction2_ref.py`` loads it from an unpacked wheel), in the same alternating windows, and a second
table sets ours against it.

Usage::

    python benchmarks/throughput.py                 # full table (about 10-15 min on 2 cores)
    python benchmarks/throughput.py --quick         # T=48 only, fewer windows
    python benchmarks/throughput.py --models stgcn --widths standard --out results/throughput.csv
    python benchmarks/throughput.py --quick --widths standard --mmaction2 /tmp/mm/src   # vs MMAction2's own code
    python benchmarks/throughput.py --finetec       # FineTec vs its GCN backbone (forward cost ratio)
    python benchmarks/throughput.py --sfhead --models ctrgcn   # backbone vs + SF-Head inline / auxiliary

``--finetec`` times the FineTec recognizer (completion with a filled 256-clip bank, decomposition, physics, CA
fusion, ST-GCN++ backbone; eval mode for inference and latency, train mode with its L_Ac for training) against the
same ST-GCN++ recognizer alone on the same input, and prints the cost ratios (the issue's bar: FineTec's forward at
most 2x its backbone's).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from finetec.layouts import get_layout
from finetec.models import create_model
from finetec.utils.io import atomic_write

PYSKL_TRAIN = {"stgcn": 47.8, "stgcnpp": 41.9, "ctrgcn": 37.5, "aagcn": 35.5}
PYSKL_LATENCY_MS = {"stgcn": 9.4, "stgcnpp": 20.2, "ctrgcn": 25.5, "aagcn": 20.2}


# ============================================================================================== plain references
class RefUnitTCN(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 9, stride: int = 1, dilation: int = 1, norm: bool = True):
        super().__init__()
        pad = (k + (k - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(cin, cout, (k, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(cout) if norm else nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


class RefUnitGCN(nn.Module):
    """Original ST-GCN graph conv: one conv to K*out channels, then einsum with the K partitions."""

    def __init__(self, cin: int, cout: int, A: torch.Tensor, adaptive: str = "importance", with_res: bool = False):
        super().__init__()
        self.K, self.adaptive = A.shape[0], adaptive
        if adaptive == "init":
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A.clone())
            self.PA = nn.Parameter(torch.ones_like(A))
        self.conv = nn.Conv2d(cin, cout * self.K, 1)
        self.bn = nn.BatchNorm2d(cout)
        self.with_res = with_res
        if with_res:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout else nn.Identity()

    def forward(self, x):
        n, _, t, v = x.shape
        A = self.A if self.adaptive == "init" else self.A * self.PA
        z = self.conv(x).view(n, self.K, -1, t, v)
        y = self.bn(torch.einsum("nkctv,kvw->nctw", z, A).contiguous())
        if self.with_res:
            y = y + self.down(x)
        return F.relu(y)


class RefMSTCN(nn.Module):
    """ST-GCN++'s multi-scale TCN, one Sequential per branch."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        cfg = [(3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1"]
        mid = cout // len(cfg)
        rem = cout - mid * (len(cfg) - 1)
        branches = []
        for i, c in enumerate(cfg):
            bc = rem if i == 0 else mid
            if c == "1x1":
                branches.append(nn.Conv2d(cin, bc, 1, stride=(stride, 1)))
            elif c[0] == "max":
                branches.append(nn.Sequential(nn.Conv2d(cin, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(),
                                              nn.MaxPool2d((3, 1), (stride, 1), (1, 0))))
            else:
                branches.append(nn.Sequential(nn.Conv2d(cin, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(),
                                              RefUnitTCN(bc, bc, c[0], stride, c[1], norm=False)))
        self.branches = nn.ModuleList(branches)
        self.transform = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, cout, 1))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.transform(torch.cat([b(x) for b in self.branches], 1)))


class RefUnitAAGCN(nn.Module):
    """2s-AGCN/AAGCN graph conv with a loop over the K partitions, then STC attention."""

    def __init__(self, cin: int, cout: int, A: torch.Tensor):
        super().__init__()
        self.K, V = A.shape[0], A.shape[-1]
        self.inter = cout // 4
        self.A = nn.Parameter(A.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.conv_a = nn.ModuleList([nn.Conv2d(cin, self.inter, 1) for _ in range(self.K)])
        self.conv_b = nn.ModuleList([nn.Conv2d(cin, self.inter, 1) for _ in range(self.K)])
        self.conv_d = nn.ModuleList([nn.Conv2d(cin, cout, 1) for _ in range(self.K)])
        self.bn = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout else nn.Identity()
        ker = V if V % 2 else V - 1
        self.conv_ta = nn.Conv1d(cout, 1, 9, padding=4)
        self.conv_sa = nn.Conv1d(cout, 1, ker, padding=(ker - 1) // 2)
        self.fc1c, self.fc2c = nn.Linear(cout, cout // 2), nn.Linear(cout // 2, cout)

    def forward(self, x):
        N, C, T, V = x.shape
        y = 0
        for i in range(self.K):
            a1 = self.conv_a[i](x).permute(0, 3, 1, 2).reshape(N, V, self.inter * T)
            a2 = self.conv_b[i](x).view(N, self.inter * T, V)
            adj = self.A[i] + torch.tanh(torch.matmul(a1, a2) / a1.size(-1)) * self.alpha
            y = y + self.conv_d[i](torch.matmul(x.reshape(N, C * T, V), adj).view(N, C, T, V))
        y = F.relu(self.bn(y) + self.down(x))
        s = torch.sigmoid(self.conv_sa(y.mean(-2)))
        y = y * s.unsqueeze(-2) + y
        s = torch.sigmoid(self.conv_ta(y.mean(-1)))
        y = y * s.unsqueeze(-1) + y
        s = torch.sigmoid(self.fc2c(F.relu(self.fc1c(y.mean(-1).mean(-1)))))
        return y * s[..., None, None] + y


class RefCTRGC(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        r = 8 if cin <= 16 else cin // 8
        self.conv1, self.conv2 = nn.Conv2d(cin, r, 1), nn.Conv2d(cin, r, 1)
        self.conv3, self.conv4 = nn.Conv2d(cin, cout, 1), nn.Conv2d(r, cout, 1)

    def forward(self, x, A, alpha):
        x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        m = self.conv4(torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))) * alpha + A[None, None]
        return torch.einsum("ncuv,nctu->nctv", m, x3)


class RefUnitCTRGCN(nn.Module):
    def __init__(self, cin: int, cout: int, A: torch.Tensor):
        super().__init__()
        self.convs = nn.ModuleList([RefCTRGC(cin, cout) for _ in range(A.shape[0])])
        self.A = nn.Parameter(A.clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout else nn.Identity()

    def forward(self, x):
        y = sum(conv(x, self.A[i], self.alpha) for i, conv in enumerate(self.convs))
        return F.relu(self.bn(y) + self.down(x))


class RefCTRMSTCN(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 5, dilations=(1, 2)):
        super().__init__()
        nb = len(dilations) + 2
        bc = cout // nb
        rem = cout - bc * (nb - 1)
        self.branches = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(cin, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(), RefUnitTCN(bc, bc, k, stride, d))
             for d in dilations]
            + [nn.Sequential(nn.Conv2d(cin, bc, 1), nn.BatchNorm2d(bc), nn.ReLU(),
                             nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(bc)),
               nn.Sequential(nn.Conv2d(cin, rem, 1, stride=(stride, 1)), nn.BatchNorm2d(rem))])

    def forward(self, x):
        return F.relu(torch.cat([b(x) for b in self.branches], 1))


class RefBlock(nn.Module):
    def __init__(self, gcn: nn.Module, tcn: nn.Module, cin: int, cout: int, stride: int, residual: bool):
        super().__init__()
        self.gcn, self.tcn = gcn, tcn
        if not residual:
            self.res = None
        elif cin == cout and stride == 1:
            self.res = nn.Identity()
        else:
            self.res = RefUnitTCN(cin, cout, 1, stride)

    def forward(self, x):
        y = self.tcn(self.gcn(x))
        return F.relu(y if self.res is None else y + self.res(x))


class RefRecognizer(nn.Module):
    """Plain eager network: data BN over V*C, 10 blocks (base 64, x2 at stages 5 and 8), pooled linear head."""

    def __init__(self, kind: str, layout: str, num_classes: int, in_channels: int = 3):
        super().__init__()
        A = torch.from_numpy(get_layout(layout).adjacency("spatial"))
        V = A.shape[-1]
        self.data_bn = nn.BatchNorm1d(in_channels * V)
        blocks, base = [], 64
        plan = [(in_channels, 64, 1, False)]
        for i in range(2, 11):
            out = base * 2 if i in (5, 8) else base
            plan.append((base, out, 2 if i in (5, 8) else 1, True))
            base = out
        for cin, cout, stride, residual in plan:
            if kind == "stgcn":
                gcn, tcn = RefUnitGCN(cin, cout, A), RefUnitTCN(cout, cout, 9, stride)
            elif kind == "stgcnpp":
                gcn, tcn = RefUnitGCN(cin, cout, A, "init", with_res=True), RefMSTCN(cout, cout, stride)
            elif kind == "aagcn":
                gcn, tcn = RefUnitAAGCN(cin, cout, A), RefUnitTCN(cout, cout, 9, stride)
            elif kind == "ctrgcn":
                gcn, tcn = RefUnitCTRGCN(cin, cout, A), RefCTRMSTCN(cout, cout, stride)
            else:
                raise ValueError(kind)
            blocks.append(RefBlock(gcn, tcn, cin, cout, stride, residual))
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(base, num_classes)

    def forward(self, x):
        N, M, T, V, C = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 4, 2).reshape(N * M, V * C, T))
        x = x.view(N * M, V, C, T).permute(0, 2, 3, 1).contiguous()
        for b in self.blocks:
            x = b(x)
        return self.fc(x.mean((2, 3)).view(N, M, -1).mean(1))


# ============================================================================================== timing
def _autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def best_rates(steps_fn: dict[str, Callable[[], None]], items: int, windows: int, steps: int,
               warmup: int) -> dict[str, float]:
    """Items per second of the fastest of ``windows`` windows of ``steps`` calls, for each candidate.

    The candidates' windows are interleaved, so that a disturbance of the machine hits them alike.
    """
    for fn in steps_fn.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in steps_fn}
    for _ in range(windows):
        for k, fn in steps_fn.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            best[k] = min(best[k], (time.perf_counter() - t0) / steps)
    return {k: items / v for k, v in best.items()}


def measure(models: dict[str, nn.Module], *, T: int, bf16: bool, batch: int, persons: int, V: int, C: int,
            num_classes: int, windows: int, steps: int, lat_runs: int) -> dict[str, dict[str, float]]:
    """Training/inference throughput and latency of each model (interleaved), ``{name: {metric: value}}``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, persons, T, V, C, generator=gen)
    y = torch.randint(0, num_classes, (batch,), generator=gen)
    out: dict[str, dict[str, float]] = {k: {} for k in models}

    def train_step(model: nn.Module, opt: torch.optim.Optimizer) -> Callable[[], None]:
        def step() -> None:
            with _autocast(bf16):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    fns = {}
    for k, model in models.items():
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4, nesterov=True)
        fns[k] = train_step(model, opt)
    for k, v in best_rates(fns, batch, windows, steps, warmup=2).items():
        out[k]["train"] = v
    for model in models.values():
        model.eval()
        if hasattr(model, "fuse_for_inference"):
            model.fuse_for_inference()
    with torch.inference_mode(), _autocast(bf16):
        fns = {k: (lambda m=model: m(x)) for k, model in models.items()}
        for k, v in best_rates(fns, batch, windows, steps, warmup=2).items():
            out[k]["infer"] = v
        x1 = x[:1]
        ts: dict[str, list[float]] = {k: [] for k in models}
        for model in models.values():
            for _ in range(5):
                model(x1)
        for _ in range(lat_runs):
            for k, model in models.items():
                t0 = time.perf_counter()
                model(x1)
                ts[k].append(time.perf_counter() - t0)
    for k in models:
        out[k]["lat_median_ms"] = statistics.median(ts[k]) * 1e3
        out[k]["lat_min_ms"] = min(ts[k]) * 1e3
    return out


class _WithMask(nn.Module):
    """FineTec as a ``model(x) -> logits`` callable for :func:`measure`: all frames valid; in training the L_Ac
    term is added to the logits' graph so that its backward is timed too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(x.shape[0], x.shape[2], dtype=torch.bool)
        logits, aux = self.model(x, mask)
        return logits + sum(aux.values()) * 0 if aux else logits

    def fuse_for_inference(self, enabled: bool = True) -> "_WithMask":
        self.model.fuse_for_inference(enabled)
        return self


def finetec_vs_backbone(args: argparse.Namespace, V: int, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows comparing FineTec with its ST-GCN++ backbone alone (same width, input and dtype)."""
    rows = []
    for width in args.widths.split(","):
        for T in (int(t) for t in args.T.split(",")):
            for dt in args.dtypes.split(","):
                torch.manual_seed(0)
                ft = create_model("finetec", num_classes=args.num_classes, layout=args.layout,
                                  in_channels=args.in_channels, width=width, clip_len=T, backbone="stgcnpp")
                bank = ft.completion.bank
                K = bank.sequences.shape[0]
                bank.load(torch.randn(K, T, V, 2) * 0.3, torch.ones(K, T, V))
                bb = create_model("stgcnpp", num_classes=args.num_classes, layout=args.layout,
                                  in_channels=args.in_channels, width=width)
                res = measure({"finetec": _WithMask(ft), "backbone": bb}, T=T, bf16=dt == "bf16", **common)
                f, b = res["finetec"], res["backbone"]
                rows.append({"width": width, "T": T, "dtype": dt, "params": sum(p.numel() for p in ft.parameters()),
                             "backbone_params": sum(p.numel() for p in bb.parameters()),
                             **{f"finetec_{k}": v for k, v in f.items()}, **{f"backbone_{k}": v for k, v in b.items()},
                             "forward_cost_ratio": b["infer"] / f["infer"],
                             "latency_ratio": f["lat_median_ms"] / b["lat_median_ms"],
                             "train_cost_ratio": b["train"] / f["train"]})
                r = rows[-1]
                print(f"  finetec/{width:8s} {dt:4s} T={T:<3d} forward cost {r['forward_cost_ratio']:.2f}x, latency "
                      f"{r['latency_ratio']:.2f}x, training cost {r['train_cost_ratio']:.2f}x of ST-GCN++", flush=True)
    lines = ["| width | dtype | T | params (FineTec / backbone) | infer seq/s (FineTec / backbone) | latency ms "
             "(FineTec / backbone) | train seq/s (FineTec / backbone) | forward cost ratio | latency ratio | "
             "train cost ratio |", "|" + "---|" * 10]
    for r in rows:
        lines.append(f"| {r['width']} | {r['dtype']} | {r['T']} | {r['params'] / 1e6:.2f}M / "
                     f"{r['backbone_params'] / 1e6:.2f}M | {r['finetec_infer']:.1f} / {r['backbone_infer']:.1f} | "
                     f"{r['finetec_lat_median_ms']:.2f} / {r['backbone_lat_median_ms']:.2f} | "
                     f"{r['finetec_train']:.1f} / {r['backbone_train']:.1f} | {r['forward_cost_ratio']:.2f}x | "
                     f"{r['latency_ratio']:.2f}x | {r['train_cost_ratio']:.2f}x |")
    print("\n" + "\n".join(lines))
    return rows


class _LogitsWithAux(nn.Module):
    """A ``(logits, aux)`` model as ``model(x) -> logits`` for :func:`measure`: in training its ``loss_*`` terms
    are added to the logits' graph (times 0) so that their forward and backward are timed too; at inference the
    model's ``inference_model()`` is what runs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.deploy = model.inference_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.deploy(x)
        logits, aux = self.model(x)
        return logits + sum(aux.values()) * 0 if aux else logits

    def train(self, mode: bool = True) -> "_LogitsWithAux":
        super().train(mode)
        self.deploy.train(mode)
        return self

    def fuse_for_inference(self, enabled: bool = True) -> "_LogitsWithAux":
        self.deploy.fuse_for_inference(enabled)
        return self


def sfhead_vs_backbone(args: argparse.Namespace, common: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows comparing each backbone with SF-Head inline and auxiliary (training with F-RL/F-CL; inference with
    the deployed model: auxiliary = the bare backbone)."""
    rows = []
    for name in args.models.split(","):
        for width in args.widths.split(","):
            for T in (int(t) for t in args.T.split(",")):
                for dt in args.dtypes.split(","):
                    models: dict[str, nn.Module] = {}
                    for mode in ("backbone", "inline", "auxiliary"):
                        torch.manual_seed(0)
                        kw = {} if mode == "backbone" else {"sfhead": {"mode": mode}}
                        m = create_model(name, num_classes=args.num_classes, layout=args.layout,
                                         in_channels=args.in_channels, width=width, **kw)
                        models[mode] = m if mode == "backbone" else _LogitsWithAux(m)
                    res = measure(models, T=T, bf16=dt == "bf16", **common)
                    b = res["backbone"]
                    for mode in ("inline", "auxiliary"):
                        r = res[mode]
                        rows.append({"model": name, "width": width, "T": T, "dtype": dt, "mode": mode,
                                     "train_ratio": r["train"] / b["train"], "infer_ratio": r["infer"] / b["infer"],
                                     "latency_ratio": r["lat_median_ms"] / b["lat_median_ms"], **r,
                                     **{f"backbone_{k}": v for k, v in b.items()}})
                        print(f"  {name}/{width} {dt} T={T} SF-Head {mode:9s}: training {r['train']:.1f} vs "
                              f"{b['train']:.1f} seq/s ({rows[-1]['train_ratio']:.2f}x), inference "
                              f"{rows[-1]['infer_ratio']:.2f}x, latency {rows[-1]['latency_ratio']:.2f}x", flush=True)
    lines = ["| model | width | dtype | T | SF-Head | train seq/s (with / without) | infer seq/s (with / without) | "
             "latency ms (with / without) |", "|" + "---|" * 8]
    for r in rows:
        lines.append(f"| {r['model']} | {r['width']} | {r['dtype']} | {r['T']} | {r['mode']} | {r['train']:.1f} / "
                     f"{r['backbone_train']:.1f} ({r['train_ratio']:.2f}x) | {r['infer']:.1f} / "
                     f"{r['backbone_infer']:.1f} ({r['infer_ratio']:.2f}x) | {r['lat_median_ms']:.2f} / "
                     f"{r['backbone_lat_median_ms']:.2f} ({r['latency_ratio']:.2f}x) |")
    print("\n" + "\n".join(lines))
    return rows


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpu": cpu,
            "cores": str(os.cpu_count()), "torch": torch.__version__, "python": platform.python_version(),
            "threads": str(torch.get_num_threads()), "mkldnn": str(torch.backends.mkldnn.is_available())}


def _load() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="stgcn,stgcnpp,ctrgcn,aagcn")
    ap.add_argument("--widths", default="standard,slim")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--T", default="48,100", help="clip lengths, comma separated")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--persons", type=int, default=1, help="M; PYSKL's reference numbers were given for M=1")
    ap.add_argument("--layout", default="coco17")
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--num-classes", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lat-runs", type=int, default=50)
    ap.add_argument("--no-reference", action="store_true", help="skip the plain reference implementations")
    ap.add_argument("--mmaction2", metavar="DIR",
                    help="also time MMAction2's own ST-GCN / ST-GCN++ / AAGCN from an unpacked mmaction2 under DIR "
                         "(benchmarks/mmaction2_ref.py says how to get it)")
    ap.add_argument("--quick", action="store_true", help="T=48 only, 3 windows of 2 steps, 20 latency runs")
    ap.add_argument("--out", help="also write the rows as CSV here")
    ap.add_argument("--finetec", action="store_true", help="only FineTec vs its ST-GCN++ backbone")
    ap.add_argument("--sfhead", action="store_true", help="only --models with and without SF-Head (both modes)")
    args = ap.parse_args(argv)
    if args.quick:
        args.T, args.windows, args.steps, args.lat_runs = "48", 3, 2, 20
    torch.set_num_threads(args.threads)
    V = get_layout(args.layout).num_joints
    info = machine_info()
    load0 = _load()
    print(f"# throughput ({info['date']})\n")
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {args.threads} threads, "
          f"mkldnn {info['mkldnn']}; batch {args.batch}, M={args.persons}, layout {args.layout} (V={V}), "
          f"C={args.in_channels}; load average at start {load0}\n", flush=True)

    mm_build = None
    if args.mmaction2:
        import mmaction2_ref

        if args.layout not in mmaction2_ref.LAYOUTS:
            ap.error(f"--mmaction2 knows layouts {sorted(mmaction2_ref.LAYOUTS)}, got {args.layout!r}")
        mm_build = mmaction2_ref.load(args.mmaction2)
    rows: list[dict[str, Any]] = []
    common = dict(batch=args.batch, persons=args.persons, V=V, C=args.in_channels, num_classes=args.num_classes,
                  windows=args.windows, steps=args.steps, lat_runs=args.lat_runs)
    if args.finetec or args.sfhead:
        if args.finetec:
            finetec_vs_backbone(args, V, common)
        if args.sfhead:
            sfhead_vs_backbone(args, common)
        print(f"\nload average at end {_load()} (start {load0})")
        return 0
    for name in args.models.split(","):
        for width in args.widths.split(","):
            for T in (int(t) for t in args.T.split(",")):
                for dt in args.dtypes.split(","):
                    bf16 = dt == "bf16"
                    torch.manual_seed(0)
                    models = {"ours": create_model(name, num_classes=args.num_classes, layout=args.layout,
                                                   in_channels=args.in_channels, width=width)}
                    if width == "standard" and not args.no_reference:
                        models["ref"] = RefRecognizer(name, args.layout, args.num_classes, args.in_channels)
                    if width == "standard" and mm_build is not None and name in mmaction2_ref.kinds:
                        models["mm"] = mm_build(name, mmaction2_ref.LAYOUTS[args.layout], args.num_classes,
                                                args.in_channels, args.persons)
                    res = measure(models, T=T, bf16=bf16, **common)
                    r = res["ours"]
                    row: dict[str, Any] = {"model": name, "width": width, "dtype": dt, "T": T,
                                           "params": sum(p.numel() for p in models["ours"].parameters()), **r}
                    if "ref" in res:
                        row["ref_params"] = sum(p.numel() for p in models["ref"].parameters())
                        row.update({f"ref_{k}": v for k, v in res["ref"].items()})
                    if "mm" in res:
                        row["mm_params"] = sum(p.numel() for p in models["mm"].parameters())
                        row.update({f"mm_{k}": v for k, v in res["mm"].items()})
                    rows.append(row)
                    print(f"  {name:8s} {width:8s} {dt:4s} T={T:<3d} train {r['train']:6.1f}/s  infer "
                          f"{r['infer']:6.1f}/s  latency {r['lat_median_ms']:6.2f} ms"
                          + (f"   | plain ref: train {row['ref_train']:6.1f}/s latency {row['ref_lat_median_ms']:6.2f}"
                             " ms" if "ref_train" in row else "")
                          + (f"   | MMAction2: train {row['mm_train']:6.1f}/s latency {row['mm_lat_median_ms']:6.2f} ms"
                             if "mm_train" in row else ""), flush=True)
    print()
    print(render_table(rows))
    if any("mm_train" in r for r in rows):
        print("\nAgainst MMAction2's own implementations, timed in the same windows:\n")
        print(render_mm_table(rows))
    print(f"\nload average at end {_load()} (start {load0}); throughputs are best-of-{args.windows} windows of "
          f"{args.steps} steps, latency the median of {args.lat_runs} calls.")
    if args.out:
        first = ["model", "width", "dtype", "T"]
        keys = first + sorted({k for r in rows for k in r} - set(first))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys + ["date", "cpu", "threads", "torch"])
        w.writeheader()
        for r in rows:
            w.writerow({**r, "date": info["date"], "cpu": info["cpu"], "threads": args.threads,
                        "torch": info["torch"]})
        with atomic_write(args.out, "w") as f:
            f.write(buf.getvalue())
        print(f"wrote {args.out}")
    return 0


def render_table(rows: list[dict[str, Any]]) -> str:
    def fmt(v: Any, nd: int = 1) -> str:
        return "" if v is None else f"{v:.{nd}f}"

    head = ("| model | width | dtype | T | params | train seq/s | infer seq/s | latency ms (median) | plain ref train "
            "seq/s | plain ref latency ms | train vs plain | latency vs plain | PYSKL given train seq/s / latency ms "
            "| train vs PYSKL given | latency vs PYSKL given |")
    lines = [head, "|" + "|".join(["---"] * 15) + "|"]
    for r in rows:
        rt, rl = r.get("ref_train"), r.get("ref_lat_median_ms")
        given = r["width"] == "standard" and r["T"] == 48  # given for fp32; bf16 rows compare with the same
        pt, pl = PYSKL_TRAIN.get(r["model"]) if given else None, PYSKL_LATENCY_MS.get(r["model"]) if given else None
        lines.append("| " + " | ".join([
            r["model"], r["width"], r["dtype"], str(r["T"]), f"{r['params'] / 1e6:.2f}M", fmt(r["train"]),
            fmt(r["infer"]), fmt(r["lat_median_ms"], 2), fmt(rt), fmt(rl, 2),
            f"{r['train'] / rt:.2f}x" if rt else "", f"{r['lat_median_ms'] / rl:.2f}x" if rl else "",
            f"{pt} / {pl}" if pt else "",
            f"{r['train'] / pt:.2f}x" if pt else "", f"{r['lat_median_ms'] / pl:.2f}x" if pl else "",
        ]) + " |")
    return "\n".join(lines)


def render_mm_table(rows: list[dict[str, Any]]) -> str:
    """Ours vs MMAction2's implementation of the same network; bf16 rows are also set against MMAction2 in fp32 (the
    precision PYSKL trains in), which is what the speed targets compare."""
    fp32 = {(r["model"], r["T"]): r for r in rows if "mm_train" in r and r["dtype"] == "fp32"}
    lines = ["| model | dtype | T | params ours / MMAction2 | train seq/s ours / MMAction2 | train ratio | train vs "
             "MMAction2 fp32 | latency ms ours / MMAction2 | latency ratio | latency vs MMAction2 fp32 |",
             "|" + "|".join(["---"] * 10) + "|"]
    for r in rows:
        if "mm_train" not in r:
            continue
        f = fp32.get((r["model"], r["T"]))
        lines.append("| " + " | ".join([
            r["model"], r["dtype"], str(r["T"]), f"{r['params'] / 1e6:.2f}M / {r['mm_params'] / 1e6:.2f}M",
            f"{r['train']:.1f} / {r['mm_train']:.1f}", f"{r['train'] / r['mm_train']:.2f}x",
            f"{r['train'] / f['mm_train']:.2f}x" if f else "",
            f"{r['lat_median_ms']:.2f} / {r['mm_lat_median_ms']:.2f}", f"{r['lat_median_ms'] / r['mm_lat_median_ms']:.2f}x",
            f"{r['lat_median_ms'] / f['mm_lat_median_ms']:.2f}x" if f else "",
        ]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
