#!/usr/bin/env python3
"""Instructions per delivery of a python-socketio fan-out through uvicorn, under callgrind.

    .venv/bin/python benchmarks/sio_instructions.py [--apps ours@/tmp/wt57,ours] [--sessions 1000]
        [--counts 4,16] [--binary]

For each app (as in ``sio_bench.py``: ``ours``, ``ours@TREE``, ``pyeio``) the
server runs under ``valgrind --tool=callgrind`` twice; ``sio_fanout.js --count K``
connects N clients, makes the server emit to their room K times (one emit in
flight) and disconnects. The figure is the difference of the two instruction
totals over the difference of the deliveries (K x N), so start-up, imports and
the N connections cancel out. Valgrind slows the server about fifty times:
connecting 1,000 clients takes a minute or two per run. Timed figures on this VM
drift (its cores change speed); instruction counts do not (see
``instructions.py`` for what they leave out: the kernel's share and the cost of
an instruction in cycles, which grows with N as the working set leaves the caches).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from sio_bench import GEN_CORE, HERE, RESULTS, App

COLLECTED = re.compile(rb"Collected : (\d+)")


class CallgrindApp(App):
    stop_wait = 300.0  # valgrind writes its totals on the way out

    def command(self) -> list[str]:
        out = self.log_path.with_suffix(".callgrind")
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *super().command()]

    def total(self) -> int:
        found = COLLECTED.findall(self.log_path.read_bytes())
        if not found:
            raise SystemExit(f"{self.spec}: no callgrind total in {self.log_path}")
        return int(found[-1])


def run_once(spec: str, sessions: int, count: int, binary: bool, log_dir: Path) -> int:
    log = log_dir / f"{spec.replace('/', '_')}-{count}.log"
    log.unlink(missing_ok=True)
    app = CallgrindApp(spec, "uvicorn", log)
    try:
        app.start(timeout=300.0)
        cmd = ["taskset", "-c", GEN_CORE, "node", str(HERE / "sio_fanout.js"), "--port", str(app.port)]
        cmd += ["--sessions", str(sessions), "--count", str(count), "--binary", "1" if binary else "0"]
        cmd += ["--concurrency", "50", "--time-limit", str(int(sessions * 0.5 + count * 60 + 300))]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=sessions * 0.5 + count * 60 + 330)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result.get("event") != "result" or result["rounds"] != count:
            raise SystemExit(f"{spec}: {out.stdout[-300:]} {out.stderr[-300:]}")
        app.wait_idle(max_wait=600.0)  # the disconnects handled, in both runs alike, before the stop
    finally:
        app.stop()
    return app.total()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apps", default="ours@/tmp/wt57,ours")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--counts", default="4,20", help="SMALL,BIG emits")
    ap.add_argument("--binary", action="store_true")
    opts = ap.parse_args()
    small, big = (int(x) for x in opts.counts.split(","))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # the servers' logs and callgrind profiles (about 3 MB a run) stay out of the results
    log_dir = Path(tempfile.mkdtemp(prefix=f"{stamp}-sio-instructions-"))
    print(f"logs and profiles: {log_dir}", flush=True)
    rows = []
    for spec in opts.apps.split(","):
        totals = [run_once(spec, opts.sessions, k, opts.binary, log_dir) for k in (small, big)]
        per = (totals[1] - totals[0]) / ((big - small) * opts.sessions)
        row = {"app": spec, "sessions": opts.sessions, "binary": opts.binary, "totals": totals, "ir": per}
        rows.append(row)
        print(f"{spec:<24} {per:>12,.0f} Ir per delivery  (totals {totals})", flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{stamp}-sio-instructions.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
