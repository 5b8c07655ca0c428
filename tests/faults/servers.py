"""Private Redis and Postgres servers that a fault test starts, stops and restarts on one port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.live import free_port
from tests.services import missing

START_SECONDS = 30.0


def binary(name: str) -> str:
    """The path of an installed program (fail under CI=true, else skip, when it is missing)."""
    return shutil.which(name) or missing(f"{name} is not installed (a fault test starts its own server)")


class RedisServer:
    """A throw-away redis-server on a free loopback port, without persistence."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self._binary = binary("redis-server")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.folder / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen([*args, "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.02)
        client.close()

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted but nothing answers (a hung or partitioned Redis)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGCONT)
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None


class PostgresCluster:
    """A throw-away Postgres cluster (initdb into a temp dir) on a free loopback port."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="memsvc-pg-"))
        self.port = free_port()
        self._initdb = binary("initdb")
        self._pg_ctl = binary("pg_ctl")
        # initdb refuses to run as root: run the server tools as the postgres user then.
        self._as = [binary("runuser"), "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.folder, "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=START_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def init(self) -> None:
        data = str(self.folder / "data")
        self._run(self._initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run(self._pg_ctl, "-D", str(self.folder / "data"), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Fast shutdown: open connections are terminated, as when Postgres goes away."""
        self._run(self._pg_ctl, "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
