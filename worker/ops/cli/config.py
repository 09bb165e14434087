"""`chirpbase config get|set|validate`: the `configs` rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

if TYPE_CHECKING:
    pass
from worker.ops.cli.app import (
    EXIT_CONFIG,
    EXIT_USAGE,
    DatabaseUrl,
    JsonFlag,
    config_app,
    console,
    fail,
    format_when,
    operating,
    print_json,
)

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
        console.print(f"[bold]{r['key']}[/] [dim](updated {format_when(r['updated_at'])})[/]")
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
