"""The no-op preview breakdown: OTLP JSON parsing, exclusive categories, call overlap, trimming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import breakdown as bd

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bench" / "preview-refresh-3-workers.jsonl"
MS = 1_000_000
PEER_A, PEER_B = "127.0.0.1:1001", "127.0.0.1:1002"


def _span(
    name: str, start_ms: int, end_ms: int, span_id: str, parent: str = "", sk: int = 1, **attrs: str
) -> dict[str, Any]:
    return {
        "traceId": "ab" * 16,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": sk,
        "startTimeUnixNano": str(start_ms * MS),
        "endTimeUnixNano": str(end_ms * MS),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
    }


def _request(service: str, spans: list[dict[str, Any]]) -> str:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]})


def _tiny_trace(path: Path) -> Path:
    """A hand-made trace, in ms: every category at a known place (see the expected numbers)."""
    pr = "pulumirpc.ResourceProvider/"
    cli = [
        _span("pulumi", 0, 10_000, "root"),
        _span("newPlugin", 500, 1000, "lp", "root", kind="language", prefix="python"),
        _span("pulumirpc.LanguageRuntime/About", 1000, 1500, "about", "root", sk=3),
        _span("pulumi-plan", 2000, 9500, "plan", "root"),
        _span("pulumirpc.LanguageRuntime/Run", 2500, 9000, "run", "plan", sk=3),
        _span("newPlugin", 3200, 3500, "vp", "plan", kind="resource", prefix="vsphere (resource)"),
        _span(pr + "Configure", 3600, 3700, "cfg", "plan", sk=3, **{"net.peer.name": PEER_A}),
        _span(pr + "Diff", 4000, 6000, "d1", "plan", sk=3, **{"net.peer.name": PEER_A}),
        _span(pr + "Diff", 5000, 7000, "d2", "plan", sk=3, **{"net.peer.name": PEER_A}),
        _span(pr + "Read", 6500, 7500, "r1", "plan", sk=3, **{"net.peer.name": PEER_A}),
        _span(pr + "Invoke", 8500, 8800, "i1", "plan", sk=3, **{"net.peer.name": PEER_A}),
        _span("newPlugin", 9100, 9200, "cp", "plan", kind="resource", prefix="command (resource)"),
        _span(pr + "Check", 9300, 9400, "c1", "plan", sk=3, **{"net.peer.name": PEER_B}),
    ]
    sdk = [
        _span("/pulumirpc.ResourceMonitor/GetDeploymentInfo", 2800, 2810, "s0", "run", sk=3),
        _span("/pulumirpc.ResourceMonitor/RegisterResource", 3000, 4000, "s1", "run", sk=3),
        _span("/pulumirpc.ResourceMonitor/RegisterResource", 7000, 8000, "s2", "run", sk=3),
    ]
    # The provider's own server span names it (and carries inputs a fixture must never keep).
    vsphere = [
        _span(pr + "Diff", 4001, 5999, "vd1", "d1", sk=2, inputs="password:{hunter2}"),
        _span(
            "sdkv2.Diff", 4002, 5998, "vd1x", "vd1", urn="urn:pulumi:s::p::a:b:Pool$vsphere:index/vm:VM::w-0"
        ),
    ]
    path.write_text("\n".join([_request("pulumi-cli", cli), _request("pulumi-sdk-python", sdk)]) + "\n")
    with path.open("a") as f:
        f.write(_request("vsphere", vsphere) + "\n")
    return path


def test_tiny_trace_gives_the_known_exclusive_categories(tmp_path: Path) -> None:
    b = bd.breakdown(_tiny_trace(tmp_path / "t.jsonl"))
    expected = {
        bd.CLI_START: 1.0,  # 0-0.5 and 1.5-2.0
        bd.LANGUAGE_START: 0.5,
        bd.LANGUAGE_QUERIES: 0.5,
        bd.PYTHON_START: 0.3,  # Run start to the first SDK call
        bd.PROGRAM_TOP: 0.2,  # to the first registration
        bd.PLUGIN_START: 0.4,
        bd.PROGRAM: 1.1,  # first to last SDK call, minus plugin start and provider calls
        bd.provider_category("config"): 0.1,
        bd.provider_category("Diff"): 2.75,  # 4.0-6.5 alone, half of 6.5-7.0 shared with the Read
        bd.provider_category("Read"): 0.75,
        bd.provider_category("Invoke"): 0.3,
        bd.provider_category("Check"): 0.1,
        bd.PROGRAM_EXIT: 0.7,
        bd.ENGINE: 0.8,
        bd.CLI_FINISH: 0.5,
    }
    assert {k: v for k, v in b.categories.items() if v} == pytest.approx(expected)
    assert b.wall == pytest.approx(10.0)
    assert sum(b.categories.values()) == pytest.approx(b.wall)


def test_tiny_trace_call_overlap_sum_union_peak(tmp_path: Path) -> None:
    b = bd.breakdown(_tiny_trace(tmp_path / "t.jsonl"))
    diff = b.calls["Diff"]
    assert (diff.count, diff.peak) == (2, 2)
    assert (diff.sum, diff.union) == pytest.approx((4.0, 3.0))
    assert diff.concurrency == pytest.approx(4 / 3)
    assert b.by_type["Diff vsphere:index/vm:VM"].count == 1
    assert b.rpc_counts["program ResourceMonitor/RegisterResource"] == 2
    assert b.rpc_counts["program ResourceMonitor/GetDeploymentInfo"] == 1


def test_providers_named_by_their_server_span_or_the_plugin_started_before_the_first_call(
    tmp_path: Path,
) -> None:
    b = bd.breakdown(_tiny_trace(tmp_path / "t.jsonl"))
    assert set(b.provider_calls) == {
        "vsphere Configure",
        "vsphere Diff",
        "vsphere Read",
        "vsphere Invoke",
        "command Check",
    }


def test_process_wall_adds_the_untraced_part(tmp_path: Path) -> None:
    b = bd.breakdown(_tiny_trace(tmp_path / "t.jsonl"), wall=12.0)
    assert b.categories[bd.UNTRACED] == pytest.approx(2.0)
    assert b.wall == pytest.approx(12.0)
    assert sum(b.categories.values()) == pytest.approx(12.0)


def test_a_trace_without_the_cli_root_span_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(_request("vsphere", [_span("sdkv2.Diff", 0, 1, "x")]) + "\n")
    with pytest.raises(ValueError, match="root span"):
        bd.breakdown(path)


@pytest.mark.parametrize(
    ("intervals", "union", "peak"),
    [
        ([], 0.0, 0),
        ([(0, 2), (1, 3)], 3.0, 2),
        ([(0, 1), (1, 2)], 2.0, 1),  # touching: one ends as the next starts
        ([(0, 4), (1, 2), (5, 6)], 5.0, 2),
    ],
)
def test_union_and_peak(intervals: list[tuple[int, int]], union: float, peak: int) -> None:
    ns = [(s * 1_000_000_000, e * 1_000_000_000) for s, e in intervals]
    assert bd.union_seconds(ns) == pytest.approx(union)
    assert bd.peak_in_flight(ns) == peak


def test_exclusive_times_lower_level_wins_and_equal_levels_share() -> None:
    s = 1_000_000_000
    times = bd.exclusive_times(
        (0, 4 * s), [(0, 4 * s, 2, "low"), (1 * s, 3 * s, 0, "a"), (2 * s, 3 * s, 0, "b")]
    )
    assert times == pytest.approx({"low": 2.0, "a": 1.5, "b": 0.5})


def test_method_groups() -> None:
    assert bd.method_group("pulumirpc.ResourceProvider/Diff") == "Diff"
    assert bd.method_group("pulumirpc.ResourceProvider/StreamInvoke") == "Invoke"
    assert bd.method_group("pulumirpc.ResourceProvider/DiffConfig") == "config"
    assert bd.method_group("pulumirpc.ResourceProvider/Construct") == "other"


def test_trim_keeps_the_breakdown_and_drops_every_other_attribute(tmp_path: Path) -> None:
    src = _tiny_trace(tmp_path / "t.jsonl")
    dst = tmp_path / "trimmed.jsonl"
    assert bd.trim(src, dst) == 18
    assert "hunter2" not in dst.read_text()
    assert bd.breakdown(dst).as_dict() == bd.breakdown(src).as_dict()
    keys = {k for s in bd.load_spans(dst) for k in s.attrs}
    assert keys <= bd.KEPT_ATTRIBUTES


def test_tracing_args_name_an_absolute_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert bd.tracing_args(Path("t.jsonl")) == ["--otel-traces", f"file://{tmp_path / 't.jsonl'}"]


def test_cli_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bd.main([str(_tiny_trace(tmp_path / "t.jsonl")), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["wall"] == pytest.approx(10.0)
    assert out["calls"]["Diff"]["peak"] == 2


# A real trace: `pulumi preview --refresh` of 3 workers on the simulator (trimmed).


def test_real_trace_categories_add_up_to_the_root_span() -> None:
    spans = bd.load_spans(FIXTURE)
    root = next(s for s in spans if s.name == "pulumi" and not s.parent_id)
    b = bd.breakdown(FIXTURE)
    assert b.wall == pytest.approx(root.seconds)
    assert sum(b.categories.values()) == pytest.approx(b.wall)
    assert all(v >= 0 for v in b.categories.values())
    for cat in (
        bd.PYTHON_START,
        bd.PROGRAM_TOP,
        bd.PROGRAM,
        bd.provider_category("Diff"),
        bd.provider_category("Read"),
    ):
        assert b.categories[cat] > 0, cat


def test_real_trace_calls_match_the_resources() -> None:
    b = bd.breakdown(FIXTURE)
    spans = bd.load_spans(FIXTURE)
    engine_side = sum(
        1 for s in spans if s.service == bd.CLI and s.name.endswith("ResourceMonitor/RegisterResource")
    )
    assert b.rpc_counts["program ResourceMonitor/RegisterResource"] == engine_side
    # Each of the 3 VMs is read once by the refresh; no Create/Update/Delete in a no-op.
    assert b.by_type["Read vsphere:index/virtualMachine:VirtualMachine"].count == 3
    assert not {"Create", "Update", "Delete"} & set(b.calls)
    assert {k.split()[0] for k in b.provider_calls} == {"vsphere", "command"}
    # Sum of call durations is never below the wall time they cover.
    assert all(st.sum >= st.union - 1e-9 for st in b.calls.values())
