"""What the ISO steps run: pulumi-command lines, the vCenter URL, and masking.

Pure functions: ``components.linuxkit_image`` builds its commands here, and
``operations.isotool`` (which runs them) masks its output with :func:`mask`.
The command lines name no secret: credentials travel only in ``$VCURL``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from urllib.parse import quote, unquote, urlsplit


def vcenter_url(server: str, user: str, password: str) -> str:
    """``https://user:pass@server/sdk`` as ``linuxkit push vcenter`` expects it."""
    return f"https://{quote(user, safe='')}:{quote(password, safe='')}@{server}/sdk"


def mask(text: str, secrets: Sequence[str]) -> str:
    """Replace every secret (plain and URL-quoted) in text."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, "[secret]")
    return text


def url_secrets(url: str) -> list[str]:
    """The URL and its password in every form a tool might print."""
    parts = urlsplit(url)
    return [url, unquote(parts.password or ""), parts.password or ""]


# Command lines for pulumi-command. They name no secret and no machine-specific
# path: those come from the environment (LKS_*, VCURL), so moving the checkout or
# the virtualenv is an in-place no-op update, never a rebuild or re-push.
_MODULE = '"$LKS_PYTHON" -m operations.isotool'
NOOP_UPDATE = "echo 'linuxkit-swarm: image identity unchanged; nothing to build or push'"


def build_command_line(iso_stem: str, packages: Sequence[tuple[str, str]]) -> str:
    """Shell line of the build step; the rendered YAML arrives on stdin.

    Packages are named relative to the definition's directory (the step's cwd).
    """
    words = [_MODULE, "build", '--linuxkit "$LKS_LINUXKIT"', '--out-dir "$LKS_OUT"']
    words += [f"--name {shlex.quote(iso_stem)}"]
    words += [f"--package {shlex.quote(f'{path}={tag}')}" for path, tag in packages]
    return " ".join(words)


def push_command_line(datacenter: str, datastore: str, folder: str, *, prebuilt: bool) -> str:
    """Shell line of the push step; ``$LKS_ISO`` is the local ISO, ``$VCURL`` the target."""
    words = [_MODULE, "push", '--linuxkit "$LKS_LINUXKIT"', '--iso "$LKS_ISO"']
    if prebuilt:
        words.append('--source "$LKS_SOURCE"')
    words += [
        f"--datacenter {shlex.quote(datacenter)}",
        f"--datastore {shlex.quote(datastore)}",
        f"--folder {shlex.quote(folder)}",
    ]
    return " ".join(words)


def delete_command_line(datacenter: str, datastore: str, path: str, *, insecure: bool) -> str:
    """Shell line that removes a superseded ISO once nothing boots from it."""
    words = [
        _MODULE,
        "delete",
        f"--datacenter {shlex.quote(datacenter)}",
        f"--datastore {shlex.quote(datastore)}",
        f"--path {shlex.quote(path)}",
    ]
    if insecure:
        words.append("--insecure")
    return " ".join(words)
