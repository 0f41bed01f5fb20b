"""The ISO's life cycle steps, run by pulumi-command: build, push, delete.

``python -m operations.isotool <step> ...`` is what the LinuxKitImage
component's commands execute. Keeping the steps here (not in inline shell)
gives clear errors that say what failed and how to fix it, masks the vCenter
credentials in anything printed, and lets tests run each step directly.

Secrets never travel in argv: the vCenter URL with credentials comes from the
``VCURL`` environment variable, which the component sets as a secret.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from linuxkit_swarm import iso_steps
from linuxkit_swarm.image_definition import ARCH, ISO_FORMAT, PACKAGE_ORG
from operations import vcenter

EXIT_USAGE = 2
EXIT_NOT_FOUND = 127
# Seconds a `linuxkit push` may take: a LinuxKit ISO is tens of MB, so half an hour
# is a stalled upload or a vCenter that stopped answering, never a slow link.
PUSH_TIMEOUT = 1800.0


class StepError(Exception):
    """A step failed; the message says what and how to fix it."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


def _run(
    argv: Sequence[str], secrets: Sequence[str], what: str, hint: str, timeout: float | None = None
) -> None:
    """Run a command, print its output with secrets masked, fail with a hint.

    ``timeout`` bounds a command that talks to vCenter: govmomi's HTTP client has
    no overall deadline, so a vCenter that stops answering mid-upload would hang it.
    """
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        for partial, target in ((exc.stdout, sys.stdout), (exc.stderr, sys.stderr)):
            if partial:
                text = partial.decode(errors="replace") if isinstance(partial, bytes) else partial
                target.write(iso_steps.mask(text, secrets))
        raise StepError(
            f"{what} did not finish within {timeout:g} s: vCenter is not answering or the "
            f"upload stalled. {hint}"
        ) from None
    for stream, target in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
        if stream:
            target.write(iso_steps.mask(stream, secrets))
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
    insecure: bool = False,
    if_missing: bool = False,
    push_timeout: float = PUSH_TIMEOUT,
) -> bool:
    """Upload ``iso`` to ``[datastore] folder/<basename>``; stage ``source`` there first.

    With ``if_missing``, nothing is uploaded when the datastore has the file already.
    Returns whether it uploaded.
    """
    if if_missing:
        try:
            if iso_in_datastore(url, insecure, datacenter, datastore, f"{folder}/{iso.name}"):
                return False
        except vcenter.ConnectError as exc:
            raise StepError(_connect_message(f"check [{datastore}] {folder}/{iso.name}", exc, url)) from None
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
        iso_steps.url_secrets(url),
        "`linuxkit push vcenter`",
        "Check vsphere:vsphereServer, vsphere:user, vsphere:password, the datacenter and "
        "datastore names, and that the user may upload files to the datastore.",
        timeout=push_timeout,
    )
    return True


def iso_in_datastore(url: str, insecure: bool, datacenter: str, datastore: str, path: str) -> bool:
    """Whether ``[datastore] path`` exists (datastore browser); raises vcenter.ConnectError."""
    from pyVmomi import vim

    folder, _, name = path.rpartition("/")
    with vcenter.session(url, insecure) as content:
        dc = vcenter.find_datacenter(content, datacenter)
        ds = next((d for d in dc.datastore if d.name == datastore), None) if dc is not None else None
        if ds is None:
            raise StepError(f"datastore {datastore!r} not found in datacenter {datacenter!r}")
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[name])
        task = ds.browser.SearchDatastore_Task(datastorePath=f"[{datastore}] {folder}", searchSpec=spec)
        state, result, error = _wait(content, task)
    if state == vim.TaskInfo.State.success:
        return any(f.path == name for f in getattr(result, "file", None) or [])
    if isinstance(error, vim.fault.FileNotFound):
        return False  # not even the folder
    raise StepError(f"looking for [{datastore}] {path} failed: {getattr(error, 'msg', error)}")


def _wait(content: Any, task: Any) -> tuple[Any, Any, Any]:
    """State, result and error of a finished task, read as properties (see vcenter._task_outcome)."""
    from pyVmomi import vim, vmodl

    collector = vmodl.query.PropertyCollector
    spec = collector.FilterSpec(
        objectSet=[collector.ObjectSpec(obj=task)],
        propSet=[collector.PropertySpec(type=vim.Task, pathSet=["info.state", "info.result", "info.error"])],
    )
    while True:
        (found,) = content.propertyCollector.RetrieveContents([spec])
        props = {p.name: p.val for p in found.propSet}
        if props["info.state"] in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            return props["info.state"], props.get("info.result"), props.get("info.error")
        time.sleep(0.1)


def _connect_message(what: str, exc: Exception, url: str) -> str:
    return iso_steps.mask(f"cannot connect to vCenter to {what}: {exc}", iso_steps.url_secrets(url))


def delete(datacenter: str, datastore: str, path: str, url: str, insecure: bool) -> str:
    """Delete a superseded ISO unless a VM still boots from it; return what happened."""
    ds_path = f"[{datastore}] {path}"
    try:
        with vcenter.session(url, insecure) as content:
            dc = vcenter.find_datacenter(content, datacenter)
            if dc is None:
                raise StepError(f"datacenter {datacenter!r} not found while deleting {ds_path}")
            users = vcenter.vms_using_iso(content, dc, ds_path)
            if users:
                return (
                    f"kept {ds_path}: still attached to {', '.join(sorted(users))}; it is deleted "
                    "by a later rollout, or by hand with `govc datastore.rm`"
                )
            outcome = vcenter.delete_datastore_file(content, dc, ds_path)
    except vcenter.ConnectError as exc:
        raise StepError(_connect_message(f"delete {ds_path}", exc, url)) from None
    if outcome.error is None:
        return f"deleted {ds_path}"
    if outcome.not_found:
        return f"{ds_path} was already gone"
    raise StepError(f"deleting {ds_path} failed: {outcome.error}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m operations.isotool", description=__doc__)
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
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--if-missing", action="store_true", help="upload only if the datastore lacks the ISO")
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
            target = f"[{args.datastore}] {args.folder}/{args.iso.name}"
            if push(
                args.linuxkit,
                args.iso,
                args.datacenter,
                args.datastore,
                args.folder,
                url,
                args.source,
                insecure=args.insecure,
                if_missing=args.if_missing,
            ):
                print(f"pushed {target}")
            else:
                print(f"{target} is in the datastore; nothing to push")
        else:
            print(delete(args.datacenter, args.datastore, args.path, url, args.insecure))
        return 0
    except StepError as exc:
        print(f"linuxkit-swarm: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
