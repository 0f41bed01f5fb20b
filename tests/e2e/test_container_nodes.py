"""Swarm nodes as container-backed VMs in the simulator: the foundation of issue 8's tests.

Each VM named ``lks-node-*`` is backed by a container of the node double image
(``scripts/node-image.sh``): a real dockerd, a real sshd and our real guest scripts,
fed from the VM's guestinfo through vcsim's ``VMX_GUESTINFO_*`` variables. The
mapping VM name -> image lives in ``lks-vcsim`` (tools/vcsim/cmd/lks-vcsim), outside
the program. The test starts (and stops) its own dockerd (``scripts/docker-engine.sh``,
unless one already runs for ``.e2e/docker``), bridge network and simulator.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect
from pyVmomi import vim

from linuxkit_swarm.guestinfo import NodeUserdata, extra_config

from .conftest import vcsim_script, wait_task
from .containers import CONTAINER_FLAGS, TIMINGS, Engine, Node, need, power_off, wait_for

IMAGE_IDENTITY = "e2e-container-nodes-1"


def _create_vm(vc: Any, name: str, userdata: NodeUserdata) -> Any:
    dc = vc.searchIndex.FindByInventoryPath(vcsim_script.DATACENTER)
    pool = vc.searchIndex.FindByInventoryPath(f"{vcsim_script.DATACENTER}/host/{vcsim_script.RESOURCE_POOL}")
    config = extra_config(userdata, IMAGE_IDENTITY)
    options = [vim.option.OptionValue(key=k, value=v) for k, v in config.items()]
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId="other5xLinux64Guest",
        numCPUs=1,
        memoryMB=512,
        files=vim.vm.FileInfo(vmPathName=f"[{vcsim_script.DATASTORE}]"),
        extraConfig=options,
    )
    return wait_task(dc.vmFolder.CreateVM_Task(config=spec, pool=pool))


def test_two_container_vms_form_a_swarm(
    container_sim: vcsim_script.Vcsim, engine: Engine, network: str, node_image: str, tmp_path: Path
) -> None:
    need("ssh", "apt-get install -y openssh-client")
    need("ssh-keygen", "apt-get install -y openssh-client")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text().strip()

    si = container_sim.connect()
    vms: list[Any] = []
    try:
        vc = si.RetrieveContent()
        manager = NodeUserdata("lks-node-0", "manager", [public], None, None)
        vms.append(_create_vm(vc, "lks-node-0", manager))
        node0 = Node(vms[0], engine, network, key)
        # lks-vcsim added the container keys at creation; the VM's own keys are untouched.
        keys = {o.key: o.value for o in node0.vm.config.extraConfig}
        assert keys["RUN.network"] == network
        assert keys["RUN.container"] == f"{CONTAINER_FLAGS} {node_image}"
        assert keys["guestinfo.linuxkit-swarm.image"] == IMAGE_IDENTITY

        TIMINGS["power-on to guest IP s (node 0)"] = node0.power_on()
        _check_guest(node0, engine, network, public, "manager")

        # Bootstrap by hand (issue 8 makes this swarm-join's job), then the worker
        # joins by itself: our real swarm-join, with the token from its guestinfo.
        started = time.monotonic()
        node0.ssh(f"docker swarm init --advertise-addr {node0.ip}")
        token = node0.ssh("docker swarm join-token -q worker").stdout.strip()
        worker = NodeUserdata("lks-node-1", "worker", [public], f"{node0.ip}:2377", token)
        vms.append(_create_vm(vc, "lks-node-1", worker))
        node1 = Node(vms[1], engine, network, key)
        TIMINGS["power-on to guest IP s (node 1)"] = node1.power_on()
        _check_guest(node1, engine, network, public, "worker")

        def both_ready() -> bool:
            out = node0.ssh("docker node ls --format '{{.Hostname}} {{.Status}}'", check=False).stdout
            return set(out.splitlines()) == {"lks-node-0 Ready", "lks-node-1 Ready"}

        wait_for("both nodes Ready in `docker node ls`", both_ready, 120)
        TIMINGS["swarm init to both Ready s"] = time.monotonic() - started
        log = node1.ssh("cat /var/log/lks/swarm-join.log").stdout
        assert "joined the swarm as a worker via" in log, log
        assert token not in log
        assert node1.swarm_state() == "active"

        # Power off = `docker stop` of the container (the guest's services end cleanly),
        # power on = `docker start` of the same container: its /var/lib/docker (the
        # swarm state) survives, as on the data disk, and the node comes back by itself.
        started = time.monotonic()
        power_off(node1.vm)
        TIMINGS["power off s (node 1)"] = time.monotonic() - started
        assert not node1.container()["State"]["Running"]

        def node1_down() -> bool:
            out = node0.ssh("docker node ls --format '{{.Hostname}} {{.Status}}'", check=False).stdout
            return "lks-node-1 Down" in out.splitlines()

        wait_for("the manager to see node 1 Down", node1_down, 60)
        TIMINGS["power off to Down on the manager s (node 1)"] = time.monotonic() - started
        TIMINGS["power-on to guest IP s (node 1 again)"] = node1.power_on()
        started = time.monotonic()
        wait_for("node 1 Ready again after its power cycle", both_ready, 120)
        TIMINGS["power-on to Ready again s (node 1)"] = time.monotonic() - started
        wait_for(
            "node 1's swarm-join to leave the node alone",
            lambda: "already in a swarm" in node1.ssh("cat /var/log/lks/swarm-join.log").stdout,
            60,
        )
    finally:
        for vm in vms:
            try:
                power_off(vm)
                wait_task(vm.Destroy_Task())
            except Exception as err:  # cleanup goes on; the fixtures remove the rest
                print(f"cleanup of {vm.name}: {err}")
        Disconnect(si)
        print("timings: " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def _check_guest(node: Node, engine: Engine, network: str, public: str, role: str) -> None:
    """Guest IP = container IP; the VM's guestinfo reached the guest; its dockerd answers."""
    detail = node.container()
    assert detail["State"]["Running"]
    assert node.ip == detail["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert [n.ipAddress[0] for n in node.vm.guest.net] == [node.ip]
    assert node.vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn

    wait_for(f"{node.name}'s sshd and dockerd", node.swarm_state, 90)
    assert node.ssh("hostname").stdout.strip() == node.name
    assert node.ssh("cat /run/config/swarm/role").stdout == role + "\n"
    assert node.ssh("cat /run/config/ssh/authorized_keys").stdout == public + "\n"
    rpc = node.ssh("vmware-rpctool 'info-get guestinfo.linuxkit-swarm.image'").stdout
    assert rpc.strip() == IMAGE_IDENTITY
