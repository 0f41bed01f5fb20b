"""scripts/postgres.py: the pure pieces of the throwaway PostgreSQL server."""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import postgres  # noqa: E402


def test_newest_major_version_wins() -> None:
    paths = [
        "/usr/lib/postgresql/9/bin/pg_ctl",
        "/usr/lib/postgresql/15/bin/pg_ctl",
        "/usr/lib/postgresql/13/bin/pg_ctl",
    ]
    assert postgres.pick_bin_dir(paths) == "/usr/lib/postgresql/15/bin"


def test_no_server_binaries() -> None:
    assert postgres.pick_bin_dir([]) is None
    assert postgres.pick_bin_dir(["/usr/lib/postgresql/current/bin/pg_ctl"]) is None


def test_backend_url_has_no_password() -> None:
    url = postgres.backend_url("127.0.0.1", 5433, "pulumi", "pulumi", "pulumi_state")
    assert url == "postgres://pulumi@127.0.0.1:5433/pulumi?sslmode=disable&table=pulumi_state"


def test_pgpass_escapes_colons_and_backslashes() -> None:
    line = postgres.pgpass_line("127.0.0.1", 5433, "*", "pulumi", r"a:b\c")
    assert line == "127.0.0.1:5433:*:pulumi:a\\:b\\\\c\n"


def test_server_listens_on_one_loopback_address_without_socket() -> None:
    conf = postgres.server_conf("127.0.0.1", 5433)
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 5433" in conf
    assert "unix_socket_directories = ''" in conf


def test_hba_allows_only_scram_from_loopback() -> None:
    rules = [line.split() for line in postgres.hba_conf("127.0.0.1").splitlines() if not line.startswith("#")]
    assert rules == [["host", "all", "all", "127.0.0.1/32", "scram-sha-256"]]


def test_setup_sql_quotes_the_password_and_grants_nothing_more() -> None:
    sql = postgres.setup_sql("pulumi", "pulumi", "it's")
    assert "PASSWORD 'it''s'" in sql
    assert "SUPERUSER" not in sql and "CREATEDB" not in sql
    assert "CREATE DATABASE pulumi OWNER pulumi;" in sql
