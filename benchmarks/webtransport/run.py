"""Websocket vs WebTransport echo, same machine, same server process, same browser.

    .venv/bin/python benchmarks/webtransport/run.py [--repeat 5] [--rounds 2000] [--total 20000]

Starts benchmarks/webtransport/app.py under uvicorn on 127.0.0.1 (websocket on TCP,
WebTransport on UDP, same port number) and drives headless Chromium (playwright-core,
/usr/bin/chromium): for each transport, interleaved and repeated, the page measures
``--rounds`` sequential round trips of a 16-byte text message (p50, p99) and then the
messages per second with ``--window`` messages in flight until ``--total`` came back.
The client is the official engine.io-client bundle in the browser for both transports,
so the browser's own websocket and QUIC stacks are what differ on the client side.
The server's CPU time (user + system, from /proc) per message echoed is read around each
run. Prints medians over the repeats as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--total", type=int, default=20000)
    parser.add_argument("--window", type=int, default=64)
    args = parser.parse_args()
    port = free_port()
    env = dict(os.environ, PORT=str(port), PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]))
    uvicorn = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [*uvicorn, "--log-level", "warning"],
        env=env,
        cwd=str(HERE),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the benchmark server did not start")
                time.sleep(0.1)
        lines = []
        for transport in ["websocket", "webtransport"] * args.repeat:  # interleaved
            before = cpu_seconds(server.pid)
            out = subprocess.run(
                [shutil.which("node") or "node", str(HERE / "drive.js"), f"http://127.0.0.1:{port}/",
                 str(args.rounds), str(args.total), str(args.window), transport],
                cwd=str(ROOT), capture_output=True, text=True, timeout=600, check=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            messages = 200 + args.rounds + args.total  # warm-up, round trips, throughput
            result["cpuMicros"] = (cpu_seconds(server.pid) - before) / messages * 1e6
            lines.append(result)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    results: dict[str, list[dict[str, float]]] = {}
    for r in lines:
        results.setdefault(r["transport"], []).append(r)
    print(f"repeats: {args.repeat}, rounds: {args.rounds}, total: {args.total}, window: {args.window}")
    print(
        "| transport | p50 round trip (ms) | p99 round trip (ms) | messages/s (min-max) "
        "| server CPU per message (µs) |"
    )
    print("|---|---|---|---|---|")
    for name in ("websocket", "webtransport"):
        runs = results.get(name, [])
        med = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "perSecond", "cpuMicros")}
        spread = f"{min(r['perSecond'] for r in runs):.0f}-{max(r['perSecond'] for r in runs):.0f}"
        print(
            f"| {name} | {med['p50']:.2f} | {med['p99']:.2f} | {med['perSecond']:.0f} ({spread}) "
            f"| {med['cpuMicros']:.0f} |"
        )


if __name__ == "__main__":
    main()
