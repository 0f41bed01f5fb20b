"""The guest's shell scripts (linuxkit/pkg/swarm-guest), run for real under /bin/sh.

``guestinfo-config`` and ``swarm-join`` run with stub commands first on PATH:
``vmware-rpctool`` answers from files, ``curl`` emulates the Docker Engine API
from a scenario file, ``hostname`` and ``sleep`` only log. Every stub logs its
argv, so the tests can check the swarm join token never reaches an argv or the
scripts' output. ``swarm-join`` reads its route and interface tables from a
fixture directory (LKS_PROC_NET_DIR), not this machine's /proc/net. The scripts
need ``jq`` on this machine, as in the image.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from linuxkit_swarm.guestinfo import IMAGE_KEY, NodeUserdata, encode_userdata, userdata_document

PROJECT_DIR = Path(__file__).resolve().parents[2]
PKG_DIR = PROJECT_DIR / "linuxkit" / "pkg" / "swarm-guest"
GUESTINFO_CONFIG = PKG_DIR / "guestinfo-config"
SWARM_JOIN = PKG_DIR / "swarm-join"
INSTALL_DOCKER_CLI = PKG_DIR / "install-docker-cli"  # run for real in test_os_definition.py
SCRIPTS = (GUESTINFO_CONFIG, SWARM_JOIN, INSTALL_DOCKER_CLI)

TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"
MANAGER_TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-0m4n4g3rt0k3nf0rm4n4g3rs00"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr ops@example"
MANAGER = "10.1.2.3:2377"
SOCKET = "/var/run/docker.sock"
IMAGE_IDENTITY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
# Not a real key: guestinfo-config only copies it; the marker shows whether its content leaks.
HOST_KEY_MARKER = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
HOST_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{HOST_KEY_MARKER}\n-----END OPENSSH PRIVATE KEY-----\n"
JQ_INSTALL = "apt-get update && apt-get install -y jq"
# The image runs the scripts with Alpine's busybox sh; LKS_TEST_SHELL="busybox sh" checks that dialect too.
SHELL = tuple(os.environ.get("LKS_TEST_SHELL", "/bin/sh").split())

NODE = NodeUserdata(
    hostname="tf-sw-0",
    role="worker",
    ssh_authorized_keys=[SSH_KEY],
    manager_address=MANAGER,
    join_token=TOKEN,
)

# --- stubs -------------------------------------------------------------------------

RPCTOOL_STUB = """#!/bin/sh
# vmware-rpctool stand-in: "info-get KEY" prints $STUB_GUESTINFO/KEY, else fails.
printf '%s\\n' "$*" >>"$STUB_LOG/rpctool.argv"
case $1 in
"info-get "*) key=${1#info-get } ;;
*) echo "rpctool stub: unexpected request" >&2; exit 99 ;;
esac
if [ ! -f "$STUB_GUESTINFO/$key" ]; then
    echo "No value found" >&2
    exit 1
fi
cat "$STUB_GUESTINFO/$key"
echo
"""

# The real tools the scripts run are wrapped too, so every argv is on record.
WRAPPED_TOOLS = ("jq", "grep", "head", "tr", "base64", "gzip", "mkdir", "chmod", "mktemp", "rm", "cat", "awk")
WRAPPER = """#!/bin/sh
printf '%s\\n' "{name} $*" >>"$STUB_LOG/exec.argv"
exec {real} "$@"
"""

LOGGING_STUB = """#!/bin/sh
# {name} stand-in: logs its arguments, does nothing else.
printf '%s\\n' "$*" >>"$STUB_LOG/{name}.argv"
"""

CURL_STUB = '''
"""curl stand-in: the Docker Engine API as a scenario file tells it."""
import json
import os
import sys
from pathlib import Path

LOG = Path(os.environ["STUB_LOG"])
SCENARIO = json.loads(Path(os.environ["STUB_SCENARIO"]).read_text())
API = "http://docker/v1.41"


def log(name, value):
    with (LOG / name).open("a") as f:
        f.write(json.dumps(value) + "\\n")


def bad(message):
    sys.stderr.write("curl stub: " + message + "\\n")
    sys.exit(99)


def nth(route):
    """The next answer of a route's sequence; the last one repeats."""
    counter = LOG / (route + ".count")
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    answers = SCENARIO.get(route) or bad("no answers for " + route)
    return answers[min(n, len(answers) - 1)]


argv = sys.argv[1:]
log("curl.argv.jsonl", argv)
opts = {}
i = 0
while i < len(argv) - 1:
    flag = argv[i]
    if flag == "-sS":
        opts[flag] = True
        i += 1
    elif flag in ("--unix-socket", "-o", "-w", "-X", "-H", "--data-binary"):
        opts[flag] = argv[i + 1]
        i += 2
    else:
        bad("unexpected argument " + flag)
url = argv[-1]
if not opts.get("-sS") or opts.get("-w") != "%{http_code}" or "-o" not in opts:
    bad("not the agreed curl shape")
if opts.get("--unix-socket") != SCENARIO["socket"] or not url.startswith(API + "/"):
    bad("wrong socket or URL")
has_body = "--data-binary" in opts
if has_body and (opts["--data-binary"] != "@-" or opts.get("-H") != "Content-Type: application/json"):
    bad("a request body must come from stdin as JSON")
method, path = opts.get("-X"), url[len(API):]
body = sys.stdin.read() if has_body else None

if (method, path) == ("GET", "/info"):
    answer = nth("info")
elif (method, path) == ("POST", "/swarm/join"):
    log("join.bodies.jsonl", body)
    answer = nth("join")
elif (method, path) == ("POST", "/swarm/init"):
    log("init.bodies.jsonl", body)
    answer = nth("init")
else:
    bad("unexpected request " + str(method) + " " + path)

if answer["code"] == 0:
    sys.stderr.write("curl: (7) Failed to connect to docker port 80: Could not connect to server\\n")
    sys.stdout.write("000")
    sys.exit(7)
if "state" in answer:
    text = json.dumps({"ID": "X", "Swarm": {"LocalNodeState": answer["state"]}})
elif "message" in answer:
    text = json.dumps({"message": answer["message"]})
else:
    text = ""
Path(opts["-o"]).write_text(text)
sys.stdout.write(str(answer["code"]))
'''


@dataclass(frozen=True)
class Guest:
    """A scratch guest: stubs on PATH, guestinfo files, logs, config dir, console."""

    root: Path
    bin: Path
    log: Path
    guestinfo: Path
    config: Path
    console: Path
    proc_net: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "LANG": "C",
            "STUB_LOG": str(self.log),
            "STUB_GUESTINFO": str(self.guestinfo),
            "STUB_SCENARIO": str(self.root / "scenario.json"),
            "LKS_CONFIG_DIR": str(self.config),
            "LKS_CONSOLE": str(self.console),
            "LKS_PROC_NET_DIR": str(self.proc_net),
            "LKS_SLEEP": str(self.bin / "sleep"),
            # Production default is 0 (forever); a broken script must not hang the tests.
            "LKS_JOIN_MAX_ATTEMPTS": "30",
            "LKS_DOCKER_WAIT_MAX_ATTEMPTS": "30",
        }
        env.update(extra)
        return env

    def set_guestinfo(self, userdata: str | None, encoding: str | None) -> None:
        for key, value in (("guestinfo.userdata", userdata), ("guestinfo.userdata.encoding", encoding)):
            if value is not None:
                (self.guestinfo / key).write_text(value)

    def set_image(self, value: str) -> None:
        (self.guestinfo / IMAGE_KEY).write_text(value)

    def set_routes(self, *routes: tuple[str, str, int]) -> None:
        """The IPv4 route table: (interface, destination hex, metric); the mask is the destination's."""
        rows = [ROUTE_HEADER] + [
            f"{iface}\t{dest}\t0101A8C0\t0003\t0\t0\t{metric}\t{dest}\t0\t0\t0"
            for iface, dest, metric in routes
        ]
        (self.proc_net / "route").write_text("\n".join(rows) + "\n")

    def set_interfaces(self, *names: str) -> None:
        rows = [DEV_HEADER] + [f"{name:>6}: 1234 5 0 0 0 0 0 0 1234 5 0 0 0 0 0 0" for name in names]
        (self.proc_net / "dev").write_text("\n".join(rows) + "\n")

    def lines(self, name: str) -> list[str]:
        path = self.log / name
        return path.read_text().splitlines() if path.exists() else []

    def jsonl(self, name: str) -> list[Any]:
        return [json.loads(line) for line in self.lines(name)]

    def sleeps(self) -> list[int]:
        return [int(s) for s in self.lines("sleep.argv")]


ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls"
)
DEFAULT_ROUTE = "00000000"
LAN_ROUTE = "0001A8C0"  # 192.168.1.0, as the kernel writes it (little-endian hex)
# A VM's tables: a LAN route and the default route on ens192, Docker's devices beside it.
NODE_INTERFACE = "ens192"


@pytest.fixture
def guest(tmp_path: Path) -> Guest:
    g = Guest(
        root=tmp_path,
        bin=tmp_path / "bin",
        log=tmp_path / "log",
        guestinfo=tmp_path / "guestinfo",
        config=tmp_path / "run" / "config",
        console=tmp_path / "console",
        proc_net=tmp_path / "proc-net",
    )
    for directory in (g.bin, g.log, g.guestinfo, tmp_path / "tmp", tmp_path / "run", g.proc_net):
        directory.mkdir()
    g.set_routes(
        ("docker0", "000011AC", 0), (NODE_INTERFACE, LAN_ROUTE, 0), (NODE_INTERFACE, DEFAULT_ROUTE, 0)
    )
    g.set_interfaces("lo", "docker0", NODE_INTERFACE, "veth1a2b3c")
    g.console.write_text("")
    stubs: dict[str, str] = {
        "vmware-rpctool": RPCTOOL_STUB,
        "hostname": LOGGING_STUB.format(name="hostname"),
        "sleep": LOGGING_STUB.format(name="sleep"),
        "curl": f"#!{sys.executable}\n{CURL_STUB}",
    }
    for tool in WRAPPED_TOOLS:
        real = shutil.which(tool)
        if real is not None:  # a missing jq is reported by run()
            stubs[tool] = WRAPPER.format(name=tool, real=real)
    for name, text in stubs.items():
        path = g.bin / name
        path.write_text(text)
        path.chmod(0o755)
    return g


def run(script: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a script with /bin/sh, as the image does, after checking for jq."""
    if shutil.which("jq") is None:
        pytest.fail(f"jq is not installed; the guest scripts need it. Install it: {JQ_INSTALL}")
    # The timeout only stops a hung script; the 80-step retry scenario needed more
    # than 30 s on two cores shared with e2e runs.
    return subprocess.run(
        [*SHELL, str(script)], env=dict(env), capture_output=True, text=True, timeout=180, check=False
    )


def test_missing_jq_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match=re.escape(JQ_INSTALL)):
        run(GUESTINFO_CONFIG, {})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def tree(root: Path) -> dict[str, tuple[int, str | None]]:
    """Every path under root: (mode, content or None for a directory)."""
    found: dict[str, tuple[int, str | None]] = {}
    for path in sorted(root.rglob("*")):
        content = None if path.is_dir() else path.read_text()
        found[path.relative_to(root).as_posix()] = (mode(path), content)
    return found


# --- guestinfo-config --------------------------------------------------------------

EXPECTED_TREE = {
    "hostname": (0o644, "tf-sw-0\n"),
    "ssh": (0o700, None),
    "ssh/authorized_keys": (0o600, SSH_KEY + "\n"),
    "swarm": (0o755, None),
    "swarm/role": (0o644, "worker\n"),
    "swarm/manager_address": (0o644, MANAGER + "\n"),
    "swarm/join_token": (0o600, TOKEN + "\n"),
}


def _document_text() -> str:
    return json.dumps(userdata_document(NODE), sort_keys=True, separators=(",", ":"))


def _encoded(encoding: str | None) -> str:
    text = _document_text()
    if encoding == "base64":
        return encode_userdata(NODE)  # exactly what the Pulumi program puts in extra_config
    if encoding == "gzip+base64":
        return base64.b64encode(gzip.compress(text.encode())).decode()
    return text


def _assert_no_secret(guest: Guest, result: subprocess.CompletedProcess[str]) -> None:
    assert guest.lines("exec.argv"), "the tool wrappers logged nothing"
    for where, text in (
        ("stdout", result.stdout),
        ("stderr", result.stderr),
        ("console", guest.console.read_text()),
        (
            "argv",
            "\n".join(guest.lines("rpctool.argv") + guest.lines("hostname.argv") + guest.lines("exec.argv")),
        ),
    ):
        assert TOKEN not in text, f"the join token leaked to {where}"
        assert "AAAAC3NzaC1lZDI1NTE5" not in text, f"a file's content leaked to {where}"


@pytest.mark.parametrize(
    "encoding",
    ["base64", "gzip+base64", "plain", " ", "", None],
    ids=["base64", "gzip+base64", "plain", "single-space", "empty", "absent"],
)
def test_config_decodes_each_encoding(guest: Guest, encoding: str | None) -> None:
    guest.set_guestinfo(_encoded(encoding), encoding)
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == EXPECTED_TREE
    assert guest.lines("hostname.argv") == ["tf-sw-0"]
    assert "linuxkit-swarm:" in result.stderr
    _assert_no_secret(guest, result)


def test_config_without_ssh_keys_leaves_an_empty_authorized_keys(guest: Guest) -> None:
    node = NodeUserdata("tf-sw-1", "worker", [], manager_address=None, join_token=None)
    guest.set_guestinfo(encode_userdata(node), "base64")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config)["ssh/authorized_keys"] == (0o600, "")


def test_config_asks_rpctool_for_the_agreed_keys(guest: Guest) -> None:
    guest.set_guestinfo(_encoded("base64"), "base64")
    assert run(GUESTINFO_CONFIG, guest.env()).returncode == 0
    assert sorted(guest.lines("rpctool.argv")) == [
        "info-get guestinfo.linuxkit-swarm.image",
        "info-get guestinfo.userdata",
        "info-get guestinfo.userdata.encoding",
    ]


def test_config_modes_default_when_perm_is_absent(guest: Guest) -> None:
    document = {"a": {"entries": {"b": {"entries": {"c": {"content": "x"}}}, "d": {"content": ""}}}}
    guest.set_guestinfo(json.dumps(document), "plain")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == {
        "a": (0o755, None),
        "a/b": (0o755, None),
        "a/b/c": (0o644, "x"),
        "a/d": (0o644, ""),
        "ssh": (0o700, None),  # always there for sshd's bind, empty without keys
        "ssh/authorized_keys": (0o600, ""),
    }
    assert mode(guest.config) == 0o755
    assert guest.lines("hostname.argv") == []  # no hostname file, no hostname call


def test_config_keeps_content_byte_for_byte(guest: Guest) -> None:
    content = "line 1\n  spaced \\ back*slash $HOME `x` 'q' \"dq\"\n\n"
    guest.set_guestinfo(json.dumps({"f": {"content": content}, "g*": {"content": "glob"}}), "plain")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert (guest.config / "f").read_text() == content
    assert (guest.config / "g*").read_text() == "glob"


@pytest.mark.parametrize("console_writable", [True, False])
def test_config_without_userdata_warns_and_boots_on(guest: Guest, console_writable: bool) -> None:
    env = guest.env() if console_writable else guest.env(LKS_CONSOLE=str(guest.root / "no" / "console"))
    result = run(GUESTINFO_CONFIG, env)
    assert result.returncode == 0, result.stderr
    for needle in (
        "linuxkit-swarm:",
        "guestinfo.userdata",
        "hostname",
        "SSH",
        "swarm",
        "Pulumi",
        "extra_config",
    ):
        assert needle in result.stderr
    if console_writable:
        assert "no hostname, no SSH authorized keys and no swarm settings" in guest.console.read_text()
    # Only an empty authorized_keys, which sshd's bind needs: nobody can log in.
    assert tree(guest.config) == {"ssh": (0o700, None), "ssh/authorized_keys": (0o600, "")}
    assert guest.lines("hostname.argv") == []


def test_config_treats_blank_userdata_as_absent(guest: Guest) -> None:
    guest.set_guestinfo("  ", "base64")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0
    assert "no hostname" in result.stderr
    assert tree(guest.config) == {"ssh": (0o700, None), "ssh/authorized_keys": (0o600, "")}


@pytest.mark.parametrize(
    ("userdata", "encoding", "message"),
    [
        ('{"hostname": {"content": "tf-sw-0\\n"', "plain", "not valid JSON"),
        (base64.b64encode(b'{"swarm": [}').decode(), "base64", "not valid JSON"),
        (base64.b64encode(gzip.compress(b"{{{")).decode(), "gzip+base64", "not valid JSON"),
        ("not base64 at all!", "base64", "not valid base64"),
        (base64.b64encode(b"not gzip").decode(), "gzip+base64", "not gzip"),
        ("{}", "rot13", "unknown guestinfo.userdata.encoding"),
        ('{"a": {"content": "x"}} {"b": {"content": "y"}}', "plain", "exactly one JSON document"),
        ('["hostname"]', "plain", "must be a JSON object"),
        ('{"a": {"content": 1}}', "plain", "content must be a string"),
        ('{"a": {"perm": "0999", "content": "x"}}', "plain", "perm must be an octal string"),
        ('{"a": {"perm": 644, "content": "x"}}', "plain", "perm must be an octal string"),
        ('{"a": {"entries": {}, "content": "x"}}', "plain", "has both entries and content"),
        ('{"a": {"perm": "0644"}}', "plain", "needs either content"),
        ('{"a": {"entries": []}}', "plain", "entries must be an object"),
        ('{"hostname": {"content": "bad name; reboot\\n"}}', "plain", "not a valid host name"),
    ],
    ids=[
        "plain",
        "base64",
        "gzip",
        "bad-base64",
        "bad-gzip",
        "unknown-encoding",
        "two-documents",
        "array",
        "content-type",
        "perm-digits",
        "perm-type",
        "file-and-dir",
        "neither",
        "entries-type",
        "bad-hostname",
    ],
)
def test_config_rejects_bad_userdata_and_writes_nothing(
    guest: Guest, userdata: str, encoding: str, message: str
) -> None:
    guest.set_guestinfo(userdata, encoding)
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 1
    assert message in result.stderr
    assert "linuxkit-swarm:" in result.stderr
    assert message in guest.console.read_text()
    assert not guest.config.exists()
    assert guest.lines("hostname.argv") == []


@pytest.mark.parametrize(
    "document",
    [
        {"..": {"content": "x"}},
        {".": {"entries": {}}},
        {"../escaped": {"content": "x"}},
        {"a/b": {"content": "x"}},
        {"": {"content": "x"}},
        {"bad\nname": {"content": "x"}},
        {"ok": {"entries": {"..": {"entries": {"escaped": {"content": "x"}}}}}},
        {"ok": {"entries": {"/etc/passwd": {"content": "x"}}}},
    ],
    ids=["dotdot", "dot", "dotdot-slash", "slash", "empty", "newline", "nested-dotdot", "nested-absolute"],
)
def test_config_rejects_path_traversal(guest: Guest, document: dict[str, Any]) -> None:
    # A harmless file first, so "nothing written" means nothing at all.
    guest.set_guestinfo(json.dumps({"hostname": {"content": "tf-sw-0\n"}, **document}), "plain")
    before = sorted(p.relative_to(guest.root).as_posix() for p in guest.root.rglob("*"))
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 1
    assert "unsafe entry name" in result.stderr
    assert not guest.config.exists()
    after = sorted(p.relative_to(guest.root).as_posix() for p in guest.root.rglob("*"))
    assert [p for p in after if not p.startswith("log/")] == [p for p in before if not p.startswith("log/")]


def test_config_refuses_to_write_through_a_symlink(guest: Guest) -> None:
    guest.config.mkdir()
    outside = guest.root / "outside"
    (guest.config / "hostname").symlink_to(outside)
    guest.set_guestinfo(json.dumps({"hostname": {"content": "tf-sw-0\n"}}), "plain")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 1
    assert "symbolic link" in result.stderr
    assert not outside.exists()


def test_config_fails_when_hostname_fails(guest: Guest) -> None:
    (guest.bin / "hostname").write_text("#!/bin/sh\necho 'hostname: permission denied' >&2\nexit 1\n")
    guest.set_guestinfo(_encoded("base64"), "base64")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 1
    assert "could not set the hostname to tf-sw-0" in result.stderr


def test_config_writes_the_image_identity(guest: Guest) -> None:
    guest.set_guestinfo(_encoded("base64"), "base64")
    guest.set_image(IMAGE_IDENTITY)
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == {
        **EXPECTED_TREE,
        "linuxkit-swarm": (0o755, None),
        "linuxkit-swarm/image": (0o644, IMAGE_IDENTITY + "\n"),
    }
    assert f"wrote {guest.config}/linuxkit-swarm/image from {IMAGE_KEY}" in result.stderr
    _assert_no_secret(guest, result)


def test_config_writes_the_image_identity_without_userdata(guest: Guest) -> None:
    guest.set_image("e2e-container-nodes-1")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == {
        "ssh": (0o700, None),
        "ssh/authorized_keys": (0o600, ""),
        "linuxkit-swarm": (0o755, None),
        "linuxkit-swarm/image": (0o644, "e2e-container-nodes-1\n"),
    }


def test_config_without_an_image_identity_writes_no_file(guest: Guest) -> None:
    guest.set_guestinfo(_encoded("base64"), "base64")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == EXPECTED_TREE
    assert f"no {IMAGE_KEY} in this VM's guestinfo" in result.stderr


@pytest.mark.parametrize(
    "value",
    ["a b", "x" * 129, "../../etc/passwd", "$(reboot)", "id;reboot", "é", "line1\nline2", " "],
    ids=["space", "too-long", "slash", "command", "semicolon", "non-ascii", "newline", "blank"],
)
def test_config_refuses_a_bad_image_identity_and_boots_on(guest: Guest, value: str) -> None:
    guest.set_guestinfo(_encoded("base64"), "base64")
    guest.set_image(value)
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert tree(guest.config) == EXPECTED_TREE  # the userdata is written, the identity is not
    assert f"{IMAGE_KEY} is refused" in result.stderr
    assert f"{IMAGE_KEY} is refused" in guest.console.read_text()
    assert guest.lines("hostname.argv") == ["tf-sw-0"]


def test_config_takes_the_longest_image_identity(guest: Guest) -> None:
    value = "Az09._:-" * 16  # 128 characters, every kind allowed
    guest.set_image(value)
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    assert (guest.config / "linuxkit-swarm" / "image").read_text() == value + "\n"


def _manager_document(host_key_perm: str) -> dict[str, Any]:
    """A manager's userdata with a pinned host key, written by hand (NodeUserdata may lack the field)."""
    document = userdata_document(NodeUserdata("tf-sw-m0", "manager", [SSH_KEY], None, None))
    document["swarm"]["entries"]["bootstrap"] = {"perm": "0644", "content": "true\n"}
    document["ssh"]["entries"]["host_ed25519_key"] = {"perm": host_key_perm, "content": HOST_KEY}
    return document


@pytest.mark.parametrize("perm", ["0600", "0644"])
def test_config_keeps_the_host_key_private(guest: Guest, perm: str) -> None:
    guest.set_guestinfo(json.dumps(_manager_document(perm)), "plain")
    result = run(GUESTINFO_CONFIG, guest.env())
    assert result.returncode == 0, result.stderr
    found = tree(guest.config)
    assert found["ssh/host_ed25519_key"] == (0o600, HOST_KEY)  # 0600 even when the document says 0644
    assert found["ssh"] == (0o700, None)
    assert found["swarm/bootstrap"] == (0o644, "true\n")
    for text in (
        result.stdout,
        result.stderr,
        guest.console.read_text(),
        "\n".join(guest.lines("exec.argv")),
    ):
        assert HOST_KEY_MARKER not in text


# --- swarm-join ----------------------------------------------------------------------


def _settings(
    guest: Guest,
    role: str | None = "worker",
    addr: str | None = MANAGER,
    token: str | None = TOKEN,
    bootstrap: str | None = None,
    advertise: str | None = None,
) -> None:
    swarm = guest.config / "swarm"
    swarm.mkdir(parents=True)
    for name, value in (
        ("role", role),
        ("manager_address", addr),
        ("join_token", token),
        ("bootstrap", bootstrap),
        ("advertise_addr", advertise),
    ):
        if value is not None:
            (swarm / name).write_text(value + "\n")


def _scenario(
    guest: Guest,
    info: Sequence[Mapping[str, Any]],
    join: Sequence[Mapping[str, Any]] = (),
    init: Sequence[Mapping[str, Any]] = (),
) -> None:
    scenario = {"socket": SOCKET, "info": list(info), "join": list(join), "init": list(init)}
    (guest.root / "scenario.json").write_text(json.dumps(scenario))


INACTIVE = {"code": 200, "state": "inactive"}
REFUSED = {"code": 0}
JOINED = {"code": 200}
TIMEOUT = {
    "code": 503,
    "message": (
        "Timeout was reached before node joined. "
        "The attempt to join the swarm will continue in the background."
    ),
}
UNREACHABLE = {
    "code": 500,
    "message": "rpc error: code = Unavailable desc = connection error: dial tcp 10.1.2.3:2377",
}


def _join(guest: Guest, **env: str) -> subprocess.CompletedProcess[str]:
    return run(SWARM_JOIN, guest.env(**env))


def _requests(guest: Guest) -> list[tuple[str, str]]:
    return [(argv[argv.index("-X") + 1], argv[-1]) for argv in guest.jsonl("curl.argv.jsonl")]


def _assert_token_only_in_bodies(
    guest: Guest, result: subprocess.CompletedProcess[str], token: str = TOKEN
) -> None:
    assert token not in result.stdout
    assert token not in result.stderr
    assert guest.lines("exec.argv"), "the tool wrappers logged nothing"
    for argv in [*guest.jsonl("curl.argv.jsonl"), guest.lines("sleep.argv"), guest.lines("exec.argv")]:
        assert all(token not in arg for arg in argv)
    for body in guest.jsonl("join.bodies.jsonl"):
        assert json.loads(body)["JoinToken"] == token
    for body in guest.jsonl("init.bodies.jsonl"):
        assert token not in body


def test_join_waits_for_docker_then_joins(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[REFUSED, {"code": 500, "message": "starting"}, INACTIVE], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert _requests(guest) == [
        ("GET", "http://docker/v1.41/info"),
        ("GET", "http://docker/v1.41/info"),
        ("GET", "http://docker/v1.41/info"),
        ("POST", "http://docker/v1.41/swarm/join"),
    ]
    assert guest.sleeps() == [1, 2]
    assert "waiting for the Docker Engine" in result.stderr
    assert "joined the swarm as a worker via 10.1.2.3:2377" in result.stderr
    _assert_token_only_in_bodies(guest, result)


def test_join_request_has_the_agreed_shape(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    assert _join(guest).returncode == 0
    argvs = guest.jsonl("curl.argv.jsonl")
    assert argvs[0][:2] == ["-sS", "--unix-socket"]
    assert argvs[0][-5:] == ["-w", "%{http_code}", "-X", "GET", "http://docker/v1.41/info"]
    join = argvs[1]
    assert join[:4] == ["-sS", "--unix-socket", SOCKET, "-o"]
    assert join[5:] == [
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        "@-",
        "http://docker/v1.41/swarm/join",
    ]
    (body,) = guest.jsonl("join.bodies.jsonl")
    assert json.loads(body) == {
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": NODE_INTERFACE,
        "RemoteAddrs": [MANAGER],
        "JoinToken": TOKEN,
    }


def test_join_uses_the_configured_socket(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    scenario = json.loads((guest.root / "scenario.json").read_text())
    (guest.root / "scenario.json").write_text(json.dumps({**scenario, "socket": "/run/other.sock"}))
    result = _join(guest, DOCKER_SOCK="/run/other.sock")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("state", ["active", "pending", "locked"])
def test_join_leaves_a_node_already_in_a_swarm_alone(guest: Guest, state: str) -> None:
    _settings(guest)
    _scenario(guest, info=[{"code": 200, "state": state}], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "already in a swarm" in result.stderr
    assert _requests(guest) == [("GET", "http://docker/v1.41/info")]
    assert guest.jsonl("join.bodies.jsonl") == []


def test_join_does_not_touch_a_swarm_in_error_state(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[{"code": 200, "state": "error"}], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 1
    assert "swarm state 'error'" in result.stderr
    assert guest.jsonl("join.bodies.jsonl") == []


def test_join_retries_while_the_manager_is_unreachable(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[UNREACHABLE, UNREACHABLE, JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("join.bodies.jsonl")) == 3
    assert guest.sleeps() == [1, 2]
    assert result.stderr.count("could not join the swarm via 10.1.2.3:2377") == 2
    assert "connection error" in result.stderr  # the daemon's reason is shown
    _assert_token_only_in_bodies(guest, result)


def test_join_backoff_doubles_up_to_the_cap(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[UNREACHABLE] * 6 + [JOINED])
    result = _join(guest, LKS_JOIN_BACKOFF_MAX="5")
    assert result.returncode == 0, result.stderr
    assert guest.sleeps() == [1, 2, 4, 5, 5, 5]


def test_join_retries_forever_by_default(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[REFUSED] * 40 + [INACTIVE], join=[UNREACHABLE] * 40 + [JOINED])
    result = _join(guest, LKS_JOIN_MAX_ATTEMPTS="0", LKS_DOCKER_WAIT_MAX_ATTEMPTS="0")
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("join.bodies.jsonl")) == 41
    assert guest.sleeps() == [1, 2, 4, 8, 16, 32] + [60] * 34 + [1, 2, 4, 8, 16, 32] + [60] * 34


def test_join_gives_up_after_max_attempts(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[UNREACHABLE])
    result = _join(guest, LKS_JOIN_MAX_ATTEMPTS="3")
    assert result.returncode == 1
    assert len(guest.jsonl("join.bodies.jsonl")) == 3
    assert "gave up joining the swarm via 10.1.2.3:2377 after 3 attempts" in result.stderr


def test_join_stops_when_a_timed_out_join_goes_on_in_the_background(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE, {"code": 200, "state": "pending"}], join=[TIMEOUT, JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("join.bodies.jsonl")) == 1
    assert "already in a swarm (LocalNodeState=pending" in result.stderr


@pytest.mark.parametrize(
    "answer",
    [
        {"code": 400, "message": "invalid join token"},
        {"code": 400, "message": f"invalid join token {TOKEN}"},
        {"code": 500, "message": "rpc error: code = InvalidArgument desc = Invalid Join Token"},
    ],
    ids=["http-400", "message-quotes-token", "message-only"],
)
def test_join_stops_at_once_on_a_bad_token(guest: Guest, answer: Mapping[str, Any]) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[answer, JOINED])
    result = _join(guest)
    assert result.returncode == 2
    assert len(guest.jsonl("join.bodies.jsonl")) == 1
    assert guest.sleeps() == []
    assert "join token is wrong" in result.stderr
    assert "invalid join token" in result.stderr.lower()
    _assert_token_only_in_bodies(guest, result)


@pytest.mark.parametrize(
    ("role", "addr", "token", "message"),
    [
        ("worker", None, TOKEN, "missing or empty: {swarm}/manager_address"),
        ("worker", MANAGER, None, "missing or empty: {swarm}/join_token"),
        ("worker", MANAGER, "  ", "missing or empty: {swarm}/join_token"),
        ("manager", "", None, "missing or empty: {swarm}/manager_address {swarm}/join_token"),
        (None, MANAGER, TOKEN, "there is no {swarm}/role"),
        ("bootstrap", None, None, "role 'bootstrap' is not supported"),
    ],
    ids=["no-address", "no-token", "blank-token", "manager-nothing", "no-role", "unsupported-role"],
)
def test_join_without_settings_does_nothing(
    guest: Guest, role: str | None, addr: str | None, token: str | None, message: str
) -> None:
    _settings(guest, role=role, addr=addr, token=token)
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "not joining a swarm" in result.stderr
    assert message.format(swarm=guest.config / "swarm") in result.stderr
    assert guest.lines("curl.argv.jsonl") == []


def test_join_without_any_config_does_nothing(guest: Guest) -> None:
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "not joining a swarm" in result.stderr
    assert guest.lines("curl.argv.jsonl") == []


def test_join_as_manager_sends_the_manager_token_and_its_address(guest: Guest) -> None:
    _settings(guest, role="manager", token=MANAGER_TOKEN)
    _scenario(guest, info=[INACTIVE], join=[JOINED], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "joined the swarm as a manager via 10.1.2.3:2377" in result.stderr
    assert _requests(guest) == [
        ("GET", "http://docker/v1.41/info"),
        ("POST", "http://docker/v1.41/swarm/join"),
    ]
    (body,) = guest.jsonl("join.bodies.jsonl")
    assert json.loads(body) == {
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": NODE_INTERFACE,
        "RemoteAddrs": [MANAGER],
        "JoinToken": MANAGER_TOKEN,
    }
    assert guest.jsonl("init.bodies.jsonl") == []
    _assert_token_only_in_bodies(guest, result, MANAGER_TOKEN)


def test_join_as_manager_with_a_bad_token_stops(guest: Guest) -> None:
    _settings(guest, role="manager", token=MANAGER_TOKEN)
    _scenario(guest, info=[INACTIVE], join=[{"code": 400, "message": f"invalid join token {MANAGER_TOKEN}"}])
    result = _join(guest)
    assert result.returncode == 2
    assert "'docker swarm join-token -q manager'" in result.stderr
    _assert_token_only_in_bodies(guest, result, MANAGER_TOKEN)


@pytest.mark.parametrize("value", ["false", "yes"])
def test_join_as_manager_ignores_a_bootstrap_that_is_not_true(guest: Guest, value: str) -> None:
    _settings(guest, role="manager", token=MANAGER_TOKEN, bootstrap=value)
    _scenario(guest, info=[INACTIVE], join=[JOINED], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "ignoring" in result.stderr
    assert len(guest.jsonl("join.bodies.jsonl")) == 1
    assert guest.jsonl("init.bodies.jsonl") == []


def test_join_as_worker_ignores_bootstrap(guest: Guest) -> None:
    _settings(guest, bootstrap="true")
    _scenario(guest, info=[INACTIVE], join=[JOINED], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "only a manager creates a swarm" in result.stderr
    assert "joined the swarm as a worker" in result.stderr
    assert guest.jsonl("init.bodies.jsonl") == []


# --- swarm-join: the bootstrap manager ---------------------------------------------------


def test_bootstrap_creates_the_swarm(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    _scenario(guest, info=[REFUSED, INACTIVE], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert _requests(guest) == [
        ("GET", "http://docker/v1.41/info"),
        ("GET", "http://docker/v1.41/info"),
        ("POST", "http://docker/v1.41/swarm/init"),
    ]
    (argv_init,) = [a for a in guest.jsonl("curl.argv.jsonl") if a[-1].endswith("/swarm/init")]
    assert argv_init[-5:] == ["-H", "Content-Type: application/json", "--data-binary", "@-", argv_init[-1]]
    (body,) = guest.jsonl("init.bodies.jsonl")
    assert json.loads(body) == {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": NODE_INTERFACE}
    assert "created a new swarm: this node is its first manager, advertising ens192" in result.stderr
    assert guest.jsonl("join.bodies.jsonl") == []


def test_bootstrap_ignores_join_settings(guest: Guest) -> None:
    _settings(guest, role="manager", token=MANAGER_TOKEN, bootstrap="true")
    _scenario(guest, info=[INACTIVE], join=[JOINED], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("init.bodies.jsonl")) == 1
    assert guest.jsonl("join.bodies.jsonl") == []
    _assert_token_only_in_bodies(guest, result, MANAGER_TOKEN)


def test_bootstrap_advertises_the_configured_address(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true", advertise="10.1.2.9")
    _scenario(guest, info=[INACTIVE], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    (body,) = guest.jsonl("init.bodies.jsonl")
    assert json.loads(body)["AdvertiseAddr"] == "10.1.2.9"
    assert f"advertising 10.1.2.9 from {guest.config}/swarm/advertise_addr" in result.stderr


@pytest.mark.parametrize("state", ["active", "pending", "locked"])
def test_bootstrap_leaves_a_node_already_in_a_swarm_alone(guest: Guest, state: str) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    _scenario(guest, info=[{"code": 200, "state": state}], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert "already in a swarm" in result.stderr
    assert _requests(guest) == [("GET", "http://docker/v1.41/info")]
    assert guest.jsonl("init.bodies.jsonl") == []


def test_bootstrap_does_not_touch_a_swarm_in_error_state(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    _scenario(guest, info=[{"code": 200, "state": "error"}], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 1
    assert "swarm state 'error'" in result.stderr
    assert guest.jsonl("init.bodies.jsonl") == []


INIT_FAILED = {"code": 400, "message": "interface ens192 has no usable IPv4 address"}


def test_bootstrap_retries_a_failed_init(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    _scenario(guest, info=[INACTIVE], init=[INIT_FAILED, INIT_FAILED, JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("init.bodies.jsonl")) == 3
    assert guest.sleeps() == [1, 2]
    assert (
        result.stderr.count(
            "could not create the swarm (HTTP 400: interface ens192 has no usable IPv4 address)"
        )
        == 2
    )
    assert "created a new swarm" in result.stderr


def test_bootstrap_gives_up_after_max_attempts(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    _scenario(guest, info=[INACTIVE], init=[{"code": 500, "message": "rpc error: boom"}])
    result = _join(guest, LKS_JOIN_MAX_ATTEMPTS="2")
    assert result.returncode == 1
    assert len(guest.jsonl("init.bodies.jsonl")) == 2
    assert "gave up creating a swarm after 2 attempts (HTTP 500: rpc error: boom)" in result.stderr


def test_bootstrap_stops_when_a_failed_init_made_it_a_manager(guest: Guest) -> None:
    _settings(guest, role="manager", addr=None, token=None, bootstrap="true")
    already = {"code": 503, "message": "This node is already part of a swarm."}
    _scenario(guest, info=[INACTIVE, {"code": 200, "state": "active"}], init=[already, JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    assert len(guest.jsonl("init.bodies.jsonl")) == 1
    assert "already in a swarm (LocalNodeState=active" in result.stderr


# --- swarm-join: the advertised address ---------------------------------------------------


def _advertised(guest: Guest) -> tuple[str, subprocess.CompletedProcess[str]]:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    (body,) = guest.jsonl("join.bodies.jsonl")
    advertise: str = json.loads(body)["AdvertiseAddr"]
    return advertise, result


def test_advertise_the_default_route_with_the_lowest_metric(guest: Guest) -> None:
    guest.set_routes(("eth1", DEFAULT_ROUTE, 200), ("eth1", LAN_ROUTE, 0), ("eth0", DEFAULT_ROUTE, 100))
    guest.set_interfaces("lo", "eth1", "eth0")
    advertise, result = _advertised(guest)
    assert advertise == "eth0"
    assert "advertising eth0 from the interface of the IPv4 default route" in result.stderr


@pytest.mark.parametrize("route_table", ["no-default-route", "missing"])
def test_advertise_falls_back_to_the_first_real_interface(guest: Guest, route_table: str) -> None:
    if route_table == "missing":
        (guest.proc_net / "route").unlink()
    else:
        guest.set_routes(("eth0", LAN_ROUTE, 0))
    guest.set_interfaces("lo", "tunl0", "docker0", "docker_gwbridge", "br-0a1b2c", "veth9z", "eth0", "eth1")
    advertise, result = _advertised(guest)
    assert advertise == "eth0"
    assert "(no IPv4 default route)" in result.stderr


def test_advertise_prefers_the_configured_address(guest: Guest) -> None:
    _settings(guest, advertise="192.168.7.7")
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    result = _join(guest)
    assert result.returncode == 0, result.stderr
    (body,) = guest.jsonl("join.bodies.jsonl")
    assert json.loads(body)["AdvertiseAddr"] == "192.168.7.7"


@pytest.mark.parametrize("bootstrap", [None, "true"], ids=["join", "init"])
def test_advertise_without_any_address_fails(guest: Guest, bootstrap: str | None) -> None:
    (guest.proc_net / "route").unlink()
    guest.set_interfaces("lo", "docker0", "veth1")
    _settings(guest, role="manager", token=MANAGER_TOKEN, bootstrap=bootstrap)
    _scenario(guest, info=[INACTIVE], join=[JOINED], init=[JOINED])
    result = _join(guest)
    assert result.returncode == 1
    assert "no address to advertise to the swarm" in result.stderr
    assert "swarm/advertise_addr" in result.stderr
    assert guest.jsonl("join.bodies.jsonl") == []
    assert guest.jsonl("init.bodies.jsonl") == []
    assert MANAGER_TOKEN not in result.stderr


@pytest.mark.parametrize(
    "variable", ["LKS_JOIN_BACKOFF_MAX", "LKS_JOIN_MAX_ATTEMPTS", "LKS_DOCKER_WAIT_MAX_ATTEMPTS"]
)
def test_join_rejects_a_bad_number(guest: Guest, variable: str) -> None:
    _settings(guest)
    _scenario(guest, info=[INACTIVE], join=[JOINED])
    result = _join(guest, **{variable: "soon"})
    assert result.returncode == 1
    assert variable in result.stderr
    assert guest.lines("curl.argv.jsonl") == []


def test_join_gives_up_waiting_for_docker_when_told(guest: Guest) -> None:
    _settings(guest)
    _scenario(guest, info=[REFUSED], join=[JOINED])
    result = _join(guest, LKS_DOCKER_WAIT_MAX_ATTEMPTS="2")
    assert result.returncode == 1
    assert "did not answer" in result.stderr
    assert "Could not connect to server" in result.stderr
    assert guest.jsonl("join.bodies.jsonl") == []


# --- the package -------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_posix_sh(script: Path) -> None:
    assert script.read_text().startswith("#!/bin/sh\n")
    assert mode(script) & 0o111 == 0o111
    result = subprocess.run(["/bin/sh", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _dockerfile() -> str:
    return (PKG_DIR / "Dockerfile").read_text()


def test_dockerfile_pins_its_base_image() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", _dockerfile(), flags=re.MULTILINE)
    assert bases
    for base in bases:
        name, _, tag = base.partition("@")[0].partition(":")
        assert "@sha256:" in base or (tag and tag != "latest"), f"FROM {base} is not pinned"
        assert name == "alpine"


def test_dockerfile_installs_the_guestinfo_plugin_and_tools() -> None:
    text = _dockerfile().replace("\\\n", " ")
    installs = [line for line in text.splitlines() if re.search(r"^RUN .*\bapk add\b", line)]
    packages = {word for line in installs for word in line.split() if not word.startswith("-")}
    # docker-cli: the binary install-docker-cli copies for SSH sessions.
    assert {"open-vm-tools", "open-vm-tools-guestinfo", "jq", "curl", "docker-cli"} <= packages
    copies = re.findall(r"^COPY\s+(.+?)\s+/usr/bin/$", text, flags=re.MULTILINE)
    assert {"guestinfo-config", "swarm-join", "install-docker-cli"} <= {w for c in copies for w in c.split()}
    assert re.search(r'^CMD \["/usr/bin/vmtoolsd"\]$', text, flags=re.MULTILINE)


def test_build_yml_declares_the_package() -> None:
    build = yaml.safe_load((PKG_DIR / "build.yml").read_text())
    assert build["image"] == "swarm-guest"
    assert build["network"] is True
    assert build["arches"] == ["amd64"]
    config = build["config"]
    assert config["capabilities"] == ["all"]
    assert {config["net"], config["uts"], config["pid"]} == {"host"}
    assert {"/run:/run", "/var/run:/var/run", "/dev:/dev"} <= set(config["binds"])
