"""The report page and chart export: exact PNG sizes, a self-contained page that headless Chromium renders
offline with no console errors, and the ``grokscope report`` command's outputs and one-line errors."""

from __future__ import annotations

import base64
import json
import os
import re
import select
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grokscope.charts import accuracy_chart, landscape_chart
from grokscope.cli.main import app
from grokscope.errors import GrokscopeError
from grokscope.report.builders import CHARTS, load_runs
from grokscope.report.export import save_chart
from grokscope.report.page import html_page, report_html
from grokscope.store.layout import ParamSpec
from grokscope.store.writer import RunWriter

CURVES = ("train_loss", "train_acc", "test_loss", "test_acc", "l2_norm")
CHROMIUM = Path("/usr/bin/chromium")
runner = CliRunner()


def make_run(path, *, mem=400, gen=1500, n_train=2000, seed=0, p=7, n_steps=2001):
    """A modular run: train accuracy ≥ 0.99 from ``mem``, test accuracy 1 from ``gen``, L2 = 40·e^(−t/1000),
    and an embedding whose Fourier spectrum is frequency 2 only, growing over 5 checkpoints."""
    t = np.arange(n_steps, dtype=np.float64)
    ckpts = np.linspace(0, n_steps - 1, 5).astype(np.int64)
    x = 2 * np.pi * 2 * np.arange(p) / p
    embed = np.zeros((5, p + 3, 4), np.float32)  # (ckpt, vocab, d_model): p numbers + 3 other tokens
    embed[:, :p, 0], embed[:, :p, 1] = np.cos(x), np.sin(x)
    embed *= np.arange(1, 6, dtype=np.float32)[:, None, None]
    writer = RunWriter(
        path, n_steps=n_steps, metrics={name: () for name in CURVES}, ckpt_steps=ckpts,
        attrs={"config": {"task": "modular", "p": p, "n_train": n_train, "seed": seed},
               "model": {"param_roles": {"embedding": "embed.weight",
                                         "embedding_orientation": "vocab_first"}}},
        params=[ParamSpec("embed.weight", (p + 3, 4), ("vocab", "d_model"))])
    writer.write_metrics(0, {"train_acc": np.where(t >= mem, 1.0, 0.98 * t / mem),
                             "test_acc": np.where(t >= gen, 1.0, 0.1), "train_loss": np.exp(-t / 300),
                             "test_loss": np.where(t >= gen, 0.01, 3.0), "l2_norm": 40 * np.exp(-1e-3 * t)})
    writer.write_checkpoints(0, {"embed.weight": embed})
    writer.finalize()
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "a.zarr")
    make_run(root / "b.zarr", gen=1200, seed=1)
    return root


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit non-interlaced RGB(A) PNG to (height, width, channels) with zlib and numpy."""
    width, height = png_size(data)
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        n, tag = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        header, idat = (data[pos + 8:pos + 8 + n], idat) if tag == b"IHDR" else (header, idat + (
            data[pos + 8:pos + 8 + n] if tag == b"IDAT" else b""))
        pos += 12 + n
    assert header[8] == 8 and header[9] in (2, 6) and header[12] == 0, "only 8-bit RGB(A), not interlaced"
    c = 3 if header[9] == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * c).astype(np.int32)
    out, prev = np.zeros((height, width * c), np.int32), np.zeros(width * c, np.int32)
    for y in range(height):  # undo the per-row filters (PNG spec, section 9)
        f, line = raw[y, 0], raw[y, 1:]
        if f == 0:
            row = line
        elif f == 1:
            row = np.cumsum(line.reshape(width, c), axis=0).reshape(-1) & 255
        elif f == 2:
            row = (line + prev) & 255
        else:
            row = np.zeros(width * c, np.int32)
            for i in range(width * c):
                a, b, d = (row[i - c] if i >= c else 0), prev[i], (prev[i - c] if i >= c else 0)
                if f == 3:
                    row[i] = (line[i] + ((a + b) >> 1)) & 255
                else:
                    pa, pb, pc = abs(b - d), abs(a - d), abs(a + b - 2 * d)
                    row[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else d)) & 255
        out[y], prev = row, row
    return out.reshape(height, width, c).astype(np.uint8)


def summary_of(page: str) -> str:
    """The summary table of a report page (the inlined JavaScript holds table snippets of its own)."""
    start = page.index("<h2>summary</h2>")
    return page[start:page.index("</table>", start)]


def n_colours(pixels: np.ndarray) -> int:
    """Distinct RGB colours of an image (height, width, 3 or 4)."""
    rgb = pixels[..., :3].astype(np.int64)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


# --- export ---------------------------------------------------------------------------------------------


def test_png_svg_json_exports(runs, tmp_path):
    chart = accuracy_chart(runs / "a.zarr", width=400, height=250)
    assert png_size(save_chart(chart, tmp_path / "a.png").read_bytes()) == (400, 250)
    assert png_size(save_chart(chart, tmp_path / "a2.png", scale=2).read_bytes()) == (800, 500)
    svg = save_chart(chart, tmp_path / "a.svg").read_text()
    assert re.search(r'<svg[^>]* width="400" height="250"', svg)
    spec = json.loads(save_chart(chart, tmp_path / "a.json").read_text())
    assert spec["width"] == 400 and spec["autosize"] == {"type": "fit", "contains": "padding"}
    landscape = landscape_chart(pd.DataFrame({"model_size": [1], "n_train": [1], "accuracy": [1.0]}))
    html = save_chart(landscape, tmp_path / "l.html").read_text()  # a chart of a sweep, as a page of its own
    assert "<script src" not in html and "vegaEmbed" in html


def test_unknown_suffix_writes_nothing(runs, tmp_path):
    with pytest.raises(GrokscopeError, match=r"cannot write \.gif; use \.png"):
        save_chart(accuracy_chart(runs / "a.zarr"), tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


def test_report_page_is_self_contained(runs):
    page, names = report_html(load_runs([runs]))
    assert names == ["accuracy", "loss", "l2", "spectrum"]  # one run: the sweep charts do not apply
    assert list(CHARTS) == ["accuracy", "loss", "l2", "subclasses", "forgetting", "spectrum", "stepwise",
                            "generalization", "cds", "landscape"]
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # no external script at all
    assert not re.search(r"(?i)src\s*=\s*[\"']?https?://", page)
    assert page.count("<script") == 2  # the inlined Vega bundle, then the embedding code
    table = summary_of(page)
    assert "<td>a</td><td>2000</td><td>0</td><td>400</td><td>1500</td><td>1100</td>" in table
    assert "<td>b</td><td>2000</td><td>1</td><td>400</td><td>1200</td><td>800</td>" in table
    assert len(page) < 2_000_000  # the size budget: ~0.9 MB of JavaScript + at most 4,000 rows a chart


def test_text_in_specs_cannot_end_the_script_element():
    spec = accuracy_chart(pd.DataFrame({"step": [0, 1], "split": "test", "value": [0.0, 1.0]}),
                          title="</script><script>alert(1)</script>").to_dict()
    page = html_page("a <b>", "", [spec])
    assert page.count("</script>") == 2 and "\\u003c/script>\\u003cscript>alert(1)" in page
    assert "<title>a &lt;b&gt;</title>" in page


# --- the page in a real browser -------------------------------------------------------------------------


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out), stdlib only.
    Networking is off: a dead proxy for every URL and no name resolution."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
             "--remote-debugging-pipe"]

    def __init__(self, user_data_dir: str) -> None:
        child_in, self._out = os.pipe()
        self._in, child_out = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4
            r, w = os.dup(child_in), os.dup(child_out)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen([str(CHROMIUM), *self.FLAGS, f"--user-data-dir={user_data_dir}"],
                                     preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(child_in)
        os.close(child_out)
        self._buffer, self._id, self.events = b"", 0, []

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError(f"chromium did not answer {method}")
                chunk = os.read(self._in, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply.get("result", {})
            self.events.append(reply)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (TimeoutError, AssertionError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in)
        os.close(self._out)


def _visit(browser: Chromium, page: Path, wait_s: float) -> dict:
    """Load ``page`` in a new 1200×2000 tab; wait until its charts report that they rendered."""
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    s = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for enable in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
        browser.call(enable, s)
    browser.call("Emulation.setDeviceMetricsOverride", s, width=1200, height=2000, deviceScaleFactor=1,
                 mobile=False)
    browser.call("Page.navigate", s, url=page.resolve().as_uri())

    def evaluate(expression):
        return browser.call("Runtime.evaluate", s, expression=expression, returnByValue=True)["result"].get(
            "value")

    deadline, rendered = time.monotonic() + wait_s, None
    while rendered is None and time.monotonic() < deadline:
        rendered = evaluate("document.body ? document.body.dataset.rendered || null : null")
        time.sleep(0.1)
    svgs = evaluate("document.querySelectorAll('.chart svg.marks').length")
    # optimizeForSpeed: Chromium then filters every PNG row with "Up", which png_pixels decodes fast
    shot = browser.call("Page.captureScreenshot", s, format="png", optimizeForSpeed=True)["data"]
    return {"session": s, "rendered": rendered, "svgs": svgs, "screenshot": base64.b64decode(shot)}


def open_in_chromium(pages: dict[str, tuple[Path, float]]) -> dict[str, dict]:
    """Open each page (name → (path, seconds to wait for its charts)) in one browser; for each, what
    rendered, every console problem, every requested URL and a PNG screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        browser = Chromium(profile)
        try:
            seen = {name: _visit(browser, path, wait_s) for name, (path, wait_s) in pages.items()}
        finally:
            browser.close()
    for result in seen.values():
        result["problems"], result["urls"] = [], []
        for event in (e for e in browser.events if e.get("sessionId") == result["session"]):
            method, p = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                result["problems"].append(f"console.{p['type']}: " + " ".join(
                    str(a.get("value", a.get("description"))) for a in p["args"]))
            elif method == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                result["problems"].append("uncaught: " + details.get("exception", {}).get("description",
                                                                                          details["text"]))
            elif method == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                result["problems"].append(f"{p['entry']['source']}: {p['entry']['text']}")
            elif method == "Network.requestWillBeSent":
                result["urls"].append(p["request"]["url"])
    return seen


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian chromium)")


@pytest.fixture(scope="module")
def in_chromium(runs, tmp_path_factory):
    """The report of the two runs, and a page that loads Vega from a CDN, seen by one headless Chromium."""
    root = tmp_path_factory.mktemp("pages")
    result = runner.invoke(app, ["report", str(runs), "-o", str(root / "report.html")])
    assert result.exit_code == 0, result.stderr
    (root / "cdn.html").write_text('<!DOCTYPE html><html><body><div id="c"></div>'
                                   '<script src="https://cdn.jsdelivr.net/npm/vega-embed@6"></script>'
                                   '<script>vegaEmbed("#c", {});</script></body></html>')
    seen = open_in_chromium({"report": (root / "report.html", 20), "cdn": (root / "cdn.html", 1)})
    seen["report"]["uri"] = (root / "report.html").resolve().as_uri()
    return seen


@needs_chromium
def test_report_renders_offline_in_chromium(in_chromium):
    seen = in_chromium["report"]
    assert seen["problems"] == []
    assert seen["rendered"] == "4" and seen["svgs"] == 4  # one SVG per chart
    assert seen["urls"] == [seen["uri"]]  # nothing else was even requested
    pixels = png_pixels(seen["screenshot"])
    assert pixels.shape[:2] == (2000, 1200)
    assert n_colours(pixels) > 50  # text, lines and the heatmap: far from a blank page


@needs_chromium
def test_chromium_check_catches_a_page_that_needs_the_network(in_chromium):
    seen = in_chromium["cdn"]
    assert any("ERR_" in p for p in seen["problems"])  # the request failed: no network
    assert any("vegaEmbed is not defined" in p for p in seen["problems"])
    assert seen["rendered"] is None
    assert n_colours(png_pixels(seen["screenshot"])) == 1  # a blank page: the check above can fail


# --- the command ----------------------------------------------------------------------------------------


def assert_one_line_error(result, fragment):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grokscope: error:"), result.stderr
    assert fragment in lines[0], lines[0]
    assert result.stdout == ""


def test_report_command_json_and_single_chart(runs, tmp_path):
    result = runner.invoke(app, ["report", str(runs / "a.zarr"), "-o", str(tmp_path / "r.html"), "--json",
                                 "--log-x"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["charts"] == ["accuracy", "loss", "l2", "spectrum"] and doc["runs"] == 1
    assert doc["bytes"] == (tmp_path / "r.html").stat().st_size
    result = runner.invoke(app, ["report", str(runs), "-o", str(tmp_path / "l2.png"), "--chart", "l2"])
    assert result.exit_code == 0, result.stderr
    assert png_size((tmp_path / "l2.png").read_bytes()) == (560, 300)  # the default size, fitted on export
    result = runner.invoke(app, ["report", str(runs / "b.zarr"), "-o", str(tmp_path / "s.json"), "--chart",
                                 "spectrum"])
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "s.json").read_text())
    heatmap = [r for rows in spec["datasets"].values() for r in rows if "k" in r and "end" in r]
    assert {r["k"]: r["norm"] for r in heatmap if r["step"] == 2000 and r["norm"] > 1e-3} == {
        2: pytest.approx(5 * np.sqrt(7), rel=1e-5)}  # ‖cos‖² + ‖sin‖² = 7 at scale 5, frequency 2 only


def test_sweep_report_groups_by_the_varying_hyperparameter(tmp_path):
    for i in range(9):  # more than OVERLAY_MAX runs: grouped by n_train, the band spanning the seeds
        make_run(tmp_path / "sweep" / f"r{i}.zarr", n_train=1000 * (1 + i % 3), seed=i // 3, gen=300 + 50 * i,
                 mem=100, n_steps=501)
    inp = load_runs([tmp_path / "sweep"])
    assert inp.group_by == "n_train"
    page, names = report_html(inp)
    # three data sizes of one model: a CDS study, so the step-wise and steps-to-generalize charts join
    # (CDS vs model size and the landscape need two model sizes)
    assert names == ["accuracy", "loss", "l2", "spectrum", "stepwise", "generalization"]
    assert "grouped by n_train" in page
    assert summary_of(page).count("<tr>") == 1 + 9


@pytest.mark.parametrize("args, fragment", [
    (["--chart", "cdx"], "unknown chart 'cdx'; choose from accuracy, loss, l2, subclasses, forgetting, spectrum"),
    (["--chart", "cds"], "the cds chart does not apply to these runs"),
    (["--chart", "accuracy", "-o", "{tmp}/x.gif"], "cannot write .gif"),
    (["-o", "{tmp}/x.png"], "the report is an HTML page"),
    (["-o", "{tmp}/missing/x.html"], "does not exist"),
])
def test_bad_report_input_is_one_line_and_writes_nothing(runs, tmp_path, args, fragment):
    args = [a.format(tmp=tmp_path) for a in args]
    out = [] if "-o" in args else ["-o", str(tmp_path / "x.png")]
    assert_one_line_error(runner.invoke(app, ["report", str(runs), *out, *args]), fragment)
    assert list(tmp_path.iterdir()) == []


def test_only_the_charts_that_apply(tmp_path):
    """A run logging accuracies only, test every 10 steps, no norms, no checkpoints (as imported runs can)."""
    t = np.arange(1001.0)
    writer = RunWriter(tmp_path / "acc.zarr", attrs={"config": {"n_train": 100}}, n_steps=1001,
                       metrics={"train_acc": (), "test_acc": ()}, params=[],
                       ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.minimum(1.0, t / 200),
                             "test_acc": np.where(t % 10 == 0, np.where(t >= 600, 1.0, 0.0), np.nan)})
    writer.finalize()
    page, names = report_html(load_runs([tmp_path / "acc.zarr"]))
    assert names == ["accuracy"]
    assert "<td>acc</td><td>100</td><td>198</td><td>600</td><td>402</td>" in summary_of(page)  # 0.99 at 198
    result = runner.invoke(app, ["report", str(tmp_path / "acc.zarr"), "-o", str(tmp_path / "x.png"),
                                 "--chart", "l2"])
    assert_one_line_error(result, "the l2 chart does not apply to these runs (acc)")
    assert not (tmp_path / "x.png").exists()


def test_no_runs_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty"), "-o", str(tmp_path / "r.html")])
    assert_one_line_error(result, "holds no grokscope run store")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.slow
def test_report_of_a_trained_run(tmp_path):
    pytest.importorskip("torch")
    from grokscope import from_preset
    from grokscope.trainers import train

    path = train(from_preset("demo", steps=30), tmp_path / "demo.zarr")
    page, names = report_html(load_runs([path]))
    assert names == ["accuracy", "loss", "l2", "spectrum"]  # a modular run with checkpoints
    assert "<td>demo</td>" in page


def dipping_run(path, *, n_train, seed, dip):
    """Test accuracy 1 from step 100 on; with ``dip``, back to 0.1 at steps 300–302 (three evaluations)."""
    t = np.arange(501, dtype=np.float64)
    test = np.where(t >= 100, 1.0, 0.1)
    if dip:
        test[300:303] = 0.1
    writer = RunWriter(path, attrs={"config": {"task": "modular", "p": 7, "n_train": n_train, "seed": seed}},
                       n_steps=t.size, metrics={"train_acc": (), "test_acc": ()}, params=[],
                       ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.where(t >= 50, 1.0, 0.5), "test_acc": test})
    writer.finalize()
    return path


def test_stability_in_the_summary_and_the_sweep_charts(tmp_path):
    for n_train in (1000, 2000, 3000):
        for seed in (0, 1):
            dipping_run(tmp_path / f"n{n_train}s{seed}.zarr", n_train=n_train, seed=seed,
                        dip=(n_train, seed) == (2000, 1))
    inp = load_runs([tmp_path])
    page, names = report_html(inp)
    assert "stable" in summary_of(page) and "dips after generalization" in summary_of(page)
    assert "sustained: 5 evaluations in a row generalized" in page
    unstable = {(r["n_train"], r["seed"]) for r in inp.rows if r["stable"] is False}
    assert unstable == {(2000, 1)}
    spec = _spec_rows(CHARTS["generalization"](inp))
    assert sorted((r["n_train"], r["stability"]) for r in spec if r.get("kind") == "run") == [
        (1000, "stable"), (1000, "stable"), (2000, "stable"), (2000, "unstable"), (3000, "stable"),
        (3000, "stable")]
    stepwise = _spec_rows(CHARTS["stepwise"](inp))
    assert {r["stability"] for r in stepwise if r["n_train"] == 2000} == {"stable", "unstable"}
    assert "triangle-down" in json.dumps(CHARTS["stepwise"](inp).to_dict())


def _spec_rows(chart):
    return [row for rows in chart.to_dict(validate=True).get("datasets", {}).values() for row in rows]


def test_the_report_marks_a_collapse(tmp_path):
    t = np.arange(1001, dtype=np.float64)
    writer = RunWriter(tmp_path / "c.zarr", attrs={"config": {"n_train": 100}}, n_steps=t.size,
                       metrics={"train_acc": (), "test_acc": ()}, params=[], ckpt_steps=np.array([], np.int64))
    writer.write_metrics(0, {"train_acc": np.where(t >= 700, 0.05, np.where(t >= 100, 1.0, 0.5)),
                             "test_acc": np.where((t >= 300) & (t < 700), 1.0, 0.05)})
    writer.finalize()
    inp = load_runs([tmp_path / "c.zarr"])
    marks = {r["event"]: r["step"] for r in _spec_rows(CHARTS["accuracy"](inp)) if r.get("kind") == "mark"}
    assert marks == {"memorization": 100, "generalization": 300, "collapse": 700}
    # sustained@300, not stable: 301 dips (700 … 1000), min 0.05, collapsed at 700, no train loss: no spikes
    assert "<td>300</td><td>False</td><td>301</td><td>0.05</td><td>700</td><td></td><td>complete</td>" in (
        summary_of(report_html(inp)[0]))
