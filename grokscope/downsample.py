"""Downsampling long curves before charting: bucketed min / max / last on a linear or log-spaced step grid.

A run logs every step (100k steps × 5 metrics is common); a chart needs a few hundred points per curve.
The step range is cut into ``n`` buckets, equal-width in steps or in ``log1p(step)`` (log-spaced, so early
steps keep their detail on a log axis).  Each non-empty bucket keeps its *last* point (a real
``(step, value)`` pair, so the line is exact where drawn) and the *min* and *max* inside it (a light band
shows spikes the line skips).  Runs bucketed on one shared grid (:func:`bucket_edges` of the common step
range) land on the same steps, so curves of several seeds can be averaged point by point.

Size budget (stated once, used by every chart):

- ``MAX_POINTS = 400`` points per curve;
- ``CHART_ROWS = 4000`` data rows per chart, below altair's 5,000-row limit (``MaxRowsError``): a chart
  with many curves gives each ``CHART_ROWS // n_curves`` points (at least ``MIN_POINTS``);
- so a report page holds at most ~4,000 rows (≈ 0.4 MB of JSON) per chart on top of the ~0.9 MB of
  inlined Vega JavaScript: measured, a one-run report is 1.1–1.4 MB and eight 100k-step runs with every
  chart 2.3 MB (budget: < 3 MB a page).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["MAX_POINTS", "CHART_ROWS", "MIN_POINTS", "bucket_edges", "bucket_curve", "pick_indices",
           "points_per_curve", "downsample_frame"]

MAX_POINTS = 400  # points per curve
CHART_ROWS = 4000  # data rows per chart (altair raises MaxRowsError above 5,000)
MIN_POINTS = 20  # never fewer points per curve, however many curves share a chart


def points_per_curve(n_curves: int, max_points: int = MAX_POINTS, rows: int = CHART_ROWS) -> int:
    """Points each of ``n_curves`` curves may keep so the chart stays within ``rows``.

    Examples
    --------
    >>> points_per_curve(2), points_per_curve(40), points_per_curve(1000)
    (400, 100, 20)
    """
    return max(MIN_POINTS, min(max_points, rows // max(1, n_curves)))


def bucket_edges(start: float, stop: float, n: int, log: bool = False) -> np.ndarray:
    """``n + 1`` bucket edges covering ``[start, stop]``: equal-width, or equal-width in ``log1p(step)``.

    Examples
    --------
    >>> bucket_edges(0, 100, 4).tolist()
    [0.0, 25.0, 50.0, 75.0, 100.0]
    >>> bucket_edges(0, 99, 2, log=True).round(6).tolist()
    [0.0, 9.0, 99.0]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not stop >= start >= 0:
        raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
    if log:
        return np.expm1(np.linspace(np.log1p(start), np.log1p(stop), n + 1))
    return np.linspace(float(start), float(stop), n + 1)


def _bucket_ids(steps: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bucket of each step: ``edges[i] <= step < edges[i + 1]``, the last bucket closed on the right."""
    ids = np.searchsorted(edges, steps, side="right") - 1
    return np.clip(ids, 0, len(edges) - 2)


def pick_indices(steps: np.ndarray, n: int, log: bool = False) -> np.ndarray:
    """Indices of at most ``n`` of ``steps`` (sorted): the last step in each bucket, plus the first step.

    For choosing which checkpoints a heatmap shows.

    Examples
    --------
    >>> pick_indices(np.arange(10), 3).tolist()
    [0, 4, 9]
    """
    steps = np.asarray(steps, dtype=np.float64)
    if steps.size <= n:
        return np.arange(steps.size)
    ids = _bucket_ids(steps, bucket_edges(steps[0], steps[-1], max(1, n - 1), log))
    last = np.flatnonzero(np.r_[ids[1:] != ids[:-1], True])  # (m,) last index of each non-empty bucket
    return np.unique(np.r_[0, last])


def _bucket_bounds(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each run of equal bucket ids (ids non-decreasing)."""
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # (k,)
    return starts, np.r_[starts[1:] - 1, ids.size - 1]


def bucket_curve(
    steps: np.ndarray, values: np.ndarray, edges: np.ndarray,
    lo: np.ndarray | None = None, hi: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Last value, min and max of one curve in each non-empty bucket.

    Parameters
    ----------
    steps, values : array_like, shape (n,)
        The curve, steps ascending; NaN values are dropped first.
    edges : array_like, shape (m + 1,)
        From :func:`bucket_edges`; steps outside are clipped into the first or last bucket.
    lo, hi : array_like, shape (n,), optional
        Per-point lower / upper values (default ``values``); the bucket keeps min(lo) and max(hi), so
        bucketing an already-bucketed curve keeps its band.

    Returns
    -------
    step, last, lo, hi : ndarray, shape (k,), k <= m
        ``step`` and ``last`` are the bucket's last point.

    Examples
    --------
    >>> s, v, lo, hi = bucket_curve(np.arange(6), np.array([1., 5, 2, 0, 3, 4]), bucket_edges(0, 5, 2))
    >>> s.tolist(), v.tolist(), lo.tolist(), hi.tolist()
    ([2.0, 5.0], [2.0, 4.0], [1.0, 0.0], [5.0, 4.0])
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    lo = values if lo is None else np.asarray(lo, dtype=np.float64)
    hi = values if hi is None else np.asarray(hi, dtype=np.float64)
    ok = ~np.isnan(values)
    steps, values = steps[ok], values[ok]  # (n_ok,)
    lo, hi = np.where(np.isnan(lo[ok]), values, lo[ok]), np.where(np.isnan(hi[ok]), values, hi[ok])
    if steps.size == 0:
        return steps, values, lo, hi
    starts, last = _bucket_bounds(_bucket_ids(steps, np.asarray(edges, dtype=np.float64)))
    return steps[last], values[last], np.minimum.reduceat(lo, starts), np.maximum.reduceat(hi, starts)


def downsample_frame(
    df: pd.DataFrame, by: Sequence[str], n: int, *, log: bool = False, x: str = "step",
    value: str = "value",
) -> pd.DataFrame:
    """Bucket every curve of a tidy table (one curve per combination of ``by``) to at most ``n`` points.

    Curves of at most ``n`` points are kept as they are.  ``df`` has columns ``x``, ``value``, ``by…`` and
    optionally ``lo``, ``hi``; rows with NaN ``value`` are dropped, other columns keep the value of the
    bucket's last row.  All curves share one grid over the table's whole ``x`` range.  Returns a new table
    with the same columns plus ``lo`` and ``hi``.

    Examples
    --------
    >>> df = pd.DataFrame({"run": "a", "step": range(1000), "value": np.linspace(0, 1, 1000)})
    >>> len(downsample_frame(df, ["run"], 50))
    50
    """
    df = df[df[value].notna()]
    if "lo" not in df:
        df = df.assign(lo=df[value])
    if "hi" not in df:
        df = df.assign(hi=df[value])
    df = df.assign(lo=df["lo"].fillna(df[value]), hi=df["hi"].fillna(df[value]))
    if df.empty:
        return df.reset_index(drop=True)
    steps = df[x].to_numpy(dtype=np.float64)
    edges = bucket_edges(max(0.0, float(steps.min())), float(steps.max()), n, log)
    parts = []
    for _, curve in (df.groupby(list(by), sort=False, dropna=False) if by else [((), df)]):
        curve = curve.sort_values(x, kind="stable")
        if len(curve) <= n:  # already small enough: kept as is, so bucketing twice changes nothing
            parts.append(curve)
            continue
        starts, last = _bucket_bounds(_bucket_ids(curve[x].to_numpy(dtype=np.float64), edges))
        part = curve.iloc[last].copy()
        part["lo"] = np.minimum.reduceat(curve["lo"].to_numpy(dtype=np.float64), starts)
        part["hi"] = np.maximum.reduceat(curve["hi"].to_numpy(dtype=np.float64), starts)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
