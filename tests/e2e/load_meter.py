"""Wall time, CPU and peak memory of one pulumi command and its process tree, for the load test.

A background thread samples ``/proc`` while the command runs: the resident set
(RSS) of every process in the tree rooted at the ``pulumi`` process, summed per
part (CLI, language host, program, each provider, the steps' commands) and in
total, keeping the maximum of each sum over time; the simulator's RSS beside it.
It also tails the command's ``--event-log`` and stamps each event on arrival
(the log's own timestamps are whole seconds), so a step's time can be split
into phases (program start, registrations, provider work).

The parsing and the arithmetic are plain functions, unit-tested in
``tests/unit/test_load_meter.py``; the sampling is the I/O around them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TICKS = os.sysconf("SC_CLK_TCK")
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
# The parts of a pulumi run, in table order.
PARTS = ("pulumi CLI", "language host", "program", "vsphere provider", "command provider", "step commands")


@dataclass(frozen=True)
class Proc:
    """One process as /proc shows it."""

    pid: int
    ppid: int
    rss_kb: int
    cpu_ticks: int  # utime + stime


def parse_stat(text: str) -> Proc:
    """A ``/proc/<pid>/stat`` line; the command name may hold spaces and parentheses."""
    pid = int(text.split(" ", 1)[0])
    rest = text.rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, rss 24.
    return Proc(
        pid=pid, ppid=int(rest[1]), rss_kb=int(rest[21]) * PAGE_KB, cpu_ticks=int(rest[11]) + int(rest[12])
    )


def descendants(procs: Mapping[int, Proc], root: int) -> list[int]:
    """``root`` and every process below it (parent links), root first."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = [], [root] if root in procs else []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def classify(argv: Sequence[str], parent_part: str | None) -> str:
    """Which part of a pulumi run a process is, from its argv and its parent's part.

    ``parent_part`` is None for the root (the CLI). Anything a provider starts
    (``operations.isotool``, ``linuxkit push``) counts as the steps' commands.
    """
    exe = os.path.basename(argv[0]) if argv else ""
    if parent_part is None:
        return "pulumi CLI"
    if exe == "pulumi-language-python":
        return "language host"
    if exe.startswith("pulumi-resource-"):
        return exe.removeprefix("pulumi-resource-") + " provider"
    if parent_part in ("language host", "program"):
        return "program"
    if parent_part.endswith("provider") or parent_part == "step commands":
        return "step commands"
    return parent_part


def tree_parts(procs: Mapping[int, Proc], root: int, argvs: Mapping[int, Sequence[str]]) -> dict[int, str]:
    """pid -> part (see :func:`classify`) of every process in the tree below ``root``."""
    parts: dict[int, str] = {}
    for pid in descendants(procs, root):  # parents come before their children
        parent = parts.get(procs[pid].ppid) if pid != root else None
        parts[pid] = classify(argvs.get(pid, ()), parent)
    return parts


def tree_rss(procs: Mapping[int, Proc], root: int, argvs: Mapping[int, Sequence[str]]) -> dict[str, int]:
    """RSS in kB per part of the tree below ``root``."""
    totals: dict[str, int] = {}
    for pid, part in tree_parts(procs, root, argvs).items():
        totals[part] = totals.get(part, 0) + procs[pid].rss_kb
    return totals


def cpu_by_part(ticks: Mapping[int, int], parts: Mapping[int, str]) -> dict[str, float]:
    """CPU seconds per part from each process's last seen CPU ticks."""
    totals: dict[str, float] = {}
    for pid, part in parts.items():
        totals[part] = totals.get(part, 0.0) + ticks.get(pid, 0) / TICKS
    return totals


@dataclass(frozen=True)
class Event:
    """An engine event and when it reached the log, in seconds since the command started."""

    at: float
    type: str
    op: str = ""
    urn: str = ""
    resource_type: str = ""


def parse_event(line: str, at: float) -> Event | None:
    """One ``--event-log`` line; None for anything that is not a complete JSON event."""
    try:
        doc = json.loads(line)
    except json.JSONDecodeError:
        return None
    kind = next((k for k in doc if k.endswith("Event")), "")
    if not kind:
        return None
    meta = doc[kind].get("metadata", {}) if isinstance(doc[kind], dict) else {}
    return Event(at, kind, meta.get("op", ""), meta.get("urn", ""), meta.get("type", ""))


def phases(events: Sequence[Event], end: float) -> dict[str, float]:
    """Where a command's time went, from its events (seconds since start).

    ``program start``: until the program registered its first VM (interpreter,
    settings, the inventory query, the image and folders); ``VM steps starting``:
    first to last VM step started (the engine checks and diffs each registration
    in turn; in ``up`` the providers work meanwhile); ``last VM steps finishing``:
    from there until the last VM step is done; ``tail``: to the exit.
    A refresh's reads come before the program runs and show as ``refresh reads``.
    """
    vms = [e for e in events if e.resource_type == VM_TYPE and e.op != "refresh"]
    vm_pre = [e.at for e in vms if e.type == "resourcePreEvent"]
    vm_out = [e.at for e in vms if e.type in ("resOutputsEvent", "resOpFailedEvent")]
    refreshes = [e.at for e in events if e.op == "refresh" and e.type == "resOutputsEvent"]
    if not vm_pre:
        return {"total": round(end, 1)}
    out: dict[str, float] = {}
    start = 0.0
    if refreshes and max(refreshes) < min(vm_pre):
        out["refresh reads"] = max(refreshes)
        start = max(refreshes)
    out["program start"] = min(vm_pre) - start
    out["VM steps starting"] = max(vm_pre) - min(vm_pre)
    last = max(vm_out) if vm_out else max(vm_pre)
    out["last VM steps finishing"] = max(last - max(vm_pre), 0.0)
    out["tail"] = end - last
    return {k: round(v, 1) for k, v in out.items()}


def max_in_flight(events: Sequence[Event], op: str, resource_type: str = VM_TYPE) -> int:
    """Most steps of ``op`` on ``resource_type`` running at once (started, not yet done)."""
    marks = []
    for e in events:
        if e.resource_type != resource_type or e.op != op:
            continue
        if e.type == "resourcePreEvent":
            marks.append((e.at, 1, e.urn))
        elif e.type in ("resOutputsEvent", "resOpFailedEvent"):
            marks.append((e.at, -1, e.urn))
    # At equal stamps a finish counts before a start: sampling cannot order them.
    marks.sort(key=lambda m: (m[0], m[1]))
    running = peak = 0
    for _, delta, _ in marks:
        running += delta
        peak = max(peak, running)
    return peak


@dataclass
class Measure:
    """One measured pulumi command."""

    step: str
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the whole pulumi tree (the CLI reaps its plugins)
    peak_total_kb: int = 0  # max over time of the tree's summed RSS
    peak_kb: dict[str, int] = field(default_factory=dict)  # per part, each its own max
    sim_peak_kb: int = 0
    sim_cpu_s: float = 0.0
    cpu_s_by_part: dict[str, float] = field(default_factory=dict)  # as last sampled: a lower bound
    state_kb: int = 0  # the stack's checkpoint file after the command
    events: list[Event] = field(default_factory=list)
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""


def format_table(rows: Sequence[Measure]) -> str:
    """A Markdown table of the measures: time, CPU, peak RSS per part (MB), simulator, state."""
    head = ["step", "wall s", "CPU s", "peak RSS tree MB", *[f"{p} MB" for p in PARTS]]
    head += ["vcsim RSS MB", "vcsim CPU s", "state KB", "CPU s by part", "phases s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.step, f"{r.wall_s:.1f}", f"{r.cpu_s:.1f}", f"{r.peak_total_kb / 1024:.0f}"]
        cells += [f"{r.peak_kb[p] / 1024:.0f}" if p in r.peak_kb else "-" for p in PARTS]
        split = phases(r.events, r.wall_s)
        cells += [f"{r.sim_peak_kb / 1024:.0f}", f"{r.sim_cpu_s:.1f}", str(r.state_kb)]
        cells.append(", ".join(f"{p} {r.cpu_s_by_part[p]:.0f}" for p in PARTS if p in r.cpu_s_by_part))
        cells.append(", ".join(f"{k} {v}" for k, v in split.items()))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- I/O: sampling /proc while the command runs -------------------------------------------


def _read_procs() -> dict[int, Proc]:
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                procs[int(entry.name)] = parse_stat(f.read())
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return procs


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read()).cpu_ticks
    except OSError:
        return 0


class _Sampler(threading.Thread):
    """Samples the tree below ``root`` and the simulator until stopped."""

    def __init__(self, root: int, sim_pid: int, event_log: Path, started: float, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.sim_pid, self.event_log = root, sim_pid, event_log
        self.started, self.interval = started, interval
        self.stop = threading.Event()
        self.peak_total = self.sim_peak = 0
        self.peak: dict[str, int] = {}
        self.events: list[Event] = []
        self.parts: dict[int, str] = {}
        self.ticks: dict[int, int] = {}
        self._argvs: dict[int, list[str]] = {}
        self._log: Any = None
        self._partial = ""

    def run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(self.interval):
                self.sample()
                return

    def sample(self) -> None:
        now = time.monotonic() - self.started
        self._tail(now)
        procs = _read_procs()
        tree = descendants(procs, self.root)
        for pid in tree:
            if pid not in self._argvs or not self._argvs[pid]:
                self._argvs[pid] = _argv(pid)  # argv is fixed after exec; pids are not reused this fast
        parts = tree_parts(procs, self.root, self._argvs)
        totals: dict[str, int] = {}
        for pid, part in parts.items():
            totals[part] = totals.get(part, 0) + procs[pid].rss_kb
            self.parts[pid], self.ticks[pid] = part, procs[pid].cpu_ticks
        self.peak_total = max(self.peak_total, sum(totals.values()))
        for part, kb in totals.items():
            self.peak[part] = max(self.peak.get(part, 0), kb)
        if self.sim_pid in procs:
            self.sim_peak = max(self.sim_peak, procs[self.sim_pid].rss_kb)

    def _tail(self, now: float) -> None:
        if self._log is None:
            try:
                self._log = self.event_log.open()
            except FileNotFoundError:
                return
        chunk = self._partial + self._log.read()
        *lines, self._partial = chunk.split("\n")
        for line in lines:
            event = parse_event(line, now)
            if event is not None:
                self.events.append(event)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def run_measured(
    step: str,
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    sim_pid: int,
    event_log: Path,
    state_file: Path,
    interval: float = 0.2,
) -> Measure:
    """Run ``argv`` (a pulumi command writing ``event_log``) and measure it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sim_before = _cpu_ticks(sim_pid)
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = _Sampler(proc.pid, sim_pid, event_log, started, interval)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.monotonic() - started
    sampler.stop.set()
    sampler.join()
    sampler.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(
        step=step,
        wall_s=wall,
        cpu_s=cpu,
        peak_total_kb=sampler.peak_total,
        peak_kb=dict(sampler.peak),
        sim_peak_kb=sampler.sim_peak,
        sim_cpu_s=(_cpu_ticks(sim_pid) - sim_before) / TICKS,
        cpu_s_by_part=cpu_by_part(sampler.ticks, sampler.parts),
        state_kb=state_file.stat().st_size // 1024 if state_file.exists() else 0,
        events=sampler.events,
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
    )
