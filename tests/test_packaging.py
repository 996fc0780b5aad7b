"""The design card's layout installs as one package: grokscope, grokscope.trainers, grokscope.cli."""

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import grokscope
import grokscope.cli
import grokscope.trainers

REPO = Path(__file__).resolve().parents[1]


def test_editable_install_maps_trainers_and_cli_into_grokscope():
    assert Path(grokscope.trainers.__file__).parent == REPO / "trainers"
    assert Path(grokscope.cli.__file__).parent == REPO / "cli"
    assert Path(grokscope.__file__).parent == REPO / "grokscope"


def test_analysis_layer_never_imports_torch():
    modules = ["grokscope", "grokscope.analysis.runners.summary", "grokscope.analysis.runners.cds",
               "grokscope.analysis.runners.dynamics", "grokscope.analysis.runners.spectra",
               "grokscope.analysis.measures.fourier", "grokscope.analysis.measures.intervals",
               "grokscope.analysis.measures.norms", "grokscope.analysis.measures.smoothing", "grokscope.store.reader",
               "grokscope.store.runs", "grokscope.sweeps.grid", "grokscope.report.page", "grokscope.importers",
               "grokscope.importers.tensorboard", "grokscope.analysis.runners.forecast", "grokscope.report.forecast"]
    code = f"import sys, {', '.join(modules)}; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO.parent)


def _declared_packages() -> list[str]:
    text = (REPO / "pyproject.toml").read_text()
    return ast.literal_eval(re.search(r"^packages = (\[.*?\])", text, re.S | re.M).group(1))


def test_every_package_folder_is_declared():
    """The package-dir mapping turns discovery off, so a forgotten sub-package would be missing from the
    wheel (it happened: grokscope.importers).  Every folder holding an __init__.py must be listed."""
    roots = {"grokscope": REPO / "grokscope", "grokscope.trainers": REPO / "trainers", "grokscope.cli": REPO / "cli"}
    found = set()
    for prefix, root in roots.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((prefix, *rel)))
    assert found == set(_declared_packages())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", dist, REPO], check=True)
    return next(dist.glob("grokscope-*.whl"))


@pytest.mark.slow
def test_wheel_holds_only_grokscope_and_trains_when_installed(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    # nothing at top level but grokscope: no `trainers` or `cli` to collide with other packages
    assert {t for t in tops if not t.endswith(".dist-info")} == {"grokscope"}
    for package in _declared_packages():  # every package's modules are in it
        assert package.replace(".", "/") + "/__init__.py" in names, package
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", target, wheel],
                   check=True)
    code = (
        "import grokscope, grokscope.trainers, grokscope.cli.main, sys\n"
        f"assert all(m.__file__.startswith({str(target)!r}) for m in "
        "(grokscope, grokscope.trainers, grokscope.cli.main)), grokscope.__file__\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(grokscope.cli.main.app, ['train', '--preset', 'demo', '--steps', '3', "
        "'--quiet', '--out', 'w.zarr'])\n"
        "assert r.exit_code == 0, r.stderr\n"
        "r = CliRunner().invoke(grokscope.cli.main.app, ['analyze', 'w.zarr', '--json'])\n"
        "assert r.exit_code == 0 and '\"last_step\": 3' in r.stdout, r.stdout\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_without_torch_imports_analyzes_and_reports(wheel, tmp_path):
    """As a user installs it: ``pip install grokscope-*.whl`` into a new venv (its dependencies, no torch),
    then the console script from a folder outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py, cli = venv / "bin" / "python", venv / "bin" / "grokscope"
    subprocess.run([py, "-m", "pip", "install", "-q", wheel], check=True, capture_output=True)
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0  # no torch there
    work = tmp_path / "elsewhere"
    work.mkdir()
    rows = [f"{s},{2 / (1 + s):.6f},{min(1.0, 0.1 + s / 40):.3f},{min(1.0, s / 1500):.4f}"
            for s in (0, 10, 20, 40, 100, 500, 1000, 1425, 1500, 3000)]
    (work / "metrics.csv").write_text("step,train/loss,train/accuracy,val/accuracy\n" + "\n".join(rows) + "\n")

    def grokscope(*args):
        result = subprocess.run([cli, *map(str, args)], cwd=work, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result

    assert "analyze" in grokscope("--help").stdout
    grokscope("import", "metrics.csv", "--out", "theirs.zarr")
    (row,) = json.loads(grokscope("analyze", "theirs.zarr", "--json").stdout)
    assert row["memorization_step"] == 40 and row["generalization_step"] == 1425  # 1425/1500 = 0.95
    grokscope("report", "theirs.zarr", "-o", "theirs.html")
    assert (work / "theirs.html").stat().st_size > 100_000  # the page inlines Vega
    (forecast,) = json.loads(grokscope("forecast", "theirs.zarr", "--json").stdout)  # the packaged model loads
    assert forecast["at"] == 300 and forecast["budget"] == 3000 and forecast["known"] is False
    assert forecast["reason"]  # a forecast, or why it abstains (this import logs no test loss)
