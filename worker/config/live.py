"""The live view of `configs`: validated documents, the last good value kept on a bad write.

The doorbell delivers `configs` changes; `reload()` re-reads the table (the table is the truth,
an event is only a hint). A value that fails validation is rejected: the previous good value (or
the default) stays in effect, an alert is raised and the reason is logged.
"""

from __future__ import annotations

from typing import Any, TypeVar

from loguru import logger
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from worker.config.models import (
    CONFIG_MODELS,
    Alerts,
    Conversation,
    Engagement,
    Generation,
    Persona,
    PricingConfig,
    Quotas,
    Schedule,
    _Config,
)
from worker.db import Database
from worker.logs import redact

C = TypeVar("C", bound=_Config)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(value)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class LiveConfig:
    """Current, validated configuration documents by key."""

    def __init__(self, db: Database):
        self.db = db
        self._values: dict[str, _Config] = {k: m() for k, m in CONFIG_MODELS.items()}
        self._raw: dict[str, Any] = {}
        self.version = 0  # bumps whenever an effective value changes
        self.rejected: dict[str, str] = {}

    def get(self, model: type[C]) -> C:
        for key, cls in CONFIG_MODELS.items():
            if cls is model:
                return self._values[key]  # type: ignore[return-value]
        raise KeyError(model)

    @property
    def persona(self) -> Persona:
        return self.get(Persona)

    @property
    def schedule(self) -> Schedule:
        return self.get(Schedule)

    @property
    def generation(self) -> Generation:
        return self.get(Generation)

    @property
    def engagement(self) -> Engagement:
        return self.get(Engagement)

    @property
    def quotas(self) -> Quotas:
        return self.get(Quotas)

    @property
    def alerts(self) -> Alerts:
        return self.get(Alerts)

    @property
    def pricing(self) -> PricingConfig:
        return self.get(PricingConfig)

    @property
    def conversation(self) -> Conversation:
        return self.get(Conversation)

    async def reload(self) -> list[str]:
        """Re-read every config row; returns the keys whose effective value changed."""
        rows = await self.db.fetch("load_configs")
        changed: list[str] = []
        for row in rows:
            key, value = row["key"], row["value"]
            model = CONFIG_MODELS.get(key)
            if model is None or self._raw.get(key) == value:
                continue
            self._raw[key] = value
            try:
                parsed = model.model_validate(value)
            except ValidationError as exc:
                reason = _describe(exc)
                self.rejected[key] = reason
                logger.bind(config_key=key).error(
                    "config {} rejected, keeping the last good value: {}", key, reason
                )
                await self.db.execute(
                    "raise_alert",
                    {
                        "level": "warning",
                        "kind": "config_rejected",
                        "dedupe_key": f"config_rejected:{key}",
                        "message": redact(
                            f"configs.{key} rejected, last good value kept: {reason}"
                        ),
                        "details": Jsonb({"key": key}),
                    },
                )
                continue
            if key in self.rejected:
                del self.rejected[key]
                await self.db.execute("resolve_alert", {"dedupe_key": f"config_rejected:{key}"})
            if parsed != self._values.get(key):
                self._values[key] = parsed
                changed.append(key)
                logger.bind(config_key=key).info("config {} applied", key)
        if changed:
            self.version += 1
        return changed
