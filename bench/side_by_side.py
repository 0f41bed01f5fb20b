"""Same work, two tools: the seed's OpenTofu project and this program on one simulator.

For one node count and one run: a fresh simulator, then each tool in turn
(the order alternates between runs) does

* ``create``: N VMs, their folders and the ISO from nothing;
* ``noop-refresh``: a no-op plan that refreshes (``tofu plan``, ``pulumi preview --refresh``);
* ``noop``: a no-op plan that does not (``tofu plan -refresh=false``, ``pulumi preview``);
* ``noop-up``: an apply with nothing to do (``tofu apply``, ``pulumi up``), which must
  neither build nor push the ISO;
* ``rollout``: a new ISO booted by every VM (OpenTofu's one-shot apply, the program's
  rolling upgrade with its default batch size);
* ``destroy``.

Each step is a subprocess timed by wall clock and checked (exit code, expected
changes, the VMs in the simulator, the ISO files in the datastore); a failed
check stops the benchmark rather than recording a number for work not done.
Secrets (the simulator's password) reach the tools through the environment or
Pulumi's encrypted config, never argv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import vcsim as vcsim_script  # noqa: E402

TOFU_PROJECT = PROJECT_DIR / "bench" / "opentofu"
# What the program needs to run from a copy (as the e2e stacks copy it).
PROGRAM_FILES = (
    "__main__.py",
    "Pulumi.yaml",
    "requirements.txt",
    "components",
    "linuxkit_swarm",
    "operations",
)
STACK = "bench"
STEPS = ("create", "noop-refresh", "noop", "noop-up", "rollout", "destroy")
TOOLS = ("opentofu", "program")
# Each tool in its own folders, so neither finds the other's objects.
TOFU_FOLDER = ("TERRAFORM/tofu", "linuxkit-bench", "tf-sw-")
PROGRAM_FOLDER = ("pulumi/linuxkit-bench", "lks-sw-")
PLACEHOLDER = ".build/placeholder/linuxkit-swarm-placeholder.iso"


class BenchError(RuntimeError):
    """A step failed or did not do the work it was timed for."""


@dataclass
class StepTime:
    """One timed step."""

    tool: str
    step: str
    nodes: int
    run: int
    seconds: float


def _run(argv: list[str], cwd: Path, env: Mapping[str, str], what: str) -> tuple[float, str]:
    """Run a command; its wall time and output, or BenchError with the output."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        raise BenchError(f"{what}: `{' '.join(argv[:3])} ...` exited {proc.returncode}:\n{tail}")
    return seconds, proc.stdout


def _write_placeholder(path: Path, version: int) -> None:
    """A NOT BOOTABLE stand-in ISO (no registry here to build a real one); new content, new image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"LINUXKIT-SWARM BENCHMARK PLACEHOLDER ISO {version}: NOT BOOTABLE\n" + "x" * 65536)


@dataclass
class Site:
    """The simulator both tools use in one run, and checks against it."""

    sim: vcsim_script.Vcsim

    def vms(self, folder: str) -> dict[str, str]:
        """VM name -> power state of the VMs in ``folder`` (empty when it does not exist)."""
        from pyVim.connect import Disconnect
        from pyVmomi import vim

        si = self.sim.connect()
        try:
            node = si.RetrieveContent().searchIndex.FindByInventoryPath(
                f"{vcsim_script.DATACENTER}/vm/{folder}"
            )
            if node is None:
                return {}
            return {
                v.name: str(v.runtime.powerState)
                for v in node.childEntity
                if isinstance(v, vim.VirtualMachine)
            }
        finally:
            Disconnect(si)

    def isos(self, folder: str) -> dict[str, float]:
        """ISO file name -> mtime in the datastore folder (the datastore is a real directory)."""
        path = Path(self.sim.datastore_dir) / folder
        return {p.name: p.stat().st_mtime for p in path.glob("*.iso")} if path.is_dir() else {}

    def expect_vms(self, folder: str, names: list[str], what: str) -> None:
        """Fail unless exactly ``names`` are in ``folder``, all powered on."""
        found = self.vms(folder)
        if sorted(found) != sorted(names) or any(s != "poweredOn" for s in found.values()):
            raise BenchError(f"{what}: expected {len(names)} powered-on VMs in {folder}, found {found}")


@dataclass
class OpenTofu:
    """The seed's configuration (bench/opentofu) in a work dir, with the provider from its mirror."""

    workdir: Path
    site: Site
    nodes: int
    tofu: Path
    mirror: Path
    name: str = "opentofu"
    version: int = 1
    env: dict[str, str] = field(default_factory=dict)

    def setup(self) -> None:
        """Copy the project, point OpenTofu at the mirror, ``tofu init`` (not timed)."""
        self.workdir.mkdir(parents=True)
        for tf in TOFU_PROJECT.glob("*.tf"):
            shutil.copy2(tf, self.workdir / tf.name)
        rc = self.workdir / "cli.tfrc"
        host = "registry.opentofu.org/hashicorp/vsphere"
        rc.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{self.mirror}"\n    include = ["{host}"]\n  }}\n'
            f'  direct {{\n    exclude = ["{host}"]\n  }}\n}}\n'
        )
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "VSPHERE_SERVER": self.site.sim.server,
            "VSPHERE_USER": self.site.sim.user,
            "VSPHERE_PASSWORD": self.site.sim.password,
        }
        self._write_vars()
        _run([str(self.tofu), "init", "-input=false", "-no-color"], self.workdir, self.env, "tofu init")

    def _write_vars(self) -> None:
        iso = self.workdir / f"image-{self.version}.iso"
        _write_placeholder(iso, self.version)
        variables = {
            "node_count": self.nodes,
            "name_prefix": TOFU_FOLDER[2],
            "parent_folder": TOFU_FOLDER[0],
            "folder": TOFU_FOLDER[1],
            "iso_file": str(iso),
            "iso_name": f"linuxkit-swarm-v{self.version}.iso",
            "image_id": f"bench-image-{self.version}",
        }
        (self.workdir / "terraform.tfvars.json").write_text(json.dumps(variables, indent=2))

    def _tofu(self, *args: str, what: str) -> tuple[float, str]:
        return _run([str(self.tofu), *args, "-input=false", "-no-color"], self.workdir, self.env, what)

    def step(self, step: str) -> float:
        """Run and check one step; its wall time in seconds."""
        names = [f"{TOFU_FOLDER[2]}{i}" for i in range(self.nodes)]
        folder = f"{TOFU_FOLDER[0]}/{TOFU_FOLDER[1]}"
        if step == "create":
            seconds, _ = self._tofu("apply", "-auto-approve", what="tofu apply (create)")
            self.site.expect_vms(folder, names, "tofu create")
        elif step in ("noop-refresh", "noop"):
            # -detailed-exitcode: 0 = no changes, 2 = changes (an error for a no-op).
            args = ["plan", "-detailed-exitcode"] + (["-refresh=false"] if step == "noop" else [])
            seconds, _ = self._tofu(*args, what=f"tofu plan ({step})")
        elif step == "noop-up":
            before = self.site.isos("linuxkit-tofu")
            seconds, out = self._tofu("apply", "-auto-approve", what="tofu apply (no-op)")
            if "0 added, 0 changed, 0 destroyed" not in out and "No changes" not in out:
                raise BenchError(f"tofu no-op apply changed something:\n{out[-2000:]}")
            if self.site.isos("linuxkit-tofu") != before:
                raise BenchError("tofu no-op apply re-uploaded the ISO")
        elif step == "rollout":
            self.version += 1
            self._write_vars()
            seconds, out = self._tofu("apply", "-auto-approve", what="tofu apply (new ISO)")
            if f"{self.nodes} changed" not in out:
                raise BenchError(f"tofu rollout did not change {self.nodes} VMs:\n{out[-2000:]}")
            self.site.expect_vms(folder, names, "tofu rollout")
        elif step == "destroy":
            seconds, _ = self._tofu("destroy", "-auto-approve", what="tofu destroy")
            self.site.expect_vms(folder, [], "tofu destroy")
        else:
            raise ValueError(step)
        return seconds


@dataclass
class Program:
    """The program (a copy of the project) with a prebuilt ISO and N plain workers."""

    workdir: Path
    site: Site
    nodes: int
    name: str = "program"
    iso_folder: str = "linuxkit"  # the program's default image.isoFolder
    version: int = 1
    env: dict[str, str] = field(default_factory=dict)

    def setup(self) -> None:
        """Copy the program, make its file backend and the stack's config (not timed)."""
        self.workdir.mkdir(parents=True)
        for name in PROGRAM_FILES:
            source = PROJECT_DIR / name
            if source.is_dir():
                shutil.copytree(source, self.workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.workdir / name)
        (self.workdir / ".venv").symlink_to(PROJECT_DIR / ".venv")
        (self.workdir / ".state").mkdir()
        self.env = {
            **os.environ,
            "PULUMI_BACKEND_URL": f"file://{self.workdir / '.state'}",
            "PULUMI_CONFIG_PASSPHRASE": "",
        }
        _write_placeholder(self.workdir / PLACEHOLDER, self.version)
        self._pulumi("stack", "init", what="stack init")
        sim = self.site.sim
        config = {
            **vcsim_script.site_config(sim),
            "linuxkit-swarm:folder": PROGRAM_FOLDER[0],
            # Torn down at the end of the run, as OpenTofu's VMs are.
            "linuxkit-swarm:environment": "dev",
            "linuxkit-swarm:allowDataLoss": "true",
            "linuxkit-swarm:image": {"prebuiltIso": PLACEHOLDER},
            # Plain VMs joining a swarm run elsewhere: the same VMs OpenTofu makes.
            "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
            "linuxkit-swarm:workers": {
                "count": self.nodes,
                "namePrefix": PROGRAM_FOLDER[1],
                "waitForGuestNetTimeout": 0,
                "waitForGuestIpTimeout": 0,
            },
        }
        stack_file = self.workdir / f"Pulumi.{STACK}.yaml"
        data: dict[str, Any] = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        stack_file.write_text(yaml.safe_dump({**(data or {}), "config": config}, sort_keys=False))
        self._pulumi("config", "set", "--secret", "vsphere:password", stdin=sim.password, what="config")
        token = "SWMTKN-1-bench-" + os.urandom(12).hex()
        self._pulumi("config", "set", "--secret", "swarmJoinToken", stdin=token, what="config")

    def _pulumi(self, *args: str, what: str, stdin: str | None = None) -> tuple[float, str]:
        argv = ["pulumi", *args, "--stack", STACK]
        if args[0] in ("up", "preview", "destroy"):
            argv.append("--non-interactive")
        if stdin is None:
            return _run(argv, self.workdir, self.env, what)
        proc = subprocess.run(
            argv, cwd=self.workdir, env=self.env, input=stdin, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise BenchError(f"{what}: pulumi {args[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return 0.0, proc.stdout

    def step(self, step: str) -> float:
        """Run and check one step; its wall time in seconds."""
        names = [f"{PROGRAM_FOLDER[1]}{i}" for i in range(self.nodes)]
        folder = f"{vcsim_script.PARENT_FOLDER}/{PROGRAM_FOLDER[0]}"
        if step == "create":
            seconds, _ = self._pulumi("up", "--yes", what="pulumi up (create)")
            self.site.expect_vms(folder, names, "program create")
        elif step == "noop-refresh":
            seconds, _ = self._pulumi("preview", "--refresh", "--expect-no-changes", what="preview --refresh")
        elif step == "noop":
            seconds, _ = self._pulumi("preview", "--expect-no-changes", what="preview")
        elif step == "noop-up":
            before = self.site.isos(self.iso_folder)
            seconds, _ = self._pulumi("up", "--yes", "--expect-no-changes", what="pulumi up (no-op)")
            if not before or self.site.isos(self.iso_folder) != before:
                raise BenchError(
                    f"program no-op up pushed an ISO: {before} -> {self.site.isos(self.iso_folder)}"
                )
        elif step == "rollout":
            before = self.site.isos(self.iso_folder)
            self.version += 1
            _write_placeholder(self.workdir / PLACEHOLDER, self.version)
            seconds, _ = self._pulumi("up", "--yes", what="pulumi up (new ISO)")
            pushed = set(self.site.isos(self.iso_folder)) - set(before)
            if len(pushed) != 1:
                raise BenchError(f"program rollout pushed {sorted(pushed)}, expected one new ISO")
            self.site.expect_vms(folder, names, "program rollout")
        elif step == "destroy":
            seconds, _ = self._pulumi("destroy", "--yes", what="pulumi destroy")
            self.site.expect_vms(folder, [], "program destroy")
        else:
            raise ValueError(step)
        return seconds


def one_run(
    nodes: int, run: int, workdir: Path, tofu: Path, mirror: Path, log: Any = print
) -> list[StepTime]:
    """Both tools through every step on one fresh simulator; the first tool alternates by run."""
    state = workdir / f"n{nodes}-r{run}"
    sim = vcsim_script.start(state / "vcsim")
    try:
        site = Site(sim)
        tools: list[OpenTofu | Program] = [
            OpenTofu(state / "opentofu", site, nodes, tofu, mirror),
            Program(state / "program", site, nodes),
        ]
        if run % 2:
            tools.reverse()
        times = []
        for tool in tools:
            tool.setup()
            for step in STEPS:
                seconds = tool.step(step)
                log(f"  N={nodes} run {run} {tool.name:9} {step:13} {seconds:7.2f} s")
                times.append(StepTime(tool.name, step, nodes, run, seconds))
        return times
    finally:
        vcsim_script.stop(state / "vcsim")
