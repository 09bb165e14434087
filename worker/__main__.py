"""`python -m worker` is the `chirpbase` CLI."""

from worker.cli import app

app(prog_name="chirpbase")
