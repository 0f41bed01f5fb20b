"""Where the time of a ``pulumi preview`` goes, from the engine's own OpenTelemetry trace.

The Pulumi CLI (3.259) writes its spans, the language host's, the Python SDK's and the
providers' (OTel-native ones directly, OpenTracing ones through its AppDash bridge) to a
file as OTLP JSON, one ``ExportTraceServiceRequest`` per line, with
``--otel-traces file:///abs/path`` (:func:`tracing_args`). No environment variable is
needed. This module parses that file (plain ``json``: the OTLP JSON encoding writes
trace and span ids as hex, which protobuf's own JSON parser would reject) and splits the
wall time of the CLI's root span ``pulumi`` into exclusive categories::

    python -m bench.breakdown trace.jsonl [--json] [--wall SECONDS]

Each instant of the root span is charged to the highest-priority activity in flight
(below); when several categories of the same priority overlap (a Diff and a Read), the
instant is split equally between them, so the categories always add up to the wall time:

0. provider calls seen from the engine (its client spans ``pulumirpc.ResourceProvider/*``),
   grouped by method: Check, Diff, Read, Invoke (data-source lookups), Create, Update,
   Delete, config (Handshake, CheckConfig, DiffConfig, Configure, ...), other;
1. plugin start (the engine's ``newPlugin`` spans) and the language host's queries
   before the run (About, GetRequiredPackages);
2. the language host's ``Run``: Python start and imports up to the SDK's first RPC, the
   program's top level up to its first registration or invoke, then program evaluation
   (the program and the engine's step work with no provider call in flight), then the
   program's exit after its last RPC;
3. the rest of the engine span ``pulumi-plan``;
4. the rest of the root span: CLI start-up before the engine, CLI finish after it.

Overlap is reported per method as the sum of the calls' durations against the wall time
they cover (union of intervals) and the peak number in flight.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLI = "pulumi-cli"
SDK = "pulumi-sdk-python"
PROVIDER_RPC = "pulumirpc.ResourceProvider/"
LANGUAGE_RPC = "pulumirpc.LanguageRuntime/"
CLIENT = 3  # OTLP SpanKind: the engine's outgoing calls are CLIENT spans
NS = 1e9

# Provider methods by group; anything else is "other" (Cancel, Construct, Call, ...).
METHOD_GROUPS: Mapping[str, str] = {
    "Check": "Check",
    "Diff": "Diff",
    "Read": "Read",
    "Invoke": "Invoke",
    "StreamInvoke": "Invoke",
    "Create": "Create",
    "Update": "Update",
    "Delete": "Delete",
    **{m: "config" for m in ("Handshake", "GetPluginInfo", "GetSchema", "CheckConfig", "DiffConfig")},
    "Configure": "config",
}
GROUP_ORDER = ("Check", "Diff", "Read", "Invoke", "Create", "Update", "Delete", "config", "other")

# Category names, in report order.
CLI_START = "CLI start-up (before the engine)"
LANGUAGE_START = "language host start"
LANGUAGE_QUERIES = "language host queries (About, GetRequiredPackages)"
PLUGIN_START = "provider plugin start"
PYTHON_START = "python start + imports (to the SDK's first RPC)"
PROGRAM_TOP = "program top level (to its first registration or invoke)"
PROGRAM = "program evaluation + engine steps (no provider call in flight)"
PROGRAM_EXIT = "program exit (after its last RPC)"
ENGINE = "engine, outside the program run"
CLI_FINISH = "CLI finish (after the engine)"
UNTRACED = "process start/exit outside the root span"


def provider_category(group: str) -> str:
    """The category name of a provider method group."""
    label = "Invoke (data-source lookups)" if group == "Invoke" else group
    return f"provider {label}"


CATEGORY_ORDER = (
    CLI_START,
    LANGUAGE_START,
    LANGUAGE_QUERIES,
    PYTHON_START,
    PROGRAM_TOP,
    PLUGIN_START,
    PROGRAM,
    *(provider_category(g) for g in GROUP_ORDER),
    PROGRAM_EXIT,
    ENGINE,
    CLI_FINISH,
    UNTRACED,
)

# Attributes the trimmed fixtures keep: names, methods and addresses, never inputs,
# request bodies, command lines or the environment (they can hold secrets).
KEPT_ATTRIBUTES = frozenset({"net.peer.name", "prefix", "kind", "urn", "token", "operation"})


@dataclass(frozen=True)
class Span:
    """One span, reduced to what the breakdown needs (times in ns since the epoch)."""

    service: str
    name: str
    span_id: str
    parent_id: str
    kind: int
    start: int
    end: int
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """The span's duration."""
        return (self.end - self.start) / NS


@dataclass(frozen=True)
class CallStats:
    """Calls of one kind: how many, their summed durations, the wall time they cover."""

    count: int
    sum: float
    union: float
    peak: int

    @property
    def concurrency(self) -> float:
        """Mean calls in flight while any is (sum over union)."""
        return self.sum / self.union if self.union else 0.0


@dataclass
class Breakdown:
    """The exclusive categories (adding up to ``wall``) and the provider-call statistics."""

    wall: float
    categories: dict[str, float]
    calls: dict[str, CallStats]
    provider_calls: dict[str, CallStats]
    by_type: dict[str, CallStats]
    rpc_counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (seconds)."""

        def stats(d: Mapping[str, CallStats]) -> dict[str, dict[str, float]]:
            return {
                k: {"count": v.count, "sum": v.sum, "union": v.union, "peak": v.peak} for k, v in d.items()
            }

        return {
            "wall": self.wall,
            "categories": self.categories,
            "calls": stats(self.calls),
            "provider_calls": stats(self.provider_calls),
            "by_type": stats(self.by_type),
            "rpc_counts": self.rpc_counts,
        }


def tracing_args(path: Path) -> list[str]:
    """The ``pulumi`` arguments that write the OTLP JSON trace to ``path`` (no env needed)."""
    return ["--otel-traces", f"file://{path.resolve()}"]


def _value(v: Mapping[str, Any]) -> str | None:
    """An OTLP AnyValue as text; arrays, maps and bytes are dropped."""
    for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
        if key in v:
            return str(v[key])
    return None


def _attrs(raw: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    out = {}
    for a in raw:
        value = _value(a.get("value", {}))
        if value is not None:
            out[a["key"]] = value
    return out


def iter_spans(lines: Iterable[str]) -> Iterator[Span]:
    """The spans of OTLP JSON lines (one ``ExportTraceServiceRequest`` per line)."""
    for line in lines:
        if not line.strip():
            continue
        for rs in json.loads(line).get("resourceSpans", []):
            service = _attrs(rs.get("resource", {}).get("attributes", [])).get("service.name", "")
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    yield Span(
                        service=service,
                        name=s["name"],
                        span_id=s.get("spanId", ""),
                        parent_id=s.get("parentSpanId", ""),
                        kind=int(s.get("kind", 0)),
                        start=int(s["startTimeUnixNano"]),
                        end=int(s["endTimeUnixNano"]),
                        attrs=_attrs(s.get("attributes", [])),
                    )


def load_spans(path: Path) -> list[Span]:
    """All spans of a trace file written by ``--otel-traces file://...``."""
    with path.open(encoding="utf-8") as f:
        return list(iter_spans(f))


def union_seconds(intervals: Iterable[tuple[int, int]]) -> float:
    """Wall seconds covered by at least one of the ns intervals."""
    total, cur_start, cur_end = 0, None, 0
    for start, end in sorted(intervals):
        if cur_start is None or start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total / NS


def peak_in_flight(intervals: Iterable[tuple[int, int]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = cur = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return peak


def call_stats(intervals: list[tuple[int, int]]) -> CallStats:
    """Count, summed duration, union and peak concurrency of some calls."""
    return CallStats(
        count=len(intervals),
        sum=sum(e - s for s, e in intervals) / NS,
        union=union_seconds(intervals),
        peak=peak_in_flight(intervals),
    )


def method_group(span_name: str) -> str:
    """``pulumirpc.ResourceProvider/Diff`` -> ``Diff``; unknown methods -> ``other``."""
    return METHOD_GROUPS.get(span_name.rsplit("/", 1)[-1], "other")


def exclusive_times(
    window: tuple[int, int], intervals: Iterable[tuple[int, int, int, str]]
) -> dict[str, float]:
    """Charge each instant of ``window`` to the lowest-level category in flight.

    ``intervals`` are (start, end, level, category) in ns; an instant with several
    categories at that level is split equally between them. Instants with no interval
    are not charged, so the result adds up to the covered part of the window.
    """
    lo, hi = window
    clipped = [(max(s, lo), min(e, hi), lvl, cat) for s, e, lvl, cat in intervals if min(e, hi) > max(s, lo)]
    bounds = sorted({t for s, e, _, _ in clipped for t in (s, e)})
    out: dict[str, float] = defaultdict(float)
    # Intervals sorted by start; `active` holds the ones open over [a, b).
    pending = sorted(clipped)
    active: list[tuple[int, int, int, str]] = []
    i = 0
    for a, b in itertools.pairwise(bounds):
        while i < len(pending) and pending[i][0] <= a:
            active.append(pending[i])
            i += 1
        active = [iv for iv in active if iv[1] > a]
        if not active:
            continue
        level = min(iv[2] for iv in active)
        cats = sorted({iv[3] for iv in active if iv[2] == level})
        for cat in cats:
            out[cat] += (b - a) / NS / len(cats)
    return dict(out)


def provider_names(spans: list[Span]) -> dict[str, str]:
    """Provider name per peer address of the engine's provider calls.

    A provider's own server span names it (its service) when it is parented on the
    engine's client span; providers whose spans come through the AppDash bridge are not
    parented, so the first new address called after a ``newPlugin`` span ends is that
    plugin's (its ``prefix`` attribute, e.g. ``command (resource)``).
    """
    by_id = {s.span_id: s for s in spans}
    names: dict[str, str] = {}
    for s in spans:
        parent = by_id.get(s.parent_id)
        if (
            s.service != CLI
            and s.name.startswith(PROVIDER_RPC)
            and parent is not None
            and parent.service == CLI
        ):
            peer = parent.attrs.get("net.peer.name")
            if peer:
                names.setdefault(peer, s.service)
    calls = sorted((s for s in spans if _is_provider_call(s)), key=lambda s: s.start)
    starts = sorted(
        (
            s
            for s in spans
            if s.service == CLI and s.name == "newPlugin" and s.attrs.get("kind") == "resource"
        ),
        key=lambda s: s.end,
    )
    claimed: set[str] = set()
    for plugin in starts:
        name = plugin.attrs.get("prefix", "provider").removesuffix(" (resource)")
        for call in calls:
            peer = call.attrs.get("net.peer.name", "")
            if call.start >= plugin.end and peer and peer not in claimed:
                claimed.add(peer)
                names.setdefault(peer, name)
                break
    return names


def _is_provider_call(s: Span) -> bool:
    return s.service == CLI and s.kind == CLIENT and s.name.startswith(PROVIDER_RPC)


def _resource_type(urn: str) -> str:
    """``urn:pulumi:stack::proj::parent$pkg:mod:Type::name`` -> ``pkg:mod:Type``."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else urn


def breakdown_spans(spans: list[Span], wall: float | None = None) -> Breakdown:
    """The breakdown of one traced CLI run; ``wall`` (s) adds time outside the root span."""
    roots = [s for s in spans if s.service == CLI and s.name == "pulumi" and not s.parent_id]
    if not roots:
        raise ValueError("no root span 'pulumi' of the CLI in the trace")
    root = max(roots, key=lambda s: s.end - s.start)
    intervals: list[tuple[int, int, int, str]] = []

    provider = [s for s in spans if _is_provider_call(s)]
    groups: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in provider:
        group = method_group(s.name)
        groups[group].append((s.start, s.end))
        intervals.append((s.start, s.end, 0, provider_category(group)))

    for s in spans:
        if s.service != CLI:
            continue
        if s.name == "newPlugin":
            cat = LANGUAGE_START if s.attrs.get("kind") == "language" else PLUGIN_START
            intervals.append((s.start, s.end, 1, cat))
        elif s.kind == CLIENT and s.name.startswith(LANGUAGE_RPC) and not s.name.endswith("/Run"):
            cat = LANGUAGE_START if s.name.endswith("/GetPluginInfo") else LANGUAGE_QUERIES
            intervals.append((s.start, s.end, 1, cat))

    run = [s for s in spans if s.service == CLI and s.kind == CLIENT and s.name == LANGUAGE_RPC + "Run"]
    sdk = [s for s in spans if s.service == SDK]
    for r in run:
        inside = [s for s in sdk if s.start >= r.start and s.end <= r.end]
        if inside:
            first, last = min(s.start for s in inside), max(s.end for s in inside)
            # The SDK asks for the deployment info as it starts; the program's own top
            # level (imports, config, its own vCenter queries) runs until the first
            # resource registration or invoke.
            work = [s.start for s in inside if s.name.endswith(("/RegisterResource", "/Invoke"))]
            first_work = min(work, default=first)
            intervals += [
                (r.start, first, 2, PYTHON_START),
                (first, first_work, 2, PROGRAM_TOP),
                (first_work, last, 2, PROGRAM),
                (last, r.end, 2, PROGRAM_EXIT),
            ]
        else:
            intervals.append((r.start, r.end, 2, PROGRAM))

    plans = [s for s in spans if s.service == CLI and s.name == "pulumi-plan"]
    for p in plans:
        intervals.append((p.start, p.end, 3, ENGINE))
    plan_start = min((p.start for p in plans), default=root.end)
    plan_end = max((p.end for p in plans), default=root.end)
    intervals += [(root.start, plan_start, 4, CLI_START), (plan_end, root.end, 4, CLI_FINISH)]

    times = exclusive_times((root.start, root.end), intervals)
    categories = {c: times.get(c, 0.0) for c in CATEGORY_ORDER if c != UNTRACED}
    if wall is not None:
        categories[UNTRACED] = max(0.0, wall - root.seconds)

    names = provider_names(spans)
    per_provider: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in provider:
        name = names.get(s.attrs.get("net.peer.name", ""), "unknown")
        per_provider[f"{name} {s.name.rsplit('/', 1)[-1]}"].append((s.start, s.end))

    # The providers' own spans name the resource type (urn) or function (token).
    by_type: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s in spans:
        what = s.attrs.get("token") or (_resource_type(s.attrs["urn"]) if "urn" in s.attrs else None)
        method = s.name.rsplit(".", 1)[-1]
        if s.service != CLI and what and method in METHOD_GROUPS and method not in ("CheckConfig",):
            by_type[f"{method} {what}"].append((s.start, s.end))

    # Calls the program and the providers make to the engine (resource registrations,
    # invokes, log lines): each is a gRPC round trip.
    # OpenTracing providers report each call twice (their gRPC interceptor and the
    # bridge's, the latter named with a leading "/"): count one form per service.
    forms: dict[tuple[str, str, bool], int] = Counter(
        (s.service, s.name.lstrip("/"), s.name.startswith("/"))
        for s in spans
        if s.kind == CLIENT and s.service != CLI
    )
    counts: dict[str, int] = {}
    for (service, name, _), n in forms.items():
        key = f"{'program' if service == SDK else service} {name.removeprefix('pulumirpc.')}"
        counts[key] = max(counts.get(key, 0), n)
    return Breakdown(
        wall=root.seconds + (categories.get(UNTRACED, 0.0)),
        categories=categories,
        calls={g: call_stats(groups[g]) for g in GROUP_ORDER if groups.get(g)},
        provider_calls={k: call_stats(v) for k, v in sorted(per_provider.items())},
        by_type={k: call_stats(v) for k, v in sorted(by_type.items())},
        rpc_counts=dict(sorted(counts.items())),
    )


def breakdown(path: Path, wall: float | None = None) -> Breakdown:
    """The breakdown of the trace file at ``path`` (see :func:`tracing_args`)."""
    return breakdown_spans(load_spans(path), wall)


def format_table(b: Breakdown) -> str:
    """A plain-text report: categories, provider calls with their overlap, counts."""
    lines = [f"{'category':<66} {'s':>7} {'%':>6}"]
    for cat, sec in b.categories.items():
        if sec > 0:
            lines.append(f"{cat:<66} {sec:7.3f} {100 * sec / b.wall:5.1f}%")
    lines.append(f"{'total (wall)':<66} {b.wall:7.3f}")
    lines.append("")
    lines.append(f"{'provider calls':<40} {'n':>5} {'sum s':>8} {'union s':>8} {'conc':>5} {'peak':>5}")
    for table in (b.calls, b.provider_calls, b.by_type):
        for key, st in table.items():
            lines.append(
                f"{key:<40} {st.count:5d} {st.sum:8.3f} {st.union:8.3f} {st.concurrency:5.1f} {st.peak:5d}"
            )
        lines.append("")
    if b.rpc_counts:
        lines.append("other RPCs (count): " + ", ".join(f"{k} {v}" for k, v in b.rpc_counts.items()))
    return "\n".join(lines)


def trim(src: Path, dst: Path) -> int:
    """Copy a trace keeping only :data:`KEPT_ATTRIBUTES` (for small, secret-free fixtures).

    Also drops the second report of a call that OpenTracing providers make through the
    AppDash bridge (same service, same name with a leading "/"): the breakdown counts one.
    Returns the number of spans written.
    """
    requests = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]

    def service(rs: Mapping[str, Any]) -> str:
        return _attrs(rs.get("resource", {}).get("attributes", [])).get("service.name", "")

    plain = {
        (service(rs), s["name"])
        for r in requests
        for rs in r.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
        for s in ss.get("spans", [])
    }
    count = 0
    for request in requests:
        for rs in request.get("resourceSpans", []):
            svc = service(rs)
            rs["resource"] = {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]}
            for ss in rs.get("scopeSpans", []):
                ss["scope"] = {"name": ss.get("scope", {}).get("name", "")}
                kept = []
                for s in ss.get("spans", []):
                    if s["name"].startswith("/") and (svc, s["name"][1:]) in plain:
                        continue
                    for key in ("traceId", "flags", "events", "links", "status", "traceState"):
                        s.pop(key, None)
                    # Only the engine's calls need their peer (to name the provider).
                    s["attributes"] = [
                        a
                        for a in s.get("attributes", [])
                        if a["key"] in KEPT_ATTRIBUTES and (svc == CLI or a["key"] != "net.peer.name")
                    ]
                    kept.append(s)
                ss["spans"] = kept
                count += len(kept)
    dst.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in requests), encoding="utf-8")
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.breakdown TRACE [--json] [--wall S] [--trim-to FILE]``."""
    parser = argparse.ArgumentParser(description="Breakdown of a pulumi --otel-traces file.")
    parser.add_argument("trace", type=Path)
    parser.add_argument("--json", action="store_true", help="print the breakdown as JSON")
    parser.add_argument("--wall", type=float, help="the process's wall time, to show what the trace misses")
    parser.add_argument("--trim-to", type=Path, help="write a copy without request bodies or environment")
    args = parser.parse_args(argv)
    if args.trim_to:
        print(f"{trim(args.trace, args.trim_to)} spans written to {args.trim_to}")
        return 0
    b = breakdown(args.trace, args.wall)
    print(json.dumps(b.as_dict(), indent=2) if args.json else format_table(b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
