"""Instructions per operation: each server run under callgrind, a fixed amount of load.

Timing on a shared or virtual machine drifts (this project's VM runs its cores at
two speeds), and a ratio of two timings inherits both errors. The number of
instructions the server process executes for the same work hardly drifts: two runs
agree within about 0.3 % when nothing else runs. It is not immune to the machine,
though: how many messages one event-loop wake-up finds depends on how fast the
clients are, and with other valgrind runs beside it the same code counted up to 3 %
more. Hence one measurement at a time by default. It leaves out the kernel's share
(system calls, which the layers under test make in equal numbers) and
whatever an instruction costs in cycles (cache misses, branch mispredictions),
so it complements the timed figures of ``run.py`` rather than replacing them.

For each server, app and scenario the server runs under
``valgrind --tool=callgrind`` twice, serving ``load.js --count SMALL`` and
``--count BIG`` operations. The per-operation figure is the difference of the
two totals over the difference of the counts, so start-up, imports, connection
set-up and shut-down cancel out. Usage::

    python benchmarks/instructions.py [--servers uvicorn,...] [--impls bare,ours,...]
                                      [--scenarios ws-echo,polling-echo] [--jobs 1]

Results are written to ``benchmarks/results/<time>-instructions.jsonl``.
Valgrind slows the server about fifty times: the default set (uvicorn, four apps,
two scenarios) takes about fifteen minutes. granian is not measured: see ``main``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from run import (
    HERE,
    IMPLS,
    LOAD_JS,
    RESULTS,
    SERVERS,
    Server,
    ensure_node_deps,
    not_run,
    versions,
)

# scenario -> load.js parameters and (small, big) operation counts
SCENARIOS = {
    "ws-echo": ({"clients": 50, "inflight": 1}, (2_000, 12_000)),
    "ws-pipelined": ({"clients": 20, "inflight": 100}, (4_000, 24_000)),
    "polling-echo": ({"clients": 50}, (1_000, 5_000)),
    "polling-handshake": ({"clients": 20}, (500, 2_500)),
    "ws-handshake": ({"clients": 10}, (200, 1_000)),
}
UNITS = {
    "ws-echo": "message",
    "ws-pipelined": "message",
    "polling-echo": "round trip",
    "polling-handshake": "handshake",
    "ws-handshake": "handshake",
}
COLLECTED = re.compile(rb"Collected : (\d+)")


class CallgrindServer(Server):
    """A server of ``run.py`` started under callgrind; its total comes from its log."""

    def command(self) -> list[str]:
        out = self.log_path.with_suffix(".%p.callgrind")
        # granian serves from a worker process: every process of the tree is counted
        valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}"]
        return [*valgrind, *super().command()]

    def total(self) -> int:
        found = COLLECTED.findall(self.log_path.read_bytes())
        if not found:
            raise RuntimeError(f"no callgrind total in {self.log_path}: {self.log_tail()}")
        return sum(map(int, found))


def measure_once(server: str, impl: str, scenario: str, count: int, log_dir: Path) -> dict:
    params, _ = SCENARIOS[scenario]
    log = log_dir / f"{server}.{impl}.{scenario}.{count}.log"
    log.unlink(missing_ok=True)
    srv = CallgrindServer(server, impl, "0-1", log)  # pinning would not change a count
    srv.start(timeout=300)
    try:
        cmd = ["node", str(LOAD_JS), "--scenario", scenario, "--port", str(srv.port), "--count", str(count)]
        cmd += ["--warmup", "0", "--time-limit", "1200"]
        for key, value in params.items():
            cmd += [f"--{key}", str(value)]
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, timeout=1300)
        result = None
        for line in done.stdout.decode().splitlines():
            rec = json.loads(line)
            if rec.get("event") == "result":
                result = rec
            elif rec.get("event") == "error":
                raise RuntimeError(f"{server}/{impl}/{scenario}: {rec['error']}")
        if result is None:
            raise RuntimeError(f"{server}/{impl}/{scenario}: no result ({done.stderr.decode()[-300:]})")
    finally:
        # SIGTERM reaches the server through valgrind; it shuts down and the total is written
        srv.stop(timeout=300)
    total = srv.total()
    for profile in log_dir.glob(f"{log.stem}.*.callgrind"):
        profile.unlink()  # tens of MB each, and only the total is wanted here
    return {"count": result["count"], "ir": total}


def measure(server: str, impl: str, scenario: str, log_dir: Path) -> dict:
    small, big = SCENARIOS[scenario][1]
    rec: dict = {"server": server, "impl": impl, "scenario": scenario}
    try:
        a = measure_once(server, impl, scenario, small, log_dir)
        b = measure_once(server, impl, scenario, big, log_dir)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return {**rec, "ir_per_op": None, "error": str(exc)[:500]}
    per_op = (b["ir"] - a["ir"]) / (b["count"] - a["count"])
    return {**rec, "ir_per_op": round(per_op), "runs": [a, b]}


def report(records: list[dict]) -> None:
    by_key = {(r["server"], r["scenario"], r["impl"]): r["ir_per_op"] for r in records}
    impls = [i for i in IMPLS if any(r["impl"] == i for r in records)]
    seen: list[tuple[str, str]] = []
    for r in records:
        if (r["server"], r["scenario"]) not in seen:
            seen.append((r["server"], r["scenario"]))
    head = ["server", "scenario", *[f"{i} Ir/op" for i in impls]]
    ratios = [i for i in impls if i != "bare"]
    head += [f"bare/{i}" for i in ratios]
    if "pyeio" in impls and "ours" in impls:
        head.append("pyeio/ours")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for server, scenario in seen:
        row = [server, f"{scenario} (per {UNITS[scenario]})"]
        vals = {i: by_key.get((server, scenario, i)) for i in impls}
        row += [f"{vals[i]:,}" if vals[i] else "-" for i in impls]
        bare = vals.get("bare")
        row += [f"{bare / vals[i]:.3f}" if bare and vals[i] else "-" for i in ratios]
        if "pyeio" in impls and "ours" in impls:
            p, o = vals.get("pyeio"), vals.get("ours")
            row.append(f"{p / o:.2f}" if p and o else "-")
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default="uvicorn", help=f"comma list of {','.join(SERVERS)} except granian")
    ap.add_argument("--impls", default="bare,pyeio,ours,ours-sync", help=f"comma list of {','.join(IMPLS)}")
    ap.add_argument("--scenarios", default="ws-echo,polling-echo", help=f"any of {','.join(SCENARIOS)}")
    ap.add_argument("--jobs", type=int, default=1, help="measurements at once (faster; ~3%% higher)")
    ap.add_argument("--report", nargs="+", metavar="FILE", help="print the table of earlier results")
    opts = ap.parse_args(argv)
    if opts.report:
        lines = [line for f in opts.report for line in Path(f).read_text().splitlines() if line]
        report([rec for rec in map(json.loads, lines) if rec.get("ir_per_op")])
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    servers, impls, scenarios = (x.split(",") for x in (opts.servers, opts.impls, opts.scenarios))
    if "granian" in servers:
        # Under valgrind (one thread at a time) granian's runtime threads add instructions
        # that follow the wall time, not the work: ours measured 330,000 per message against
        # bare's 205,000, where the timed runs put the two level. python-engineio's run died
        # of "brk segment overflow". Its figures would mislead, so it is left out.
        ap.error("granian cannot be measured under valgrind (see the comment here); use run.py")
    for name, known in (("server", SERVERS), ("impl", IMPLS), ("scenario", SCENARIOS)):
        for x in {"server": servers, "impl": impls, "scenario": scenarios}[name]:
            if x not in known:
                ap.error(f"unknown {name} {x}; one of {', '.join(known)}")
    ensure_node_deps()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{stamp}-instructions.jsonl"
    log_dir = RESULTS / "logs" / f"{stamp}-instructions"
    log_dir.mkdir(parents=True)
    jobs = [(s, i, sc) for s in servers for sc in scenarios for i in impls if not_run(s, i, sc) is None]
    for s in servers:
        for sc in scenarios:
            for i in impls:
                why_not = not_run(s, i, sc)
                if why_not is not None:
                    print(f"{s} {sc} {i}: {why_not[0]} ({why_not[1]})")
    meta = {"event": "meta", "versions": versions(), "started": stamp}
    records = []
    pool = ThreadPoolExecutor(max(1, opts.jobs))
    try:
        with open(out, "w") as f:
            f.write(json.dumps(meta) + "\n")
            for rec in pool.map(lambda job: measure(*job, log_dir), jobs):
                figure = f"{rec['ir_per_op']:>10,} Ir/op" if rec["ir_per_op"] else f"failed: {rec['error']}"
                print(f"{rec['server']:15s} {rec['scenario']:18s} {rec['impl']:10s} {figure}")
                f.write(json.dumps(rec) + "\n")
                f.flush()
                records.append(rec)
    except KeyboardInterrupt:
        print("interrupted: the measurements in flight finish and stop their servers", file=sys.stderr)
        pool.shutdown(wait=True, cancel_futures=True)
        return 130
    pool.shutdown()
    print()
    report([rec for rec in records if rec["ir_per_op"]])
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
