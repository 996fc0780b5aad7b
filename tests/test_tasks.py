"""Known answers for the modular tasks: sizes from seed 002, operator tables, nested subsets."""

import numpy as np
import pytest

from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.config.run import RunConfig
from grokscope.data.modular import build_task, encode, modular_pairs, nested_subset, split_pool, vocabulary
from grokscope.errors import ConfigError


def test_zhu_split_matches_seed_002_table_1():
    task = build_task(from_preset("zhu2024"))
    assert len(task.pool_idx) == 9576 and len(task.test_idx) == 3193
    assert len(np.intersect1d(task.pool_idx, task.test_idx)) == 0
    assert task.vocab_size == 117  # 0..113, +, =, %
    assert task.tokens.shape == (12769, 6)


@pytest.mark.parametrize("op, check", [
    ("+", lambda a, b, p: (a + b) % p),
    ("-", lambda a, b, p: (a - b) % p),
    ("*", lambda a, b, p: (a * b) % p),
])
def test_operator_tables(op, check):
    operands, c = modular_pairs(op, 7)
    assert len(c) == 49
    assert all(c[i] == check(a, b, 7) for i, (a, b) in enumerate(operands))


def test_division_uses_the_modular_inverse_and_skips_zero():
    operands, c = modular_pairs("/", 7)
    assert len(c) == 7 * 6 and (operands[:, 1] != 0).all()
    assert ((c * operands[:, 1]) % 7 == operands[:, 0]).all()  # c · b ≡ a


def test_division_needs_a_prime():
    with pytest.raises(ConfigError, match="composite"):
        RunConfig(op="/", p=9)


def test_token_layouts():
    ops = np.array([[3, 4]])
    assert encode(ops, 7, "+", "zhu").tolist() == [[3, 8, 4, 10, 7, 9]]  # a + b % 7 =
    assert vocabulary("+", 7, "zhu")[7:] == ("7", "+", "=", "%")
    assert encode(ops, 7, "+", "nanda").tolist() == [[3, 4, 7]]  # a b =, "=" is id p


def test_subsets_nest_across_sizes_for_one_seed():
    pool, _ = split_pool(500, 0.75, 0)
    small, large = nested_subset(pool, 50, seed=3), nested_subset(pool, 200, seed=3)
    assert set(small) <= set(large)
    assert set(nested_subset(pool, 50, seed=4)) != set(small)


def test_split_is_fixed_by_split_seed_not_seed():
    a, b = build_task(from_preset("demo", seed=1)), build_task(from_preset("demo", seed=2))
    assert np.array_equal(a.test_idx, b.test_idx)


def test_resolve_fills_sizes():
    cfg = resolve(from_preset("zhu2024", frac=0.5))
    assert cfg.n_train == 4788 and cfg.frac == 0.5 and cfg.d_mlp == 512 and cfg.n_ctx == 128
    with pytest.raises(ConfigError, match="exceeds the train pool of 9576"):
        resolve(from_preset("zhu2024", n_train=9577))
