"""`chirpbase console hash-password`: the value for CONSOLE_PASSWORD_HASH."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from worker.ops.cli.app import EXIT_USAGE, app, fail

console_app = typer.Typer(
    help="The operator console (served by `chirpbase worker` when CONSOLE_PASSWORD_HASH is set).",
    no_args_is_help=True,
)
app.add_typer(console_app, name="console")


@console_app.command("hash-password")
def hash_password(
    stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the password from the first line of standard input."),
    ] = False,
) -> None:
    """Print an argon2id hash of a password, for CONSOLE_PASSWORD_HASH (the password itself is
    never printed or stored)."""
    from worker.console.auth import hash_password as make_hash

    if stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Console password", hide_input=True, confirmation_prompt=True)
    try:
        typer.echo(make_hash(password))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
