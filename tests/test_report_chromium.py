"""The report page in a real browser: headless Chromium (Debian's package) opens it offline, renders every
chart, and requests nothing but the page; a page that needs the network is caught by the same check."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from grokscope.cli.main import app

CHROMIUM = Path("/usr/bin/chromium")
runner = CliRunner()


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


def n_colours(pixels: np.ndarray) -> int:
    """Distinct RGB colours of an image (height, width, 3 or 4)."""
    rgb = pixels[..., :3].astype(np.int64)
    return len(np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]))


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
def in_chromium(report_runs, tmp_path_factory):
    """The report of the two runs, and a page that loads Vega from a CDN, seen by one headless Chromium."""
    root = tmp_path_factory.mktemp("pages")
    result = runner.invoke(app, ["report", str(report_runs), "-o", str(root / "report.html")])
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
    assert seen["rendered"] == "5" and seen["svgs"] == 5  # one SVG per chart (accuracy, loss, l2, spectrum, forecast)
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
