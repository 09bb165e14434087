"""The `chirpbase` Typer app, its command groups, and what every command shares.

Exit codes, consoles, option types, time parsing, and operator refusals turned into one line and
an exit code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from worker.logs import redact, redact_value, set_secrets

if TYPE_CHECKING:
    from worker.ops.operator import Operator


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
        settings = Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        err.print(
            "[bold red]configuration error[/]: fix these environment variables (see .env.example):"
        )
        for e in exc.errors():
            name = ".".join(str(p) for p in e["loc"]).upper()
            msg = "missing" if e["type"] == "missing" else e["msg"]
            err.print(f"  {name}: {msg}")
        raise typer.Exit(EXIT_CONFIG) from None
    set_secrets(settings.secret_values())  # whatever the command prints is redacted
    return settings


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
    skipped = "skipped"


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(value: Any) -> None:
    """JSON on stdout, unwrapped (never through rich, which would wrap long lines). Every string
    in it is redacted before it is serialized (an escaped secret would slip past the text)."""
    typer.echo(redact(json.dumps(redact_value(value), indent=2, default=json_default)))


def fail(message: str, code: int) -> NoReturn:
    # soft_wrap: one logical line, however narrow the terminal (scripts grep it).
    err.print(f"[bold red]error[/]: {escape(redact(message))}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def operating(url: str | None) -> Iterator[Operator]:
    """An Operator on the database, with its refusals turned into one line and an exit code."""
    from worker.ops.operator import NotFound, Operator, OperatorError, Refused, Unavailable

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
    from worker.ops.errors import Refused
    from worker.ops.when import parse_when

    if at is None:
        return None
    try:
        return parse_when(at)
    except Refused as exc:
        fail(str(exc), EXIT_USAGE)


def format_when(value: Any) -> str:
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


def shorten(text: Any, limit: int = 60) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def describe_row(row: dict[str, Any]) -> str:
    if row.get("content"):
        return shorten(row["content"])
    image = " + image" if row.get("with_image") else ""
    return f"(generate{image}) {shorten(row.get('topic'), 48)}"
