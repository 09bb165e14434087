"""`python -m worker` is the `chirpbase` CLI."""

from worker.ops.cli import app

app(prog_name="chirpbase")
