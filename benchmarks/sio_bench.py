#!/usr/bin/env python3
"""python-socketio through a real server: emit-echo and fan-out (``emit`` to a room), interleaved.

    .venv/bin/python benchmarks/sio_bench.py fanout-1000 [--apps pyeio,ours,ours@/tmp/wt57]
        [--server uvicorn|granian] [--rounds 5] [--duration 4] [--warmup 1]
    .venv/bin/python benchmarks/sio_bench.py emit-echo --rounds 5
    .venv/bin/python benchmarks/sio_bench.py fanout-1000+binary

The app is ``benchmarks/apps/_sio_echo.py`` on python-socketio: ``pyeio`` runs it
on python-engineio (``sio_pyengineio:app``), ``ours`` on this project's server
(``sio_ours:app``). ``ours@TREE`` imports ``engineio_asgi`` from another checkout
(e.g. ``git worktree add /tmp/wt57 57396d3`` for an older commit); plain ``ours``
imports it from ``PYTHONPATH`` if that is set, else from this checkout. Each
server's ``engineio_asgi`` file is printed, so a wrong path shows.

Every app's server runs at once, pinned to core 0 (this VM's cores change
speed: figures taken minutes apart can differ by 2x); the load generator, pinned
to core 1, visits them in turn, in a new order each round, and waits for the
server it left to go idle before it measures the next. The load:

- ``emit-echo``: ``sio_load.js`` (socket.io-client, 50 clients, one ``echo`` in
  flight each); the figure is echoes/s and the server's CPU per echo;
- ``fanout-N``: ``sio_fanout.js``: N clients in one room, one ``emit`` to the
  room in flight; the figures are deliveries/s and the server's CPU per
  delivery (the server's process CPU over the window / deliveries).
  ``+binary`` emits bytes (a header frame and an attachment per delivery).

Server CPU is read from ``/proc`` (the server's process tree) at the
generator's start and end marks. Each round's ratios are taken against the
first app of ``--apps``; the table shows medians over the rounds. One JSON line
per measurement goes to ``benchmarks/results/<time>-sio-<scenario>.jsonl``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APPS = HERE / "apps"
RESULTS = HERE / "results"
PY = sys.executable
TARGETS = {"ours": "sio_ours:app", "pyeio": "sio_pyengineio:app"}
SERVER_CORE, GEN_CORE = "0", "1"


class App(run.Server):
    """One app's server process: run.py's server, serving python-socketio's echo app."""

    cwd = APPS  # not a checkout: `python -m` puts the working directory first on sys.path
    ready_path = "/socket.io/"

    def __init__(self, spec: str, server: str, log: Path) -> None:
        impl, _, tree = spec.partition("@")
        if impl not in TARGETS:
            raise SystemExit(f"unknown app {spec!r}: one of {', '.join(TARGETS)}, optionally @TREE")
        if server not in ("uvicorn", "granian"):
            raise SystemExit(f"unknown server {server!r}: uvicorn or granian")
        super().__init__(server, impl, SERVER_CORE, log)
        self.spec = spec
        self.tree = str(Path(tree).resolve()) if tree else os.environ.get("PYTHONPATH") or str(ROOT)

    def target(self) -> str:
        return TARGETS[self.impl]

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=os.pathsep.join([str(APPS), self.tree]))

    def engineio_asgi_file(self) -> str:
        code = "import engineio_asgi; print(engineio_asgi.__file__)"
        out = subprocess.run(
            [PY, "-c", code], cwd=APPS, env=self.env(), capture_output=True, text=True, timeout=60
        )
        return out.stdout.strip() or out.stderr.strip()[-200:]

    def cpu_s(self) -> float:
        return float(self.sample()["cpu_s"])

    def wait_idle(self, max_wait: float = 60.0) -> None:
        """Until the server used no CPU for 0.5 s (it may still be closing the last visit's sessions)."""
        for _ in range(int(max_wait / 0.5)):
            a = self.cpu_s()
            time.sleep(0.5)
            if self.cpu_s() - a < 0.02:
                return


def visit(app: App, scenario: dict, opts: argparse.Namespace) -> dict:
    """One load run against app; the generator's result with the server's CPU over its window."""
    if scenario["kind"] == "emit-echo":
        cmd = ["node", str(HERE / "sio_load.js"), "--clients", str(opts.clients), "--size", str(opts.size)]
        limit = opts.warmup + opts.duration + 60
    else:
        cmd = ["node", str(HERE / "sio_fanout.js"), "--sessions", str(scenario["sessions"])]
        cmd += ["--binary", "1" if scenario["binary"] else "0", "--size", str(opts.size)]
        limit = opts.warmup + opts.duration + scenario["sessions"] / 50 + 120
        cmd += ["--time-limit", str(int(limit))]
    cmd += [
        "--port",
        str(app.port),
        "--warmup",
        str(opts.warmup),
        "--duration",
        str(opts.duration),
        "--sync",
        "1",
    ]
    proc = subprocess.Popen(
        ["taskset", "-c", GEN_CORE, *cmd], cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    cpu: dict[str, float] = {}
    result: dict | None = None
    error = None
    for msg in run.generator_lines(proc, time.monotonic() + limit + 15):
        if isinstance(msg, str):
            continue
        if msg.get("event") == "mark":
            if msg["name"] in ("start", "end"):
                cpu[msg["name"]] = app.cpu_s()
            run.go_on(proc)
        elif msg.get("event") == "error" or msg.get("ok") is False:
            error = msg.get("error")
        elif msg.get("event") == "result" or msg.get("ok") is True:
            result = msg
    if proc.poll() is None:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child
            proc.wait(5)
    stderr = proc.stderr.read().decode(errors="replace")
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()
    if result is None or len(cpu) != 2:
        return {"status": "error", "error": error or f"no result (exit {proc.returncode}): {stderr[-300:]}"}
    srv = cpu["end"] - cpu["start"]
    if scenario["kind"] == "emit-echo":
        ops, rate = result["echoes"], result["msgs_per_s"]
    else:
        ops, rate = result["deliveries"], result["deliveries_per_s"]
    return {
        "status": "ok",
        "rate": rate,
        "ops": ops,
        "server_cpu_s": round(srv, 3),
        "server_cpu_us_per_op": round(1e6 * srv / ops, 3) if ops else None,
        "result": result,
    }


def parse_scenario(name: str) -> dict:
    base, _, flag = name.partition("+")
    if flag not in ("", "binary"):
        raise SystemExit(f"unknown option +{flag} (only +binary)")
    if base == "emit-echo" and not flag:
        return {"name": name, "kind": "emit-echo"}
    if base.startswith("fanout-") and base[7:].isdigit():
        return {"name": name, "kind": "fanout", "sessions": int(base[7:]), "binary": flag == "binary"}
    raise SystemExit(f"unknown scenario {name!r}: emit-echo, fanout-N or fanout-N+binary")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", help="emit-echo, fanout-N, fanout-N+binary")
    ap.add_argument("--apps", default="pyeio,ours", help="pyeio, ours, ours@TREE; ratios against the first")
    ap.add_argument("--server", default="uvicorn", choices=("uvicorn", "granian"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--clients", type=int, default=50, help="emit-echo: socket.io clients")
    ap.add_argument("--size", type=int, default=16, help="payload bytes")
    opts = ap.parse_args()
    scenario = parse_scenario(opts.scenario)
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = RESULTS / f"{stamp}-sio-{scenario['name']}-{opts.server}.jsonl"
    log = RESULTS / f"{stamp}-sio-servers.log"
    apps = [App(spec, opts.server, log) for spec in opts.apps.split(",")]
    rows: dict[str, list[dict]] = {a.spec: [] for a in apps}
    try:
        for a in apps:
            print(f"{a.spec}: engineio_asgi from {a.engineio_asgi_file()}", flush=True)
            a.start()
        with open(out_path, "a") as out:
            for r in range(opts.rounds):
                order = apps[r % len(apps) :] + apps[: r % len(apps)]
                for a in order:
                    a.wait_idle()
                    rec = visit(a, scenario, opts)
                    rec.update(app=a.spec, round=r, scenario=scenario["name"], server=opts.server)
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    rows[a.spec].append(rec)
                    if rec["status"] == "ok":
                        print(
                            f"round {r} {a.spec:<22} {rec['rate']:>10} /s  "
                            f"srv CPU {rec['server_cpu_us_per_op']:>8} us/op",
                            flush=True,
                        )
                    else:
                        print(f"round {r} {a.spec:<22} ERROR {rec['error']}", flush=True)
    finally:
        for a in apps:
            a.stop()
    print_table(apps[0].spec, rows, scenario)
    print(f"results: {out_path}")
    return 0


def print_table(ref: str, rows: dict[str, list[dict]], scenario: dict) -> None:
    unit = "echoes" if scenario["kind"] == "emit-echo" else "deliveries"
    print(f"\n{scenario['name']}: medians over rounds; ratios within each round, against {ref}")
    print(f"{'app':<24} {unit + '/s':>14} {'srv CPU us/op':>14} {'rate x':>8} {'CPU x':>8}  n")
    for spec, recs in rows.items():
        ok = {r["round"]: r for r in recs if r["status"] == "ok"}
        refs = {r["round"]: r for r in rows[ref] if r["status"] == "ok"}
        both = [k for k in ok if k in refs]
        if not ok:
            print(f"{spec:<24} no result")
            continue
        rate = statistics.median(r["rate"] for r in ok.values())
        cpu = statistics.median(r["server_cpu_us_per_op"] for r in ok.values())
        rx = statistics.median(ok[k]["rate"] / refs[k]["rate"] for k in both) if both else float("nan")
        cx = (
            statistics.median(ok[k]["server_cpu_us_per_op"] / refs[k]["server_cpu_us_per_op"] for k in both)
            if both
            else float("nan")
        )
        print(f"{spec:<24} {rate:>14,.0f} {cpu:>14.2f} {rx:>8.2f} {cx:>8.3f}  {len(ok)}")


if __name__ == "__main__":
    sys.exit(main())
