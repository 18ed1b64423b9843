"""`digest preview` on an operator's own templates (DIGEST_TEMPLATES_DIR) that go
wrong: an include of a template no folder has, and a loop without end in sight.
Each is one clear line and exit 2 (the real command in a subprocess), never a
traceback, and never a preview that hangs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import clean_exit

from digest.preview import PREVIEW_MAX_RANGE, PREVIEW_MAX_STEPS, PREVIEW_RENDER_SECONDS


def with_footer(tmp_path: Path, footer: str) -> dict[str, str]:
    """A templates folder whose digest.html overrides the footer block."""
    folder = tmp_path / "tpl"
    folder.mkdir(exist_ok=True)
    (folder / "digest.html").write_text(
        '{% extends "layout.html" %}\n{% block footer %}' + footer + "{% endblock %}\n",
        encoding="utf-8",
    )
    return {"DIGEST_TEMPLATES_DIR": str(folder)}


@pytest.mark.parametrize(
    ("name", "shown", "hint"),
    [
        ("/etc/passwd", "'/etc/passwd'", True),
        ("../../../etc/passwd", "'../../../etc/passwd'", True),
        ("partials/nope.html", "'partials/nope.html'", False),
        ("x\\r\\nInjected: yes", "'x\\r\\nInjected: yes'", False),  # CRLF stays escaped
    ],
)
def test_an_include_of_a_missing_template_says_so(cli, tmp_path, name, shown, hint) -> None:
    env = with_footer(tmp_path, '{% include "' + name + '" %}')
    result = cli("preview", "-k", "diffusion", extra_env=env)
    clean_exit(result, 2)
    [line] = result.stderr.strip().splitlines()  # one line
    assert f"template {shown} not found in {tmp_path / 'tpl'} or " in line
    assert "digest.html, line 2" in line  # where the include is
    assert ("a template name is a path inside those folders" in line) == hint
    assert "root:" not in result.stdout + result.stderr  # /etc/passwd was never read


def test_a_huge_range_fails_the_preview_at_once(cli, tmp_path) -> None:
    """range(10**9) held `digest preview` for minutes; the preview's environment caps
    range() (the edition's does not: its rendering is not slowed by a check)."""
    env = with_footer(tmp_path, "{% for i in range(10**9) %}{{ i }}{% endfor %}")
    result = cli("preview", "-k", "diffusion", extra_env=env)  # 120 s timeout: it hung
    clean_exit(result, 2)
    [line] = result.stderr.strip().splitlines()
    assert "digest.html, line 2" in line and "range() of 1,000,000,000 items" in line
    assert f"{PREVIEW_MAX_RANGE:,}" in line


def test_a_range_within_the_cap_renders(cli, tmp_path) -> None:
    env = with_footer(tmp_path, "{% for i in range(2, 5) %}<p>item {{ i }}</p>{% endfor %}")
    result = cli("preview", "-k", "diffusion", "--format", "html", extra_env=env)
    clean_exit(result, 0)
    assert [f"<p>item {i}</p>" in result.stdout for i in (2, 3, 4)] == [True] * 3


def test_nested_ranges_within_the_cap_still_fail_the_preview_at_once(cli, tmp_path) -> None:
    """Each range(99,999) is under the cap, but nested they are 10**10 steps: the cap
    is on the steps of one whole render, not on one range()."""
    loop = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    result = cli("preview", "-k", "diffusion", extra_env=with_footer(tmp_path, loop))
    clean_exit(result, 2)  # 120 s timeout: it hung
    [line] = result.stderr.strip().splitlines()
    assert "digest.html, line 2" in line and f"{PREVIEW_MAX_STEPS:,}" in line


def test_many_small_ranges_under_the_budget_render(cli, tmp_path) -> None:
    loop = "{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}<p>ok</p>"
    env = with_footer(tmp_path, loop)
    result = cli("preview", "-k", "diffusion", "--format", "html", extra_env=env)
    clean_exit(result, 0)
    assert "<p>ok</p>" in result.stdout


def test_a_render_past_the_time_limit_is_stopped_with_one_clear_line(cli, tmp_path) -> None:
    """No range(), so no step budget: 10**10 steps over two strings ran for hours.
    The render runs in a child process, killed at PREVIEW_RENDER_SECONDS."""
    loop = '{% for a in "x" * 10**5 %}{% for b in "y" * 10**5 %}{% endfor %}{% endfor %}'
    started = time.monotonic()
    result = cli("preview", "-k", "diffusion", extra_env=with_footer(tmp_path, loop))
    took = time.monotonic() - started
    clean_exit(result, 2)
    [line] = result.stderr.strip().splitlines()
    assert f"took longer than {PREVIEW_RENDER_SECONDS:g} s to render the preview" in line
    assert PREVIEW_RENDER_SECONDS <= took < PREVIEW_RENDER_SECONDS + 30
    assert result.stdout == ""


def test_a_huge_string_fails_at_once_instead_of_filling_the_memory(cli, tmp_path) -> None:
    """`"x" * 10**10` asked for 10 GB in one C call that no timer interrupts: the
    render's process has its memory capped, so it fails at once, naming file and line."""
    started = time.monotonic()
    env = with_footer(tmp_path, '{{ "x" * 10**10 }}')
    result = cli("preview", "-k", "diffusion", extra_env=env)
    clean_exit(result, 2)
    assert time.monotonic() - started < PREVIEW_RENDER_SECONDS
    [line] = result.stderr.strip().splitlines()
    assert "digest.html, line 2: out of memory (a preview may use 2 GiB)" in line
