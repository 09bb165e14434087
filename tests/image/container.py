"""Run the built worker image as a container engine would, with buildah (no Docker engine here).

`Container` gives what `docker run --network host -e ... IMAGE` gives the worker: the image's own
command (its CMD, unless told otherwise), as the image's USER, in its WORKDIR, with its ENV plus
the variables passed, on the host network (the stand-ins and the database listen on the host's
loopback). `stop()` is `docker stop`: SIGTERM to the container's main process, then a wait.

buildah runs a command through two helpers (buildah-chroot-runtime, buildah-chroot-exec) and, on
SIGTERM, kills it rather than passing the signal on; the main process is therefore found in the
process tree and signalled directly, which is what a container engine does to PID 1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CHIRPBASE_IMAGE", "chirpbase-worker:latest")
IMAGE_SH = ROOT / "scripts" / "image.sh"
# Process names (`comm`, cut to 15 characters) of buildah and of its helpers, which it runs from
# memory (`memfd:buildah-chroot-runtime` and so on).
_HELPERS = ("buildah", "memfd:buildah")


def buildah(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """buildah on the project's image store (scripts/image.sh)."""
    return subprocess.run(
        ["bash", str(IMAGE_SH), "buildah", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def buildah_argv(*args: str) -> list[str]:
    return ["bash", str(IMAGE_SH), "buildah", *args]


@dataclass(frozen=True)
class ImageConfig:
    """What `docker inspect` tells about the image."""

    user: str
    env: dict[str, str]
    cmd: list[str]
    entrypoint: list[str]
    workdir: str
    exposed: list[str]
    stop_signal: str
    healthcheck: list[str]
    size_mb: float


def inspect_image(image: str = IMAGE) -> ImageConfig:
    data = json.loads(buildah("inspect", "--type", "image", image).stdout)
    oci = data["OCIv1"]["config"]
    docker = data["Docker"]["config"]
    listed = json.loads(buildah("images", "--json", image).stdout)
    size = re.fullmatch(r"([\d.]+) (kB|MB|GB)", listed[0]["size"])
    assert size, listed[0]["size"]
    scale = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[size[2]]
    return ImageConfig(
        user=oci.get("User", ""),
        env=dict(e.split("=", 1) for e in oci.get("Env", [])),
        cmd=oci.get("Cmd") or [],
        entrypoint=oci.get("Entrypoint") or [],
        workdir=oci.get("WorkingDir", ""),
        exposed=sorted(oci.get("ExposedPorts", {})),
        stop_signal=oci.get("StopSignal", ""),
        healthcheck=(docker.get("Healthcheck") or {}).get("Test", []),
        size_mb=float(size[1]) * scale,
    )


def image_exists(image: str = IMAGE) -> bool:
    return buildah("inspect", "--type", "image", image, check=False).returncode == 0


def _children(pid: int) -> list[int]:
    """Children of every thread of `pid` (buildah, in Go, forks from whichever thread runs)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in children.read_text().split()]
        except OSError:
            continue
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def proc_ids(pid: int) -> dict[str, list[int]]:
    """Real, effective, saved and filesystem uid and gid of a process, from /proc."""
    ids: dict[str, list[int]] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid"):
            ids[key] = [int(v) for v in value.split()]
    return ids


class Container:
    """One working container of the image; use as a context manager (removed on exit)."""

    def __init__(self, image: str = IMAGE) -> None:
        self.image = image
        self.config = inspect_image(image)
        self.name = f"chirpbase-test-{uuid.uuid4().hex[:10]}"
        self.log = Path(tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Container:
        buildah("from", "--pull=never", "--name", self.name, self.image)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        buildah("rm", self.name, check=False)

    def _run_argv(self, cmd: list[str], env: dict[str, str]) -> list[str]:
        flags = [f for k, v in env.items() for f in ("-e", f"{k}={v}")]
        return buildah_argv("run", "--isolation", "chroot", *flags, self.name, "--", *cmd)

    def start(self, env: dict[str, str], cmd: list[str] | None = None) -> Container:
        """Start the image's command (ENTRYPOINT + CMD), or `cmd`, in the background."""
        argv = self._run_argv(cmd or [*self.config.entrypoint, *self.config.cmd], env)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        return self

    def exec(
        self, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run another command in the same container (`docker exec`), output captured."""
        return subprocess.run(
            self._run_argv(cmd, env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def main_pid(self, timeout: float = 30.0) -> int:
        """The container's main process: the first one below scripts/image.sh, buildah and its
        helpers (buildah-chroot-runtime, buildah-chroot-exec)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frontier = [self.proc.pid]
            while frontier:
                pid = frontier.pop()
                if pid != self.proc.pid and not _comm(pid).startswith(_HELPERS):
                    return pid
                frontier.extend(_children(pid))
            if self.proc.poll() is not None:
                raise AssertionError(f"container exited early:\n{self.output()}")
            time.sleep(0.05)
        raise AssertionError(f"no main process after {timeout}s:\n{self.output()}")

    def stop(self, timeout: float = 30.0) -> int:
        """`docker stop`: SIGTERM to the main process, then wait for the container to end."""
        os.kill(self.main_pid(), getattr(signal, self.config.stop_signal or "SIGTERM"))
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
