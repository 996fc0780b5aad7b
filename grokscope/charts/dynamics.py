"""Charts of weight dynamics: the L2-norm trajectory with its exponential-decay fit (seed 002, eq. 6), the
embedding's Fourier spectrum over checkpoints and the key-frequency bars (Nanda et al.).

Inputs are numpy arrays (as :mod:`grokscope.analysis.measures.norms` and
:mod:`grokscope.analysis.measures.fourier` produce them), never torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from grokscope.charts.base import HEIGHT, WIDTH, round_sig, sized, step_x, tidy_table
from grokscope.charts.runs import mark_layers, marks_frame
from grokscope.charts.thinning import CHART_ROWS, MAX_POINTS, decimate, pick_indices
from grokscope.errors import GrokscopeError

__all__ = ["l2_chart", "spectrum_chart", "key_frequency_chart"]

FIT_POINTS = 100  # points drawn along the fitted decay


def _fit_value(fit: Any, name: str) -> float:
    value = fit[name] if isinstance(fit, Mapping) else getattr(fit, name)
    return float(value)


def l2_chart(
    steps: np.ndarray, l2: np.ndarray, fit: Any = None, *, marks: Mapping[str, Any] | None = None,
    log_x: bool = False, width: int = WIDTH, height: int = HEIGHT,
    title: str | None = "L2 norm of the weights",
) -> alt.LayerChart:
    """The total weight norm vs step, with the fitted decay ``w0·exp(−γ(t − start))`` over its window.

    Parameters
    ----------
    steps, l2 : array_like, shape (n,)
        Steps and the norm at each (NaN where not logged); downsampled to ``MAX_POINTS`` real points over
        the step values, each bucket's min and max among them (:func:`grokscope.charts.thinning.decimate`).
    fit : :class:`grokscope.analysis.measures.norms.DecayFit` or a mapping with ``w0, gamma, start, stop``, optional.
    marks : a summary row (``memorization_step``, ``generalization_step``) to mark with rules.
    log_x : log step axis (step 0 dropped).

    Examples
    --------
    >>> from grokscope.analysis.measures.norms import fit_exponential_decay
    >>> t = np.arange(5000.0); w = 40 * np.exp(-1e-3 * t)
    >>> chart = l2_chart(t, w, fit_exponential_decay(t, w, start=500))
    """
    steps = np.asarray(steps, dtype=np.float64)
    l2 = np.asarray(l2, dtype=np.float64)
    if steps.ndim != 1 or l2.shape != steps.shape or steps.size == 0:
        raise GrokscopeError(f"l2_chart needs steps and l2 of one equal length, got {steps.shape} and "
                             f"{l2.shape}")
    s, v = decimate(steps, l2, MAX_POINTS, log=log_x)
    parts = [pd.DataFrame({"kind": "curve", "series": "L2 norm", "step": s, "value": round_sig(v)})]
    series = ["L2 norm"]
    if fit is not None:
        w0, gamma, start, stop = (_fit_value(fit, k) for k in ("w0", "gamma", "start", "stop"))
        label = f"fit: w0 = {w0:.4g}, γ = {gamma:.3g}/step over [{start:g}, {stop:g}]"
        t = (np.geomspace(max(start, 1.0), stop, FIT_POINTS) if log_x and stop > max(start, 1.0)
             else np.linspace(start, stop, FIT_POINTS))
        parts.append(pd.DataFrame({"kind": "fit", "series": label, "step": t,
                                   "value": round_sig(w0 * np.exp(-gamma * (t - start)))}))
        series.append(label)
    if marks is not None:
        row = {k: v for k, v in marks.items() if k != "run"}  # a summary row of this one run
        parts.append(marks_frame([row], ["L2 norm"]).rename(columns={"run": "series"}).assign(kind="mark"))
    table = tidy_table(parts)
    if log_x:
        table = table[table["step"] > 0]

    legend = alt.Legend(orient="top", symbolType="stroke", labelLimit=500)
    color = alt.Color("series:N", title=None, legend=legend,
                      scale=alt.Scale(domain=series, range=["#4c78a8", "#f58518"][: len(series)]))
    base = alt.Chart()
    curve = base.transform_filter("datum.kind == 'curve'")
    y = alt.Y("value:Q", title="L2 norm", scale=alt.Scale(zero=False))
    tooltip = ["step:Q", alt.Tooltip("value:Q", format=".4g")]
    layers = [curve.mark_line(strokeWidth=1.6).encode(x=step_x(log_x), y=y, color=color, tooltip=tooltip)]
    if fit is not None:
        layers.append(base.transform_filter("datum.kind == 'fit'").mark_line(strokeDash=[6, 3], strokeWidth=2)
                      .encode(x=step_x(log_x), y=y, color=color))
    if marks is not None:
        layers += mark_layers(base, alt.value("#555"), table)
    return sized(alt.layer(*layers, data=table), width, height, title)


def spectrum_chart(
    steps: np.ndarray, spectrum: np.ndarray, *, include_constant: bool = False, log_x: bool = False,
    width: int = WIDTH, height: int = HEIGHT, title: str | None = "embedding Fourier spectrum",
) -> alt.LayerChart:
    """Heatmap of a Fourier spectrum over checkpoints: step × frequency k, colour = norm.

    Parameters
    ----------
    steps : array_like, shape (n_ckpt,), ascending
    spectrum : array_like, shape (n_ckpt, n_freq + 1)
        Column k is frequency k, column 0 the constant term (as
        :func:`grokscope.analysis.measures.fourier.embedding_spectrum` returns); the constant is left out
        unless ``include_constant``.  At most ``CHART_ROWS // n_freq``
        checkpoints are drawn (:func:`grokscope.charts.thinning.pick_indices`); each cell spans from its
        checkpoint to the next drawn one.

    Examples
    --------
    >>> chart = spectrum_chart([0, 100, 200], np.ones((3, 57)))
    """
    steps = np.asarray(steps, dtype=np.float64)
    spectrum = np.asarray(spectrum, dtype=np.float64)
    if spectrum.ndim != 2 or steps.shape != spectrum.shape[:1] or steps.size == 0 or spectrum.shape[1] < 2:
        raise GrokscopeError(f"spectrum_chart needs steps (n_ckpt,) and spectrum (n_ckpt, n_freq + 1), got "
                             f"{steps.shape} and {spectrum.shape}")
    first = 0 if include_constant else 1
    freqs = np.arange(first, spectrum.shape[1])  # (n_freq,)
    if log_x:
        keep = steps > 0
        steps, spectrum = steps[keep], spectrum[keep]
        if steps.size == 0:
            raise GrokscopeError("spectrum_chart: no checkpoint after step 0 to draw on a log axis")
    idx = pick_indices(steps, max(2, CHART_ROWS // len(freqs)), log_x)  # (n_kept,)
    start = steps[idx]
    gap = np.diff(start)
    end = np.r_[start[1:], start[-1] + (gap[-1] if gap.size else 1.0)]  # (n_kept,)
    norm = spectrum[idx][:, first:]  # (n_kept, n_freq)
    table = pd.DataFrame({
        "step": np.repeat(start, len(freqs)), "end": np.repeat(end, len(freqs)),
        "k": np.tile(freqs, len(start)), "norm": round_sig(norm.ravel()),
    })
    table["k_lo"], table["k_hi"] = table["k"] - 0.5, table["k"] + 0.5
    viridis = alt.Scale(scheme="viridis")
    chart = alt.Chart(table).mark_rect(strokeWidth=0.8).encode(  # a stroke of the fill's colour: no seams
        x=step_x(log_x, grid=False), x2="end:Q",
        y=alt.Y("k_lo:Q", title="frequency k", axis=alt.Axis(grid=False, tickMinStep=1, format="d"),
                scale=alt.Scale(domain=[freqs[0] - 0.5, freqs[-1] + 0.5], nice=False, zero=False)),
        y2="k_hi:Q",
        color=alt.Color("norm:Q", title="norm", scale=viridis),
        stroke=alt.Stroke("norm:Q", scale=viridis, legend=None),
        tooltip=["step:Q", "k:Q", alt.Tooltip("norm:Q", format=".4g")],
    )
    return sized(chart, width, height, title)


def key_frequency_chart(
    freqs: np.ndarray, norms: np.ndarray, key: np.ndarray | None = None, *, width: int = WIDTH,
    height: int = 220, title: str | None = "embedding norm per frequency",
) -> alt.Chart:
    """Bars of the norm at each frequency; the ``key`` frequencies (if given) highlighted.

    Examples
    --------
    >>> chart = key_frequency_chart(np.arange(1, 57), np.ones(56), key=[4, 14])
    """
    freqs = np.asarray(freqs)
    norms = np.asarray(norms, dtype=np.float64)
    if freqs.ndim != 1 or norms.shape != freqs.shape or freqs.size == 0:
        raise GrokscopeError(f"key_frequency_chart needs freqs and norms of one equal length, got "
                             f"{freqs.shape}, {norms.shape}")
    is_key = np.isin(freqs, np.asarray(key if key is not None else [], dtype=freqs.dtype))
    table = pd.DataFrame({"k": freqs, "norm": norms,
                          "frequency": np.where(is_key, "key frequency", "other")})
    if key is not None:
        color = alt.Color("frequency:N", title=None, legend=alt.Legend(orient="top"),
                          scale=alt.Scale(domain=["key frequency", "other"], range=["#f58518", "#9aa5b1"]))
    else:
        color = alt.value("#4c78a8")
    chart = alt.Chart(table).mark_bar().encode(
        x=alt.X("k:O", title="frequency k", axis=alt.Axis(labelAngle=0, labelOverlap=True)),
        y=alt.Y("norm:Q", title="norm"), color=color,
        tooltip=["k:O", alt.Tooltip("norm:Q", format=".4g"), "frequency:N"],
    )
    return sized(chart, width, height, title)
