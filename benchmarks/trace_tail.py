"""Where the slow round trips of a latency-under-load run fall: in ping bursts or not.

Reads the files ``run.py --trace DIR`` writes (one per run: each round trip's
scheduled send and its time, and when the held sessions got their pings, in ms
from the window's start) and prints, per file, the round trips sent while
pings were arriving (a 100 ms bin of the window with at least ``--busy`` pings)
and the others: how many, their p50 / p99 / p99.9, and the share of the run's
slowest 1 % that fell in the ping bins. Also how pings arrive bunched: the
share of pings that came within 0.2 ms of the previous one (a batch written at
once by the server). Not timed itself; a diagnosis of what lifts p99.

    .venv/bin/python benchmarks/trace_tail.py /tmp/trace/*.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

BIN_MS = 100.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def analyse(path: Path, busy: int) -> dict:
    data = json.loads(path.read_text())
    samples = data["samples"]
    pings = sorted(data["pings"])
    bins: dict[int, int] = {}
    for t in pings:
        b = int(t // BIN_MS)
        bins[b] = bins.get(b, 0) + 1
    in_burst = [ms for at, ms in samples if bins.get(int(at // BIN_MS), 0) >= busy]
    outside = [ms for at, ms in samples if bins.get(int(at // BIN_MS), 0) < busy]
    all_ms = [ms for _, ms in samples]
    p99 = pct(all_ms, 99)
    slow = [(at, ms) for at, ms in samples if ms >= p99]
    slow_in = sum(1 for at, _ in slow if bins.get(int(at // BIN_MS), 0) >= busy)
    window = data["window_ms"]
    in_window = [t for t in pings if 0 <= t <= window]
    gaps = [b - a for a, b in itertools.pairwise(in_window)]
    bunched = sum(1 for g in gaps if g < 0.2) / len(gaps) if gaps else float("nan")
    burst_bins = sum(1 for b, n in bins.items() if n >= busy and 0 <= b * BIN_MS < window)
    return {
        "file": path.name,
        "samples": len(samples),
        "p99_ms": round(p99, 3),
        "pings_in_window": len(in_window),
        "ping_bins_s": round(burst_bins * BIN_MS / 1000, 1),
        "pings_bunched": round(bunched, 3),
        "in_pings": [len(in_burst), *(round(pct(in_burst, p), 3) for p in (50, 99, 99.9))],
        "outside": [len(outside), *(round(pct(outside, p), 3) for p in (50, 99, 99.9))],
        "slowest_1pct_in_pings": round(slow_in / len(slow), 3) if slow else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--busy", type=int, default=5, help="pings in a 100 ms bin that make it a ping bin")
    opts = ap.parse_args()
    for path in opts.files:
        print(json.dumps(analyse(path, opts.busy)))


if __name__ == "__main__":
    main()
