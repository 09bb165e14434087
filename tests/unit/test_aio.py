"""wait_event never swallows a cancellation, however it lines up with the timeout."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from worker.aio import wait_event, within


async def _poller(event: asyncio.Event) -> None:
    while True:  # "wait a little, then look again", as the worker's loops do
        await wait_event(event, 0.001)


async def test_a_polling_loop_always_stops_when_cancelled() -> None:
    event = asyncio.Event()
    for i in range(300):
        task = asyncio.create_task(_poller(event))
        await asyncio.sleep(0.001 * (i % 3))  # land the cancel before, at and after the timeout
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 2)


async def test_a_loop_stops_even_when_its_work_swallowed_the_cancellation() -> None:
    """Code that catches CancelledError and carries on (as some client libraries do when a
    request is cut short) cannot keep a worker loop alive: its next wait raises it."""
    event = asyncio.Event()
    started = asyncio.Event()

    async def swallowing_loop() -> None:
        while True:
            started.set()
            with contextlib.suppress(asyncio.CancelledError):  # swallowed
                await asyncio.sleep(30)  # the loop's work, cut short by the cancellation
            await wait_event(event, 30)

    task = asyncio.create_task(swallowing_loop())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert task.cancelled()


async def test_wait_event_reports_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 5) is True


async def test_within_times_out() -> None:
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(1), 0.01)
    assert await within(asyncio.sleep(0, result=7), 1) == 7
