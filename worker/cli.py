"""`chirpbase`: run the worker, manage the database, operate the account."""

from __future__ import annotations

import asyncio
import sys

import typer
from pydantic import ValidationError
from rich.console import Console

from worker.logs import redact

app = typer.Typer(
    name="chirpbase",
    help="An autonomous X account runner with Postgres (Supabase) as its control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
