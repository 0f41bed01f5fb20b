"""Program overhead under mocks: each evaluation against its floor, per node count and variant.

``python -m bench.mocks.overhead --workers 10 100 500 1000 --runs 3 --out overhead.json``

Every run is a fresh interpreter (``bench.mocks.child``), so peak RSS is that run's:
the program first (it writes the recording), then the floors replaying it. The JSON
has every run's raw numbers and, per variant and count, the medians, ms per node,
the program/floor ratios, and the growth of ms per node (``stats.growth``) with a
least-squares fit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.mocks import scenario, stats
from bench.mocks.child import MODES

PROJECT_DIR = Path(__file__).resolve().parents[2]


class ChildFailed(Exception):
    """A measured evaluation failed (the program raised, or the floor registered something else)."""


def run_child(mode: str, variant: str, workers: int, recording: Path) -> dict[str, Any]:
    """One measured evaluation in a fresh interpreter."""
    argv = [sys.executable, "-m", "bench.mocks.child", mode, variant, str(workers), str(recording)]
    done = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise ChildFailed(last[0])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (variant, workers, mode), ratios and growth per variant."""
    summary: dict[str, Any] = {}
    for variant in sorted({r["variant"] for r in runs}):
        rows: dict[str, Any] = {}
        medians: dict[str, dict[int, float]] = {mode: {} for mode in MODES}
        for workers in sorted({r["workers"] for r in runs if r["variant"] == variant}):
            row: dict[str, Any] = {}
            for mode in MODES:
                mine = [
                    r for r in runs if (r["variant"], r["workers"], r["mode"]) == (variant, workers, mode)
                ]
                if not mine:
                    continue
                nodes = mine[0]["nodes"]
                eval_s = stats.median([r["eval_s"] for r in mine])
                medians[mode][nodes] = eval_s
                row[mode] = {
                    "nodes": nodes,
                    "registrations": mine[0]["registrations"],
                    "eval_s": eval_s,
                    "ms_per_node": stats.ms_per_node(eval_s, nodes),
                    "peak_rss_mib": stats.median([r["peak_rss_kib"] for r in mine]) / 1024,
                    "rss_before_eval_mib": stats.median([r["rss_before_eval_kib"] for r in mine]) / 1024,
                }
            if "program" in row and "floor" in row:
                row["ratio"] = stats.ratio(row["program"]["eval_s"], row["floor"]["eval_s"])
            if "program" in row and "floor-typed" in row:
                row["ratio_typed"] = stats.ratio(row["program"]["eval_s"], row["floor-typed"]["eval_s"])
            rows[str(workers)] = row
        entry: dict[str, Any] = {"by_workers": rows}
        for mode, points in medians.items():
            if len(points) >= 2:
                fit = stats.linear_fit(points)
                entry[f"{mode}_growth"] = stats.growth(points)
                entry[f"{mode}_fit"] = {
                    "ms_per_node": fit.slope * 1000,
                    "fixed_s": fit.intercept,
                    "r_squared": fit.r_squared,
                }
        summary[variant] = entry
    return summary


def table(summary: dict[str, Any]) -> str:
    """A Markdown table of the medians."""
    lines = [
        "| variant | workers | nodes | registrations | program s | floor s | ratio "
        "| typed floor s | ratio to it | program ms/node | floor ms/node "
        "| program peak RSS MiB | floor peak RSS MiB | typed floor peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, entry in summary.items():
        for workers, row in entry["by_workers"].items():
            if not {"program", "floor", "floor-typed"} <= set(row):
                failures = [f"{k}: {v[0]}" for k, v in row.items() if k.endswith("_failed")]
                lines.append(f"| {variant} | {workers} | failed: {'; '.join(failures)} |")
                continue
            p, f, t = row["program"], row["floor"], row["floor-typed"]
            lines.append(
                f"| {variant} | {workers} | {p['nodes']} | {p['registrations']} | {p['eval_s']:.2f} "
                f"| {f['eval_s']:.2f} | {row['ratio']:.2f}x | {t['eval_s']:.2f} | {row['ratio_typed']:.2f}x "
                f"| {p['ms_per_node']:.2f} | {f['ms_per_node']:.2f} "
                f"| {p['peak_rss_mib']:.0f} | {f['peak_rss_mib']:.0f} | {t['peak_rss_mib']:.0f} |"
            )
    for variant, entry in summary.items():
        if {"program_growth", "floor_growth", "floor-typed_growth"} <= set(entry):
            lines.append(
                f"\n{variant}: ms/node growth (largest count over the reference) "
                f"program {entry['program_growth']:.2f}x, floor {entry['floor_growth']:.2f}x, "
                f"typed floor {entry['floor-typed_growth']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run every variant and count ``--runs`` times and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=scenario.VARIANTS, default=list(scenario.VARIANTS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            for workers in args.workers:
                for index in range(args.runs):
                    recording = Path(tmp) / f"{variant}-{workers}-{index}.json"
                    for mode in MODES:
                        try:
                            result = run_child(mode, variant, workers, recording)
                        except ChildFailed as exc:
                            # The floors replay the program's recording: nothing to replay.
                            runs.append(
                                {"mode": mode, "variant": variant, "workers": workers, "error": str(exc)}
                            )
                            print(f"{variant} {workers} #{index} {mode}: failed: {exc}", file=sys.stderr)
                            if mode == "program":
                                break
                            continue
                        runs.append({**result, "run": index})
                        print(
                            f"{variant} {workers} #{index} {mode}: {result['eval_s']:.2f} s, "
                            f"peak {result['peak_rss_kib'] / 1024:.0f} MiB",
                            file=sys.stderr,
                        )
    summary = summarize(runs)
    args.out.write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
    print(table(summary))


if __name__ == "__main__":
    main()
