"""Fixtures for the Engine.IO protocol conformance suite.

``eio_url`` is the base URL (``http://127.0.0.1:PORT``) of a real server running
``tests/apps/conformance_app.py``.  One server is started per (server, implementation)
pair and shared by the whole test module.

Environment variables:

* ``CONFORMANCE_IMPLS``   comma-separated implementations, default ``ours``
                          (values: ``ours``, ``python-engineio``)
* ``CONFORMANCE_SERVERS`` comma-separated subset of ``servers.SERVERS`` (default: all)
* ``CONFORMANCE_URL``     run against an already running server at this base URL
                          instead (used by ``compare.py`` for the Node reference);
                          the two variables above are then ignored.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import servers  # noqa: E402

APP = "apps.conformance_app:app"
IMPLS = ("ours", "python-engineio")


def _csv_env(name: str, default: str) -> list[str]:
    raw = os.environ.get(name, "").strip() or default
    return [part.strip() for part in raw.split(",") if part.strip()]


def _params():
    external = os.environ.get("CONFORMANCE_URL", "").strip()
    if external:
        return [pytest.param(("external", external), id="external")]
    impls = _csv_env("CONFORMANCE_IMPLS", "ours")
    names = _csv_env("CONFORMANCE_SERVERS", ",".join(servers.SERVERS))
    for impl in impls:
        if impl not in IMPLS:
            raise pytest.UsageError(f"CONFORMANCE_IMPLS: unknown implementation {impl!r}; use {IMPLS}")
    for name in names:
        if name not in servers.SERVERS:
            raise pytest.UsageError(f"CONFORMANCE_SERVERS: unknown server {name!r}; use {servers.SERVERS}")
    return [pytest.param((name, impl), id=f"{name}-{impl}") for impl in impls for name in names]


@pytest.fixture(scope="module", params=_params())
def eio_server(request):
    """Yield the RunningServer (or None for an external URL) for this parameter."""
    name, impl = request.param
    if name == "external":
        yield None
        return
    if impl == "python-engineio" and name == "hypercorn-trio":
        # python-engineio's ASGI driver is asyncio-only: every request fails with 500.
        pytest.skip("python-engineio cannot run on trio (asyncio-only ASGI driver)")
    with servers.running_server(APP, name, env={"EIO_IMPL": impl}) as srv:
        yield srv


@pytest.fixture(scope="module")
def eio_url(request, eio_server) -> str:
    if eio_server is None:
        return os.environ["CONFORMANCE_URL"].strip().rstrip("/")
    return eio_server.url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the server's output to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        srv = getattr(item, "funcargs", {}).get("eio_server")
        if srv is not None:
            text = srv.stderr_text()
            report.sections.append((f"server output ({srv.name}, pid {srv.pid})", text[-6000:] or "<empty>"))
