"""The run config: presets, overrides, validation and the checkpoint schedule."""

import dataclasses

import numpy as np
import pytest

from grokscope.config.presets import PRESETS, from_preset
from grokscope.config.run import RunConfig
from grokscope.errors import ConfigError


def test_round_trip_through_dict():
    cfg = from_preset("nanda2023", seed=3)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_explicit_flags_override_the_preset_and_none_does_not():
    cfg = from_preset("zhu2024", d_model=64, lr=None)
    assert cfg.d_model == 64 and cfg.lr == PRESETS["zhu2024"]["lr"]


def test_explicit_n_train_replaces_a_preset_frac():
    cfg = from_preset("nanda2023", n_train=100)
    assert cfg.n_train == 100 and cfg.frac is None
    with pytest.raises(ConfigError, match="either n_train or frac"):
        from_preset("demo", n_train=10, frac=0.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(op="^"), "unknown op"),
    (dict(frac=0.0), "frac must be in"),
    (dict(frac=1.5), "frac must be in"),
    (dict(d_model=130, n_heads=4), "divisible"),
    (dict(norm="side"), "unknown norm"),
    (dict(device="tpu"), "device must be"),
])
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)


def test_unknown_preset_and_field():
    with pytest.raises(ConfigError, match="unknown preset"):
        from_preset("nope")
    with pytest.raises(ConfigError, match="unknown config field"):
        RunConfig.from_dict({"not_a_field": 1})


def test_checkpoint_schedule_is_log_spaced_early_then_regular():
    cfg = RunConfig(steps=1000, ckpt_every=100, ckpt_early=8)
    steps = cfg.checkpoint_steps()
    assert steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    assert set(range(0, 1001, 100)) <= set(steps.tolist())
    early = steps[(steps > 0) & (steps < 100)]
    assert 4 <= len(early) <= 8 and early[0] == 1
    assert dataclasses.replace(cfg, ckpt_early=0).checkpoint_steps().tolist() == list(range(0, 1001, 100))
