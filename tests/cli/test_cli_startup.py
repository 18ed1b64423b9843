"""Start-up cost: a command imports only what it uses. `digest --help` and the light
commands scripts call in loops (`subscribe`, `set`, `subscribers --json`) must not pay
for the stages they never reach: numpy and the ONNX model, Jinja and the rendering,
the mail transports, HTTP clients, the web app and the scheduler. Checked as the set of
modules the real `python -m digest` process imported (`-X importtime` lists each
one), never as a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clean_exit

from digest import store
from digest.cli import prune

# Never needed by the commands below (each is imported by a command that uses it).
STAGES = {
    "numpy",
    "onnxruntime",
    "tokenizers",
    "jinja2",
    "premailer",
    "css_inline",
    "dkim",
    "aiosmtplib",
    "httpx",
    "feedparser",
    "fastapi",
    "uvicorn",
    "apscheduler",
    "alembic",
    "flufl.bounce",
    "bibtexparser",
    "digest.rendering",
    "digest.semantic",
    "digest.pipeline",
    "digest.delivery.smtp",
    "digest.delivery.sender",
    "digest.delivery.dkim",
    "digest.sources.http",
    "digest.matching.index",
    "digest.matching.embedding",
    "digest.web",
    "digest.scheduler",
    "rich.progress",
}
# What opening the database costs: not for a command that never opens it.
DATABASE = {"sqlalchemy", "sqlmodel", "email_validator", "digest.store"}


def imported(args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    """The modules `python -m digest ARGS` imported, from its `-X importtime` lines."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "digest", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    rest = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import"))
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-1000:], rest[-2000:])
    assert "Traceback" not in rest
    return {line.rsplit("|", 1)[1].strip() for line in lines}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"], ["db", "--help"]])
def test_help_imports_neither_the_stages_nor_the_database(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    loaded = imported(args, env, tmp_path)
    assert "typer" in loaded  # the probe sees the process's imports
    assert loaded.isdisjoint(STAGES | DATABASE), sorted(loaded & (STAGES | DATABASE))


@pytest.mark.parametrize(
    "args",
    [
        ["subscribe", "ada@example.org", "-k", "reward model OR RLHF"],
        ["subscribers", "--json"],
        ["subscribers"],
        ["set", "ada@example.org", "--max-papers", "5", "-k", "diffusion"],
        ["pause", "ada@example.org"],
        ["unsubscribe", "ada@example.org"],
        ["db", "current"],
    ],
)
def test_light_commands_import_the_store_and_no_stage(
    args: list[str], env: dict[str, str], tmp_path: Path, cli
) -> None:
    if args[0] != "subscribe":
        clean_exit(cli("subscribe", "ada@example.org", "-k", "transformers"), 0)
    loaded = imported(args, env, tmp_path)
    assert "digest.store" in loaded
    assert loaded.isdisjoint(STAGES), sorted(loaded & STAGES)


def test_check_query_without_an_interest_needs_no_model_rendering_or_transport(
    env: dict[str, str], tmp_path: Path
) -> None:
    loaded = imported(["check-query", "transformer AND NOT survey"], env, tmp_path)
    assert "digest.matching.index" in loaded  # it ranks: the index (and numpy) is used
    unused = STAGES - {"numpy", "digest.semantic", "digest.matching.index"}
    assert loaded.isdisjoint(unused), sorted(loaded & unused)


def test_an_interest_is_embedded_so_its_modules_are_imported(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The other side: what the light commands skip is imported when it is used."""
    args = ["subscribe", "ada@example.org", "-i", "reward models for aligning LLMs"]
    loaded = imported(args, {**env, "DIGEST_SEMANTIC": "off"}, tmp_path)
    assert {"digest.semantic", "numpy"} <= loaded


def test_prune_batch_default_is_the_stores() -> None:
    """`digest prune --batch` shows its default without importing the store."""
    assert prune.PRUNE_BATCH == store.PRUNE_BATCH
