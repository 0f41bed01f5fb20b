"""A pull-request summary of a `pulumi preview --json` (pure: JSON text in, markdown out).

Two input shapes are read: the preview digest that `pulumi preview --json` prints (one
object: ``steps``, ``diagnostics``, ``changeSummary``; Pulumi 3.259 leaves policy
events out of it) and the engine event stream (one event per line, as written by
``--event-log`` or printed with ``PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true``), which
also carries policy violations.

The summary holds names, types, operations and property keys only, never a property
value: the preview may hold secrets in plain text (``--show-secrets``), so values are
not even read. The one value shown is the image hash of the rollout message, which
must match a 12-digit hex pattern to be shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
DISK_TYPE = "vsphere:index/virtualDisk:VirtualDisk"
COUNTED_OPS = ("create", "update", "replace", "delete")
# The engine's sub-steps of one replacement; the digest shows only the logical
# ``replace``, the event stream shows these too. One resource counts once.
REPLACEMENT_OPS = frozenset(
    {"replace", "create-replacement", "delete-replaced", "discard-replaced", "import-replacement"}
)
ROLLOUT = re.compile(
    r"^(?P<pool>[A-Za-z0-9][A-Za-z0-9_.-]*): OS rollout to image (?P<image>[0-9a-f]{12}) "
    r"in batches: (?P<batches>\[[^\n]*\])$"
)
NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # RFC 1123 label, as config accepts
COLOR_CODE = re.compile(r"<\{%[^%]*%\}>")  # Pulumi's raw color directives
STREAMING_ENV = "PULUMI_ENABLE_STREAMING_JSON_PREVIEW"  # `preview --json` prints the event stream
MAX_MESSAGE_LINES = 12
MAX_MESSAGE_CHARS = 1200


class PreviewError(ValueError):
    """The input is not a `pulumi preview --json` document."""


@dataclass(frozen=True)
class Step:
    """One resource step: what the engine plans for it, and which keys cause it."""

    urn: str
    op: str
    replace_reasons: tuple[str, ...] = ()
    diff_reasons: tuple[str, ...] = ()
    detailed_diff: tuple[tuple[str, str], ...] = ()  # (property path, diff kind)

    @property
    def type(self) -> str:
        """The resource type token (the last one of the URN's type chain)."""
        return _urn_parts(self.urn)[2].rsplit("$", 1)[-1]

    @property
    def name(self) -> str:
        """The resource name the program gave it."""
        return _urn_parts(self.urn)[3]

    @property
    def stack(self) -> str:
        """The stack in the URN."""
        return _urn_parts(self.urn)[0].removeprefix("urn:pulumi:")


@dataclass(frozen=True)
class Diagnostic:
    """A message of the program, a provider or the engine."""

    severity: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class PolicyViolation:
    """A policy pack's finding (only in the event stream)."""

    pack: str
    policy: str
    level: str
    message: str
    urn: str = ""


@dataclass(frozen=True)
class Preview:
    """What a preview document holds, values left out."""

    steps: tuple[Step, ...]
    diagnostics: tuple[Diagnostic, ...]
    policy_violations: tuple[PolicyViolation, ...]
    change_summary: Mapping[str, int]


@dataclass(frozen=True)
class Risk:
    """A planned change that can lose a node's data disk."""

    name: str
    type: str
    op: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Rollout:
    """The batches an OS rollout takes a pool's running nodes down in."""

    pool: str
    image: str
    batches: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Summary:
    """The reviewable content of a preview."""

    stack: str
    counts: tuple[tuple[str, Mapping[str, int]], ...]  # type -> op -> count, types sorted
    same: int
    risks: tuple[Risk, ...]
    rollouts: tuple[Rollout, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    policy_violations: tuple[PolicyViolation, ...]

    @property
    def changes(self) -> int:
        """Resources that change."""
        return sum(sum(ops.values()) for _, ops in self.counts)


# --- parsing -------------------------------------------------------------------------------------


def parse(text: str) -> Preview:
    """The preview in ``text``: a digest object or an engine event stream (JSON lines)."""
    if not text.strip():
        raise PreviewError("empty input: `pulumi preview --json` printed nothing (see its stderr)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            return _parse_events(lines)
        raise PreviewError(f"not JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    if isinstance(document, dict) and "sequence" in document and "timestamp" in document:
        return _parse_events([text])
    if not isinstance(document, dict) or not {"steps", "diagnostics", "changeSummary"} & set(document):
        raise PreviewError(
            "not a `pulumi preview --json` document: expected an object with steps, diagnostics "
            "or changeSummary"
        )
    steps = tuple(_step(raw, f"steps[{i}]", "kind") for i, raw in enumerate(_list(document, "steps")))
    diagnostics = tuple(
        _diagnostic(raw, f"diagnostics[{i}]") for i, raw in enumerate(_list(document, "diagnostics"))
    )
    return Preview(
        tuple(_unique(steps)), diagnostics, (), _counts(document.get("changeSummary"), "changeSummary")
    )


def _parse_events(lines: Sequence[str]) -> Preview:
    steps: list[Step] = []
    diagnostics: list[Diagnostic] = []
    policies: list[PolicyViolation] = []
    change_summary: Mapping[str, int] = {}
    for number, line in enumerate(lines, 1):
        where = f"event line {number}"
        try:
            event = json.loads(line)
        except json.JSONDecodeError as err:
            raise PreviewError(f"{where} is not JSON: {err.msg}") from None
        if not isinstance(event, dict):
            raise PreviewError(f"{where} is not an engine event object")
        if isinstance(pre := event.get("resourcePreEvent"), dict):
            # The stream lists every resource, sames too, and a replacement's sub-steps.
            steps.append(_step(pre.get("metadata"), f"{where} resourcePreEvent.metadata", "diffKind"))
        elif isinstance(diag := event.get("diagnosticEvent"), dict):
            if not diag.get("ephemeral"):
                diagnostics.append(_diagnostic(diag, f"{where} diagnosticEvent"))
        elif isinstance(policy := event.get("policyEvent"), dict):
            policies.append(_policy(policy, f"{where} policyEvent"))
        elif isinstance(summary := event.get("summaryEvent"), dict):
            change_summary = _counts(summary.get("resourceChanges"), f"{where} summaryEvent")
    return Preview(tuple(_unique(steps)), tuple(diagnostics), tuple(policies), change_summary)


def _unique(steps: Iterable[Step]) -> list[Step]:
    """One step per resource: a replacement's sub-steps fold into ``replace``."""
    by_urn: dict[str, Step] = {}
    for step in steps:
        seen = by_urn.get(step.urn)
        if seen is None:
            by_urn[step.urn] = step
        elif step.op in REPLACEMENT_OPS or seen.op in REPLACEMENT_OPS:
            keep = step if step.op == "replace" or seen.op == "same" else seen
            by_urn[step.urn] = Step(
                keep.urn,
                "replace",
                keep.replace_reasons or seen.replace_reasons or step.replace_reasons,
                keep.diff_reasons or seen.diff_reasons or step.diff_reasons,
                keep.detailed_diff or seen.detailed_diff or step.detailed_diff,
            )
    return list(by_urn.values())


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PreviewError(f"{key} is not a list")
    return value


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PreviewError(f"{where}.{key} is not a list of property keys")
    return tuple(value)


def _step(raw: Any, where: str, kind_key: str) -> Step:
    if not isinstance(raw, dict):
        raise PreviewError(f"{where} is not an object")
    op, urn = raw.get("op"), raw.get("urn")
    if not isinstance(op, str) or not op:
        raise PreviewError(f"{where} has no op")
    if not isinstance(urn, str):
        raise PreviewError(f"{where} has no urn")
    _urn_parts(urn, where)
    diff = raw.get("detailedDiff")
    diff = {} if diff is None else diff
    if not isinstance(diff, dict):
        raise PreviewError(f"{where}.detailedDiff is not an object")
    detailed = []
    for path, entry in diff.items():
        kind = entry.get(kind_key, entry.get("kind")) if isinstance(entry, dict) else None
        if not isinstance(kind, str):
            raise PreviewError(f"{where}.detailedDiff[{path!r}] has no diff kind")
        detailed.append((path, kind))
    return Step(
        urn,
        op,
        _strings(raw, "replaceReasons", where) or _strings(raw, "keys", where),
        _strings(raw, "diffReasons", where) or _strings(raw, "diffs", where),
        tuple(sorted(detailed)),
    )


def _diagnostic(raw: Any, where: str) -> Diagnostic:
    if not isinstance(raw, dict):
        raise PreviewError(f"{where} is not an object")
    message, severity = raw.get("message", ""), raw.get("severity", "")
    if not isinstance(message, str) or not isinstance(severity, str):
        raise PreviewError(f"{where} has no message or severity")
    urn = raw.get("urn") or ""
    return Diagnostic(severity, message, urn if isinstance(urn, str) else "")


def _policy(raw: Mapping[str, Any], where: str) -> PolicyViolation:
    fields = {k: raw.get(k, "") for k in ("policyPackName", "policyName", "enforcementLevel", "message")}
    if not all(isinstance(v, str) for v in fields.values()) or not fields["policyName"]:
        raise PreviewError(f"{where} has no policy name")
    urn = raw.get("resourceUrn") or ""
    return PolicyViolation(
        fields["policyPackName"],
        fields["policyName"],
        fields["enforcementLevel"],
        fields["message"],
        urn if isinstance(urn, str) else "",
    )


def _counts(raw: Any, where: str) -> Mapping[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, int) for v in raw.values()):
        raise PreviewError(f"{where} is not a map of operation -> count")
    return dict(raw)


def _urn_parts(urn: str, where: str = "urn") -> list[str]:
    """``urn:pulumi:<stack>::<project>::<type chain>::<name>`` split in four."""
    parts = urn.split("::", 3)
    if not urn.startswith("urn:pulumi:") or len(parts) != 4:
        raise PreviewError(f"{where}: not a Pulumi URN")
    return parts


# --- summary -------------------------------------------------------------------------------------


def summarize(preview: Preview, stack: str | None = None) -> Summary:
    """Counts per type, data-loss risks, rollout batches and problems of ``preview``."""
    counts: dict[str, dict[str, int]] = {}
    for step in preview.steps:
        op = "replace" if step.op in REPLACEMENT_OPS else step.op
        if op != "same":
            ops = counts.setdefault(step.type, {})
            ops[op] = ops.get(op, 0) + 1
    same = preview.change_summary.get("same", sum(s.op == "same" for s in preview.steps))
    errors = [_clean(d.message) for d in preview.diagnostics if d.severity == "error"]
    # The engine's closing line says nothing the other errors do not.
    specific = [e for e in errors if e != "preview failed"]
    return Summary(
        stack=stack or (preview.steps[0].stack if preview.steps else ""),
        counts=tuple(sorted(counts.items())),
        same=same,
        risks=tuple(sorted(_risks(preview.steps), key=_risk_order)),
        rollouts=tuple(_rollouts(preview.diagnostics)),
        errors=tuple(specific or errors),
        warnings=tuple(_clean(d.message) for d in preview.diagnostics if d.severity == "warning"),
        policy_violations=tuple(
            sorted(preview.policy_violations, key=lambda p: (p.level != "mandatory", p.policy, p.urn))
        ),
    )


def _risks(steps: Iterable[Step]) -> Iterable[Risk]:
    for step in steps:
        if step.type not in (VM_TYPE, DISK_TYPE):
            continue
        kind = step.type.rsplit(":", 1)[-1]
        if step.op in REPLACEMENT_OPS:
            keys = [p for p, k in step.detailed_diff if k.endswith("-replace")]
            yield Risk(step.name, kind, "replace", tuple(dict.fromkeys([*step.replace_reasons, *keys])))
        elif step.op == "delete":
            yield Risk(step.name, kind, "delete", ())
        elif step.op == "update" and step.type == VM_TYPE:
            disk_keys = [f"{p}: {k}" for p, k in step.detailed_diff if _is_disks(p)]
            if not disk_keys and not step.detailed_diff:
                disk_keys = [r for r in step.diff_reasons if _is_disks(r)]
            if disk_keys:
                yield Risk(step.name, kind, "update", tuple(disk_keys))


def _is_disks(path: str) -> bool:
    return path == "disks" or path.startswith(("disks[", "disks."))


def _risk_order(risk: Risk) -> tuple[int, str]:
    return (("delete", "replace", "update").index(risk.op), risk.name)


def _rollouts(diagnostics: Iterable[Diagnostic]) -> Iterable[Rollout]:
    seen = set()
    for diag in diagnostics:
        if diag.severity != "info":
            continue
        match = ROLLOUT.match(diag.message.strip())
        if not match:
            continue
        batches = tuple(
            tuple(n.strip() for n in batch.split(","))
            for batch in re.findall(r"\[([^\]]*)\]", match.group("batches"))
        )
        if not batches or not all(NODE_NAME.match(n) for batch in batches for n in batch):
            continue
        rollout = Rollout(match.group("pool"), match.group("image"), batches)
        if rollout not in seen:
            seen.add(rollout)
            yield rollout


def _clean(message: str) -> str:
    """A message without color codes, severity prefix or Python traceback frames, cut short."""
    lines = COLOR_CODE.sub("", message).strip().splitlines()
    if lines:
        lines[0] = re.sub(r"^(error|warning): ", "", lines[0])
    if "Traceback (most recent call last):" in lines:
        start = lines.index("Traceback (most recent call last):")
        end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
        lines = lines[:start] + lines[end:]
    text = "\n".join(line.rstrip() for line in lines[:MAX_MESSAGE_LINES]).strip()
    if len(lines) > MAX_MESSAGE_LINES or len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS].rstrip() + "\n..."
    return text


# --- markdown ------------------------------------------------------------------------------------


def render(summary: Summary) -> str:
    """The pull-request comment: risks first, then problems, rollouts and the counts."""
    title = f"### Pulumi preview: `{summary.stack}`" if summary.stack else "### Pulumi preview"
    out = [title, ""]
    failed = bool(summary.errors) or any(p.level == "mandatory" for p in summary.policy_violations)
    if failed:
        out += ["**The preview failed.** Nothing below can be applied until it previews cleanly.", ""]
    if summary.risks:
        out += ["#### :warning: Data-loss risks", ""]
        out += [_risk_line(r) for r in summary.risks]
        out.append("")
    if summary.errors:
        out += ["#### Errors", ""] + [_quoted(e) for e in summary.errors]
        if summary.errors == ("preview failed",) and not summary.policy_violations:
            out += [
                "No reason given: `pulumi preview --json` leaves policy violations out. "
                f"Run it with `{STREAMING_ENV}=true` to see them here, or read the preview log.",
                "",
            ]
    if summary.policy_violations:
        out += ["#### Policy violations", ""]
        out += [_policy_line(p) for p in summary.policy_violations]
        out.append("")
    if summary.warnings:
        out += ["#### Warnings", ""] + [_quoted(w) for w in summary.warnings]
    for rollout in summary.rollouts:
        out += [
            f"#### OS rollout: `{rollout.pool}` to image `{rollout.image}`",
            "",
            *(f"{i}. {', '.join(f'`{n}`' for n in batch)}" for i, batch in enumerate(rollout.batches, 1)),
            "",
        ]
    out += ["#### Changes", ""]
    if summary.counts:
        out += _table(summary.counts)
        out.append("")
    unchanged = f"{summary.same} unchanged" if summary.same else "nothing unchanged"
    verdict = "no changes" if not summary.changes else f"{summary.changes} to change"
    incomplete = " (as far as the failed preview got)" if failed else ""
    out.append(f"{verdict}, {unchanged}{incomplete}.")
    return "\n".join(out) + "\n"


def _risk_line(risk: Risk) -> str:
    what = {
        "delete": "deleted: its disks and their data are gone",
        "replace": "replaced (delete, then create): its disks start empty",
        "update": "updated with a change to its disks",
    }[risk.op]
    line = f"- **{risk.op}** `{risk.name}` ({risk.type}): {what}"
    if risk.reasons:
        line += "; caused by " + ", ".join(f"`{r}`" for r in risk.reasons)
    return line


def _policy_line(p: PolicyViolation) -> str:
    name = f"{p.pack}/{p.policy}" if p.pack else p.policy
    where = f" on `{p.urn.rsplit('::', 1)[-1]}`" if p.urn else ""
    # The engine sends the policy's description, then the violation, as two lines.
    message = "; ".join(line.strip() for line in _clean(p.message).splitlines() if line.strip())
    return f"- `{name}` ({p.level or 'advisory'}){where}: {message}"


def _quoted(message: str) -> str:
    return "```\n" + message.replace("```", "'''") + "\n```\n"


def _table(counts: Sequence[tuple[str, Mapping[str, int]]]) -> list[str]:
    extra = sorted({op for _, ops in counts for op in ops} - set(COUNTED_OPS))
    columns = [*COUNTED_OPS, *extra]
    rows = [
        "| type | " + " | ".join(columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for type_, ops in counts:
        cells = [str(ops[c]) if ops.get(c) else "" for c in columns]
        rows.append(f"| `{type_}` | " + " | ".join(cells) + " |")
    return rows


def summary_markdown(text: str, stack: str | None = None) -> str:
    """``text`` (a preview document) as the markdown summary."""
    return render(summarize(parse(text), stack))
