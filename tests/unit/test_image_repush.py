"""An ISO missing from the datastore is pushed again: the repush inputs and the push step's update."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from components.linuxkit_image import _ask_vcenter
from linuxkit_swarm import iso_steps
from linuxkit_swarm.image_plan import ISO_MISSING_KEY, iso_repush
from operations import isotool, vcenter
from tests.unit.harness import COMMAND_TYPE, run_program
from tests.unit.test_isotool import URL, _calls, stub  # noqa: F401 - the stub fixture

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def test_a_present_iso_adds_nothing_and_keeps_the_last_value() -> None:
    repush = iso_repush(True, NOW)
    assert repush.environment == {}
    assert repush.ignore_changes == [f"environment.{ISO_MISSING_KEY}"]


def test_a_missing_iso_sets_a_new_value_each_time() -> None:
    first, later = iso_repush(False, NOW), iso_repush(False, NOW + timedelta(seconds=1))
    assert first.environment == {ISO_MISSING_KEY: "not in the datastore at 2026-11-28T09:30:00+00:00"}
    assert first.ignore_changes == []
    assert later.environment[ISO_MISSING_KEY] != first.environment[ISO_MISSING_KEY]


def _push(project: dict[str, Any], vsphere: dict[str, Any], present: bool) -> Any:
    with mock.patch("components.linuxkit_image._ask_vcenter", return_value=present) as asked:
        run = run_program(project, vsphere)
    asked.assert_called_once_with(
        iso_steps.vcenter_url("vcenter.example.org", "terraform@vsphere.local", vsphere["password"]),
        True,
        "Spittal",
        "datastore1",
        run.exports["isoDatastorePath"],
    )
    return run.one(COMMAND_TYPE, "os-image-push")


def test_the_program_feeds_the_datastore_check_into_the_push_step(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    present = _push(project, vsphere, True)
    assert ISO_MISSING_KEY not in present.inputs["environment"]
    assert list(present.request.ignoreChanges) == [f"environment.{ISO_MISSING_KEY}"]
    missing = _push(project, vsphere, False)
    assert missing.inputs["environment"][ISO_MISSING_KEY].startswith("not in the datastore at ")
    assert list(missing.request.ignoreChanges) == []
    # Only the environment differs: an update, never a replace (which would run the
    # old step's delete on the same path).
    assert missing.inputs["triggers"] == present.inputs["triggers"]
    assert missing.inputs["update"] == present.inputs["update"]


def test_a_failed_check_stops_the_program_without_credentials() -> None:
    refused = vcenter.ConnectError(f"login to {URL} refused")
    with (
        mock.patch("operations.isotool.iso_in_datastore", side_effect=refused),
        pytest.raises(isotool.StepError) as info,
    ):
        _ask_vcenter(URL, True, "DC0", "DS", "linuxkit/docker-abc.iso")
    assert "cannot check whether [DS] linuxkit/docker-abc.iso is in the datastore" in str(info.value)
    assert URL not in str(info.value) and "[secret]" in str(info.value)


def _iso(tmp_path: Path) -> Path:
    iso = tmp_path / "out" / "docker-abc.iso"
    iso.parent.mkdir()
    iso.write_text("iso")
    return iso


def test_if_missing_uploads_only_a_missing_iso(
    stub: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    iso = _iso(tmp_path)
    asked: list[tuple[Any, ...]] = []
    present = [True]

    def check(*args: Any) -> bool:
        asked.append(args)
        return present[0]

    monkeypatch.setattr(isotool, "iso_in_datastore", check)
    monkeypatch.setenv("VCURL", URL)
    argv = ["push", "--linuxkit", str(stub), "--iso", str(iso), "--datacenter", "DC0"]
    argv += ["--datastore", "LocalDS_0", "--folder", "linuxkit", "--if-missing", "--insecure"]
    assert isotool.main(argv) == 0
    assert (
        capsys.readouterr().out
        == "[LocalDS_0] linuxkit/docker-abc.iso is in the datastore; nothing to push\n"
    )
    assert not (tmp_path / "log").exists()  # linuxkit never ran
    present[0] = False
    assert isotool.main(argv) == 0
    assert capsys.readouterr().out.endswith("\npushed [LocalDS_0] linuxkit/docker-abc.iso\n")
    assert json.loads(_calls(stub)[0])[:2] == ["push", "vcenter"]
    assert asked == [(URL, True, "DC0", "LocalDS_0", "linuxkit/docker-abc.iso")] * 2
    # Without --if-missing (the create line), no check: a new ISO is always uploaded.
    assert isotool.main(argv[:-2]) == 0 and len(asked) == 2


def test_the_update_line_is_the_push_with_if_missing(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    push = _push(project, vsphere, True)
    assert push.inputs["update"] == f"{push.inputs['create']} --if-missing --insecure"
