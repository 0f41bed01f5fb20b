"""Record what the program registers, and replay exactly that as the floor.

A record is what the engine would see of one RegisterResource request (type,
name, parent, inputs with their secret markers, dependencies per property and in
all, and the options), or of one Invoke (token and arguments), in arrival order.
Source positions and stack traces are left out: they say where, not what.

The replay is a bare Pulumi program: one generic ``CustomResource`` or
``ComponentResource`` per record, with the recorded inputs and options, and no
logic. Its dependencies are stand-ins that resolve to the recorded URN once the
replayed resource is registered, so the SDK sends each request no earlier than
the program could, and its cycle check walks nothing (the least the SDK can do).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.resource import DependencyResource
from pulumi.runtime import rpc

STACK_TYPE = "pulumi:pulumi:Stack"


def request_record(request: Any, urn: str) -> dict[str, Any]:
    """The engine-visible content of one RegisterResource request and its URN, JSON-ready."""
    return {
        "urn": urn,
        "type": request.type,
        "name": request.name,
        "custom": request.custom,
        "parent": request.parent,
        "object": json_format.MessageToDict(request.object),
        "dependencies": sorted(request.dependencies),
        "propertyDependencies": {k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items())},
        "protect": request.protect,
        "deleteBeforeReplace": request.deleteBeforeReplace,
        "ignoreChanges": list(request.ignoreChanges),
        "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
        "replaceOnChanges": sorted(request.replaceOnChanges),
        "version": request.version,
        "aliasParents": [a.spec.parentUrn for a in request.aliases],
        "beforeCreate": list(request.hooks.before_create),
    }


def invoke_record(request: Any) -> dict[str, Any]:
    """Token and arguments of one Invoke."""
    return {"tok": request.tok, "args": json_format.MessageToDict(request.args)}


def save(
    path: Path, registrations: Sequence[Mapping[str, Any]], invokes: Sequence[Mapping[str, Any]]
) -> None:
    """Write a recording."""
    path.write_text(json.dumps({"registrations": registrations, "invokes": invokes}))


def load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read a recording written by :func:`save`."""
    data = json.loads(path.read_text())
    return data["registrations"], data["invokes"]


def differences(
    program: Sequence[Mapping[str, Any]], floor: Sequence[Mapping[str, Any]], limit: int = 5
) -> list[str]:
    """Why two recordings differ (count, names, then content), empty when they register the same."""
    problems: list[str] = []
    if len(program) != len(floor):
        problems.append(f"{len(program)} registrations in the program, {len(floor)} in the floor")
    by_key = {(r["type"], r["name"]): r for r in floor}
    mine = {(r["type"], r["name"]): r for r in program}
    for key in sorted(set(mine) ^ set(by_key))[:limit]:
        problems.append(f"{key[0]} {key[1]} only in the {'program' if key in mine else 'floor'}")
    changed = [k for k in sorted(set(mine) & set(by_key)) if mine[k] != by_key[k]]
    for key in changed[:limit]:
        fields = sorted(f for f in mine[key] if mine[key][f] != by_key[key].get(f))
        problems.append(f"{key[0]} {key[1]} differs in {', '.join(fields)}")
    return problems


class _StandIns:
    """One stand-in per recorded URN: its URN resolves once that resource is registered."""

    def __init__(self) -> None:
        self.resources: dict[str, pulumi.Resource] = {}
        self._stand_ins: dict[str, pulumi.Resource] = {}

    def __call__(self, urn: str) -> pulumi.Resource:
        found = self._stand_ins.get(urn)
        if found is None:
            target = self.resources[urn].urn
            found = DependencyResource("")
            found.__dict__["urn"] = pulumi.Output({found}, target.future(), target.is_known())
            self._stand_ins[urn] = found
        return found

    def all(self, urns: Iterable[str]) -> list[pulumi.Resource]:
        return [self(u) for u in urns]


def _inputs(value: Any) -> Any:
    """Recorded struct JSON back to inputs: secret markers become secret Outputs."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return pulumi.Output.secret(_inputs(value["value"]))
        return {k: _inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_inputs(v) for v in value]
    return value


def _with_dependencies(value: Any, stand_ins: list[pulumi.Resource]) -> Any:
    """``value`` carrying ``stand_ins`` (its property dependencies) on its first leaf.

    The SDK collects a property's dependencies from every Output inside it, so one
    leaf is enough; wrapping the whole value would lift a nested secret to the top.
    """
    if isinstance(value, dict) and value:
        first = next(iter(value))
        return {**value, first: _with_dependencies(value[first], stand_ins)}
    if isinstance(value, list) and value:
        return [_with_dependencies(value[0], stand_ins), *value[1:]]
    inner = pulumi.Output.from_input(value)
    return pulumi.Output(set(stand_ins), inner.future(), inner.is_known(), inner.is_secret())


def output_names(cls: type) -> list[str]:
    """The engine names of a typed resource class's properties (inputs and outputs)."""
    return [
        name
        for prop in vars(cls).values()
        if isinstance(prop, property) and (name := getattr(prop.fget, "_pulumi_name", None))
    ]


def replay(
    registrations: Sequence[Mapping[str, Any]],
    invokes: Sequence[Mapping[str, Any]],
    hook: pulumi.ResourceHookFunction,
    typed: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Register every record in order, after the invokes; ``hook`` stands for the program's hooks.

    ``typed`` (type -> property names, :func:`output_names`) adds every property a
    typed SDK class declares, unset: such a class gets an Output for each of them
    (the VM has 91), though unset ones are not sent.
    """
    stand_ins = _StandIns()
    hooks: dict[str, pulumi.ResourceHook] = {}
    for invoke in invokes:
        pulumi.runtime.invoke(invoke["tok"], invoke["args"])
    for record in registrations:
        parent = stand_ins.resources.get(record["parent"]) if record["parent"] else None
        property_urns: set[str] = set()
        props: dict[str, Any] = {}
        for key, value in record["object"].items():
            urns = record["propertyDependencies"].get(key, [])
            property_urns.update(urns)
            props[key] = _with_dependencies(_inputs(value), stand_ins.all(urns)) if urns else _inputs(value)
        for key in (typed or {}).get(record["type"], ()):
            props.setdefault(key, None)
        explicit = [u for u in record["dependencies"] if u not in property_urns]
        binding = None
        if record["beforeCreate"]:
            for name in record["beforeCreate"]:
                hooks.setdefault(
                    name, pulumi.ResourceHook(name, hook, pulumi.ResourceHookOptions(on_dry_run=True))
                )
            binding = pulumi.ResourceHookBinding(before_create=[hooks[n] for n in record["beforeCreate"]])
        opts = pulumi.ResourceOptions(
            parent=parent,
            depends_on=stand_ins.all(explicit),
            protect=record["protect"] or None,
            delete_before_replace=record["deleteBeforeReplace"] or None,
            ignore_changes=record["ignoreChanges"] or None,
            additional_secret_outputs=record["additionalSecretOutputs"] or None,
            replace_on_changes=record["replaceOnChanges"] or None,
            version=record["version"] or None,
            aliases=[pulumi.Alias(parent=p) for p in record["aliasParents"]] or None,
            hooks=binding,
        )
        resource: pulumi.Resource
        if record["custom"]:
            resource = pulumi.CustomResource(record["type"], record["name"], props, opts)
        else:
            resource = pulumi.ComponentResource(record["type"], record["name"], props, opts)
        stand_ins.resources[record["urn"]] = resource
