"""Every command and option explains itself."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from worker.ops.cli import app


def walk(command: object, path: str = "chirpbase") -> list[tuple[str, object]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += walk(sub, f"{path} {name}")
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in walk(typer.main.get_command(app)):
        if not (getattr(command, "help", None) or getattr(command, "short_help", None)):
            missing.append(path)
        for param in getattr(command, "params", []):
            if param.param_type_name == "option" and param.name != "help" and not param.help:
                missing.append(f"{path} {param.opts[0]}")
            if param.param_type_name == "argument" and not getattr(param, "help", None):
                missing.append(f"{path} <{param.name}>")
    assert missing == []


def test_help_runs_for_each_command() -> None:
    runner = CliRunner()
    for path, _command in walk(typer.main.get_command(app)):
        args = path.split()[1:]
        result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "160"})
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
