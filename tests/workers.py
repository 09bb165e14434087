"""Run a Worker in-process for the length of a `with` block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from worker.runtime.worker import Worker


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Start `worker`, wait until it is ready, and stop it gracefully afterwards."""
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 10)
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)
