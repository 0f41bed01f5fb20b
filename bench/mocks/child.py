"""One measured evaluation in a fresh interpreter: the program, or the floor replaying its recording.

``python -m bench.mocks.child program|floor|floor-typed VARIANT WORKERS RECORDING`` prints
one JSON line. The program run writes RECORDING, the floor runs read it (and fail
when they register anything else). ``floor-typed`` also gives each resource every
property its typed SDK class declares, unset (``replay.replay``): the part of the
SDK's cost that comes with the typed classes, not with the program.

Timed (``eval_s``): setting up the mocks and the config, then, for the program, the
whole ``__main__.py`` (settings, the image plan, every component, exports) until
the last RegisterResource answered and the exports resolved; for the floor, the
replay until its last RegisterResource answered. Not timed: interpreter start, the
imports (the program's own are timed apart: ``program_imports_s``), writing the
recording. Both record every request the same way (``tests/unit/harness.py``).
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi

from bench.mocks import replay, scenario
from tests.unit import harness

MODES = ("program", "floor", "floor-typed")


class _Recorder(harness.RecordingMonitor):
    """The harness's monitor, also keeping the engine-visible requests for the replay."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.requests: list[tuple[Any, str]] = []
        self.invoke_requests: list[Any] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != replay.STACK_TYPE:
            self.requests.append((request, response.urn))
        return response

    def Invoke(self, request: Any) -> Any:
        self.invoke_requests.append(request)
        return super().Invoke(request)


def _rss_kib() -> int:
    """Resident set size now (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _import_program_modules() -> float:
    """Import what ``__main__.py`` imports (timed apart from the evaluation)."""
    started = time.perf_counter()
    import pulumi_command  # noqa: F401
    import pulumi_vsphere  # noqa: F401

    import components  # noqa: F401
    import operations.folder_guard  # noqa: F401

    return time.perf_counter() - started


def measure(mode: str, variant: str, workers: int, recording: Path) -> dict[str, Any]:
    """Run one evaluation and say how long it took and how much memory the process peaked at."""
    from linuxkit_swarm import ssh_keys

    program_imports = _import_program_modules() if mode == "program" else 0.0
    typed = _typed_properties() if mode == "floor-typed" else None
    key = ssh_keys.new_host_key()[0] if variant == "swarm" else ""
    with tempfile.TemporaryDirectory() as tmp:
        iso = Path(tmp) / "bench.iso"
        iso.write_bytes(b"")
        sc = scenario.scenario(variant, workers, iso, key)
        monitor = _Recorder(harness.SiteMocks())
        rss_before = _rss_kib()
        started = time.perf_counter()
        if mode == "program":
            _program(sc, monitor)
        else:
            _floor(sc, monitor, recording, typed)
        eval_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records = [replay.request_record(r, urn) for r, urn in monitor.requests]
    invokes = [replay.invoke_record(r) for r in monitor.invoke_requests]
    if mode == "program":
        replay.save(recording, records, invokes)
    else:
        expected, expected_invokes = replay.load(recording)
        problems = replay.differences(expected, records)
        if sorted(i["tok"] for i in expected_invokes) != sorted(i["tok"] for i in invokes):
            problems.append("the invokes differ")
        if problems:
            raise SystemExit("the floor registered something else:\n" + "\n".join(problems))
    return {
        "mode": mode,
        "variant": variant,
        "workers": workers,
        "nodes": sc.nodes,
        "registrations": len(records),
        "dependency_urns": sum(len(r["dependencies"]) for r in records),
        "invokes": len(invokes),
        "eval_s": eval_s,
        "program_imports_s": program_imports,
        "rss_before_eval_kib": rss_before,
        "peak_rss_kib": peak,
    }


def _program(sc: scenario.Scenario, monitor: _Recorder) -> None:
    with mock.patch.object(harness, "RecordingMonitor", lambda _mocks: monitor):
        harness.run_program(sc.project, sc.vsphere, sc.secret_keys, deployed=sc.deployed)


def _typed_properties() -> dict[str, list[str]]:
    """Property names of the typed classes the program uses, by resource type."""
    import pulumi_vsphere as vsphere
    from pulumi_command import local, remote

    classes = {
        harness.VM_TYPE: vsphere.VirtualMachine,
        harness.FOLDER_TYPE: vsphere.Folder,
        harness.COMMAND_TYPE: local.Command,
        harness.REMOTE_COMMAND_TYPE: remote.Command,
    }
    return {t: replay.output_names(cls) for t, cls in classes.items()}


def _floor(
    sc: scenario.Scenario, monitor: _Recorder, recording: Path, typed: dict[str, list[str]] | None
) -> None:
    registrations, invokes = replay.load(recording)
    pulumi.runtime.set_mocks(harness.SiteMocks(), project="linuxkit-swarm", stack="dev", monitor=monitor)
    pulumi.runtime.set_all_config(harness.config_map(sc.project, sc.vsphere), list(sc.secret_keys))
    callbacks = harness.RecordingCallbacks()

    async def get_callbacks() -> harness.RecordingCallbacks:
        return callbacks

    def hook(_args: pulumi.ResourceHookArgs) -> None:
        """The program's hooks never run under mocks; only their registration counts."""

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        replay.replay(registrations, invokes, hook, typed)

    with mock.patch("pulumi.runtime.resource._get_callbacks", get_callbacks):
        program()


def main(argv: list[str]) -> None:
    """Entry point: ``MODE VARIANT WORKERS RECORDING``."""
    mode, variant, workers, recording = argv
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}")
    print(json.dumps(measure(mode, variant, int(workers), Path(recording))))


if __name__ == "__main__":
    main(sys.argv[1:])
