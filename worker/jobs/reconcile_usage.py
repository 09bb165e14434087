"""`reconcile_usage`: align the local read counter with X's own (`GET /2/usage/tweets`).

The local counter is taken before every call, so it is normally ahead of X's. When X reports
more (another app in the same project, or calls counted differently) its number wins, so the
monthly cap is enforced against what X bills. A large gap raises an alert.

X reports the project's `cap_reset_day`: it is stored (x_account.cap_reset_day), and from then
on every monthly counter (quotas, api_usage, the budget) follows X's billing cycle instead of the
calendar month (SQL current_month()).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from worker.clients.x import (
    XCreditsExhausted,
    XNetworkError,
    XRateLimited,
    XServerError,
    XTimeout,
)
from worker.jobs._x import alert, credits_exhausted, rate_limit_snooze, record_usage
from worker.jobs.context import JobContext
from worker.jobs.registry import RetryLater, job_kind

DRIFT_ALERT = 0.10  # a 10 % gap between X's count and ours is worth a look


class ReconcileUsagePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


@job_kind("reconcile_usage", ReconcileUsagePayload, concurrency=1, lease=timedelta(seconds=60))
async def reconcile_usage(payload: ReconcileUsagePayload, ctx: JobContext) -> dict[str, Any] | None:
    try:
        usage = await ctx.services.x.usage()
    except XRateLimited as exc:
        raise rate_limit_snooze("usage", exc.reset_at, daily=exc.daily) from None
    except XCreditsExhausted:
        raise await credits_exhausted(ctx, "usage checks") from None
    except (XTimeout, XNetworkError, XServerError) as exc:
        raise RetryLater(f"usage lookup failed ({type(exc).__name__})") from None
    await record_usage(ctx, "usage")  # not priced by X
    if usage.cap_reset_day is not None and 1 <= usage.cap_reset_day <= 31:
        await ctx.services.db.execute("set_cap_reset_day", {"cap_reset_day": usage.cap_reset_day})
    counted = float(await ctx.services.db.fetchval("reads_used"))
    row = await ctx.services.db.fetchrow("reconcile_reads", {"reported": usage.project_usage})
    used = float(row["used"]) if row else counted
    reported = float(usage.project_usage)
    if max(counted, reported) and abs(counted - reported) / max(counted, reported) > DRIFT_ALERT:
        await alert(
            ctx,
            "warning",
            "usage_drift",
            "usage_drift:reads",
            f"X reports {reported:.0f} posts read this cycle; chirpbase counted {counted:.0f}",
            x_reported=reported,
            local=counted,
        )
    return {
        "x_reported": reported,
        "counted": counted,
        "used": used,
        "x_cap": usage.project_cap,
        "cap_reset_day": usage.cap_reset_day,
    }
