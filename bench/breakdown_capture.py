"""Capture engine traces of a no-op preview at N workers on a fresh simulator.

    flock /tmp/lks-e2e.lock python -m bench.breakdown_capture --workers 25 --out /tmp/traces

Creates the stack (workers only, prebuilt placeholder ISO) with ``pulumi up``, then
runs ``preview`` and ``preview --refresh`` with the engine's OTLP file traces, with
and without ``PULUMI_PARALLEL_DIFF``, prints each breakdown, destroys and stops.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import tempfile
import time
from pathlib import Path

from bench.breakdown import breakdown, format_table, tracing_args
from tests.e2e.conftest import SECRET_TOKEN, STACK, base_config, create_stack

# scripts/vcsim.py, which the e2e conftest has put on sys.path.
vcsim_script = importlib.import_module("vcsim")

# (label, extra preview args, extra env)
VARIANTS: tuple[tuple[str, tuple[str, ...], dict[str, str]], ...] = (
    ("preview", (), {}),
    ("preview-refresh", ("--refresh",), {}),
    ("preview-pdiff", (), {"PULUMI_PARALLEL_DIFF": "true"}),
    ("preview-refresh-pdiff", ("--refresh",), {"PULUMI_PARALLEL_DIFF": "true"}),
)


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one pulumi run (fails on a non-zero exit)."""
    started = time.monotonic()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.monotonic() - started


def main() -> int:
    """Run the capture; traces land in ``--out`` as ``<label>-<run>.jsonl``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=25)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lks-breakdown-") as tmp:
        root = Path(tmp)
        sim = vcsim_script.start(root / "vcsim")
        try:
            config = {
                **base_config(sim),
                "linuxkit-swarm:folder": "Linux/linuxkit-bench",
                "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
                "linuxkit-swarm:workers": {
                    "count": args.workers,
                    "namePrefix": "bench-w-",
                    "waitForGuestNetTimeout": 0,
                    "waitForGuestIpTimeout": 0,
                },
            }
            (root / "project").mkdir()
            st = create_stack(sim, root / "project", config, {"swarmJoinToken": SECRET_TOKEN})
            st.up()
            for run in range(args.runs):
                for label, extra, env in VARIANTS:
                    trace = args.out / f"{label}-{run}.jsonl"
                    argv = ["pulumi", "preview", *extra, "--stack", STACK, "--non-interactive"]
                    # The same preview untraced first: what tracing itself costs.
                    plain = _timed(argv, st.dir, {**st.env, **env})
                    wall = _timed([*argv, *tracing_args(trace)], st.dir, {**st.env, **env})
                    print(f"\n== {label} run {run}: {wall:.2f} s wall traced, {plain:.2f} s untraced")
                    print(format_table(breakdown(trace, wall)))
            st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        finally:
            vcsim_script.stop(root / "vcsim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
