"""The build and push steps, run for real against a stub ``linuxkit``.

The stub records its argv and whether it saw VCURL, so the tests prove that
credentials travel only through the environment and that failures explain
themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linuxkit_swarm import iso_steps
from operations import isotool
from tests.unit.conftest import PASSWORD
from tests.unit.harness import PROJECT_DIR

STUB = """#!/bin/sh
printf '%s\\n' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")" >> "$STUB_LOG"
[ -n "$VCURL" ] && echo "saw VCURL" >> "$STUB_LOG"
case "$1" in
  build)
    [ -n "$STUB_FAIL" ] && { echo "docker: Cannot connect to the Docker daemon" >&2; exit 1; }
    while [ $# -gt 1 ]; do [ "$1" = --dir ] && dir=$2; [ "$1" = --name ] && name=$2; shift; done
    echo iso > "$dir/$name.iso" ;;
  push)
    echo "connecting to $VCURL" ;;
esac
"""

URL = iso_steps.vcenter_url("vc.example.org", "admin@vsphere.local", PASSWORD)


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "bin" / "linuxkit"
    exe.parent.mkdir()
    exe.write_text(STUB)
    exe.chmod(0o755)
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "log"))
    monkeypatch.delenv("STUB_FAIL", raising=False)
    return exe


def _calls(stub: Path) -> list[str]:
    return (stub.parent.parent / "log").read_text().splitlines()


def _step_env(tmp_path: Path, exe: Path, **extra: str) -> dict[str, str]:
    """The environment the LinuxKitImage component gives its commands."""
    return {
        "PATH": os.environ["PATH"],
        "STUB_LOG": str(tmp_path / "log"),
        "LKS_PYTHON": sys.executable,
        "LKS_LINUXKIT": str(exe),
        "PYTHONPATH": str(PROJECT_DIR),
        **extra,
    }


def test_build_writes_definition_builds_packages_then_iso(stub: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    iso = isotool.build(
        str(stub), out, "docker-0123456789ab", "kernel: {}\n", [(tmp_path / "pkg" / "g", "abc123")]
    )
    assert iso == out / "docker-0123456789ab.iso" and iso.is_file()
    assert (out / "docker-0123456789ab.yml").read_text() == "kernel: {}\n"
    calls = [json.loads(line) for line in _calls(stub)]
    assert calls[0] == [
        "pkg", "build", "--org", "linuxkit-swarm", "--hash", "abc123", "--platforms", "linux/amd64",
        str(tmp_path / "pkg" / "g"),
    ]  # fmt: skip
    assert calls[1] == [
        "build", "--format", "iso-bios", "--arch", "amd64", "--name", "docker-0123456789ab",
        "--dir", str(out), str(out / "docker-0123456789ab.yml"),
    ]  # fmt: skip


def test_missing_linuxkit_says_which_key_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(isotool.StepError) as info:
        isotool.build(str(tmp_path / "nope" / "linuxkit"), tmp_path, "n", "", [])
    message = str(info.value)
    assert info.value.code == isotool.EXIT_NOT_FOUND
    assert "linuxkit-swarm:image.linuxkit" in message and "tools/build.sh linuxkit" in message
    assert "image.prebuiltIso" in message


def test_failed_build_explains_docker_requirement(
    stub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUB_FAIL", "1")
    with pytest.raises(isotool.StepError) as info:
        isotool.build(str(stub), tmp_path / "out", "n", "kernel: {}\n", [])
    assert "`linuxkit build` failed (exit 1)" in str(info.value)
    assert "Docker engine" in str(info.value)


def test_build_command_line_runs_as_the_provider_runs_it(stub: Path, tmp_path: Path) -> None:
    line = iso_steps.build_command_line("docker-abc", [("pkg/swarm-guest", "0123456789ab")])
    env = _step_env(tmp_path, stub, LKS_OUT=str(tmp_path / "out"))
    proc = subprocess.run(  # noqa: PLW1510 - the test asserts on returncode
        ["/bin/sh", "-c", line], input="kernel: {}\n", env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "docker-abc.iso").is_file()
    first = json.loads(_calls(stub)[0])
    assert first[:6] == ["pkg", "build", "--org", "linuxkit-swarm", "--hash", "0123456789ab"]
    assert first[-1] == "pkg/swarm-guest"


def test_push_passes_credentials_only_in_environment(stub: Path, tmp_path: Path) -> None:
    iso = tmp_path / "out" / "docker-abc.iso"
    iso.parent.mkdir()
    iso.write_text("iso")
    line = iso_steps.push_command_line("Spittal", "datastore1", "linuxkit", prebuilt=False)
    env = _step_env(tmp_path, stub, LKS_ISO=str(iso), VCURL=URL)
    proc = subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    calls = _calls(stub)
    assert json.loads(calls[0]) == [
        "push", "vcenter", "--datacenter", "Spittal", "--datastore", "datastore1",
        "--folder", "linuxkit", str(iso),
    ]  # fmt: skip
    assert calls[1] == "saw VCURL"
    # linuxkit's own output echoes the URL: what reaches the logs is masked.
    assert "connecting to [secret]" in proc.stdout
    for text in (line, proc.stdout, proc.stderr, calls[0]):
        assert PASSWORD not in text and URL not in text


def test_push_stages_a_prebuilt_iso_under_its_content_name(stub: Path, tmp_path: Path) -> None:
    source = tmp_path / "downloaded.iso"
    source.write_text("iso")
    target = tmp_path / "out" / "docker-abc.iso"
    isotool.push(str(stub), target, "DC0", "LocalDS_0", "linuxkit", URL, source=source)
    assert target.is_symlink() and target.resolve() == source.resolve()
    assert json.loads(_calls(stub)[0])[-1] == str(target)


def test_push_without_iso_says_how_to_recover(stub: Path, tmp_path: Path) -> None:
    with pytest.raises(isotool.StepError, match="run `pulumi up` again"):
        isotool.push(str(stub), tmp_path / "gone.iso", "DC0", "DS", "linuxkit", URL)


def test_push_and_delete_refuse_to_run_without_vcurl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VCURL", raising=False)
    code = isotool.main(["delete", "--datacenter", "DC0", "--datastore", "DS", "--path", "a/b.iso"])
    assert code == isotool.EXIT_USAGE
    assert "VCURL is not set" in capsys.readouterr().err


def test_vcenter_url_quotes_credentials() -> None:
    url = iso_steps.vcenter_url("vc:8443", "a@b", "p:w/@")
    assert url == "https://a%40b:p%3Aw%2F%40@vc:8443/sdk"


def test_mask_hides_plain_and_quoted_forms() -> None:
    assert iso_steps.mask("x p:w/@ y p%3Aw%2F%40 z", ["p:w/@"]) == "x [secret] y [secret] z"
    assert iso_steps.mask("nothing", [""]) == "nothing"


def test_command_lines_name_no_machine_path_or_secret() -> None:
    lines = [
        iso_steps.build_command_line("docker-abc", [("pkg/g", "abc123")]),
        iso_steps.push_command_line("DC", "DS", "iso", prebuilt=True),
        iso_steps.delete_command_line("DC", "DS", "iso/docker-abc.iso", insecure=True),
    ]
    for line in lines:
        assert sys.executable not in line and "VCURL" not in line
    assert lines[2].endswith("--path iso/docker-abc.iso --insecure")


def test_a_push_that_hangs_stops_at_its_deadline_with_the_url_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCURL", URL)  # as the push step's environment has it
    exe = tmp_path / "bin" / "linuxkit"
    exe.parent.mkdir()
    # Prints the URL as linuxkit does, then hangs like an upload to a frozen vCenter.
    exe.write_text('#!/bin/sh\necho "connecting to $VCURL"\nexec sleep 60\n')
    exe.chmod(0o755)
    iso = tmp_path / "docker-abc.iso"
    iso.write_text("iso")
    with pytest.raises(isotool.StepError) as info:
        isotool.push(str(exe), iso, "Spittal", "datastore1", "linuxkit", URL, push_timeout=1)
    message = str(info.value)
    assert "`linuxkit push vcenter` did not finish within 1 s" in message
    assert "vsphere:vsphereServer" in message
    out = capsys.readouterr().out
    assert "connecting to [secret]" in out  # what it printed before the deadline, masked
    assert PASSWORD not in message + out
