"""An operator's TIME (`chirpbase schedule --at`, the console's reschedule): the forms people
type, read as UTC unless they give an offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from worker.ops.errors import Refused

TIME_FORMATS_HELP = (
    "now | +30m | +2h | +1d | +1h30m | HH:MM (next occurrence) | today HH:MM | tomorrow HH:MM | "
    "ISO 8601 (2026-12-01T09:00, 2026-12-01 09:00+01:00, 2026-12-01). All times UTC unless an "
    "offset is given."
)
_RELATIVE = re.compile(r"^\+\s*((?:\d+\s*[dhms]\s*)+)$")
_RELATIVE_PART = re.compile(r"(\d+)\s*([dhms])")
_CLOCK = re.compile(r"^(?:(today|tomorrow)\s+)?(\d{1,2}):(\d{2})$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """Parse an operator's TIME into an aware UTC datetime (see TIME_FORMATS_HELP)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    s = text.strip().lower()
    if s == "now":
        return now
    if m := _RELATIVE.match(s):
        parts = {_UNITS[u]: int(n) for n, u in _RELATIVE_PART.findall(m.group(1))}
        return now + timedelta(**parts)
    if m := _CLOCK.match(s):
        day_word, hh, mm = m.group(1), int(m.group(2)), int(m.group(3))
        if hh > 23 or mm > 59:
            raise Refused(f"invalid time of day {text!r}: use HH:MM from 00:00 to 23:59")
        clock = time(hh, mm, tzinfo=UTC)
        day = now.date() + timedelta(days=1 if day_word == "tomorrow" else 0)
        when = datetime.combine(day, clock)
        if day_word is None and when <= now:
            when += timedelta(days=1)  # a bare HH:MM means its next occurrence
        return when
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"cannot read time {text!r}; use {TIME_FORMATS_HELP}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
