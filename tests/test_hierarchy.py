"""Known answers for seed 001's class hierarchies: code tables, distances, eq. 1, balanced test set, nesting."""

import itertools
import json

import numpy as np
import pytest

from grokscope.data.hierarchy import (
    DEFAULT_NOISE_STD,
    HIERARCHIES,
    N_PAIRS,
    PAIR_DIM,
    build_hierarchy,
    code_means,
    downsampled,
    hamming,
    imbalance_counts,
    pair_means,
    subclass_codes,
)
from grokscope.errors import ConfigError

SIGMA = DEFAULT_NOISE_STD


def build(kind="equidistant", n_train=2000, f=0.2, n_down=1, noise=SIGMA, n_test=1000, seed=0, split_seed=0):
    return build_hierarchy(kind, n_train, f, n_down, noise, n_test, seed=seed, split_seed=split_seed)


def test_code_tables():
    assert subclass_codes("equidistant").tolist() == [[1, 2], [4, 8], [16, 32], [64, 128]]
    eqv = subclass_codes("equivariant")
    assert eqv.shape == (4, 10) and eqv.dtype == np.int64
    assert eqv[:, 0].tolist() == [63, 240, 323, 396]
    assert eqv[0].tolist() == [63, 62, 61, 59, 55, 47, 31, 127, 191, 319]  # 63 ^ 2^i, i = 0…8
    assert len(np.unique(eqv)) == 40 and eqv.max() < 2 ** N_PAIRS


def test_hamming_is_popcount_of_xor():
    a, b = np.arange(512), np.arange(512)[::-1]
    assert hamming(a, b).tolist() == [bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b)]
    assert hamming(np.array([[0], [511]]), np.array([0, 511])).tolist() == [[0, 9], [9, 0]]  # broadcasts


def test_equidistant_subclasses_are_all_two_apart():
    codes = subclass_codes("equidistant").ravel()
    d = hamming(codes[:, None], codes[None, :])  # (8, 8)
    assert (d[~np.eye(8, dtype=bool)] == 2).all()


def test_equivariant_distances():
    table = subclass_codes("equivariant")
    d = hamming(table[:, :, None, None], table[None, None, :, :])  # (4, 10, 4, 10)
    same = np.eye(4, dtype=bool)[:, None, :, None].repeat(10, 1).repeat(10, 3)
    assert d[same].max() == 2 and d[~same].min() == 4
    centres = table[:, 0]
    assert hamming(centres[:, None], centres[None, :])[~np.eye(4, dtype=bool)].tolist() == [6] * 12
    assert (hamming(table[:, 1:], table[:, :1]) == 1).all()


def test_pair_means_are_one_apart_and_fixed_by_split_seed():
    m = pair_means(3)
    assert m.shape == (N_PAIRS, 2, PAIR_DIM) and m.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(m[:, 1] - m[:, 0], axis=1), 1.0)
    np.testing.assert_allclose(m[:, 0], -m[:, 1])  # centred on the origin
    np.testing.assert_array_equal(pair_means(3), m)
    assert not np.allclose(pair_means(4), m)


def test_code_means_lie_sqrt_hamming_apart():
    codes = np.array([0, 1, 63, 240, 511])
    mu = code_means(codes, pair_means(0))  # (5, 117)
    dist = np.linalg.norm(mu[:, None] - mu[None, :], axis=-1)
    np.testing.assert_allclose(dist ** 2, hamming(codes[:, None], codes[None, :]), atol=1e-12)


@pytest.mark.parametrize("n, f, n_down, n_rest, expected", [
    (2000, 0.2, 4, 4, (84, 416)),  # the paper's example: 0.2·2000/4.8 = 83.3 → 84; 2000/4.8 = 416.7 → 416
    (2000, 0.0, 4, 4, (0, 500)),  # f = 0: the down-sampled subclasses vanish
    (2000, 1.0, 4, 4, (250, 250)),  # f = 1: balanced
    (2000, 1.0, 4, 36, (50, 50)),  # balanced equivariant
    (220, 0.1, 4, 4, (5, 50)),  # exact integers in floats 4.999…/49.999… stay 5 and 50
    (1596, 0.05, 4, 4, (19, 380)),  # 19.000…04 must not round up to 20
    (2000, 0.5, 4, 0, (500, 1000)),  # every subclass down-sampled: s_s = ⌈γ_D/γ_s⌉
])
def test_imbalance_counts_eq_1(n, f, n_down, n_rest, expected):
    assert imbalance_counts(n, f, n_down, n_rest) == expected


def test_downsampled_are_the_last_subclasses_of_each_class():
    assert downsampled("equidistant", 1).tolist() == [[False, True]] * 4
    eqv = downsampled("equivariant", 3)
    assert eqv.shape == (4, 10) and (eqv[:, 7:]).all() and not eqv[:, :7].any()
    assert not downsampled("equivariant", 9)[:, 0].any() and downsampled("equivariant", 10).all()


@pytest.mark.parametrize("kind, n_down, f", [
    ("equidistant", 1, 0.2),
    ("equivariant", 1, 0.05),
    ("equivariant", 4, 0.3),
])
def test_built_counts_per_subclass_match_eq_1(kind, n_down, f):
    h = build(kind, n_down=n_down, f=f)
    n_sub = subclass_codes(kind).shape[1]
    down = downsampled(kind, n_down).ravel()
    s_s, s_r = imbalance_counts(2000, f, int(down.sum()), int((~down).sum()))
    assert h.counts == (s_s, s_r)
    per_sub = np.bincount(h.train_sub, minlength=len(h.codes))
    np.testing.assert_array_equal(per_sub, np.where(down, s_s, s_r))
    np.testing.assert_array_equal(h.train_y, h.train_sub // n_sub)
    assert (np.diff(h.train_sub) >= 0).all()  # ordered class by class, subclass by subclass
    assert h.train_x.shape == (s_s * down.sum() + s_r * (~down).sum(), 117) and h.train_x.dtype == np.float32
    assert h.train_y.dtype == h.train_sub.dtype == np.int64
    np.testing.assert_array_equal(h.codes, subclass_codes(kind).ravel())
    np.testing.assert_array_equal(h.is_downsampled, down)


def test_f_zero_leaves_no_down_sampled_training_sample():
    h = build(f=0.0)
    assert h.counts == (0, 500) and not h.is_downsampled[h.train_sub].any()
    assert h.is_downsampled[h.test_sub].sum() == 500  # ... while the test set still holds them


def test_balanced_test_set_shared_by_the_split_seed():
    h = build("equivariant", n_test=10_003)  # 40 subclasses: 250 each, the 3 left over to the first three
    np.testing.assert_array_equal(np.bincount(h.test_sub), [251] * 3 + [250] * 37)
    np.testing.assert_array_equal(h.test_y, h.test_sub // 10)
    other_seed = build("equivariant", n_test=10_003, seed=7, f=0.5)
    np.testing.assert_array_equal(other_seed.test_x, h.test_x)  # every run of a study shares one test set
    assert not np.array_equal(other_seed.train_x[:100], h.train_x[:100])
    other_split = build("equivariant", n_test=10_003, split_seed=1)
    assert not np.allclose(other_split.test_x, h.test_x)


def test_training_sets_nest_across_sizes_for_one_seed():
    small, large = build(n_train=500), build(n_train=3000)
    for s in range(8):
        a, b = small.train_x[small.train_sub == s], large.train_x[large.train_sub == s]
        assert 0 < len(a) < len(b)
        np.testing.assert_array_equal(a, b[: len(a)])


def test_sample_means_land_on_the_constructed_means():
    # 4,000 samples per subclass: each coordinate of a sample mean has std σ/√4000 ≈ 0.004; 117·8 coordinates,
    # so a 6-std bound (0.024) is missed with probability ~1e-6
    h = build(n_train=32_000, f=1.0, noise=SIGMA, split_seed=5)
    mu = code_means(h.codes, pair_means(5))  # (8, 117)
    sample = np.stack([h.train_x[h.train_sub == s].mean(0) for s in range(8)])
    assert np.abs(sample - mu).max() < 6 * SIGMA / np.sqrt(4000)
    resid = h.train_x - mu[h.train_sub]
    assert abs(resid.std() / SIGMA - 1) < 0.01  # 3.7M residuals: relative std error ~4e-4


def test_attrs_are_json_able_and_describe_the_draw():
    h = build("equivariant", n_train=1000, f=0.1, n_down=2)
    a = json.loads(json.dumps(h.attrs()))
    assert a["kind"] == "equivariant" and a["n_train"] == len(h.train_y) and a["counts"] == list(h.counts)
    assert a["subclass_class"] == np.repeat(np.arange(4), 10).tolist() and len(a["codes"]) == 40
    assert sum(a["downsampled"]) == 8 and a["n_downsampled"] == 2 and a["noise_std"] == SIGMA
    assert "u_i" in a["mean_rule"]


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(kind="tree"), "unknown hierarchy"),
    (dict(f=1.5), "downsample_frac"),
    (dict(f=-0.1), "downsample_frac"),
    (dict(n_down=3), "n_downsampled"),  # equidistant has 2 subclasses per class
    (dict(kind="equivariant", n_down=-1), "n_downsampled"),
    (dict(n_train=0), "0 training samples"),
    (dict(n_train=3, f=0.0), "0 training samples"),  # ⌊3/4⌋ = 0 (with f = 0.2, ⌈0.6/4.8⌉ = 1 would survive)
    (dict(n_down=2, f=0.0), "no subclass can be sampled"),
    (dict(noise=0.0), "noise_std"),
    (dict(noise=float("nan")), "noise_std"),
    (dict(n_test=7), "n_test"),
    (dict(seed=-1), "non-negative"),
])
def test_bad_input_is_a_one_line_config_error(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment) as info:
        build(**kwargs)
    assert "\n" not in str(info.value)


def test_every_kind_builds():
    for kind, n_down in itertools.product(HIERARCHIES, (0, 1)):
        h = build(kind, n_down=n_down, n_train=400, n_test=400)
        assert np.isfinite(h.train_x).all() and len(h.test_y) == 400
