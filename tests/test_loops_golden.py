"""Golden results of the training loops: every case of tests/golden/cases.py, trained now, against the stores
recorded in tests/golden/loops.npz (by tests/golden/record_loops.py, from the code before the three loops
were merged).

Every recorded array must come back: exactly (``GROKSCOPE_GOLDEN_EXACT=1``, on the machine that recorded it), or
else to float rounding (rtol 1e-5, atol 1e-6, NaN where NaN), as other CPUs round the last bits differently.
Strings and integers (status, diverged_at, steps, indices) are always compared exactly, and so are each
array's dtype and shape, and the set of arrays each store holds.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


def _load_cases():
    name = "grokscope_golden_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "golden" / "cases.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


cases = _load_cases()
EXACT = os.environ.get("GROKSCOPE_GOLDEN_EXACT") == "1"


@pytest.fixture(scope="module")
def golden():
    if not cases.GOLDEN.exists():
        pytest.fail(f"{cases.GOLDEN} is missing: run tests/golden/record_loops.py on the pre-merge code")
    return cases.read_golden()


def test_the_golden_file_holds_every_case(golden):
    assert sorted(golden) == sorted(cases.CASES)


def _compare(key: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype, f"{key}: dtype {got.dtype}, recorded {want.dtype}"
    assert got.shape == want.shape, f"{key}: shape {got.shape}, recorded {want.shape}"
    if EXACT or want.dtype.kind not in "fc":
        np.testing.assert_array_equal(got, want, err_msg=key, strict=True)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=key)


@pytest.mark.parametrize("case", list(cases.CASES))
def test_loop_results_equal_the_golden_ones(case, golden, tmp_path):
    got, want = cases.run_case(case, tmp_path / case), golden[case]
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    assert not missing and not extra, f"{case}: arrays missing {missing}, not recorded {extra}"
    failures = []
    for key in sorted(want):
        try:
            _compare(key, got[key], want[key])
        except AssertionError as exc:
            failures.append(str(exc).strip())
    assert not failures, f"{case}: {len(failures)} of {len(want)} arrays differ\n\n" + "\n\n".join(failures[:5])
