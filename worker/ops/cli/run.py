"""`chirpbase worker` and `chirpbase db migrate|status`: run the worker, apply the schema."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from worker.logs import redact

if TYPE_CHECKING:
    pass
from worker.ops.cli.app import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    app,
    console,
    database_url,
    db_app,
    err,
    load_settings,
)


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
        if settings.console_password_hash is not None:
            from worker.console import ConsoleConfigError, console_mount

            try:
                w.mount(console_mount(settings, health=w.health))
            except ConsoleConfigError as exc:
                raise StartupError(f"the console cannot start: {exc}") from None
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
