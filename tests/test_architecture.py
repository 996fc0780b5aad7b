"""The architecture as import contracts (``[tool.importlinter]`` in pyproject.toml), checked on the package
as the wheel lays it out: ``grokscope/`` with ``trainers/`` and ``cli/`` inside (the package-dir mapping).

The editable install maps ``trainers/`` and ``cli/`` into ``grokscope`` with an import hook that the import
graph builder cannot follow, so the test stages the installed layout in a temporary folder first.
"""

import ast
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = "from importlinter.cli import lint_imports; raise SystemExit(lint_imports(no_cache=True, verbose=False))"


def _package_dirs() -> dict[str, str]:
    text = (REPO / "pyproject.toml").read_text()
    block = re.search(r"^\[tool\.setuptools\.package-dir\]\n(.*?)(?:\n\n|\Z)", text, re.S | re.M).group(1)
    return {ast.literal_eval(k.strip()): ast.literal_eval(v.strip())
            for k, v in (line.split("=") for line in block.splitlines() if "=" in line)}


@pytest.fixture
def staged(tmp_path) -> Path:
    """The installed layout of the package, and the pyproject that holds the contracts."""
    for package, folder in sorted(_package_dirs().items()):  # grokscope first, then its mapped sub-packages
        shutil.copytree(REPO / folder, tmp_path / package.replace(".", "/"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_the_package_keeps_its_import_contracts(staged):
    result = _lint(staged)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("analysis/measures/leak.py", "import torch", "import torch"),
    ("analysis/measures/leak.py", "from grokscope.store.reader import RunStore", "Pure measures read no stores"),
    ("store/leak.py", "from grokscope.trainers.train import train", "never imports the trainers"),
    ("store/leak.py", "from grokscope.charts.runs import accuracy_chart", "Layers"),
    ("cli/analyze_leak.py", "import torch", "import torch"),
])
def test_a_forbidden_import_breaks_a_contract(staged, module, line, contract):
    """Each contract can fail: one planted import breaks the one it names (cli/analyze_leak stands for a
    command that only analyses: it is added to the torch contract's sources for this check)."""
    (staged / "grokscope" / module).write_text(line + "\n")
    if module.startswith("cli/"):
        text = (staged / "pyproject.toml").read_text()
        (staged / "pyproject.toml").write_text(text.replace('"grokscope.cli.analyze",',
                                                            '"grokscope.cli.analyze", "grokscope.cli.analyze_leak",'))
    result = _lint(staged)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, result.stdout[-3000:]
