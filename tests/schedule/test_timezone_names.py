"""Time zone names that ZoneInfo opens but that are not IANA zones: `localtime` is
the server's own zone (a link to /etc/localtime, whatever the host is set to),
`right/*` and `posixrules` exist only where the system tzdata ships them. A
subscriber or a setting naming one would silently change meaning, or fall back to
UTC, on another host."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("name", ["localtime", "right/UTC", "posixrules", "posix/UTC"])
def test_host_specific_zone_files_are_refused(cli, name: str) -> None:
    res = cli("subscribe", "ada@example.org", "-k", "LLM", "--timezone", name)
    assert res.code == 2, res.stdout
    assert "Traceback" not in res.stderr
    assert "IANA time zone" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert json.loads(cli("subscribers", "--json").stdout) == []


def test_real_zones_and_their_old_aliases_are_still_accepted(cli) -> None:
    for k, name in enumerate(["Europe/Berlin", "US/Eastern", "UTC", "Etc/GMT-14"]):
        res = cli("subscribe", f"u{k}@example.org", "-k", "LLM", "--timezone", name)
        assert res.code == 0, res.stderr
