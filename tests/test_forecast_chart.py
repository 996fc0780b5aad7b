"""The forecast chart: the prediction made at the decision point over the observed curve, and the first
point at which the advice turned to stop; in the report for runs the packaged model can forecast."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.charts.forecast import forecast_chart, stop_step
from grokscope.cli.main import app
from grokscope.errors import GrokscopeError


def _rows(ps, threshold=0.2, every=100):
    """Forecast rows at steps every, 2·every, … with P = ps (stop where P < threshold)."""
    return [{"at": every * (i + 1), "p_generalize": p, "stop_threshold": threshold,
             "advice": "stop" if p < threshold else "continue", "predicted_generalization_step": 1500,
             "interval_80": [1200, 2600]} for i, p in enumerate(ps)]


def _texts(chart):
    spec = json.dumps(chart.to_dict())
    return spec


def test_the_first_stop_advice_and_the_decision_forecast_are_drawn():
    rows = _rows([0.5, 0.3, 0.1, 0.4, 0.05])  # stop first at the third point (step 300)
    assert stop_step(rows) == 300
    spec = _texts(forecast_chart(np.arange(2001), np.linspace(0, 1, 2001), rows, decision=200))
    assert "advice turned to stop at step 300" in spec
    assert "forecast made at step 200: P = 0.30" in spec
    assert "predicted generalization: step 1500 (80 %: 1200\\u20132600)" in spec
    assert '"hi": 2000' in spec.replace(".0", "")  # the band is cut at the run's last step


def test_no_stop_rule_when_the_advice_never_turned_and_abstentions_are_skipped():
    rows = _rows([0.5, 0.9]) + [{"at": 300, "p_generalize": None, "advice": None}]
    assert stop_step(rows) is None
    spec = _texts(forecast_chart(np.arange(1000), np.ones(1000), rows, decision=100))
    assert "advice turned to stop" not in spec


def test_a_decision_without_a_forecast_is_refused():
    with pytest.raises(GrokscopeError, match="decision step 250"):
        forecast_chart(np.arange(1000), np.ones(1000), _rows([0.5]), decision=250)


def test_the_report_draws_the_forecast_of_a_run(make_report_run, tmp_path):
    run = make_report_run(tmp_path / "a.zarr")  # 2,000 steps logged, no configured budget: the last step
    out = tmp_path / "forecast.json"
    result = CliRunner().invoke(app, ["report", str(run), "--chart", "forecast", "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = out.read_text()
    assert "forecast made at step 200" in spec and "forecast from 10% of 2000 steps" in spec
