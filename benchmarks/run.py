#!/usr/bin/env python3
"""Side-by-side Engine.IO benchmarks: one command, one table of ratios.

    .venv/bin/python benchmarks/run.py            # full run (see README.md)
    .venv/bin/python benchmarks/run.py --quick    # under a minute

For every ASGI server x implementation (bare ASGI echo, python-engineio, ours)
it starts the server on 127.0.0.1 pinned to one core (taskset), drives it with
benchmarks/load.js pinned to the other core, samples the server's CPU
(/proc/PID/stat) and RSS (/proc/PID/status) at the generator's phase marks,
appends one JSON line per measurement to benchmarks/results/*.jsonl and prints
a table of ratios measured in the same run.  ``--report FILE`` prints the
table of an earlier results file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APPS = HERE / "apps"
RESULTS = HERE / "results"
LOAD_JS = HERE / "load.js"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"  # servers and load stay on loopback

# ------------------------------------------------------------------ catalogue

SERVERS = ["uvicorn", "uvicorn-sansio", "granian", "hypercorn", "hypercorn-trio"]
SERVER_NOTES = {
    "uvicorn": "uvicorn, uvloop + httptools, --ws websockets",
    "uvicorn-sansio": "uvicorn, uvloop + httptools, --ws websockets-sansio",
    "granian": "granian --interface asgi, 1 worker, uvloop",
    "hypercorn": "hypercorn -k asyncio, in-process worker (-w 0)",
    "hypercorn-trio": "hypercorn -k trio, in-process worker (-w 0)",
}
# python-engineio (and bare-hb's driver) need asyncio
ASYNCIO_ONLY = {"pyeio", "pyeio-sync", "bare-hb", "bare-hb-again"}
# impls that answer only some scenarios (a control); any other scenario is recorded n/a
ONLY_SCENARIOS = {"least": {"polling-handshake"}}


def not_run(server: str, impl: str, scenario: str) -> tuple[str, str] | None:
    """Why impl is not measured on server in scenario, as (status, reason); None if it is."""
    if impl in ASYNCIO_ONLY and server.endswith("-trio"):
        return ("n/a", f"{IMPLS[impl][2]}: asyncio only")
    if scenario not in ONLY_SCENARIOS.get(impl, (scenario,)):
        return ("n/a", f"{IMPLS[impl][2]}: not this scenario")
    return None


IMPLS = {
    # name: (module:attr, EIO_ASYNC_HANDLERS, label)
    "bare": ("bare:app", None, "bare ASGI echo"),
    "bare-hb": ("bare_heartbeat:app", None, "bare ASGI echo + the least Engine.IO heartbeat"),
    # a control: bare plus EIO_BENCH_SPIN_US (default 10) of tight-loop CPU per HTTP request
    "bare-spin": ("bare_spin:app", None, "bare ASGI echo + a fixed CPU loop per HTTP request"),
    # a control: the least work a complete server does for a polling handshake (that only)
    "least": ("least_server:app", None, "the least work of a complete server, polling handshakes only"),
    # the same app again, as a second row: how far two runs of one app differ (an A/A comparison)
    "bare-hb-again": ("bare_heartbeat:app", None, "bare-hb again, the noise between two runs of one app"),
    "pyeio": ("pyengineio:app", "true", "python-engineio"),
    "pyeio-sync": ("pyengineio:app", "false", "python-engineio async_handlers=False"),
    "ours": ("ours:app", "true", "engineio_asgi"),
    "ours-sync": ("ours:app", "false", "engineio_asgi async_handlers=False"),
    "ours-gc": ("ours_gc:app", "true", "engineio_asgi + engineio_asgi.tune_gc()"),
}

# scenario kind -> load.js parameters and the metrics the table shows
KINDS = {
    "ws-echo": {"clients": 50, "inflight": 1},
    "ws-pipelined": {"clients": 20, "inflight": 100},
    "polling-echo": {"clients": 50},
    "polling-handshake": {"clients": 20},
    "ws-handshake": {"clients": 10},
    "fanout": {"sessions": 1000},
    "idle": {"sessions": 10000},
    "latency-under-load": {"sessions": 1000, "clients": 50},
    "churn": {"sessions": 1000, "clients": 50},
    "reconnect-storm": {"sessions": 1000},
}
# kinds that get a fresh server each (the others of one server+impl share one)
ISOLATED = {"idle", "latency-under-load", "churn", "reconnect-storm"}
# kinds whose server records its collector's pauses (apps/_gcstats.py, EIO_BENCH_GC=1)
GC_KINDS = {"latency-under-load", "churn", "reconnect-storm"}
# (key in the record, label, lower is better, compare as difference)
CPU_PER_OP = ("server_cpu_us_per_op", "srv CPU us/op", True, False)  # robust to noise from other load
GC = [  # the server's collections in the window; counts compare as differences
    ("gc_count", "GC collections", True, True),
    ("gc_full", "GC full (gen 2)", True, True),
    ("gc_total_ms", "GC total ms", True, False),
    ("gc_max_ms", "GC max pause ms", True, False),
    ("gc_cpu_max_ms", "GC max pause CPU ms", True, False),
    ("gc_tracked_per_session", "GC-tracked objects/session", True, False),
]
TAIL = [
    ("rate", "msg/s", False, False),
    ("p50_ms", "p50 ms", True, False),
    ("p99_ms", "p99 ms", True, False),
    ("p999_ms", "p99.9 ms", True, False),
    ("max_ms", "max ms", True, False),
    *GC,
]
METRICS = {
    "ws-echo": [
        ("rate", "msg/s", False, False),
        ("p50_ms", "p50 ms", True, False),
        ("p99_ms", "p99 ms", True, False),
        CPU_PER_OP,
    ],
    "ws-pipelined": [("rate", "msg/s", False, False), CPU_PER_OP],
    "polling-echo": [("rate", "round trips/s", False, False), ("p50_ms", "p50 ms", True, False), CPU_PER_OP],
    "polling-handshake": [("rate", "handshakes/s", False, False), CPU_PER_OP],
    "ws-handshake": [("rate", "handshakes/s", False, False), CPU_PER_OP],
    "fanout": [
        ("deliveries_per_s", "deliveries/s", False, False),
        ("us_per_delivery", "srv CPU us/delivery", True, False),
        ("p50_ms", "p50 ms/fanout", True, False),
    ],
    "idle": [("kib_per_session", "KiB/session", True, True), ("server_cpu_pct", "srv CPU %", True, True)],
    "latency-under-load": TAIL,
    "churn": [*TAIL, ("churn_per_s", "churned sessions/s", False, False)],
    "reconnect-storm": [
        ("recover_s", "s until all back", True, False),
        ("rate", "reconnects/s", False, False),
        ("p50_ms", "p50 ms to back", True, False),
        ("p99_ms", "p99 ms to back", True, False),
        CPU_PER_OP,
        *GC,
    ],
}
FULL_SCENARIOS = [
    "ws-echo",
    "ws-pipelined",
    "polling-echo",
    "polling-handshake",
    "ws-handshake",
    "fanout-100",
    "fanout-1000",
    "idle",
    "ws-echo+deflate",
    "idle+deflate",
]
QUICK_SCENARIOS = ["ws-echo", "polling-echo"]
QUICK_SERVERS = ["uvicorn", "granian"]
FULL_IMPLS = ["bare", "pyeio", "ours", "ours-sync"]
QUICK_IMPLS = ["bare", "pyeio", "ours"]
# --tail: the tail-under-load set (issue 21)
TAIL_SCENARIOS = [
    "latency-under-load-1000",
    "latency-under-load-5000",
    "latency-under-load-10000",
    "churn-1000",
    "reconnect-storm-1000",
    "reconnect-storm-5000",
]
TAIL_IMPLS = ["bare-hb", "pyeio", "ours"]
# latency-under-load and churn: each of the 50 echo clients sends this many messages a second
# (open loop; 1,000 msg/s in all, a tenth of the slowest app's saturation here with 10,000 held
# sessions on a loaded machine); --echo-rate 0 is the closed loop at saturation
DEFAULT_ECHO_RATE = 20.0


def parse_scenario(name: str) -> dict:
    """'fanout-500+deflate' -> {'name':..., 'kind':'fanout', 'sessions':500, 'deflate':True}."""
    base, plus, flag = name.partition("+")
    if plus and flag != "deflate":
        raise ValueError(f"unknown scenario option +{flag} (only +deflate)")
    deflate = bool(plus)
    kind, size = base, None
    if base not in KINDS and "-" in base:
        head, _, tail = base.rpartition("-")
        if head in KINDS and tail.isdigit():
            kind, size = head, int(tail)
    if kind not in KINDS:
        raise ValueError(
            f"unknown scenario {name!r}; kinds: {', '.join(KINDS)} (fanout-N, idle-N, latency-under-load-N, "
            "churn-N, reconnect-storm-N, +deflate)"
        )
    if deflate and kind.startswith("polling"):
        raise ValueError(f"{name}: permessage-deflate applies to websocket scenarios only")
    params = dict(KINDS[kind])
    if size is not None:
        if "sessions" in params:
            params["sessions"] = size
        else:
            params["clients"] = size
    return {"name": name, "kind": kind, "deflate": deflate, **params}


# ------------------------------------------------------------------ processes


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime+stime ticks, starttime) of pid, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int) -> list[int]:
    """root and every process below it (e.g. granian's worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo and len(out) < 1000:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def machine_busy_ticks() -> int:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def generator_lines(proc: subprocess.Popen, deadline: float) -> Iterator[dict | str]:
    """What a load generator prints, one JSON object per line (a line that is not JSON
    comes as its text), until its output ends or ``deadline`` (``time.monotonic()``)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=1.0):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    yield json.loads(line)
                except ValueError:
                    yield line.decode(errors="replace")[:200]
            if not chunk:
                return
    finally:
        sel.close()


def go_on(proc: subprocess.Popen) -> None:
    """Let a load generator run with ``--sync 1`` go on past the mark it printed."""
    try:
        proc.stdin.write(b"continue\n")
        proc.stdin.flush()
    except OSError:
        pass


def http_get(
    port: int, path: str, method: str = "GET", body: bytes = b"", timeout: float = 2.0
) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """One server process we started (pinned), measured over its process tree.

    A subclass serving another app changes :meth:`target`, :meth:`env`, ``cwd`` and
    ``ready_path`` (where an Engine.IO handshake says the server is up)."""

    cwd = ROOT
    ready_path = "/engine.io/"

    def __init__(
        self,
        server: str,
        impl: str,
        core: str,
        log_path: Path,
        gc: bool = False,
        runtime_core: str | None = None,
    ):
        self.server, self.impl, self.core, self.log_path = server, impl, core, log_path
        self.gc = gc  # the app answers GET /_bench/gc (apps/_gcstats.py)
        self.runtime_core = runtime_core  # granian: its tokio threads are moved here once it is up
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.known: dict[int, int] = {}  # pid -> starttime, for stopping only our own

    def target(self) -> str:
        """The ASGI app, as ``module:attribute``."""
        return IMPLS[self.impl][0]

    def command(self) -> list[str]:
        target = self.target()
        p = str(self.port)
        if self.server.startswith("uvicorn"):
            ws = "websockets-sansio" if self.server == "uvicorn-sansio" else "websockets"
            return [
                PY,
                "-m",
                "uvicorn",
                target,
                "--host",
                HOST,
                "--port",
                p,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--ws",
                ws,
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        if self.server == "granian":
            return [
                PY,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--host",
                HOST,
                "--port",
                p,
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--log-level",
                "warning",
                "--no-access-log",
                "--backlog",
                "4096",
                "--backpressure",
                "20000",
                target,
            ]
        if self.server.startswith("hypercorn"):
            worker = "trio" if self.server == "hypercorn-trio" else "asyncio"
            return [
                PY,
                "-m",
                "hypercorn",
                "-k",
                worker,
                "-w",
                "0",
                "-b",
                f"{HOST}:{p}",
                "--backlog",
                "4096",
                "--log-level",
                "warning",
                target,
            ]
        raise ValueError(self.server)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), str(ROOT), env.get("PYTHONPATH", "")]))
        flag = IMPLS[self.impl][1]
        if flag is None:
            env.pop("EIO_ASYNC_HANDLERS", None)
        else:
            env["EIO_ASYNC_HANDLERS"] = flag
        if self.gc:
            env["EIO_BENCH_GC"] = "1"
        else:
            env.pop("EIO_BENCH_GC", None)
        return env

    def gc_report(self, reset: bool = False, objects: bool = False, collect: bool = False) -> dict:
        """The collector's pauses since the last reset (empty without gc or on failure);
        objects: also the number of objects it tracks (slow); collect: after a full collection."""
        if not self.gc:
            return {}
        flags = (("reset=1", reset), ("objects=1", objects), ("collect=1", collect))
        query = "&".join(q for q, on in flags if on)
        try:
            status, body = http_get(self.port, "/_bench/gc" + ("?" + query if query else ""), timeout=30.0)
            return json.loads(body) if status == 200 else {"gc_error": f"HTTP {status}"}
        except (OSError, ValueError) as exc:
            return {"gc_error": repr(exc)}

    def start(self, timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n### {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.core, *self.command()],
                cwd=self.cwd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        last = "not listening"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                path = self.ready_path
                status, body = http_get(self.port, f"{path}?EIO=4&transport=polling")
                if status == 200 and body[:1] == b"0":
                    sid = json.loads(body[1:])["sid"]
                    http_get(self.port, f"{path}?EIO=4&transport=polling&sid={sid}", "POST", b"1")
                    self.remember()
                    runtime_core = self.runtime_core
                    if runtime_core is not None and not self.move_runtime_threads(int(runtime_core)):
                        self.stop()
                        raise RuntimeError("no tokio runtime thread found to move (--granian-runtime-core)")
                    return
                last = f"handshake answered {status} {body[:200]!r}"
            except (OSError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s ({last}): {self.log_tail()}")

    def remember(self) -> list[int]:
        pids = descendants(self.proc.pid)
        for pid in pids:
            st = proc_stat(pid)
            if st is not None:
                self.known.setdefault(pid, st[2])
        return pids

    def move_runtime_threads(self, core: int) -> int:
        """Pin the server's tokio threads (granian's runtime) to ``core``; returns how many."""
        moved = 0
        for pid in self.remember():
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                try:
                    with open(f"/proc/{pid}/task/{tid}/comm") as f:
                        name = f.read().strip()
                    if name.startswith("tokio-rt"):
                        os.sched_setaffinity(int(tid), {core})
                        moved += 1
                except OSError:
                    continue
        return moved

    def sample(self) -> dict:
        pids = self.remember()
        ticks = 0
        for pid in pids:
            st = proc_stat(pid)
            if st is not None:
                ticks += st[1]
        return {
            "t": time.monotonic(),
            "cpu_s": ticks / CLK_TCK,
            "rss_kib": sum(rss_kib(p) for p in pids),
            "busy_s": machine_busy_ticks() / CLK_TCK,
            "pids": len(pids),
        }

    def log_tail(self, n: int = 6) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.remember()
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_known()
                self.proc.wait(5)
        self.kill_known()  # workers orphaned by their parent, if any

    def kill_known(self) -> None:
        for pid, started in self.known.items():
            st = proc_stat(pid)
            if st is not None and st[2] == started:  # still the process we started
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ------------------------------------------------------------------ one scenario


def run_load(server: Server, scen: dict, opts, gen_core: str) -> dict:
    kind = scen["kind"]
    cmd = [
        "taskset",
        "-c",
        gen_core,
        "node",
        str(LOAD_JS),
        "--scenario",
        kind,
        "--port",
        str(server.port),
        "--sync",
        "1",
        "--duration",
        str(opts.duration),
        "--warmup",
        str(opts.warmup),
        "--deflate",
        "1" if scen["deflate"] else "0",
        "--size",
        str(opts.size),
    ]
    for key in ("clients", "inflight", "sessions"):
        if key in scen:
            cmd += [f"--{key}", str(scen[key])]
    limit = opts.warmup + opts.duration + 60
    if kind == "idle":
        cmd += ["--window", str(opts.idle_window), "--settle", str(opts.idle_settle), "--concurrency", "200"]
        limit = scen["sessions"] / 100 + opts.idle_settle + opts.idle_window + 60
    elif kind == "fanout":
        cmd += ["--concurrency", "200"]
        limit += scen["sessions"] / 100
    elif kind in ("latency-under-load", "churn", "reconnect-storm"):
        cmd += ["--settle", str(opts.idle_settle), "--concurrency", "200"]
        limit = scen["sessions"] / 50 + opts.idle_settle + opts.warmup + 60
        if kind == "reconnect-storm":
            cmd += ["--storm-concurrency", str(opts.storm_concurrency)]
            limit += scen["sessions"] / 50
        else:  # the measured window is --load-window, not --duration
            i = cmd.index("--duration")
            cmd[i + 1] = str(opts.load_window)
            limit += opts.load_window
        if kind == "churn":
            cmd += ["--churn-rate", str(opts.churn_rate)]
        if kind != "reconnect-storm":
            cmd += ["--echo-rate", str(opts.echo_rate)]
            if opts.trace:
                Path(opts.trace).mkdir(parents=True, exist_ok=True)
                name = f"{time.strftime('%H%M%S')}-{server.server}-{server.impl}-{scen['name']}.json"
                cmd += ["--trace", str(Path(opts.trace).resolve() / name)]
    cmd += ["--time-limit", str(int(limit))]
    proc = subprocess.Popen(
        cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    marks: dict[str, dict] = {}
    tracked0 = server.gc_report(objects=True).get("gc_tracked") if kind in GC_KINDS else None
    result: dict | None = None
    error: str | None = None
    warnings: list[str] = []
    deadline = time.monotonic() + limit + 15
    for msg in generator_lines(proc, deadline):
        if isinstance(msg, str):
            warnings.append(msg)
            continue
        event = msg.get("event")
        if event == "mark":
            marks[msg["name"]] = {**server.sample(), **msg}
            if kind in GC_KINDS and msg["name"] == "ready":  # sessions open, before the window
                marks["ready"]["gc_tracked"] = server.gc_report(objects=True).get("gc_tracked")
            if kind in GC_KINDS and msg["name"] in ("start", "end"):
                marks[msg["name"]]["gc"] = server.gc_report(reset=msg["name"] == "start")
                marks[msg["name"]]["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            go_on(proc)
        elif event == "result":
            result = msg
        elif event == "error":
            error = msg.get("error")
        elif event == "warning":
            warnings.append(msg.get("warning", ""))
    eof = time.monotonic() < deadline  # (the output ended before the deadline)
    if proc.poll() is None:
        try:
            proc.wait(5 if eof else 0.1)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its handle
            proc.wait(5)
            error = error or f"load generator did not finish within {limit + 15:.0f}s"
    stderr = proc.stderr.read().decode(errors="replace").strip()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass
    if result is None:
        return {
            "status": "error",
            "error": error or f"no result (exit {proc.returncode}): {stderr[-400:]}",
            "server_log": server.log_tail(),
        }
    rec = {"status": "ok", **{k: v for k, v in result.items() if k not in ("event", "scenario")}}
    if result.get("errors"):
        warnings.insert(0, f"{result['errors']} client errors")
    if result.get("closed_by_server"):
        warnings.insert(0, f"{result['closed_by_server']} sessions closed by the server")
    if warnings:
        rec["warnings"] = warnings[:5]
    start, end = marks.get("start"), marks.get("end")
    if start and end:
        window = end["t"] - start["t"]
        srv = end["cpu_s"] - start["cpu_s"]
        rec["window_s"] = round(window, 3)
        rec["server_cpu_s"] = round(srv, 3)
        rec["server_cpu_pct"] = round(100 * srv / window, 1)
        busy = end["busy_s"] - start["busy_s"]
        other = busy - srv - result.get("gen_cpu_s", 0)
        rec["other_cpu_pct"] = round(max(0.0, 100 * other / window), 1)
        rec["server_rss_kib"] = end["rss_kib"]
        rec["server_pids"] = end["pids"]
        count = result.get("count")
        if count:
            rec["server_cpu_us_per_op"] = round(1e6 * srv / count, 2)
            if kind == "fanout":
                rec["us_per_delivery"] = round(1e6 * srv / (count * scen["sessions"]), 3)
    if kind in GC_KINDS and start and end:
        gc_rec = end.get("gc", {})
        rec.update(gc_rec)
        if "gc_count_by_gen" in gc_rec:
            rec["gc_full"] = gc_rec["gc_count_by_gen"][2]
        rec["loadavg_start"], rec["loadavg_end"] = start["loadavg"], end["loadavg"]
        tracked = marks.get("ready", {}).get("gc_tracked")
        if isinstance(tracked, int) and isinstance(tracked0, int):
            # what a full collection walks, per open session
            rec["gc_tracked_before"], rec["gc_tracked_open"] = tracked0, tracked
            rec["gc_tracked_per_session"] = round((tracked - tracked0) / scen["sessions"], 1)
        if kind != "reconnect-storm" and result.get("still_open") != scen["sessions"]:
            warnings = [*rec.get("warnings", []), f"only {result.get('still_open')} idle sessions still open"]
            rec["warnings"] = warnings
        if kind == "reconnect-storm" and result.get("back") != scen["sessions"]:
            rec["warnings"] = [*rec.get("warnings", []), f"only {result.get('back')} sessions came back"]
    if kind == "idle" and "baseline" in marks and start:
        grown = start["rss_kib"] - marks["baseline"]["rss_kib"]
        rec["rss_baseline_kib"] = marks["baseline"]["rss_kib"]
        rec["rss_sessions_kib"] = start["rss_kib"]
        rec["kib_per_session"] = round(grown / scen["sessions"], 2)
        if result.get("still_open") != scen["sessions"]:
            rec["warnings"] = [
                *rec.get("warnings", []),
                f"only {result.get('still_open')} sessions still open",
            ]
    return rec


# ------------------------------------------------------------------ the run


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in (
        "uvicorn",
        "granian",
        "hypercorn",
        "python-engineio",
        "websockets",
        "uvloop",
        "httptools",
        "trio",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    try:
        out["node"] = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        out["ws"] = json.loads((HERE / "node_modules" / "ws" / "package.json").read_text())["version"]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def ours_available() -> str | None:
    """None if `import engineio_asgi` works for the servers, else why not."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APPS), str(ROOT), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [PY, "-c", "import engineio_asgi; engineio_asgi.AsyncServer; engineio_asgi.ASGIApp"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


def ensure_node_deps() -> None:
    if (HERE / "node_modules" / "ws").is_dir():
        return
    print("benchmarks/node_modules missing: running npm ci in benchmarks/", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"under a minute: servers {','.join(QUICK_SERVERS)}, scenarios {','.join(QUICK_SCENARIOS)}, "
        "1.5 s each (explicit options still win)",
    )
    ap.add_argument("--servers", help=f"comma list of {','.join(SERVERS)}")
    ap.add_argument("--impls", help=f"comma list of {','.join(IMPLS)}")
    ap.add_argument(
        "--scenarios",
        help="comma list, e.g. ws-echo,ws-pipelined,polling-echo,polling-handshake,"
        "ws-handshake,fanout-1000,idle,idle-2000,ws-echo+deflate",
    )
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times; the table shows medians")
    ap.add_argument("--duration", type=float, help="measured seconds per scenario (default 4, quick 1.5)")
    ap.add_argument("--warmup", type=float, help="seconds of load before measuring (default 1, quick 0.5)")
    ap.add_argument("--size", type=int, default=16, help="message payload bytes (default 16)")
    ap.add_argument("--idle-sessions", type=int, help="sessions held by 'idle' (default 10000, quick 1000)")
    ap.add_argument("--idle-window", type=float, help="seconds of idle CPU measured (default 30, quick 3)")
    ap.add_argument(
        "--idle-settle", type=float, default=2.0, help="seconds between opening and measuring idle"
    )
    ap.add_argument(
        "--tail",
        action="store_true",
        help=f"the tail-under-load set: servers uvicorn,granian, impls {','.join(TAIL_IMPLS)}, scenarios "
        f"{','.join(TAIL_SCENARIOS)} (explicit options still win)",
    )
    ap.add_argument(
        "--load-window",
        type=float,
        help="latency-under-load and churn: seconds measured (default 30, quick 3)",
    )
    ap.add_argument(
        "--echo-rate",
        type=float,
        default=DEFAULT_ECHO_RATE,
        metavar="R",
        help="latency-under-load and churn: messages per second each echo client sends on a fixed "
        f"schedule, timed from the scheduled send (default {DEFAULT_ECHO_RATE:g}); 0: closed loop, "
        "each client sends when its echo is back (saturation)",
    )
    ap.add_argument(
        "--churn-rate",
        type=float,
        default=100.0,
        help="churn: sessions opened and closed per second (default 100)",
    )
    ap.add_argument(
        "--storm-concurrency",
        type=int,
        default=500,
        help="reconnect-storm: reconnects in flight at most (default 500)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="before each scenario wait up to S seconds for the rest of the machine to go quiet",
    )
    ap.add_argument(
        "--trace",
        metavar="DIR",
        help="latency-under-load and churn: write each round trip (scheduled send, ms) and the held "
        "sessions' ping arrivals to a JSON file per run in DIR (benchmarks/trace_tail.py reads them)",
    )
    ap.add_argument("--server-core", default="0")
    ap.add_argument(
        "--granian-runtime-core",
        metavar="CORE",
        help="granian: once the server is up, move its tokio runtime threads to CORE, so the "
        "interpreter has the server's core to itself (a diagnosis of stalls from the two sharing it)",
    )
    ap.add_argument("--gen-core", default="1")
    ap.add_argument("--out", help="results file (default benchmarks/results/<time>[-quick].jsonl)")
    ap.add_argument("--report", nargs="+", metavar="FILE", help="print the table of results file(s) and exit")
    opts = ap.parse_args(argv)

    if opts.report:
        records = []
        for path in opts.report:
            records += load_records(path)
        print_table(records)
        return 0

    q = opts.quick
    if opts.tail:
        servers = split(opts.servers) or QUICK_SERVERS
        impls = split(opts.impls) or TAIL_IMPLS
        scen_names = split(opts.scenarios) or TAIL_SCENARIOS
    else:
        servers = split(opts.servers) or (QUICK_SERVERS if q else SERVERS)
        impls = split(opts.impls) or (QUICK_IMPLS if q else FULL_IMPLS)
        scen_names = split(opts.scenarios) or (QUICK_SCENARIOS if q else FULL_SCENARIOS)
    opts.load_window = opts.load_window or (3.0 if q else 30.0)
    opts.duration = opts.duration or (1.5 if q else 4.0)
    opts.warmup = opts.warmup if opts.warmup is not None else (0.5 if q else 1.0)
    opts.idle_sessions = opts.idle_sessions or (1000 if q else 10000)
    opts.idle_window = opts.idle_window or (3.0 if q else 30.0)
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s}; one of {', '.join(SERVERS)}")
    for i in impls:
        if i not in IMPLS:
            ap.error(f"unknown impl {i}; one of {', '.join(IMPLS)}")
    try:
        scenarios = [parse_scenario(n) for n in scen_names]
    except ValueError as exc:
        ap.error(str(exc))
    for sc in scenarios:
        if sc["kind"] == "idle" and not any(c.isdigit() for c in sc["name"]):
            sc["sessions"] = opts.idle_sessions
    if opts.repeat < 1 or opts.repeat > 50:
        ap.error("--repeat must be 1..50")
    if not shutil.which("taskset") or not shutil.which("node"):
        ap.error("needs taskset (util-linux) and node on PATH")
    # a reconnecting client holds a poll and a websocket at once
    raise_fd_limit(
        max([sc.get("sessions", 0) * (2 if sc["kind"] == "reconnect-storm" else 1) for sc in scenarios] + [0])
    )
    ensure_node_deps()

    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    out_path = Path(opts.out) if opts.out else RESULTS / f"{run_id}{'-quick' if q else ''}.jsonl"
    log_dir = RESULTS / "logs" / run_id
    unavailable: dict[tuple[str, str], tuple[str, str]] = {}
    why_not_ours = ours_available() if any(i.startswith("ours") for i in impls) else None
    if why_not_ours:
        print(f"ours: skipped, `import engineio_asgi` fails: {why_not_ours}", flush=True)
    if (
        "uvicorn-sansio" in servers
        and importlib.util.find_spec("uvicorn.protocols.websockets.websockets_sansio_impl") is None
    ):
        print("uvicorn-sansio: skipped, this uvicorn has no --ws websockets-sansio", flush=True)
        servers = [s for s in servers if s != "uvicorn-sansio"]
    for s in servers:
        for i in impls:
            if i.startswith("ours") and why_not_ours:
                unavailable[(s, i)] = ("skipped", f"import engineio_asgi fails: {why_not_ours}")

    meta = {
        "type": "meta",
        "run_id": run_id,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "argv": sys.argv[1:],
        "quick": q,
        "servers": servers,
        "impls": impls,
        "scenarios": scen_names,
        "repeat": opts.repeat,
        "duration": opts.duration,
        "warmup": opts.warmup,
        "size": opts.size,
        "idle_sessions": opts.idle_sessions,
        "idle_window": opts.idle_window,
        "load_window": opts.load_window,
        "churn_rate": opts.churn_rate,
        "echo_rate": opts.echo_rate,
        "storm_concurrency": opts.storm_concurrency,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cores": {
            "server": opts.server_core,
            "generator": opts.gen_core,
            "granian_runtime": opts.granian_runtime_core,
        },
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "versions": versions(),
        "server_commands": {s: SERVER_NOTES[s] for s in servers},
    }
    print(f"results: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}", flush=True)
    records: list[dict] = [meta]
    t_run = time.monotonic()
    with open(out_path, "a") as out:
        out.write(json.dumps(meta) + "\n")

        def emit(rec: dict) -> None:
            records.append(rec)
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(summary_line(rec), flush=True)

        for rep in range(opts.repeat):
            for s in servers:
                for i in impls:
                    base = {"type": "result", "run_id": run_id, "rep": rep, "server": s, "impl": i}
                    mine = []  # the scenarios this impl runs here; the others are recorded why not
                    for sc in scenarios:
                        why_not = unavailable.get((s, i)) or not_run(s, i, sc["name"])
                        if why_not is None:
                            mine.append(sc)
                            continue
                        status, reason = why_not
                        emit(
                            {
                                **base,
                                "scenario": sc["name"],
                                "kind": sc["kind"],
                                "status": status,
                                "reason": reason,
                            }
                        )
                    # throughput scenarios share one server (a fresh one after a crash);
                    # idle ones get a fresh server each
                    pending = [sc for sc in mine if sc["kind"] not in ISOLATED]
                    queue = ([pending] if pending else []) + [[sc] for sc in mine if sc["kind"] == "idle"]
                    for group in queue:
                        todo = list(group)
                        for _attempt in range(len(group)):  # bounded: each attempt consumes a scenario
                            if not todo:
                                break
                            todo = run_group(s, i, todo, base, opts, log_dir, emit)
                # the load scenarios: one fresh server each, the impls in turn (rotated each
                # round, so that none always runs first after the machine's quiet wait)
                turn = impls[rep % len(impls) :] + impls[: rep % len(impls)]
                for sc in scenarios:
                    if sc["kind"] not in ISOLATED or sc["kind"] == "idle":
                        continue
                    for i in turn:
                        if (s, i) not in unavailable and not_run(s, i, sc["name"]) is None:
                            base = {"type": "result", "run_id": run_id, "rep": rep, "server": s, "impl": i}
                            run_group(s, i, [sc], base, opts, log_dir, emit)
        out.flush()
    print(f"\ndone in {time.monotonic() - t_run:.0f}s; results in {out_path}\n", flush=True)
    print_table(records)
    return 0


def run_group(s: str, i: str, group: list[dict], base: dict, opts, log_dir: Path, emit) -> list[dict]:
    """Runs the scenarios of group on one server; returns those left when it died."""
    gc = any(sc["kind"] in GC_KINDS for sc in group)
    runtime_core = opts.granian_runtime_core if s == "granian" else None
    server = Server(s, i, opts.server_core, log_dir / f"{s}-{i}.log", gc=gc, runtime_core=runtime_core)
    try:
        server.start()
    except Exception as exc:  # recorded, the run goes on
        for sc in group:
            emit(
                {
                    **base,
                    "scenario": sc["name"],
                    "kind": sc["kind"],
                    "status": "error",
                    "error": f"server start: {exc}",
                }
            )
        return []
    try:
        for n, sc in enumerate(group):
            params = {k: sc[k] for k in ("clients", "inflight", "sessions") if k in sc}
            head = {
                **base,
                "scenario": sc["name"],
                "kind": sc["kind"],
                "deflate": sc["deflate"],
                "async_handlers": IMPLS[i][1],
                **params,
            }
            if sc["kind"] in ("latency-under-load", "churn"):
                head["echo_rate"] = opts.echo_rate
            waited = wait_quiet(server, opts.quiet_wait) if opts.quiet_wait else None
            try:
                rec = run_load(server, sc, opts, opts.gen_core)
                if waited is not None:
                    rec["quiet_wait_s"] = waited
            except Exception as exc:
                rec = {"status": "error", "error": f"harness: {exc!r}"}
            if server.proc.poll() is not None:
                rec = {
                    **rec,
                    "status": "error",
                    "error": f"server died during this scenario: {server.log_tail(3)}",
                }
                emit({**head, **rec})
                return group[n + 1 :]
            emit({**head, **rec})
            time.sleep(0.3)
        return []
    finally:
        server.stop()


def raise_fd_limit(sockets: int) -> None:
    """Soft RLIMIT_NOFILE up to the hard one (servers and the generator inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = sockets + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        print(
            f"WARNING: open-file limit {hard} < {need} needed for {sockets} sockets (ulimit -Hn)",
            flush=True,
        )


def wait_quiet(server: Server, max_wait: float) -> float:
    """Waits (at most max_wait s) until the rest of the machine uses < 15% of a core; returns the wait."""
    t0 = time.monotonic()
    for _ in range(int(max_wait / 0.5) + 1):
        a = server.sample()
        time.sleep(0.5)
        b = server.sample()
        other = (b["busy_s"] - a["busy_s"]) - (b["cpu_s"] - a["cpu_s"])
        if other / (b["t"] - a["t"]) < 0.15:
            break
    return round(time.monotonic() - t0, 1)


def load_records(path: str | Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def summary_line(rec: dict) -> str:
    head = f"{rec['server']:<15} {rec['impl']:<10} {rec['scenario']:<18}"
    if rec.get("status") != "ok":
        return f"{head} {rec.get('status')}: {rec.get('reason') or rec.get('error')}"
    parts = []
    for key, label, _, _ in METRICS.get(rec["kind"], []):
        if rec.get(key) is not None:
            parts.append(f"{fmt(rec[key])} {label}")
    parts.append(
        f"srv {rec.get('server_cpu_pct', '?')}%  gen {rec.get('gen_cpu_pct', '?')}%  "
        f"other {rec.get('other_cpu_pct', '?')}%"
    )
    for w in rec.get("warnings", [])[:2]:
        parts.append(f"WARN {w}")
    return f"{head} " + " | ".join(parts)


# ------------------------------------------------------------------ the table


def fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def table_scenario(rec: dict) -> str:
    """A result's row label: its scenario, and for paced echo clients their rate."""
    rate = rec.get("echo_rate")
    if rec.get("kind") in ("latency-under-load", "churn") and rate:
        return f"{rec['scenario']}@{rate:g}/s"
    return rec["scenario"]


def print_table(records: list[dict]) -> None:
    results = [{**r, "scenario": table_scenario(r)} for r in records if r.get("type") == "result"]
    if not results:
        print("no results")
        return
    scen_order: list[str] = []
    server_order: list[str] = []
    impl_order: list[str] = []
    for r in results:
        for lst, key in ((scen_order, "scenario"), (server_order, "server"), (impl_order, "impl")):
            if r[key] not in lst:
                lst.append(r[key])
    cells: dict[tuple[str, str, str], list[dict]] = {}
    for r in results:
        cells.setdefault((r["scenario"], r["server"], r["impl"]), []).append(r)

    def cell(scen, server, impl, key):
        recs = cells.get((scen, server, impl), [])
        ok = [r for r in recs if r.get("status") == "ok"]
        if ok:
            return median(r.get(key) for r in ok)
        if recs:
            st = recs[0].get("status")
            return {"n/a": "n/a", "skipped": "skip"}.get(st, "ERR")
        return None

    ratios = []
    if "ours" in impl_order:
        ratios += [("ours", "bare"), ("ours", "pyeio")]
        if "bare-hb" in impl_order:
            ratios += [("ours", "bare-hb")]
    if "bare-hb-again" in impl_order and "bare-hb" in impl_order:
        ratios += [("bare-hb-again", "bare-hb")]
    if "ours-sync" in impl_order:
        ratios += [("ours-sync", "bare")]
    if "pyeio" in impl_order and "bare" in impl_order:
        ratios += [("pyeio", "bare")]

    header = [
        "scenario",
        "server",
        "metric",
        *impl_order,
        *[f"{a}/{b}" for a, b in ratios],
        "gen CPU %",
        "srv CPU %",
        "other %",
    ]
    rows = [header]
    for scen in scen_order:
        kind = next(r["kind"] for r in results if r["scenario"] == scen)
        for server in server_order:
            if not any((scen, server, i) in cells for i in impl_order):
                continue
            for n, (key, label, _lower, as_diff) in enumerate(METRICS.get(kind, [])):
                vals = {i: cell(scen, server, i, key) for i in impl_order}
                row = [
                    scen if n == 0 else "",
                    server if n == 0 else "",
                    label,
                    *[fmt(vals[i]) for i in impl_order],
                ]
                for a, b in ratios:
                    va, vb = vals.get(a), vals.get(b)
                    if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
                        row.append(f"{va - vb:+.1f}" if as_diff else (f"{va / vb:.2f}" if vb else "-"))
                    else:
                        row.append("-")
                if n == 0:
                    row += [
                        "/".join(fmt_pct(cell(scen, server, i, k)) for i in impl_order)
                        for k in ("gen_cpu_pct", "server_cpu_pct", "other_cpu_pct")
                    ]
                else:
                    row += ["", "", ""]
                rows.append(row)
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(header))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(
            "  ".join(
                str(v).rjust(w) if c >= 3 else str(v).ljust(w)
                for c, (v, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    print("\n".join(lines))
    print(
        f"\nCPU columns list {'/'.join(impl_order)}; gen = load generator (its own core), "
        "other = everything else on the machine during the window (noise). Ratios are medians of this run; "
        "for KiB/session and idle srv CPU % the ratio columns hold differences (KiB, percentage points)."
    )
    hot = [r for r in results if r.get("status") == "ok" and (r.get("gen_cpu_pct") or 0) > 85]
    if hot:
        print(
            "WARNING: generator above 85% of its core in: "
            + ", ".join(sorted({f"{r['server']}/{r['impl']}/{r['scenario']}" for r in hot}))
        )
    noisy = [r for r in results if r.get("status") == "ok" and (r.get("other_cpu_pct") or 0) > 10]
    if noisy:
        print(
            "WARNING: other processes used over 10% of a core during: "
            + ", ".join(sorted({f"{r['server']}/{r['impl']}/{r['scenario']}" for r in noisy}))
        )
    errors = [r for r in results if r.get("status") == "error"]
    for r in errors[:10]:
        print(f"ERROR {r['server']}/{r['impl']}/{r['scenario']}: {str(r.get('error'))[:300]}")


def fmt_pct(v) -> str:
    return f"{v:.0f}" if isinstance(v, (int, float)) else "-"


if __name__ == "__main__":
    sys.exit(main())
