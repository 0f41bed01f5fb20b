"""Throwaway PostgreSQL server for Pulumi's DIY state backend (``postgres://``).

Used by the e2e tests (tests/e2e/test_shared_state.py) and by hand:

    python scripts/postgres.py start --state-dir .e2e/postgres   # prints shell exports
    python scripts/postgres.py psql --state-dir .e2e/postgres -c 'SELECT key FROM pulumi_state'
    python scripts/postgres.py stop --state-dir .e2e/postgres

``start`` runs Debian's PostgreSQL binaries (``/usr/lib/postgresql/<v>/bin``, not on
PATH; ``apt-get install postgresql``): ``initdb`` into a fresh temp directory, a server
that listens on 127.0.0.1 only, on a free port, with no Unix socket, and accepts only
SCRAM passwords. Two roles: an admin superuser and ``pulumi`` (LOGIN, no other
privilege), which owns the database ``pulumi``. Passwords are random and live only in a
0600 pgpass file in the state directory (PGPASSFILE): never in argv, the URL or the
environment. PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system account that Debian's package creates (the data directory is owned
by it, in its own 0700 temp directory); the system cluster is never touched.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BIN_GLOB = "/usr/lib/postgresql/*/bin/pg_ctl"
INSTALL_HINT = "apt-get install -y postgresql   # Debian: binaries in /usr/lib/postgresql/<v>/bin"
RUN_AS = "postgres"  # the account Debian's postgresql-common creates
HOST = "127.0.0.1"
ADMIN = "lks_admin"
ROLE = "pulumi"
DATABASE = "pulumi"
TABLE = "pulumi_state"


@dataclass(frozen=True)
class Postgres:
    """A running throwaway server, as recorded in ``<state-dir>/postgres.json``."""

    host: str
    port: int
    user: str
    database: str
    table: str
    bin_dir: str
    root: str  # temp directory holding the data directory and the server log
    run_as: str | None
    passfile: str

    @property
    def data_dir(self) -> str:
        """The cluster's data directory (owned by the account the server runs as)."""
        return str(Path(self.root) / "data")

    @property
    def backend_url(self) -> str:
        """Pulumi's backend URL; the password comes from PGPASSFILE."""
        return backend_url(self.host, self.port, self.user, self.database, self.table)

    def env(self) -> dict[str, str]:
        """Variables that point Pulumi (lib/pq) and psql at the server."""
        return {"PULUMI_BACKEND_URL": self.backend_url, "PGPASSFILE": self.passfile}


def pick_bin_dir(pg_ctls: list[str]) -> str | None:
    """The bin directory of the newest major version among ``.../<v>/bin/pg_ctl`` paths."""
    versioned = []
    for path in pg_ctls:
        match = re.search(r"/(\d+)/bin/pg_ctl$", path)
        if match:
            versioned.append((int(match.group(1)), str(Path(path).parent)))
    return max(versioned)[1] if versioned else None


def backend_url(host: str, port: int, user: str, database: str, table: str) -> str:
    """``postgres://user@host:port/db?sslmode=disable&table=...``: no password in it.

    The DIY backend also uses the URL path as a key prefix: keys are ``<db>/.pulumi/...``.
    sslmode=disable is for this loopback server only; a shared server wants verify-full.
    """
    return f"postgres://{user}@{host}:{port}/{database}?sslmode=disable&table={table}"


def pgpass_line(host: str, port: int, database: str, user: str, password: str) -> str:
    """One ``~/.pgpass`` line; a colon or backslash in a field is escaped with a backslash."""

    def esc(field: str) -> str:
        return field.replace("\\", "\\\\").replace(":", "\\:")

    return ":".join(esc(f) for f in (host, str(port), database, user, password)) + "\n"


def server_conf(host: str, port: int) -> str:
    """Settings appended to postgresql.conf: TCP on one loopback address, no socket."""
    return (
        f"\n# scripts/postgres.py\nlisten_addresses = '{host}'\nport = {port}\n"
        "unix_socket_directories = ''\npassword_encryption = 'scram-sha-256'\n"
    )


def hba_conf(host: str) -> str:
    """pg_hba.conf: SCRAM passwords from the loopback address only, nothing else."""
    return f"# TYPE  DATABASE  USER  ADDRESS  METHOD\nhost    all       all   {host}/32  scram-sha-256\n"


def setup_sql(role: str, database: str, password: str) -> str:
    """The Pulumi role (no superuser, no CREATEDB) and its database; read by psql from stdin."""
    quoted = password.replace("'", "''")
    return (
        f"CREATE ROLE {role} LOGIN PASSWORD '{quoted}';\n"
        f"CREATE DATABASE {database} OWNER {role};\n"
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;\n"
    )


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _as_user(run_as: str | None) -> dict[str, Any]:
    """Arguments to subprocess that drop root for the server's own commands."""
    if run_as is None:
        return {}
    account = pwd.getpwnam(run_as)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def _run(argv: list[str], run_as: str | None, cwd: str, **kwargs: Any) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, check=False, **_as_user(run_as), **kwargs
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return str(proc.stdout)


def start(state_dir: Path, timeout: int = 60) -> Postgres:
    """initdb, start on a free loopback port, create the Pulumi role and database."""
    bin_dir = pick_bin_dir(glob.glob(BIN_GLOB))
    if bin_dir is None:
        raise SystemExit(f"PostgreSQL server binaries not found ({BIN_GLOB}): {INSTALL_HINT}")
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            raise SystemExit(f"no {RUN_AS!r} account to run PostgreSQL as: {INSTALL_HINT}") from None
        run_as = RUN_AS
    state_dir.mkdir(parents=True, exist_ok=True)
    # Outside state_dir: pytest's and the repo's directories need not be reachable by `postgres`.
    root = Path(tempfile.mkdtemp(prefix="lks-postgres-"))
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(root, account.pw_uid, account.pw_gid)
    admin_password, role_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = _free_port(HOST)
    passfile = state_dir / "pgpass"
    passfile.touch(mode=0o600)
    passfile.chmod(0o600)
    passfile.write_text(
        pgpass_line(HOST, port, "*", ADMIN, admin_password)
        + pgpass_line(HOST, port, DATABASE, ROLE, role_password)
    )
    pg = Postgres(HOST, port, ROLE, DATABASE, TABLE, bin_dir, str(root), run_as, str(passfile))
    (state_dir / "postgres.json").write_text(json.dumps(asdict(pg), indent=2) + "\n")

    pwfile = root / "admin.pw"  # initdb reads the superuser's password from a file
    pwfile.write_text(admin_password + "\n")
    if run_as is not None:
        os.chown(pwfile, pwd.getpwnam(run_as).pw_uid, -1)
    pwfile.chmod(0o600)
    try:
        _run(
            [
                f"{bin_dir}/initdb",
                "--pgdata",
                pg.data_dir,
                "--username",
                ADMIN,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
            ],
            run_as,
            str(root),
        )
    finally:
        pwfile.unlink()
    with open(Path(pg.data_dir) / "postgresql.conf", "a") as conf:
        conf.write(server_conf(HOST, port))
    (Path(pg.data_dir) / "pg_hba.conf").write_text(hba_conf(HOST))
    log = str(root / "server.log")
    _run(
        [
            f"{bin_dir}/pg_ctl",
            "start",
            "--pgdata",
            pg.data_dir,
            "--log",
            log,
            "--wait",
            f"--timeout={timeout}",
        ],
        run_as,
        str(root),
    )
    psql(pg, setup_sql(ROLE, DATABASE, role_password), user=ADMIN, database="postgres")
    return pg


def psql(pg: Postgres, sql: str, user: str | None = None, database: str | None = None) -> str:
    """Run ``sql`` (from stdin) with psql over TCP; unaligned, tuples only."""
    argv = [
        f"{pg.bin_dir}/psql",
        "--no-psqlrc",
        "--quiet",
        "--no-align",
        "--tuples-only",
        "--set=ON_ERROR_STOP=1",
        f"--host={pg.host}",
        f"--port={pg.port}",
        f"--username={user or pg.user}",
        f"--dbname={database or pg.database}",
    ]
    env = {**os.environ, "PGPASSFILE": pg.passfile, "PGCONNECT_TIMEOUT": "10"}
    env.pop("PGPASSWORD", None)
    proc = subprocess.run(argv, input=sql, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def load(state_dir: Path) -> Postgres | None:
    """The server recorded in ``state_dir``, if any."""
    state = state_dir / "postgres.json"
    return Postgres(**json.loads(state.read_text())) if state.exists() else None


def stop(state_dir: Path) -> bool:
    """``pg_ctl stop -m fast``, then remove the cluster and the pgpass file; True if one ran."""
    pg = load(state_dir)
    if pg is None:
        return False
    ran = False
    if Path(pg.data_dir, "postmaster.pid").exists():
        _run(
            [f"{pg.bin_dir}/pg_ctl", "stop", "--pgdata", pg.data_dir, "--mode", "fast", "--wait"],
            pg.run_as,
            pg.root,
        )
        ran = True
    shutil.rmtree(pg.root, ignore_errors=True)
    Path(pg.passfile).unlink(missing_ok=True)
    (state_dir / "postgres.json").unlink()
    return ran


def main() -> int:
    """CLI: ``start`` prints shell exports, ``psql`` runs SQL, ``stop`` ends the server."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop", "status", "psql"])
    parser.add_argument("--state-dir", type=Path, default=Path(".e2e/postgres"))
    parser.add_argument("-c", "--command", help="psql: SQL to run as the pulumi role")
    args = parser.parse_args()
    if args.action == "start":
        if load(args.state_dir) is not None:
            parser.error(f"a server is recorded in {args.state_dir}: stop it first")
        for key, value in start(args.state_dir.resolve()).env().items():
            print(f"export {key}='{value}'")
        return 0
    if args.action == "stop":
        print("postgres stopped" if stop(args.state_dir) else "no postgres was running")
        return 0
    pg = load(args.state_dir)
    if pg is None:
        print("no postgres is running")
        return 1
    if args.action == "status":
        print(f"postgres on {pg.host}:{pg.port}, data in {pg.data_dir}")
        return 0
    sys.stdout.write(psql(pg, args.command or sys.stdin.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
