"""Ctrl-C during `digest preview` reaches every process of the terminal's process
group: the command, the forkserver the render forks from, and the render's child.
The command says nothing more than any interrupted command (exit 130, no
traceback from any of them) and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import wait_for


def session_processes(sid: int) -> dict[int, tuple[str, str]]:
    """{pid: (state, command line)} of the live processes of session `sid`."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(name)] = (fields[0], cmdline.decode(errors="replace"))
    return found


def importing(sid: int, library: str) -> bool:
    """Whether the forkserver of session `sid` has loaded `library` (a shared object)."""
    for pid, (_, cmdline) in session_processes(sid).items():
        if "forkserver" in cmdline:
            try:
                return library in Path(f"/proc/{pid}/maps").read_text()
            except OSError:
                return False
    return False


def test_ctrl_c_while_the_renderer_starts_gives_no_traceback_and_leaves_nothing(
    env, tmp_path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", "-k", "diffusion"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    try:
        # the forkserver is importing digest.preview (~0.5 s): pydantic is loaded
        wait_for(lambda: importing(proc.pid, "pydantic_core"), timeout=60, interval=0.005)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err, err.decode()
    wait_for(lambda: not session_processes(proc.pid), timeout=10)
