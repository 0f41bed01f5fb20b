"""Medians, ratios, tables and plots of the benchmark's measures (pure, but for the PNGs)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.side_by_side import STEPS, StepTime

STEP_TITLES: Mapping[str, str] = {
    "create": "create N VMs",
    "noop-refresh": "no-op plan/preview, refreshing (`tofu plan` / `pulumi preview --refresh`)",
    "noop": "no-op plan/preview, no refresh (`tofu plan -refresh=false` / `pulumi preview`)",
    "noop-up": "no-op apply/up (`tofu apply` / `pulumi up`)",
    "rollout": "new ISO on every VM (OpenTofu one-shot apply / program rolling upgrade)",
    "destroy": "destroy",
}
# Each tool's default no-op plan: OpenTofu's plan refreshes, `pulumi preview` does not.
DEFAULTS: Mapping[str, str] = {"opentofu": "noop-refresh", "program": "noop"}


@dataclass(frozen=True)
class Summary:
    """Median and range of one tool's step at one node count."""

    median: float
    low: float
    high: float
    runs: int


def summarize(times: Iterable[StepTime]) -> dict[tuple[int, str, str], Summary]:
    """(nodes, step, tool) -> median, min and max over the runs."""
    groups: dict[tuple[int, str, str], list[float]] = {}
    for t in times:
        groups.setdefault((t.nodes, t.step, t.tool), []).append(t.seconds)
    return {key: Summary(statistics.median(v), min(v), max(v), len(v)) for key, v in sorted(groups.items())}


def ratio(summary: Mapping[tuple[int, str, str], Summary], nodes: int, step: str) -> float:
    """Program median / OpenTofu median for one step (like for like)."""
    return summary[(nodes, step, "program")].median / summary[(nodes, step, "opentofu")].median


def defaults_ratio(summary: Mapping[tuple[int, str, str], Summary], nodes: int) -> float:
    """``pulumi preview`` against ``tofu plan``: each tool's default no-op plan."""
    program = summary[(nodes, DEFAULTS["program"], "program")].median
    return program / summary[(nodes, DEFAULTS["opentofu"], "opentofu")].median


def _cell(s: Summary) -> str:
    if s.runs == 1 or s.low == s.high:
        return f"{s.median:.2f} s"
    return f"{s.median:.2f} s ({s.low:.2f}-{s.high:.2f})"


def side_by_side_table(summary: Mapping[tuple[int, str, str], Summary]) -> str:
    """Markdown: one row per node count and step, both tools and the ratio."""
    rows = [
        "| N VMs | step | OpenTofu | this program | ratio |",
        "|---:|---|---:|---:|---:|",
    ]
    for nodes in sorted({k[0] for k in summary}):
        for step in STEPS:
            if (nodes, step, "program") not in summary or (nodes, step, "opentofu") not in summary:
                continue
            tofu, program = summary[(nodes, step, "opentofu")], summary[(nodes, step, "program")]
            rows.append(
                f"| {nodes} | {STEP_TITLES[step]} | {_cell(tofu)} | {_cell(program)} "
                f"| {ratio(summary, nodes, step):.2f}x |"
            )
        if (nodes, "noop", "program") in summary and (nodes, "noop-refresh", "opentofu") in summary:
            rows.append(
                f"| {nodes} | each tool's default no-op (`tofu plan` / `pulumi preview`) "
                f"| {_cell(summary[(nodes, 'noop-refresh', 'opentofu')])} "
                f"| {_cell(summary[(nodes, 'noop', 'program')])} | {defaults_ratio(summary, nodes):.2f}x |"
            )
    return "\n".join(rows)


@dataclass(frozen=True)
class Goal:
    """One of the issue's goals, measured."""

    name: str
    measured: float
    limit: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        """Whether the measure is within the limit."""
        return self.measured <= self.limit

    def line(self) -> str:
        """A Markdown table row."""
        verdict = "met" if self.met else f"missed by {self.measured - self.limit:.2f}{self.unit}"
        measured, limit = f"{self.measured:.2f}{self.unit}", f"{self.limit:g}{self.unit}"
        return f"| {self.name} | {measured} | at most {limit} | {verdict} |"


def goals_table(goals: Sequence[Goal]) -> str:
    """Markdown: the goals with their measures."""
    rows = ["| goal | measured | target | result |", "|---|---:|---:|---|"]
    return "\n".join(rows + [g.line() for g in goals])


def plot_side_by_side(summary: Mapping[tuple[int, str, str], Summary], out: Path) -> list[Path]:
    """One PNG per step: median seconds (with min-max bars) against N, both tools."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = []
    sizes = sorted({k[0] for k in summary})
    for step in STEPS:
        fig, ax = plt.subplots(figsize=(6, 4))
        for tool, label in (("opentofu", "OpenTofu"), ("program", "this program")):
            points = [summary[(n, step, tool)] for n in sizes if (n, step, tool) in summary]
            if not points:
                continue
            xs = [n for n in sizes if (n, step, tool) in summary]
            ax.errorbar(
                xs,
                [p.median for p in points],
                yerr=[[p.median - p.low for p in points], [p.high - p.median for p in points]],
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xlabel("VMs")
        ax.set_ylabel("seconds (median, min-max)")
        ax.set_title(STEP_TITLES[step].split(" (")[0])
        ax.grid(True, alpha=0.3)
        ax.legend()
        path = out / f"bench-{step}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def breakdown_table(categories: Mapping[str, float], wall: float) -> str:
    """Markdown: seconds and share of each category of a traced preview."""
    rows = ["| where | seconds | share |", "|---|---:|---:|"]
    rows += [
        f"| {name} | {sec:.2f} | {100 * sec / wall:.0f} % |"
        for name, sec in categories.items()
        if sec >= 0.005
    ]
    rows.append(f"| **total (the CLI's root span)** | **{wall:.2f}** | 100 % |")
    return "\n".join(rows)


def calls_table(calls: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown: provider calls by method: count, summed time, wall time covered, peak in flight."""
    rows = ["| provider call | count | sum of durations (s) | wall time covered (s) | peak in flight |"]
    rows.append("|---|---:|---:|---:|---:|")
    for name, c in calls.items():
        rows.append(f"| {name} | {c['count']:.0f} | {c['sum']:.2f} | {c['union']:.2f} | {c['peak']:.0f} |")
    return "\n".join(rows)


def machine_table(machine: Mapping[str, str]) -> str:
    """Markdown: what the measures were taken on."""
    return "\n".join(["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in machine.items())])


def side_by_side_times(raw: Iterable[Mapping[str, object]]) -> list[StepTime]:
    """The JSON form back into StepTimes."""
    return [StepTime(**r) for r in raw]  # type: ignore[arg-type]


def plot_mocks(summary: Mapping[str, Mapping[str, object]], out: Path) -> Path:
    """Milliseconds per node against workers under mocks: program and floor, per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, entry in summary.items():
        rows = entry["by_workers"]
        assert isinstance(rows, Mapping)
        xs = sorted(int(w) for w in rows if {"program", "floor"} <= set(rows[w]))
        for mode, style in (("program", "-o"), ("floor", "--s")):
            ax.plot(xs, [rows[str(w)][mode]["ms_per_node"] for w in xs], style, label=f"{variant}: {mode}")
    ax.set_xscale("log")
    ax.set_xlabel("workers")
    ax.set_ylabel("evaluation ms per node (median)")
    ax.set_title("program under mocks against the bare replay (floor)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "bench-mocks.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
