"""The checks CI runs on the code itself: import layers (import-linter), types
(mypy), lint and format (ruff). Each runs as the tool would from the repository root,
with the virtualenv's own executables, and a failure shows the tool's output.

Also: the named values are defined once (`digest.states`), and the public API's
Literal types say the same values."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest

from digest.states import FREQUENCIES, WEEKDAYS, SubscriberStatus
from digest.web import admin, api

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run_tool(name: str, *args: str, timeout: float = 600) -> None:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable} (the `test` extra has it)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [str(exe), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{name} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


def test_import_layers_hold():
    # --no-cache: the cache lives in the working tree and may be stale across branches.
    run_tool("lint-imports", "--no-cache")


def test_types_check():
    run_tool("mypy")


def test_ruff_lint():
    run_tool("ruff", "check", ".")


def test_ruff_format():
    run_tool("ruff", "format", "--check", ".")


def test_the_sql_contract_names_every_module_but_the_store():
    """The contract that keeps SQLAlchemy in the store lists the modules it covers;
    a new module of digest must be added to it (or it would go unchecked)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (sql,) = [c for c in contracts if c["id"] == "sql-in-the-store"]
    package = ROOT / "digest"
    modules = {
        f"digest.{p.stem if p.is_file() else p.name}"
        for p in package.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert set(sql["source_modules"]) == modules - {"digest.store", "digest.models"}


def test_the_api_literals_are_the_named_values():
    """The API keeps Literal types (its OpenAPI schema lists the values inline); they
    must say exactly what `digest.states` says."""
    hints = typing.get_type_hints(api.ScheduleFields)
    frequency, _ = typing.get_args(hints["frequency"])
    weekday, _ = typing.get_args(hints["weekday"])
    assert typing.get_args(frequency) == FREQUENCIES
    assert typing.get_args(weekday) == WEEKDAYS
    status = typing.get_type_hints(admin.list_subscribers, include_extras=True)["status"]
    literal, _ = typing.get_args(status)
    assert typing.get_args(literal) == tuple(SubscriberStatus)
