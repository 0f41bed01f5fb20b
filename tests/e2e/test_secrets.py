"""No plaintext secret anywhere a `pulumi up` of a managed swarm leaves a trace.

A 1-manager, 1-worker container-backed swarm on lks-vcsim (real dockerd and sshd per
node, ``tests/e2e/containers.py``), so every secret really flows: the vCenter
password (provider config, the push step's and swarm steps' ``VCURL``, the program's
inventory query), the stack's SSH private key (the tokens step's connection, every
swarm step's ``LKS_SSH_KEY``), the managers' SSH host key made by the stack, and both
join tokens (read over SSH from manager 0, handed to the worker in guestinfo).

Searched (``leak_scan``: plain, URL-quoted, inside base64 runs): the output of
``up -v=9 --logtostderr --logflow --debug`` and of an ``up -v=9`` that writes log
files, every ``--event-log`` file, every file under the runs' ``TMPDIR`` and the
CLI's ``PULUMI_HOME/logs``, every command line of every process on the machine
sampled every 50 ms during the ``up``s and the ``destroy`` (the node containers'
included: build, push and remote commands), ``pulumi stack export``, ``stack
output`` and the backend's files, the rendered LinuxKit YAML and the image identity.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyVim.connect import Disconnect

from linuxkit_swarm import guestinfo, ssh_keys

from . import leak_scan
from .conftest import Stack, base_config, create_stack, vcsim_script
from .containers import TIMINGS, need

FOLDER = "Linux/lks-secrets-e2e"
POOL = {"waitForGuestNetTimeout": 2, "shutdownWaitTimeout": 1, "cpus": 1, "memoryMb": 512}
VERBOSE = ("-v=9", "--logflow")


@dataclass
class Swarm:
    """The stack, its SSH login and what the tests collected."""

    stack: Stack
    key: str
    tmp: Path  # TMPDIR of every pulumi run: the CLI's and plugins' log files land here
    started: float  # wall clock when the module's runs began
    outputs_of_runs: list[str]
    samplers: list[leak_scan.CommandLineSampler]

    def ssh_manager(self, command: str) -> str:
        ip = self.stack.outputs()["managerIps"]["lks-node-m0"]
        key = self.tmp.parent / "id"
        argv = [
            "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
            f"root@{ip}", f"PATH=/run/linuxkit-swarm/bin:$PATH {command}",
        ]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout.strip()

    def secrets(self) -> list[leak_scan.Secret]:
        """Every secret of the stack, read from where it lives (the swarm, the secret state)."""
        shown = json.loads(self.stack.pulumi("stack", "export", "--show-secrets").stdout)
        stdout = next(
            r["outputs"]["stdout"]
            for r in shown["deployment"]["resources"]
            if r["urn"].endswith("::managers-ssh-host-key")
        )
        # A secret shows as {<secret signature>: ..., "plaintext": <its value as JSON>}.
        host_key = json.loads(json.loads(stdout["plaintext"]))["private"]
        unrelated = [ssh_keys.new_host_key()[0]]
        return [
            leak_scan.password("the vCenter password", self.stack.sim.password),
            leak_scan.pem_key("the stack's SSH private key", self.key, unrelated),
            leak_scan.pem_key("the managers' SSH host key", host_key, unrelated),
            leak_scan.join_token(
                "the worker join token", self.ssh_manager("docker swarm join-token -q worker")
            ),
            leak_scan.join_token(
                "the manager join token", self.ssh_manager("docker swarm join-token -q manager")
            ),
        ]

    def run(self, name: str, *args: str, sample: bool = True) -> subprocess.CompletedProcess[str]:
        """A pulumi command under the command-line sampler; its output is kept for the scan."""
        started = time.monotonic()
        sampler = leak_scan.CommandLineSampler(interval=0.05)
        if sample:
            self.samplers.append(sampler)
            with sampler:
                proc = self.stack.pulumi(*args)
        else:
            proc = self.stack.pulumi(*args)
        TIMINGS[name] = time.monotonic() - started
        self.outputs_of_runs += [proc.stdout, proc.stderr]
        index = len(self.outputs_of_runs) // 2
        (self.tmp.parent / f"run-{index}.stdout").write_text(proc.stdout)
        (self.tmp.parent / f"run-{index}.stderr").write_text(proc.stderr)
        return proc


@pytest.fixture(scope="module")
def swarm(container_sim: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    need("ssh", "apt-get install -y openssh-client")
    private, _ = ssh_keys.new_host_key()  # any ed25519 key does as the stack's login
    root = tmp_path_factory.mktemp("secrets")
    (root / "id").write_text(private)
    (root / "id").chmod(0o600)
    config = {
        **base_config(container_sim),
        "linuxkit-swarm:folder": FOLDER,
        "linuxkit-swarm:managers": {"count": 1, "namePrefix": "lks-node-m", **POOL},
        "linuxkit-swarm:workers": {"count": 1, "namePrefix": "lks-node-w", **POOL},
        "linuxkit-swarm:rollout": {"drainTimeout": 60, "readyTimeout": 120},
    }
    (root / "project").mkdir()
    st = create_stack(container_sim, root / "project", config, {"sshPrivateKey": private})
    tmp = root / "tmp"
    tmp.mkdir()
    st.env["TMPDIR"] = str(tmp)
    sw = Swarm(st, private, tmp, time.time(), [], [])
    try:
        yield sw
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        print("timings: " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def _no_leaks(leaks: list[leak_scan.Leak]) -> None:
    assert not leaks, "plaintext secrets found:\n" + "\n".join(sorted({str(x) for x in leaks}))


def test_an_up_with_debug_output_shows_no_secret(swarm: Swarm) -> None:
    up = swarm.run("up: 1 manager + 1 worker, --debug s", "up", "--yes", "--skip-preview", "--debug")
    secrets = swarm.secrets()
    # The SDK's output registration (which logged secret outputs in pulumi 3.259.0)
    # ran and printed its debug message.
    assert "register resource outputs prepared" in up.stdout + up.stderr
    _no_leaks(leak_scan.find(up.stdout + up.stderr, secrets, "the output of `pulumi up --debug`"))
    _no_leaks(leak_scan.find_in_files(swarm.stack.event_logs, secrets))


def test_no_command_line_during_the_up_shows_a_secret(swarm: Swarm) -> None:
    sampler = swarm.samplers[0]
    # The sampling saw each kind of step that handles a secret: the push, the swarm
    # steps, and the remote commands inside the node containers.
    for what, pattern in {
        "the push step": r"-m operations\.isotool push",
        "linuxkit push": r"linuxkit push vcenter",
        "a swarm step": r"-m operations\.swarmctl (ready|drain)",
        "a swarm step's SSH": r"^ssh -i \S+/lks-ssh-\S+/id ",
        "a node container": r"lks-boot|dockerd .*vfs",
        "the tokens script on manager 0": r"docker swarm join-token -q",
    }.items():
        assert sampler.matching(pattern), f"{what} was never seen running ({sampler.sweeps} sweeps)"
    assert sampler.longest_gap < 1.0, f"the sampler paused {sampler.longest_gap:.2f} s"
    print(f"sampled {sampler.sweeps} sweeps, {len(sampler.seen)} distinct command lines")
    # The simulator is left out: vCenter's stand-in gets its password as an argument,
    # and it backs each VM by a container that it creates with the VM's guestinfo in
    # the `docker` command line (ESXi hands guestinfo to the guest through VMware Tools).
    _no_leaks(sampler.leaks(swarm.secrets(), exclude=[swarm.stack.sim.pid]))


def test_state_and_outputs_hold_secrets_only_encrypted(swarm: Swarm) -> None:
    secrets = swarm.secrets()
    # The needles are right: each secret is in the state, as the decrypted export shows.
    shown = swarm.stack.pulumi("stack", "export", "--show-secrets").stdout
    found = {leak.secret for leak in leak_scan.find(shown, secrets, "the decrypted export")}
    assert found == {s.name for s in secrets}
    export = swarm.stack.pulumi("stack", "export").stdout
    _no_leaks(leak_scan.find(export, secrets, "`pulumi stack export`"))
    for args in (("stack", "output"), ("stack", "output", "--json"), ("stack", "history", "--json")):
        out = swarm.stack.pulumi(*args)
        _no_leaks(leak_scan.find(out.stdout + out.stderr, secrets, f"`pulumi {' '.join(args)}`"))
    assert swarm.stack.pulumi("stack", "output", "workerJoinCommand").stdout.strip() == "[secret]"
    backend = Path(swarm.stack.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    stack_file = swarm.stack.dir / "Pulumi.e2e.yaml"
    _no_leaks(leak_scan.find_in_files([backend, stack_file], secrets))


def test_the_image_identity_and_the_rendered_definition_hold_no_secret(swarm: Swarm) -> None:
    secrets = swarm.secrets()
    out = swarm.stack.outputs()
    identity = {k: out[k] for k in ("imageHash", "isoDatastorePath", "imageSource")}
    si = swarm.stack.sim.connect()
    try:
        content = si.RetrieveContent()
        for name in ("lks-node-m0", "lks-node-w0"):
            vm = content.searchIndex.FindByInventoryPath(
                f"{vcsim_script.DATACENTER}/vm/{vcsim_script.PARENT_FOLDER}/{FOLDER}/{name}"
            )
            identity[name] = {o.key: o.value for o in vm.config.extraConfig}[guestinfo.IMAGE_KEY]
    finally:
        Disconnect(si)
    assert identity["lks-node-m0"] == identity["lks-node-w0"] == out["imageHash"]
    isos = [
        str(p.relative_to(swarm.stack.sim.datastore_dir))
        for p in Path(swarm.stack.sim.datastore_dir).rglob("*.iso")
    ]
    assert out["isoDatastorePath"] in isos
    _no_leaks(leak_scan.find(json.dumps([identity, isos]), secrets, "the image identity and ISO names"))

    # The build path: the rendered definition is the build step's stdin (and its file
    # under .build); a preview shows the step as the engine would run it.
    swarm.stack.set_config("image", {})
    try:
        preview = swarm.run("preview: the build path s", "preview", "--json", sample=False)
    finally:
        swarm.stack.set_config("image", base_config(swarm.stack.sim)["linuxkit-swarm:image"])
    steps = json.loads(preview.stdout)["steps"]
    build = next(s for s in steps if s["urn"].endswith("::os-image-build"))
    rendered = build["newState"]["inputs"]["stdin"]
    assert "linuxkit-swarm/swarm-guest:" in rendered and "onboot:" in rendered
    _no_leaks(leak_scan.find(rendered, secrets, "the rendered LinuxKit YAML"))
    _no_leaks(leak_scan.find(preview.stdout + preview.stderr, secrets, "`pulumi preview --json`"))
    _no_leaks(leak_scan.find_in_files([swarm.stack.event_logs[-1], swarm.stack.dir / ".build"], secrets))


def test_verbose_logs_show_secrets_only_in_pulumis_property_records(swarm: Swarm) -> None:
    """A new image at -v=9: the push is replaced (the old ISO's delete logs in to vCenter),
    both nodes drain and come back over SSH; then a destroy whose -v=9 logs go to files.

    At -v=9 Pulumi itself logs property values, secrets included: the engine and every
    Go provider each property they marshal (rpc.go), the vSphere provider's Terraform
    bridge its Terraform inputs. Those records are the known carriers (README); every
    other line of the logs, and every command line, must hold no secret.
    """
    secrets = swarm.secrets()
    before = swarm.stack.outputs()["imageHash"]
    swarm.stack.set_placeholder_iso("2")
    up = swarm.run(
        "up: rollout of 2 nodes, -v=9 --logtostderr --logflow s",
        *("up", "--yes", "--skip-preview", *VERBOSE, "--logtostderr"),
    )
    assert swarm.stack.outputs()["imageHash"] != before
    swarm.run("destroy: -v=9 --logflow to log files s", "destroy", "--yes", "--skip-preview", *VERBOSE)
    rollout, destroy = swarm.samplers[1], swarm.samplers[2]
    assert rollout.matching(r"-m operations\.swarmctl drain") and rollout.matching(r"docker node update")
    assert destroy.matching(r"-m operations\.isotool delete")
    for sampler in (rollout, destroy):
        _no_leaks(sampler.leaks(secrets, exclude=[swarm.stack.sim.pid]))

    log_files = [p for p in swarm.tmp.rglob("*") if p.is_file()]
    assert [p for p in log_files if "pulumi" in p.name], f"no pulumi log files in {swarm.tmp}"
    texts = {"the output of `pulumi up -v=9 --logtostderr --logflow`": up.stdout + up.stderr}
    texts |= {str(p): p.read_text(errors="replace") for p in log_files}
    texts |= {str(p): p.read_text(errors="replace") for p in swarm.stack.event_logs[-2:]}
    records = 0
    for where, text in texts.items():
        rest, pulumis = leak_scan.split_property_records(text)
        records += pulumis.count("property for RPC[")
        _no_leaks(leak_scan.find(rest, secrets, where))
    assert records > 1000, records  # the logs really were at -v=9

    # The CLI's automatic logs (PULUMI_HOME/logs): a stack's are encrypted with its
    # secrets provider, the others gzipped.
    home_logs = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi")) / "logs"
    fresh = [p for p in home_logs.glob("*") if p.is_file() and p.stat().st_mtime >= swarm.started]
    assert fresh
    _no_leaks(leak_scan.find_in_files(fresh, secrets))
