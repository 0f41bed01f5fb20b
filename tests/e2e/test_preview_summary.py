"""The PR summary command on real previews of the simulator, and the fixtures' reproducibility.

The capture scenarios (``tests.e2e.preview_capture``) run again on a fresh stack; each
preview is piped into ``python -m operations.preview_summary`` exactly as the CI
pipelines call it, and its summary must equal the summary of the committed fixture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import vcsim as vcsim_script

from tests.e2e import preview_capture
from tests.e2e.conftest import PROJECT_DIR, SECRET_TOKEN, Stack, create_stack


def summarize(preview: str | Path, stack: str = "e2e") -> subprocess.CompletedProcess[str]:
    """The command as CI runs it: a file argument, or stdin for a string."""
    args = [str(preview)] if isinstance(preview, Path) else ["-"]
    return subprocess.run(
        [sys.executable, "-m", "operations.preview_summary", *args, "--stack", stack],
        cwd=PROJECT_DIR,
        input=None if isinstance(preview, Path) else preview,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def summary_stack(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    config = preview_capture.stack_config(simulator)
    return create_stack(
        simulator, tmp_path_factory.mktemp("project"), config, {"swarmJoinToken": SECRET_TOKEN}
    )


def test_real_previews_summarize_as_the_committed_fixtures(summary_stack: Stack, tmp_path: Path) -> None:
    captured: dict[str, Path] = {}

    def write(name: str, document: str) -> None:
        captured[name] = tmp_path / name
        captured[name].write_text(document)

    try:
        preview_capture.capture(summary_stack, write)
    finally:
        summary_stack.pulumi("destroy", "--yes", "--skip-preview", check=False)
    fixtures = preview_capture.FIXTURE_DIR
    assert set(captured) <= {p.name for p in fixtures.iterdir()}
    for name, path in captured.items():
        fresh, committed = summarize(path), summarize(fixtures / name)
        assert fresh.returncode == 0, fresh.stderr
        assert fresh.stdout == committed.stdout, (
            f"{name}: regenerate with python -m tests.e2e.preview_capture"
        )

    scale_in = summarize(captured["scale-in.json"].read_text()).stdout  # piped, as `pulumi ... | cmd -`
    lines = scale_in.splitlines()
    assert lines[0] == "### Pulumi preview: `e2e`"
    first = next(i for i, line in enumerate(lines) if line.startswith("- "))
    assert lines[first].startswith("- **delete** `workers-pv-w-1` (VirtualMachine)")
    assert lines[first + 1].startswith("- **delete** `workers-pv-w-2` (VirtualMachine)")
    assert first < lines.index("#### Changes")

    rollout = summarize(captured["image-change.json"]).stdout
    assert "1. `pv-w-0`, `pv-w-1`\n2. `pv-w-2`\n" in rollout
    assert "Data-loss risks" not in rollout

    refused = summarize(captured["scale-in-refused.json"])
    assert refused.returncode == 0 and "allowDataLoss is false" in refused.stdout

    for proc in (scale_in, rollout, refused.stdout):
        assert SECRET_TOKEN not in proc and summary_stack.sim.password not in proc


def test_the_output_of_a_failing_pulumi_is_refused(summary_stack: Stack) -> None:
    # A stack that does not exist: pulumi prints its error on stderr and no document.
    proc = subprocess.run(
        ["pulumi", "preview", "--json", "--stack", "no-such-stack", "--non-interactive"],
        cwd=summary_stack.dir,
        env=summary_stack.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    result = summarize(proc.stdout)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("preview_summary: stdin: ")
