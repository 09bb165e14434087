"""The README's "Provision" and "Run the worker" sections, run word for word.

Every command line in those sections' bash blocks is run here as written, from the repository
root, the way a newcomer pastes it. What a newcomer supplies comes in as the environment, as
their `.env` or shell would: `DATABASE_URL` (here a fresh local database), the worker's keys and
endpoints (here the sandbox stand-ins'), `HTTP_PORT` (a free port, so that parallel runs do not
collide on 8080). Lines that need a Docker engine cannot run on these machines: each is checked
against the Dockerfile, docker-compose.yml and the Makefile it relies on, and `make image-test`
runs that very image (tests/image).

A line added to either section is run too, so the sections cannot drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from sandbox.stack import SandboxStack, ThreadedSandbox
from tests import pg
from tests.processes import free_port
from tests.waiting import wait_for_sync
from worker.migrate import discover

README = pg.ROOT / "README.md"
ALL = [m.version for m in discover()]


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"### {title}")
    end = min(i for i in (text.find("\n## ", start), text.find("\n### ", start + 1)) if i > 0)
    return text[start:end]


def _blocks(title: str) -> list[list[str]]:
    """The command lines of each ```bash block of a README section (comments are bash's)."""
    blocks = re.findall(r"```bash\n(.*?)```", _section(title), flags=re.DOTALL)
    return [[line for line in b.splitlines() if line.strip()] for b in blocks]


def _sh(line: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=pg.ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _newcomer_env(**values: str) -> dict[str, str]:
    """This shell's environment without any chirpbase settings, plus what the newcomer sets."""
    ours = ("X_", "OPENAI_", "SUPABASE_", "DATABASE_URL", "HTTP_", "WORKER_", "DOORBELL_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(ours)}, **values}


def test_provision_runs_as_written(empty_db: str) -> None:
    hosted, local = _blocks("1. Provision")
    # Against "your project": a database with only what Supabase provides.
    env = _newcomer_env(DATABASE_URL=pg.cli_url(empty_db))
    for line in hosted:
        result = _sh(line, env, stdin="y\n")  # the CLI asks before applying
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        assert "Do you want to push these migrations" in result.stdout + result.stderr
    with psycopg.connect(pg.app_dsn(empty_db)) as conn:
        applied = conn.execute(
            "select version from supabase_migrations.schema_migrations order by 1"
        ).fetchall()
    assert [v for (v,) in applied] == ALL
    # On this machine: the local stack, then the same push against it.
    for line in local:
        result = _sh(line, _newcomer_env())
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
    listed = pg.migration_list("postgres")
    assert [local for local, _ in listed] == ALL
    assert all(local == remote for local, remote in listed)


@pytest.fixture
def stack(admin_dsn: str) -> Iterator[SandboxStack]:
    with ThreadedSandbox(admin_dsn) as s:
        yield s


def _compose() -> str:
    return (pg.ROOT / "docker-compose.yml").read_text(encoding="utf-8")


def _dockerfile() -> str:
    return (pg.ROOT / "Dockerfile").read_text(encoding="utf-8")


def _check_engine_line(line: str) -> None:
    """What a `docker run` / `docker compose` line relies on is where it says it is."""
    words = shlex.split(line, comments=True)
    assert words[:2] == ["docker", "run"], line
    image = words[-1]
    image_sh = (pg.ROOT / "scripts" / "image.sh").read_text(encoding="utf-8")
    assert f'CHIRPBASE_IMAGE:-{image}:latest}}"' in image_sh  # what `make image` tags
    assert f"image: {image}:latest" in _compose()
    env_file = words[words.index("--env-file") + 1]
    assert env_file == ".env" and (pg.ROOT / ".env.example").exists()  # cp .env.example .env
    assert f"env_file: {env_file}" in _compose()
    host, _, container = words[words.index("-p") + 1].partition(":")
    assert f"EXPOSE {container}" in _dockerfile()
    assert f"HTTP_PORT={container}" in _dockerfile()
    assert f'"{host}:{container}"' in _compose()
    if "docker compose up -d" in line:  # the alternative in the comment
        assert re.search(r"^\s+build: \.$", _compose(), flags=re.MULTILINE)


def _health_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
    try:
        return json.loads(result.stdout) if result.returncode == 0 else None
    except json.JSONDecodeError:
        return None


def test_run_the_worker_runs_as_written(stack: SandboxStack, dsn: str) -> None:
    engine, checkout = _blocks("4. Run the worker")
    for line in engine:
        _check_engine_line(line)

    worker, *after = checkout
    assert worker == "uv run chirpbase worker"
    env = _newcomer_env(**stack.env(dsn), HTTP_PORT=str(free_port()))
    proc = subprocess.Popen(
        ["bash", "-c", worker],
        cwd=pg.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in after:
            health = wait_for_sync(
                lambda line=line: _health_json(_sh(line, env)),
                timeout=60,
                interval=0.2,
                message=f"{line!r} answering",
            )
            assert health["status"] in ("ok", "degraded"), health
            assert health["database"]["up"] is True, health
        proc.send_signal(signal.SIGTERM)  # Ctrl-C's cousin: what a service manager sends
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = proc.stdout.read() if proc.stdout else ""
    assert "ready" in output, output
