"""`digest web` / `digest serve` on a port another program holds: one clear line and
exit 3 (documented in the README), before anything starts."""

from __future__ import annotations

import socket

import pytest
from conftest import run_cli


@pytest.mark.parametrize("command", ["web", "serve"])
def test_a_busy_port_is_one_line_and_exit_3(command, env, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        res = run_cli([command, "--host", "127.0.0.1", "--port", str(port)], env, tmp_path, 60)
    assert res.code == 3, res.stderr
    assert res.stderr == (
        f"error: port {port} on 127.0.0.1 is in use; set DIGEST_HTTP_PORT or --port\n"
    )
