"""The pure parts of reply drafts: quiet hours across midnight and DST, the author bar, the
prompts and the cleaning of a model's reply, the `conversation` config model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from worker.config.models import Conversation, Generation, Persona, QuietHours
from worker.content.generation import Rejection
from worker.conversation.drafting import (
    Post,
    Thread,
    clean_reply,
    reply_system_prompt,
    reply_user_prompt,
)
from worker.conversation.policy import author_refusal, quiet_until, skipped_author


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_no_quiet_hours() -> None:
    now = at("2026-12-01T23:30:00")
    assert quiet_until(None, now) is None
    assert quiet_until(QuietHours(start="23:00", end="23:00"), now) is None  # equal: none


def test_quiet_hours_cross_midnight_in_the_operators_zone() -> None:
    quiet = QuietHours(start="22:00", end="07:00", timezone="Europe/Paris")
    # December, UTC+1: quiet from 21:00 to 06:00 UTC.
    assert quiet_until(quiet, at("2026-12-01T20:59:00")) is None
    assert quiet_until(quiet, at("2026-12-01T21:00:00")) == at("2026-12-02T06:00:00")
    assert quiet_until(quiet, at("2026-12-02T03:00:00")) == at("2026-12-02T06:00:00")
    assert quiet_until(quiet, at("2026-12-02T06:00:00")) is None
    # July, UTC+2: the same wall clock is an hour earlier in UTC.
    assert quiet_until(quiet, at("2026-07-01T20:30:00")) == at("2026-07-02T05:00:00")
    # The night summer time ends (2026-10-25, 03:00 -> 02:00): 07:00 local is 06:00 UTC.
    assert quiet_until(quiet, at("2026-10-24T23:00:00")) == at("2026-10-25T06:00:00")


def test_quiet_hours_within_a_day() -> None:
    quiet = QuietHours(start="12:00", end="14:00")
    assert quiet_until(quiet, at("2026-12-01T11:59:59")) is None
    assert quiet_until(quiet, at("2026-12-01T12:00:00")) == at("2026-12-01T14:00:00")
    assert quiet_until(quiet, at("2026-12-01T13:59:00")) == at("2026-12-01T14:00:00")
    assert quiet_until(quiet, at("2026-12-01T14:00:00")) is None


@dataclass
class Author:
    created_at: datetime | None
    followers_count: int | None


def test_the_author_bar() -> None:
    now = at("2026-12-01T12:00:00")
    none = Conversation()
    assert author_refusal(None, none, now) is None  # no bar: nobody is looked up or refused
    bar = Conversation(min_author_followers=10, min_author_account_age_days=30)
    old = now - timedelta(days=400)
    assert author_refusal(Author(old, 10), bar, now) is None
    assert "9 followers, fewer than" in (author_refusal(Author(old, 9), bar, now) or "")
    assert "unknown followers" in (author_refusal(Author(old, None), bar, now) or "")
    young = author_refusal(Author(now - timedelta(days=29, hours=23), 500), bar, now)
    assert young is not None and "29 days old, younger than" in young
    assert "did not describe" in (author_refusal(None, bar, now) or "")


def test_skip_list_by_id_or_name() -> None:
    conv = Conversation(skip_authors=[" 42 ", "@Spammy", "other"])
    assert skipped_author(conv, "42", None)
    assert skipped_author(conv, "7", "spammy")
    assert not skipped_author(conv, "7", None)
    assert not skipped_author(conv, "4", "spam")


def test_auto_approval_needs_xs_approval_on_record() -> None:
    with pytest.raises(ValidationError, match="x_ai_reply_approval_granted"):
        Conversation(approval="auto")
    assert Conversation(approval="auto", x_ai_reply_approval_granted=True).approval == "auto"
    with pytest.raises(ValidationError, match="IANA"):
        QuietHours(start="22:00", end="07:00", timezone="Mars/Base")
    with pytest.raises(ValidationError, match='time like "22:00"'):
        QuietHours(start="24:00", end="07:00")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("@alice_dev thanks!", "thanks!"),
        ("@alice_dev, @bob: thanks!", "thanks!"),
        ('"Thanks for asking."', "Thanks for asking."),
        ("Thanks @alice_dev!", "Thanks @alice_dev!"),  # a handle inside the text stays
        ("  e\u0301  ", "\u00e9"),  # NFC
    ],
)
def test_a_models_reply_is_cleaned(raw: str, clean: str) -> None:
    assert clean_reply(raw) == clean


def test_the_prompts_carry_the_conversation_and_the_rules() -> None:
    persona = Persona(name="pgbot", language="en")
    system = reply_system_prompt(persona, Generation(banned_words=["synergy"]), ["en", "ja"])
    assert 'account "pgbot"' in system and "280 characters" in system
    assert "one of: en, ja" in system and '"synergy"' in system
    assert "No links" in system and "never claim to be a person" in system
    thread = Thread(
        answering=Post("3", "@pgbot   how\nlong?", author="@alice"),
        parent=Post("2", "Leases: keep them short.", ours=True),
        root=Post("1", "x" * 2000, author="@carol"),
    )
    user = reply_user_prompt(
        thread,
        ["an earlier reply"],
        feedback=Rejection("length", "it is 300 characters", "too long draft"),
    )
    lines = user.splitlines()
    assert lines[1].startswith("- First post, by @carol: xxx") and lines[1].endswith("…")
    assert len(lines[1]) < 1300
    assert lines[2] == "- It replies to, by the account (you): Leases: keep them short."
    assert "Answer this post by @alice:\n@pgbot how long?" in user
    assert "- an earlier reply" in user
    assert "Write a new reply that fixes this." in user and "too long draft" in user
