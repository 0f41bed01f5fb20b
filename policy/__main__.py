"""linuxkit-swarm's policy pack: wiring of ``policy.rules`` into pulumi_policy.

Run by Pulumi's Python language host in ``policy/.venv``:
``pulumi preview --policy-pack policy``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)

# The language host puts policy/ first on sys.path; the rules are the `policy`
# package of the project (as the unit tests and mypy see them) and use its
# `linuxkit_swarm` constants.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policy import rules

ResourceCheck = Callable[[rules.Resource, Mapping[str, Any]], list[str]]
StackCheck = Callable[[Sequence[rules.Resource]], list[str]]

# URN -> property paths that carried a secret marker. pulumi_policy strips the
# markers from what `validate` sees; only the remediation pass, which the engine
# runs on each resource just before the validation pass, hands them over.
_secret_paths: dict[str, frozenset[rules.PropertyPath]] = {}


def _raw(value: Any) -> Any:
    """The value behind pulumi_policy's proxies of one level (they reveal it under ``"__target"``)."""
    while isinstance(value, Mapping | Sequence) and not isinstance(value, dict | list | str):
        value = value["__target"]  # type: ignore[call-overload]  # the proxies' own key
    return value


def _plain(value: Any) -> Any:
    """Plain dicts, lists and scalars (unknowns stay Pulumi's marker strings) for ``rules``."""
    value = _raw(value.value if isinstance(value, Secret) else value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _walk_secrets(value: Any, path: rules.PropertyPath) -> Iterator[rules.PropertyPath]:
    if isinstance(value, Secret):
        yield path
        value = value.value
    value = _raw(value)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_secrets(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_secrets(item, (*path, index))


def _record_secret_paths(args: ResourceValidationArgs) -> None:
    """Remediation that changes nothing: it notes where the secrets are for ``validate``."""
    _secret_paths[args.urn] = frozenset(_walk_secrets(args.props, ()))


def _stack() -> rules.StackSettings:
    """The program's keys from the stack config (pulumi_policy loads it before each call)."""
    keys = (rules.ENVIRONMENT_KEY, rules.ALLOW_DATA_LOSS_KEY)
    return rules.stack_settings({k: v for k in keys if (v := pulumi.runtime.get_config(k)) is not None})


def _resource(args: ResourceValidationArgs) -> rules.Resource:
    return rules.Resource(
        type=args.resource_type,
        urn=args.urn,
        props=_plain(args.props),
        protect=bool(args.opts.protect),
        secret_outputs=tuple(args.opts.additional_secret_outputs),
        secret_paths=_secret_paths.get(args.urn),
    )


def _resource_policy(
    info: rules.PolicyInfo,
    check: ResourceCheck,
    *,
    level: EnforcementLevel | None = None,
    config_schema: PolicyConfigSchema | None = None,
    remediate: Callable[[ResourceValidationArgs], None] | None = None,
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(_resource(args), args.get_config()):
            report_violation(message, args.urn)

    return ResourceValidationPolicy(
        name=info.name,
        description=info.description,
        validate=validate,
        remediate=remediate,
        enforcement_level=level or _level(info),
        config_schema=config_schema,
    )


def _stack_policy(info: rules.PolicyInfo, check: StackCheck) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [
            rules.Resource(
                type=r.resource_type,
                urn=r.urn,
                props=_plain(r.props),
                protect=bool(r.opts.protect),
                property_dependencies={
                    k: tuple(d.urn for d in v) for k, v in r.property_dependencies.items()
                },
            )
            for r in args.resources
        ]
        for message in check(resources):
            report_violation(message)

    return StackValidationPolicy(
        name=info.name, description=info.description, validate=validate, enforcement_level=_level(info)
    )


def _level(info: rules.PolicyInfo) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if info.mandatory else EnforcementLevel.ADVISORY


PolicyPack(
    name="linuxkit-swarm",
    policies=[
        # 'remediate' runs the marker-reading pass first; its violations still count as mandatory.
        _resource_policy(
            rules.SECRETS,
            lambda r, _: rules.plaintext_secrets(r),
            level=EnforcementLevel.REMEDIATE,
            remediate=_record_secret_paths,
        ),
        _resource_policy(rules.DATA_DISK, lambda r, _: rules.missing_data_disk(r)),
        _resource_policy(rules.CONTENT_ADDRESSED_ISO, lambda r, _: rules.foreign_iso(r)),
        _resource_policy(rules.PROTECTED, lambda r, _: rules.unprotected_vm(r, _stack())),
        _stack_policy(rules.ODD_MANAGERS, rules.even_manager_count),
        _resource_policy(rules.VERIFIED_TLS, lambda r, _: rules.unverified_tls(r, _stack())),
        _resource_policy(
            rules.VM_SIZE,
            lambda r, config: rules.vm_size_out_of_bounds(r, rules.size_bounds(config)),
            config_schema=PolicyConfigSchema(properties={k: dict(v) for k, v in rules.SIZE_SCHEMA.items()}),
        ),
        _stack_policy(rules.ANTI_AFFINITY, rules.managers_not_spread),
        _resource_policy(rules.INSECURE_CONSOLE, lambda r, _: rules.insecure_console(r, _stack())),
    ],
)
