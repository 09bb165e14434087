"""What the OpenAI handlers share: the budget held around each call and settled with its real
cost, the estimate a reservation is made of, and the outcome when every draft failed a check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from worker.clients.ai import AIError, Usage
from worker.content.generation import Rejection
from worker.jobs.context import JobContext

# Reservation sizes for calls whose real cost is only known afterwards.
EXPECTED_OUTPUT_TOKENS = 600
SCHEMA_PROMPT_TOKENS = 250
CHARS_PER_TOKEN = 3
# An account out of OpenAI credit waits for a person; look again this often.
CREDIT_RECHECK = timedelta(minutes=10)


class BudgetReached(Exception):
    """The monthly OpenAI budget cannot cover the next call."""


class ChecksExhausted(Exception):
    """Every draft allowed failed a check; `last` is the final rejection."""

    def __init__(self, attempts: int, last: Rejection):
        super().__init__(
            f"no usable text after {attempts} draft(s); the last one failed the "
            f"{last.check.replace('_', ' ')} check: {last.reason}"
        )
        self.last = last


@dataclass
class Bill:
    usage: Usage | None = None


class OpenAISpend:
    """One job's OpenAI spend: reservations against the monthly budget, settled per call."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.total_usd = 0.0

    async def reserve(self, amount: float) -> float:
        """Take `amount` (USD) from the budget, or raise BudgetReached (SQL raised the alert)."""
        if amount <= 0:
            return 0.0
        ok = await self.ctx.services.db.fetchval("reserve_openai_usd", {"amount": amount})
        if not ok:
            raise BudgetReached(
                "the monthly OpenAI budget (configs.quotas.openai_monthly_budget_usd) or the "
                "overall budget (configs.quotas.monthly_budget_usd) is reached; the work "
                "waits for the next billing cycle or a higher budget"
            )
        return amount

    async def release(self, reserved: float) -> None:
        if reserved > 0:
            await self._settle(reserved, 0.0)

    @asynccontextmanager
    async def charge(self, endpoint: str, reserved: float) -> AsyncIterator[Bill]:
        """Around one API call: set `bill.usage` to what it consumed. A billed failure
        (refusal, invalid output) is charged from the error; an unbilled one (429/5xx after the
        client's retries) refunds; a cancelled call keeps the reservation (it may be billed)."""
        bill = Bill()
        try:
            yield bill
        except AIError as exc:
            await self._record(endpoint, reserved, exc.usage)
            raise
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self._record(endpoint, reserved, bill.usage)
            raise
        await self._record(endpoint, reserved, bill.usage)

    async def _record(self, endpoint: str, reserved: float, usage: Usage | None) -> None:
        actual = usage.cost_usd if usage is not None else 0.0
        await self._settle(reserved, actual)
        if usage is None:
            return
        self.total_usd += actual
        await self.ctx.services.db.execute(
            "record_openai_usage",
            {
                "endpoint": endpoint,
                "operation": usage.operation,
                "calls": usage.attempts,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "images": usage.images,
                "cost_usd": actual,
            },
        )

    async def _settle(self, reserved: float, actual: float) -> None:
        if reserved != actual:
            await self.ctx.services.db.execute(
                "settle_openai_usd", {"reserved": reserved, "actual": actual}
            )


def text_estimate(
    ctx: JobContext,
    model: str,
    system: str,
    user: str,
    *,
    output_tokens: int = EXPECTED_OUTPUT_TOKENS,
) -> float:
    """What one structured text completion of these prompts should cost (the reservation)."""
    tokens_in = (len(system) + len(user)) // CHARS_PER_TOKEN + SCHEMA_PROMPT_TOKENS
    return ctx.services.ai.pricing.text_cost(model, tokens_in, 0, output_tokens)
