#!/usr/bin/env python3
"""What the garbage collector sees per idle session, per app: not timed, so it holds on a busy machine.

    .venv/bin/python benchmarks/gc_probe.py --servers uvicorn,granian --sessions 2000

For each server x app it starts the server with ``EIO_BENCH_GC=1`` (``apps/_gcstats.py``),
opens N idle websocket sessions with ``load.js --scenario idle`` (pings answered) and
reads the collector's counts at the generator's marks:

* ``tracked/session``: live objects the collector tracks, per open session (after opening
  N sessions minus before, each after a full collection). A full collection walks all of
  them, so its pause grows with it.
* ``promoted/ping`` and ``promoted/s``: objects moved into the oldest generation over a
  window in which every session gets one ping (default 30 s > the 25 s ping interval), per
  ping answered and per second (``EIO_BENCH_GC_PROMOTED=1``: at each generation-1
  collection, the oldest generation's new tail, with its types in ``promoted_types``).
  What lives past two collections lands there, and a full collection needs a quarter of
  the oldest generation pending *and* more than 10 generation-1 collections since the last
  full one (CPython 3.11's rule).
* ``young_alive_types`` and ``triggers``: the types in the youngest generation when each of
  its collections started, and the Python code whose allocation started it.
* ``--echo-rate R``: 50 clients also echo R messages a second each, paced, over the window
  (run.py's ``latency-under-load``); the full collection at ``ready`` starts the window
  with nothing pending.
* ``full/window`` and the collections' CPU time over the window.

Results go to ``results/<time>-gcprobe.jsonl``; nothing here is a timing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the harness's Server, pinned and measured the same way

ECHO_CLIENTS = 50  # with --echo-rate: the paced echo clients, as in run.py's latency-under-load


def probe(server: str, impl: str, sessions: int, window: float, log_dir: Path, echo_rate: float = 0) -> dict:
    srv = run.Server(server, impl, "0", log_dir / f"{server}-{impl}.log", gc=True)
    os.environ["EIO_BENCH_GC_PROMOTED"] = "1"  # the server inherits it (this process's own env)
    srv.start()
    try:
        scenario = "latency-under-load" if echo_rate else "idle"
        cmd = ["taskset", "-c", "1", "node", str(run.LOAD_JS), "--scenario", scenario]
        cmd += ["--port", str(srv.port)]
        cmd += ["--sessions", str(sessions), "--settle", "2", "--concurrency", "200"]
        if echo_rate:  # 50 clients echoing at echo_rate msg/s each, paced, over the window
            cmd += ["--echo-rate", str(echo_rate), "--clients", str(ECHO_CLIENTS), "--duration", str(window)]
            cmd += ["--warmup", "2"]
        else:
            cmd += ["--window", str(window)]
        cmd += ["--sync", "1", "--time-limit", str(int(sessions / 50 + window + 90))]
        first = srv.gc_report(objects=True, collect=True)
        proc = subprocess.Popen(cmd, cwd=run.HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        at: dict[str, dict] = {}
        result: dict = {}
        for msg in run.generator_lines(proc, time.monotonic() + sessions / 50 + window + 120):
            if isinstance(msg, str):
                continue
            if msg.get("event") == "mark":
                # live objects only at baseline and ready, before the window; the full
                # collection at ready also starts the window with nothing pending promotion
                name = msg["name"]
                collect = name in ("baseline", "ready")
                at[name] = srv.gc_report(reset=name == "start", objects=True, collect=collect)
                run.go_on(proc)
            elif msg.get("event") in ("result", "error"):
                result = msg
        proc.wait(10)
    finally:
        srv.stop()
    rec = {"server": server, "impl": impl, "sessions": sessions, "window_s": window, "echo_rate": echo_rate}
    rec["load"] = result
    if "baseline" not in at and "ready" in at:  # latency-under-load has no baseline mark: the server's start
        at["baseline"] = first
    if {"baseline", "ready", "start", "end"} <= at.keys():
        end = at["end"]
        pings = result.get("pings_answered") or result.get("pings_in_window") or 0
        messages = result.get("count") or 0
        seconds = end["gc_seconds"]
        full = end["gc_count_by_gen"][2]
        promoted = end["gc_promoted"]
        opened = at["ready"]["gc_tracked"] - at["baseline"]["gc_tracked"]
        rec.update(
            tracked_per_session=round(opened / sessions, 1),
            pings=pings,
            full_in_window=full,
            promoted=promoted,
            promoted_per_ping=round(promoted / pings, 2) if pings and promoted is not None else None,
            messages=messages,
            promoted_per_s=round(promoted / seconds, 1) if seconds and promoted is not None else None,
            promoted_types=end.get("gc_promoted_types"),
            young_alive=end.get("gc_young_alive"),
            young_alive_types=end.get("gc_young_alive_types"),
            triggers=end.get("gc_triggers"),
            old_generation=end["gc_tracked_by_gen"][2],
            gc_cpu_ms=end["gc_cpu_total_ms"],
            gc_max_cpu_ms=end["gc_cpu_max_ms"],
            gc_collections=end["gc_count_by_gen"],
            marks=at,
        )
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="uvicorn,granian")
    ap.add_argument("--impls", default="bare-hb,pyeio,ours")
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument(
        "--echo-rate",
        type=float,
        default=0.0,
        help=f"also {ECHO_CLIENTS} clients echoing this many messages a second each, paced, over the window "
        "(run.py's latency-under-load; default 0: idle sessions only)",
    )
    opts = ap.parse_args()
    run.raise_fd_limit(opts.sessions)
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = run.RESULTS / f"{run_id}-gcprobe.jsonl"
    log_dir = run.RESULTS / "logs" / f"{run_id}-gcprobe"
    head = ("server", "impl", "tracked/session", "promoted/ping", "promoted/s", "full/window", "GC CPU ms")
    print(f"{head[0]:<9} {head[1]:<8} {head[2]:>15} {head[3]:>13} {head[4]:>10} {head[5]:>11} {head[6]:>9}")
    with open(out_path, "a") as out:
        for server in run.split(opts.servers):
            for impl in run.split(opts.impls):
                rec = probe(server, impl, opts.sessions, opts.window, log_dir, opts.echo_rate)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(
                    f"{server:<9} {impl:<8} {run.fmt(rec.get('tracked_per_session')):>15} "
                    f"{run.fmt(rec.get('promoted_per_ping')):>13} {run.fmt(rec.get('promoted_per_s')):>10} "
                    f"{run.fmt(rec.get('full_in_window')):>11} "
                    f"{run.fmt(rec.get('gc_cpu_ms')):>9}",
                    flush=True,
                )
    print(f"results in {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
