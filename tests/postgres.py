"""A real PostgreSQL server for tests: installed from Debian packages when missing,
initialised in a temporary directory and started on 127.0.0.1 on a free port.

PostgreSQL refuses to run as root, so the server runs as the `postgres` system user
(created by the Debian package). Tests get a superuser DSN; stop() ends the server.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "agora_admin"
PASSWORD = "agora-test-only"


def pg_bin_dir() -> Path:
    """The newest installed server's bin directory; installs `postgresql` with apt if none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"], check=True, env=env
        )
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL could not be installed from Debian packages")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@{self.host}:{self.port}/postgres"

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        res = subprocess.run(
            ["psql", self.url(database), "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return res.stdout

    def create_database(self, name: str) -> str:
        if not self.psql(f"select 1 from pg_database where datname = '{name}'").strip():
            self.psql(f'create database "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer:
    bin_dir = pg_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="agora-pg-"))
    data_dir, sock_dir = root / "data", root / "sock"
    sock_dir.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock_dir, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-h 127.0.0.1 -p {port} -k {sock_dir} -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    return PostgresServer(bin_dir, data_dir, port)
