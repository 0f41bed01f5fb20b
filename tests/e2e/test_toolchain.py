"""The installed tools are the upstream binaries at their pinned versions (no stand-in)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import BUILD_HINT

VERSIONS = dict(
    line.split("=", 1)
    for line in (Path(__file__).resolve().parents[2] / "tools" / "versions.env").read_text().splitlines()
    if line and not line.startswith("#")
)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _main_package(binary: str) -> str:
    """The main package path recorded in a Go binary's build info."""
    for line in _run("go", "version", "-m", binary).splitlines():
        fields = line.split()
        if fields[:1] == ["path"]:
            return fields[1]
    raise AssertionError(f"no build info in {binary}")


@pytest.mark.parametrize(
    ("name", "version_key", "package"),
    [
        (
            "vsphere",
            "VSPHERE_VERSION",
            "github.com/pulumi/pulumi-vsphere/provider/v4/cmd/pulumi-resource-vsphere",
        ),
        (
            "command",
            "COMMAND_VERSION",
            "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command",
        ),
    ],
)
def test_installed_provider_plugin_is_upstream_at_its_pin(
    toolchain: None, name: str, version_key: str, package: str
) -> None:
    version = VERSIONS[version_key]
    plugins = json.loads(_run("pulumi", "plugin", "ls", "--json"))
    (plugin,) = [p for p in plugins if p["name"] == name and p["kind"] == "resource"]
    assert plugin["version"] == version, BUILD_HINT
    binary = str(
        Path(os.environ["PULUMI_HOME"])
        / "plugins"
        / f"resource-{name}-v{version}"
        / f"pulumi-resource-{name}"
    )
    assert _main_package(binary) == package  # built from the upstream source, not a wrapper
    schema = json.loads(_run("pulumi", "package", "get-schema", binary))
    assert (schema["name"], schema["version"]) == (name, version)


def test_language_host_is_upstream_at_the_cli_version(toolchain: None) -> None:
    host = shutil.which("pulumi-language-python")
    assert host is not None and Path(host).parent == Path(shutil.which("pulumi") or "").parent
    assert _main_package(host) == "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
    assert _run(host, "-version") == f"v{VERSIONS['PULUMI_VERSION']}"
    assert _run("pulumi", "version") == f"v{VERSIONS['PULUMI_VERSION']}"


def test_linuxkit_and_simulator_are_upstream_at_their_pins(toolchain: None) -> None:
    linuxkit = shutil.which("linuxkit") or ""
    assert _main_package(linuxkit) == "github.com/linuxkit/linuxkit/src/cmd/linuxkit"
    assert f"version v{VERSIONS['LINUXKIT_VERSION']}" in _run(linuxkit, "version")
    assert _main_package(shutil.which("vcsim") or "") == "github.com/vmware/govmomi/vcsim"
    assert f"Build Version: {VERSIONS['GOVMOMI_VERSION']}" in _run("vcsim", "version")
    assert _run("govc", "version") == f"govc {VERSIONS['GOVMOMI_VERSION']}"
