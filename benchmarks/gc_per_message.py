#!/usr/bin/env python3
"""What each websocket message costs the garbage collector, per server and app: not timed.

    .venv/bin/python benchmarks/gc_per_message.py --servers uvicorn,granian,hypercorn-trio \\
        --impls bare-hb,ours,ours-sync --messages 20000

For each server x app it starts the server with ``EIO_BENCH_GC=1`` (``apps/_gcstats.py``)
and runs ``load.js --scenario ws-echo`` (``--clients``, default 50, each sending its next
message as soon as the echo is back, so that as many are always in flight) until ``--messages``
round trips are done, reading the server's collector at the generator's marks:

* ``objects/in-flight``: live GC-tracked objects while the echo runs, minus those with the
  same clients connected and nothing sent, divided by the messages in flight (two
  readings, at the window's start and end; a message is in flight from the client's send
  to its echo, so part of that time it is in a socket buffer or in the generator). A
  collection of the youngest generation starts when 700 more objects are alive than after
  the last one: objects that live while a message is handled keep that generation full.
* ``young/10k`` and ``gen1/10k``, ``full/10k``: collections of each generation per 10,000
  messages (counts, which do not depend on how fast the machine was at the time).
* ``young types``: the commonest types in the youngest generation at the window's end.

Results go to ``results/<time>-gcmsg.jsonl``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # the harness's Server, pinned and measured the same way

CLIENTS = 50  # the default; --clients picks another


def snapshot(srv: run.Server, query: str) -> dict:
    status, body = run.http_get(srv.port, "/_bench/gc?" + query, timeout=30.0)
    return json.loads(body) if status == 200 else {"gc_error": f"HTTP {status}"}


def probe(server: str, impl: str, messages: int, log_dir: Path, clients: int = CLIENTS) -> dict:
    srv = run.Server(server, impl, "0", log_dir / f"{server}-{impl}.log", gc=True)
    srv.start()
    try:
        cmd = ["taskset", "-c", "1", "node", str(run.LOAD_JS), "--scenario", "ws-echo"]
        cmd += ["--port", str(srv.port)]
        cmd += ["--clients", str(clients), "--count", str(messages), "--warmup", "1", "--sync", "1"]
        cmd += ["--time-limit", "300"]
        proc = subprocess.Popen(cmd, cwd=run.HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        at: dict[str, dict] = {}
        result: dict = {}
        for msg in run.generator_lines(proc, time.monotonic() + 320):
            if isinstance(msg, str):
                continue
            if msg.get("event") == "mark":
                name = msg["name"]
                if name == "connected":  # nothing in flight: the floor, after a full collection
                    at[name] = snapshot(srv, "objects=1&collect=1")
                elif name == "start":  # in flight; the window's counts start here
                    at[name] = snapshot(srv, "objects=1&reset=1")
                else:  # "end": still in flight (the clients stop after this mark)
                    at[name] = snapshot(srv, "objects=1&young=1")
                run.go_on(proc)
            elif msg.get("event") in ("result", "error"):
                result = msg
        proc.wait(10)
    finally:
        srv.stop()
    rec: dict = {"server": server, "impl": impl, "clients": clients, "load": result}
    if {"connected", "start", "end"} <= at.keys() and result.get("count"):
        end, count = at["end"], result["count"]
        floor = at["connected"]["gc_tracked"]
        during = [at["start"]["gc_tracked"] - floor, end["gc_tracked"] - floor]
        per = [round(d / clients, 1) for d in during]
        gens = end["gc_count_by_gen"]
        rec.update(
            messages=count,
            objects_per_inflight=per,
            young_per_10k=round(1e4 * sum(gens) / count, 1),  # every collection starts with gen 0
            gen1_per_10k=round(1e4 * (gens[1] + gens[2]) / count, 2),
            full_per_10k=round(1e4 * gens[2] / count, 2),
            gc_cpu_ms_per_10k=round(1e4 * end["gc_cpu_total_ms"] / count, 2),
            young_types=end.get("gc_young_types"),
            marks={k: {kk: vv for kk, vv in v.items() if kk != "gc_young_types"} for k, v in at.items()},
        )
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="uvicorn,granian,hypercorn-trio")
    ap.add_argument("--impls", default="bare-hb,ours,ours-sync")
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument(
        "--clients",
        type=int,
        default=CLIENTS,
        help=f"echo clients, one message each in flight (default {CLIENTS})",
    )
    ap.add_argument("--out", help="results file (default results/<time>-gcmsg.jsonl)")
    opts = ap.parse_args()
    if not 1000 <= opts.messages <= 1_000_000:
        ap.error("--messages must be 1000..1000000")
    if not 1 <= opts.clients <= 1000:
        ap.error("--clients must be 1..1000")
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_path = Path(opts.out) if opts.out else run.RESULTS / f"{run_id}-gcmsg.jsonl"
    log_dir = run.RESULTS / "logs" / f"{run_id}-gcmsg"
    cols = ("server", "impl", "objects/in-flight", "young/10k", "gen1/10k", "full/10k", "GC CPU ms/10k")
    print(f"{cols[0]:<15} {cols[1]:<10} {cols[2]:>17} {cols[3]:>9} {cols[4]:>8} {cols[5]:>8} {cols[6]:>13}")
    with open(out_path, "a") as out:
        for server in run.split(opts.servers):
            for impl in run.split(opts.impls):
                if run.not_run(server, impl, "ws-echo") is not None:
                    continue
                rec = probe(server, impl, opts.messages, log_dir, opts.clients)
                out.write(json.dumps(rec) + "\n")
                out.flush()
                per = rec.get("objects_per_inflight") or ["-"]
                print(
                    f"{server:<15} {impl:<10} {'/'.join(run.fmt(p) for p in per):>17} "
                    f"{run.fmt(rec.get('young_per_10k')):>9} {run.fmt(rec.get('gen1_per_10k')):>8} "
                    f"{run.fmt(rec.get('full_per_10k')):>8} {run.fmt(rec.get('gc_cpu_ms_per_10k')):>13}",
                    flush=True,
                )
    print(f"results in {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
