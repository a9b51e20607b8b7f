"""The project's own rules, enforced with the tests: ruff clean and mypy strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return str(found)


def test_ruff_is_clean() -> None:
    result = subprocess.run([_tool("ruff"), "check", "aggregator", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_data_file_of_the_package_is_shipped() -> None:
    """`pip install .` (the README's run command) copies only the package data pyproject names:
    a template or data file left out works from the checkout and fails on a user's machine."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["aggregator"]
    package = ROOT / "aggregator"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "no data files found: the test looks in the wrong place"
    missing = [d for d in data if not any(fnmatch.fnmatch(d, g) for g in globs)]
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"
