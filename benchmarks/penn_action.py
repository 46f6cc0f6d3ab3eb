"""The full Penn Action table: the four baselines at standard width with the configs' full schedules.

Trains every baseline clean and at each corruption level (minor / moderate / severe), tests each at its own level
and the clean models at every level, with PYSKL's 10 test clips, and writes results/<run>/report.md, results.csv
and accuracy_vs_corruption.png. This is `finetec demo --full`; on 2 CPU cores it takes many hours (one standard
ST-GCN run is about 10 minutes with bf16: see docs/results.md), on a GPU minutes.

    python benchmarks/penn_action.py [--data PATH] [--models stgcn ctrgcn] [--levels clean severe] [key=value ...]
"""

from __future__ import annotations

import sys

from finetec.demo import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--full" not in argv:
        argv = ["--full", *argv]
    if not any(a == "--run" or a.startswith("--run=") for a in argv):
        from datetime import datetime

        argv = ["--run", datetime.now().strftime("penn_full_%Y%m%d_%H%M%S"), *argv]
    raise SystemExit(main(argv))
