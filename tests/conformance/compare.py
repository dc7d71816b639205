"""Run the conformance suite against reference implementations and print pass counts.

    .venv/bin/python tests/conformance/compare.py [--impl python-engineio] [--server uvicorn]
                                                 [--node-dir /tmp/eioref] [-v]

* Always: the suite against ``--impl`` (default python-engineio) served by ``--server``
  (default uvicorn); prints e.g. ``python-engineio: 11/24 passed``.
* With ``--node-dir DIR`` where ``DIR/node_modules/engine.io`` exists (install it with
  ``npm install engine.io@6`` in a folder outside the repository): writes
  ``DIR/eio_reference_server.js``, starts it with ``node`` on a free 127.0.0.1 port and
  prints ``node engine.io X.Y.Z: N/24 passed``.  This validates the tests themselves.

Not collected by pytest (the file name does not match test_*.py).  Each run is a
``pytest`` subprocess with a JUnit XML report; the Node server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

import servers  # noqa: E402

SUITE = HERE / "test_protocol_suite.py"
EXPECTED_CASES = 24
RUN_TIMEOUT = 300  # seconds for one whole pytest run

NODE_SERVER_JS = """\
// Reference engine.io server with the settings of the engine.io-protocol test suite.
const http = require("http");
const { Server } = require("engine.io");
const port = Number(process.argv[2]);
const httpServer = http.createServer();
const engine = new Server({
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  cors: { origin: "*" },
});
engine.attach(httpServer);
engine.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});
httpServer.listen(port, "127.0.0.1");
"""


def run_suite(env_extra: dict, verbose: bool) -> tuple[int, int, list[tuple[str, str]]]:
    """Run the suite once; return (passed, total, [(test, first failure line)])."""
    with tempfile.TemporaryDirectory(prefix="eio-compare-") as tmp:
        xml_path = os.path.join(tmp, "report.xml")
        env = dict(os.environ)
        env.update(env_extra)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            str(SUITE),
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={xml_path}",
        ]
        proc = subprocess.run(
            cmd, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
        if verbose:
            print(proc.stdout[-20000:])
            print(proc.stderr[-5000:], file=sys.stderr)
        if not os.path.exists(xml_path):
            raise RuntimeError(
                f"pytest produced no report (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        root = ET.parse(xml_path).getroot()
    passed, total, failures = 0, 0, []
    for case in root.iter("testcase"):
        total += 1
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skipped = case.find("skipped")
        if bad is None and skipped is None:
            passed += 1
        else:
            node = bad if bad is not None else skipped
            msg = (node.get("message") or node.text or "").strip().splitlines()
            failures.append((name, msg[0][:160] if msg else ""))
    return passed, total, failures


def report(label: str, result) -> None:
    passed, total, failures = result
    print(f"{label}: {passed}/{total} passed")
    if total != EXPECTED_CASES:
        print(f"  (warning: expected {EXPECTED_CASES} test cases, found {total})")
    for name, msg in failures:
        print(f"  FAIL {name}: {msg}")


def run_node(node_dir: Path, verbose: bool) -> None:
    node = shutil.which("node")
    pkg = node_dir / "node_modules" / "engine.io" / "package.json"
    if node is None or not pkg.exists():
        print(f"node engine.io: skipped (need `node` and {pkg})")
        return
    version = json.loads(pkg.read_text())["version"]
    script = node_dir / "eio_reference_server.js"
    script.write_text(NODE_SERVER_JS)
    port = servers.free_port()
    fd, log_path = tempfile.mkstemp(prefix="eio-node-", suffix=".log")
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(
            [node, str(script), str(port)],
            cwd=str(node_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + servers.READY_TIMEOUT
        while not servers._tcp_accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("node server did not start:\n" + Path(log_path).read_text())
            time.sleep(servers.READY_STEP)
        result = run_suite({"CONFORMANCE_URL": f"http://127.0.0.1:{port}"}, verbose)
        report(f"node engine.io {version}", result)
    finally:
        servers._stop(proc)
        os.unlink(log_path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", default="python-engineio", choices=["python-engineio", "ours"])
    ap.add_argument("--server", default="uvicorn", choices=servers.SERVERS)
    ap.add_argument(
        "--node-dir", type=Path, default=None, help="folder (outside the repo) holding node_modules/engine.io"
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    env = {"CONFORMANCE_IMPLS": args.impl, "CONFORMANCE_SERVERS": args.server, "CONFORMANCE_URL": ""}
    label = args.impl if args.server == "uvicorn" else f"{args.impl} on {args.server}"
    report(label, run_suite(env, args.verbose))
    if args.node_dir is not None:
        run_node(args.node_dir.resolve(), args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
