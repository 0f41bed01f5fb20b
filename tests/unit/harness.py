"""Run the real ``__main__.py`` under Pulumi mocks and record what it registers.

The mock monitor records every RegisterResource request (type, name, parent,
options, raw inputs with secret markers), and the exports with their
secretness, so tests can assert on the resource graph without an engine.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from operations.inventory import DeployedNode

PROJECT_DIR = Path(__file__).resolve().parents[2]
MAIN = PROJECT_DIR / "__main__.py"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
FOLDER_TYPE = "vsphere:index/folder:Folder"
COMMAND_TYPE = "command:local:Command"
REMOTE_COMMAND_TYPE = "command:remote:Command"
# What the mocked swarm steps print: the host key and the join tokens (as secrets go,
# recognisable so tests can look for them where they must not be).
HOST_KEY_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-host-key\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY_PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1vY2staG9zdC1rZXk"
WORKER_TOKEN = "SWMTKN-1-mock-worker-token"
MANAGER_TOKEN = "SWMTKN-1-mock-manager-token"
ADVERTISE = "192.0.2.10:2377"
DEFAULT_SECRET_KEYS = ("vsphere:password", "linuxkit-swarm:swarmJoinToken")


@dataclass
class Registration:
    """One RegisterResource request as the engine would see it."""

    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    raw: dict[str, Any]
    request: Any

    def is_secret(self, prop: str) -> bool:
        """Whether the program sent ``prop`` as a secret."""
        value = self.raw.get(prop)
        return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that keeps every request."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.invokes: list[str] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object)
            inputs = _unwrap_secrets(rpc.deserialize_properties(request.object))
            self.registrations.append(
                Registration(request.type, request.name, response.urn, request.parent, inputs, raw, request)
            )
        return response

    def Invoke(self, request: Any) -> Any:
        self.invokes.append(request.tok)
        return super().Invoke(request)


def _unwrap_secrets(value: Any) -> Any:
    """Plain values for assertions; ``Registration.raw`` keeps the secret markers."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value["value"])
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


class SiteMocks(pulumi.runtime.Mocks):
    """Echo inputs back; invokes answer like a small vSphere site."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == VM_TYPE:
            # The guest reports addresses only for some VMs, as in real life, and the
            # provider's default_ip_address may be docker0's: the program must not use it.
            outputs["defaultIpAddress"] = "172.17.0.1"
            outputs["guestIpAddresses"] = (
                [] if args.name.endswith("-2") else ["172.17.0.1", f"192.0.2.{len(args.name)}", "fe80::1"]
            )
        if args.typ == COMMAND_TYPE and args.name.endswith("-ssh-host-key"):
            outputs["stdout"] = json.dumps({"private": HOST_KEY_PRIVATE, "public": HOST_KEY_PUBLIC})
        if args.typ == REMOTE_COMMAND_TYPE:
            tokens = {"worker": WORKER_TOKEN, "manager": MANAGER_TOKEN, "address": ADVERTISE}
            outputs["stdout"] = json.dumps(tokens)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        kind = args.token.rsplit(":", 1)[-1]
        return {"id": f"{kind}-{args.args.get('name', '')}", **args.args}, []


class RecordingCallbacks:
    """Stands in for the engine's callback server, which mocks do not start: keeps the hooks."""

    def __init__(self) -> None:
        self.hooks: dict[str, Any] = {}

    def register_resource_hook(self, hook: Any) -> None:
        self.hooks[hook.name] = hook


@dataclass
class ProgramRun:
    """What one run of the program registered and exported."""

    registrations: list[Registration]
    invokes: list[str]
    exports: dict[str, Any] = field(default_factory=dict)
    secret_exports: set[str] = field(default_factory=set)
    callbacks: RecordingCallbacks = field(default_factory=RecordingCallbacks)

    def of_type(self, typ: str) -> list[Registration]:
        """Registrations of one resource type, in order."""
        return [r for r in self.registrations if r.type == typ]

    def one(self, typ: str, name: str) -> Registration:
        """The registration of ``typ`` named ``name``."""
        found = [r for r in self.registrations if r.type == typ and r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, got {len(found)}"
        return found[0]

    def vms(self) -> dict[str, Registration]:
        """VM registrations by VM name."""
        return {r.inputs["name"]: r for r in self.of_type(VM_TYPE)}

    def all_command_lines(self) -> Iterator[str]:
        """Every create/update/delete line of every local.Command."""
        for reg in self.of_type(COMMAND_TYPE):
            for key in ("create", "update", "delete"):
                if reg.inputs.get(key):
                    yield str(reg.inputs[key])


def config_map(project: Mapping[str, Any], vsphere: Mapping[str, Any]) -> dict[str, str]:
    """Namespace keys and encode objects as JSON, the way Pulumi passes config."""
    merged = {f"linuxkit-swarm:{k}": v for k, v in project.items()}
    merged.update({f"vsphere:{k}": v for k, v in vsphere.items()})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in merged.items()}


def run_program(
    project: Mapping[str, Any],
    vsphere: Mapping[str, Any],
    secret_keys: Sequence[str] = DEFAULT_SECRET_KEYS,
    *,
    preview: bool = False,
    deployed: Sequence[DeployedNode] = (),
) -> ProgramRun:
    """Run ``__main__.py`` once under fresh mocks; raise what the program raises.

    ``deployed`` stands in for vCenter's answer: the VMs that run already.
    """
    run = _new_run(project, vsphere, secret_keys, preview)
    _execute(run, deployed)
    return run


def run_program_failing(
    project: Mapping[str, Any],
    vsphere: Mapping[str, Any],
    secret_keys: Sequence[str] = DEFAULT_SECRET_KEYS,
    deployed: Sequence[DeployedNode] = (),
) -> tuple[BaseException, ProgramRun]:
    """Run a program that must fail; return the error and what got registered anyway."""
    run = _new_run(project, vsphere, secret_keys, preview=True)
    try:
        _execute(run, deployed)
    except Exception as exc:
        return exc, run
    raise AssertionError("the program ran without error")


def _new_run(
    project: Mapping[str, Any], vsphere: Mapping[str, Any], secret_keys: Sequence[str], preview: bool
) -> ProgramRun:
    monitor = RecordingMonitor(SiteMocks())
    pulumi.runtime.set_mocks(
        SiteMocks(), project="linuxkit-swarm", stack="dev", preview=preview, monitor=monitor
    )
    pulumi.runtime.set_all_config(config_map(project, vsphere), list(secret_keys))
    return ProgramRun(monitor.registrations, monitor.invokes)


def deployed_node(name: str, role: str, image: str = "old-image") -> DeployedNode:
    """A running VM as the inventory reports it."""
    return DeployedNode(name, role, image, True, (f"192.0.2.{len(name)}",))


def _execute(run: ProgramRun, deployed: Sequence[DeployedNode] = ()) -> None:
    exported: dict[str, Any] = {}

    async def collect() -> None:
        for key, value in exported.items():
            output = pulumi.Output.from_input(value)
            run.exports[key] = await output.future()
            if await output.is_secret():
                run.secret_exports.add(key)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> Any:
        runpy.run_path(str(MAIN), run_name="__main__")
        return asyncio.ensure_future(collect())

    async def callbacks() -> RecordingCallbacks:
        return run.callbacks

    with (
        mock.patch.object(pulumi, "export", side_effect=exported.__setitem__),
        mock.patch("pulumi.runtime.resource._get_callbacks", callbacks),
        # The only vCenter query of the program itself: what runs now.
        mock.patch("operations.inventory.deployed_nodes", return_value={n.name: n for n in deployed}),
        # And whether the ISO is in the datastore (a missing one is pushed again).
        mock.patch("operations.isotool.iso_in_datastore", return_value=True),
    ):
        program()
