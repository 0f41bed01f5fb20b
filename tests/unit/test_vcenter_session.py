"""A vCenter that does not answer: the pyVmomi session gives up in bounded time with a clear error.

The unreachable endpoints are real loopback sockets: a port nothing listens on (a
stopped vCenter) and a listener that accepts and never answers (a frozen one: the
kernel completes the TCP handshake for a stopped process).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pulumi
import pytest

from linuxkit_swarm import iso_steps
from linuxkit_swarm.settings import Secret, SiteSettings, VCenterSettings
from operations import folder_guard, inventory, vcenter
from tests.unit.conftest import PASSWORD

pytestmark = pytest.mark.unit


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def url(port: int) -> str:
    return iso_steps.vcenter_url(f"127.0.0.1:{port}", "admin@vsphere.local", PASSWORD)


def log_in(port: int, timeout: float) -> None:
    """Open and close a session to the loopback ``port``."""
    with vcenter.session(url(port), insecure=True, timeout=timeout):
        pass


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TimeoutError("timed out"), "vCenter vc:443 did not answer within 2.5 s"),
        (ConnectionRefusedError(111, "Connection refused"), "vCenter vc:443 refused the connection"),
        (socket.gaierror(-2, "Name or service not known"), "vCenter vc:443: the host name does not resolve"),
        (
            http.client.RemoteDisconnected("closed"),
            "vCenter vc:443 closed the connection (RemoteDisconnected",
        ),
        (ConnectionResetError(104, "reset"), "vCenter vc:443 closed the connection (ConnectionResetError"),
        (type("InvalidLogin", (Exception,), {})(), "vCenter vc:443 refused the login: check vsphere:user"),
        (Exception("vc:443 is down or is not a VIM server"), "vCenter vc:443: vc:443 is down or is not"),
    ],
)
def test_describe_failure_names_vcenter_and_the_cause(error: BaseException, expected: str) -> None:
    assert vcenter.describe_failure("vc:443", error, 2.5).startswith(expected)


def test_a_closed_port_fails_at_once() -> None:
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(vcenter.ConnectError, match=f"vCenter 127.0.0.1:{port} refused the connection"):
        log_in(port, 5)
    assert time.monotonic() - started < 5


def test_a_silent_vcenter_fails_within_the_timeout(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(
        vcenter.ConnectError, match=f"vCenter 127.0.0.1:{silent_port} did not answer within 0.5 s"
    ):
        log_in(silent_port, 0.5)
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 5
    assert socket.getdefaulttimeout() is None  # the login's default timeout is put back


def test_the_login_timeout_is_restored_after_a_failure() -> None:
    socket.setdefaulttimeout(7.0)
    try:
        with pytest.raises(vcenter.ConnectError):
            log_in(closed_port(), 1)
        assert socket.getdefaulttimeout() == 7.0
    finally:
        socket.setdefaulttimeout(None)


def site() -> SiteSettings:
    return SiteSettings("DC0", "DC0_C0/Resources", "LocalDS_0", "VM Network", "TERRAFORM", "Linux/x")


def test_the_program_stops_with_a_run_error_naming_vcenter_without_the_password() -> None:
    port = closed_port()
    vc = VCenterSettings(f"127.0.0.1:{port}", "admin@vsphere.local", Secret(PASSWORD), True)
    with pytest.raises(pulumi.RunError) as caught:
        inventory.deployed_nodes(vc, site())
    message = str(caught.value)
    assert f"vCenter 127.0.0.1:{port} refused the connection" in message
    assert "Nothing was changed" in message
    assert PASSWORD not in message


def test_the_folder_guard_names_the_folder_and_vcenter(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vcenter, "TIMEOUT", 0.5)
    vc = VCenterSettings(f"127.0.0.1:{silent_port}", "admin@vsphere.local", Secret(PASSWORD), True)
    hook = folder_guard.existing_folder_guard(vc, site())
    args = pulumi.ResourceHookArgs(
        urn="urn", id="", name="f", type="vsphere:index/folder:Folder", new_inputs={"path": "TERRAFORM/Linux"}
    )
    with pytest.raises(
        RuntimeError,
        match=f"VM folder 'TERRAFORM/Linux' exists: vCenter 127.0.0.1:{silent_port} did not answer",
    ):
        hook.callback(args)
