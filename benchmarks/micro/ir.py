"""Instructions per operation of an in-process micro benchmark, under callgrind.

Runs ``SCRIPT ARGS --quiet`` under ``valgrind --tool=callgrind`` twice, with
``--OPTION SMALL`` and ``--OPTION BIG`` appended, and prints the difference of the
two totals over ``BIG - SMALL``: start-up, imports and set-up cancel out. With
``--top N`` it also prints the N functions whose own instructions grew most
between the two runs, per operation (from ``callgrind_annotate``)::

    python benchmarks/micro/ir.py --per 50 benchmarks/micro/sio_echo.py --impl ours -- --echoes 50 150
    python benchmarks/micro/ir.py --per 500 benchmarks/micro/broadcast.py --clients 500 -- --emits 4 12

``--per K`` divides once more (50 clients' echoes each, a broadcast's 500 deliveries
per emit); this script's own options come before SCRIPT. ``PYTHONPATH``
picks the tree under test, as for every benchmark here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

TOTAL = re.compile(rb"Collected : (\d+)")
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def run(script: list[str], out: Path) -> int:
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *script, "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, timeout=3600, env=os.environ)
    found = TOTAL.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return int(found.group(1))


def functions(path: Path) -> dict[str, int]:
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(path)], capture_output=True, text=True, timeout=600
    ).stdout
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            name = m.group(2).split(" [")[0]
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("script", nargs=argparse.REMAINDER, help="SCRIPT [ARGS] -- --OPTION SMALL BIG")
    ap.add_argument("--per", type=int, default=1, help="operations per count (e.g. recipients per emit)")
    ap.add_argument("--top", type=int, default=0, help="also list the N functions that grew most")
    opts = ap.parse_args()
    if "--" not in opts.script or len(opts.script) < opts.script.index("--") + 4:
        ap.error("give SCRIPT [ARGS] -- --OPTION SMALL BIG")
    cut = opts.script.index("--")
    script, (option, small, big) = opts.script[:cut], opts.script[cut + 1 : cut + 4]
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / "small.cg", Path(tmp) / "big.cg"]
        totals = [run([*script, option, n], out) for n, out in zip((small, big), outs, strict=True)]
        ops = (int(big) - int(small)) * opts.per
        print(f"{(totals[1] - totals[0]) / ops:,.0f} Ir per operation ({' '.join(script)}; {totals})")
        if opts.top:
            a, b = functions(outs[0]), functions(outs[1])
            grown = sorted(((b.get(k, 0) - a.get(k, 0)) / ops, k) for k in set(a) | set(b))
            for ir, name in reversed(grown[-opts.top :]):
                print(f"{ir:>10,.0f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
