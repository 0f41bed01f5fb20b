"""Find plaintext secrets in text, files and process command lines.

Used by ``test_secrets.py`` on everything a ``pulumi up`` leaves behind. A secret is
searched in each form it could take (URL-quoted, a join token's secret part, the
lines of a PEM key that no other key shares) and also inside base64 runs (guestinfo
userdata is base64 JSON, optionally gzipped), so an encoded copy counts as a leak.
Findings name the secret and the place, never the value: test output is a log too.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{40,}={0,2}")
_PEM_LINE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")


@dataclass(frozen=True)
class Secret:
    """A named secret and the strings whose presence means it leaked."""

    name: str
    needles: tuple[str, ...]


@dataclass(frozen=True)
class Leak:
    """Where a secret was found; no value, so it can be printed."""

    secret: str
    where: str

    def __str__(self) -> str:
        return f"{self.secret} in {self.where}"


def password(name: str, value: str) -> Secret:
    """A password, plain and URL-quoted (as in ``https://user:pass@host``)."""
    return Secret(name, tuple(dict.fromkeys((value, quote(value, safe="")))))


def join_token(name: str, token: str) -> Secret:
    """A swarm join token: whole, and its secret part (``SWMTKN-1-<CA digest>-<secret>``).

    The CA digest is shared by both tokens and is no secret, so it is not a needle.
    """
    secret_part = token.rsplit("-", 1)[-1]
    if len(secret_part) < 16:
        raise ValueError(f"{name} does not look like a swarm join token")
    return Secret(name, (token, secret_part))


def pem_key(name: str, pem: str, unrelated: Sequence[str]) -> Secret:
    """A PEM/OpenSSH private key: each body line that no ``unrelated`` key of the same type has.

    Whole lines, so a key written with escaped newlines (JSON) still matches; the
    lines every key of its type shares (format header, algorithm name) are left out.
    """
    common = {line for other in unrelated for line in _pem_lines(other)}
    needles = tuple(line for line in _pem_lines(pem) if line not in common)
    if not needles:
        raise ValueError(f"{name} has no body line of its own")
    return Secret(name, needles)


def _pem_lines(pem: str) -> list[str]:
    return [line.strip() for line in pem.splitlines() if _PEM_LINE.match(line.strip())]


def _decoded_runs(data: bytes) -> Iterable[bytes]:
    """Every base64 run of ``data`` decoded, gunzipped when it is gzip."""
    for match in _BASE64_RUN.finditer(data):
        run = match.group()
        run = run[: len(run) - len(run) % 4] if not run.endswith(b"=") else run
        try:
            decoded = base64.b64decode(run, validate=True)
        except (binascii.Error, ValueError):
            continue
        if decoded[:2] == b"\x1f\x8b":
            try:
                decoded = gzip.decompress(decoded)
            except (OSError, EOFError):
                continue
        yield decoded


def find(data: str | bytes, secrets: Sequence[Secret], where: str) -> list[Leak]:
    """The secrets found in ``data``, plain or inside a base64 run."""
    raw = data.encode() if isinstance(data, str) else data
    leaks: list[Leak] = []
    decoded: list[bytes] | None = None  # decoded once, and only when needed
    for secret in secrets:
        needles = [n.encode() for n in secret.needles]
        if any(n in raw for n in needles):
            leaks.append(Leak(secret.name, where))
            continue
        decoded = list(_decoded_runs(raw)) if decoded is None else decoded
        if any(n in d for d in decoded for n in needles):
            leaks.append(Leak(secret.name, f"{where} (base64-encoded)"))
    return leaks


def find_in_files(paths: Iterable[Path], secrets: Sequence[Secret]) -> list[Leak]:
    """The secrets found in each regular file of ``paths`` (directories are walked)."""
    leaks: list[Leak] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and not file.is_symlink():
                data = file.read_bytes()
                if data[:2] == b"\x1f\x8b":  # the CLI gzips some of its own logs
                    data = gzip.decompress(data)
                leaks += find(data, secrets, str(file))
    return leaks


class CommandLineSampler:
    """Every distinct ``/proc/<pid>/cmdline`` seen, sampled in a background thread.

    Root sees the processes of every PID namespace here, the node containers' included.
    """

    def __init__(self, interval: float = 0.05, proc: Path = Path("/proc")) -> None:
        self.interval = interval
        self.proc = proc
        self.seen: dict[str, int] = {}  # command line -> first pid it was seen with
        self.ancestors: dict[str, tuple[int, ...]] = {}  # command line -> that pid's ancestors
        self.sweeps = 0
        self.longest_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cmdline-sampler", daemon=True)

    def __enter__(self) -> CommandLineSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sweep(self) -> None:
        """Read every process's command line once."""
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "cmdline").read_bytes()
            except OSError:  # the process ended between listing and reading
                continue
            if raw:
                line = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
                if line not in self.seen:
                    self.seen[line] = int(entry.name)
                    self.ancestors[line] = self._ancestors(int(entry.name))
        self.sweeps += 1

    def _ancestors(self, pid: int) -> tuple[int, ...]:
        chain: list[int] = []
        while pid > 1 and len(chain) < 64:
            try:
                stat = Path(self.proc, str(pid), "stat").read_text()
            except OSError:
                break
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the (comm)
            chain.append(pid)
        return tuple(chain)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            self.sweep()
            now = time.monotonic()
            self.longest_gap = max(self.longest_gap, now - last)
            last = now
            self._stop.wait(self.interval)

    def leaks(self, secrets: Sequence[Secret], exclude: Iterable[int] = ()) -> list[Leak]:
        """The secrets in any command line seen, but those of ``exclude`` and their descendants.

        The place names the program, not its arguments.
        """
        excluded = set(exclude)
        found: list[Leak] = []
        for line, pid in self.seen.items():
            if pid in excluded or excluded.intersection(self.ancestors.get(line, ())):
                continue
            program = line.split(" ", 1)[0]
            found += find(line, secrets, f"the command line of pid {pid} ({program})")
        return found

    def matching(self, pattern: str) -> list[str]:
        """Command lines seen that match a regular expression."""
        regex = re.compile(pattern)
        return [line for line in self.seen if regex.search(line)]


# Where Pulumi itself logs property values, secrets included, at high verbosity: the
# engine and every Go provider log each property they marshal at -v=9 (rpc.go), and
# the Terraform bridge of the vSphere provider logs its Terraform inputs and outputs (-v=5, 9).
_GLOG_HEADER = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6}\s+\d+ \S+:\d+\] |\{\"time\":\"")
_PROPERTY_RECORD = re.compile(
    r"(?:\] |\"msg\":\")"
    r"(?:(?:Marshaling|Unmarshaling) property for RPC\["
    r"|Created Terraform input: |Terraform (?:input|output) )"
)


def split_property_records(text: str) -> tuple[str, str]:
    """``text`` as (everything else, Pulumi's property-value records), by log record.

    Records are glog lines (``I1128 09:37:12.539199 31128 rpc.go:301] ...``) or slog
    JSON lines (``{"time":...,"msg":...}``); a record runs to the next one, as a
    multi-line value (a PEM key) continues on lines without a header. A provider's
    stderr reaches the CLI's own log one line per JSON record (``"msg":"<line>\\n"``,
    again as ``eventSink::Debug(<line>)``): those lines are unwrapped and grouped as
    the provider wrote them.
    """
    rest: list[str] = []
    records: list[str] = []
    in_record = {False: False, True: False}  # per stream: the CLI's own, forwarded plugin lines
    for line in text.splitlines(keepends=True):
        forwarded, inner = False, line
        if line.startswith('{"time":"'):
            try:
                msg = str(json.loads(line).get("msg", ""))
            except ValueError:
                msg = ""
            if msg.startswith("eventSink::Debug(") or msg.endswith("\n"):
                forwarded = True
                inner = msg.removeprefix("eventSink::Debug(").removesuffix(")").replace("<{%reset%}>", "")
        if forwarded and inner.startswith('{"time":"'):
            # A plugin's slog JSON record is one line: it leaves the glog stream's state alone
            # (plugins' lines interleave, so a multi-line glog record may enclose it).
            (records if _PROPERTY_RECORD.search(inner) else rest).append(line)
            continue
        if _GLOG_HEADER.search(inner):
            in_record[forwarded] = bool(_PROPERTY_RECORD.search(inner))
        (records if in_record[forwarded] else rest).append(line)
    return "".join(rest), "".join(records)
