"""The code stays ruff-clean and mypy --strict clean (configuration in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    run("ruff", "check", "src", "tests", "scripts", "benchmarks")


def test_ruff_format() -> None:
    run("ruff", "format", "--check", "src")


def test_mypy_strict() -> None:
    run("mypy")
