"""The policy pack on the real engine: `pulumi preview --policy-pack policy` against vcsim.

The pack runs in its own virtualenv (policy/.venv, scripts/bootstrap-venv.sh),
started by the real Python language host. A compliant stack passes; changes the
program lets through fail, and the output names the policy.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import vcsim as vcsim_script
import yaml

from tests.e2e.conftest import PROJECT_DIR, SECRET_TOKEN, STACK, Stack, base_config, create_stack

PACK = PROJECT_DIR / "policy"
BOOTSTRAP_HINT = "bash scripts/bootstrap-venv.sh"


@pytest.fixture(scope="module")
def pack() -> Path:
    """The pack and its virtualenv; a missing venv fails with the command that makes it."""
    python = PACK / ".venv" / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import pulumi_policy"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.fail(f"policy/.venv lacks pulumi_policy ({probe.stderr.strip()}): run {BOOTSTRAP_HINT}")
    return PACK


@pytest.fixture(scope="module")
def policy_stack(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A compliant stack: staging (allowUnverifiedSsl is fine there), protected VMs, a secret token.

    Only previewed: nothing to destroy.
    """
    config = {
        **{k: v for k, v in base_config(simulator).items() if k != "linuxkit-swarm:allowDataLoss"},
        "linuxkit-swarm:folder": "Linux/linuxkit-policy",
        "linuxkit-swarm:environment": "staging",
        "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
        "linuxkit-swarm:workers": {
            "count": 2,
            "namePrefix": "pol-w-",
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 0,
        },
    }
    return create_stack(
        simulator, tmp_path_factory.mktemp("policy"), config, {"swarmJoinToken": SECRET_TOKEN}
    )


def preview(st: Stack, pack: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return st.pulumi("preview", "--policy-pack", str(pack), *extra, check=False)


def test_compliant_stack_passes(policy_stack: Stack, pack: Path) -> None:
    proc = preview(policy_stack, pack)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "linuxkit-swarm@v0.1.0" in proc.stdout
    assert SECRET_TOKEN not in proc.stdout + proc.stderr


def test_unverified_tls_on_production_fails(policy_stack: Stack, pack: Path) -> None:
    policy_stack.set_config("environment", "production")
    try:
        proc = preview(policy_stack, pack)
    finally:
        policy_stack.set_config("environment", "staging")
    assert proc.returncode != 0
    assert "verified-vcenter-tls-in-production" in proc.stdout
    assert "mandatory" in proc.stdout


def test_cpus_above_the_packs_bound_fail(policy_stack: Stack, pack: Path, tmp_path: Path) -> None:
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"vm-size-within-bounds": {"maxCpus": 1}}))
    proc = preview(policy_stack, pack, "--policy-pack-config", str(config))
    assert proc.returncode != 0
    assert "vm-size-within-bounds" in proc.stdout
    assert "pol-w-0: 2 CPUs, outside 1..1" in proc.stdout


def test_insecure_console_on_staging_is_advisory(policy_stack: Stack, pack: Path) -> None:
    """A built image (the build step's stdin is the rendered YAML) with the root console: a warning."""
    policy_stack.set_config("image", {"insecureConsole": True})
    try:
        proc = preview(policy_stack, pack)
    finally:
        policy_stack.set_config("image", base_config(policy_stack.sim)["linuxkit-swarm:image"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[advisory]  insecure-console-only-on-dev" in proc.stdout
    assert "os-image-build: the image has a root console without password" in proc.stdout


# A program that hands the vsphere provider a plain-text password: linuxkit-swarm
# itself refuses one before registering anything, so the secret check is shown here.
PLAIN_PASSWORD_PROGRAM = """\
import pulumi
import pulumi_vsphere as vsphere

config = pulumi.Config()
vsphere.Provider(
    "plain-password",
    vsphere_server=config.require("server"),
    user=config.require("user"),
    password=config.require("vcenterPassword"),
    allow_unverified_ssl=True,
)
"""


def test_plain_text_vcenter_password_fails(simulator: vcsim_script.Vcsim, pack: Path, tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text(PLAIN_PASSWORD_PROGRAM)
    (tmp_path / "Pulumi.yaml").write_text(
        "name: plain-password-probe\nruntime:\n  name: python\n  options:\n"
        f"    toolchain: pip\n    virtualenv: {PROJECT_DIR / '.venv'}\n"
    )
    (tmp_path / ".state").mkdir()
    env = {
        **os.environ,
        "PULUMI_BACKEND_URL": f"file://{tmp_path / '.state'}",
        "PULUMI_CONFIG_PASSPHRASE": "",
        "PULUMI_DEBUG_COMMANDS": "true",  # Stack.pulumi passes --event-log
    }
    st = Stack(tmp_path, env, simulator)
    st.pulumi("stack", "init")
    stack_file = tmp_path / f"Pulumi.{STACK}.yaml"
    data = (yaml.safe_load(stack_file.read_text()) if stack_file.exists() else None) or {}
    data["config"] = {
        "plain-password-probe:server": simulator.server,
        "plain-password-probe:user": simulator.user,
        "linuxkit-swarm:environment": "dev",  # not production: only the secret check speaks
    }
    stack_file.write_text(yaml.safe_dump(data))
    # Plain text on purpose (the CLI asks for --secret or --plaintext).
    st.pulumi("config", "set", "--plaintext", "vcenterPassword", stdin=simulator.password)
    proc = preview(st, pack)
    assert proc.returncode != 0
    assert "[mandatory]  secrets-stay-secret" in proc.stdout
    assert "plain-password: the vCenter password (password) is plain text" in proc.stdout
    assert simulator.password not in proc.stdout + proc.stderr
