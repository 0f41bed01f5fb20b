"""Embedded vCenter: start VMware's vcsim with a small site's inventory, wait, stop.

Used by the e2e fixture and by ``scripts/local-up.sh``:

    python scripts/vcsim.py start --state-dir .e2e/vcsim   # prints shell exports
    python scripts/vcsim.py stop --state-dir .e2e/vcsim
    python scripts/vcsim.py save --state-dir .e2e/vcsim --to backup/     # govc object.save
    python scripts/vcsim.py restart --state-dir .e2e/vcsim --from backup/ # a vCenter restored from it

The inventory is shaped like a small real site: datacenter ``DC0``, cluster
``DC0_C0`` with three hosts, its resource pool ``DC0_C0/Resources``, datastore
``LocalDS_0`` (a real directory on disk), port group ``VM Network``, and an
existing parent folder ``TERRAFORM``; no VMs.

``restart`` is a vCenter restored from a backup: a new ``vcsim -load`` of the saved
inventory on the same address with the same login, so a stack's config stays valid.
The datastore is storage, not vCenter: its files carry over to the new simulator.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DATACENTER = "DC0"
CLUSTER = "DC0_C0"
RESOURCE_POOL = "DC0_C0/Resources"
DATASTORE = "LocalDS_0"
NETWORK = "VM Network"
PARENT_FOLDER = "TERRAFORM"
USER = "lks-admin"  # vcsim rejects logins whose user name has an "@"
INSTALL_HINT = "bash tools/build.sh vcsim govc   # then: source tools/env.sh"


@dataclass(frozen=True)
class Vcsim:
    """A running simulator."""

    pid: int
    host: str
    port: int
    user: str
    password: str
    datastore_dir: str

    @property
    def server(self) -> str:
        """``host:port`` as the vSphere provider's ``vsphereServer`` takes it."""
        return f"{self.host}:{self.port}"

    def connect(self, timeout: float = 10.0) -> Any:
        """A pyVmomi ServiceInstance logged in to the simulator (retries until it answers)."""
        return _connect(self.host, self.port, self.password, time.monotonic() + timeout)


def site_config(sim: Vcsim) -> dict[str, str]:
    """The stack config keys that point the program at this simulator's site.

    The password is not among them: stacks set ``vsphere:password`` as a secret.
    """
    return {
        "vsphere:vsphereServer": sim.server,
        "vsphere:user": sim.user,
        "vsphere:allowUnverifiedSsl": "true",
        "linuxkit-swarm:datacenter": DATACENTER,
        "linuxkit-swarm:resourcePool": RESOURCE_POOL,
        "linuxkit-swarm:datastore": DATASTORE,
        "linuxkit-swarm:network": NETWORK,
        "linuxkit-swarm:parentFolder": PARENT_FOLDER,
    }


def start(
    state_dir: Path,
    timeout: float = 30.0,
    containers: Sequence[tuple[str, str]] = (),
    container_config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Vcsim:
    """Start vcsim on a free loopback port, shape the inventory, wait until it answers.

    With ``containers`` (pairs of a VM-name glob and a ``RUN.container`` value), it
    starts ``lks-vcsim`` instead (tools/vcsim/cmd/lks-vcsim): every VM whose name
    matches a glob is backed by a Docker container of the engine at ``env``'s
    DOCKER_HOST, with ``container_config`` as extra ``RUN.*`` keys.
    """
    name = "lks-vcsim" if containers else "vcsim"
    exe = shutil.which(name)
    if exe is None:
        hint = "bash tools/build.sh lks-vcsim   # then: source tools/env.sh" if containers else INSTALL_HINT
        raise SystemExit(f"{name} is not on PATH; build it with: {hint}")
    state_dir.mkdir(parents=True, exist_ok=True)
    password = "Sim-" + secrets.token_urlsafe(12)  # unique per run: leak checks look for it
    log = (state_dir / "vcsim.log").open("w")
    flags = {
        "-l": "127.0.0.1:0",  # a free loopback port, printed in GOVC_URL
        "-vm": "0",  # no pre-made VMs
        "-standalone-host": "0",
        "-cluster": "1",
        "-host": "3",
        "-username": USER,
        "-password": password,
    }
    argv = [exe, *(word for pair in flags.items() for word in pair)]
    for glob, spec in containers:
        argv += ["-container", f"{glob}={spec}"]
    for key, value in (container_config or {}).items():
        argv += ["-container-config", f"{key}={value}"]
    proc = subprocess.Popen(
        argv,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,  # stop() kills the whole group
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()  # vcsim prints its GOVC_URL once it listens
    match = re.search(r"GOVC_URL=https://[^@]+@([\d.]+):(\d+)/sdk", line)
    if not match:
        proc.kill()
        raise SystemExit(f"vcsim did not start: {line!r}; see {state_dir / 'vcsim.log'}")
    host, port = match.group(1), int(match.group(2))
    try:
        si = _connect(host, port, password, deadline)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    content = si.RetrieveContent()
    dc = next(e for e in content.rootFolder.childEntity if e.name == DATACENTER)
    dc.vmFolder.CreateFolder(PARENT_FOLDER)
    datastore = next(d for d in dc.datastore if d.name == DATASTORE)
    sim = Vcsim(
        pid=proc.pid,
        host=host,
        port=port,
        user=USER,
        password=password,
        datastore_dir=datastore.summary.url.removeprefix("ds://"),
    )
    (state_dir / "vcsim.json").write_text(json.dumps(asdict(sim)))
    return sim


def _connect(host: str, port: int, password: str, deadline: float) -> Any:
    from pyVim.connect import SmartConnect

    while True:
        try:
            return SmartConnect(host=host, port=port, user=USER, pwd=password, disableSslCertValidation=True)
        except (OSError, ssl.SSLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def save(sim: Vcsim, target: Path) -> None:
    """Save the whole inventory to ``target`` with ``govc object.save`` (what ``vcsim -load`` reads)."""
    govc = shutil.which("govc")
    if govc is None:
        raise SystemExit(f"govc is not on PATH; build it with: {INSTALL_HINT}")
    shutil.rmtree(target, ignore_errors=True)  # `-f` keeps stale files, and vcsim would load them too
    proc = subprocess.run(
        [govc, "object.save", "-d", str(target)],
        env={**os.environ, **govc_env(sim)},  # the password in the environment, never in argv
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"govc object.save failed ({proc.returncode}): {proc.stderr.strip()}")


def govc_env(sim: Vcsim) -> dict[str, str]:
    """The GOVC_* variables that point govc at ``sim``."""
    return {
        "GOVC_URL": f"https://{sim.server}/sdk",
        "GOVC_USERNAME": sim.user,
        "GOVC_PASSWORD": sim.password,
        "GOVC_INSECURE": "1",
        "GOVC_DATACENTER": DATACENTER,
    }


def restart(state_dir: Path, saved: Path, timeout: float = 30.0) -> Vcsim:
    """Kill the recorded simulator if it still runs, start ``vcsim -load saved`` in its place.

    Same host, port, user and password; the old datastore's files are copied into
    the new one (vcsim gives a loaded datastore a fresh, empty directory, where a
    restored vCenter finds its datastores as they are).
    """
    old = load(state_dir)
    if old is None:
        raise SystemExit(f"no simulator is recorded in {state_dir}")
    exe = shutil.which("vcsim")
    if exe is None:
        raise SystemExit(f"vcsim is not on PATH; build it with: {INSTALL_HINT}")
    if _alive(old.pid):
        os.killpg(old.pid, signal.SIGKILL)
        _wait_gone(old.pid, 5.0)
    argv = [exe, "-l", old.server, "-load", str(saved), "-username", old.user, "-password", old.password]
    log = (state_dir / "vcsim.log").open("a")
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "GOVC_URL=" not in line:
        proc.kill()
        raise SystemExit(f"vcsim -load did not start: {line!r}; see {state_dir / 'vcsim.log'}")
    from pyVim.connect import Disconnect

    try:
        si = _connect(old.host, old.port, old.password, deadline)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    try:
        content = si.RetrieveContent()
        dc = next(e for e in content.rootFolder.childEntity if e.name == DATACENTER)
        datastore = next(d for d in dc.datastore if d.name == DATASTORE)
        new_dir = datastore.summary.url.removeprefix("ds://")
    finally:
        Disconnect(si)
    if Path(old.datastore_dir).is_dir():
        shutil.copytree(old.datastore_dir, new_dir, dirs_exist_ok=True)
        _remove_model_dir(Path(old.datastore_dir))
    sim = Vcsim(
        pid=proc.pid,
        host=old.host,
        port=old.port,
        user=old.user,
        password=old.password,
        datastore_dir=new_dir,
    )
    (state_dir / "vcsim.json").write_text(json.dumps(asdict(sim)))
    return sim


def _remove_model_dir(datastore_dir: Path) -> None:
    """Remove a dead simulator's files: its ``govcsim-*`` home, or just the datastore."""
    home = datastore_dir.parent
    shutil.rmtree(home if home.name.startswith("govcsim-") else datastore_dir, ignore_errors=True)


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(state_dir: Path) -> bool:
    """Stop the simulator recorded in ``state_dir``; True if one was running."""
    state = state_dir / "vcsim.json"
    if not state.exists():
        return False
    sim = Vcsim(**json.loads(state.read_text()))
    state.unlink()
    try:
        os.killpg(sim.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(200):  # lks-vcsim removes its VMs' containers when it stops
        if not _alive(sim.pid):
            break
        time.sleep(0.1)
    else:
        os.killpg(sim.pid, signal.SIGKILL)
    shutil.rmtree(sim.datastore_dir, ignore_errors=True)
    return True


def report_guest_ips(sim: Vcsim, folder: str, network: str = "192.0.2") -> dict[str, str]:
    """Give every VM in ``folder`` a guest IP, as VMware Tools in a booted guest would report it.

    vcsim runs no guest: its ``SET.guest.ipAddress`` extraConfig key sets
    ``guest.ipAddress``, which the provider reads into ``guest_ip_addresses``.
    """
    from pyVim.connect import Disconnect
    from pyVmomi import vim

    si = sim.connect()
    try:
        content = si.RetrieveContent()
        node = content.searchIndex.FindByInventoryPath(f"{DATACENTER}/vm/{folder}")
        if node is None:
            raise SystemExit(f"no VM folder {folder!r} in {DATACENTER}")
        vms = sorted((v for v in node.childEntity if isinstance(v, vim.VirtualMachine)), key=lambda v: v.name)
        ips = {}
        for index, vm in enumerate(vms):
            ip = f"{network}.{10 + index}"
            option = vim.option.OptionValue(key="SET.guest.ipAddress", value=ip)
            task = vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=[option]))
            while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
                time.sleep(0.05)
            ips[vm.name] = ip
        return ips
    finally:
        Disconnect(si)


def load(state_dir: Path) -> Vcsim | None:
    """The simulator recorded in ``state_dir``, if any."""
    state = state_dir / "vcsim.json"
    return Vcsim(**json.loads(state.read_text())) if state.exists() else None


def _alive(pid: int) -> bool:
    """Whether pid runs; reaps it first when it is our exited child (a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another process): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    """CLI: ``start`` prints shell exports for govc; ``stop`` ends the simulator."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop", "status", "guest-ips", "save", "restart"])
    parser.add_argument("--state-dir", type=Path, default=Path(".e2e/vcsim"))
    parser.add_argument("--folder", help="guest-ips: the VM folder below the datacenter's VM root")
    parser.add_argument("--to", type=Path, help="save: the directory for govc object.save")
    parser.add_argument("--from", dest="source", type=Path, help="restart: a directory made by save")
    args = parser.parse_args()
    if args.action == "save":
        sim = load(args.state_dir)
        if sim is None or not args.to:
            parser.error("save needs a running simulator and --to")
        save(sim, args.to)
        print(f"inventory saved to {args.to}")
        return 0
    if args.action == "restart":
        if not args.source:
            parser.error("restart needs --from")
        sim = restart(args.state_dir, args.source)
        print(f"vcsim {sim.pid} on {sim.server}, loaded from {args.source}")
        return 0
    if args.action == "guest-ips":
        sim = load(args.state_dir)
        if sim is None or not args.folder:
            parser.error("guest-ips needs a running simulator and --folder")
        for name, ip in report_guest_ips(sim, args.folder).items():
            print(f"{name} {ip}")
        return 0
    if args.action == "stop":
        print("vcsim stopped" if stop(args.state_dir) else "no vcsim was running")
        return 0
    if args.action == "status":
        sim = load(args.state_dir)
        if sim is None or not _alive(sim.pid):
            print("no vcsim is running")
            return 1
        print(f"vcsim {sim.pid} on {sim.server}")
        return 0
    if load(args.state_dir) is not None:
        stop(args.state_dir)
    sim = start(args.state_dir)
    print(f"export VCSIM_PID={sim.pid} VCSIM_SERVER={sim.server} VCSIM_DATASTORE_DIR={sim.datastore_dir}")
    print(f"export GOVC_URL=https://{sim.host}:{sim.port}/sdk GOVC_USERNAME={sim.user} GOVC_INSECURE=1")
    print(f"# the password is in {args.state_dir / 'vcsim.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
