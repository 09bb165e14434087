"""CLI tests: typer's runner against a fresh migrated database per test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from worker.ops.cli import app


@dataclass
class Run:
    """One CLI invocation's outcome."""

    result: Result

    @property
    def code(self) -> int:
        return self.result.exit_code

    @property
    def out(self) -> str:
        return self.result.stdout

    @property
    def err(self) -> str:
        return self.result.stderr

    def json(self) -> Any:
        return json.loads(self.result.stdout)

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Run(code={self.code}, out={self.out!r}, err={self.err!r})"


Cli = Callable[..., Run]


@pytest.fixture
def cli(dsn: str) -> Cli:
    """`cli("schedule", "hi")` runs `chirpbase schedule hi --database-url <test db>`."""
    runner = CliRunner()

    def invoke(*args: str, database: bool = True, env: dict[str, str] | None = None) -> Run:
        argv = [*args, "--database-url", dsn] if database else list(args)
        result = runner.invoke(app, argv, env={"COLUMNS": "160", **(env or {})})
        # A refusal is a message, never a traceback.
        assert "Traceback" not in result.output, result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result)

    return invoke
