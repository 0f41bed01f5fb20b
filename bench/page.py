"""docs/benchmarks.md from the raw measures (bench/run.py's benchmarks.json)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import report
from bench.mocks import overhead

GROWTH_LIMIT = 1.25  # ms per node at 1000 over at 100: "linear" within noise
TEMPLATE = Path(__file__).with_name("benchmarks.md.in")


def goals(data: Mapping[str, Any]) -> list[report.Goal]:
    """The issue's goals, from the same run."""
    summary = report.summarize(report.side_by_side_times(data["side_by_side"]))
    top = max(k[0] for k in summary)
    found = [
        report.Goal(
            f"no-op preview at {top} VMs, like for like (`--refresh`), / `tofu plan`",
            report.ratio(summary, top, "noop-refresh"),
            1.0,
        ),
        report.Goal(
            f"no-op preview at {top} VMs, each tool's default, / `tofu plan`",
            report.defaults_ratio(summary, top),
            1.0,
        ),
        report.Goal(f"create at {top} VMs / OpenTofu", report.ratio(summary, top, "create"), 1.0),
        report.Goal(f"destroy at {top} VMs / OpenTofu", report.ratio(summary, top, "destroy"), 1.0),
    ]
    # Each program no-op `up` counted here passed its check: the datastore's ISO untouched.
    noop_ups = sum(1 for t in data["side_by_side"] if (t["tool"], t["step"]) == ("program", "noop-up"))
    found.append(report.Goal(f"ISO builds and pushes by an unchanged `up` ({noop_ups} checked)", 0, 0, ""))
    mocks = (data.get("mocks") or {}).get("summary", {})
    for variant, entry in mocks.items():
        rows = entry["by_workers"]
        biggest = max(rows, key=int)
        if "ratio" in rows[biggest]:
            found.append(
                report.Goal(
                    f"evaluation at {biggest} workers ({variant}) / floor", rows[biggest]["ratio"], 1.1
                )
            )
        if "program_growth" in entry:
            found.append(
                report.Goal(
                    f"growth of ms per node ({variant}), largest count / reference",
                    entry["program_growth"],
                    GROWTH_LIMIT,
                )
            )
    return found


def render(data: Mapping[str, Any], out: Path) -> str:
    """The page; writes its PNGs next to it."""
    summary = report.summarize(report.side_by_side_times(data["side_by_side"]))
    plots = report.plot_side_by_side(summary, out)
    runs = {(t["nodes"], t["run"]) for t in data["side_by_side"]}
    values: dict[str, str] = {
        "started": data.get("started", "?"),
        "finished": data.get("finished", "?"),
        "machine": report.machine_table(data.get("machine", {})),
        "runs": ", ".join(
            f"N={n}: {sum(1 for k in runs if k[0] == n)} runs" for n in sorted({k[0] for k in runs})
        ),
        "goals": report.goals_table(goals(data)),
        "side_by_side": report.side_by_side_table(summary),
        "plots": "\n".join(f"![{p.stem}]({p.name})" for p in plots),
        "mocks": "not measured",
        "breakdown": "not measured",
    }
    mocks = data.get("mocks")
    if mocks:
        values["mocks"] = (
            overhead.table(mocks["summary"])
            + "\n\n"
            + (f"![bench-mocks]({report.plot_mocks(mocks['summary'], out).name})")
        )
    traced = data.get("breakdown")
    if traced:
        parts = []
        for name in ("preview", "preview --refresh"):
            b = traced[name]
            parts.append(
                f"#### `pulumi {name}` at {traced['nodes']} VMs ({b['seconds']:.2f} s traced)\n\n"
                + report.breakdown_table(b["categories"], b["wall"])
                + "\n\n"
                + report.calls_table(b["calls"])
            )
        values["breakdown"] = "\n\n".join(parts)
    return TEMPLATE.read_text().format(**values)
