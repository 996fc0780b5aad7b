"""Downsampling long curves before charting: real points at each bucket's extremes, on a linear or
log-spaced grid of *step values*.

A run logs every step (100k steps × 5 metrics is common), or every 100th (imports); a chart needs a few
hundred points per curve.  The curve's step range (never its row count) is cut into buckets, equal-width
in steps or in ``log1p(step)`` (log-spaced, so early steps keep their detail on a log axis).  Each
non-empty bucket keeps real ``(step, value)`` points: its *last* point, the point of its *min* and of its
*max* (and, for curves with a ``lo``/``hi`` band, the points of the band's min and max), plus the curve's
first point.  The drawn line therefore passes through every extreme: a one-step spike in a 100k-step curve
stays in the line, not only in a band.  Kept points differ between runs (each has its own extremes);
charts that average runs interpolate them onto the union of their steps (``charts_runs``).

Size budget (stated once, used by every chart):

- ``MAX_POINTS = 400`` points per curve (a curve with ≤ 400 finite points is kept whole; a longer one
  gets ``(400 − 1) // 3 = 133`` buckets of at most 3 points, or ``// 5`` with a band, and more buckets
  where they keep fewer points, up to the budget: :func:`fit_indices`);
- ``CHART_ROWS = 4000`` data rows per chart, below altair's 5,000-row limit (``MaxRowsError``): a chart
  with many curves gives each ``CHART_ROWS // n_curves`` points (at least ``MIN_POINTS``);
- so a report page holds at most ~4,000 rows (≈ 0.4 MB of JSON) per chart on top of the ~0.9 MB of
  inlined Vega JavaScript: measured, a report of one 100k-step run is 1.07 MB and of eight 100k-step runs
  (six charts) 1.75 MB (budget: < 3 MB a page).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["MAX_POINTS", "CHART_ROWS", "MIN_POINTS", "bucket_edges", "n_buckets", "extreme_indices",
           "fit_indices", "decimate", "pick_indices", "points_per_curve", "downsample_frame"]

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


def n_buckets(n: int, band: bool = False) -> int:
    """Buckets that keep a curve within ``n`` points: each keeps at most 3 points (5 with a band), plus the
    curve's first point."""
    return max(1, (n - 1) // (5 if band else 3))


def extreme_indices(steps: np.ndarray, values: np.ndarray, edges: np.ndarray,
                    lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Indices of the points kept: the first point, and in each non-empty bucket the last point and the
    first points of its min and max value (and of min ``lo`` and max ``hi``); ascending, unique.

    Parameters
    ----------
    steps, values : array_like, shape (n,)
        The curve's finite points, steps ascending.
    edges : array_like, shape (m + 1,)
        From :func:`bucket_edges`; steps outside are clipped into the first or last bucket.
    lo, hi : array_like, shape (n,), optional
        A band around ``values`` (e.g. min/max over seeds) whose extremes are kept too.

    Examples
    --------
    >>> extreme_indices(np.arange(10), np.array([3., 1, 4, 1, 5, 9, 2, 6, 5, 3]), bucket_edges(0, 10, 2)).tolist()
    [0, 1, 4, 5, 6, 9]
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0, np.int64)
    starts, last = _bucket_bounds(_bucket_ids(np.asarray(steps, dtype=np.float64),
                                              np.asarray(edges, dtype=np.float64)))
    bucket = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, values.size]))  # (n,) bucket of each
    extremes = [(values, np.minimum), (values, np.maximum)]
    extremes += [(np.asarray(lo, dtype=np.float64), np.minimum)] if lo is not None else []
    extremes += [(np.asarray(hi, dtype=np.float64), np.maximum)] if hi is not None else []
    keep = [np.zeros(1, np.int64), last]
    for curve, reduce in extremes:
        hit = np.flatnonzero(curve == reduce.reduceat(curve, starts)[bucket])  # (≥ m,) extremes of each bucket
        keep.append(hit[np.unique(bucket[hit], return_index=True)[1]])  # the first one per bucket
    return np.unique(np.concatenate(keep))


def fit_indices(steps: np.ndarray, values: np.ndarray, n: int, span: tuple[float, float], *, log: bool = False,
                lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """:func:`extreme_indices` of at most ``n`` points over buckets spanning ``span``: :func:`n_buckets`
    of them, or more where buckets keep fewer than 3 (5) points (a monotonic curve keeps 2 per bucket),
    so the curve uses most of its budget."""
    def kept(m: int) -> np.ndarray:
        return extreme_indices(steps, values, bucket_edges(*span, m, log), lo, hi)

    good_m = n_buckets(n, lo is not None or hi is not None)
    good, bad_m = kept(good_m), None
    for _ in range(4):
        if len(good) >= 0.95 * n:
            break
        guess = int(good_m * (n - 1) / max(1, len(good) - 1))
        guess = guess if bad_m is None else min(guess, (good_m + bad_m) // 2)
        if guess <= good_m:
            break
        trial = kept(guess)
        if len(trial) <= n:
            good_m, good = guess, trial
        else:
            bad_m = guess
    return good


def decimate(steps: np.ndarray, values: np.ndarray, n: int = MAX_POINTS, *, log: bool = False,
             span: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` real points of one curve, each bucket's extremes kept (:func:`fit_indices`).

    NaN values are dropped first; a curve of at most ``n`` finite points is returned whole.  The buckets
    span ``span`` (default: the curve's own step range), which lets several runs share one range.

    Examples
    --------
    >>> t = np.arange(100_000.0); v = np.where(t == 54_321, 9.0, 1.0)
    >>> s, kept = decimate(t, v)
    >>> len(s) <= 400, float(s[kept.argmax()]), float(kept.max())
    (True, 54321.0, 9.0)
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    steps, values = steps[ok], values[ok]
    if steps.size <= n:
        return steps, values
    idx = fit_indices(steps, values, n, span or (max(0.0, steps[0]), steps[-1]), log=log)
    return steps[idx], values[idx]


def downsample_frame(
    df: pd.DataFrame, by: Sequence[str], n: int, *, log: bool = False, x: str = "step",
    value: str = "value",
) -> pd.DataFrame:
    """Decimate every curve of a tidy table (one curve per combination of ``by``) to at most ``n`` real
    rows, the rows of each bucket's extremes kept (of ``value`` and of ``lo``/``hi``).

    Curves of at most ``n`` rows are kept as they are.  ``df`` has columns ``x``, ``value``, ``by…`` and
    optionally ``lo``, ``hi`` (a band, e.g. min/max over seeds); rows with NaN ``value`` are dropped.  All
    curves share one grid over the table's whole ``x`` range.  Returns a new table of rows of ``df`` with
    the same columns plus ``lo`` and ``hi`` (``value`` where missing).

    Examples
    --------
    >>> df = pd.DataFrame({"run": "a", "step": range(1000), "value": np.linspace(0, 1, 1000)})
    >>> out = downsample_frame(df, ["run"], 50)
    >>> len(out) <= 50, int(out.step.iloc[-1])
    (True, 999)
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
    band = bool(((df["lo"] != df[value]) | (df["hi"] != df[value])).any())
    span = (max(0.0, float(steps.min())), float(steps.max()))
    parts = []
    for _, curve in (df.groupby(list(by), sort=False, dropna=False) if by else [((), df)]):
        curve = curve.sort_values(x, kind="stable")
        if len(curve) <= n:  # already small enough: kept as is, so decimating twice changes nothing
            parts.append(curve)
            continue
        cols = {name: curve[name].to_numpy(dtype=np.float64) for name in (x, value, "lo", "hi")}
        band_of = {"lo": cols["lo"], "hi": cols["hi"]} if band else {}
        idx = fit_indices(cols[x], cols[value], n, span, log=log, **band_of)
        parts.append(curve.iloc[idx])
    return pd.concat(parts, ignore_index=True)
