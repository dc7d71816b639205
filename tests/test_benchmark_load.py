"""benchmarks/load.js against this server, briefly: its scenarios stay runnable.

``--count N`` (what ``benchmarks/instructions.py`` relies on) must stop after N
operations, each of them a real echo the server answered; timed mode must run.
Nothing here is a timing threshold.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from nodeclient import node_available
from servers import REPO_ROOT, running_server

LOAD_JS = REPO_ROOT / "benchmarks" / "load.js"
APPS = REPO_ROOT / "benchmarks" / "apps"


def run_load(port: int, *args: str) -> dict:
    out = subprocess.run(
        [shutil.which("node") or "node", str(LOAD_JS), "--port", str(port), "--time-limit", "60", *args],
        cwd=str(REPO_ROOT),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    records = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    results = [r for r in records if r.get("event") == "result"]
    assert results and out.returncode == 0, (out.returncode, records, out.stderr[-2000:])
    return results[-1]


@pytest.mark.parametrize("scenario", ["ws-echo", "polling-echo"])
def test_load_generator_count_mode_stops_after_n_operations(scenario: str) -> None:
    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    with running_server("ours:app", "uvicorn", env={"PYTHONPATH": str(APPS)}) as srv:
        res = run_load(srv.port, "--scenario", scenario, "--clients", "4", "--count", "300", "--warmup", "0")
    # it stops right after the 300th: at most one operation per client completes on the way out
    assert 300 <= res["count"] <= 304, res
    assert res["p50_ms"] is not None and res["p50_ms"] > 0, res


def test_load_generator_timed_mode_still_runs() -> None:
    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    with running_server("ours:app", "uvicorn", env={"PYTHONPATH": str(APPS)}) as srv:
        args = ["--scenario", "ws-echo", "--clients", "2", "--duration", "0.3", "--warmup", "0"]
        res = run_load(srv.port, *args)
    assert res["count"] > 0 and res["seconds"] >= 0.3 * 0.99, res  # it ran for its duration, not to a count
