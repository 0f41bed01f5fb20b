"""Static checks of the OS definition as every stack in the repository renders it."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from linuxkit_swarm import image_definition as idef
from linuxkit_swarm import swarm_steps
from linuxkit_swarm.image_plan import plan_image
from linuxkit_swarm.settings import PROJECT, namespace, parse_settings
from linuxkit_swarm.validators import check_image_reference
from tests.unit.conftest import TOKEN
from tests.unit.harness import PROJECT_DIR

STACK_FILES = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
DEFINITION = PROJECT_DIR / "linuxkit" / "swarm-node.yml"
# The services' shell commands run under Alpine's busybox sh; this machine's /bin/sh too.
SHELLS = [("/bin/sh",)] + ([("busybox", "sh")] if shutil.which("busybox") else [])
DEV_STACKS = {"dev", "local"}  # the only stacks allowed a root shell on the console


def _stack_settings(stack_file: Path, **project_overrides: Any) -> Any:
    config = yaml.safe_load(stack_file.read_text())["config"]
    project, vsphere = namespace(config, PROJECT), namespace(config, "vsphere")
    vsphere.setdefault("vsphereServer", "vc.example.org")
    vsphere["password"] = "placeholder"
    project.update(project_overrides)
    image = dict(project.get("image") or {})
    image.pop("prebuiltIso", None)  # check the definition even where a stack uses a stand-in ISO
    project["image"] = image
    return parse_settings(
        project,
        vsphere,
        base_dir=PROJECT_DIR,
        secret_keys=["vsphere:password", "linuxkit-swarm:swarmJoinToken"],
    )


def test_there_are_stacks_to_check() -> None:
    assert {p.name for p in STACK_FILES} >= {"Pulumi.dev.yaml", "Pulumi.local.yaml"}


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_rendered_definition_pins_every_image(stack_file: Path) -> None:
    plan = plan_image(_stack_settings(stack_file).image)
    assert plan.rendered_yaml is not None
    rendered = yaml.safe_load(plan.rendered_yaml)
    assert idef.structure_problems(rendered) == []
    for where, ref in idef.image_references(rendered):
        assert check_image_reference(ref) is None, f"{stack_file.name}: {where} = {ref}"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_insecure_console_only_on_dev_stacks(stack_file: Path) -> None:
    settings = _stack_settings(stack_file)
    rendered = plan_image(settings.image).rendered_yaml or ""
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if "INSECURE=true" in rendered:
        assert stack in DEV_STACKS, f"stack {stack} renders a getty without login"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_no_secret_in_rendered_definition(stack_file: Path) -> None:
    settings = _stack_settings(stack_file, swarmManagerAddress="10.0.0.1:2377", swarmJoinToken=TOKEN)
    rendered = plan_image(settings.image).rendered_yaml or ""
    assert TOKEN not in rendered and "placeholder" not in rendered  # tokens travel only through guestinfo


def test_repo_definition_has_no_insecure_getty() -> None:
    assert "INSECURE" not in yaml.safe_dump(idef.load_definition(PROJECT_DIR / "linuxkit" / "swarm-node.yml"))


def test_definition_keeps_docker_data_and_never_forces_a_format() -> None:
    definition = idef.load_definition(PROJECT_DIR / "linuxkit" / "swarm-node.yml")
    onboot = {e["name"]: e for e in definition["onboot"]}
    assert "-force" not in onboot["format"]["command"]
    assert onboot["mount"]["command"][-1] == "/var/lib/docker"
    names = [e["name"] for e in definition["onboot"]]
    assert names.index("guestinfo") < names.index("format") < names.index("mount")
    services = {e["name"]: e for e in definition["services"]}
    assert "/var/lib/docker:/var/lib/docker" in services["docker"]["binds"]
    assert set(services) >= {"getty", "rngd", "dhcpcd", "ntpd", "sshd", "vmtoolsd", "docker", "swarm-join"}
    assert "tty0" in definition["kernel"]["cmdline"]


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"services": [{"name": "a", "image": "x:1"}, {"name": "a", "image": "y:1"}]}, "duplicate name 'a'"),
        ({"onboot": [{"image": "x:1"}]}, "needs both 'name' and 'image'"),
        ({"files": [{"path": "etc/x", "contents": "a", "source": "b"}]}, "exactly one of"),
        ({"files": [{"contents": "a"}]}, "needs 'path'"),
    ],
)
def test_structure_problems(definition: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in idef.structure_problems(definition))


# --- service commands, run for real in a scratch root ------------------------------------


def _services() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in idef.load_definition(DEFINITION)["services"]}


def _rooted(script: str, root: Path, paths: Mapping[str, str]) -> str:
    """The script with each absolute path moved under root (every one must be there,
    and none may be left outside root, so the test never touches this machine)."""
    for old, new in paths.items():
        assert old in script, f"{old} is not in the command any more"
        script = script.replace(old, str(root) + new)
    for old in paths:
        stray = re.search(rf"(?<!{re.escape(str(root))}){re.escape(old)}", script)
        assert stray is None, f"{old} left outside the scratch root"
    return script


def _run(shell: tuple[str, ...], script: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "ARGS": str(root / "args")}
    return subprocess.run(
        [*shell, "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )


FAKE_EXEC = '#!/bin/sh\nprintf "%s\\n" "$0" "$@" >"$ARGS"\n'


def _docker_run(shell: tuple[str, ...], root: Path, identity: str | None) -> tuple[list[str], str]:
    command = _services()["docker"]["command"]
    assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3
    bin_dir = root / "usr" / "local" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("docker-init", "dockerd"):
        (bin_dir / name).write_text(FAKE_EXEC)
        (bin_dir / name).chmod(0o755)
    if identity is not None:
        image = root / "var" / "run" / "config" / "linuxkit-swarm" / "image"
        image.parent.mkdir(parents=True)
        image.write_text(identity)
    script = _rooted(
        command[2], root, {"/var/run/config/": "/var/run/config/", "/usr/local/bin/": "/usr/local/bin/"}
    )
    result = _run(shell, script, root)
    assert result.returncode == 0, result.stderr
    return (root / "args").read_text().splitlines(), result.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize(
    "text", ["e2e-container-nodes-1\n", "0123abcdef:sha256.x_y-z"], ids=["newline", "bare"]
)
def test_docker_engine_gets_the_image_label(tmp_path: Path, shell: tuple[str, ...], text: str) -> None:
    args, _ = _docker_run(shell, tmp_path, text)
    dockerd = str(tmp_path / "usr/local/bin/dockerd")
    assert args == [
        str(tmp_path / "usr/local/bin/docker-init"),
        "--",
        dockerd,
        "--label",
        f"linuxkit-swarm.image={text.strip()}",
    ]


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize(
    "identity", [None, "", "bad value\n", "a;reboot\n"], ids=["absent", "empty", "space", "semicolon"]
)
def test_docker_engine_starts_without_a_label_when_there_is_no_identity(
    tmp_path: Path, shell: tuple[str, ...], identity: str | None
) -> None:
    args, stderr = _docker_run(shell, tmp_path, identity)
    assert args == [
        str(tmp_path / "usr/local/bin/docker-init"),
        "--",
        str(tmp_path / "usr/local/bin/dockerd"),
    ]
    assert "without the linuxkit-swarm.image label" in stderr


def test_docker_service_keeps_its_binds() -> None:
    docker = _services()["docker"]
    assert {"/var/run:/var/run", "/etc/docker/daemon.json:/etc/docker/daemon.json"} <= set(docker["binds"])


def _sshd_run(
    shell: tuple[str, ...], root: Path, key: str | None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    command = _services()["sshd"]["command"]
    assert command[:5] == ["/sbin/tini", "-s", "--", "/bin/sh", "-c"] and len(command) == 6
    etc_ssh = root / "etc" / "ssh"
    etc_ssh.mkdir(parents=True)
    ssh_sh = root / "usr" / "bin" / "ssh.sh"
    ssh_sh.parent.mkdir(parents=True)
    ssh_sh.write_text(FAKE_EXEC)
    ssh_sh.chmod(0o755)
    if key is not None:
        config_ssh = root / "run" / "config" / "ssh"
        config_ssh.mkdir(parents=True)
        (config_ssh / "host_ed25519_key").write_text(key)
        (config_ssh / "host_ed25519_key").chmod(0o600)
    paths = {
        "/run/config/ssh/": "/run/config/ssh/",
        "/etc/ssh/": "/etc/ssh/",
        "/usr/bin/ssh.sh": "/usr/bin/ssh.sh",
    }
    result = _run(shell, _rooted(command[5], root, paths), root)
    assert result.returncode == 0, result.stderr
    assert (root / "args").read_text().splitlines() == [str(ssh_sh)]  # then the image's own ssh.sh
    return result, etc_ssh


def _keypair(tmp_path: Path) -> tuple[str, str]:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is not installed: apt-get install -y openssh-client")
    key = tmp_path / "pinned"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True)
    return key.read_text(), (tmp_path / "pinned.pub").read_text()


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_sshd_uses_the_pinned_host_key(tmp_path: Path, shell: tuple[str, ...]) -> None:
    private, public = _keypair(tmp_path)
    root = tmp_path / "root"
    _, etc_ssh = _sshd_run(shell, root, private)
    host = etc_ssh / "ssh_host_ed25519_key"
    assert host.read_text() == private
    assert stat.S_IMODE(host.stat().st_mode) == 0o600
    assert (etc_ssh / "ssh_host_ed25519_key.pub").read_text().split()[:2] == public.split()[:2]
    # Nothing else: the image's ssh.sh then sees a host key and generates none.
    assert sorted(p.name for p in etc_ssh.iterdir()) == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize("key", [None, "", "not a key\n"], ids=["worker", "empty", "garbage"])
def test_sshd_without_a_usable_host_key_leaves_key_generation_to_the_image(
    tmp_path: Path, shell: tuple[str, ...], key: str | None
) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is not installed: apt-get install -y openssh-client")
    result, etc_ssh = _sshd_run(shell, tmp_path, key)
    assert list(etc_ssh.iterdir()) == []
    if key:
        assert "not a usable private key" in result.stderr


def test_sshd_keeps_the_authorized_keys_bind() -> None:
    sshd = _services()["sshd"]
    assert "/run/config/ssh/authorized_keys:/root/.ssh/authorized_keys" in sshd["binds.add"]


def test_sshd_sees_the_docker_cli_and_the_docker_socket() -> None:
    sshd = _services()["sshd"]
    # binds.add, not binds: the image's own binds (/dev, /etc, /tmp, ...) stay.
    assert "binds" not in sshd
    # /run carries /run/linuxkit-swarm/bin/docker; /var/run the socket dockerd
    # creates in the host's /var/run (its own bind, checked above).
    assert {"/run:/run", "/var/run:/var/run"} <= set(sshd["binds.add"])
    assert "/var/run:/var/run" in _services()["docker"]["binds"]
    # Never the socket file itself: dockerd may create it after sshd starts.
    assert not [b for b in sshd["binds.add"] if "docker.sock" in b]


# --- the docker CLI for SSH sessions (onboot docker-cli, install-docker-cli) ---------

PKG_DIR = PROJECT_DIR / "linuxkit" / "pkg" / "swarm-guest"
INSTALL_DOCKER_CLI = PKG_DIR / "install-docker-cli"
CLI_DIR = "/run/linuxkit-swarm/bin"


def _onboot() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in idef.load_definition(DEFINITION)["onboot"]}


def test_docker_cli_step_runs_on_boot_from_the_swarm_guest_image() -> None:
    definition = idef.load_definition(DEFINITION)
    onboot = _onboot()
    step = onboot["docker-cli"]
    # onboot: every step has finished before LinuxKit starts any service (sshd).
    assert "docker-cli" not in {e["name"] for e in definition["services"]}
    assert step["image"] == onboot["guestinfo"]["image"] == "linuxkit-swarm/swarm-guest:local"
    assert step["command"] == ["/usr/bin/install-docker-cli"]
    script = INSTALL_DOCKER_CLI.read_text()
    assert "TARGET=${LKS_DOCKER_CLI_TARGET:-" + CLI_DIR + "/docker}" in script
    assert "SOURCE=${LKS_DOCKER_CLI_SOURCE:-/usr/bin/docker}" in script


def test_docker_cli_is_where_the_stack_looks_for_it() -> None:
    assert f"PATH={CLI_DIR}:$PATH" == swarm_steps.REMOTE_PATH


def test_docker_cli_directory_is_an_exec_tmpfs_on_the_host() -> None:
    # The host's /run is noexec, and a bind keeps the flag: the step mounts an
    # exec-capable tmpfs there (in the root namespace, before its container).
    mounts = _onboot()["docker-cli"]["runtime"]["mounts"]
    assert len(mounts) == 1
    (mount,) = mounts
    assert (mount["type"], mount["source"], mount["destination"]) == ("tmpfs", "tmpfs", CLI_DIR)
    assert "exec" in mount["options"] and "noexec" not in mount["options"]
    assert {"nosuid", "nodev", "mode=0755"} <= set(mount["options"])
    assert any(o.startswith("size=") for o in mount["options"])


FAKE_DOCKER = """#!/bin/sh
if [ "$1" = --version ]; then
    echo "Docker version 28.3.3, build fake"
    exit 0
fi
exit 2
"""


@dataclass
class CliRun:
    result: subprocess.CompletedProcess[str]
    source: Path
    target: Path
    console: Path

    @property
    def console_text(self) -> str:
        return self.console.read_text() if self.console.exists() else ""


def _install_cli(
    shell: tuple[str, ...],
    root: Path,
    *,
    docker: str | None = FAKE_DOCKER,
    mode: int = 0o700,
    target: str | None = None,
) -> CliRun:
    """Run install-docker-cli with its paths moved under root (nothing outside it)."""
    source = root / "image" / "usr" / "bin" / "docker"
    source.parent.mkdir(parents=True)
    if docker is not None:
        source.write_text(docker)
        source.chmod(mode)
    target_path = root / "run" / "linuxkit-swarm" / "bin" / "docker"
    console = root / "console"
    console.touch()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LKS_DOCKER_CLI_SOURCE": str(source),
        "LKS_DOCKER_CLI_TARGET": str(target_path) if target is None else target,
        "LKS_CONSOLE": str(console),
    }
    result = subprocess.run(
        [*shell, str(INSTALL_DOCKER_CLI)],
        env=env,
        cwd=root,  # a relative target lands here, if anywhere
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return CliRun(result, source, target_path, console)


def _assert_not_installed(run: CliRun, problem: str) -> None:
    assert run.result.returncode == 1
    assert not run.target.exists()
    # On the console, where an operator looks, and in the onboot log.
    assert problem in run.console_text and problem in run.result.stderr
    assert "SSH sessions on this node have no docker CLI (the node boots on)" in run.console_text


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize("existing", ["none", "directory", "older copy"])
def test_install_docker_cli_copies_the_binary(tmp_path: Path, shell: tuple[str, ...], existing: str) -> None:
    bin_dir = tmp_path / "run" / "linuxkit-swarm" / "bin"
    if existing != "none":  # on a node, the step's tmpfs mount has made the directory
        bin_dir.mkdir(parents=True)
    if existing == "older copy":
        (bin_dir / "docker").write_text("#!/bin/sh\necho old\n")
    run = _install_cli(shell, tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert run.target.read_bytes() == run.source.read_bytes()
    assert not run.target.is_symlink()
    assert stat.S_IMODE(run.target.stat().st_mode) == 0o755  # the image's mode was 0700
    assert sorted(p.name for p in bin_dir.iterdir()) == ["docker"]  # the binary alone, no temp file
    assert "Docker version 28.3.3, build fake" in run.result.stderr
    assert run.console_text == ""
    copied = subprocess.run([str(run.target), "--version"], capture_output=True, text=True, check=False)
    assert copied.returncode == 0 and copied.stdout.startswith("Docker version")


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize(
    ("docker", "mode"), [(None, 0o700), (FAKE_DOCKER, 0o644)], ids=["missing", "not-executable"]
)
def test_install_docker_cli_without_a_cli_in_the_image(
    tmp_path: Path, shell: tuple[str, ...], docker: str | None, mode: int
) -> None:
    _assert_not_installed(
        _install_cli(shell, tmp_path, docker=docker, mode=mode), "missing or not executable"
    )


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_install_docker_cli_removes_a_copy_that_cannot_run(tmp_path: Path, shell: tuple[str, ...]) -> None:
    # As on a noexec /run, or a binary whose loader is missing: exec fails.
    run = _install_cli(shell, tmp_path, docker="#!/nonexistent/ld-musl\n")
    _assert_not_installed(run, "does not run")
    assert "noexec" in run.console_text
    assert list(run.target.parent.iterdir()) == []


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_install_docker_cli_does_not_write_through_a_symlink(tmp_path: Path, shell: tuple[str, ...]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run" / "linuxkit-swarm").mkdir(parents=True)
    (tmp_path / "run" / "linuxkit-swarm" / "bin").symlink_to(elsewhere)
    run = _install_cli(shell, tmp_path)
    assert run.result.returncode == 1
    assert "symbolic link" in run.console_text
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_install_docker_cli_reports_a_directory_it_cannot_create(
    tmp_path: Path, shell: tuple[str, ...]
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "linuxkit-swarm").write_text("a file, not a directory\n")
    run = _install_cli(shell, tmp_path)
    assert run.result.returncode == 1
    assert "cannot create" in run.console_text


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
@pytest.mark.parametrize("target", ["relative", "directory"])
def test_install_docker_cli_refuses_a_target_that_is_not_a_file_path(
    tmp_path: Path, shell: tuple[str, ...], target: str
) -> None:
    # Never an empty one (that means the default, /run/linuxkit-swarm/bin/docker) or
    # any path outside tmp_path: the script must not touch this machine.
    bin_dir = tmp_path / "run" / "linuxkit-swarm" / "bin"
    path = "docker" if target == "relative" else f"{bin_dir}/"
    run = _install_cli(shell, tmp_path, target=path)
    assert run.result.returncode == 1
    assert "must be an absolute file path" in run.console_text
    assert not bin_dir.exists()
