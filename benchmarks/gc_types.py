#!/usr/bin/env python3
"""GC-tracked objects per held session by type, ours against bare-hb (not timed).

    .venv/bin/python benchmarks/gc_types.py [N [SERVERS [IMPLS]]]

Holds N idle websocket sessions (default 1,000) on uvicorn and granian with each app and
prints, per type, how many more tracked objects there are per session (after a full
collection, before and after opening them; ``GET /_bench/gc?collect=1&types=1``).
"""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the harness's Server, pinned the same way

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SERVERS = sys.argv[2].split(",") if len(sys.argv) > 2 else ["uvicorn", "granian"]
IMPLS = sys.argv[3].split(",") if len(sys.argv) > 3 else ["bare-hb", "ours"]


def types_per_session(server: str, impl: str) -> tuple[float, dict[str, float]]:
    srv = run.Server(server, impl, "0", run.RESULTS / "logs" / "gc_types" / f"{server}-{impl}.log", gc=True)
    srv.start()

    def get() -> dict[str, int]:
        url = f"http://{run.HOST}:{srv.port}/_bench/gc?collect=1&types=1"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return json.loads(resp.read())["gc_types"]

    base: dict[str, int] = {}
    held: dict[str, int] = {}
    try:
        cmd = ["taskset", "-c", "1", "node", str(run.LOAD_JS), "--scenario", "idle", "--port", str(srv.port)]
        cmd += ["--sessions", str(N), "--window", "6", "--settle", "0", "--time-limit", str(60 + N // 50)]
        node = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        for line in node.stdout:  # bounded: the generator exits by its time limit
            mark = json.loads(line).get("name")
            if mark == "baseline":
                base = get()
            elif mark == "ready":
                held = get()
                break
        node.kill()  # our own child
        node.wait()
    finally:
        srv.stop()
    diff = {k: round((held.get(k, 0) - base.get(k, 0)) / N, 2) for k in set(held) | set(base)}
    total = (sum(held.values()) - sum(base.values())) / N
    return total, {k: v for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1])) if abs(v) >= 0.5}


def main() -> int:
    run.raise_fd_limit(N)
    for server in SERVERS:
        for impl in IMPLS:
            total, diff = types_per_session(server, impl)
            print(f"{server} {impl}: {total:.1f} per session: {diff}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
