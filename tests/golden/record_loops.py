"""Record the golden results of the training loops: ``python tests/golden/record_loops.py [CASE …]``.

Trains every case of ``tests/golden/cases.py`` (or the named ones, merged into the existing file) with the
installed grokscope on one CPU thread and writes ``tests/golden/loops.npz``: ``"<case>/<member>/<array>"`` →
array.  ``tests/test_loops_golden.py`` trains the same cases and compares.  Re-record only on purpose: a loop
change that alters results must show up as a failing golden test first.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def _cases():
    path = Path(__file__).resolve().parent / "cases.py"
    spec = importlib.util.spec_from_file_location("grokscope_golden_cases", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    cases = _cases()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"cases to (re-)record (default: all {len(cases.CASES)})")
    parser.add_argument("-o", "--out", type=Path, default=cases.GOLDEN)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(cases.CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(cases.CASES)}")
    import torch

    import grokscope

    torch.set_num_threads(1)
    print(f"grokscope {grokscope.__version__} from {Path(grokscope.__file__).parent}, {cases.machine()}")
    arrays: dict[str, np.ndarray] = {}
    if args.cases and args.out.exists() and cases.recorded_on(args.out) != cases.machine():
        parser.error(f"{args.out} was recorded on {cases.recorded_on(args.out)}, this is {cases.machine()}: "
                     "re-record every case")
    if args.cases and args.out.exists():  # re-record some cases, keep the others
        arrays = {f"{case}/{key}": value for case, values in cases.read_golden(args.out).items()
                  if case not in args.cases for key, value in values.items()}
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        for name in args.cases or cases.CASES:
            started = time.perf_counter()
            values = cases.run_case(name, Path(tmp) / name)
            arrays.update({f"{name}/{key}": value for key, value in values.items()})
            ends = ", ".join(f"{k.split('/')[0]} {v}" for k, v in values.items() if k.endswith("/status"))
            print(f"{name:45s} {time.perf_counter() - started:5.2f} s  {len(values):3d} arrays  {ends}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    arrays[cases.MACHINE] = np.asarray(cases.machine())
    np.savez_compressed(args.out, **dict(sorted(arrays.items())))
    print(f"{len(arrays)} arrays, {args.out.stat().st_size / 1024:.0f} KiB -> {args.out} "
          f"({time.perf_counter() - total:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
