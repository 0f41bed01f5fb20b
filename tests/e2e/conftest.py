"""End-to-end fixtures: the real Pulumi engine, the plugins in PULUMI_HOME and vcsim.

Nothing here is skipped: a missing tool fails the test with the command that
builds it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVim.connect import Disconnect
from pyVmomi import vim

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import vcsim as vcsim_script  # noqa: E402

BUILD_HINT = "bash tools/build.sh && source tools/env.sh"
TOOLS = ("pulumi", "pulumi-language-python", "vcsim", "govc", "linuxkit")
PROJECT_FILES = (
    "__main__.py",
    "Pulumi.yaml",
    "requirements.txt",
    "components",
    "linuxkit_swarm",
    "operations",
    "linuxkit",
)
STACK = "e2e"


@pytest.fixture(scope="session")
def toolchain() -> None:
    """The offline toolchain must be built and on PATH (tools/env.sh)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not on PATH; build and load the toolchain: {BUILD_HINT}")
    plugins = subprocess.run(["pulumi", "plugin", "ls", "--json"], capture_output=True, text=True, check=True)
    have = {(p["name"], p["version"]) for p in json.loads(plugins.stdout or "[]")}
    for plugin in (("vsphere", "4.17.0"), ("command", "1.2.1")):
        if plugin not in have:
            pytest.fail(
                f"provider plugin {plugin[0]} {plugin[1]} is not installed in PULUMI_HOME: {BUILD_HINT}"
            )


@pytest.fixture(scope="module")
def simulator(toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[vcsim_script.Vcsim]:
    """A fresh vcsim per test module, always stopped."""
    state = tmp_path_factory.mktemp("vcsim")
    sim = vcsim_script.start(state)
    try:
        yield sim
    finally:
        vcsim_script.stop(state)


@pytest.fixture(scope="module")
def vc(simulator: vcsim_script.Vcsim) -> Iterator[Any]:
    """pyVmomi content of the module's simulator, to assert against vSphere itself."""
    si = simulator.connect()
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


def wait_task(task: Any) -> Any:
    """Wait for a vSphere task, assert it succeeded, return its result."""
    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        time.sleep(0.05)
    assert task.info.state == vim.TaskInfo.State.success, task.info.error
    return task.info.result


@dataclass
class Stack:
    """A copy of the project with its own file backend and the `e2e` stack."""

    dir: Path
    env: dict[str, str]
    sim: vcsim_script.Vcsim
    event_logs: list[Path] = field(default_factory=list)

    def pulumi(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the pulumi CLI; every update-like command writes an event log."""
        argv = ["pulumi", *args, "--stack", STACK]
        if args[0] in ("up", "preview", "destroy", "refresh"):
            argv.append("--non-interactive")
            log = self.dir / f"events-{len(self.event_logs)}.jsonl"
            self.event_logs.append(log)
            argv += ["--event-log", str(log)]
        proc = subprocess.run(
            argv, cwd=self.dir, env=self.env, input=stdin, capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", *extra)

    def up_failing(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """An ``up`` that must fail."""
        proc = self.pulumi("up", "--yes", "--skip-preview", *extra, check=False)
        assert proc.returncode != 0, f"pulumi up succeeded:\n{proc.stdout}"
        return proc

    def preview_steps(self) -> dict[str, str]:
        """URN name -> operation of a `pulumi preview --json`."""
        out = json.loads(self.pulumi("preview", "--json").stdout)
        return {step["urn"].rsplit("::", 1)[1]: step["op"] for step in out.get("steps", [])}

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads(self.pulumi("stack", "output", "--json", "--show-secrets").stdout))

    def set_config(self, key: str, value: Any) -> None:
        """Set a plain project key in the stack file (objects as YAML)."""
        path = self.dir / f"Pulumi.{STACK}.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"][f"linuxkit-swarm:{key}"] = value
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def set_placeholder_iso(self, version: str) -> None:
        """(Re)write the NOT BOOTABLE placeholder ISO the stack pushes (no Docker to build one)."""
        self.placeholder_iso.write_text(f"LINUXKIT-SWARM PLACEHOLDER ISO {version}: NOT BOOTABLE\n")

    @property
    def placeholder_iso(self) -> Path:
        return self.dir / ".build" / "placeholder" / "linuxkit-swarm-placeholder.iso"


SECRET_TOKEN = "SWMTKN-1-e2e-" + os.urandom(12).hex()


def base_config(simulator: vcsim_script.Vcsim) -> dict[str, Any]:
    """The site keys every e2e stack shares: the simulator and the placeholder ISO."""
    return {
        **vcsim_script.site_config(simulator),
        # Test stacks are torn down at the end; the protection has tests of its own.
        "linuxkit-swarm:environment": "dev",
        "linuxkit-swarm:allowDataLoss": "true",
        # The real `linuxkit push vcenter` uploads a placeholder ISO: building a real
        # one needs a Docker engine with registry access.
        "linuxkit-swarm:image": {"prebuiltIso": ".build/placeholder/linuxkit-swarm-placeholder.iso"},
    }


def create_stack(
    simulator: vcsim_script.Vcsim, root: Path, config: dict[str, Any], secrets: dict[str, str]
) -> Stack:
    """The program copied to ``root`` with its own file backend and the `e2e` stack."""
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(PROJECT_DIR / ".venv")
    backend = root / ".state"
    backend.mkdir()
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{backend}",
        "PULUMI_CONFIG_PASSPHRASE": "",
        # `--event-log` (the engine's full event stream) is behind this switch.
        "PULUMI_DEBUG_COMMANDS": "true",
    }
    st = Stack(root, env, simulator)
    st.placeholder_iso.parent.mkdir(parents=True)
    st.set_placeholder_iso("1")
    st.pulumi("stack", "init")
    stack_file = root / f"Pulumi.{STACK}.yaml"
    data = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None
    data = data or {}
    data["config"] = config
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    st.pulumi("config", "set", "--secret", "vsphere:password", stdin=simulator.password)
    for key, value in secrets.items():
        st.pulumi("config", "set", "--secret", key, stdin=value)
    return st


@pytest.fixture(scope="module")
def stack(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The program in a temp project, configured for the simulator; destroyed at the end."""
    config = {
        **base_config(simulator),
        "linuxkit-swarm:folder": "Linux/linuxkit-e2e",
        "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
        "linuxkit-swarm:workers": {
            "count": 3,
            "namePrefix": "e2e-w-",
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 0,
        },
    }
    st = create_stack(simulator, tmp_path_factory.mktemp("project"), config, {"swarmJoinToken": SECRET_TOKEN})
    try:
        yield st
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)


# Fixtures of container-backed nodes (engine, node_image, network, container_sim),
# defined beside their helpers; imported last, as they use the names above.
from .containers import container_sim, engine, network, node_image  # noqa: E402, F401
