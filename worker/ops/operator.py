"""Operator actions in Python terms: what the `chirpbase` CLI does, without the CLI.

Every action is a row inserted or updated, or a queue function called, through the named queries
in `worker/sql/operator.sql`: the same path an operator typing SQL takes, so the database's
triggers and functions keep every rule. This module only translates their refusals into
`Refused` (invalid input or a move the database does not allow), `NotFound` and `Unavailable`
(worker/ops/errors.py; an operator's TIME is read by worker/ops/when.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from worker.config.models import CONFIG_MODELS, validate_config
from worker.content.polls import PollError, poll_from_row
from worker.content.tweet_text import TweetTextError, validate_tweet_text, weighted_length
from worker.db import Params, query
from worker.logs import redact
from worker.ops.errors import NotFound, OperatorError, Refused, Unavailable

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "dead", "cancelled", "skipped")
REPLY_DRAFT_STATUSES = (
    "awaiting_approval",
    "approved",
    "posted",
    "failed",
    "rejected",
    "expired",
    "cancelled",
)
ScheduledAction = Literal["approved", "rejected", "cancelled"]

__all__ = ["NotFound", "Operator", "OperatorError", "Refused", "Unavailable"]


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCheck:
    key: str
    ok: bool
    message: str


def plain(value: Any) -> Any:
    """Rows as JSON-friendly values: Decimal -> int/float, dates -> ISO strings (recursively)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def pydantic_message(exc: ValidationError) -> str:
    """One line per problem, `field: message`, as pydantic words it."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _db_message(exc: psycopg.Error) -> str:
    diag = exc.diag
    msg = diag.message_primary or str(exc).strip().splitlines()[0]
    if diag.message_hint:
        msg = f"{msg} ({diag.message_hint})"
    return redact(msg)


# SQLSTATE classes that mean "the database refused this input": data exceptions (22), integrity
# violations (23) and explicit RAISE EXCEPTION from a trigger (P0001).
_REFUSAL_CLASSES = ("22", "23")


class Operator:
    """Operator actions over one database connection (autocommit: each action is one statement)."""

    def __init__(self, conn: psycopg.Connection[Any]):
        self.conn = conn

    @classmethod
    @contextmanager
    def connect(cls, dsn: str, *, connect_timeout: int = 5) -> Iterator[Operator]:
        try:
            conn = psycopg.connect(
                dsn,
                autocommit=True,
                connect_timeout=connect_timeout,
                application_name="chirpbase-cli",
            )
        except psycopg.OperationalError as exc:
            raise Unavailable(f"cannot connect to the database: {_one_line(exc)}") from None
        except psycopg.ProgrammingError as exc:  # a malformed connection string
            raise Refused(f"invalid database URL: {_one_line(exc)}") from None
        with conn:
            yield cls(conn)

    # -- plumbing --------------------------------------------------------------------------
    def _fetch(self, name: str, params: Params = None) -> list[dict[str, Any]]:
        try:
            with self.conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query(name), params)
                return cur.fetchall() if cur.description else []
        except psycopg.OperationalError as exc:
            raise Unavailable(f"database connection lost: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            if state.startswith(_REFUSAL_CLASSES) or state == "P0001":
                raise Refused(_db_message(exc)) from None
            raise OperatorError(f"database error: {_db_message(exc)}") from None

    def _one(self, name: str, params: Params = None) -> dict[str, Any] | None:
        rows = self._fetch(name, params)
        return rows[0] if rows else None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Several statements as one: all of them, or none (nested: a savepoint)."""
        try:
            with self.conn.transaction():
                yield
        except psycopg.OperationalError as exc:
            raise Unavailable(f"database connection lost: {_one_line(exc)}") from None

    # -- scheduled tweets ------------------------------------------------------------------
    def schedule(
        self,
        content: str,
        at: datetime | None = None,
        *,
        reply_to: str | None = None,
        poll_options: Sequence[str] | None = None,
        poll_minutes: int | None = None,
    ) -> dict[str, Any]:
        """Post `content` exactly as written at `at` (default now), as a reply to `reply_to`
        when given.

        The text is counted as X counts it first, with the worker's own check (the database's
        check is only a lower bound): X's refusals are refused here with the exact weighted
        length. The row returned carries `weighted_length` and what X will bill for it
        (`operation`, `price_usd`: configs.pricing.x; a URL makes a post cost $0.20 instead of
        $0.015).
        """
        from worker.billing.prices import post_operation

        text = content.strip()  # as the database stores it (Python's whitespace set)
        try:
            validate_tweet_text(text)
            poll_from_row(list(poll_options) if poll_options else None, poll_minutes)
        except (TweetTextError, PollError) as exc:
            raise Refused(f"not scheduled: {exc}") from None
        row = self._one(
            "operator_schedule_tweet",
            {
                "content": content,
                "scheduled_for": at,
                "in_reply_to_tweet_id": reply_to,
                "poll_options": list(poll_options) if poll_options else None,
                "poll_duration_minutes": poll_minutes,
            },
        )
        assert row is not None
        summoned = bool(reply_to) and bool(
            _first(self._one("operator_reply_summoned", {"tweet_id": reply_to}))
        )
        operation = post_operation(text, summoned_reply=summoned)
        price = self._one("operator_post_price", {"operation": operation})
        return {
            **row,
            "weighted_length": weighted_length(text),
            "operation": operation,
            "price_usd": (price or {}).get("price"),
        }

    def thread(
        self, parts: Sequence[str], at: datetime | None = None, *, reply_to: str | None = None
    ) -> dict[str, Any]:
        """Post `parts` in order as a thread, each a reply to the one before (the first to
        `reply_to` when given), at `at` (default now). Every part is counted as X counts it
        first; the row returned carries its `parts` (one row each, made by the database)."""
        texts = [p.strip() for p in parts]
        for position, text in enumerate(texts, start=1):
            try:
                validate_tweet_text(text)
            except TweetTextError as exc:
                raise Refused(f"not scheduled: thread part {position}: {exc}") from None
        row = self._one(
            "operator_schedule_thread",
            {"thread": texts, "scheduled_for": at, "in_reply_to_tweet_id": reply_to},
        )
        assert row is not None
        return {**row, "parts": self._fetch("operator_thread_parts", {"id": row["id"]})}

    def generate(
        self,
        topic: str | None = None,
        with_image: bool | None = None,
        at: datetime | None = None,
        *,
        thread_parts: int | None = None,
    ) -> dict[str, Any]:
        """Have a tweet written (about `topic`, or one of the persona's) and posted at `at`;
        with `thread_parts`, a thread of that many parts."""
        row = self._one(
            "operator_schedule_generation",
            {
                "topic": topic,
                "with_image": with_image,
                "scheduled_for": at,
                "thread_parts": thread_parts,
            },
        )
        assert row is not None
        return row

    def scheduled_tweet(self, tweet_id: int) -> dict[str, Any]:
        row = self._one("operator_scheduled_tweet", {"id": tweet_id})
        if row is None:
            raise NotFound(f"no scheduled tweet with id {tweet_id}")
        return row

    def _move(self, tweet_id: int, status: ScheduledAction) -> dict[str, Any]:
        """Set the status; the trigger refuses moves it does not allow. Repeating one is a no-op
        (the result says `changed: False`)."""
        current = self.scheduled_tweet(tweet_id)
        if current["status"] == status:
            return {**current, "changed": False}
        row = self._one("operator_set_scheduled_status", {"id": tweet_id, "status": status})
        if row is None:
            raise NotFound(f"no scheduled tweet with id {tweet_id}")
        return {**row, "changed": True}

    def approve(self, tweet_id: int) -> dict[str, Any]:
        """Approve a generated tweet awaiting approval; it is posted at its scheduled time."""
        return self._move(tweet_id, "approved")

    def reject(self, tweet_id: int) -> dict[str, Any]:
        """Reject a generated tweet awaiting approval; it is never posted."""
        return self._move(tweet_id, "rejected")

    def cancel(self, tweet_id: int) -> dict[str, Any]:
        """Cancel a scheduled tweet that has not started posting (its queued job is cancelled)."""
        return self._move(tweet_id, "cancelled")

    def edit(self, tweet_id: int, content: str) -> dict[str, Any]:
        """New text for a generated tweet awaiting approval (checked as X counts it first, then
        by the database's `edit_scheduled_tweet`, which refuses any other state)."""
        try:
            validate_tweet_text(content.strip())
        except TweetTextError as exc:
            raise Refused(f"scheduled tweet {tweet_id}: {exc}") from None
        current = self.scheduled_tweet(tweet_id)  # NotFound before anything else
        if current["thread"] is not None or current["thread_parts"] is not None:
            raise Refused(
                f"scheduled tweet {tweet_id} is a thread: its parts are edited one by one "
                "(`chirpbase edit ID TEXT --part N`, SQL edit_thread_part)"
            )
        row = self._one("operator_edit_scheduled_tweet", {"id": tweet_id, "content": content})
        if row is None:
            raise NotFound(f"no scheduled tweet with id {tweet_id}")
        return row

    # -- threads ---------------------------------------------------------------------------
    def thread_view(self, thread_id: int) -> dict[str, Any]:
        """A thread's row and its parts in order, each with its weighted length as X counts it:
        the part rows once they exist, else the texts of a generated thread awaiting approval."""
        row = self.scheduled_tweet(thread_id)
        if row["thread"] is None and row["thread_parts"] is None:
            of = f" (it is part of thread {row['thread_of']})" if row["thread_of"] else ""
            raise Refused(f"scheduled tweet {thread_id} is not a thread{of}")
        parts = self._fetch("operator_thread_parts", {"id": thread_id})
        for part in parts:
            part["weighted_length"] = weighted_length(part["content"] or "")
        return plain({**row, "parts": parts})

    def edit_thread(self, thread_id: int, parts: Mapping[int, str]) -> dict[str, Any]:
        """New text for parts of a generated thread awaiting approval (`{position: text}`), all
        or none: each counted as X counts it first, then checked by the database's
        `edit_thread_part` (the door's thread rules: length, no two parts alike; refused in any
        other state, and once a part is posting or posted)."""
        for position, text in sorted(parts.items()):
            try:
                validate_tweet_text(text.strip())
            except TweetTextError as exc:
                raise Refused(f"thread {thread_id} part {position}: {exc}") from None
        self.scheduled_tweet(thread_id)  # NotFound before anything else
        with self._transaction():
            for position, text in sorted(parts.items()):
                edited = {"id": thread_id, "part": position, "content": text}
                if self._one("operator_edit_thread_part", edited) is None:
                    raise NotFound(f"no scheduled tweet with id {thread_id}")
        return self.thread_view(thread_id)

    def approve_thread(
        self, thread_id: int, parts: Mapping[int, str] | None = None
    ) -> dict[str, Any]:
        """Approve a generated thread awaiting approval as a whole, with `parts` edited first
        when given, in one transaction (approved as edited, or nothing changes); its parts are
        then posted in order, each exactly once."""
        with self._transaction():
            if parts:
                self.edit_thread(thread_id, parts)
            return self.approve(thread_id)

    def reschedule(self, tweet_id: int, at: datetime) -> dict[str, Any]:
        """Post at `at` instead (its queued job moves with it); refused once posting started."""
        self.scheduled_tweet(tweet_id)
        row = self._one(
            "operator_reschedule_scheduled_tweet", {"id": tweet_id, "scheduled_for": at}
        )
        if row is None:
            raise NotFound(f"no scheduled tweet with id {tweet_id}")
        return row

    # -- reply drafts ----------------------------------------------------------------------
    def reply_drafts(self, status: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
        """Reply drafts, newest first, with the post each answers."""
        if status is not None and status not in REPLY_DRAFT_STATUSES:
            raise Refused(
                f"unknown reply draft status {status!r}; one of {', '.join(REPLY_DRAFT_STATUSES)}"
            )
        return plain(self._fetch("operator_reply_drafts", {"status": status, "limit": limit}))

    def reply_draft(self, draft_id: int) -> dict[str, Any]:
        row = self._one("operator_reply_draft", {"id": draft_id})
        if row is None:
            raise NotFound(f"no reply draft with id {draft_id}")
        return plain(row)

    def _reply_text(self, draft_id: int, text: str) -> None:
        try:
            validate_tweet_text(text.strip())
        except TweetTextError as exc:
            raise Refused(f"reply draft {draft_id}: {exc}") from None

    def approve_reply(self, draft_id: int, text: str | None = None) -> dict[str, Any]:
        """Approve a reply draft (with `text` instead of the draft's, when given): it is posted
        at once as a reply to the post it answers, exactly once (post_tweet). Refused when it
        expired; repeating an approval without new text is a no-op (`changed: False`)."""
        if text is not None:
            self._reply_text(draft_id, text)
        current = self.reply_draft(draft_id)
        if current["status"] in ("approved", "posted") and text is None:
            return {**current, "changed": False}
        row = self._one("operator_approve_reply_draft", {"id": draft_id, "content": text})
        if row is None:
            raise NotFound(f"no reply draft with id {draft_id}")
        if row["status"] == "expired":
            raise Refused(
                f"reply draft {draft_id} expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC, before "
                "it was approved (configs.conversation.expire_after_minutes); it will not be posted"
            )
        return {**plain(row), "changed": True}

    def edit_reply(self, draft_id: int, text: str) -> dict[str, Any]:
        """New text for a reply draft awaiting approval (then approve or reject it)."""
        self._reply_text(draft_id, text)
        self.reply_draft(draft_id)
        row = self._one("operator_edit_reply_draft", {"id": draft_id, "content": text})
        if row is None:
            raise NotFound(f"no reply draft with id {draft_id}")
        return plain(row)

    def reject_reply(self, draft_id: int) -> dict[str, Any]:
        """Reject a reply draft awaiting approval: it is never posted (the post stays answered:
        one reply per interaction)."""
        current = self.reply_draft(draft_id)
        if current["status"] == "rejected":
            return {**current, "changed": False}
        row = self._one("operator_reject_reply_draft", {"id": draft_id})
        if row is None:
            raise NotFound(f"no reply draft with id {draft_id}")
        return {**plain(row), "changed": True}

    # -- jobs ------------------------------------------------------------------------------
    def job_kinds(self) -> list[str]:
        return [r["kind"] for r in self._fetch("operator_job_kinds")]

    def jobs(
        self, status: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        if status is not None and status not in JOB_STATUSES:
            raise Refused(f"unknown job status {status!r}; one of {', '.join(JOB_STATUSES)}")
        if kind is not None and kind not in (kinds := self.job_kinds()):
            raise Refused(f"unknown job kind {kind!r}; one of {', '.join(kinds)}")
        if limit < 1:
            raise Refused("limit must be at least 1")
        return self._fetch("operator_list_jobs", {"status": status, "kind": kind, "limit": limit})

    def job(self, job_id: int) -> dict[str, Any]:
        row = self._one("operator_get_job", {"id": job_id})
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        return row

    def retry_job(self, job_id: int) -> dict[str, Any]:
        """Give a dead, failed or cancelled job a fresh set of attempts, to run now."""
        return self._job_action(
            job_id, "operator_retry_job", "retried", "dead, failed or cancelled"
        )

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued job (running jobs finish; finished ones stay as they are)."""
        return self._job_action(job_id, "operator_cancel_job", "cancelled", "queued")

    def _job_action(self, job_id: int, name: str, verb: str, allowed: str) -> dict[str, Any]:
        self.job(job_id)  # NotFound before anything else
        if not _first(self._one(name, {"id": job_id})):
            job = self.job(job_id)
            raise Refused(
                f"job {job_id} ({job['kind']}) is {job['status']}; "
                f"only {allowed} jobs can be {verb}"
            )
        return self.job(job_id)

    # -- configs ---------------------------------------------------------------------------
    def configs(self, key: str | None = None) -> list[dict[str, Any]]:
        rows = self._fetch("operator_get_configs", {"key": key})
        if key is not None and not rows:
            known = ", ".join(CONFIG_MODELS)
            raise NotFound(f"no config row {key!r} (chirpbase keys: {known})")
        return rows

    def set_config(self, key: str, value: Any, *, merge: bool = False) -> dict[str, Any]:
        """Validate `value` with the key's pydantic model, then write it (whole, or merged)."""
        if key not in CONFIG_MODELS:
            raise Refused(f"unknown config key {key!r}; one of {', '.join(CONFIG_MODELS)}")
        if not isinstance(value, dict):
            raise Refused(f"config {key} must be a JSON object, got {type(value).__name__}")
        if merge:
            current = self._fetch("operator_get_configs", {"key": key})
            value = {**(current[0]["value"] if current else {}), **value}
        try:
            model = validate_config(key, value)
        except ValidationError as exc:
            raise Refused(f"invalid {key} config: {pydantic_message(exc)}") from None
        # Store the fields given, as the model understood them (e.g. "5" -> 5).
        stored = model.model_dump(mode="json", include=set(value))
        row = self._one("operator_set_config", {"key": key, "value": Jsonb(stored)})
        assert row is not None
        return row

    def validate_configs(self) -> list[ConfigCheck]:
        """Check every stored config row against its model (unknown keys are reported, not bad)."""
        checks = []
        for row in self._fetch("operator_get_configs", {"key": None}):
            key = row["key"]
            if key not in CONFIG_MODELS:
                checks.append(ConfigCheck(key, True, "not a chirpbase key; stored as given"))
                continue
            try:
                validate_config(key, row["value"])
            except ValidationError as exc:
                checks.append(ConfigCheck(key, False, pydantic_message(exc)))
            else:
                checks.append(ConfigCheck(key, True, "valid"))
        return checks

    # -- what awaits a person, what is planned, what happened -----------------------------
    def inbox(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Items awaiting a person's decision (generated tweets awaiting approval, reply drafts),
        soonest due first, with how many there are in all."""
        state = self._one("operator_inbox_state") or {}
        items = self._fetch("operator_inbox", {"limit": limit, "offset": max(0, offset)})
        return plain({"items": items, "total": int(state.get("waiting") or 0)})

    def inbox_state(self) -> dict[str, Any]:
        """How many items await, and a token that changes when any of them does (cheap)."""
        return plain(self._one("operator_inbox_state") or {"waiting": 0, "token": ""})

    def calendar(self, start: date, days: int, *, per_day: int = 30) -> dict[str, Any]:
        """Posts scheduled on the UTC days [start, start + days): the first `per_day` of each
        day, and per-day counts by status (so a crowded day says how many it hides). A thread
        is one post (`is_thread`) with its `parts` in order."""
        if not 1 <= days <= 62:
            raise Refused("a calendar shows 1 to 62 days")
        begin = datetime.combine(start, time(0, 0), tzinfo=UTC)
        window = {"start": begin, "end": begin + timedelta(days=days)}
        counts: dict[str, dict[str, int]] = {}
        for r in self._fetch("operator_calendar_days", window):
            counts.setdefault(r["day"].isoformat(), {})[r["status"]] = int(r["posts"])
        rows = self._fetch("operator_calendar", {**window, "per_day": per_day})
        return plain({"start": start, "days": days, "counts": counts, "posts": rows})

    def cadence(self) -> dict[str, Any]:
        """The `schedule` config and, where this database runs pg_cron, its chirpbase-* jobs."""
        schedule = self._fetch("operator_get_configs", {"key": "schedule"})
        cron: list[dict[str, Any]] | None = None
        if _first(self._one("operator_cron_available")):
            try:
                cron = self._fetch("operator_cron_jobs")
            except OperatorError:  # no privilege on cron.job
                cron = None
        return plain({"schedule": schedule[0]["value"] if schedule else {}, "cron": cron})

    def activity(self, *, limit: int = 20) -> dict[str, Any]:
        """Recent posts with their latest engagement, and replies with what became of each like."""
        return plain(
            {
                "posts": self._fetch("operator_recent_posts", {"limit": limit}),
                "replies": self._fetch("operator_recent_replies", {"limit": limit}),
            }
        )

    def usage(self) -> list[dict[str, Any]]:
        """This month's calls and estimated cost per endpoint (api_usage)."""
        return plain(self._fetch("operator_usage_by_endpoint"))

    def alerts(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Open alerts (most severe first), then the latest resolved ones with the reason."""
        return plain(self._fetch("operator_alerts", {"limit": limit}))

    # -- X access --------------------------------------------------------------------------
    def capabilities(self) -> list[dict[str, Any]]:
        """What the configured X access tier allows, one row per capability, with the reason
        when one is not available (SQL x_capabilities, x_capability_notice)."""
        return self._fetch("operator_capabilities")

    # -- status ----------------------------------------------------------------------------
    def status_snapshot(self, *, limit: int = 5) -> dict[str, Any]:
        """Queue, upcoming and recent posts, quota and budget use, open alerts (JSON-friendly)."""
        queue: dict[str, dict[str, int]] = {}
        lag: dict[str, float] = {}
        for row in self._fetch("operator_queue_depth"):
            queue.setdefault(row["kind"], {})[row["status"]] = int(row["jobs"])
            if row["max_lag_s"] is not None:
                lag[row["kind"]] = round(float(row["max_lag_s"]), 1)
        spend = self._one("operator_month_spend") or {}
        spent = float(spend.get("spent_usd") or 0.0)
        elapsed = float(spend.get("month_elapsed") or 0.0)
        budget = spend.get("budget_usd")
        projected = spend.get("projected_usd")
        return plain(
            {
                "generated_at": datetime.now(UTC),
                "queue": queue,
                "queue_max_lag_s": lag,
                "upcoming": self._fetch("operator_upcoming_posts", {"limit": limit}),
                "recent": self._fetch("operator_recent_posts", {"limit": limit}),
                "quota": self._fetch("operator_quota_use"),
                "budget": {
                    "month": spend.get("month"),
                    "cycle_starts": spend.get("cycle_starts"),
                    "cycle_ends": spend.get("cycle_ends"),
                    "cap_reset_day": spend.get("cap_reset_day"),
                    "plan": spend.get("plan"),
                    "spent_usd": round(spent, 4),
                    "x_usd": round(float(spend.get("x_usd") or 0.0), 4),
                    "openai_usd": round(float(spend.get("openai_usd") or 0.0), 4),
                    "posts": spend.get("posts", 0),
                    "reads": spend.get("reads", 0),
                    "month_elapsed": round(elapsed, 4),
                    "projected_usd": projected,
                    "budget_usd": budget,
                    "budget_percent": round(100 * spent / budget, 1) if budget else None,
                    "projected_over_budget": bool(budget and projected and projected > budget),
                },
                "spend_by_operation": self._fetch("operator_spend_by_operation"),
                "access": {"tier": spend.get("plan"), "capabilities": self.capabilities()},
                "stats_read": self._one("operator_stats_read"),
                "alerts": self._fetch("operator_open_alerts", {"limit": 20}),
            }
        )


def _first(row: dict[str, Any] | None) -> Any:
    return next(iter(row.values())) if row else None


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[-1] if text else type(exc).__name__)
