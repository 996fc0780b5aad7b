"""First-crossing steps on constructed curves: never reached is None, never 0."""

import numpy as np
import pytest

from grokscope.analysis.measures.onset import (
    Criteria,
    first_step,
    generalization_step,
    grokking_delay,
    memorization_step,
)
from grokscope.errors import ConfigError

STEPS = np.arange(0, 1000)
TRAIN = np.clip(STEPS / 100, 0, 1)  # reaches 1.0 at step 100
TEST = np.clip((STEPS - 600) / 200, 0, 1)  # reaches 0.95 at step 790


def test_crossings_on_known_curves():
    curves = {"train_acc": TRAIN, "test_acc": TEST}
    assert memorization_step(STEPS, curves, Criteria()) == 99  # 0.99 at step 99
    assert generalization_step(STEPS, curves, Criteria()) == 790
    assert grokking_delay(99, 790) == (691, 790 / 99)


def test_never_reached_is_none_not_zero():
    assert first_step(STEPS, np.zeros(1000), 0.5) is None
    assert generalization_step(STEPS, {"test_acc": TEST * 0.5}, Criteria()) is None
    assert grokking_delay(None, 10) == (None, None)


def test_unevaluated_steps_are_skipped():
    values = np.full(10, np.nan)
    values[[0, 5]] = [0.1, 0.97]
    assert first_step(np.arange(10) * 10, values, 0.95) == 50


def test_loss_thresholds_replace_accuracy():
    loss = np.exp(-STEPS / 100)  # below 0.01 from step 461 on
    crit = Criteria(test_loss_below=0.01)
    assert generalization_step(STEPS, {"test_loss": loss}, crit) == 461
    with pytest.raises(ConfigError, match="logs no test_loss"):
        generalization_step(STEPS, {"test_acc": TEST}, crit)
