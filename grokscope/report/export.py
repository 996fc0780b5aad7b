"""Chart export: one altair chart to .png, .svg (vl-convert), .html or .json, written atomically."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import vl_convert as vlc

from grokscope.errors import GrokscopeError

SUFFIXES = (".png", ".svg", ".html", ".json")
VL_VERSION = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # "v6_4": the Vega-Lite vl-convert renders with

# --- export ---------------------------------------------------------------------------------------------


def check_suffix(path: Path, allowed: Sequence[str] = SUFFIXES) -> str:
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


def chart_spec(chart: Any) -> dict[str, Any]:
    """The validated Vega-Lite spec, its inline data compacted: null cells left out (Vega reads a missing
    field as undefined, which every filter and encoding here treats as null) and whole floats as ints."""
    spec = _fitted(chart).to_dict(validate=True)
    for name, rows in spec.get("datasets", {}).items():
        spec["datasets"][name] = [
            {k: int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v
             for k, v in row.items() if v is not None} for row in rows]
    return spec


def write_file(path: Path, data: bytes) -> None:
    """Write all of ``data`` or nothing: a temporary file beside ``path``, then an atomic rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def render(chart: Any, suffix: str, scale: float) -> bytes:
    spec = chart_spec(chart)
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
    write_file(path, render(chart, check_suffix(path), scale))
    return path


EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False,
                                                "editor": False}}


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
