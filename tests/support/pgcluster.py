"""A throwaway PostgreSQL cluster on 127.0.0.1, for the test suite and the benchmarks.

Uses Debian's server binaries (``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run
as root, so as root the cluster is created and run as the ``postgres`` user. The data directory
is a temporary folder removed by :meth:`PgCluster.stop`. Durability is switched off: it is a
scratch database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name))
    if not candidates:
        found = shutil.which("initdb")
        if found:
            return Path(found).parent
        raise RuntimeError("PostgreSQL server binaries not found; run `make test` (installs the "
                           "postgresql package as root) or `apt-get install postgresql`.")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, user: str = "newsfund"):
        self.user = user
        self.bindir = find_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="newsfund-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PgCluster:
        self.socket_dir.mkdir()
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "server.log"), "-w", "-t", "60", "start")
        self.started = True
        return self

    def _options(self) -> str:
        return (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200 -c shared_buffers=256MB")

    def restart(self) -> None:
        """Stop the server, ending every connection as a restart or a failover does, and start
        it again on the same port and data."""
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "server.log"), "-m", "fast", "-w", "-t", "60", "restart")

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create (or re-create) a database, empty or a copy of the database ``template``
        (which nothing may be connected to), and return its SQLAlchemy URL."""
        import psycopg

        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # a quick manual check: start, connect, stop
    with PgCluster() as cluster:
        print("started", cluster.create_database("check"))
        time.sleep(0.1)
    print("stopped")
