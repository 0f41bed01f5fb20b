"""The load test's measuring helper: /proc parsing, process-tree parts, event phases, the table."""

from __future__ import annotations

import json

import pytest

from tests.e2e.load_meter import (
    PAGE_KB,
    TICKS,
    VM_TYPE,
    Event,
    Measure,
    Proc,
    classify,
    cpu_by_part,
    descendants,
    format_table,
    max_in_flight,
    parse_event,
    parse_stat,
    phases,
    tree_rss,
)


def _stat(pid: int, comm: str, ppid: int, utime: int, stime: int, rss_pages: int) -> str:
    # Fields 3.. of /proc/<pid>/stat: state, ppid, then up to rss (field 24).
    fields = ["S", str(ppid), *["0"] * 9, str(utime), str(stime), *["0"] * 8, str(rss_pages), "0"]
    return f"{pid} ({comm}) " + " ".join(fields) + "\n"


def test_stat_line_with_spaces_and_parentheses_in_the_name() -> None:
    proc = parse_stat(_stat(42, "a (weird) name", 7, 30, 12, 100))
    assert proc == Proc(pid=42, ppid=7, rss_kb=100 * PAGE_KB, cpu_ticks=42)


def test_descendants_follow_parent_links_and_skip_others() -> None:
    procs = {p.pid: p for p in [Proc(1, 0, 1, 0), Proc(10, 1, 1, 0), Proc(11, 10, 1, 0), Proc(20, 1, 1, 0)]}
    assert sorted(descendants(procs, 10)) == [10, 11]
    assert descendants(procs, 99) == []


@pytest.mark.parametrize(
    ("argv", "parent", "part"),
    [
        (["/opt/bin/pulumi", "up"], None, "pulumi CLI"),
        (["/opt/bin/pulumi-language-python", "-root"], "pulumi CLI", "language host"),
        (["/w/.venv/bin/python", "-u", "exec"], "language host", "program"),
        (["/home/p/plugins/pulumi-resource-vsphere"], "pulumi CLI", "vsphere provider"),
        (["pulumi-resource-command"], "pulumi CLI", "command provider"),
        (["/bin/sh", "-c", "python -m operations.isotool"], "command provider", "step commands"),
        (["python", "-m", "operations.isotool"], "step commands", "step commands"),
        ([], "program", "program"),  # an ended process keeps its parent's part
    ],
)
def test_each_process_is_put_in_its_part(argv: list[str], parent: str | None, part: str) -> None:
    assert classify(argv, parent) == part


def test_tree_rss_sums_each_part_below_the_root_only() -> None:
    procs = {
        p.pid: p
        for p in [
            Proc(1, 0, 999, 0),  # not in the tree
            Proc(100, 1, 50, 0),  # pulumi
            Proc(101, 100, 20, 0),  # language host
            Proc(102, 101, 70, 0),  # program
            Proc(103, 100, 200, 0),  # vsphere provider
            Proc(104, 100, 30, 0),  # command provider
            Proc(105, 104, 5, 0),  # sh
            Proc(106, 105, 40, 0),  # isotool
        ]
    }
    argvs = {
        100: ["pulumi"],
        101: ["pulumi-language-python"],
        102: ["python"],
        103: ["pulumi-resource-vsphere"],
        104: ["pulumi-resource-command"],
        105: ["/bin/sh"],
        106: ["python"],
    }
    assert tree_rss(procs, 100, argvs) == {
        "pulumi CLI": 50,
        "language host": 20,
        "program": 70,
        "vsphere provider": 200,
        "command provider": 30,
        "step commands": 45,
    }


def test_event_lines_become_events_and_junk_is_dropped() -> None:
    line = json.dumps(
        {
            "sequence": 3,
            "timestamp": 1700000000,
            "resourcePreEvent": {"metadata": {"op": "update", "urn": "urn:x::w-0", "type": VM_TYPE}},
        }
    )
    assert parse_event(line, 1.5) == Event(1.5, "resourcePreEvent", "update", "urn:x::w-0", VM_TYPE)
    assert parse_event('{"sequence": 0, "timestamp": 1, "prel', 0.0) is None  # a partial line
    assert parse_event('{"sequence": 0}', 0.0) is None
    assert parse_event(json.dumps({"summaryEvent": {"durationSeconds": 3}}), 2.0) == Event(
        2.0, "summaryEvent"
    )


def _vm(at: float, kind: str, op: str, name: str) -> Event:
    return Event(at, kind, op, f"urn:x::{name}", VM_TYPE)


def test_phases_split_a_preview_into_program_start_registrations_and_provider_work() -> None:
    events = [
        Event(0.4, "preludeEvent"),
        _vm(3.0, "resourcePreEvent", "same", "a"),
        _vm(5.0, "resourcePreEvent", "same", "b"),
        _vm(6.0, "resOutputsEvent", "same", "a"),
        _vm(8.0, "resOutputsEvent", "same", "b"),
    ]
    assert phases(events, 9.0) == {
        "program start": 3.0,
        "VM steps starting": 2.0,
        "last VM steps finishing": 3.0,
        "tail": 1.0,
    }


def test_phases_put_refresh_reads_before_the_program() -> None:
    events = [
        _vm(1.0, "resourcePreEvent", "refresh", "a"),
        _vm(4.0, "resOutputsEvent", "refresh", "a"),
        _vm(6.0, "resourcePreEvent", "same", "a"),
        _vm(6.5, "resOutputsEvent", "same", "a"),
    ]
    split = phases(events, 7.0)
    assert split["refresh reads"] == 4.0 and split["program start"] == 2.0


def test_phases_without_vm_steps_are_the_total_only() -> None:
    assert phases([Event(1.0, "summaryEvent")], 3.0) == {"total": 3.0}


def test_max_in_flight_counts_overlapping_steps_of_one_op() -> None:
    events = [
        _vm(0.0, "resourcePreEvent", "update", "a"),
        _vm(0.0, "resourcePreEvent", "update", "b"),
        _vm(1.0, "resOutputsEvent", "update", "a"),
        _vm(1.0, "resourcePreEvent", "update", "c"),  # at the same stamp as a's finish
        _vm(2.0, "resOutputsEvent", "update", "b"),
        _vm(2.0, "resOutputsEvent", "update", "c"),
        _vm(0.5, "resourcePreEvent", "create", "d"),  # another op: not counted
    ]
    assert max_in_flight(events, "update") == 2
    assert max_in_flight(events, "delete") == 0


def test_table_has_one_row_per_step_and_a_dash_for_absent_parts() -> None:
    m = Measure(
        step="up",
        wall_s=12.34,
        cpu_s=5.0,
        peak_total_kb=300 * 1024,
        peak_kb={"pulumi CLI": 100 * 1024, "vsphere provider": 150 * 1024},
        sim_peak_kb=80 * 1024,
        sim_cpu_s=2.5,
        state_kb=1234,
        cpu_s_by_part={"vsphere provider": 1.2, "program": 3.5},
    )
    lines = format_table([m]).splitlines()
    assert len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:5] == ["up", "12.3", "5.0", "300", "100"]
    assert cells[5] == "-" and cells[7] == "150"
    assert cells[-5:] == ["80", "2.5", "1234", "program 4, vsphere provider 1", "total 12.3"]


def test_cpu_by_part_sums_the_last_ticks_of_each_process() -> None:
    parts = {1: "pulumi CLI", 2: "program", 3: "program"}
    ticks = {1: 100, 2: TICKS, 3: 3 * TICKS}
    assert cpu_by_part(ticks, parts) == {"pulumi CLI": 100 / TICKS, "program": 4.0}
