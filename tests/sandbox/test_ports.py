"""A port already taken is reported as such, with how to choose another, by everything that listens.

The situation a newcomer meets with a second checkout: its `make db-up` finds 54329 held by the
first checkout's PostgreSQL; a stand-in started twice finds its default port held by the first.
Each case is played for real: the port is held by a socket of this test, and the command run as
a user would run it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port something already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=pg.ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _suggested_port(text: str) -> int:
    match = re.search(r"export CHIRPBASE_PG_PORT=(\d+)", text)
    assert match, text
    return int(match[1])


def _assert_explained(result: subprocess.CompletedProcess[str], port: int) -> None:
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in out
    assert "CHIRPBASE_PG_PORT" in out
    assert "could not start server" not in out  # pg_ctl's own words are not what we show
    suggested = _suggested_port(out)
    with socket.socket() as s:  # the suggestion is a port one can actually use
        s.bind(("127.0.0.1", suggested))


def test_db_up_says_the_port_is_taken_and_how_to_choose_another(
    held_port: int, tmp_path: Path
) -> None:
    env = {"CHIRPBASE_PG_PORT": str(held_port), "CHIRPBASE_PG_HOME": str(tmp_path / "pg")}
    result = _run(["make", "--no-print-directory", "db-up"], env)
    _assert_explained(result, held_port)
    assert not (tmp_path / "pg" / "data").exists()  # refused before creating anything


def test_db_up_explains_a_port_lost_while_starting(tmp_path: Path) -> None:
    """Bound but not listening (or taken between the check and the start): PostgreSQL's own bind
    fails; its log says so, and the message is the same."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
        env = {"CHIRPBASE_PG_PORT": str(port), "CHIRPBASE_PG_HOME": str(tmp_path / "pg")}
        result = _run(["bash", "scripts/pg.sh", "start"], env)
    _assert_explained(result, port)


def test_the_demo_stops_with_the_same_message(held_port: int, tmp_path: Path) -> None:
    env = {"CHIRPBASE_PG_PORT": str(held_port), "CHIRPBASE_PG_HOME": str(tmp_path / "pg")}
    result = _run([sys.executable, "-m", "sandbox.demo"], env)
    _assert_explained(result, held_port)
    assert "Traceback" not in result.stderr
    assert "demo: scripts/pg.sh start failed" in result.stderr


@pytest.mark.parametrize(
    ("module", "what", "extra"),
    [
        ("sandbox.x_api", "X API stand-in", []),
        ("sandbox.openai_api", "OpenAI stand-in", []),
        ("sandbox.storage", "Storage stand-in", ["--dsn", "{dsn}"]),
        ("sandbox.gateway", "Supabase gateway stand-in", ["--dsn", "{dsn}"]),
    ],
)
def test_each_stand_in_says_its_port_is_taken(
    module: str, what: str, extra: list[str], held_port: int, admin_dsn: str
) -> None:
    args = [a.format(dsn=admin_dsn) for a in extra]
    result = _run([sys.executable, "-m", module, "--port", str(held_port), *args])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"{what}: port {held_port} on 127.0.0.1 is already in use" in result.stderr
    match = re.search(r"Choose another port with --port, for example --port (\d+)\.", result.stderr)
    assert match, result.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(match[1])))
    assert f"127.0.0.1:{held_port}" not in result.stdout  # never announced as listening
