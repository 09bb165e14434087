"""No secret ever leaves the process: not in logs, alerts, errors, /health, /metrics, the alert
webhook, the CLI, the report or the operator console's pages.

A real worker process (LOG_LEVEL=DEBUG) runs against the whole sandbox and does everything that
could carry a credential into text: posts (exact and generated), likes, polls mentions, collects
stats, then fails in every interesting way: the X stand-in rotates its secrets (OAuth and bearer
calls answer 401), the OpenAI stand-in stops accepting the key (401), a config is rejected, jobs
die (given up, invalid payload). Alerts go to a webhook the test captures. Meanwhile the CLI runs
`status --json`, `doctor --json`, `report` and a status against an unreachable database, and a
report folder is generated, and an operator logs in to the console (after a wrong password) and
opens every page. Then every byte captured (process output, HTTP bodies, CLI output,
report files, every row of every public table) is searched for every secret: each CREDENTIALS
value, the database password (a unique one here: the local cluster trusts any password), the
DATABASE_URL, the service-role key and its signature, the console's password, its hash and the
session secret, also URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import http.cookiejar
import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest

from sandbox.keys import SERVICE_ROLE_KEY
from sandbox.stack import CREDENTIALS, SandboxStack, ThreadedSandbox
from tests import pg
from tests.processes import ROOT, WorkerProcess
from tests.waiting import wait_for_sync
from tests.xaccess import use_enterprise
from worker.console.auth import hash_password

pytestmark = pytest.mark.timeout(180)


class Webhook:
    """A local HTTP endpoint standing in for Slack: records every body posted to it."""

    def __init__(self) -> None:
        bodies: list[bytes] = []
        self.bodies = bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                bodies.append(bytes(self.headers) + self.rfile.read(length))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sandbox(admin_dsn: str) -> Iterator[ThreadedSandbox]:
    """The stand-ins on their own thread (this test blocks while the worker process runs)."""
    threaded = ThreadedSandbox(admin_dsn)
    with threaded:
        yield threaded


CONSOLE_PASSWORD = "console-" + secrets.token_urlsafe(12)
CONSOLE_HASH = hash_password(CONSOLE_PASSWORD)
CONSOLE_SECRET = "session-" + secrets.token_urlsafe(32)
CONSOLE_PAGES = ("inbox", "inbox/items", "calendar", "calendar?view=day", "activity", "money",
                 "alerts", "charts")  # fmt: skip


def _secret_forms(database_url: str, password: str) -> dict[str, str]:
    values = {**CREDENTIALS, "database password": password, "database_url": database_url,
              "service-role key": SERVICE_ROLE_KEY,
              "service-role key signature": SERVICE_ROLE_KEY.rsplit(".", 1)[1],
              "console password": CONSOLE_PASSWORD, "console password hash": CONSOLE_HASH,
              "console password hash digest": CONSOLE_HASH.rsplit("$", 1)[1],
              "console session secret": CONSOLE_SECRET}  # fmt: skip
    forms: dict[str, str] = {}
    for name, value in values.items():
        forms[name] = value
        forms[f"{name} (url-encoded)"] = quote(value, safe="")
        forms[f"{name} (base64)"] = base64.b64encode(value.encode()).decode().rstrip("=")
    consumer = f"{quote(CREDENTIALS['x_api_key'])}:{quote(CREDENTIALS['x_api_secret'])}"
    forms["x consumer basic auth"] = base64.b64encode(consumer.encode()).decode()
    return forms


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (http://127.0.0.1 only)
            return str(r.read().decode())
    except urllib.error.HTTPError as e:
        return str(e.read().decode())


def _console_pages(base: str) -> dict[str, str]:
    """A wrong password, then a login, then every console page (as the operator sees them)."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    pages: dict[str, str] = {}

    def login(password: str) -> str:
        form = browser.open(f"{base}/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None, form
        body = urlencode({"password": password, "csrf_token": token[1]}).encode()
        try:
            return str(browser.open(f"{base}/login", data=body, timeout=30).read().decode())
        except urllib.error.HTTPError as e:
            return str(e.read().decode())

    pages["console wrong password"] = login("not-the-password")
    pages["console after login"] = login(CONSOLE_PASSWORD)
    assert "Inbox" in pages["console after login"], pages["console after login"][:300]
    for path in CONSOLE_PAGES:
        with browser.open(f"{base}/{path}", timeout=60) as r:
            pages[f"console /{path}"] = r.read().decode()
    return pages


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # (not the command line itself: it may hold a secret on purpose)
    return f"(exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}"


def _every_row(conn: psycopg.Connection) -> str:
    tables = conn.execute(
        "select quote_ident(n.nspname) || '.' || quote_ident(c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('public', 'storage') and c.relkind = 'r'"
    ).fetchall()
    parts = []
    for (table,) in tables:
        rows = conn.execute(f"select t::text from {table} t").fetchall()
        parts.append(f"-- {table}\n" + "\n".join(r[0] for r in rows))
    return "\n".join(parts)


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_no_secret_reaches_any_output(
    sandbox: ThreadedSandbox, conn: psycopg.Connection, db_name: str, tmp_path: Path
) -> None:
    stack: SandboxStack = sandbox.stack
    password = "pg-" + secrets.token_urlsafe(18)
    database_url = f"postgresql://postgres:{password}@{pg.HOST}:{pg.PORT}/{db_name}"
    forms = _secret_forms(database_url, password)
    captured: dict[str, str] = {}

    # The like path too: likes exist only on Enterprise access.
    sandbox.call(lambda: use_enterprise(stack.x, conn))
    with Webhook() as hook:
        conn.execute(
            "update public.configs set value = value || %s where key = 'alerts'",
            (json.dumps({"webhook_url": hook.url, "min_interval_seconds": 0}),),
        )
        env = {**stack.env(database_url), "DOORBELL_ENABLED": "true", "POLL_INTERVAL_S": "1",
               "LOG_LEVEL": "DEBUG", "HEALTH_GRACE_S": "5", "CONSOLE_PASSWORD_HASH": CONSOLE_HASH,
               "CONSOLE_SESSION_SECRET": CONSOLE_SECRET,
               "CONSOLE_COOKIE_SECURE": "false"}  # fmt: skip
        worker = WorkerProcess(env, name="secret-keeper").start()
        cli_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("X_", "OPENAI_"))},
            **env,
        }
        try:
            worker.wait_ready()
            health = f"http://127.0.0.1:{worker.port}"

            # The happy paths: every client is used with the right credentials.
            conn.execute("insert into public.scheduled_tweets (content) values ('shipping it')")
            conn.execute("insert into public.scheduled_tweets (topic) values ('postgres locks')")
            fan = sandbox.call(lambda: stack.x.add_user("fan_account"))
            sandbox.call(lambda: stack.x.add_mention(fan.id, "love this"))
            conn.execute("select public.enqueue_job('poll_mentions', '{}')")  # ingests, then likes
            conn.execute("select public.enqueue_job('collect_stats', '{}')")
            wait_for_sync(
                lambda: (
                    _count(conn, "select count(*) from public.tweets") == 2
                    and _count(conn, "select count(*) from public.replies where liked") == 1
                ),
                timeout=40,
                message="two tweets posted and the reply liked",
            )
            wait_for_sync(
                lambda: _count(conn, "select count(*) from public.jobs where status = 'succeeded'"
                               " and kind in ('poll_mentions', 'collect_stats')") == 2,
                timeout=20,
            )  # fmt: skip

            # The failure paths: every refusal becomes an error message somewhere. First the
            # database drops the worker's connections (reconnects, errors in flight) ...
            with psycopg.connect(pg.admin_dsn(db_name), autocommit=True) as admin:
                killed = admin.execute(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                    " where application_name like 'chirpbase-worker%%'"
                ).fetchone()
            assert killed is not None and killed[0] >= 1

            # ... then X and OpenAI stop accepting the credentials.
            def rotate() -> None:
                stack.x.consumer_secret = "rotated-consumer-secret"
                stack.x.access_token_secret = "rotated-access-secret"
                stack.x.bearer_token = "rotated-bearer"
                stack.openai.api_keys = {"sk-someone-elses-key"}

            sandbox.call(rotate)
            conn.execute("insert into public.scheduled_tweets (content) values ('refused by X')")
            conn.execute("insert into public.scheduled_tweets (topic) values ('refused by OpenAI')")
            conn.execute("select public.enqueue_job('poll_mentions', '{\"max_pages\": 1}')")
            conn.execute("select public.enqueue_job('noop', '{\"fail\": \"give_up\"}')")
            conn.execute("select public.enqueue_job('noop', '{\"token\": \"nope\"}')")
            conn.execute(
                'update public.configs set value = value || \'{"language": ""}\''
                " where key = 'persona'"
            )
            wanted = {"x_auth", "openai_auth", "config_rejected", "job_dead"}
            wait_for_sync(
                lambda: (
                    wanted
                    <= {r[0] for r in conn.execute("select kind from public.alerts").fetchall()}
                ),
                timeout=40,
                message=f"alerts {wanted}",
            )
            wait_for_sync(lambda: len(hook.bodies) >= 1, timeout=30, message="a webhook message")

            captured["/health"] = _get(f"{health}/health")
            captured["/metrics"] = _get(f"{health}/metrics")
            captured["status --json"] = _cli(
                cli_env, "status", "--json", "--health-url", f"{health}/health"
            )
            captured["doctor --json"] = _cli(cli_env, "doctor", "--json", "--timeout", "5")
            bad_url = f"postgresql://postgres:{password}@{pg.HOST}:1/{db_name}"
            captured["status, database down"] = _cli(cli_env, "status", "--database-url", bad_url)
            captured["jobs list"] = _cli(cli_env, "jobs", "list", "--json")
            out = tmp_path / "report"
            captured["report"] = _cli(cli_env, "report", "--since", "all", "--out", str(out))
            captured.update(_console_pages(f"{health}/console"))
        finally:
            worker.stop()
        captured["worker output"] = worker.output()
        captured["webhook"] = b"\n".join(hook.bodies).decode(errors="replace")

    report_files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {p.suffix for p in report_files} >= {".html", ".csv", ".json", ".png"}, report_files
    for path in report_files:
        captured[f"report file {path.name}"] = path.read_bytes().decode("latin-1")
    captured["database rows"] = _every_row(conn)

    # The scenario really happened (or the search below would prove nothing).
    log = captured["worker output"]
    assert "posted tweet" in log and '"level"' in log
    assert "X rejected the credentials" in captured["database rows"]
    assert "OpenAI rejected the key" in captured["database rows"]
    assert "invalid noop payload" in captured["database rows"]
    assert "configs.persona rejected" in captured["database rows"]
    assert '"status":' in captured["/health"] and "chirpbase_" in captured["/metrics"]
    assert '"queue"' in captured["status --json"] and "(exit 0)" in captured["status --json"]
    assert "error" in captured["status, database down"]
    assert "(exit 0)" in captured["report"]
    assert "Wrong password" in captured["console wrong password"]
    assert "X rejected the credentials" in captured["console /alerts"]
    assert "shipping it" in captured["console /activity"]

    leaks = [
        f"{form!r} in {where}: ...{_context(text, value)}..."
        for where, text in captured.items()
        for form, value in forms.items()
        if value in text
    ]
    assert leaks == [], "\n".join(leaks)


def _context(text: str, secret: str, width: int = 160) -> str:
    """Where a secret shows up, with the secret itself masked (the failure message is output too)."""
    at = text.index(secret)
    return (
        text[max(0, at - width) : at] + "<SECRET>" + text[at + len(secret) : at + len(secret) + 40]
    )
