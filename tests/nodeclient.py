"""Run the Node.js Engine.IO test client (tests/node/eio_client.js) from Python.

    result = run_node_client("http://127.0.0.1:8000", "echo",
                             transports="polling", text=5, binary=5)
    assert result["ok"]

Every keyword argument becomes a ``--name=value`` option of the Node client
(underscores turn into dashes, booleans into ``true``/``false``, lists and
tuples into comma-separated values, except ``send`` whose items are passed as
repeated ``--send=`` options). See the header of eio_client.js for the options
of each scenario.
"""

import json
import os
import shutil
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_SCRIPT = os.path.join(REPO_ROOT, "tests", "node", "eio_client.js")
V3_CLIENT_SCRIPT = os.path.join(REPO_ROOT, "tests", "node", "eio3_client.js")  # engine.io-client 3.5
NODE_MODULES = os.path.join(REPO_ROOT, "node_modules")

# Options that the Node client accepts several times.
_REPEATABLE = {"send"}

DEFAULT_TIMEOUT = 15.0  # seconds, the client's own hard timeout
_EXTRA_GRACE = 10.0  # seconds on top of it before the subprocess is killed


class NodeClientError(RuntimeError):
    """The Node client failed, timed out or printed something unexpected."""

    def __init__(self, message, result=None, stdout="", stderr="", returncode=None):
        super().__init__(message)
        self.result = result
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode


def node_executable():
    return shutil.which("node")


def node_available():
    """True when ``node`` is on PATH and the npm dependencies are installed."""
    if node_executable() is None:
        return False
    return os.path.isfile(os.path.join(NODE_MODULES, "engine.io-client", "package.json"))


def _format_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def build_args(url, scenario, opts, script=CLIENT_SCRIPT):
    args = [node_executable() or "node", script, url, scenario]
    for name, value in opts.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name in _REPEATABLE and isinstance(value, (list, tuple)):
            args.extend(f"{flag}={v}" for v in value)
        else:
            args.append(f"{flag}={_format_value(value)}")
    return args


def run_node_client(url, scenario, *, timeout=DEFAULT_TIMEOUT, check=True, script=CLIENT_SCRIPT, **opts):
    """Run one scenario of the Node client against ``url`` and return its report.

    ``script`` is the client: :data:`CLIENT_SCRIPT` (engine.io-client 6) or
    :data:`V3_CLIENT_SCRIPT` (engine.io-client 3.5, Engine.IO v3).

    ``timeout`` (seconds) is the client's hard timeout for the scenario; the
    subprocess itself is killed if it has not exited ``_EXTRA_GRACE`` seconds
    later. With ``check=True`` (default) a failed scenario raises
    :class:`NodeClientError` carrying the report, stdout and stderr; with
    ``check=False`` the report of a failed scenario is returned too (it has
    ``ok: False`` and an ``error``), and only a missing or unparsable report
    raises. The report always gets an ``exit_code`` key.
    """
    if not node_available():
        raise NodeClientError("node or the npm dependencies are missing (run `npm ci`)")
    opts = dict(opts)
    opts["timeout"] = int(timeout * 1000)
    args = build_args(url, scenario, opts, script)
    try:
        proc = subprocess.run(
            args,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout + _EXTRA_GRACE,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run kills the child (by its PID) before raising.
        raise NodeClientError(
            f"node client {scenario!r} did not exit within {timeout + _EXTRA_GRACE:.0f}s",
            stdout=_text(exc.stdout),
            stderr=_text(exc.stderr),
        ) from None

    result = _parse_report(proc.stdout)
    if result is None:
        raise NodeClientError(
            f"node client {scenario!r} exited {proc.returncode} without a "
            f"JSON report\nargs: {args}\nstdout:\n{proc.stdout}\n"
            f"stderr:\n{proc.stderr}",
            stdout=proc.stdout,
            stderr=proc.stderr,
            returncode=proc.returncode,
        )
    result["exit_code"] = proc.returncode
    if check and (proc.returncode != 0 or not result.get("ok")):
        raise NodeClientError(
            f"node client {scenario!r} failed (exit {proc.returncode}): "
            f"{result.get('error')}\nargs: {args}\nreport: "
            f"{json.dumps(result)}\nstderr:\n{proc.stderr}",
            result=result,
            stdout=proc.stdout,
            stderr=proc.stderr,
            returncode=proc.returncode,
        )
    return result


def _text(data):
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def _parse_report(stdout):
    """Return the last JSON object line of stdout, or None."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
