"""Capture real `pulumi preview --json` documents from the simulator (the preview-summary fixtures).

``python -m tests.e2e.preview_capture [OUT_DIR]`` (default ``tests/fixtures/preview``)
starts its own vcsim, runs the scenarios below on one 3-worker stack and writes one
``<scenario>.json`` per preview, exactly as the CLI printed it (``.events.jsonl``: the
same preview as the engine's event stream). The e2e test
``tests/e2e/test_preview_summary.py`` runs the same scenarios again. Every document is
checked for the run's simulator password and join token before it is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import PROJECT_DIR, SECRET_TOKEN, Stack, base_config, create_stack

sys.path.insert(0, str(PROJECT_DIR / "scripts"))  # as in conftest: the simulator helpers
import vcsim as vcsim_script

FIXTURE_DIR = PROJECT_DIR / "tests" / "fixtures" / "preview"
PREFIX = "pv-w-"
STREAMING = "PULUMI_ENABLE_STREAMING_JSON_PREVIEW"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"


# A policy pack for the policy-violation fixture (written out, so its imports stay out of
# the project's lint and type checks): node VMs must be protected, i.e. allowDataLoss false.
POLICY_PACK = {
    "PulumiPolicy.yaml": "runtime:\n  name: python\n  options:\n    virtualenv: venv\n"
    "description: swarm-guard, for the preview-summary fixtures\n",
    "requirements.txt": "pulumi==3.259.0\npulumi-policy==1.21.0\n",
    "__main__.py": """from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def vm_protected(args, report_violation):
    if args.resource_type == "vsphere:index/virtualMachine:VirtualMachine" and not args.opts.protect:
        report_violation("a Swarm node VM must be protected (allowDataLoss: false)")


PolicyPack(
    name="swarm-guard",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name="vm-protected", description="VMs are protected", validate=vm_protected),
    ],
)
""",
}


def policy_pack(root: Path) -> Path:
    """The policy pack in ``root`` with its virtualenv (pip, from PyPI)."""
    root.mkdir()
    for name, text in POLICY_PACK.items():
        (root / name).write_text(text)
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    pip = [str(root / "venv" / "bin" / "pip"), "install", "--quiet", "-r", str(root / "requirements.txt")]
    subprocess.run(pip, check=True)
    return root


def workers(count: int, **extra: Any) -> dict[str, Any]:
    """The worker pool of the capture stack: plain simulator VMs, no guest waits."""
    return {
        "count": count,
        "namePrefix": PREFIX,
        "waitForGuestNetTimeout": 0,
        "waitForGuestIpTimeout": 0,
        **extra,
    }


def stack_config(sim: vcsim_script.Vcsim) -> dict[str, Any]:
    """3 workers joining a swarm run elsewhere (so the join token is in every VM's guestinfo)."""
    return {
        **base_config(sim),
        "linuxkit-swarm:folder": "Linux/preview-summary",
        "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
        "linuxkit-swarm:workers": workers(3),
        "linuxkit-swarm:rollout": {"maxUnavailable": 2},
        "linuxkit-swarm:allowDataLoss": "true",  # the VMs unprotected: deletes and replaces preview
    }


def preview(stack: Stack, *extra: str, check: bool = True) -> str:
    """The stdout of `pulumi preview --json` (a failed preview still prints its document)."""
    proc = stack.pulumi("preview", "--json", *extra, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"pulumi preview failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    if not check and proc.returncode == 0:
        raise AssertionError(f"pulumi preview was expected to fail:\n{proc.stdout}")
    json.loads(proc.stdout)  # a document, or the capture is wrong
    return proc.stdout


def preview_stream(stack: Stack, *extra: str, check: bool = True) -> str:
    """The same preview as the engine's event stream (JSON lines; policy events only show here)."""
    stack.env[STREAMING] = "true"
    try:
        proc = stack.pulumi("preview", "--json", *extra, check=False)
    finally:
        del stack.env[STREAMING]
    if check != (proc.returncode == 0):
        raise AssertionError(f"pulumi preview exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        json.loads(line)
    return proc.stdout


def vm_urn(stack: Stack, name: str) -> str:
    """The URN of the worker VM ``name`` in the stack's state."""
    state = json.loads(stack.pulumi("stack", "export").stdout)
    urns = [
        r["urn"]
        for r in state["deployment"]["resources"]
        if r["type"] == VM_TYPE and r["urn"].endswith(f"::workers-{name}")
    ]
    if len(urns) != 1:
        raise AssertionError(f"expected one VM {name} in the state, found {urns}")
    return str(urns[0])


def scenarios(stack: Stack, policies: Path | None = None) -> Iterator[tuple[str, str]]:
    """(file name, preview output) in order; each scenario leaves the stack as it found it."""
    yield "create.json", preview(stack)
    stack.up()
    yield "no-op.json", preview(stack)
    if policies is not None:
        # The digest leaves policy events out; the event stream has them.
        yield "policy-violation.json", preview(stack, "--policy-pack", str(policies), check=False)
        yield (
            "policy-violation.events.jsonl",
            preview_stream(stack, "--policy-pack", str(policies), check=False),
        )

    stack.set_placeholder_iso("2")  # a new image: the running VMs roll in batches
    yield "image-change.json", preview(stack)
    yield "image-change.events.jsonl", preview_stream(stack)
    stack.set_placeholder_iso("1")

    stack.set_config("workers", workers(3, dataDiskGb=20))
    yield "data-disk-grow.json", preview(stack)
    stack.set_config("workers", workers(3))

    yield "replace-vm.json", preview(stack, "--replace", vm_urn(stack, f"{PREFIX}1"))

    stack.set_config("workers", workers(1))
    yield "scale-in.json", preview(stack)
    # A protected VM (what `allowDataLoss: false` sets) makes the same scale-in fail.
    protected = vm_urn(stack, f"{PREFIX}2")
    stack.pulumi("state", "protect", "--yes", protected)
    yield "scale-in-protected.json", preview(stack, check=False)
    yield "scale-in-protected.events.jsonl", preview_stream(stack, check=False)
    stack.pulumi("state", "unprotect", "--yes", protected)
    # With allowDataLoss false the program itself refuses the scale-in, before any step.
    stack.set_config("allowDataLoss", "false")
    yield "scale-in-refused.json", preview(stack, check=False)
    stack.set_config("allowDataLoss", "true")
    stack.set_config("workers", workers(3))


def leaked(document: str, secrets: list[str]) -> list[str]:
    """Which of ``secrets`` occur in ``document`` (by position, never the values)."""
    return [f"secret #{i}" for i, s in enumerate(secrets) if s in document]


@contextmanager
def capture_stack(root: Path) -> Iterator[Stack]:
    """A fresh simulator and the capture stack in ``root``; destroyed and stopped after."""
    sim = vcsim_script.start(root / "vcsim")
    try:
        project = root / "project"
        project.mkdir()
        st = create_stack(sim, project, stack_config(sim), {"swarmJoinToken": SECRET_TOKEN})
        try:
            yield st
        finally:
            st.pulumi("destroy", "--yes", "--skip-preview", check=False)
    finally:
        vcsim_script.stop(root / "vcsim")


def capture(stack: Stack, write: Callable[[str, str], None], policies: Path | None = None) -> list[str]:
    """Run every scenario on ``stack`` and hand each document to ``write``; the names in order."""
    names = []
    secrets = [stack.sim.password, SECRET_TOKEN]
    for name, document in scenarios(stack, policies):
        problems = leaked(document, secrets)
        if problems:
            raise AssertionError(f"preview {name} holds plaintext secrets: {problems}")
        write(name, document)
        names.append(name)
    return names


def main(argv: list[str]) -> int:
    """Write the fixtures to ``argv[0]`` (default tests/fixtures/preview)."""
    out = Path(argv[0]) if argv else FIXTURE_DIR
    out.mkdir(parents=True, exist_ok=True)

    def write(name: str, document: str) -> None:
        path = out / name
        path.write_text(document)
        print(f"wrote {path}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="preview-capture-") as tmp:
        policies = policy_pack(Path(tmp) / "policy-pack")
        with capture_stack(Path(tmp)) as st:
            capture(st, write, policies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
