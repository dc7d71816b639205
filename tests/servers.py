"""Run an ASGI application inside a real server subprocess on 127.0.0.1.

Usage::

    from servers import SERVERS, running_server

    with running_server("apps.conformance_app:app", "uvicorn") as srv:
        httpx.get(srv.url + "/engine.io/?EIO=4&transport=polling", timeout=5)
        print(srv.stderr_text())        # everything the server wrote so far

``running_server`` yields a :class:`RunningServer`:

* ``srv.url``        -- base URL, e.g. ``"http://127.0.0.1:43817"``
* ``srv.ws_url``     -- the same with the ``ws://`` scheme
* ``srv.port`` / ``srv.pid``
* ``srv.stderr_text()`` -- the server's combined stdout+stderr captured so far
* ``str(srv)`` is ``srv.url``, so the object can be used where a URL string is
  expected (f-strings, ``+`` needs ``srv.url``).

``app`` is ``"module:attr"``; the module is imported by the server process with the
repository root and ``tests/`` on ``PYTHONPATH`` and the repository root as working
directory.  ``server`` is one of :data:`SERVERS`.

Process hygiene: the server is started in its own session/process group (so the
workers that granian/hypercorn may fork stay in a group whose id is the PID we
started).  On exit we send SIGTERM to that PID, wait a bounded time, then SIGKILL the
group we created.  Nothing else is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"

SERVERS = ["uvicorn", "hypercorn-asyncio", "hypercorn-trio", "granian"]

HOST = "127.0.0.1"
READY_TIMEOUT = 15.0  # seconds until the server must accept TCP connections
READY_STEP = 0.05  # polling step while waiting for readiness
STOP_TIMEOUT = 5.0  # grace period after SIGTERM before SIGKILL
KILL_TIMEOUT = 5.0  # bound on waiting for the process after SIGKILL


class ServerStartError(RuntimeError):
    """The server process died or never listened; the message holds its output."""


class RunningServer:
    def __init__(self, name: str, app: str, port: int, proc: subprocess.Popen, log_path: str):
        self.name = name
        self.app = app
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.ws_url = f"ws://{HOST}:{port}"
        self.pid = proc.pid
        self._proc = proc
        self._log_path = log_path

    def stderr_text(self) -> str:
        try:
            with open(self._log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError as exc:  # pragma: no cover - the file is ours, should not happen
            return f"<cannot read server log {self._log_path}: {exc}>"

    def is_alive(self) -> bool:
        return self._proc.poll() is None

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"<RunningServer {self.name} {self.app} {self.url} pid={self.pid}>"


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1 (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_command(app: str, server: str, port: int) -> list[str]:
    py = sys.executable
    if server == "uvicorn":
        return [
            py,
            "-m",
            "uvicorn",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if server in ("hypercorn-asyncio", "hypercorn-trio"):
        worker = server.split("-", 1)[1]
        # hypercorn writes no access log unless --access-logfile is given
        return [
            py,
            "-m",
            "hypercorn",
            "--worker-class",
            worker,
            "--bind",
            f"{HOST}:{port}",
            "--workers",
            "1",
            app,
        ]
    if server == "granian":
        return [
            py,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            app,
        ]
    raise ValueError(f"unknown server {server!r}; expected one of {SERVERS}")


def _pythonpath(extra: str | None) -> str:
    parts = [str(REPO_ROOT), str(TESTS_DIR)]
    if extra:
        parts.append(extra)
    return os.pathsep.join(parts)


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - group id reused by someone else
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM our PID, bounded wait, then SIGKILL the process group we created."""
    pgid = proc.pid  # start_new_session=True makes the child a group leader
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left in *our* group (the leader, or workers it forked) gets SIGKILL.
    # The group id can only be reused once every member is gone, so this is safe even
    # after the leader was reaped.
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + KILL_TIMEOUT
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
    if proc.poll() is None:
        try:
            proc.wait(timeout=KILL_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


@contextlib.contextmanager
def running_server(app: str, server: str, env: dict | None = None) -> Iterator[RunningServer]:
    """Start ``server`` serving ``app`` on a free 127.0.0.1 port; yield a RunningServer.

    ``env`` entries are added to (and override) the current environment; a
    ``PYTHONPATH`` given there is appended after the repo root and ``tests/``.
    Raises :class:`ServerStartError` (with the captured output) if the process exits
    or does not listen within READY_TIMEOUT seconds.
    """
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}; expected one of {SERVERS}")
    port = free_port()
    cmd = server_command(app, server, port)
    child_env = dict(os.environ)
    extra_pp = None
    if env:
        env = dict(env)
        extra_pp = env.pop("PYTHONPATH", None)
        child_env.update({k: str(v) for k, v in env.items()})
    child_env["PYTHONPATH"] = _pythonpath(extra_pp or os.environ.get("PYTHONPATH"))
    child_env["PYTHONUNBUFFERED"] = "1"

    fd, log_path = tempfile.mkstemp(prefix=f"eio-{server}-", suffix=".log")
    proc = None
    try:
        with os.fdopen(fd, "wb") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                cmd,
                cwd=str(REPO_ROOT),
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        srv = RunningServer(server, app, port, proc, log_path)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{server} exited with code {proc.returncode} before listening on "
                    f"port {port}\ncommand: {' '.join(cmd)}\noutput:\n{srv.stderr_text()}"
                )
            if _tcp_accepts(port):
                break
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"{server} did not listen on port {port} within {READY_TIMEOUT}s\n"
                    f"command: {' '.join(cmd)}\noutput:\n{srv.stderr_text()}"
                )
            time.sleep(READY_STEP)
        yield srv
    finally:
        if proc is not None:
            _stop(proc)
        try:
            os.unlink(log_path)
        except OSError:
            pass
