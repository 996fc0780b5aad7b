"""The task layer beyond modular arithmetic: sizes, presets, splits and nesting (no torch)."""

import numpy as np
import pandas as pd
import pytest

from grokscope.config.presets import from_preset
from grokscope.config.resolve import resolve
from grokscope.data.build import build
from grokscope.data.text import CLS_ID, PAD_ID
from grokscope.errors import ConfigError


def test_task_presets_and_hierarchy_defaults():
    cfg = resolve(from_preset(task="equivariant", model="transformer"))
    assert cfg.preset == "carvalho2024" and cfg.task == "equivariant"
    assert (cfg.n_train, cfg.downsample_frac, cfg.n_downsampled, cfg.noise_std, cfg.n_test) == (2000, 1.0, 1, 0.25,
                                                                                                10_000)
    assert (cfg.alpha, cfg.weight_decay, cfg.lr, cfg.init) == (8.0, 1e-4, 1e-3, "default")  # seed 001 [V]
    assert cfg.n_tokens == 9 and cfg.n_ctx == 10  # one token per Gaussian pair, plus [CLS]
    assert from_preset(task="digits").preset == "omnigrok" and from_preset(task="digits").loss == "mse"
    imdb = from_preset("zhu2024-imdb", data="x.csv")
    assert (imdb.d_model, imdb.n_heads, imdb.d_mlp, imdb.alpha, imdb.weight_decay, imdb.batch_size,
            imdb.beta2, imdb.max_len, imdb.vocab_size) == (128, 4, 512, 10.0, 1e-2, 128, 0.999, 256, 30522)


@pytest.mark.parametrize("overrides, fragment", [
    (dict(task="modular", data="x.csv"), "data applies to --task text"),
    (dict(task="digits", downsample_frac=0.2), "downsample_frac applies to --task equidistant/equivariant"),
    (dict(task="text"), "task text needs --data"),
    (dict(task="equidistant", frac=0.5), "give --n-train, not --frac"),
    (dict(task="equidistant", downsample_frac=1.5), "downsample_frac must be in [0, 1]"),
    (dict(task="images"), "unknown task 'images'"),
    (dict(task="digits", model="transformer", n_tokens=5), "does not divide the 64 input features"),
    (dict(task="digits", n_train=5000), "exceeds the train pool of 1078"),
    # sizes only the hierarchy knows are refused at resolution too: before a store or a progress bar exists
    (dict(task="equidistant", n_downsampled=7), "n_downsampled must be in 0..2"),
    (dict(task="equivariant", n_train=3, downsample_frac=0.0), "0 training samples"),
    (dict(task="equidistant", n_test=5), "smaller than the 8 subclasses"),
    (dict(task="text", data="x.csv", model="mlp"), "task text trains the encoder"),
    (dict(task="digits", model="mlp", n_tokens=8), "n_tokens splits vector inputs"),
    (dict(task="digits", seed=-1), "seeds must be non-negative"),
    (dict(task="modular", split_seed=-3), "seeds must be non-negative"),
])
def test_bad_task_configs(overrides, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        resolve(from_preset(**overrides))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_hierarchy_data_follows_eq1_and_logs_subclasses():
    data = build(from_preset(task="equidistant", n_train=2000, downsample_frac=0.2, n_test=1000))
    counts = np.bincount(data.train_y, minlength=4)
    assert counts.tolist() == [500, 500, 500, 500]  # 84 + 416 per class (eq. 1's worked example)
    assert data.attrs["counts"] == [84, 416] and data.attrs["downsampled"] == [False, True] * 4
    assert data.train_x.shape == (2000, 117) and data.test_x.shape == (1000, 117)
    assert data.group_names == ("1", "2", "4", "8", "16", "32", "64", "128")  # subclass codes
    assert np.bincount(data.test_groups).tolist() == [125] * 8  # balanced test set


def test_digits_split_and_nesting():
    small, large = (build(from_preset(task="digits", n_train=n)) for n in (300, 1000))
    assert large.train_x.shape == (1000, 64) and len(large.test_y) == 1797 - 1078
    assert 0 <= large.train_x.min() and large.train_x.max() <= 1
    assert set(small.train_idx) <= set(large.train_idx)  # nested across sizes for one seed
    assert np.array_equal(small.test_idx, large.test_idx) and not set(large.train_idx) & set(large.test_idx)


def _reviews(path, n=120, labels=("negative", "positive")):
    rng = np.random.default_rng(0)
    words = "the film plot was good bad fine long short actor".split()
    texts = [" ".join(rng.choice(words, 6)) for _ in range(n)]
    pd.DataFrame({"review": texts, "sentiment": [labels[i % len(labels)] for i in range(n)]}).to_csv(path,
                                                                                                  index=False)
    return path


def test_text_pool_vocabulary_is_shared_across_fractions(tmp_path):
    path = str(_reviews(tmp_path / "reviews.csv"))
    small, large = (build(from_preset(task="text", data=path, frac=f, max_len=12, vocab_size=200))
                    for f in (0.3, 1.0))
    assert large.train_x.shape == (90, 12) and len(large.test_y) == 30  # 75 / 25 split of 120 rows
    # [CLS], then 6 words (the vocabulary is large enough for whole words), then padding
    assert (large.train_x[:, 0] == CLS_ID).all() and (large.train_x[:, 1:7] > 3).all()
    assert (large.train_x[:, 7:] == PAD_ID).all()
    assert large.attrs["classes"] == ["negative", "positive"] and large.n_classes == 2
    common = np.isin(large.train_idx, small.train_idx)
    assert np.array_equal(large.train_x[common], small.train_x)  # one vocabulary: same rows, same ids
    assert np.array_equal(large.test_x, small.test_x)


def test_text_test_file_maps_labels_like_the_training_file(tmp_path):
    train = str(_reviews(tmp_path / "train.csv"))
    test = str(_reviews(tmp_path / "test.csv", n=40, labels=("positive", "negative")))
    data = build(from_preset(task="text", data=train, test_data=test, n_train=50, max_len=8, vocab_size=60))
    assert len(data.test_y) == 40 and data.test_y[0] == 1  # "positive" is class 1 in the training file
    with pytest.raises(ConfigError, match="more rows"):
        resolve(from_preset(task="text", data=str(_reviews(tmp_path / "two.csv", n=2)), train_ratio=0.4))
