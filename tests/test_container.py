"""The Dockerfile and compose.yaml: the install step is the README's, the image runs
as non-root with a python healthcheck on /healthz, every DIGEST_* the compose file
sets is a real setting, and `docker compose config` accepts it where docker compose
exists (this machine and CI have no compose plugin and no daemon: skipped there)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from digest.config import _KEYS

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE = REPO / "compose.yaml"


def test_the_image_installs_digest_as_the_readme_does():
    readme = (REPO / "README.md").read_text()
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e ." in readme
    assert "RUN python3 -m venv .venv && .venv/bin/pip install -q -e '.[postgres]'" in DOCKERFILE


def test_the_image_runs_as_non_root_with_a_healthcheck_on_healthz():
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    health = re.search(r"^HEALTHCHECK .*?CMD (.+)$", DOCKERFILE, re.M | re.S)
    assert health and "/healthz" in health.group(1) and "python3" in health.group(1)
    assert "curl" not in health.group(1)


def test_compose_has_digest_postgres_and_a_mail_catcher_with_real_settings():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"digest", "db", "mailpit"} <= set(services)
    digest_env = services["digest"]["environment"]
    assert set(digest_env) <= set(_KEYS), set(digest_env) - set(_KEYS)
    assert digest_env["DIGEST_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert digest_env["DIGEST_SMTP_HOST"] == "mailpit"
    assert services["digest"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_compose_trusts_the_proxy_that_reaches_digest_through_the_published_port():
    """The host's proxy connects from the Docker gateway, not 127.0.0.1: trusting only
    127.0.0.1 put every visitor behind one address (one rate limit for everyone)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    trusted = services["digest"]["environment"]["DIGEST_TRUSTED_PROXIES"]
    assert re.fullmatch(r"\$\{DIGEST_TRUSTED_PROXIES:-\*\}", trusted), trusted
    assert all(p.startswith("127.0.0.1:") for p in services["digest"]["ports"])


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose (the plugin) is not installed")
    res = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DIGEST_SECRET_KEY": "x" * 32, "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert res.returncode == 0, res.stderr
