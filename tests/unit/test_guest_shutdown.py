"""The guest's /sbin/shutdown (linuxkit/pkg/swarm-guest/shutdown), run for real under /bin/sh.

vmtoolsd runs ``/sbin/shutdown -h now`` on a vSphere "shut down guest" request;
the script must send busybox init (PID 1 on the LinuxKit host) SIGUSR2, its
power off. Here ``LKS_INIT_PID`` points it at a stand-in "init" that this test
starts: a shell that records every signal it traps. The signals the script
could plausibly send instead (TERM, USR1, HUP, INT, QUIT) are trapped too, so a
wrong one is recorded, not lost; one that is not trapped (KILL) ends the
stand-in with nothing recorded, which fails the test as well. The stand-in
keeps running after a signal, so a second one is recorded too, unless it is
the same signal sent back to back: the kernel does not queue a standard
signal that is already pending (for the real init as well), so that one
cannot be told apart here and does no harm there.

The real PID 1 of this machine is never signalled: every run sets
LKS_INIT_PID to the stand-in, and the one test of the default (PID 1) runs
in a new PID namespace whose PID 1 is the stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
PKG_DIR = PROJECT_DIR / "linuxkit" / "pkg" / "swarm-guest"
SHUTDOWN = PKG_DIR / "shutdown"
# The image runs the script with Alpine's busybox sh; LKS_TEST_SHELL="busybox sh" checks that dialect too.
SHELL = tuple(os.environ.get("LKS_TEST_SHELL", "/bin/sh").split())

TRAPPED = ("USR1", "USR2", "TERM", "HUP", "INT", "QUIT")
# The stand-in init: records each trapped signal on its own line, then goes on
# running (so a second signal is recorded too); "ready" once the traps are set.
INIT_STANDIN = (
    "".join(f"trap 'echo {sig} >>\"$1\"' {sig}; " for sig in TRAPPED)
    + ': >"$2"; while :; do sleep 0.05; done'
)
WAIT = 5.0  # seconds; generous, every wait below ends as soon as its condition holds


@dataclass
class Init:
    """A stand-in for the host's init: a process and the file of signals it trapped."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signals(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []

    def wait_for_signal(self) -> list[str]:
        """The signals trapped, once there is one, plus a moment for a second one to show."""
        deadline = time.monotonic() + WAIT
        while not self.signals() and time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)
        return self.signals()


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"the stand-in init never got ready ({path} missing)")
        time.sleep(0.01)


@pytest.fixture
def init(tmp_path: Path) -> Iterator[Init]:
    log, ready = tmp_path / "signals", tmp_path / "ready"
    process = subprocess.Popen(["/bin/sh", "-c", INIT_STANDIN, "init-standin", str(log), str(ready)])
    try:
        assert process.pid > 1
        _wait_for(ready)
        yield Init(process, log)
    finally:
        process.kill()
        process.wait(timeout=WAIT)


def shutdown(*args: str, init_pid: str, console: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real script under /bin/sh against the given PID, as vmtoolsd would."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LKS_INIT_PID": init_pid,
        "LKS_CONSOLE": str(console) if console is not None else "/nonexistent/console",
    }
    return subprocess.run(
        [*SHELL, str(SHUTDOWN), *args], env=env, capture_output=True, text=True, timeout=WAIT, check=False
    )


@pytest.mark.parametrize(
    ("args", "signal"),
    [
        (("-h", "now"), "USR2"),
        (("-P", "now"), "USR2"),
        (("-h",), "USR2"),
        (("-P",), "USR2"),
        (("-r", "now"), "TERM"),
        (("-r",), "TERM"),
    ],
    ids=["h-now", "P-now", "h", "P", "r-now", "r"],
)
def test_shutdown_sends_init_exactly_one_signal(init: Init, args: tuple[str, ...], signal: str) -> None:
    result = shutdown(*args, init_pid=str(init.pid))
    assert result.returncode == 0, result.stderr
    assert init.wait_for_signal() == [signal]
    assert f"SIG{signal}" in result.stderr
    assert f"PID {init.pid}" in result.stderr


def test_shutdown_tells_the_console(init: Init, tmp_path: Path) -> None:
    console = tmp_path / "console"
    console.write_text("")
    result = shutdown("-h", "now", init_pid=str(init.pid), console=console)
    assert result.returncode == 0, result.stderr
    assert init.wait_for_signal() == ["USR2"]
    expected = f"linuxkit-swarm: shutdown: asking init (PID {init.pid}) to power off: SIGUSR2\n"
    assert console.read_text() == expected


def test_reboot_says_that_linuxkit_powers_off(init: Init) -> None:
    result = shutdown("-r", "now", init_pid=str(init.pid))
    assert result.returncode == 0, result.stderr
    assert "powers the VM off" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-x",),
        ("-H", "now"),
        ("-c",),
        ("-hr",),
        ("-h", "-r"),
        ("-h", "+5"),
        ("-h", "22:00"),
        ("-h", "now", "going down"),
        ("now",),
        ("-k", "now"),
    ],
    ids=lambda a: " ".join(a) or "no-args",
)
def test_shutdown_refuses_other_usage_without_signalling(init: Init, args: tuple[str, ...]) -> None:
    result = shutdown(*args, init_pid=str(init.pid))
    assert result.returncode == 2
    assert "usage: shutdown -h|-P|-r [now]" in result.stderr
    assert result.stdout == ""
    time.sleep(0.3)
    assert init.signals() == []
    assert init.process.poll() is None  # nothing untrapped was sent either


def test_help_prints_the_usage(init: Init) -> None:
    result = shutdown("--help", init_pid=str(init.pid))
    assert result.returncode == 0
    assert result.stdout.startswith("usage: shutdown -h|-P|-r [now]\n")
    time.sleep(0.3)
    assert init.signals() == []


@pytest.mark.parametrize(
    "pid", ["", "0", "init", "-1", "1 2"], ids=["empty", "zero", "name", "negative", "two"]
)
def test_shutdown_rejects_a_bad_init_pid(pid: str) -> None:
    # Set but empty is an error too, never a quiet fallback to the real PID 1.
    result = shutdown("-h", "now", init_pid=pid)
    assert result.returncode == 1
    assert "LKS_INIT_PID must be a process ID" in result.stderr


def test_shutdown_fails_when_the_signal_cannot_be_sent(tmp_path: Path) -> None:
    gone = subprocess.Popen(["/bin/sh", "-c", "exit 0"])
    gone.wait(timeout=WAIT)  # reaped: its PID names no process now
    result = shutdown("-h", "now", init_pid=str(gone.pid))
    assert result.returncode == 1
    assert f"could not send SIGUSR2 to PID {gone.pid}" in result.stderr


def test_shutdown_signals_pid_1_by_default(tmp_path: Path) -> None:
    """Without LKS_INIT_PID the script signals PID 1: here, a stand-in init in its own PID namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare is not installed: apt-get install -y util-linux")
    log = tmp_path / "signals"
    # The stand-in is PID 1 of a new PID namespace and runs the script as its
    # child, with LKS_INIT_PID unset: only a trapped signal reaches a PID 1.
    standin = (
        "".join(f"trap 'echo {sig} >>\"$1\"; exit 0' {sig}; " for sig in TRAPPED)
        + 'unset LKS_INIT_PID; [ "$$" = 1 ] || exit 97; '
        + f'{" ".join(SHELL)} "$2" -h now || exit 98; '
        + "i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; exit 99"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "LKS_CONSOLE": "/nonexistent/console",
    }
    try:
        result = subprocess.run(
            [unshare, "--pid", "--fork", "/bin/sh", "-c", standin, "init-standin", str(log), str(SHUTDOWN)],
            env=env,
            capture_output=True,
            text=True,
            timeout=2 * WAIT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the stand-in init in its own PID namespace never got a signal")
    if result.returncode != 0 and not log.exists() and "unshare" in result.stderr:
        pytest.fail(
            "cannot create a PID namespace (run the tests as root, or where unshare --pid works): "
            f"{result.stderr.strip()}"
        )
    assert result.returncode == 0, result.stderr
    assert log.read_text().split() == ["USR2"]
    assert "asking init (PID 1) to power off: SIGUSR2" in result.stderr


# --- the package -------------------------------------------------------------------


def test_shutdown_is_executable_posix_sh() -> None:
    assert SHUTDOWN.read_text().startswith("#!/bin/sh\n")
    assert stat.S_IMODE(SHUTDOWN.stat().st_mode) & 0o111 == 0o111
    result = subprocess.run(["/bin/sh", "-n", str(SHUTDOWN)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (PKG_DIR / "Dockerfile").read_text().replace("\\\n", " ")
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_installs_the_shim_as_sbin_shutdown() -> None:
    assert "COPY shutdown /sbin/shutdown" in _dockerfile_instructions()


def test_dockerfile_has_no_second_sender() -> None:
    # The shim is the only thing that signals init: no power-script hook that
    # kills PID 1 (a second signal, and SIGTERM is busybox init's reboot).
    for line in _dockerfile_instructions():
        assert "poweroff-vm-default" not in line, line
        assert not re.search(r"\bkill\b", line), line
