"""The secret scanner of the e2e secrets test finds planted leaks, and only those."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linuxkit_swarm import guestinfo, ssh_keys
from tests.e2e import leak_scan

TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"
PASSWORD = "Sim-p@ss/w:rd"  # URL-reserved characters on purpose


@pytest.fixture(scope="module")
def keys() -> tuple[str, str, str]:
    """The key under test and two unrelated ones (one to derive needles, one as a bystander)."""
    return ssh_keys.new_host_key()[0], ssh_keys.new_host_key()[0], ssh_keys.new_host_key()[0]


def _secrets(keys: tuple[str, str, str]) -> list[leak_scan.Secret]:
    return [
        leak_scan.password("vCenter password", PASSWORD),
        leak_scan.join_token("worker token", TOKEN),
        leak_scan.pem_key("SSH key", keys[0], [keys[1]]),
    ]


def test_clean_text_has_no_leak(keys: tuple[str, str, str]) -> None:
    text = f"ssh -i /tmp/id root@10.0.0.1 docker node ls\n{keys[2]}\n[secret] SWMTKN-1-3pu6hszjas19xyp7"
    assert leak_scan.find(text, _secrets(keys), "log") == []


@pytest.mark.parametrize(
    "planted",
    [
        PASSWORD,
        "https://root:Sim-p%40ss%2Fw%3Ard@127.0.0.1:8989/sdk",
        TOKEN,
        "token=1awxwuwd3z9j1z3puu7rcgdbx",
    ],
)
def test_a_planted_password_or_token_is_found(keys: tuple[str, str, str], planted: str) -> None:
    leaks = leak_scan.find(f"level=9 msg={planted!r} done", _secrets(keys), "the up's stderr")
    assert [str(leak) for leak in leaks] == [
        f"{'vCenter password' if 'Sim' in planted else 'worker token'} in the up's stderr"
    ]


def test_the_token_digest_alone_is_no_leak(keys: tuple[str, str, str]) -> None:
    digest = TOKEN.split("-")[2]  # the CA digest both tokens share: public
    assert leak_scan.find(digest, _secrets(keys), "x") == []


def test_a_key_is_found_with_escaped_newlines_and_an_unrelated_key_is_not(keys: tuple[str, str, str]) -> None:
    secrets = _secrets(keys)
    assert [str(x) for x in leak_scan.find(json.dumps({"key": keys[0]}), secrets, "state")] == [
        "SSH key in state"
    ]
    assert leak_scan.find(json.dumps({"key": keys[2]}), secrets, "state") == []


def test_a_key_fragment_line_is_found(keys: tuple[str, str, str]) -> None:
    needle = leak_scan.pem_key("SSH key", keys[0], [keys[1]]).needles[-1]
    assert leak_scan.find(f"...{needle}...", _secrets(keys), "argv")


def test_a_token_inside_guestinfo_userdata_is_found_base64_and_gzipped(keys: tuple[str, str, str]) -> None:
    node = guestinfo.NodeUserdata(
        hostname="w0",
        role="worker",
        ssh_authorized_keys=[],
        manager_address="10.0.0.1:2377",
        join_token=TOKEN,
    )
    plain = guestinfo.encode_userdata(node)
    assert TOKEN not in plain
    gz = base64.b64encode(gzip.compress(base64.b64decode(plain))).decode()
    for encoded in (plain, gz):
        leaks = leak_scan.find(json.dumps({"guestinfo.userdata": encoded}), _secrets(keys), "export")
        assert [str(x) for x in leaks] == ["worker token in export (base64-encoded)"]


def test_findings_never_show_the_value(keys: tuple[str, str, str]) -> None:
    leaks = leak_scan.find(f"{PASSWORD} {TOKEN} {keys[0]}", _secrets(keys), "log")
    assert len(leaks) == 3
    shown = "\n".join(str(x) for x in leaks)
    assert PASSWORD not in shown and TOKEN.rsplit("-", 1)[1] not in shown


def test_files_are_scanned_recursively(tmp_path: Path, keys: tuple[str, str, str]) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "clean.log").write_text("nothing here")
    (tmp_path / "a" / "b" / "pulumi.INFO").write_text(f"props={{vcurl: {PASSWORD}}}")
    (tmp_path / "a" / "up.log").write_bytes(gzip.compress(TOKEN.encode()))
    leaks = leak_scan.find_in_files([tmp_path], _secrets(keys))
    assert [str(x) for x in leaks] == [
        f"vCenter password in {tmp_path / 'a' / 'b' / 'pulumi.INFO'}",
        f"worker token in {tmp_path / 'a' / 'up.log'}",
    ]


def test_needles_are_refused_when_they_would_match_anything() -> None:
    with pytest.raises(ValueError, match="swarm join token"):
        leak_scan.join_token("worker token", "SWMTKN-1-abc-x")
    key = ssh_keys.new_host_key()[0]
    with pytest.raises(ValueError, match="no body line"):
        leak_scan.pem_key("SSH key", key, [key])


def test_the_sampler_sees_a_planted_command_line(keys: tuple[str, str, str]) -> None:
    planted = f"--url=https://root:{PASSWORD}@vc/sdk"
    code = "import time; time.sleep(1.5)"
    with leak_scan.CommandLineSampler(interval=0.05) as sampler:
        proc = subprocess.Popen([sys.executable, "-c", code, planted])
        time.sleep(0.5)
        proc.kill()
        proc.wait()
    assert sampler.sweeps >= 3
    assert sampler.matching(r"time\.sleep\(1\.5\)")
    leaks = [str(x) for x in sampler.leaks(_secrets(keys))]
    assert leaks == [f"vCenter password in the command line of pid {proc.pid} ({sys.executable})"]


def test_property_records_are_split_off_by_log_record(keys: tuple[str, str, str]) -> None:
    log = (
        "I1128 09:37:12.539199   31128 rpc.go:301] Unmarshaling property for RPC[]: value={"
        + keys[0]
        + "}\n"
        + "I1128 09:37:12.540000   31128 provider.go:12] Create executing\n"
        + f"I1128 09:37:12.541000   31129 step.go:7] planted {PASSWORD}\n"
        + '{"time":"2026-11-28T09:57:35Z","level":"INFO",'
        + f'"msg":"Created Terraform input: password = {PASSWORD}"}}\n'
        + '{"time":"2026-11-28T09:57:36Z","level":"INFO","msg":"Configure done"}\n'
    )
    rest, rpc = leak_scan.split_property_records(log)
    assert "Create executing" in rest and "Configure done" in rest
    assert "Unmarshaling" in rpc and "Created Terraform input" in rpc
    # The key's continuation lines stay with their record; the planted line is found.
    assert [x.secret for x in leak_scan.find(rpc, _secrets(keys), "rpc")] == ["vCenter password", "SSH key"]
    assert [x.secret for x in leak_scan.find(rest, _secrets(keys), "rest")] == ["vCenter password"]


def test_the_sampler_leaves_out_excluded_processes_and_their_children(keys: tuple[str, str, str]) -> None:
    child = f"[sys.executable, '-c', 'import time; time.sleep(1)', '{PASSWORD}']"
    code = f"import subprocess, sys; subprocess.run({child})"
    with leak_scan.CommandLineSampler(interval=0.05) as sampler:
        parent = subprocess.Popen([sys.executable, "-c", code])
        time.sleep(0.6)
        parent.wait()
    assert sampler.leaks(_secrets(keys))  # the child shows the password
    assert sampler.leaks(_secrets(keys), exclude=[parent.pid]) == []


def test_forwarded_plugin_lines_are_grouped_as_the_plugin_wrote_them(keys: tuple[str, str, str]) -> None:
    """The CLI logs each stderr line of a plugin as a JSON record; a JSON-logging plugin's
    line may interleave with a glog plugin's multi-line record."""

    def slog(record: dict[str, object]) -> str:
        return json.dumps(record, separators=(",", ":"))  # as Go's slog writes it

    def forwarded(line: str) -> str:
        return slog({"time": "2026-11-28T10:16:33Z", "level": "INFO", "msg": line + "\n", "v": 3}) + "\n"

    key_lines = keys[0].splitlines()
    log = forwarded(
        "I1128 10:16:33.439727   2231 rpc.go:85] Marshaling property for RPC[]: value={" + key_lines[0]
    )
    log += forwarded(slog({"time": "2026-11-28T10:16:33Z", "msg": "Skipping unmarshaling for RPC[x]"}))
    log += "".join(forwarded(line) for line in key_lines[1:])
    log += forwarded(f"I1128 10:16:34.000000   2231 step.go:9] planted {PASSWORD}")
    rest, records = leak_scan.split_property_records(log)
    assert [x.secret for x in leak_scan.find(records, _secrets(keys), "")] == ["SSH key"]
    assert [x.secret for x in leak_scan.find(rest, _secrets(keys), "")] == ["vCenter password"]
    assert "Skipping unmarshaling" in rest
