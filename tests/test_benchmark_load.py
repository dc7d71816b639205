"""benchmarks/load.js against this server, briefly: its scenarios stay runnable.

``--count N`` (what ``benchmarks/instructions.py`` relies on) must stop after N
operations, each of them a real echo the server answered; timed mode must run.
Nothing here is a timing threshold.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

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


# ---- the tail-under-load scenarios (issue 21): tiny N, about a second each


def gc_report(port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/gc", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("app", ["bare_heartbeat:app", "ours:app", "pyengineio:app"])
def test_load_scenarios_hold_churn_and_reconnect(app: str) -> None:
    """Every session is held, churned or back over an upgrade; the app reports its GC pauses."""
    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    small = ["--sessions", "20", "--clients", "2", "--warmup", "0", "--settle", "0"]
    env = {"PYTHONPATH": str(APPS), "EIO_BENCH_GC": "1"}
    with running_server(app, "uvicorn", env=env) as srv:
        held = run_load(srv.port, "--scenario", "latency-under-load", *small, "--duration", "0.5")
        churn = run_load(srv.port, "--scenario", "churn", *small, "--duration", "1", "--churn-rate", "20")
        storm = run_load(srv.port, "--scenario", "reconnect-storm", *small)
        gc_stats = gc_report(srv.port)
    assert held["still_open"] == 20 and held["count"] > 0 and held["p999_ms"] >= held["p50_ms"], held
    assert held["max_ms"] >= held["p999_ms"], held
    assert churn["churned"] > 0 and churn["churn_errors"] == 0 and churn["still_open"] == 20, churn
    # every one of the 20 came back over polling -> websocket (an echo on the websocket after "5")
    assert storm["back"] == 20 and storm["count"] == 20 and storm["errors"] == 0, storm
    assert storm["recover_s"] > 0 and storm["max_ms"] <= 1000 * storm["recover_s"] + 1, storm
    assert gc_stats["gc_count"] == sum(gc_stats["gc_count_by_gen"]) and gc_stats["gc_seconds"] > 0, gc_stats


def test_run_py_reads_gc_pauses_at_the_marks(tmp_path) -> None:
    """run.py end to end on the new scenarios: one row each, with the server's GC figures."""
    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    out = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        str(REPO_ROOT / "benchmarks" / "run.py"),
        "--servers",
        "uvicorn",
        "--impls",
        "ours",
        "--scenarios",
        "latency-under-load-10,churn-10,reconnect-storm-10",
        "--load-window",
        "0.5",
        "--warmup",
        "0",
        "--idle-settle",
        "1",  # a second before each window: a GC record not reset at the start mark would hold it
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    results = {r["scenario"]: r for r in rows if r.get("type") == "result"}
    assert set(results) == {"latency-under-load-10", "churn-10", "reconnect-storm-10"}, rows
    for rec in results.values():
        assert rec["status"] == "ok", rec
        assert isinstance(rec["gc_count"], int) and rec["gc_full"] == rec["gc_count_by_gen"][2], rec
        assert abs(rec["gc_seconds"] - rec["window_s"]) < 0.5, rec  # reset and read at the window's marks
        assert len(rec["loadavg_start"]) == 3 and rec["gc_tracked_open"] > rec["gc_tracked_before"] > 0, rec
    assert "p99.9 ms" in proc.stdout and "s until all back" in proc.stdout


def test_run_py_records_a_control_outside_its_one_scenario_as_na(tmp_path) -> None:
    """The least control answers polling handshakes only: run.py records any other scenario
    of it as n/a, without starting a server that would refuse every request."""
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--servers", "uvicorn"]
    cmd += ["--impls", "least", "--scenarios", "ws-handshake,ws-echo", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    results = sorted((r["scenario"], r["status"]) for r in rows if r.get("type") == "result")
    assert results == [("ws-echo", "n/a"), ("ws-handshake", "n/a")], rows


@pytest.mark.parametrize("echo_rate", [50])
def test_paced_echo_times_from_the_schedule_so_a_stall_is_not_hidden(echo_rate: int) -> None:
    """--echo-rate R (open loop): the server stopped for 0.4 s mid-window shows in the tail.

    Every message due during the stall waits for it, and each round trip counts from its
    scheduled send, so p99 is near the stall. (A closed loop, --echo-rate 0, records one
    slow round trip per client and thousands of fast ones: its p99 stays small.) The
    clients keep their schedule: the count is what the rate asks for, stall or not.
    """
    import os
    import signal
    import time

    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    clients, duration, stall = 4, 2.0, 0.4
    with running_server("ours:app", "uvicorn", env={"PYTHONPATH": str(APPS)}) as srv:
        cmd = [shutil.which("node") or "node", str(LOAD_JS), "--port", str(srv.port), "--time-limit", "60"]
        cmd += ["--scenario", "latency-under-load", "--sessions", "2", "--clients", str(clients)]
        cmd += ["--echo-rate", str(echo_rate), "--duration", str(duration), "--warmup", "0.2"]
        cmd += ["--settle", "0", "--sync", "1"]
        proc = subprocess.Popen(
            cmd, cwd=str(REPO_ROOT), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        result: dict = {}
        try:
            assert proc.stdout is not None and proc.stdin is not None
            for line in proc.stdout:  # ends when the generator exits (its own time limit bounds it)
                msg = json.loads(line)
                if msg.get("event") == "mark":
                    proc.stdin.write("continue\n")
                    proc.stdin.flush()
                    if msg["name"] == "start":  # the window runs: stop the server in its middle
                        time.sleep(duration / 4)
                        os.kill(srv.pid, signal.SIGSTOP)
                        try:
                            time.sleep(stall)
                        finally:
                            os.kill(srv.pid, signal.SIGCONT)
                elif msg.get("event") in ("result", "error"):
                    result = msg
        finally:
            proc.wait(30)
    assert result.get("event") == "result", result
    expected = clients * echo_rate * duration
    assert 0.9 * expected <= result["count"] <= 1.15 * expected, result  # the schedule was kept
    assert result["echo_rate"] == echo_rate, result
    assert result["p99_ms"] >= 0.75 * stall * 1000, result  # the stall is in the tail, not one sample
    assert result["max_ms"] >= 0.9 * stall * 1000, result


def test_least_server_control_serves_real_handshakes() -> None:
    """The ``least`` control (benchmarks/apps/least_server.py) completes load.js's polling
    handshakes through uvicorn, every one answered as the client expects."""
    if not node_available():
        pytest.fail("node or node_modules missing: run `npm ci` at the repository root")
    with running_server("least_server:app", "uvicorn", env={"PYTHONPATH": str(APPS)}) as srv:
        args = ["--scenario", "polling-handshake", "--clients", "4", "--count", "200", "--warmup", "0"]
        res = run_load(srv.port, *args)
    assert res["count"] >= 200 and res["errors"] == 0, res


def test_least_server_control_does_a_complete_servers_work() -> None:
    """What the control claims to do for the two requests, checked in-process: the
    handlers run with the session's id (and the environ), the id is forgotten on close, a
    closed or unknown session and an ``Origin`` it does not check are refused."""
    import anyio
    import httpx

    sys.path.insert(0, str(APPS))
    try:
        import least_server
    finally:
        sys.path.remove(str(APPS))
    seen: list[tuple[str, str]] = []

    async def connect(sid: str, environ: dict) -> None:
        seen.append(("connect", sid if environ["QUERY_STRING"] == "EIO=4&transport=polling" else "?"))

    async def disconnect(sid: str, reason: str) -> None:
        seen.append(("disconnect", reason))

    async def main() -> None:
        transport = httpx.ASGITransport(app=least_server.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            opened = await client.get("/engine.io/?EIO=4&transport=polling")
            assert opened.status_code == 200 and opened.text.startswith("0{"), opened.text
            sid = json.loads(opened.text[1:])["sid"]
            assert len(sid) == 20 and sid in least_server.sessions
            assert seen == [("connect", sid)]
            url = f"/engine.io/?EIO=4&transport=polling&sid={sid}"
            closed = await client.post(url, content=b"1")
            assert (closed.status_code, closed.text) == (200, "ok")
            assert seen[1:] == [("disconnect", "client disconnect")] and sid not in least_server.sessions
            assert (await client.post(url, content=b"1")).status_code == 400  # gone
            foreign = await client.get(
                "/engine.io/?EIO=4&transport=polling", headers={"origin": "http://x.example"}
            )
            assert foreign.status_code == 400
            assert (await client.get("/engine.io/?EIO=3&transport=polling")).status_code == 400

    handlers = least_server.connect, least_server.disconnect
    least_server.connect, least_server.disconnect = connect, disconnect
    try:
        anyio.run(main)
    finally:
        least_server.connect, least_server.disconnect = handlers
