"""Command start: wall time of ``grokscope --help``, ``grokscope analyze`` of one tiny store and a 1-step
``grokscope train``, each as a fresh process, as a user types them (issue targets: ``--help`` ≤ 0.5 s,
``analyze`` ≤ 1 s on the project's 2-core machine).

Side by side, in the same run: ``python -c pass`` (the interpreter's own start) and ``python -c "import
numpy"``, so the figures can be read against what any Python tool pays.  Each command runs ``--repeat``
times; the median is reported.
Usage: python benchmarks/bench_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SCRIPT = Path(sys.executable).parent / "grokscope"  # the console script users type, else the module
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "grokscope.cli"]
TARGETS = {"grokscope --help": 0.5, "grokscope analyze (1 store)": 1.0}


def wall(cmd: list[str], repeat: int, before=None) -> float:
    """Median wall time of ``cmd`` over ``repeat`` fresh processes (``before()`` runs untimed first)."""
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "tiny.zarr"
        train = [*CLI, "train", "--preset", "demo", "--steps", "1", "--quiet", "--out", str(store)]
        subprocess.run(train, check=True, stderr=subprocess.DEVNULL)
        results = {
            "python -c pass": wall([sys.executable, "-c", "pass"], args.repeat),
            "python -c 'import numpy'": wall([sys.executable, "-c", "import numpy"], args.repeat),
            "grokscope --help": wall([*CLI, "--help"], args.repeat),
            "grokscope analyze (1 store)": wall([*CLI, "analyze", str(store), "--json"], args.repeat),
            "grokscope train --steps 1": wall([*train, "--overwrite"], max(1, args.repeat // 2),
                                              before=lambda: shutil.rmtree(store, ignore_errors=True)),
        }
    base = results["python -c pass"]
    print(f"{'command':32s} {'median s':>9s} {'× python':>9s}  target")
    for name, seconds in results.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"≤ {target} s: {'met' if seconds <= target else 'NOT met'}"
        print(f"{name:32s} {seconds:9.3f} {seconds / base:9.1f}  {verdict}")


if __name__ == "__main__":
    main()
