"""What we ship: the MIT licence pyproject.toml declares, the templates and the migrations."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_license_file_is_the_mit_license_of_the_digest_authors():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the digest authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == {"text": "MIT"}
    assert "LICENSE" in project["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


def test_the_wheel_and_the_sdist_carry_the_license_the_templates_and_the_migrations(tmp_path):
    """Built with hatchling, the build backend (in the test extra): what `pip install`
    of a release gets must hold the licence, the templates and every migration."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
        for template in ("digest.html", "digest.txt", "partials/card.html", "web/base.html"):
            assert f"digest/templates/{template}" in names
        assert "digest/store/migrations/env.py" in names
        assert "digest/store/migrations/script.py.mako" in names
        versions = sorted((REPO / "digest/store/migrations/versions").glob("[0-9]*.py"))
        assert versions
        for script in versions:
            assert f"digest/store/migrations/versions/{script.name}" in names
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("/LICENSE") for n in tar.getnames())
