"""Shared state on PostgreSQL: the `local` stack's config on a DIY ``postgres://`` backend.

A throwaway PostgreSQL 15 (scripts/postgres.py) holds the state; the program runs on the
real engine and providers against the module's simulator, with Pulumi.local.yaml's
config (the simulator's address and password set as scripts/local-up.sh does). The
stack is named ``e2e`` (the fixtures' Stack), secrets use the passphrase provider with
the passphrase in a file (PULUMI_CONFIG_PASSPHRASE_FILE), and the database password
comes from a pgpass file (PGPASSFILE): the backend URL carries none.

To hold the stack's lock for as long as the test needs, the lock and kill tests give
the workers a guest-IP wait (``waitForGuestIpTimeout``): ``up`` creates the VMs, then
waits until the test reports their IPs in the simulator. Tests run in file order.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from pyVmomi import vim

from tests.e2e.conftest import PROJECT_DIR, PROJECT_FILES, STACK, Stack, create_stack, wait_task

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import postgres as pg_script
import vcsim as vcsim_script

FOLDER = "TERRAFORM/Linux/linuxkit-local"
PROJECT = "linuxkit-swarm"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
LOCK_ERROR = "the stack is currently locked by 1 lock(s)"
TIMES: dict[str, float] = {}
T = TypeVar("T")


LOCAL_CONFIG: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "Pulumi.local.yaml").read_text())["config"]
WORKERS: dict[str, Any] = LOCAL_CONFIG["linuxkit-swarm:workers"]


def local_config(sim: vcsim_script.Vcsim) -> dict[str, Any]:
    """Pulumi.local.yaml's config with this simulator's address, as scripts/local-up.sh sets it."""
    return {**LOCAL_CONFIG, "vsphere:vsphereServer": sim.server}


def with_ip_wait(config: dict[str, Any], count: int) -> dict[str, Any]:
    """The workers wait (up to 2 min) for guest IPs the test reports: ``up`` holds the lock till then."""
    workers = {**WORKERS, "count": count, "waitForGuestIpTimeout": 2}
    return {**config, "linuxkit-swarm:workers": workers}


def set_config(st: Stack, config: dict[str, Any]) -> None:
    """Replace the stack's plain config, keeping its encrypted vsphere:password."""
    path = st.dir / f"Pulumi.{STACK}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"] = {**config, "vsphere:password": data["config"]["vsphere:password"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def rows(pg: pg_script.Postgres, prefix: str) -> dict[str, bytes]:
    """The backend's objects under ``prefix`` (a key prefix in the table), decoded."""
    out = pg_script.psql(
        pg, f"SELECT key, data->>'data' FROM {pg.table} WHERE key LIKE '{prefix}%' ORDER BY key"
    )
    return {key: base64.b64decode(data) for key, data in (line.split("|", 1) for line in out.splitlines())}


def locks(pg: pg_script.Postgres) -> dict[str, dict[str, Any]]:
    """The stack's lock objects: key -> {pid, username, hostname, timestamp}."""
    prefix = f"{pg.database}/.pulumi/locks/organization/{PROJECT}/{STACK}/"
    return {key: json.loads(data) for key, data in rows(pg, prefix).items()}


def checkpoint(pg: pg_script.Postgres) -> dict[str, Any]:
    """The stack's checkpoint as the backend stored it in PostgreSQL."""
    key = f"{pg.database}/.pulumi/stacks/{PROJECT}/{STACK}.json"
    return dict(json.loads(rows(pg, key)[key]))


def vms(vc: Any) -> dict[str, Any]:
    node = vc.searchIndex.FindByInventoryPath(f"DC0/vm/{FOLDER}")
    return (
        {} if node is None else {vm.name: vm for vm in node.childEntity if isinstance(vm, vim.VirtualMachine)}
    )


def all_vm_names(vc: Any) -> list[str]:
    """Every VM name in the simulator (to see duplicates or orphans anywhere)."""
    view = vc.viewManager.CreateContainerView(vc.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(vm.name for vm in view.view)
    finally:
        view.Destroy()


def running(proc: subprocess.Popen[bytes], log: Path) -> bool:
    """True while ``proc`` runs; its output as the failure once it ended."""
    assert proc.poll() is None, f"pulumi up ended ({proc.returncode}):\n{log.read_text()}"
    return True


def start_up(st: Stack, log: Path) -> subprocess.Popen[bytes]:
    """``pulumi up`` in the background, in its own process group (the kill test ends it all)."""
    events = st.dir / f"events-{len(st.event_logs)}.jsonl"
    st.event_logs.append(events)
    argv = ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*argv, "--event-log", str(events)],
            cwd=st.dir,
            env=st.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def state_urns(st: Stack) -> dict[str, str]:
    """URN -> id of every resource in ``pulumi stack export``."""
    deployment = json.loads(st.pulumi("stack", "export").stdout)["deployment"]
    return {r["urn"]: r.get("id", "") for r in deployment["resources"]}


def vm_name(urn: str) -> str:
    """The VM name of a worker VM's URN (resources are named ``workers-<vm>``)."""
    return urn.rsplit("::", 1)[1].removeprefix("workers-")


def state_vms(st: Stack) -> dict[str, str]:
    """VM name -> id (its UUID) of every VM in the stack's state."""
    return {vm_name(urn): id_ for urn, id_ in state_urns(st).items() if VM_TYPE in urn}


def timed(what: str, run: Callable[[], T]) -> T:
    start = time.monotonic()
    result = run()
    TIMES[what] = round(time.monotonic() - start, 1)
    return result


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pg_script.Postgres]:
    """A throwaway PostgreSQL server, always stopped (pg_ctl stop -m fast)."""
    state = tmp_path_factory.mktemp("postgres")
    server = timed("PostgreSQL start (initdb, start, role + database)", lambda: pg_script.start(state))
    try:
        yield server
    finally:
        pg_script.stop(state)


@pytest.fixture(scope="module")
def shared(
    simulator: vcsim_script.Vcsim, pg: pg_script.Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The program in a temp project whose `e2e` stack lives in PostgreSQL."""
    root = tmp_path_factory.mktemp("shared")
    for name in PROJECT_FILES:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / name).write_bytes(source.read_bytes())
    (root / ".venv").symlink_to(PROJECT_DIR / ".venv")
    passphrase = tmp_path_factory.mktemp("secrets") / "passphrase"
    passphrase.write_text(os.urandom(16).hex())
    passphrase.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_CONFIG_PASSPHRASE", "PGPASSWORD")}
    env |= pg.env() | {"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase), "PULUMI_DEBUG_COMMANDS": "true"}
    st = Stack(root, env, simulator)
    st.placeholder_iso.parent.mkdir(parents=True)
    st.set_placeholder_iso("1")
    st.pulumi("stack", "init", "--secrets-provider", "passphrase")
    stack_file = root / f"Pulumi.{STACK}.yaml"
    data = yaml.safe_load(stack_file.read_text()) or {}
    data["config"] = with_ip_wait(local_config(simulator), 3)
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    st.pulumi("config", "set", "--secret", "vsphere:password", stdin=simulator.password)
    try:
        yield st
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)


def test_a_second_up_fails_fast_while_the_first_holds_the_lock(
    shared: Stack, pg: pg_script.Postgres, vc: Any, tmp_path: Path
) -> None:
    first = start_up(shared, tmp_path / "first-up.log")
    first_events = shared.event_logs[-1]
    try:
        log = tmp_path / "first-up.log"
        held = wait_for(lambda: running(first, log) and locks(pg), 120, "the first up's lock in PostgreSQL")
        assert [lock["pid"] for lock in held.values()] == [first.pid]
        wait_for(lambda: running(first, log) and len(vms(vc)) == 3, 120, "3 VMs, waiting for guest IPs")

        second = timed("second `up` refused (stack locked)", shared.up_failing)
        out = second.stdout + second.stderr
        assert LOCK_ERROR in out, out
        assert f"(pid {first.pid})" in out
        assert "`pulumi cancel`" in out
        assert f"postgres://****:****@{pg.host}:{pg.port}/{pg.database}/.pulumi/locks/" in out
        assert TIMES["second `up` refused (stack locked)"] < 30
        assert first.poll() is None, "the refused up must not disturb the running one"

        vcsim_script.report_guest_ips(shared.sim, FOLDER)
        assert first.wait(timeout=300) == 0, (tmp_path / "first-up.log").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
    assert locks(pg) == {}

    # Nothing lost: every resource the first up finished is in the state, with its id.
    finished = set()
    for line in first_events.read_text().splitlines():
        event = json.loads(line)
        if "resOutputsEvent" in event:
            finished.add(event["resOutputsEvent"]["metadata"]["urn"])
    assert finished and finished <= set(state_urns(shared))
    assert state_vms(shared) == {name: vm.config.uuid for name, vm in vms(vc).items()}
    assert sorted(vms(vc)) == ["local-sw-0", "local-sw-1", "local-sw-2"]
    shared.pulumi("preview", "--expect-no-changes")


def test_the_state_is_in_postgres_and_nowhere_else(shared: Stack, pg: pg_script.Postgres) -> None:
    keys = set(rows(pg, ""))
    prefix = f"{pg.database}/.pulumi"
    assert f"{prefix}/meta.yaml" in keys
    assert f"{prefix}/stacks/{PROJECT}/{STACK}.json" in keys
    assert any(k.startswith(f"{prefix}/history/{PROJECT}/{STACK}/") for k in keys)
    latest = checkpoint(pg)["checkpoint"]["latest"]
    names = {vm_name(r["urn"]) for r in latest["resources"] if r["type"] == VM_TYPE}
    assert names == {"local-sw-0", "local-sw-1", "local-sw-2"}
    assert latest["secrets_providers"]["type"] == "passphrase"
    everything = pg_script.psql(pg, f"SELECT data FROM {pg.table}")
    everything += "".join(d.decode(errors="replace") for d in rows(pg, "").values())
    assert shared.sim.password not in everything
    # No file backend got the stack: not the project, not the repo's, not ~/.pulumi.
    file_stacks = [
        p
        for base in (shared.dir, PROJECT_DIR / ".pulumi-state", Path.home() / ".pulumi")
        for p in base.glob(f"**/.pulumi/stacks/{PROJECT}/{STACK}.json*")
        if p.stat().st_mtime > shared.dir.stat().st_ctime
    ]
    assert file_stacks == []
    listed = json.loads(shared.pulumi("stack", "ls", "--json").stdout)
    assert [(s["name"], s["resourceCount"] > 0) for s in listed] == [(STACK, True)]


def test_a_killed_up_is_recovered_without_duplicate_or_orphan_vms(
    shared: Stack, pg: pg_script.Postgres, vc: Any, tmp_path: Path
) -> None:
    set_config(shared, with_ip_wait(local_config(shared.sim), 5))

    def pending_creates() -> list[str]:
        ops = checkpoint(pg)["checkpoint"]["latest"].get("pending_operations") or []
        return sorted(op["resource"]["urn"] for op in ops if op["type"] == "creating")

    log = tmp_path / "killed-up.log"
    killed = start_up(shared, log)
    try:
        wait_for(lambda: running(killed, log) and len(vms(vc)) == 5, 120, "2 new VMs in the simulator")
        pending = wait_for(
            lambda: running(killed, log) and len(pending_creates()) == 2 and pending_creates(),
            60,
            "2 pending creates",
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    assert [lock["pid"] for lock in locks(pg).values()] == [killed.pid]

    locked = shared.up_failing()
    assert LOCK_ERROR in locked.stdout + locked.stderr
    assert f"(pid {killed.pid})" in locked.stdout + locked.stderr

    # DIY backends: `pulumi cancel` deletes the stack's lock objects (nothing else).
    cancel = shared.pulumi("cancel", "--yes")
    assert f"The currently running update for '{STACK}' has been canceled!" in cancel.stdout
    assert locks(pg) == {}
    assert pending_creates() == pending

    # Pulumi's procedure: check each pending create in the provider. Both VMs exist in vCenter
    # but in no state (the kill came before their create returned): delete them, clear the
    # pending creates with a refresh, and let the next `up` create them again.
    by_name = vms(vc)
    for urn in pending:
        vm = by_name[vm_name(urn)]
        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
            wait_task(vm.PowerOffVM_Task())
        wait_task(vm.Destroy_Task())
    refresh = shared.pulumi("refresh", "--yes", "--skip-preview", "--clear-pending-creates")
    assert pending_creates() == [], refresh.stdout
    set_config(shared, {**local_config(shared.sim), "linuxkit-swarm:workers": {**WORKERS, "count": 5}})
    shared.up()
    assert all_vm_names(vc) == [f"local-sw-{i}" for i in range(5)]
    assert state_vms(shared) == {name: vm.config.uuid for name, vm in vms(vc).items()}
    shared.pulumi("preview", "--expect-no-changes")


def test_timings_postgres_and_file_backend(
    shared: Stack, simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory, vc: Any
) -> None:
    """The same stack (Pulumi.local.yaml's config exactly) up from nothing on each backend."""
    config = local_config(simulator)
    timed("postgres: destroy (5 VMs)", lambda: shared.pulumi("destroy", "--yes", "--skip-preview"))
    assert vms(vc) == {}

    on_file = create_stack(simulator, tmp_path_factory.mktemp("file"), config, {})
    timed("file: up from nothing (3 VMs)", on_file.up)
    timed("file: preview, no changes", lambda: on_file.pulumi("preview", "--expect-no-changes"))
    timed("file: destroy", lambda: on_file.pulumi("destroy", "--yes", "--skip-preview"))

    set_config(shared, config)
    timed("postgres: up from nothing (3 VMs)", shared.up)
    timed("postgres: preview, no changes", lambda: shared.pulumi("preview", "--expect-no-changes"))
    assert sorted(vms(vc)) == ["local-sw-0", "local-sw-1", "local-sw-2"]
    print("\nshared-state timings (s):", json.dumps(TIMES, indent=2))
