"""End-to-end fixtures: the sandbox stack (X, OpenAI, Realtime, Storage) on a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandbox.stack import SandboxStack


@pytest.fixture
async def stack(admin_dsn: str) -> AsyncIterator[SandboxStack]:
    async with SandboxStack(admin_dsn) as s:
        yield s
