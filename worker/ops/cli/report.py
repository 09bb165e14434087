"""`chirpbase report`: the engagement report (charts, HTML, CSVs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

if TYPE_CHECKING:
    pass
from worker.ops.cli.app import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DatabaseUrl,
    JsonFlag,
    app,
    console,
    database_url,
    fail,
    print_json,
)


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
