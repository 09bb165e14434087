"""`chirpbase jobs list|show|retry|cancel`: inspect and steer the queue."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    pass
from worker.ops.cli.app import (
    DatabaseUrl,
    JobStatus,
    JsonFlag,
    console,
    format_when,
    jobs_app,
    json_default,
    operating,
    print_json,
    shorten,
)

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
            format_when(r["run_at"]),
            Text(shorten(r["last_error"], 50)),
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
            shown = json.dumps(value, indent=2, default=json_default)
        elif isinstance(value, datetime):
            shown = format_when(value)
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
