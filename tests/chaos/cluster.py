"""A private PostgreSQL cluster for tests that stop or restart the database.

`scripts/pg.sh` honours CHIRPBASE_PG_HOME and CHIRPBASE_PG_PORT, so the same script that runs the
shared cluster (127.0.0.1:54329) runs a second one in a temporary directory on a free port. Other
test processes share the main cluster; restarting it under them would break their tests, so chaos
and outage tests restart only this one.

`sandbox.localdb` reads the port once at import, so it cannot address this cluster: the few
helpers needed are here, with the port explicit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from sandbox.localdb import BOOTSTRAP, ROOT
from tests.processes import free_port
from tests.waiting import wait_for_sync
from worker.migrate import migrate

PG_SH = ROOT / "scripts" / "pg.sh"


class PrivateCluster:
    """`start()`, `stop()`, `restart()`, `destroy()`; `create_database(name)` bootstraps and
    migrates a database the way `sandbox.localdb.build_template` does on the shared cluster."""

    def __init__(self, home: Path | None = None, port: int | None = None):
        self.home = home or Path(tempfile.mkdtemp(prefix="chirpbase-private-pg-"))
        self.port = port or free_port()
        self.host = "127.0.0.1"

    # -- the cluster ------------------------------------------------------------------------
    def _pg(self, command: str, *, timeout: float = 120) -> None:
        env = {
            **os.environ,
            "CHIRPBASE_PG_HOME": str(self.home),
            "CHIRPBASE_PG_PORT": str(self.port),
        }
        done = subprocess.run(
            ["bash", str(PG_SH), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg.sh {command} (home {self.home}, port {self.port}) failed:\n"
                f"{done.stdout}{done.stderr}"
            )

    def start(self) -> None:
        self._pg("start")

    def stop(self) -> None:
        self._pg("stop")

    def restart(self) -> None:
        self._pg("restart")

    def running(self) -> bool:
        try:
            self._pg("status", timeout=30)
        except RuntimeError:
            return False
        return True

    def destroy(self) -> None:
        try:
            self._pg("destroy")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    # -- connection strings -----------------------------------------------------------------
    def admin_dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://supabase_admin@{self.host}:{self.port}/{dbname}"

    def app_dsn(self, dbname: str) -> str:
        """The worker's role (`postgres`, not a superuser), as on Supabase."""
        return f"postgresql://postgres:postgres@{self.host}:{self.port}/{dbname}"

    # -- databases --------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """A bootstrapped, migrated database (no pg_cron in it: pg_cron lives in `postgres`)."""
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
        with psycopg.connect(self.admin_dsn(name), autocommit=True) as conn:
            conn.execute(BOOTSTRAP.read_text())
        migrate(self.app_dsn(name))
        return name

    def accepting(self) -> bool:
        """True when the cluster answers a query."""
        try:
            with psycopg.connect(self.admin_dsn(), connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return True

    def wait_accepting(self, timeout: float = 30.0) -> None:
        """Block until the cluster answers a query (after a start or restart)."""
        wait_for_sync(self.accepting, timeout=timeout, interval=0.1, message="private cluster up")
