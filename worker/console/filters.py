"""Template filters: times in UTC with a relative hint, durations, counts, money, percentages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

_CODE = re.compile(r"`([^`]+)`")


def as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def relative(value: Any, now: datetime | None = None) -> str:
    dt = as_datetime(value)
    if dt is None:
        return ""
    delta = (dt - (now or datetime.now(UTC))).total_seconds()
    span = abs(delta)
    if span < 60:
        return "now"
    if span < 3600:
        amount = f"{span / 60:.0f} min"
    elif span < 172_800:
        amount = f"{span / 3600:.0f} h"
    else:
        amount = f"{span / 86400:.0f} days"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def when(value: Any, fmt: str = "%a %d %b %H:%M") -> str:
    dt = as_datetime(value)
    return "—" if dt is None else f"{dt:{fmt}} UTC"


def clock(value: Any) -> str:
    dt = as_datetime(value)
    return "" if dt is None else f"{dt:%H:%M}"


def iso(value: Any) -> str:
    dt = as_datetime(value)
    return "" if dt is None else dt.isoformat()


def local_input(value: Any) -> str:
    """For `<input type="datetime-local">` (UTC, to the minute)."""
    dt = as_datetime(value)
    return "" if dt is None else f"{dt:%Y-%m-%dT%H:%M}"


def num(value: Any, digits: int = 0) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def money(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return "—"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    if 0 < abs(amount) < 0.01 and digits <= 2:
        return f"${amount:,.4f}"
    return f"${amount:,.{digits}f}"


def pct(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):.0f}%"


def minutes(value: Any) -> str:
    """A duration in minutes as people say it: "90 minutes", "1 day", "2 days 6 hours"."""
    try:
        total = int(value)
    except (TypeError, ValueError):
        return ""
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    if days == 0 and hours < 2:
        return f"{total} minute{'' if total == 1 else 's'}"
    words = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute"))
        if n
    ]
    return " ".join(words)


def day_label(value: Any) -> str:
    d = value if isinstance(value, date) else date.fromisoformat(str(value))
    return f"{d:%a %d %b}"


def month_label(value: Any) -> str:
    try:
        d = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value or "")
    return f"{d:%B %Y}"


def inline_code(text: Any) -> Markup:
    """Escaped text with `backtick spans` shown as code (the alert fixes are written so)."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(str(text or "")))))  # noqa: S704


def install(env: Environment) -> None:
    env.filters.update(
        {
            "relative": relative,
            "when": when,
            "clock": clock,
            "iso": iso,
            "local_input": local_input,
            "num": num,
            "money": money,
            "pct": pct,
            "minutes": minutes,
            "day_label": day_label,
            "month_label": month_label,
            "inline_code": inline_code,
        }
    )
