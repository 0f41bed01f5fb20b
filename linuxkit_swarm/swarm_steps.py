"""What the swarm steps run: command lines and environment for ``operations.swarmctl``.

Pure functions, like ``iso_steps``: ``components.swarm_node_pool`` builds its
pulumi-command resources from here. Command lines name no secret and no
machine-specific path; the SSH key and the vCenter URL travel in the
environment, which the component marks secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

_MODULE = '"$LKS_PYTHON" -m operations.swarmctl'

# Each step prints the rollout key it acted on; pulumi-command hands that back as
# PULUMI_COMMAND_STDOUT on the next update, so an update whose key did not change
# (new credentials, a moved checkout) does nothing.
DRAIN_ON_CREATE = f"{_MODULE} drain --on-create"
DRAIN = f"{_MODULE} drain"
READY = f"{_MODULE} ready"
REMOVE = f"{_MODULE} remove"
HOST_KEY = f"{_MODULE} host-key"

# Where a LinuxKit node's swarm-guest onboot step puts the docker CLI for SSH
# sessions (the sshd image has none); first on PATH for every remote command.
REMOTE_PATH = "PATH=/run/linuxkit-swarm/bin:$PATH"

# Runs on manager 0 over SSH (pulumi-command remote.Command): waits until the swarm
# is active there, then prints both join tokens and the address joiners dial.
TOKENS_SCRIPT = (
    r"""set -eu
export """
    + REMOTE_PATH
    + r"""
i=0
state() { docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null; }
until [ "$(state)" = "active true" ]; do
  i=$((i + 1))
  if [ "$i" -ge 150 ]; then
    echo "linuxkit-swarm: the swarm is not active on this manager after 300 s" >&2
    exit 1
  fi
  sleep 2
done
printf '{"worker":"%s","manager":"%s","address":"%s:2377"}\n' \
  "$(docker swarm join-token -q worker)" "$(docker swarm join-token -q manager)" \
  "$(docker info --format '{{.Swarm.NodeAddr}}')"
"""
)


def rollout_key(extra_config: Mapping[str, str]) -> str:
    """Hash of everything that reboots a VM when it changes (its extra_config).

    A hash, not the values: the join token is part of the userdata.
    """
    text = json.dumps(dict(extra_config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_tokens(stdout: str) -> dict[str, str]:
    """The tokens step's JSON: ``worker``, ``manager`` and ``address``."""
    data = json.loads(stdout)
    missing = [k for k in ("worker", "manager", "address") if not data.get(k)]
    if missing:
        raise ValueError(f"the join-tokens step printed no {', '.join(missing)}")
    return {k: str(data[k]) for k in ("worker", "manager", "address")}


def join_command(token: str, address: str) -> str:
    """What a consumer runs on a host to join the swarm as a worker."""
    return f"docker swarm join --token {token} {address}"


def parse_host_key(stdout: str) -> dict[str, str]:
    """The host-key step's JSON: ``private`` and ``public``."""
    data = json.loads(stdout)
    if not data.get("private") or not str(data.get("public", "")).startswith("ssh-ed25519 "):
        raise ValueError("the ssh-host-key step printed no ed25519 key pair")
    return {"private": str(data["private"]), "public": str(data["public"])}


SECRET_ENVIRONMENT = ("VCURL", "LKS_SSH_KEY")


def environment(
    *,
    python: str,
    project_dir: str,
    vcurl: str,
    insecure: bool,
    datacenter: str,
    folder: str,
    ignored_ips: Sequence[str],
    ssh_key: str,
    drain_timeout: int,
    ready_timeout: int,
) -> dict[str, str]:
    """What every swarm step of the stack gets (``operations.swarmctl``'s header).

    The names in ``SECRET_ENVIRONMENT`` must be wrapped as secrets.
    """
    return {
        "LKS_PYTHON": python,
        "PYTHONPATH": project_dir,
        "VCURL": vcurl,
        "LKS_INSECURE": "true" if insecure else "false",
        "LKS_DATACENTER": datacenter,
        "LKS_FOLDER": folder,
        "LKS_IGNORED_IPS": ",".join(ignored_ips),
        "LKS_SSH_KEY": ssh_key,
        "LKS_DRAIN_TIMEOUT": str(drain_timeout),
        "LKS_READY_TIMEOUT": str(ready_timeout),
    }
