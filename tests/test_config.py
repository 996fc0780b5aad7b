"""The run config: presets, overrides, validation and the checkpoint schedule."""

import dataclasses

import numpy as np
import pytest

from grokscope.config.presets import PRESETS, from_preset
from grokscope.config.resolve import checkpoint_steps
from grokscope.config.run import ROLES, RunConfig, field_names
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
    steps = checkpoint_steps(cfg)
    assert steps[0] == 0 and steps[-1] == 1000
    assert np.all(np.diff(steps) > 0)
    assert set(range(0, 1001, 100)) <= set(steps.tolist())
    early = steps[(steps > 0) & (steps < 100)]
    assert 4 <= len(early) <= 8 and early[0] == 1
    assert checkpoint_steps(dataclasses.replace(cfg, ckpt_early=0)).tolist() == list(range(0, 1001, 100))


# --- field roles: declared once on the fields, read by every consumer ---------------------------------------

def test_field_roles_give_the_key_sets_the_consumers_kept_by_hand_before():
    """Known answers: the lists that sweeps, the step-wise analysis and analyze kept (until field metadata)."""
    from grokscope.analysis.runners.stepwise import IGNORED_KEYS, MODEL_KEYS, SIZE_KEYS, TASK_KEYS
    from grokscope.analysis.runners.summary import CONFIG_KEYS, MODULAR_KEYS
    from grokscope.sweeps.grid import MEMBER_FIELDS

    assert set(MEMBER_FIELDS) == {"seed", "n_train", "frac", "downsample_frac", "lr", "weight_decay", "alpha",
                                  "init_std", "beta1", "beta2"}
    assert set(TASK_KEYS) == {"task", "op", "p", "input_format", "train_ratio", "split_seed", "noise_std", "n_test",
                              "data", "test_data", "text_col", "label_col", "max_len", "vocab_size"}
    assert SIZE_KEYS == ("n_train", "frac")
    assert MODEL_KEYS == ("model", "n_layers", "d_model", "n_heads", "d_mlp", "act", "norm", "tied", "n_ctx",
                          "n_tokens")
    assert set(IGNORED_KEYS) == {"seed", "device", "preset", "ckpt_every", "ckpt_early", "eval_every"}
    assert CONFIG_KEYS == ("task", "op", "p", "input_format", "model", "n_layers", "d_model", "n_train", "frac",
                           "downsample_frac", "weight_decay", "alpha", "lr", "seed")  # analyze's column order
    assert MODULAR_KEYS == ("op", "p", "input_format")


def test_every_field_declares_a_known_role_and_its_help():
    for f in dataclasses.fields(RunConfig):
        assert f.metadata["role"] in ROLES, f.name
        assert f.metadata["help"], f"{f.name} has no help text (the CLI option's help)"
    assert set(field_names()) == {f.name for f in dataclasses.fields(RunConfig)}
    assert sum(len(field_names(role)) for role in ROLES) == len(field_names())


META = {f.name: f.metadata for f in dataclasses.fields(RunConfig)}


def _context(name: str) -> dict:
    """Values that make a task-specific field legal: its first task and that task's required fields."""
    task = (META[name]["tasks"] or ("modular",))[0]
    return {"task": task, **({"data": "x.csv"} if task == "text" else {}),
            **({"model": "transformer"} if name == "n_tokens" else {})}


@pytest.mark.parametrize("name", field_names(positive=True))
def test_positive_fields_refuse_zero_and_below(name):
    with pytest.raises(ConfigError, match=f"{name} must be positive"):
        RunConfig(**{**_context(name), name: 0})
    if "int" in str(RunConfig.__dataclass_fields__[name].type):  # integers: at least 1, not any positive value
        with pytest.raises(ConfigError, match=f"{name} must be positive"):
            RunConfig(**{**_context(name), name: 0.5})


def test_moduli_is_kept_on_other_tasks_like_before():
    """singh2025's moduli travel with the preset; another task keeps them (only singh encodes them)."""
    assert RunConfig(task="digits", input_format="singh", p=13, moduli="13,11").moduli == "11,13"


# unset by default and meaningful for some tasks only (moduli is refused earlier, by its own input-format rule)
TASK_OWN = [n for n in field_names() if META[n]["tasks"] and getattr(RunConfig, n) is None and n != "moduli"]


@pytest.mark.parametrize("name", TASK_OWN)
def test_task_specific_fields_are_refused_on_other_tasks(name):
    value = "x.csv" if name in field_names(tasks=("text",)) and name not in ("max_len", "vocab_size") else 1
    other = "modular" if "modular" not in META[name]["tasks"] else "digits"
    with pytest.raises(ConfigError, match=f"{name} applies to --task"):
        RunConfig(task=other, **{name: value})
