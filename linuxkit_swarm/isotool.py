"""The ISO's life cycle steps, run by pulumi-command: build, push, delete.

``python -m linuxkit_swarm.isotool <step> ...`` is what the LinuxKitImage
component's commands execute. Keeping the steps here (not in inline shell)
gives clear errors that say what failed and how to fix it, masks the vCenter
credentials in anything printed, and lets tests run each step directly.

Secrets never travel in argv: the vCenter URL with credentials comes from the
``VCURL`` environment variable, which the component sets as a secret.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from linuxkit_swarm.image_definition import ARCH, ISO_FORMAT, PACKAGE_ORG

EXIT_USAGE = 2
EXIT_NOT_FOUND = 127


class StepError(Exception):
    """A step failed; the message says what and how to fix it."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    return [url, unquote(parts.password or ""), parts.password or ""]


def _resolve_executable(linuxkit: str) -> str:
    found = shutil.which(linuxkit)
    if found is None:
        raise StepError(
            f"the linuxkit executable {linuxkit!r} was not found (config key "
            "linuxkit-swarm:image.linuxkit). Install it (`bash tools/build.sh linuxkit` builds "
            "it from Go modules), point image.linuxkit at it, or set image.prebuiltIso to an "
            "ISO built elsewhere.",
            EXIT_NOT_FOUND,
        )
    return found


def _run(argv: Sequence[str], secrets: Sequence[str], what: str, hint: str) -> None:
    """Run a command, print its output with secrets masked, fail with a hint."""
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    for stream, target in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
        if stream:
            target.write(mask(stream, secrets))
    if proc.returncode != 0:
        raise StepError(f"{what} failed (exit {proc.returncode}). {hint}")


def build(
    linuxkit: str, out_dir: Path, name: str, definition_yaml: str, packages: Sequence[tuple[Path, str]]
) -> Path:
    """Write the rendered definition, build local packages (dir, tag), then the ISO."""
    exe = _resolve_executable(linuxkit)
    out_dir.mkdir(parents=True, exist_ok=True)
    definition = out_dir / f"{name}.yml"
    definition.write_text(definition_yaml, encoding="utf-8")
    docker_hint = (
        "Building needs a running Docker engine (linuxkit runs linuxkit/mkimage-* "
        "containers) and access to the image registry: check `docker info`, or set "
        "linuxkit-swarm:image.prebuiltIso to an ISO built elsewhere."
    )
    for package, tag in packages:
        # --org/--hash give the tag the rendered definition refers to (no git needed).
        argv = [exe, "pkg", "build", "--org", PACKAGE_ORG, "--hash", tag, "--platforms", f"linux/{ARCH}"]
        _run([*argv, str(package)], [], f"`linuxkit pkg build {package}`", docker_hint)
    argv = [exe, "build", "--format", ISO_FORMAT, "--arch", ARCH, "--name", name]
    _run([*argv, "--dir", str(out_dir), str(definition)], [], "`linuxkit build`", docker_hint)
    iso = out_dir / f"{name}.iso"
    if not iso.is_file() or iso.stat().st_size == 0:
        raise StepError(f"`linuxkit build` succeeded but wrote no {iso}. {docker_hint}")
    return iso


def push(
    linuxkit: str,
    iso: Path,
    datacenter: str,
    datastore: str,
    folder: str,
    url: str,
    source: Path | None = None,
) -> None:
    """Upload ``iso`` to ``[datastore] folder/<basename>``; stage ``source`` there first."""
    exe = _resolve_executable(linuxkit)
    if source is not None:
        # A prebuilt ISO keeps its own name; the datastore path is content-addressed.
        iso.parent.mkdir(parents=True, exist_ok=True)
        if iso.is_symlink() or iso.exists():
            iso.unlink()
        iso.symlink_to(source.resolve())
    if not iso.is_file():
        raise StepError(
            f"the ISO {iso} to push does not exist: run `pulumi up` again so the build step "
            "recreates it (the build directory .build/ may have been cleaned)."
        )
    # No --url: linuxkit reads VCURL from the environment, so argv carries no credentials.
    argv = [exe, "push", "vcenter", "--datacenter", datacenter, "--datastore", datastore, "--folder", folder]
    _run(
        [*argv, str(iso)],
        _url_secrets(url),
        "`linuxkit push vcenter`",
        "Check vsphere:vsphereServer, vsphere:user, vsphere:password, the datacenter and "
        "datastore names, and that the user may upload files to the datastore.",
    )


def delete(datacenter: str, datastore: str, path: str, url: str, insecure: bool) -> str:
    """Delete a superseded ISO unless a VM still boots from it; return what happened."""
    from pyVim.connect import Disconnect, SmartConnect  # lazy: only this step needs pyVmomi
    from pyVmomi import vim

    parts = urlsplit(url)
    try:
        si = SmartConnect(
            host=parts.hostname,
            port=parts.port or 443,
            user=unquote(parts.username or ""),
            pwd=unquote(parts.password or ""),
            disableSslCertValidation=insecure,
        )
    except Exception as exc:
        raise StepError(
            mask(f"cannot connect to vCenter to delete [{datastore}] {path}: {exc}", _url_secrets(url))
        ) from None
    try:
        content = si.RetrieveContent()
        dc = next(
            (
                e
                for e in content.rootFolder.childEntity
                if isinstance(e, vim.Datacenter) and e.name == datacenter
            ),
            None,
        )
        if dc is None:
            raise StepError(f"datacenter {datacenter!r} not found while deleting [{datastore}] {path}")
        ds_path = f"[{datastore}] {path}"
        users = _vms_using_iso(content, dc, ds_path)
        if users:
            return (
                f"kept {ds_path}: still attached to {', '.join(sorted(users))}; it is deleted "
                "by a later rollout, or by hand with `govc datastore.rm`"
            )
        task = content.fileManager.DeleteDatastoreFile_Task(name=ds_path, datacenter=dc)
        state, error = _task_outcome(content, task)
        if state == vim.TaskInfo.State.error:
            if isinstance(error, vim.fault.FileNotFound):
                return f"{ds_path} was already gone"
            raise StepError(f"deleting {ds_path} failed: {getattr(error, 'msg', error)}")
        return f"deleted {ds_path}"
    finally:
        Disconnect(si)


def _task_outcome(content: Any, task: Any) -> tuple[str, Any]:
    """Wait for a task; read only its state and error.

    Reading all of ``task.info`` fails on some servers (vcsim reports the file
    manager as the task's entity, which pyVmomi refuses to deserialize).
    """
    from pyVmomi import vim, vmodl

    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error"])
        ],
    )
    while True:
        (result,) = content.propertyCollector.RetrieveContents([spec])
        props = {p.name: p.val for p in result.propSet}
        if props["info.state"] in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            return props["info.state"], props.get("info.error")
        time.sleep(0.2)


def _vms_using_iso(content: object, dc: object, ds_path: str) -> list[str]:
    from pyVmomi import vim

    view = content.viewManager.CreateContainerView(dc.vmFolder, [vim.VirtualMachine], True)  # type: ignore[attr-defined]
    try:
        users = []
        for vm in view.view:
            devices = vm.config.hardware.device if vm.config else []
            for device in devices:
                backing = getattr(device, "backing", None)
                if (
                    isinstance(device, vim.vm.device.VirtualCdrom)
                    and getattr(backing, "fileName", None) == ds_path
                ):
                    users.append(vm.name)
        return users
    finally:
        view.Destroy()


# Command lines for pulumi-command. They name no secret and no machine-specific
# path: those come from the environment (LKS_*, VCURL), so moving the checkout or
# the virtualenv is an in-place no-op update, never a rebuild or re-push.
_MODULE = '"$LKS_PYTHON" -m linuxkit_swarm.isotool'
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linuxkit_swarm.isotool", description=__doc__)
    steps = parser.add_subparsers(dest="step", required=True)
    b = steps.add_parser("build", help="build the ISO; the rendered definition comes on stdin")
    b.add_argument("--linuxkit", required=True)
    b.add_argument("--out-dir", type=Path, required=True)
    b.add_argument("--name", required=True)
    b.add_argument("--package", action="append", default=[], help="DIR=TAG of a local package")
    p = steps.add_parser("push", help="upload the ISO; the vCenter URL comes from $VCURL")
    p.add_argument("--linuxkit", required=True)
    p.add_argument("--iso", type=Path, required=True)
    p.add_argument("--source", type=Path)
    p.add_argument("--datacenter", required=True)
    p.add_argument("--datastore", required=True)
    p.add_argument("--folder", required=True)
    d = steps.add_parser("delete", help="delete a superseded ISO; the vCenter URL comes from $VCURL")
    d.add_argument("--datacenter", required=True)
    d.add_argument("--datastore", required=True)
    d.add_argument("--path", required=True)
    d.add_argument("--insecure", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.step == "build":
            packages = [(Path(p.rpartition("=")[0]), p.rpartition("=")[2]) for p in args.package]
            iso = build(args.linuxkit, args.out_dir, args.name, sys.stdin.read(), packages)
            print(f"built {iso}")
            return 0
        url = os.environ.get("VCURL", "")
        if not url:
            raise StepError("VCURL is not set: the vCenter URL comes only from the environment", EXIT_USAGE)
        if args.step == "push":
            push(args.linuxkit, args.iso, args.datacenter, args.datastore, args.folder, url, args.source)
            print(f"pushed [{args.datastore}] {args.folder}/{args.iso.name}")
        else:
            print(delete(args.datacenter, args.datastore, args.path, url, args.insecure))
        return 0
    except StepError as exc:
        print(f"linuxkit-swarm: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
