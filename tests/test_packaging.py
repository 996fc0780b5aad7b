"""The design card's layout installs as one package: grokscope, grokscope.trainers, grokscope.cli."""

import os
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
    code = ("import sys, grokscope, grokscope.summary, grokscope.store, grokscope.fourier, "
            "grokscope.intervals, grokscope.norms, grokscope.smoothing, grokscope.cds, grokscope.sweep, "
            "grokscope.report, "
            "grokscope.importers, grokscope.importers.tensorboard, grokscope.dynamics, grokscope.spectra; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO.parent)


@pytest.mark.slow
def test_wheel_holds_only_grokscope_and_works_when_installed(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", tmp_path / "dist", REPO], check=True)
    wheel = next((tmp_path / "dist").glob("grokscope-*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    # nothing at top level but grokscope: no `trainers` or `cli` to collide with other packages
    assert {t for t in tops if not t.endswith(".dist-info")} == {"grokscope"}
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
