"""Interleaved A/B on uvicorn: every app's server up at once, short load windows in turn.

This VM's core 0 switches between two speeds, so two runs taken minutes apart
can differ by 2x. Here all servers run at the same time (each pinned to core
0, idle while the others are measured) and the load generator (core 1)
visits them in turn, in windows of a second or two. Each round gives one
CPU-per-operation figure per app, taken close together in time, and each
ratio is computed within its own round.

    python benchmarks/ab.py bare,ours,ours:sync [SCENARIO] [ROUNDS] [SECONDS]

An app is a module of ``benchmarks/apps``; ``:sync`` sets ``EIO_ASYNC_HANDLERS=false``.
SCENARIO is any scenario of ``load.js`` (default ``polling-echo``). The first app is the
reference of the ratios. Set ``WS`` to pick uvicorn's websocket implementation.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
WARMUP = 0.3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    apps = sys.argv[1].split(",")
    scenario = sys.argv[2] if len(sys.argv) > 2 else "polling-echo"
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
    ws = os.environ.get("WS", "websockets")
    servers: dict[str, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        for i, app in enumerate(apps):
            module, _, flag = app.partition(":")
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(HERE / "apps"), str(HERE.parent)])
            if flag == "sync":
                env["EIO_ASYNC_HANDLERS"] = "false"
            port = 18710 + i
            cmd = ["taskset", "-c", "0", PY, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws", ws]
            cmd += ["--log-level", "warning", "--no-access-log"]
            proc = subprocess.Popen(cmd, cwd=HERE / "apps", env=env, stderr=subprocess.DEVNULL)
            servers[app] = (port, proc)
        time.sleep(2.5)
        per_op: dict[str, list[float]] = {app: [] for app in apps}
        for _ in range(rounds):
            for app in apps:
                port, proc = servers[app]
                before = cpu_seconds(proc.pid)
                load = ["taskset", "-c", "1", "node", str(HERE / "load.js"), "--scenario", scenario]
                load += ["--port", str(port), "--duration", str(seconds), "--warmup", str(WARMUP)]
                out = subprocess.run(load, capture_output=True, text=True, timeout=120).stdout
                used = cpu_seconds(proc.pid) - before
                result = next(json.loads(line) for line in out.splitlines() if '"result"' in line)
                operations = result["rate"] * (seconds + WARMUP)  # the CPU figure includes the warm-up
                per_op[app].append(used / operations * 1e6)
    finally:
        for _, proc in servers.values():
            proc.terminate()
        for _, proc in servers.values():
            proc.wait(timeout=10)
    ref = apps[0]
    for app in apps:
        v = per_op[app]
        every = " ".join(f"{x:.0f}" for x in v)
        print(f"{app:14} CPU us/op median {statistics.median(v):7.1f}  min {min(v):7.1f}  all {every}")
    for app in apps[1:]:
        ratios = [a / b for a, b in zip(per_op[ref], per_op[app], strict=True)]
        every = " ".join(f"{r:.2f}" for r in ratios)
        print(f"{ref}/{app}: per-round ratio median {statistics.median(ratios):.3f}  all {every}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
