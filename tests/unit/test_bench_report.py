"""The benchmark's report: medians, ratios, goals, tables, the page and its plots."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench import page, report
from bench.side_by_side import STEPS, StepTime


def _times(tofu: float, program: float, nodes: int = 100, runs: int = 3) -> list[StepTime]:
    """Every step of both tools, run r taking base * (1 + r/10)."""
    out = []
    for run in range(runs):
        for step in STEPS:
            out.append(StepTime("opentofu", step, nodes, run, tofu * (1 + run / 10)))
            out.append(StepTime("program", step, nodes, run, program * (1 + run / 10)))
    return out


def test_summary_takes_the_median_and_range_of_the_runs() -> None:
    times = [StepTime("program", "create", 3, r, s) for r, s in enumerate([5.0, 1.0, 3.0])]
    s = report.summarize(times)[(3, "create", "program")]
    assert (s.median, s.low, s.high, s.runs) == (3.0, 1.0, 5.0, 3)


def test_ratio_is_program_over_opentofu_and_defaults_pair_plan_with_preview() -> None:
    times = _times(tofu=2.0, program=3.0)
    times.append(StepTime("program", "noop", 25, 0, 1.0))
    times.append(StepTime("opentofu", "noop-refresh", 25, 0, 4.0))
    summary = report.summarize(times)
    assert report.ratio(summary, 100, "create") == pytest.approx(1.5)
    assert report.defaults_ratio(summary, 25) == pytest.approx(0.25)


def test_side_by_side_table_has_a_row_per_step_and_the_defaults() -> None:
    table = report.side_by_side_table(report.summarize(_times(2.0, 1.0)))
    rows = [line for line in table.splitlines() if line.startswith("| 100 ")]
    assert len(rows) == len(STEPS) + 1
    assert all(row.endswith("| 0.50x |") for row in rows)
    assert "2.20 s (2.00-2.40)" in table


def test_goal_says_by_how_much_it_was_missed() -> None:
    assert report.Goal("g", 0.9, 1.0).line().endswith("| met |")
    missed = report.Goal("g", 1.35, 1.1)
    assert not missed.met and missed.line().endswith("| missed by 0.25x |")


def _data(tofu: float, program: float) -> dict[str, Any]:
    mocks_row = {
        "program": {"eval_s": 12.0, "ms_per_node": 12.0, "nodes": 1000},
        "floor": {"eval_s": 10.0, "ms_per_node": 10.0, "nodes": 1000},
        "ratio": 1.2,
    }
    return {
        "side_by_side": [asdict(t) for t in _times(tofu, program)],
        "mocks": {"summary": {"workers": {"by_workers": {"1000": mocks_row}, "program_growth": 1.05}}},
    }


def test_goals_come_from_the_same_run() -> None:
    goals = {g.name: g for g in page.goals(_data(tofu=2.0, program=1.0))}
    like = goals["no-op preview at 100 VMs, like for like (`--refresh`), / `tofu plan`"]
    assert like.measured == pytest.approx(0.5) and like.met
    assert goals["evaluation at 1000 workers (workers) / floor"].measured == pytest.approx(1.2)
    assert not goals["evaluation at 1000 workers (workers) / floor"].met
    assert goals["growth of ms per node (workers), largest count / reference"].met
    assert (
        goals["ISO builds and pushes by an unchanged `up` (3 checked)"]
        .line()
        .endswith("| 0.00 | at most 0 | met |")
    )


def test_page_renders_every_section_and_writes_the_plots(tmp_path: Path) -> None:
    data = _data(tofu=2.0, program=3.0)
    data["mocks"] = None  # not measured: the page says so instead of failing
    text = page.render(json.loads(json.dumps(data)), tmp_path)
    assert "| 100 | create N VMs | 2.20 s (2.00-2.40) | 3.30 s (3.00-3.60) | 1.50x |" in text
    assert "missed by 0.50x" in text
    for step in STEPS:
        png = tmp_path / f"bench-{step}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in text
    assert "{" not in text.split("## 1.")[0], "an unfilled placeholder"
