"""Ports the sandbox listens on: a port already taken is said plainly, with how to pick another.

A second checkout, a stand-in already running, or any other program can hold a default port
(8081 for X, 8790 for OpenAI, 54321 for the gateway, 54330 for Storage, 54329 for PostgreSQL).
Without this, aiohttp's `OSError: [Errno 98] ... address already in use` ends the process with a
traceback that names neither the stand-in nor the option that moves it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


class PortInUse(SystemExit):
    """A stand-in could not listen: exits the process with the message and status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_addr_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


def free_port_near(host: str, port: int) -> int:
    """A port close to `port` that can be bound now (a suggestion, not a reservation)."""
    for candidate in [*range(port + 1, min(port + 50, 65535)), 0]:
        with socket.socket() as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    return 0


def in_use_message(what: str, host: str, port: int, how: str) -> str:
    """The words used everywhere: which service, which port, and the option that moves it."""
    return (
        f"{what}: port {port} on {host} is already in use (another program listens there,"
        f" perhaps this stand-in started twice or another checkout's). Choose another port with"
        f" {how}, for example {how} {free_port_near(host, port)}."
    )


def guard(what: str, host: str, port: int, how: str, serve: Callable[[], T]) -> T:
    """Run `serve()`; if it cannot bind `host:port`, exit with `in_use_message` instead."""
    try:
        return serve()
    except OSError as exc:
        if not is_addr_in_use(exc):
            raise
        raise PortInUse(in_use_message(what, host, port, how)) from None


def run_app(
    app: web.Application, *, what: str, host: str, port: int, ready: str, how: str = "--port"
) -> None:
    """`aiohttp.web.run_app` for a stand-in's `python -m sandbox.*` entry point; `ready` is
    printed once the port is bound (not before, so a taken port prints only the refusal)."""

    def announce(_: str) -> None:
        print(ready, flush=True)

    guard(what, host, port, how, lambda: web.run_app(app, host=host, port=port, print=announce))
