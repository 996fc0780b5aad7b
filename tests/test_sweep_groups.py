"""Stacked groups of a sweep: same shape, at most max_size, and data sizes close enough that padding every
member to the group's largest wastes at most max_padding of the rows (issue: ~35 % wasted over 30 … 100 %)."""

import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app
from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.sweeps.grid import MAX_PADDING, groups, padding

# examples/cds_cpu's grid: p = 31, 60 % of the 961 pairs as the pool (576), 8 sizes × 3 seeds
FRACS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
RUNS = {f"frac={f}_seed={s}": from_preset("demo", p=31, train_ratio=0.6, frac=f, seed=s) for f in FRACS
        for s in range(3)}


def test_the_cds_grid_as_one_group_pads_a_third_of_its_rows():
    (one,) = groups(RUNS, max_size=64, max_padding=1.0)
    sizes = [resolve(RUNS[r]).n_train for r in one]
    assert sorted(set(sizes)) == [173, 230, 288, 346, 403, 461, 518, 576]
    assert padding([RUNS[r] for r in one]) == pytest.approx(1 - sum(sizes) / (24 * 576))
    assert padding([RUNS[r] for r in one]) == pytest.approx(0.3500, abs=1e-4)


def test_groups_by_data_size_keep_padding_under_the_bound():
    found = groups(RUNS, max_size=64)
    assert sorted(r for g in found for r in g) == sorted(RUNS)  # every run once
    assert all(padding([RUNS[r] for r in g]) <= MAX_PADDING for g in found)
    # largest first, greedy; a size's seeds may straddle two groups
    assert [[resolve(RUNS[r]).n_train for r in g] for g in found] == [
        [576, 576, 576, 518, 518, 518, 461, 461], [461, 403, 403, 403], [346, 346, 346, 288, 288, 288],
        [230, 230, 230, 173, 173], [173]]
    rows = sum(len(g) * resolve(RUNS[g[0]]).n_train for g in found)  # what the five groups compute
    wasted = 1 - sum(resolve(c).n_train for c in RUNS.values()) / rows
    assert wasted == pytest.approx(0.0879, abs=1e-4)  # 0.350 as one group


def test_zero_padding_groups_equal_sizes_and_max_size_splits_them():
    found = groups(RUNS, max_size=2, max_padding=0.0)
    assert [len(g) for g in found] == [2, 1] * 8
    assert all(len({resolve(RUNS[r]).n_train for r in g}) == 1 for g in found)


def test_other_shapes_never_share_a_group():
    runs = {**RUNS, "wide": from_preset("demo", p=31, train_ratio=0.6, frac=1.0, d_model=256)}
    assert ["wide"] in groups(runs, max_size=64)


def test_max_padding_out_of_range_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["sweep", "--preset", "demo", "--steps", "2", "--max-padding", "1.5",
                                      "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and "--max-padding must be in [0, 1]" in result.stderr
    assert not (tmp_path / "s").exists()
