"""The conformance suite, 20 runs in a row on every server: the upgrade tests race a GET
against frames on another connection, and a race closed by design passes every time.

Long (about 10 minutes): run it with ``pytest -m stress tests/reliability/test_conformance_repeat.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

SUITE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conformance")
RUNS = 20
RUN_TIMEOUT = 300.0  # seconds for one run of the whole suite on all four servers


@pytest.mark.stress
def test_conformance_suite_passes_twenty_runs_in_a_row() -> None:
    started = time.monotonic()
    for run in range(1, RUNS + 1):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", SUITE],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, (
            f"run {run} of {RUNS} failed after {time.monotonic() - started:.0f}s:\n{result.stdout[-6000:]}"
        )
