"""What an operator action that did not happen says: the CLI maps each to an exit code, the
console to an HTTP status (worker/ops/cli/app.py, worker/console/core.py)."""

from __future__ import annotations


class OperatorError(Exception):
    """An action the operator asked for did not happen; the message says why, in one line."""


class Refused(OperatorError):
    """Invalid input, or a change the database refuses (too long, not cancellable, ...)."""


class NotFound(OperatorError):
    """No row with that id or key."""


class Unavailable(OperatorError):
    """The database cannot be reached."""
