"""Load: 200 worker VMs on the real engine and providers against a fresh simulator.

One stack, in file order: ``up`` from nothing, a no-op ``preview``, an OS
rollout of a new image to all 200 VMs in batches of ``maxUnavailable``, and
``destroy``. Each step is checked against the simulator and measured (wall
time, CPU, peak RSS of the pulumi process tree per part and of the simulator,
state size; ``tests/e2e/load_meter.py``). The table is printed at the end
(``pytest -s``) and written to ``load-measures.md`` in the module's tmp dir.

The VMs are plain simulator VMs joining a swarm run elsewhere (manager address
and a secret join token): no container nodes, no swarm steps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim, vmodl

from linuxkit_swarm import guestinfo
from linuxkit_swarm.settings import Secret, SiteSettings, VCenterSettings
from operations import inventory
from tests.e2e import load_meter
from tests.e2e.conftest import SECRET_TOKEN, STACK, Stack, base_config, create_stack, vcsim_script

pytestmark = pytest.mark.slow

COUNT = 200
PREFIX = "load-w-"
FOLDER = "TERRAFORM/Linux/linuxkit-load"
# Each in-place update takes ~10 s in the provider (its pending-question check sleeps),
# so the rollout takes about ceil(COUNT / BATCH) * 10 s. The engine runs at most
# `--parallel` steps at once (default 4 x cores = 8 here): the rollout passes BATCH.
BATCH = 50
NAMES = [f"{PREFIX}{i}" for i in range(COUNT)]


@dataclass
class Load:
    """The 200-node stack, its simulator, and the measures taken so far."""

    stack: Stack
    sim: vcsim_script.Vcsim
    out: Path
    measures: list[load_meter.Measure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self, step: str, *args: str) -> load_meter.Measure:
        """A pulumi command as ``Stack.pulumi`` runs it, measured; fails on a non-zero exit."""
        st = self.stack
        log = st.dir / f"events-{len(st.event_logs)}.jsonl"
        st.event_logs.append(log)
        argv = ["pulumi", *args, "--stack", STACK, "--non-interactive", "--event-log", str(log)]
        state = st.dir / ".state" / ".pulumi" / "stacks" / "linuxkit-swarm" / f"{STACK}.json"
        m = load_meter.run_measured(step, argv, st.dir, st.env, self.sim.pid, log, state)
        self.measures.append(m)
        assert m.returncode == 0, f"pulumi {' '.join(args)} failed ({m.returncode}):\n{m.stdout}\n{m.stderr}"
        return m

    def report(self) -> str:
        text = load_meter.format_table(self.measures) + "".join(f"\n- {n}" for n in self.notes) + "\n"
        (self.out / "load-measures.md").write_text(text)
        return text


@pytest.fixture(scope="module")
def load(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Load]:
    config = {
        **base_config(simulator),
        "linuxkit-swarm:folder": "Linux/linuxkit-load",
        "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
        "linuxkit-swarm:workers": {
            "count": COUNT,
            "namePrefix": PREFIX,
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 0,
        },
        "linuxkit-swarm:rollout": {"maxUnavailable": BATCH},
    }
    root = tmp_path_factory.mktemp("load")
    (root / "project").mkdir()
    st = create_stack(simulator, root / "project", config, {"swarmJoinToken": SECRET_TOKEN})
    ld = Load(st, simulator, root)
    started = time.monotonic()
    try:
        yield ld
    finally:
        if not any(m.step == "destroy" for m in ld.measures):
            st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        ld.notes.append(f"module wall time (fixture set-up excluded): {time.monotonic() - started:.0f} s")
        print("\n" + ld.report())


def _vms(sim: vcsim_script.Vcsim) -> dict[str, dict[str, Any]]:
    """Every VM in the stack's folder with the properties checked here, in one property query."""
    si = sim.connect()
    try:
        content = si.RetrieveContent()
        folder = content.searchIndex.FindByInventoryPath(f"{vcsim_script.DATACENTER}/vm/{FOLDER}")
        if folder is None:
            return {}
        view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], False)
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(
            objectSet=[
                collector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[collector.TraversalSpec(path="view", type=vim.view.ContainerView)],
                )
            ],
            propSet=[
                collector.PropertySpec(
                    type=vim.VirtualMachine,
                    pathSet=["name", "config.hardware.device", "config.extraConfig", "runtime.powerState"],
                )
            ],
        )
        vms = {}
        for result in content.propertyCollector.RetrieveContents([spec]):
            props = {p.name: p.val for p in result.propSet}
            devices = props.get("config.hardware.device") or []
            vms[props["name"]] = {
                "cdroms": [d.backing.fileName for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)],
                "disks": [d.backing.fileName for d in devices if isinstance(d, vim.vm.device.VirtualDisk)],
                "image": {o.key: str(o.value) for o in props.get("config.extraConfig") or []}.get(
                    guestinfo.IMAGE_KEY
                ),
                "power": str(props.get("runtime.powerState")),
            }
        view.Destroy()
        return vms
    finally:
        Disconnect(si)


def _isos(sim: vcsim_script.Vcsim) -> list[str]:
    root = Path(sim.datastore_dir)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.iso"))


def test_up_creates_200_vms(load: Load) -> None:
    m = load.run("up (create 200)", "up", "--yes", "--skip-preview")
    out = load.stack.outputs()
    assert out["workerNames"] == NAMES
    vms = _vms(load.sim)
    assert sorted(vms) == sorted(NAMES)
    for name, vm in vms.items():
        assert vm["cdroms"] == [f"[LocalDS_0] {out['isoDatastorePath']}"], name
        assert len(vm["disks"]) == 1 and vm["image"] == out["imageHash"], name
        assert vm["power"] == "poweredOn", name
    assert _isos(load.sim) == [out["isoDatastorePath"]]
    assert load_meter.max_in_flight(m.events, "create") > 1  # created in parallel
    # The program's one property query at start, at 200 VMs.
    settings_vc, site = _program_settings(load)
    started = time.monotonic()
    deployed = inventory.deployed_nodes(settings_vc, site)
    load.notes.append(
        f"inventory query (`operations.inventory.deployed_nodes`) at {len(deployed)} VMs: "
        f"{time.monotonic() - started:.2f} s"
    )
    assert sorted(deployed) == sorted(NAMES)


def _program_settings(load: Load) -> tuple[VCenterSettings, SiteSettings]:
    """The vCenter and site settings the program reads, for the simulator of this module."""
    sim = load.sim
    vc = VCenterSettings(
        server=sim.server, user=sim.user, password=Secret(sim.password), allow_unverified_ssl=True
    )
    site = SiteSettings(
        datacenter=vcsim_script.DATACENTER,
        resource_pool=vcsim_script.RESOURCE_POOL,
        datastore=vcsim_script.DATASTORE,
        network=vcsim_script.NETWORK,
        parent_folder=vcsim_script.PARENT_FOLDER,
        folder="Linux/linuxkit-load",
    )
    return vc, site


def test_unchanged_stack_previews_no_changes(load: Load) -> None:
    m = load.run("preview (no-op)", "preview", "--expect-no-changes")
    ops = {e.op for e in m.events if e.type == "resourcePreEvent"}
    assert ops == {"same"}, ops
    vm_steps = [e for e in m.events if e.type == "resourcePreEvent" and e.resource_type == load_meter.VM_TYPE]
    assert len(vm_steps) == COUNT


def test_rollout_updates_every_vm_in_place_in_batches(load: Load) -> None:
    before = load.stack.outputs()
    disks = {n: vm["disks"] for n, vm in _vms(load.sim).items()}
    load.stack.set_placeholder_iso("2")  # a new image: its content hash is the identity
    m = load.run(f"rollout (batches of {BATCH})", "up", "--yes", "--skip-preview", "--parallel", str(BATCH))
    batches = " -> ".join("[" + ", ".join(NAMES[i : i + BATCH]) + "]" for i in range(0, COUNT, BATCH))
    assert f"in batches: {batches}" in m.stdout
    vm_ops = {
        e.op for e in m.events if e.type == "resourcePreEvent" and e.resource_type == load_meter.VM_TYPE
    }
    assert vm_ops == {"update"}  # in place, never a replace
    in_flight = load_meter.max_in_flight(m.events, "update")
    load.notes.append(f"rollout: at most {in_flight} VM updates at once (maxUnavailable {BATCH})")
    assert 1 < in_flight <= BATCH
    after = load.stack.outputs()
    assert after["imageHash"] != before["imageHash"]
    vms = _vms(load.sim)
    assert sorted(vms) == sorted(NAMES)
    for name, vm in vms.items():
        assert vm["cdroms"] == [f"[LocalDS_0] {after['isoDatastorePath']}"], name
        assert vm["disks"] == disks[name], name  # the same data disk
        assert vm["image"] == after["imageHash"] and vm["power"] == "poweredOn", name
    assert _isos(load.sim) == [after["isoDatastorePath"]]  # the superseded ISO is gone


def test_destroy_removes_every_vm(load: Load) -> None:
    load.run("destroy", "destroy", "--yes", "--skip-preview")
    assert _vms(load.sim) == {}
    assert _isos(load.sim) == []
