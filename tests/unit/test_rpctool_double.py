"""The e2e node image's ``vmware-rpctool`` double (scripts/node-image/vmware-rpctool), run for real.

It answers ``info-get guestinfo.KEY`` from the JSON file vcsim writes into the
container (tools/vcsim/patches/05-live-guestinfo-for-containers.patch; path
overridable with LKS_GUESTINFO_FILE) and, only when that file does not exist,
from the VMX_GUESTINFO_* environment variables vcsim sets at ``docker create``.
It needs ``jq`` on this machine, as in the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
RPCTOOL = PROJECT_DIR / "scripts" / "node-image" / "vmware-rpctool"
IMAGE_KEY = "guestinfo.linuxkit-swarm.image"
IMAGE_VAR = "VMX_GUESTINFO_LINUXKIT-SWARM_IMAGE"
JQ_INSTALL = "apt-get update && apt-get install -y jq"


def rpctool(
    request: str, *, file: Path, env: Mapping[str, str] | None = None, shell: str = "/bin/sh"
) -> subprocess.CompletedProcess[str]:
    """Runs the double with `request` as its one argument, only `env` plus PATH and the file path."""
    if shutil.which("jq") is None:
        pytest.fail(f"jq is not installed; the vmware-rpctool double needs it. Install it: {JQ_INSTALL}")
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LKS_GUESTINFO_FILE": str(file),
        **(env or {}),
    }
    return subprocess.run(
        [shell, str(RPCTOOL), request], env=full_env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def guestinfo_file(tmp_path: Path) -> Path:
    """The file as vcsim writes it: every guestinfo.* key of the VM in one JSON object."""
    path = tmp_path / "vmware-guestinfo.json"
    path.write_text(
        json.dumps(
            {
                "guestinfo.userdata": "H4sIAAAAAAAA/w==",
                "guestinfo.userdata.encoding": "gzip+base64",
                IMAGE_KEY: "linuxkit-swarm/node:2",
            }
        )
    )
    return path


def test_answers_from_the_file(guestinfo_file: Path) -> None:
    result = rpctool("info-get guestinfo.userdata.encoding", file=guestinfo_file)
    assert (result.returncode, result.stdout, result.stderr) == (0, "gzip+base64\n", "")


def test_key_with_a_dash_from_the_file(guestinfo_file: Path) -> None:
    result = rpctool(f"info-get {IMAGE_KEY}", file=guestinfo_file)
    assert (result.returncode, result.stdout) == (0, "linuxkit-swarm/node:2\n")


def test_the_file_wins_over_the_environment(guestinfo_file: Path) -> None:
    # The environment holds the values of the container's creation; the file the current ones.
    env = {"VMX_GUESTINFO_USERDATA_ENCODING": "base64", "VMX_GUESTINFO_OLD": "stale"}
    result = rpctool("info-get guestinfo.userdata.encoding", file=guestinfo_file, env=env)
    assert (result.returncode, result.stdout) == (0, "gzip+base64\n")
    # a key removed since (absent from the file) is absent, whatever the environment says
    result = rpctool("info-get guestinfo.old", file=guestinfo_file, env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert "No value found" in result.stderr


def test_absent_key_in_the_file(guestinfo_file: Path) -> None:
    result = rpctool("info-get guestinfo.missing", file=guestinfo_file)
    assert (result.returncode, result.stdout) == (1, "")
    assert "No value found" in result.stderr


def test_answers_from_the_environment_without_the_file(tmp_path: Path) -> None:
    absent = tmp_path / "absent.json"
    result = rpctool(
        "info-get guestinfo.userdata.encoding", file=absent, env={"VMX_GUESTINFO_USERDATA_ENCODING": "base64"}
    )
    assert (result.returncode, result.stdout) == (0, "base64\n")
    result = rpctool(
        "info-get guestinfo.missing", file=absent, env={"VMX_GUESTINFO_USERDATA_ENCODING": "base64"}
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert "No value found" in result.stderr


def test_key_with_a_dash_from_the_environment(tmp_path: Path) -> None:
    # dash drops variables with a "-" in the name from what it starts (in the image the
    # double reads them from PID 1's environment instead); bash keeps them, so run it
    # with bash here to check the name: VMX_ + upper case, "." -> "_", "-" kept.
    if shutil.which("bash") is None:
        pytest.fail("bash is not installed: apt-get install -y bash")
    result = rpctool(
        f"info-get {IMAGE_KEY}", file=tmp_path / "absent.json", env={IMAGE_VAR: "node:1"}, shell="bash"
    )
    assert (result.returncode, result.stdout) == (0, "node:1\n")


def test_other_requests(guestinfo_file: Path) -> None:
    result = rpctool("info-set guestinfo.userdata x", file=guestinfo_file)
    assert result.returncode == 2
    result = rpctool("info-get userdata", file=guestinfo_file)
    assert (result.returncode, result.stdout) == (1, "")
