"""The one-page report of a run, a set of runs or a sweep, and chart export (.png, .svg, .html, .json).

The page is self-contained: the Vega, Vega-Lite and Vega-Embed JavaScript (vl-convert's bundle, ~0.9 MB)
is inlined once, every chart's spec and data are inlined, and nothing is fetched, so it opens offline.
It holds the summary table (:func:`grokscope.summary.analyze`) and then the charts of :data:`CHARTS` that
apply, in order.  Layout of the run curves: one run is drawn alone with its memorization and generalization
steps and the seed-001 intervals shaded; up to ``OVERLAY_MAX`` runs are overlaid; more are grouped by the
first hyperparameter of ``GROUP_KEYS`` that varies (mean line, min/max band over the rest, e.g. seeds).

Adding a chart is one line: ``CHARTS["name"] = builder``, a function of :class:`ReportInput` returning an
altair chart, or ``None`` when it does not apply to the runs.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import vl_convert as vlc

from grokscope import __version__
from grokscope.charts import (ACCURACY, LOSS, NORM, accuracy_chart, curves_frame, key_frequency_chart,
                              l2_chart, loss_chart, norm_chart, spectrum_chart)
from grokscope.charts_runs import run_labels
from grokscope.charts_subclasses import subclass_chart, subclass_frame
from grokscope.errors import GrokscopeError
from grokscope.fourier import embedding_spectrum, key_frequencies_top_norm
from grokscope.intervals import grokking_intervals
from grokscope.dynamics import decay_fit
from grokscope.onset import Criteria
from grokscope.report_sweeps import SWEEP_CHARTS
from grokscope.stability import StabilityRule
from grokscope.store import RunStore
from grokscope.summary import CONFIG_KEYS, analyze

__all__ = ["CHARTS", "SUFFIXES", "ReportInput", "load_runs", "build_chart", "export_chart", "report_html",
           "write_report", "save_chart", "html_page"]

SUFFIXES = (".png", ".svg", ".html", ".json")
OVERLAY_MAX = 8  # up to this many runs are overlaid; more are grouped by a hyperparameter
MAX_SPECTRA = 4  # Fourier spectra drawn in a report (the first modular runs), to keep the page small
GROUP_KEYS = ("n_train", "frac", "d_model", "n_layers", "weight_decay", "alpha", "lr", "p", "op", "model",
              "input_format", "task")  # candidate hyperparameters to group a sweep by, in this order
TABLE_METRICS = ("memorization_step", "generalization_step", "grokking_delay", "final_train_acc",
                 "final_test_acc", "l2_at_memorization", "l2_at_generalization", "sustained_generalization_step",
                 "stable", "dips_after_generalization", "min_test_acc_after_generalization", "collapse_step",
                 "loss_spikes", "status")  # the stability columns: grokscope.stability
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False,
                                                "editor": False}}
VL_VERSION = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # "v6_4": the Vega-Lite vl-convert renders with


@dataclass(frozen=True)
class ReportInput:
    """What chart builders get: the opened runs, their summary rows, and the report's options."""

    runs: tuple[RunStore, ...]
    rows: tuple[dict[str, Any], ...]  # from analyze(), one per run, same order
    log_x: bool = False
    criteria: Criteria = Criteria()
    stability: StabilityRule = StabilityRule()
    skipped: tuple[dict[str, Any], ...] = ()  # error rows of analyze(): runs that could not be summarized

    @property
    def group_by(self) -> str | None:
        """The hyperparameter runs are grouped by (more than OVERLAY_MAX runs), or None (overlay)."""
        if len(self.runs) <= OVERLAY_MAX:
            return None
        for key in GROUP_KEYS:
            if len({repr(row.get(key)) for row in self.rows}) > 1:
                return key
        return "all runs"  # nothing varies but the seed: one group


def load_runs(paths: Iterable[str | os.PathLike], *, log_x: bool = False, criteria: Criteria = Criteria(),
              stability: StabilityRule = StabilityRule()) -> ReportInput:
    """Find the run stores under ``paths`` and summarize them (StoreError if there are none)."""
    rows = analyze(paths, criteria, stability_rule=stability)
    good = [row for row in rows if "error" not in row]
    if not good:  # several runs, none usable: say why for the first
        raise GrokscopeError(f"no run could be summarized: {rows[0]['run']}: {rows[0]['error']}")
    return ReportInput(tuple(RunStore(row["path"]) for row in good), tuple(good), log_x, criteria, stability,
                       skipped=tuple(row for row in rows if "error" in row))


# --- chart builders -------------------------------------------------------------------------------------


def _curves(inp: ReportInput, metrics: dict[str, str], chart: Callable[..., Any]) -> Any | None:
    if not any(run.has(name) for run in inp.runs for name in metrics.values()):
        return None
    df = curves_frame(list(inp.runs), metrics, log_x=inp.log_x)
    if not df["value"].notna().any():  # arrays that exist but hold no values (an import that logged none)
        return None
    group_by = inp.group_by
    if group_by == "all runs":
        df[group_by] = "all runs"
    intervals = None
    if len(inp.runs) == 1 and metrics is ACCURACY:
        intervals = _intervals(inp.runs[0])
    marks = [{**row, "run": label} for row, label in zip(inp.rows, run_labels(inp.runs))]
    return chart(df, log_x=inp.log_x, group_by=group_by, marks=None if group_by else marks,
                 intervals=intervals)


def _intervals(run: RunStore) -> dict[str, Any] | None:
    """Seed-001 intervals on test vs train accuracy, when a transition was found."""
    if not (run.has("train_acc") and run.has("test_acc")) or run.n_steps < 2:
        return None
    try:
        found = grokking_intervals(run.read("step"), run.read("train_acc"), run.read("test_acc")).to_dict()
    except ValueError:  # no finite values
        return None
    return found if found["alpha0"] is not None and found["alpha1"] is not None else None


def accuracy_builder(inp: ReportInput) -> Any | None:
    return _curves(inp, ACCURACY, accuracy_chart)


def loss_builder(inp: ReportInput) -> Any | None:
    return _curves(inp, LOSS, loss_chart)


def l2_builder(inp: ReportInput) -> Any | None:
    """One run: the L2 norm with the decay fit over [memorization, generalization or last step]."""
    if len(inp.runs) > 1:
        return _curves(inp, NORM, norm_chart)
    run, row = inp.runs[0], inp.rows[0]
    if not run.has("l2_norm"):
        return None
    steps, l2 = run.read("step"), run.read("l2_norm")
    if not np.isfinite(l2).any():
        return None
    fit = decay_fit(steps, l2, row["memorization_step"], row["generalization_step"])  # as `dynamics` fits
    return l2_chart(steps, l2, fit, marks=row, log_x=inp.log_x)


FORGETTING = {"test": "test_acc", "previous task (p1)": "p1_test_acc"}  # distilled joint / continual runs


def forgetting_builder(inp: ReportInput) -> Any | None:
    """Distillation (seed 000): test accuracy on the previous task (p1) next to the student's own task —
    forgetting in continual runs, the first task's accuracy in joint ones."""
    if not any(run.has("p1_test_acc") for run in inp.runs):
        return None
    return _curves(inp, FORGETTING, accuracy_chart)


def subclass_builder(inp: ReportInput) -> Any | None:
    """Runs with subclasses (seed 001): the down-sampled subclasses' test accuracy vs the others'."""
    runs = [run for run in inp.runs if run.has("test_acc_subclass")][:OVERLAY_MAX]
    if not runs:
        return None
    df = subclass_frame(runs, run_labels(runs), log_x=inp.log_x)
    return subclass_chart(df, log_x=inp.log_x) if len(df) else None


def _embedding(run: RunStore) -> tuple[str, str, int] | None:
    """(parameter, orientation, p) of a modular run's embedding with checkpoints, else None."""
    roles = run.attrs.get("model", {}).get("param_roles", {})
    name, p = roles.get("embedding"), run.config.get("p")
    if run.config.get("task", "modular") != "modular" or p is None or run.n_ckpts == 0:
        return None
    if name not in run.param_names():
        return None
    return name, roles.get("embedding_orientation", "auto"), int(p)


def spectrum_builder(inp: ReportInput) -> Any | None:
    """For each modular run (at most MAX_SPECTRA): the embedding spectrum over checkpoints and at the end."""
    charts = []
    for run in inp.runs:
        found = _embedding(run)
        if found is None:
            continue
        name, orientation, p = found
        steps = run.checkpoint_steps()  # (n_ckpt,)
        if inp.log_x and not (steps > 0).any():
            continue
        try:
            spectrum = embedding_spectrum(run.read_param(name), p, orientation)  # (n_ckpt, p // 2 + 1)
        except ValueError:  # an embedding that does not fit p or its stated orientation: no spectrum
            continue
        label = f"{run.name}: " if len(inp.runs) > 1 else ""
        charts.append(spectrum_chart(steps, spectrum, log_x=inp.log_x,
                                     title=f"{label}embedding Fourier spectrum over checkpoints"))
        charts.append(key_frequency_chart(
            np.arange(1, spectrum.shape[1]), spectrum[-1, 1:], key=key_frequencies_top_norm(spectrum[-1]),
            title=f"{label}embedding norm per frequency at step {int(steps[-1])}"))
        if len(charts) == 2 * MAX_SPECTRA:
            break
    return alt.vconcat(*charts) if charts else None


Builder = Callable[[ReportInput], Any]
# name → builder, in report order; a builder returns None where the chart does not apply to the runs
CHARTS: dict[str, Builder] = {
    "accuracy": accuracy_builder,
    "loss": loss_builder,
    "l2": l2_builder,
    "subclasses": subclass_builder,
    "forgetting": forgetting_builder,
    "spectrum": spectrum_builder,
    **SWEEP_CHARTS,  # stepwise, generalization, cds, landscape: a sweep over data (and model) sizes
}


# --- export ---------------------------------------------------------------------------------------------


def _check_suffix(path: Path, allowed: Sequence[str] = SUFFIXES) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise GrokscopeError(f"{path}: cannot write {suffix or 'files without a suffix'}; use "
                             f"{', '.join(allowed)}")
    if not path.parent.is_dir():
        raise GrokscopeError(f"{path}: the folder {path.parent} does not exist")
    return suffix


def _fitted(chart: Any) -> Any:
    """A single or layered view of fixed size fits axes and legend inside it (so a PNG has that size)."""
    if isinstance(chart, (alt.Chart, alt.LayerChart)) and all(
            isinstance(getattr(chart, d, None), int) for d in ("width", "height")):
        return chart.properties(autosize=alt.AutoSizeParams(type="fit", contains="padding"))
    return chart


def _spec(chart: Any) -> dict[str, Any]:
    """The validated Vega-Lite spec, its inline data compacted: null cells left out (Vega reads a missing
    field as undefined, which every filter and encoding here treats as null) and whole floats as ints."""
    spec = _fitted(chart).to_dict(validate=True)
    for name, rows in spec.get("datasets", {}).items():
        spec["datasets"][name] = [
            {k: int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v
             for k, v in row.items() if v is not None} for row in rows]
    return spec


def _write(path: Path, data: bytes) -> None:
    """Write all of ``data`` or nothing: a temporary file beside ``path``, then an atomic rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _render(chart: Any, suffix: str, scale: float) -> bytes:
    spec = _spec(chart)
    if suffix == ".png":
        return vlc.vegalite_to_png(spec, vl_version=VL_VERSION, scale=scale)
    if suffix == ".svg":
        return vlc.vegalite_to_svg(spec, vl_version=VL_VERSION).encode()
    if suffix == ".html":
        return html_page(str(chart.title) if isinstance(chart.title, str) else "grokscope chart", "",
                         [spec]).encode()
    return (json.dumps(spec, indent=2) + "\n").encode()


def save_chart(chart: Any, path: str | os.PathLike, *, scale: float = 1.0) -> Path:
    """Export a chart by suffix: ``.png``/``.svg`` (vl-convert, offline), ``.html`` (self-contained, works
    offline), ``.json`` (the Vega-Lite spec).  Any other suffix raises GrokscopeError before writing.

    A single or layered chart with a fixed ``width``/``height`` is fitted to exactly that size (axes and
    legend inside), so its PNG is ``width·scale × height·scale`` pixels.

    Examples
    --------
    >>> save_chart(accuracy_chart("runs/demo.zarr"), "acc.png")  # doctest: +SKIP
    """
    path = Path(path)
    _write(path, _render(chart, _check_suffix(path), scale))
    return path


# --- the page -------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { vertical-align: bottom; max-width: 8em; }
th:first-child, td:first-child { text-align: left; }
.meta { color: #666; font-size: 0.85em; }
"""


def _script(js: str) -> str:
    """JavaScript safe inside an inline <script>: ``</script`` (which would end the element) and ``<!--``
    written so the HTML parser cannot see them; the same code for JavaScript in strings and regexes."""
    js = re.sub(r"(?i)</(script)", r"<\\/\1", js)
    return js.replace("<!--", "<\\x21--")


def _json_script(document: Any) -> str:
    """JSON for an inline <script>: every '<' escaped as \\u003c (it can only occur inside strings)."""
    return json.dumps(document, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def html_page(title: str, body: str, specs: Sequence[dict[str, Any]], headings: Sequence[str] = ()) -> str:
    """A self-contained page: ``body`` HTML, then one embedded chart per Vega-Lite spec (with an ``<h2>``
    from ``headings`` where given).  When every chart has rendered the page sets
    ``document.body.dataset.rendered`` to their number ("error" if one failed)."""
    bundle = vlc.javascript_bundle(vl_version=VL_VERSION)
    divs = "\n".join((f"<h2>{html.escape(headings[i])}</h2>\n" if i < len(headings) else "")
                     + f'<div class="chart" id="chart-{i}"></div>' for i in range(len(specs)))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style>
<script>{_script(bundle)}</script>
</head>
<body>
{body}
{divs}
<script>
const specs = {_json_script(list(specs))};
const options = {_json_script(EMBED_OPTIONS)};
Promise.all(specs.map((spec, i) => vegaEmbed("#chart-" + i, spec, options)))
  .then(() => {{ document.body.dataset.rendered = String(specs.length); }})
  .catch((err) => {{ document.body.dataset.rendered = "error"; throw err; }});
</script>
</body>
</html>
"""


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as an HTML table: run, the config keys that vary (n_train always), the metrics."""
    varying = [k for k in CONFIG_KEYS if len({repr(r.get(k)) for r in rows}) > 1 or
               (k == "n_train" and any(k in r for r in rows))]
    columns = ["run", *varying, *TABLE_METRICS]
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def report_html(inp: ReportInput, title: str = "grokscope report") -> tuple[str, list[str]]:
    """The report page of ``inp`` and the names of the charts it holds."""
    names, specs = [], []
    for name, builder in CHARTS.items():
        chart = builder(inp)
        if chart is not None:
            names.append(name)
            specs.append(_spec(chart))
    shared = {k: inp.rows[0][k] for k in CONFIG_KEYS  # None: a field the runs' task does not have
              if inp.rows[0].get(k) is not None and len({repr(r.get(k)) for r in inp.rows}) == 1}
    config = ", ".join(f"{k} = {v}" for k, v in shared.items())
    grouping = f" Curves grouped by {inp.group_by} (mean, min/max band)." if inp.group_by else ""
    c = inp.criteria
    memorized = (f"train loss ≤ {c.train_loss_below:g}" if c.train_loss_below is not None
                 else f"train accuracy ≥ {c.train_acc:g}")
    generalized = (f"test loss ≤ {c.test_loss_below:g}" if c.test_loss_below is not None
                   else f"test accuracy ≥ {c.test_acc:g}")
    r = inp.stability
    sustained = (f"every evaluation within {r.sustain_steps:g} steps" if r.sustain_steps is not None
                 else f"{r.sustain_evals} evaluations in a row")
    collapsed = (f"train loss above {r.collapse_loss(c.train_loss_below):g}"
                 if c.train_loss_below is not None else f"train accuracy below {r.collapse_train_acc:g}")
    body = (f"<h1>{html.escape(title)}</h1>\n"
            f"<p class=\"meta\">{len(inp.runs)} run{'s' * (len(inp.runs) != 1)}; grokscope {__version__}; "
            f"memorized: {memorized}, generalized: {generalized}; sustained: {sustained} generalized; "
            f"dips: evaluations after generalizing that fail it; collapsed: {collapsed} after memorizing."
            f"{grouping}</p>\n"
            + (f"<p class=\"meta\">shared config: {html.escape(config)}</p>\n" if config else "")
            + "".join(f"<p class=\"meta\">not shown: {html.escape(row['run'])}: {html.escape(row['error'])}</p>\n"
                      for row in inp.skipped)
            + "<h2>summary</h2>\n" + summary_table(inp.rows))
    return html_page(title, body, specs, names), names


def build_chart(name: str, inp: ReportInput) -> Any:
    """The named chart of :data:`CHARTS` for ``inp``; GrokscopeError if unknown or not applicable."""
    if name not in CHARTS:
        raise GrokscopeError(f"unknown chart {name!r}; choose from {', '.join(CHARTS)}")
    chart = CHARTS[name](inp)
    if chart is None:
        raise GrokscopeError(f"the {name} chart does not apply to these runs "
                             f"({', '.join(r.name for r in inp.runs[:3])}{' …' * (len(inp.runs) > 3)})")
    return chart


def export_chart(paths: Iterable[str | os.PathLike], name: str, out: str | os.PathLike, *,
                 log_x: bool = False, criteria: Criteria = Criteria(), stability: StabilityRule = StabilityRule(),
                 scale: float = 1.0) -> Path:
    """Write one chart of the runs under ``paths`` to ``out`` (.png, .svg, .html or .json).

    Every check (chart name, suffix, folder, runs) happens before anything is written.
    """
    out = Path(out)
    if name not in CHARTS:
        raise GrokscopeError(f"unknown chart {name!r}; choose from {', '.join(CHARTS)}")
    suffix = _check_suffix(out)
    chart = build_chart(name, load_runs(paths, log_x=log_x, criteria=criteria, stability=stability))
    _write(out, _render(chart, suffix, scale))
    return out


def write_report(paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, log_x: bool = False,
                 criteria: Criteria = Criteria(),
                 stability: StabilityRule = StabilityRule()) -> tuple[Path, ReportInput, list[str]]:
    """Write the one-page HTML report of the runs under ``paths`` to ``out`` (which must end in .html).

    Returns the path, the runs and the names of the charts drawn.

    Examples
    --------
    >>> write_report(["runs/sweep/"], "sweep.html")  # doctest: +SKIP
    """
    out = Path(out)
    if out.suffix.lower() != ".html":
        raise GrokscopeError(f"{out}: the report is an HTML page (use .html), or export one chart with "
                             f"--chart NAME")
    _check_suffix(out, (".html",))
    inp = load_runs(paths, log_x=log_x, criteria=criteria, stability=stability)
    page, names = report_html(inp)
    _write(out, page.encode())
    return out, inp, names
