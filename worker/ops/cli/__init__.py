"""`chirpbase`: run the worker, manage the database, operate the account.

Every operator command works by inserting or updating rows (the same path an SQL user takes), so
the database's triggers and functions decide what is allowed; refusals are printed as one line.

Exit codes (scripts can rely on them): 0 ok; 1 failed (not found, database error); 2 invalid input
refused (bad TIME, too-long text, a move the database does not allow, invalid config value);
3 configuration missing or invalid (DATABASE_URL unset, `config validate` found bad rows);
4 database unreachable.
"""

from __future__ import annotations

import sys

# Importing the command modules registers their commands on `app`, in the order `--help` lists.
# isort: off
from worker.ops.cli import run, posting, replies, status, jobs, config, report, webhook, console_cmd  # noqa: F401

# isort: on
from worker.ops.cli.app import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    app,
)

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "app",
    "main",
]


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
