"""The benchmark: side by side with OpenTofu, overhead under mocks, a traced no-op preview.

Run through ``bash bench/run.sh`` (it makes the venv and builds the toolchain,
OpenTofu and the Terraform provider included). Writes ``docs/benchmarks.md``, its
PNG plots and the raw measures ``docs/benchmarks.json``, which also lets an
interrupted run go on where it stopped (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import breakdown as trace_breakdown
from bench import page
from bench.side_by_side import PROJECT_DIR, Program, Site, one_run

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import vcsim as vcsim_script

DOCS = PROJECT_DIR / "docs"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        mem_kb = int(meminfo.read_text().split("MemTotal:", 1)[1].split()[0])

    def version(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, env=_tofu_env())
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "opentofu": version([str(_tofu()), "version"]),
        "pulumi": version(["pulumi", "version"]),
        "vcsim": version(["vcsim", "version"]),
        "pulumi-resource-vsphere": os.environ.get("VSPHERE_VERSION", "?"),
        "terraform-provider-vsphere": os.environ.get("TFVSPHERE_VERSION", "?"),
    }


def _tofu() -> Path:
    return Path(os.environ["LKS_OPENTOFU_DIR"]) / "bin" / "tofu"


def _mirror() -> Path:
    return Path(os.environ["LKS_TFVSPHERE_DIR"]) / "mirror"


def _tofu_env() -> dict[str, str]:
    return {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"}


def check_tools() -> None:
    """Fail with the command that builds whatever is missing."""
    for env in ("LKS_OPENTOFU_DIR", "LKS_TFVSPHERE_DIR"):
        if env not in os.environ:
            raise SystemExit("source tools/env.sh first (bench/run.sh does)")
    if not _tofu().exists() or not _mirror().exists():
        raise SystemExit(
            "OpenTofu or the Terraform provider is not built: bash tools/build.sh tofu tf-vsphere"
        )
    for exe in ("pulumi", "vcsim"):
        if shutil.which(exe) is None:
            raise SystemExit(f"{exe} is not on PATH: bash tools/build.sh && source tools/env.sh")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def side_by_side(data: dict[str, Any], sizes: list[int], runs: int, work: Path, raw: Path) -> None:
    """Every (size, run) not measured yet; saved after each run."""
    done = {(t["nodes"], t["run"]) for t in data.setdefault("side_by_side", [])}
    for nodes in sizes:
        for run in range(runs):
            if (nodes, run) in done:
                continue
            print(f"side by side: N={nodes}, run {run + 1}/{runs}", flush=True)
            start = time.monotonic()
            times = one_run(nodes, run, work, _tofu(), _mirror(), log=lambda s: print(s, flush=True))
            data["side_by_side"] += [asdict(t) for t in times]
            _save(raw, data)
            print(f"  ({time.monotonic() - start:.0f} s)", flush=True)


def traced_previews(nodes: int, work: Path) -> dict[str, Any]:
    """The program's no-op previews at ``nodes``, traced by the engine (a run of their own)."""
    state = work / f"trace-n{nodes}"
    sim = vcsim_script.start(state / "vcsim")
    try:
        program = Program(state / "program", Site(sim), nodes)
        program.setup()
        program.step("create")
        out = {}
        for name, args in (("preview", ["preview"]), ("preview --refresh", ["preview", "--refresh"])):
            trace = state / f"{name.replace(' --', '-')}.jsonl"
            seconds, _ = program._pulumi(
                *args, "--expect-no-changes", *trace_breakdown.tracing_args(trace), what=name
            )
            b = trace_breakdown.breakdown(trace)
            out[name] = {"seconds": seconds, **b.as_dict()}
        program.step("destroy")
        return out
    finally:
        vcsim_script.stop(state / "vcsim")


def mocks_overhead(workers: list[int], runs: int, work: Path) -> dict[str, Any]:
    """``bench.mocks.overhead`` in its own process (it forks one per measure)."""
    out = work / "mocks.json"
    argv = [sys.executable, "-m", "bench.mocks.overhead", "--workers", *map(str, workers)]
    subprocess.run([*argv, "--runs", str(runs), "--out", str(out)], cwd=PROJECT_DIR, check=True)
    return dict(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    """Measure what is not measured yet, then write the page."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 25, 100], help="VMs side by side")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (the report takes medians)")
    parser.add_argument("--mock-workers", type=int, nargs="+", default=[10, 100, 500, 1000])
    parser.add_argument("--work", type=Path, default=PROJECT_DIR / ".bench")
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--resume", action="store_true", help="keep the measures in <out>/benchmarks.json")
    parser.add_argument("--only-report", action="store_true", help="write the report from benchmarks.json")
    args = parser.parse_args(argv)
    if args.runs < 3:
        print("note: fewer than 3 runs per size; the report says so", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    raw = args.out / "benchmarks.json"
    data = _load(raw) if (args.resume or args.only_report) else {}
    if not args.only_report:
        check_tools()
        if args.work.exists() and not args.resume:
            shutil.rmtree(args.work)
        args.work.mkdir(parents=True, exist_ok=True)
        data.setdefault("started", datetime.now(UTC).isoformat(timespec="seconds"))
        data["machine"] = machine()
        data["sizes"], data["runs"] = args.sizes, args.runs
        side_by_side(data, args.sizes, args.runs, args.work, raw)
        if "breakdown" not in data:
            print(f"traced no-op previews at N={max(args.sizes)}", flush=True)
            data["breakdown"] = {"nodes": max(args.sizes), **traced_previews(max(args.sizes), args.work)}
            _save(raw, data)
        if "mocks" not in data:
            print(f"program overhead under mocks: {args.mock_workers} workers", flush=True)
            data["mocks"] = mocks_overhead(args.mock_workers, args.runs, args.work)
            _save(raw, data)
        data["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        _save(raw, data)
    (args.out / "benchmarks.md").write_text(page.render(data, args.out))
    print(f"wrote {args.out / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
