"""Start the examples as their docstrings say, on a free 127.0.0.1 port, and stop them by PID.

The commands are read from the examples' own docstrings, so a test fails when a
documented command stops working: the line that starts with ``.venv/bin/`` and
contains a given marker is taken, its port ``8000`` becomes the test's port, and
``.venv/bin/`` becomes the directory of the running interpreter.

Every process is started in a session of its own; :func:`stop` sends SIGTERM to
the PID we started, waits a bounded time, then SIGKILLs that process group (the
workers hypercorn or granian may fork stay in it). Nothing else is signalled.
"""

from __future__ import annotations

import ast
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def docstring_command(relpath: str, marker: str, port: int, extra: list[str] | None = None) -> list[str]:
    """The documented command of an example (the ``.venv/bin/`` line holding ``marker``)."""
    source = (REPO_ROOT / relpath).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    for line in doc.splitlines():
        line = line.strip()
        if line.startswith(".venv/bin/") and marker in line:
            break
    else:
        raise AssertionError(f"{relpath}: no documented command containing {marker!r}")
    bindir = os.path.dirname(sys.executable)
    args = shlex.split(line.replace(".venv/bin/", bindir + "/", 1))
    if not any("8000" in a for a in args):
        raise AssertionError(f"{relpath}: the documented command has no port 8000: {line}")
    return [a.replace("8000", str(port)) for a in args] + (extra or [])


class Proc:
    """A started server: its URL, PID and captured output."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        fd, self.log_path = tempfile.mkstemp(prefix="eio-example-", suffix=".log")
        os.close(fd)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=str(REPO_ROOT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.cmd} did not listen within {READY_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own group: leftovers only
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)


@contextlib.contextmanager
def running(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[Proc]:
    proc = Proc(cmd, port, env)
    try:
        proc.start()
        yield proc
    finally:
        proc.cleanup()
