"""The built worker image, run for real: `make image && make image-test`.

The image is run as a container engine runs it (tests/image/container.py): its own command, user,
working directory and environment, on the host network so that it reaches the sandbox stand-ins
and the local database. What a deployment relies on is checked on the running process: /health
answers 200 (and the image's HEALTHCHECK agrees), a scheduled tweet reaches the X stand-in,
SIGTERM ends it with exit status 0 and its unfinished job handed back, and it runs as the
unprivileged user. The image's contents are checked too: only what the worker needs.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from sandbox.stack import CREDENTIALS, SandboxStack, ThreadedSandbox
from tests import pg
from tests.image.container import (
    IMAGE,
    Container,
    ImageConfig,
    image_exists,
    inspect_image,
    proc_ids,
)
from tests.processes import free_port
from tests.waiting import wait_for_sync

pytestmark = pytest.mark.image

SIZE_LIMIT_MB = 350


@pytest.fixture(scope="module")
def config() -> ImageConfig:
    if not image_exists():
        pytest.fail(f"no image {IMAGE} in the project's image store: run `make image` first")
    return inspect_image()


@pytest.fixture(scope="module")
def container(config: ImageConfig) -> Iterator[Container]:
    """One working container for the module: with the vfs store each one is a full copy."""
    with Container() as c:
        yield c


@pytest.fixture
def stack(admin_dsn: str) -> Iterator[SandboxStack]:
    with ThreadedSandbox(admin_dsn) as s:
        yield s


def _health(port: int) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return None


def test_the_image_is_small_and_runs_as_an_unprivileged_user(
    config: ImageConfig, container: Container
) -> None:
    assert config.size_mb < SIZE_LIMIT_MB, f"{config.size_mb} MB"
    assert config.user == "chirpbase"
    assert config.cmd == ["chirpbase", "worker"] and config.entrypoint == []
    assert config.stop_signal == "SIGTERM"
    assert config.exposed == ["8080/tcp"] and config.env["HTTP_PORT"] == "8080"
    assert config.healthcheck[:2] == ["CMD", "python"]
    who = container.exec(["sh", "-c", "id -u; id -un; test -w /app/worker && echo writable || :"])
    assert who.returncode == 0, who.stderr
    uid, name, *rest = who.stdout.split()
    assert (int(uid) != 0, name, rest) == (True, "chirpbase", [])  # and the code is read-only


def test_the_image_holds_only_what_the_worker_needs(container: Container) -> None:
    listing = container.exec(["ls", "-A", "/app"])
    assert sorted(listing.stdout.split()) == [
        ".venv",
        "README.md",
        "pyproject.toml",
        "supabase",
        "uv.lock",
        "worker",
    ]
    probe = container.exec(
        [
            "python",
            "-c",
            "import importlib.util as u, json, worker.runtime.worker;"
            " print(json.dumps({m: u.find_spec(m) is not None for m in"
            " ('sandbox', 'pytest', 'pandas', 'matplotlib', 'tweepy', 'openai', 'PIL')}))",
        ]
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {
        "sandbox": False,
        "pytest": False,
        "pandas": False,
        "matplotlib": False,
        "tweepy": True,
        "openai": True,
        "PIL": True,
    }
    tests_dirs = container.exec(
        ["find", "/app/.venv/lib/python3.11/site-packages", "-type", "d", "-name", "tests"]
    )
    assert tests_dirs.stdout.split() == []


def test_the_report_in_the_image_says_what_is_missing(container: Container) -> None:
    result = container.exec(
        ["chirpbase", "report", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    )
    assert result.returncode == 1
    assert "`report` extra" in result.stdout + result.stderr


def test_migrate_in_the_image_agrees_with_the_supabase_cli(
    container: Container, pg_template: pg.TemplateDB
) -> None:
    """`chirpbase db migrate` is the container's way to provision; the CLI must then agree."""
    name = f"chirpbase_image_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    try:
        pg.bootstrap(name)
        result = container.exec(["chirpbase", "db", "migrate", "--database-url", pg.app_dsn(name)])
        assert result.returncode == 0, result.stdout + result.stderr
        assert "applied" in result.stdout
        assert pg.db_push(name) == []
        listed = pg.migration_list(name)
        assert listed and all(local == remote != "" for local, remote in listed)
    finally:
        pg.drop_database(name)


def test_the_image_worker_posts_answers_health_and_stops_cleanly(
    container: Container, stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    port = free_port()
    env = {
        **stack.env(dsn),
        "HTTP_PORT": str(port),
        "WORKER_ID": "image-worker",
        "DOORBELL_ENABLED": "true",
        "POLL_INTERVAL_S": "1",
        "SHUTDOWN_GRACE_S": "2",
        # The grace must cover a whole call to X: short calls to the loopback stand-in.
        "X_CONNECT_TIMEOUT_S": "0.5",
        "X_TIMEOUT_S": "1.5",
        "LOG_LEVEL": "DEBUG",
    }
    container.start(env)
    wait_for_sync(lambda: _health(port), timeout=60, message="/health from the container")
    # Real, effective, saved and filesystem ids of the worker process: all the image's user.
    assert proc_ids(container.main_pid()) == {"Uid": [10001] * 4, "Gid": [10001] * 4}
    status = wait_for_sync(
        lambda: (h := _health(port)) and h[0] == 200 and h, timeout=30, message="/health 200"
    )
    assert status[1]["status"] in ("ok", "degraded")
    # The image's own HEALTHCHECK, run inside the container as the engine would.
    check = container.exec(container.config.healthcheck[1:], {"HTTP_PORT": str(port)})
    assert check.returncode == 0, check.stdout + check.stderr

    tweet_id = conn.execute(
        "insert into public.scheduled_tweets (content) values ('Shipped in a container.')"
        " returning id"
    ).fetchone()[0]
    wait_for_sync(
        lambda: conn.execute(
            "select status = 'posted' from public.scheduled_tweets where id = %s", (tweet_id,)
        ).fetchone()[0],
        timeout=30,
        message="scheduled tweet posted",
    )
    assert [t.text for t in stack.x.posted_tweets()] == ["Shipped in a container."]

    job_id = conn.execute(
        "select public.enqueue_job('noop', '{\"duration_s\": 60}'::jsonb)"
    ).fetchone()[0]
    wait_for_sync(
        lambda: (
            conn.execute("select status from public.jobs where id = %s", (job_id,)).fetchone()[0]
            == "running"
        ),
        timeout=20,
        message="long job running",
    )
    assert container.stop(timeout=30) == 0
    status_now, attempts = conn.execute(
        "select status, attempts from public.jobs where id = %s", (job_id,)
    ).fetchone()
    assert (status_now, attempts) == ("queued", 0)  # handed back, attempt refunded
    out = container.output()
    assert "released 1 unfinished job" in out
    leaked = [s for s in [*CREDENTIALS.values(), "postgres:postgres"] if s in out]
    assert leaked == []
