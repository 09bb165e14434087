"""Worker processes for tests that kill, signal and restart them for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProcess:
    """`python -m worker worker` in a subprocess, its JSON log captured to a file."""

    def __init__(self, env: dict[str, str], *, name: str = "w", kinds: str | None = None):
        self.port = free_port()
        self.name = name
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("X_", "OPENAI_", "SUPABASE_"))
            },
            "LOG_LEVEL": "DEBUG",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "WORKER_ID": name,
            **env,
        }
        self.kinds = kinds
        self.log = Path(tempfile.mkstemp(prefix=f"chirpbase-{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        args = [sys.executable, "-m", "worker", "worker"]
        if self.kinds:
            args += ["--kinds", self.kinds]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=out)
        return self

    def health(self) -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.output()}")
            if self.health() is not None:
                return
            time.sleep(0.05)
        raise AssertionError(f"worker {self.name} not ready after {timeout}s:\n{self.output()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
