"""What an operator does about each alert kind (docs/alerts.md lists the same, kind by kind).

Shown beside an alert by the console; a test keeps this table and docs/alerts.md in step.
"""

from __future__ import annotations

FIXES: dict[str, str] = {
    "quota_threshold": (
        "Nothing is stopped yet. Check what is using the quota (Money page, "
        "`chirpbase status`); raise the cap in the `quotas` config if the use is intended."
    ),
    "quota_cap_reached": (
        "Jobs wait, nothing is dropped. Raise or remove the cap in the `quotas` config "
        "(`chirpbase config set quotas '{\"monthly_post_cap\": N}' --merge`), or wait for the "
        "new month."
    ),
    "job_dead": (
        "Read the dead job's last error (`chirpbase jobs list --status dead`, "
        "`chirpbase jobs show ID`), fix the cause, then `chirpbase jobs retry ID`."
    ),
    "job_failures": (
        "Look at the recent failures (`select * from job_failures order by failed_at desc`); "
        "they are retried with backoff. Usually a service is down or credentials changed."
    ),
    "scheduled_tweet_stranded": (
        "Something refused to settle a row whose job had ended (the message has the database's "
        "error); the sweep tries again every minute. Fix the cause, or settle the row by hand "
        "(`update scheduled_tweets set status = 'failed', error = '...' where id = ID`; a row "
        "in `posting` may be on X: look at the account's timeline first). "
        "`select * from stranded_scheduled_tweets()` lists such rows."
    ),
    "db_stall": (
        "A session holds rows the worker needs: find it with `select pid, state, xact_start, "
        "query from pg_stat_activity where state like 'idle in transaction%' or xact_start < "
        "now() - interval '1 minute'` and end it (commit, roll back, or "
        "`select pg_terminate_backend(pid)`). The job retries by itself."
    ),
    "config_rejected": (
        "The last good value stays in effect. Fix the row: `chirpbase config validate` says "
        "which field is wrong; `chirpbase config set KEY '{...}' --merge`."
    ),
    "doorbell_down": (
        "Jobs still run (polling). Check SUPABASE_URL and SUPABASE_KEY and that Realtime is "
        "enabled; `chirpbase doctor` tests the subscription."
    ),
    "database_down": (
        "Already resolved when written. If outages repeat, check the database's health and "
        "that DATABASE_URL uses the direct connection or the session pooler."
    ),
    "x_auth": (
        "X rejected the credentials: check X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and "
        "X_ACCESS_TOKEN_SECRET (Read and Write permission; regenerate the access token after "
        "changing permissions), then restart the worker."
    ),
    "x_usage_capped": (
        "The X project's monthly usage cap is reached: raise it in the developer portal or "
        "wait for the cap to reset. Jobs wait meanwhile."
    ),
    "x_credits_exhausted": (
        "X blocks requests until credits are added (console.x.com, Billing) or the billing cycle "
        "ends a spending limit. Jobs wait and look again every 10 minutes; nothing is lost."
    ),
    "x_capability_refused": (
        "The app's X access tier lacks it: set `quotas.plan` to the tier X gives the app "
        "(console.x.com, the project), or ask X for Enterprise access. Its jobs are skipped."
    ),
    "openai_auth": "OpenAI rejected the key: set a valid OPENAI_API_KEY and restart the worker.",
    "openai_quota_exhausted": (
        "The OpenAI account is out of credit: add billing or credit on the OpenAI platform."
    ),
    "alert_webhook": (
        "Webhook deliveries fail: check `alerts.webhook_url` and the receiver "
        "(`select * from alert_delivery` shows the last error)."
    ),
}


def fix_for(kind: str) -> str:
    return FIXES.get(kind, "See docs/alerts.md for this alert kind.")
