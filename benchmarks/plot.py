#!/usr/bin/env python3
"""Render a results file of benchmarks/run.py as a PNG.

    .venv/bin/python benchmarks/plot.py benchmarks/results/<run>.jsonl [-o out.png]

One panel per scenario and metric; in each, one group of bars per server and one
bar per implementation (medians over repeats).  Bars of implementations that did
not run on a server are left out; "n/a" and "skip" are written where they go.
Needs matplotlib (the project's `bench` extra).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import METRICS, load_records, median

COLORS = {
    "bare": "#9e9e9e",
    "pyeio": "#4e79a7",
    "pyeio-sync": "#76a5d8",
    "ours": "#e15759",
    "ours-sync": "#f28e2b",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="results .jsonl file(s)")
    ap.add_argument("-o", "--out", help="PNG path (default: the first results file with .png)")
    opts = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = []
    for path in opts.results:
        records += load_records(path)
    results = [r for r in records if r.get("type") == "result"]
    if not results:
        print("no results in", ", ".join(opts.results))
        return 1
    order = lambda key: list(dict.fromkeys(r[key] for r in results))  # noqa: E731
    scenarios, servers, impls = order("scenario"), order("server"), order("impl")
    panels = []
    for scen in scenarios:
        kind = next(r["kind"] for r in results if r["scenario"] == scen)
        for key, label, lower, _ in METRICS.get(kind, []):
            panels.append((scen, key, label, lower))
    if not panels:
        print("nothing to plot")
        return 1

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows + 0.8), squeeze=False)
    width = 0.8 / max(1, len(impls))
    for ax, (scen, key, label, lower) in zip(axes.flat, panels, strict=False):
        for n, impl in enumerate(impls):
            xs, ys, notes = [], [], []
            for s_i, server in enumerate(servers):
                recs = [r for r in results if (r["scenario"], r["server"], r["impl"]) == (scen, server, impl)]
                ok = [r for r in recs if r.get("status") == "ok"]
                x = s_i - 0.4 + width * (n + 0.5)
                value = median(r.get(key) for r in ok)
                if value is not None:
                    xs.append(x)
                    ys.append(value)
                elif recs:
                    notes.append((x, {"n/a": "n/a", "skipped": "skip"}.get(recs[0].get("status"), "err")))
            ax.bar(xs, ys, width, label=impl, color=COLORS.get(impl))
            for x, text in notes:
                ax.text(x, 0, text, ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_title(f"{scen}: {label}" + (" (lower is better)" if lower else ""), fontsize=9)
        ax.set_xticks(range(len(servers)))
        ax.set_xticklabels(servers, fontsize=8, rotation=15)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.3 / (3.6 * rows + 0.8)),
        ncol=len(impls),
        fontsize=9,
    )
    meta = next((r for r in records if r.get("type") == "meta"), {})
    fig.suptitle(
        f"Engine.IO benchmarks {meta.get('run_id', '')} ({meta.get('cpu', '')}, "
        f"server core {meta.get('cores', {}).get('server', '?')}, "
        f"generator core {meta.get('cores', {}).get('generator', '?')})",
        fontsize=10,
        y=0.995,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / (3.6 * rows + 0.8)))
    out = Path(opts.out) if opts.out else Path(opts.results[0]).with_suffix(".png")
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
