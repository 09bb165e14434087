"""`chirpbase`: run the worker, manage the database, operate the account.

Every operator command works by inserting or updating rows (the same path an SQL user takes), so
the database's triggers and functions decide what is allowed; refusals are printed as one line.

Exit codes (scripts can rely on them): 0 ok; 1 failed (not found, database error); 2 invalid input
refused (bad TIME, too-long text, a move the database does not allow, invalid config value);
3 configuration missing or invalid (DATABASE_URL unset, `config validate` found bad rows);
4 database unreachable.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.logs import redact

if TYPE_CHECKING:
    from worker.operator import Operator

app = typer.Typer(
    name="chirpbase",
    help="An autonomous X account runner with Postgres (Supabase) as its control plane.",
    epilog="Exit codes: 0 ok · 1 failed or not found · 2 invalid input refused · "
    "3 configuration missing or invalid · 4 database unreachable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
jobs_app = typer.Typer(help="Inspect and steer the job queue.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
config_app = typer.Typer(
    help="Read, change and check the `configs` rows (persona, schedule, generation, engagement, "
    "quotas, alerts).",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")

console = Console()
err = Console(stderr=True)

# Exit codes scripts can rely on.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_UNAVAILABLE = 4


def load_settings():  # type: ignore[no-untyped-def]
    """Settings from env/.env, or exit 3 with the names (never the values) that are wrong."""
    from worker.settings import Settings

    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        err.print(
            "[bold red]configuration error[/]: fix these environment variables (see .env.example):"
        )
        for e in exc.errors():
            name = ".".join(str(p) for p in e["loc"]).upper()
            msg = "missing" if e["type"] == "missing" else e["msg"]
            err.print(f"  {name}: {msg}")
        raise typer.Exit(EXIT_CONFIG) from None


def database_url(url: str | None) -> str:
    import os

    if url:
        return url
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    from worker.settings import Settings

    try:
        return Settings().database_url.get_secret_value()  # type: ignore[call-arg]
    except ValidationError:
        err.print("[bold red]DATABASE_URL is not set[/] (env, .env or --database-url)")
        raise typer.Exit(EXIT_CONFIG) from None


@app.command()
def worker(
    kinds: str = typer.Option(None, help="Comma-separated job kinds to run (default: all)."),
) -> None:
    """Run the worker until SIGTERM/SIGINT (the container's command)."""
    from worker.logs import setup_logging
    from worker.runtime.worker import StartupError, Worker

    settings = load_settings()
    setup_logging(
        settings.log_level,
        secrets=settings.secret_values(),
        extra={"environment": settings.environment},
    )
    try:
        w = Worker(settings, kinds=kinds.split(",") if kinds else None)
        asyncio.run(w.run())
    except StartupError as exc:
        err.print(f"[bold red]cannot start[/]: {redact(str(exc))}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None


@db_app.command("migrate")
def db_migrate(
    database_url_opt: str = typer.Option(None, "--database-url", help="Overrides DATABASE_URL."),
) -> None:
    """Apply pending supabase/migrations (records them as `supabase db push` does)."""
    import psycopg

    from worker.migrate import migrate

    try:
        applied = migrate(database_url(database_url_opt))
    except psycopg.OperationalError as exc:
        err.print(f"[bold red]cannot connect[/]: {redact(str(exc)).strip()}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except psycopg.Error as exc:
        err.print(f"[bold red]migration failed[/]: {redact(str(exc)).strip()}")
        raise typer.Exit(EXIT_FAILURE) from None
    if applied:
        console.print(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        console.print("database is up to date")


@db_app.command("status")
def db_status(
    database_url_opt: str = typer.Option(None, "--database-url", help="Overrides DATABASE_URL."),
) -> None:
    """List migrations and whether each is applied (exit 1 when any is pending)."""
    import psycopg

    from worker.migrate import applied_versions, discover

    try:
        with psycopg.connect(database_url(database_url_opt)) as conn:
            done = applied_versions(conn)
    except psycopg.OperationalError as exc:
        err.print(f"[bold red]cannot connect[/]: {redact(str(exc)).strip()}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    pending = 0
    for m in discover():
        state = "applied" if m.version in done else "pending"
        pending += state == "pending"
        console.print(f"{m.version}  {m.name:<40} {state}")
    if pending:
        raise typer.Exit(EXIT_FAILURE)


# ---------------------------------------------------------------------------------------------
# Operator commands
# ---------------------------------------------------------------------------------------------

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Postgres connection string; overrides DATABASE_URL."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TIME_HELP = (
    "When to post (UTC): now, +30m, +2h, +1d, HH:MM, today HH:MM, tomorrow 09:00, or ISO 8601 "
    "like 2026-12-01T09:00 (an offset such as +01:00 is honoured). Default: now."
)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    dead = "dead"
    cancelled = "cancelled"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped (never through rich, which would wrap long lines)."""
    typer.echo(json.dumps(value, indent=2, default=_json_default))


def fail(message: str, code: int) -> NoReturn:
    # soft_wrap: one logical line, however narrow the terminal (scripts grep it).
    err.print(f"[bold red]error[/]: {escape(redact(message))}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def operating(url: str | None) -> Iterator[Operator]:
    """An Operator on the database, with its refusals turned into one line and an exit code."""
    from worker.operator import NotFound, Operator, OperatorError, Refused, Unavailable

    try:
        with Operator.connect(database_url(url)) as op:
            yield op
    except Refused as exc:
        fail(str(exc), EXIT_USAGE)
    except NotFound as exc:
        fail(str(exc), EXIT_FAILURE)
    except Unavailable as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except OperatorError as exc:
        fail(str(exc), EXIT_FAILURE)


def parse_time_option(at: str | None) -> datetime | None:
    from worker.operator import Refused, parse_when

    if at is None:
        return None
    try:
        return parse_when(at)
    except Refused as exc:
        fail(str(exc), EXIT_USAGE)


def _when(value: Any) -> str:
    """`2026-11-25 09:00 UTC (in 2h)` from a datetime or ISO string; '-' for None."""
    if value is None:
        return "-"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    dt = dt.astimezone(UTC)
    delta = (dt - datetime.now(UTC)).total_seconds()
    span = abs(delta)
    if span < 60:
        rel = "now"
    else:
        amount = (
            f"{span / 60:.0f}m"
            if span < 3600
            else f"{span / 3600:.0f}h"
            if span < 172_800
            else f"{span / 86400:.0f}d"
        )
        rel = f"in {amount}" if delta > 0 else f"{amount} ago"
    return f"{dt:%Y-%m-%d %H:%M} UTC ({rel})"


def _short(text: Any, limit: int = 60) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _what(row: dict[str, Any]) -> str:
    if row.get("content"):
        return _short(row["content"])
    image = " + image" if row.get("with_image") else ""
    return f"(generate{image}) {_short(row.get('topic'), 48)}"


# -- scheduling -------------------------------------------------------------------------------


@app.command()
def schedule(
    text: Annotated[str, typer.Argument(help="The exact text to post (X's 280 weighted chars).")],
    at: Annotated[str | None, typer.Option("--at", help=TIME_HELP)] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Schedule a written tweet: inserts a scheduled_tweets row (the job follows by trigger)."""
    when = parse_time_option(at)
    with operating(database_url_opt) as op:
        row = op.schedule(text, when)
    if json_out:
        print_json(row)
        return
    console.print(
        f"scheduled tweet [bold]{row['id']}[/] for {_when(row['scheduled_for'])} "
        f"(job {row['job_id']}, post_tweet)"
    )


@app.command()
def generate(
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="What to write about (default: one of the persona's topics)."),
    ] = None,
    image: Annotated[
        bool | None,
        typer.Option(
            "--image/--no-image",
            help="Generate an image with the tweet (default: the generation config's `image`).",
            show_default=False,
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=TIME_HELP)] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Schedule a generated tweet: the worker writes it (and an image) and posts it at TIME."""
    when = parse_time_option(at)
    with operating(database_url_opt) as op:
        row = op.generate(topic, image, when)
    if json_out:
        print_json(row)
        return
    image_note = " with an image" if row["with_image"] else ""
    console.print(
        f"scheduled generated tweet [bold]{row['id']}[/] about {escape(repr(row['topic']))}"
        f"{image_note} for {_when(row['scheduled_for'])} (job {row['job_id']}, generate_tweet)"
    )


def _move_command(tweet_id: int, action: str, url: str | None) -> dict[str, Any]:
    with operating(url) as op:
        fn = {"approve": op.approve, "reject": op.reject, "cancel": op.cancel}[action]
        return fn(tweet_id)


IdArg = Annotated[int, typer.Argument(help="The scheduled_tweets id.", min=1)]


@app.command()
def approve(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Approve a generated tweet awaiting approval; it is posted at its scheduled time."""
    row = _move_command(tweet_id, "approve", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already approved")
        return
    console.print(
        f"approved tweet [bold]{row['id']}[/]: posting at {_when(row['scheduled_for'])} "
        f"(job {row['job_id']})"
    )


@app.command()
def reject(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Reject a generated tweet awaiting approval; it will never be posted."""
    row = _move_command(tweet_id, "reject", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already rejected")
        return
    console.print(f"rejected tweet [bold]{row['id']}[/]: it will not be posted")


@app.command()
def cancel(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Cancel a scheduled tweet that has not started posting (its queued job is cancelled too)."""
    row = _move_command(tweet_id, "cancel", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already cancelled")
        return
    console.print(f"cancelled tweet [bold]{row['id']}[/]")


# -- doctor -----------------------------------------------------------------------------------


@app.command()
def doctor(
    json_out: JsonFlag = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, max=120, help="Seconds each check may take."),
    ] = 10.0,
) -> None:
    """Check env, database, migrations, pg_cron, Realtime, Storage, X and OpenAI; print fixes.

    One line per check (✓ or ✗) with the fix under each failure. Exit 0 when every check passes,
    1 otherwise. Reads the same environment and .env as the worker.
    """
    from worker.doctor import run_doctor

    report = asyncio.run(run_doctor(limit=timeout))
    if json_out:
        print_json(report.as_json())
    else:
        width = max(len(c.title) for c in report.checks)
        for c in report.checks:
            mark = {"ok": "[green]✓[/]", "fail": "[bold red]✗[/]", "skip": "[yellow]–[/]"}[c.status]
            console.print(f"{mark} {c.title:<{width}}  {escape(redact(c.detail))}", soft_wrap=True)
            if not c.ok and c.fix:
                console.print(f"  {'':<{width}}  [dim]fix:[/] {escape(c.fix)}", soft_wrap=True)
        passed = sum(c.ok for c in report.checks)
        verdict = "[green]all good[/]" if report.ok else "[bold red]needs attention[/]"
        console.print(f"{passed}/{len(report.checks)} checks passed: {verdict}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


# -- status -----------------------------------------------------------------------------------


@app.command()
def status(
    json_out: JsonFlag = False,
    health_url: Annotated[
        str | None,
        typer.Option(
            "--health-url",
            envvar="CHIRPBASE_HEALTH_URL",
            help="A worker's health endpoint, e.g. http://localhost:8080/health "
            "(env CHIRPBASE_HEALTH_URL). Skipped when unset; shown as unreachable when down.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="Rows of upcoming and recent posts.")
    ] = 5,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Queue, upcoming and recent posts, quota and budget, open alerts, worker health."""
    from worker.operator import fetch_health

    with operating(database_url_opt) as op:
        snap = op.status_snapshot(limit=limit)
    snap["worker"] = fetch_health(health_url) if health_url else None
    if json_out:
        print_json(snap)
        return
    _render_status(snap)


def _render_status(snap: dict[str, Any]) -> None:
    from rich.progress_bar import ProgressBar

    # Queue by kind and status
    statuses = [s.value for s in JobStatus]
    queue = Table(title="Queue", title_justify="left", expand=False)
    queue.add_column("kind")
    for st in statuses:
        queue.add_column(st, justify="right")
    queue.add_column("max lag", justify="right")
    for kind, counts in sorted(snap["queue"].items()):
        lag = snap["queue_max_lag_s"].get(kind)
        cells = [
            Text(str(counts.get(st, "")), style="bold red" if st == "dead" else "")
            for st in statuses
        ]
        queue.add_row(kind, *cells, "-" if lag is None else f"{lag:.0f}s")
    if not snap["queue"]:
        queue.add_row("(empty)", *[""] * (len(statuses) + 1))
    console.print(queue)

    upcoming = Table(title="Upcoming posts", title_justify="left")
    for col in ("id", "status", "when", "what"):
        upcoming.add_column(col)
    for r in snap["upcoming"]:
        upcoming.add_row(str(r["id"]), r["status"], _when(r["scheduled_for"]), Text(_what(r)))
    if not snap["upcoming"]:
        upcoming.add_row("", "", "", "nothing scheduled")
    console.print(upcoming)

    recent = Table(title="Recent posts", title_justify="left")
    for col, just in (
        ("posted", "left"),
        ("tweet", "left"),
        ("likes", "right"),
        ("RTs", "right"),
        ("replies", "right"),
        ("impr.", "right"),
    ):
        recent.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in snap["recent"]:
        recent.add_row(
            _when(r["posted_at"]),
            Text(_short(r["content"], 50)),
            *(
                ("-" if r[k] is None else str(r[k]))
                for k in ("likes", "retweets", "replies", "impressions")
            ),
        )
    if not snap["recent"]:
        recent.add_row("", "nothing posted yet", "", "", "", "")
    console.print(recent)

    quota = Table(title="Quota and budget (this month)", title_justify="left")
    quota.add_column("resource")
    quota.add_column("use", width=30)
    quota.add_column("used", justify="right")
    quota.add_column("cap", justify="right")
    for q in snap["quota"]:
        cap, used, pct = q["cap"], q["used"], q["percent"]
        money = q["resource"] == "openai_usd"
        fmt = (lambda v: f"${v:,.2f}") if money else (lambda v: f"{v:,.0f}")
        if cap:
            style = "red" if pct >= 100 else "yellow" if pct >= 100 * q["alert_threshold"] else ""
            bar: Any = ProgressBar(
                total=cap, completed=min(used, cap), width=30, complete_style=style or "green"
            )
            cap_text = f"{fmt(cap)} ({pct:.0f}%)"
        else:
            bar, cap_text = Text("no cap", style="dim"), "-"
        quota.add_row(q["resource"], bar, fmt(used), cap_text)
    b = snap["budget"]
    projected = "-" if b["projected_usd"] is None else f"${b['projected_usd']:,.2f}"
    quota.caption = (
        f"plan {b['plan'] or '?'} · estimated spend ${b['spent_usd']:,.2f} so far "
        f"(posts: {b['posts']}, reads: {b['reads']}) · projected {projected} by month end"
    )
    console.print(quota)

    if snap["alerts"]:
        alerts = Table(title="Open alerts", title_justify="left")
        for col in ("level", "kind", "message", "seen"):
            alerts.add_column(col)
        for a in snap["alerts"]:
            colour = {"critical": "bold red", "warning": "yellow"}.get(a["level"], "")
            seen = f"{_when(a['last_seen_at'])} ×{a['occurrences']}"
            alerts.add_row(Text(a["level"], style=colour), a["kind"], Text(a["message"]), seen)
        console.print(alerts)
    else:
        console.print("[green]no open alerts[/]")

    w = snap.get("worker")
    if w is None:
        console.print("worker health: [dim]not checked (--health-url or CHIRPBASE_HEALTH_URL)[/]")
    elif not w["reachable"]:
        console.print(
            f"worker health: [yellow]unreachable[/] at {escape(w['url'])} ({escape(w['error'])})"
        )
    else:
        body = w.get("body") or {}
        state = body.get("status", "?")
        colour = {"ok": "green", "degraded": "yellow"}.get(state, "red")
        db = body.get("database", {}) or {}
        bell = body.get("doorbell", {}) or {}
        console.print(
            f"worker health: [{colour}]{escape(str(state))}[/] (HTTP {w['http_status']}) "
            f"worker {escape(str(body.get('worker_id', '?')))} · up {body.get('uptime_s', '?')}s "
            f"· database {'up' if db.get('up') else 'down'} · doorbell "
            f"{_doorbell(bell)} · running jobs {body.get('running_jobs', '?')}"
        )


def _doorbell(bell: dict[str, Any]) -> str:
    if not bell.get("enabled"):
        return "off"
    return "connected" if bell.get("connected") else "down"


# -- jobs -------------------------------------------------------------------------------------

JobIdArg = Annotated[int, typer.Argument(help="The job id (jobs.id).", min=1)]


@jobs_app.command("list")
def jobs_list(
    status_opt: Annotated[
        JobStatus | None, typer.Option("--status", help="Only jobs in this status.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only jobs of this kind (e.g. post_tweet).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most N jobs.")] = 20,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """List jobs, newest first."""
    with operating(database_url_opt) as op:
        rows = op.jobs(status_opt.value if status_opt else None, kind, limit)
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"Jobs ({len(rows)})", title_justify="left")
    for col in ("id", "kind", "status", "attempts", "run at", "last error"):
        table.add_column(col, justify="right" if col in ("id", "attempts") else "left")
    for r in rows:
        colour = {"dead": "bold red", "failed": "red", "running": "cyan", "succeeded": "green"}
        table.add_row(
            str(r["id"]),
            r["kind"],
            Text(r["status"], style=colour.get(r["status"], "")),
            f"{r['attempts']}/{r['max_attempts']}",
            _when(r["run_at"]),
            Text(_short(r["last_error"], 50)),
        )
    console.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: JobIdArg, json_out: JsonFlag = False, database_url_opt: DatabaseUrl = None
) -> None:
    """Everything about one job: status, attempts, lease, payload, result, last error."""
    with operating(database_url_opt) as op:
        row = op.job(job_id)
    if json_out:
        print_json(row)
        return
    table = Table(show_header=False, title=f"Job {job_id}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in row.items():
        if key in ("payload", "result"):
            shown = json.dumps(value, indent=2, default=_json_default)
        elif isinstance(value, datetime):
            shown = _when(value)
        else:
            shown = "-" if value is None else str(value)
        table.add_row(key, Text(shown))
    console.print(table)


@jobs_app.command("retry")
def jobs_retry(job_id: JobIdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Retry a dead, failed or cancelled job now, with a fresh set of attempts."""
    with operating(database_url_opt) as op:
        row = op.retry_job(job_id)
    console.print(f"job [bold]{row['id']}[/] ({row['kind']}) queued again to run now")


@jobs_app.command("cancel")
def jobs_cancel(job_id: JobIdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Cancel a queued job (a running job finishes; its handler re-checks its source row)."""
    with operating(database_url_opt) as op:
        row = op.cancel_job(job_id)
    console.print(f"job [bold]{row['id']}[/] ({row['kind']}) cancelled")


# -- config -----------------------------------------------------------------------------------

KEY_HELP = "persona, schedule, generation, engagement, quotas or alerts."


@config_app.command("get")
def config_get(
    key: Annotated[
        str | None, typer.Argument(help=f"One key ({KEY_HELP}); all when omitted.")
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Show config rows. With --json: the value for KEY, or {key: value} for all."""
    with operating(database_url_opt) as op:
        rows = op.configs(key)
    if json_out:
        print_json(rows[0]["value"] if key else {r["key"]: r["value"] for r in rows})
        return
    from rich.syntax import Syntax

    for r in rows:
        console.print(f"[bold]{r['key']}[/] [dim](updated {_when(r['updated_at'])})[/]")
        console.print(Syntax(json.dumps(r["value"], indent=2), "json", background_color="default"))


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help=f"The key: {KEY_HELP}")],
    value: Annotated[
        str, typer.Argument(help='The value as a JSON object, e.g. \'{"plan": "basic"}\'.')
    ],
    merge: Annotated[
        bool,
        typer.Option("--merge", help="Merge into the stored value instead of replacing it."),
    ] = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Validate a value with the key's model, then write it (the change applies live)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        fail(
            f"VALUE is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            EXIT_USAGE,
        )
    with operating(database_url_opt) as op:
        row = op.set_config(key, parsed, merge=merge)
    console.print(f"config [bold]{row['key']}[/] updated")
    console.print_json(json.dumps(row["value"]))


@config_app.command("validate")
def config_validate(json_out: JsonFlag = False, database_url_opt: DatabaseUrl = None) -> None:
    """Check every config row against its model; exit 3 when any is invalid."""
    with operating(database_url_opt) as op:
        checks = op.validate_configs()
    bad = [c for c in checks if not c.ok]
    if json_out:
        print_json([{"key": c.key, "ok": c.ok, "message": c.message} for c in checks])
    else:
        for c in checks:
            mark = "[green]ok[/]     " if c.ok else "[bold red]invalid[/]"
            console.print(f"{mark} {c.key}: {escape(c.message)}")
    if bad:
        raise typer.Exit(EXIT_CONFIG)


# -- report -----------------------------------------------------------------------------------


@app.command()
def report(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="Window start: 30d, 12h, 8w, an ISO date (2026-11-01), or 'all'.",
        ),
    ] = "30d",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for report.html, the PNG charts and the CSVs "
            "(default: reports/report-<UTC time>).",
            file_okay=False,
        ),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Engagement report: per tweet, over time, best hours and weekdays, image vs no image."""
    import psycopg

    from worker.report import ReportError, build_report, parse_since

    try:
        start = parse_since(since)
    except ReportError as exc:
        fail(str(exc), EXIT_USAGE)
    url = database_url(database_url_opt)
    try:
        result = build_report(url, since=start, out_dir=out)
    except ReportError as exc:
        fail(str(exc), EXIT_FAILURE)
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to the database: {str(exc).strip()}", EXIT_UNAVAILABLE)
    except psycopg.Error as exc:
        fail(f"database error: {str(exc).strip()}", EXIT_FAILURE)
    if json_out:
        print_json(
            {
                "empty": result.empty,
                "out_dir": str(result.out_dir),
                "files": {k: str(v) for k, v in result.files.items()},
                "summary": result.summary,
            }
        )
        return
    s = result.summary
    if result.empty:
        console.print(
            "nothing to report yet: no tweets posted or stats collected since "
            f"{s['since'][:16].replace('T', ' ')} UTC; wrote a minimal report"
        )
    else:
        rate = "-" if s["engagement_rate"] is None else f"{s['engagement_rate'] * 100:.2f}%"
        best = []
        if s["best_hour"] is not None:
            best.append(f"best hour {s['best_hour']:02d}:00 UTC")
        if s["best_weekday"]:
            best.append(f"best day {s['best_weekday']}")
        if s["image_lift"] is not None:
            best.append(f"images ×{s['image_lift']:.2f}")
        console.print(
            f"[bold]{s['tweets']} tweets[/] · {s['engagements']:,} engagements · "
            f"{s['impressions']:,} impressions · rate {rate}"
            + (f" · {' · '.join(best)}" if best else "")
        )
    for name, path in result.files.items():
        console.print(f"  {name:<26} {escape(str(path))}", soft_wrap=True)
    console.print(
        f"report: [bold]{escape(str(result.files['html']))}[/] ({result.seconds:.1f}s)",
        soft_wrap=True,
    )


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
