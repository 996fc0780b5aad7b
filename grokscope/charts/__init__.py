"""Altair charts of grokking runs and sweeps: one function per figure, each returning an altair chart
(``alt.Chart``/``alt.LayerChart``, ``alt.FacetChart`` when faceted) that notebooks compose with ``|``, ``&``.

Inputs are run stores (paths, directories, :class:`~grokscope.store.reader.RunStore`) or tidy pandas tables,
never torch.  Long curves are downsampled first (:mod:`grokscope.charts.thinning`), so no chart reaches
altair's 5,000-row limit.  Export with :func:`grokscope.report.export.save_chart`.

Charts and their inputs:

- :func:`accuracy_chart`, :func:`loss_chart` (log y), :func:`norm_chart` (L2 of several runs): run stores,
  or a table ``run, split, step, value`` (+ ``lo, hi`` and hyperparameter columns);
- :func:`l2_chart`: ``steps, l2`` arrays of one run and a :class:`~grokscope.analysis.measures.norms.DecayFit`;
- :func:`spectrum_chart`: ``steps (n_ckpt,)`` and ``spectrum (n_ckpt, n_freq + 1)``;
- :func:`key_frequency_chart`: ``freqs, norms`` and the key frequencies;
- :func:`stepwise_chart`: table ``n_train, threshold, step`` (+ ``model_size``);
- :func:`generalization_steps_chart`: table ``n_train, step`` (+ ``model_size``) and the CDS;
- :func:`cds_scaling_chart`: table ``model_size, cds, cds_lo, cds_hi`` and a power-law fit;
- :func:`landscape_chart`: table ``model_size, n_train, accuracy`` and ε.

Examples
--------
>>> from grokscope.charts import accuracy_chart, loss_chart
>>> accuracy_chart("runs/demo.zarr", log_x=True) | loss_chart("runs/demo.zarr")  # doctest: +SKIP
"""

from __future__ import annotations

from grokscope.charts.dynamics import key_frequency_chart, l2_chart, spectrum_chart
from grokscope.charts.runs import (
    ACCURACY,
    LOSS,
    NORM,
    accuracy_chart,
    curves_chart,
    curves_frame,
    loss_chart,
    norm_chart,
)
from grokscope.charts.sweeps import cds_scaling_chart, generalization_steps_chart, landscape_chart, stepwise_chart

__all__ = [
    "ACCURACY", "LOSS", "NORM", "accuracy_chart", "cds_scaling_chart", "curves_chart", "curves_frame",
    "generalization_steps_chart", "key_frequency_chart", "l2_chart", "landscape_chart", "loss_chart",
    "norm_chart", "spectrum_chart", "stepwise_chart",
]
