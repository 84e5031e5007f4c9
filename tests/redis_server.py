"""A real Redis server for tests (named redis_server so it never shadows the `redis` package): Debian's `redis-server`, installed when missing, started
as a plain process on 127.0.0.1 on a free port with a password, stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def redis_server_binary() -> str:
    """`redis-server` from PATH; installs Debian's package with apt if there is none."""
    found = shutil.which("redis-server")
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"], check=True, env=env
        )
        found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server could not be installed from Debian packages")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    proc: subprocess.Popen
    port: int
    password: str
    directory: Path
    host: str = "127.0.0.1"

    def url(self, db: int = 0) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"\r\n" not in reply.partition(b"\r\n")[2]:  # two replies: +OK, +PONG
                chunk = s.recv(100)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


def start_redis(password: str) -> RedisServer:
    """Redis on 127.0.0.1 only, password required, no persistence; returns once it answers PING."""
    binary = redis_server_binary()
    directory = Path(tempfile.mkdtemp(prefix="agora-redis-"))
    port = _free_port()
    config = directory / "redis.conf"  # the password goes in a file, not on the command line (ps)
    config.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
        f'dir {directory}\nsave ""\nappendonly no\ndaemonize no\nlogfile {directory / "redis.log"}\n'
    )
    config.chmod(0o600)
    proc = subprocess.Popen([binary, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = RedisServer(proc, port, password, directory)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (directory / "redis.log").read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"redis-server exited with {proc.returncode}:\n{log}")
        if _answers(port, password):
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("redis-server did not answer within 30 s")
