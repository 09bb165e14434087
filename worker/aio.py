"""Small asyncio helpers the long-running loops share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; True when it was set.

    Built on `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can turn a
    cancellation that lands as its timeout fires into TimeoutError, and a loop that treats
    TimeoutError as "time to look again" then never stops (seen as a worker hanging in shutdown).

    A loop also never outlives a cancellation that something else swallowed during its
    iteration (a library that catches CancelledError while a query or a request is cut short):
    the task still counts the request (`Task.cancelling()`), and the next wait raises it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """`awaitable`, or TimeoutError after `seconds` (a cancellation always stays a cancellation)."""
    async with asyncio.timeout(seconds):
        return await awaitable
