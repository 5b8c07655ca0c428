"""Run `memory-service` commands as real child processes for crash and multi-process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "service.cli"]
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMORY_")}
    env.update(HF_HUB_OFFLINE="1", MEMORY_DATA_DIR=str(data_dir), MEMORY_LOG_LEVEL="WARNING", OMP_WAIT_POLICY="PASSIVE")
    env.setdefault("MEMORY_AUTH_DISABLED", "true")  # children serve 127.0.0.1; tests/api covers keys
    env.update({f"MEMORY_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class Child:
    """One child process, its log file and (for `serve`) its base URL."""

    args: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Child:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([*CLI, *self.args], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
        return self

    def wait_ready(self) -> Child:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"process exited early:\n{self.log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready after {START_TIMEOUT}s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, nothing flushed, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is not None and self.proc.returncode != -signal.SIGKILL:
            with self.log.open("a") as out:  # it ended by itself: say how, for the failure's reader
                out.write(f"[harness] the process had already exited with {self.proc.returncode}\n")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def serve(data_dir: Path, log: Path, *extra: str, **settings: str) -> Child:
    port = free_port()
    return Child(["serve", "--port", str(port), *extra], service_env(data_dir, **settings), log, port)


def run(args: list[str], data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=service_env(data_dir, **settings), capture_output=True, text=True, timeout=600,
        cwd=Path(__file__).parents[2],
    )


def wait_drained(client: httpx.Client, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/v1/admin/queue").json()["pending"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"queue not drained: {client.get('/v1/admin/queue').json()}")
