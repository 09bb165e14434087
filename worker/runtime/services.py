"""The long-lived things handlers use, created once per worker process.

Clients for the outside world are created on first use so a worker that never posts never
needs, say, an OpenAI connection.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from worker.config.live import LiveConfig
from worker.db import Database
from worker.queue import JobQueue
from worker.settings import Settings

if TYPE_CHECKING:
    from worker.clients.ai import AIClient, Pricing
    from worker.clients.storage import ImageStore
    from worker.clients.x import XClient


class Services:
    """Settings, database, queue, live config and (lazily) the API clients."""

    def __init__(self, settings: Settings, db: Database, queue: JobQueue, config: LiveConfig):
        self.settings = settings
        self.db = db
        self.queue = queue
        self.config = config
        self._write_deadline: float | None = None

    @cached_property
    def x(self) -> XClient:
        from worker.clients.x import XClient

        client = XClient.from_settings(self.settings)
        client.refuse_writes_after(self._write_deadline)
        return client

    def refuse_x_writes_after(self, deadline: float | None) -> None:
        """Shutting down: no write to X starts that could not end by ``deadline`` (monotonic)."""
        self._write_deadline = deadline
        client = self.__dict__.get("x")
        if client is not None:
            client.refuse_writes_after(deadline)

    @cached_property
    def ai(self) -> AIClient:
        from worker.clients.ai import AIClient

        return AIClient.from_settings(self.settings, pricing=self.openai_pricing())

    def openai_pricing(self) -> Pricing:
        """The OpenAI price table: the worker's defaults with configs.pricing.openai on top."""
        from worker.clients.ai import Pricing

        return Pricing().merged(self.config.pricing.openai.model_dump(exclude_none=True))

    def apply_config(self, changed: list[str]) -> None:
        """Hand changed configs to the clients already made (prices, for now)."""
        if "pricing" in changed and "ai" in self.__dict__:
            self.ai.pricing = self.openai_pricing()

    @cached_property
    def images(self) -> ImageStore:
        from worker.clients.storage import ImageStore

        return ImageStore.from_settings(self.settings)

    async def aclose(self) -> None:
        for name in ("x", "ai", "images"):
            client = self.__dict__.get(name)
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()
