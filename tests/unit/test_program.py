"""The whole program under Pulumi mocks: resource graph, properties, secrets, outputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from linuxkit_swarm import guestinfo, iso_steps
from tests.unit.conftest import PASSWORD, TOKEN
from tests.unit.harness import COMMAND_TYPE, FOLDER_TYPE, VM_TYPE, ProgramRun, run_program

SECRET_FORMS = (PASSWORD, quote(PASSWORD, safe=""), TOKEN)


@pytest.fixture
def dev(project: dict[str, Any], vsphere: dict[str, Any]) -> ProgramRun:
    return run_program(project, vsphere)


def test_dev_stack_registers_the_expected_graph(dev: ProgramRun) -> None:
    counts = {t: len(dev.of_type(t)) for t in (FOLDER_TYPE, VM_TYPE, COMMAND_TYPE)}
    assert counts == {FOLDER_TYPE: 2, VM_TYPE: 3, COMMAND_TYPE: 2}
    components = {r.type: r for r in dev.registrations if r.type.startswith("linuxkit-swarm:")}
    assert set(components) == {
        "linuxkit-swarm:image:LinuxKitImage",
        "linuxkit-swarm:swarm:SwarmFolders",
        "linuxkit-swarm:swarm:SwarmNodePool",
    }
    # Lookups happen once per component, not once per VM.
    assert sorted(dev.invokes) == sorted(
        f"vsphere:index/{n}:{n}"
        for n in ("getDatacenter", "getDatacenter", "getDatastore", "getResourcePool", "getNetwork")
    )


def test_children_are_parented_to_their_component(dev: ProgramRun) -> None:
    urn = {r.type: r.urn for r in dev.registrations}
    for reg in dev.of_type(FOLDER_TYPE):
        assert reg.parent == urn["linuxkit-swarm:swarm:SwarmFolders"]
        # Folders were children of the workers pool before managers existed: no re-create.
        (alias,) = reg.request.aliases
        assert alias.spec.parentUrn.endswith("::linuxkit-swarm:swarm:SwarmNodePool::workers")
    for reg in dev.of_type(VM_TYPE):
        assert reg.parent == urn["linuxkit-swarm:swarm:SwarmNodePool"]
    for reg in dev.of_type(COMMAND_TYPE):
        assert reg.parent == urn["linuxkit-swarm:image:LinuxKitImage"]


def test_one_folder_per_segment_below_the_parent(dev: ProgramRun) -> None:
    folders = dev.of_type(FOLDER_TYPE)
    assert [f.inputs["path"] for f in folders] == ["TERRAFORM/Linux", "TERRAFORM/Linux/linuxkit-dev"]
    assert {f.inputs["type"] for f in folders} == {"vm"}
    assert {f.inputs["datacenterId"] for f in folders} == {"getDatacenter-Spittal"}
    # The deeper folder waits for its parent.
    assert folders[0].urn in folders[1].request.dependencies
    # Each folder runs the existing-folder guard before it is created, at preview too.
    (guard,) = dev.callbacks.hooks.values()
    assert guard.opts.on_dry_run is True
    for folder in folders:
        assert list(folder.request.hooks.before_create) == [guard.name]


def test_vm_properties(dev: ProgramRun) -> None:
    vms = dev.vms()
    assert sorted(vms) == ["tf-sw-0", "tf-sw-1", "tf-sw-2"]
    push = dev.one(COMMAND_TYPE, "os-image-push")
    for name, vm in vms.items():
        i = vm.inputs
        assert vm.name == f"workers-{name}"
        assert (i["numCpus"], i["memory"], i["guestId"]) == (2, 1024, "other5xLinux64Guest")
        assert i["folder"] == "TERRAFORM/Linux/linuxkit-dev"
        assert i["resourcePoolId"] == "getResourcePool-Cluster/Resources"
        assert i["datastoreId"] == "getDatastore-datastore1"
        assert i["networkInterfaces"] == [{"networkId": "getNetwork-VM Network", "adapterType": "vmxnet3"}]
        assert i["cdroms"] == [
            {"datastoreId": "getDatastore-datastore1", "path": dev.exports["isoDatastorePath"]}
        ]
        assert i["disks"] == [{"label": "data", "size": 10, "thinProvisioned": True, "unitNumber": 0}]
        assert i["scsiType"] == "pvscsi"
        assert i["waitForGuestNetTimeout"] == 5 and i["waitForGuestIpTimeout"] == 0
        assert "172.17.0.0/16" in i["ignoredGuestIps"] and "172.18.0.0/16" in i["ignoredGuestIps"]
        assert i["waitForGuestNetRoutable"] is False
        assert (i["shutdownWaitTimeout"], i["forcePowerOff"]) == (3, True)
        assert i["extraConfig"]["bios.bootOrder"] == "cdrom,hdd"
        # The provider no longer reports eptRviMode/hvMode diffs: nothing of it is ignored,
        # only the power-on marker, which the program sets when it finds a VM off.
        assert list(vm.request.ignoreChanges) == ['extraConfig["linuxkit-swarm.powerOn"]']
        assert vm.request.deleteBeforeReplace is True
        # The ISO path is an Output of the push: the VM waits for the ISO without depends_on.
        assert push.urn in vm.request.dependencies
        assert push.urn in vm.request.propertyDependencies["cdroms"].urns


def test_guestinfo_decodes_to_each_nodes_settings(dev: ProgramRun, project: dict[str, Any]) -> None:
    for name, vm in dev.vms().items():
        config = vm.inputs["extraConfig"]
        assert config[guestinfo.ENCODING_KEY] == "base64"
        assert config[guestinfo.IMAGE_KEY] == dev.exports["imageHash"]
        doc = guestinfo.decode_userdata(config[guestinfo.USERDATA_KEY])
        assert doc["hostname"]["content"] == f"{name}\n"
        swarm = doc["swarm"]["entries"]
        assert swarm["role"]["content"] == "worker\n"
        assert swarm["manager_address"]["content"] == "10.1.2.3:2377\n"
        assert swarm["join_token"]["content"] == f"{TOKEN}\n"
        assert doc["ssh"]["entries"]["authorized_keys"]["content"] == project["sshAuthorizedKeys"][0] + "\n"


def test_outputs_match_the_interface(dev: ProgramRun) -> None:
    exports = dev.exports
    assert set(exports) >= {"imageHash", "isoDatastorePath", "folderPath", "workerNames", "workerIps"}
    assert len(exports["imageHash"]) == 64
    assert exports["isoDatastorePath"] == f"linuxkit/docker-{exports['imageHash'][:12]}.iso"
    assert exports["folderPath"] == "TERRAFORM/Linux/linuxkit-dev"
    assert exports["workerNames"] == ["tf-sw-0", "tf-sw-1", "tf-sw-2"]
    # The mock guest of tf-sw-2 reports no address yet: "" rather than a missing key.
    assert exports["workerIps"] == {"tf-sw-0": "192.0.2.15", "tf-sw-1": "192.0.2.15", "tf-sw-2": ""}
    assert exports["imageSource"] == "built by linuxkit from swarm-node.yml"
    # Joining an existing swarm: no managers of its own, the configured address and token.
    assert exports["managerNames"] == [] and exports["managerIps"] == {}
    assert exports["swarmAdvertiseAddress"] == "10.1.2.3:2377"
    assert exports["workerJoinCommand"] == f"docker swarm join --token {TOKEN} 10.1.2.3:2377"
    assert dev.secret_exports == {"workerJoinCommand"}


def test_secrets_stay_secret(dev: ProgramRun) -> None:
    for vm in dev.vms().values():
        assert vm.is_secret("extraConfig")
    push = dev.one(COMMAND_TYPE, "os-image-push")
    vcurl = push.raw["environment"]["VCURL"]
    assert isinstance(vcurl, dict) and "4dabf18193072939515e22adb298388d" in vcurl


def test_no_secret_outside_secret_values(dev: ProgramRun) -> None:
    for reg in dev.registrations:
        for where, text in _plain_strings(reg.raw):
            for secret in SECRET_FORMS:
                assert secret not in text, f"{reg.name}.{where} carries a secret in plain text"
    for line in dev.all_command_lines():
        for secret in SECRET_FORMS:
            assert secret not in line


def test_without_token_guestinfo_is_reviewable(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    del project["swarmManagerAddress"], project["swarmJoinToken"]
    run = run_program(project, vsphere)
    for vm in run.vms().values():
        assert not vm.is_secret("extraConfig")
        assert "swarm" in guestinfo.decode_userdata(vm.inputs["extraConfig"][guestinfo.USERDATA_KEY])


def test_commands_rerun_only_when_identity_changes(dev: ProgramRun) -> None:
    build = dev.one(COMMAND_TYPE, "os-image-build")
    push = dev.one(COMMAND_TYPE, "os-image-push")
    identity = dev.exports["imageHash"]
    assert build.inputs["triggers"] == [identity]
    assert push.inputs["triggers"][0] == identity
    for cmd in (build, push):
        assert "triggers" in cmd.request.replaceOnChanges
    assert build.inputs["update"] == iso_steps.NOOP_UPDATE
    assert push.inputs["update"].endswith("--if-missing --insecure")  # uploads only what is missing
    assert build.urn in push.request.dependencies
    assert "docker-" + identity[:12] in build.inputs["create"]
    assert build.inputs["stdin"].startswith("# linuxkit-swarm") or "kernel:" in build.inputs["stdin"]
    assert push.inputs["delete"] == iso_steps.delete_command_line(
        "Spittal", "datastore1", dev.exports["isoDatastorePath"], insecure=True
    )


def test_same_inputs_give_same_identity_and_vms(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    first, second = run_program(project, vsphere), run_program(project, vsphere)
    assert first.exports["imageHash"] == second.exports["imageHash"]
    for name, vm in first.vms().items():
        assert vm.inputs == second.vms()[name].inputs


def test_image_change_moves_cdrom_in_place(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    before = run_program(project, vsphere)
    project["dockerDaemon"] = {"debug": True}
    after = run_program(project, vsphere)
    assert before.exports["imageHash"] != after.exports["imageHash"]
    assert before.exports["isoDatastorePath"] != after.exports["isoDatastorePath"]
    for name, old in before.vms().items():
        new = after.vms()[name]
        changed = {k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)}
        # CD-ROM path and extra_config are in-place updates (extra_config reboots
        # the VM into the new ISO); the data disk and everything else stay.
        assert changed == {"cdroms", "extraConfig"}
        assert new.inputs["cdroms"][0]["path"] == after.exports["isoDatastorePath"]
        assert new.name == old.name


def test_count_and_name_prefix(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    project["workers"] = {"count": 2, "namePrefix": "swarm-w-", "cpus": 4, "memoryMb": 2048, "dataDiskGb": 40}
    run = run_program(project, vsphere)
    assert sorted(run.vms()) == ["swarm-w-0", "swarm-w-1"]
    assert run.exports["workerNames"] == ["swarm-w-0", "swarm-w-1"]
    vm = run.vms()["swarm-w-1"].inputs
    assert (vm["numCpus"], vm["memory"], vm["disks"][0]["size"]) == (4, 2048, 40)


def test_scaling_keeps_existing_vm_resource_names(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    project["workers"] = {"count": 5, "namePrefix": "w-"}
    five = {r.name for r in run_program(project, vsphere).of_type(VM_TYPE)}
    project["workers"] = {"count": 2, "namePrefix": "w-"}
    two = {r.name for r in run_program(project, vsphere).of_type(VM_TYPE)}
    assert two < five and two == {"workers-w-0", "workers-w-1"}


def test_prebuilt_iso_skips_the_build(
    project: dict[str, Any], vsphere: dict[str, Any], tmp_path: Path
) -> None:
    iso = tmp_path / "stand-in.iso"
    iso.write_bytes(b"not really bootable")
    project["image"] = {"prebuiltIso": str(iso), "name": "swarm"}
    run = run_program(project, vsphere)
    assert [c.name for c in run.of_type(COMMAND_TYPE)] == ["os-image-push"]
    push = run.one(COMMAND_TYPE, "os-image-push")
    assert push.inputs["environment"]["LKS_SOURCE"] == str(iso)
    assert "--source" in push.inputs["create"]
    assert run.exports["isoDatastorePath"].startswith("linuxkit/swarm-")
    assert run.exports["imageSource"] == "prebuilt ISO stand-in.iso (not built by this stack)"
    iso.write_bytes(b"another build")
    assert run_program(project, vsphere).exports["imageHash"] != run.exports["imageHash"]


def test_preview_runs_the_same_program(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    run = run_program(project, vsphere, preview=True)
    assert len(run.of_type(VM_TYPE)) == 3


def _plain_strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a raw property tree, except inside secret values."""
    if isinstance(value, dict):
        if "4dabf18193072939515e22adb298388d" in value:
            return
        for key, item in value.items():
            yield from _plain_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _plain_strings(item, f"{where}[{index}]")
    elif isinstance(value, str):
        yield where, value
