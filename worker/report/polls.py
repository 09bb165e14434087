"""Poll results in the report: each poll posted in the window with its latest counts (from the
`polls` rows the stats collection refreshes), as an HTML section, a CSV and summary numbers.

No pandas: a report holds a handful of polls, and each is a small list of options.
"""

from __future__ import annotations

import csv
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from worker.db import query


def load_polls(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Polls on posts made in [since, until), each with its options' votes and shares."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("report_polls"), {"since": since, "until": until})
        rows = cur.fetchall()
    polls = []
    for row in rows:
        total = int(row["total_votes"] or 0)
        options: list[dict[str, Any]] = [
            {
                "position": int(o.get("position", i + 1)),
                "label": str(o.get("label", "")),
                "votes": int(o.get("votes", 0)),
                "share": (int(o.get("votes", 0)) / total) if total else None,
            }
            for i, o in enumerate(row["options"] or [])
        ]
        leading = max(options, key=lambda o: o["votes"]) if total else None
        polls.append(
            {
                "tweet_id": row["tweet_id"],
                "content": row["content"],
                "posted_at": row["posted_at"].isoformat() if row["posted_at"] else None,
                "poll_id": row["poll_id"],
                "voting_status": row["voting_status"],
                "end_datetime": row["end_datetime"].isoformat() if row["end_datetime"] else None,
                "total_votes": total,
                "leading": leading["label"] if leading else None,
                "options": options,
                "collected_at": row["collected_at"].isoformat(),
            }
        )
    return polls


def write_csv(polls: list[dict[str, Any]], path: Path) -> Path:
    """One line per poll option."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(
            ["tweet_id", "poll_id", "voting_status", "end_datetime", "position", "label", "votes"]
        )
        for poll in polls:
            for o in poll["options"]:
                out.writerow(
                    [
                        poll["tweet_id"],
                        poll["poll_id"],
                        poll["voting_status"] or "",
                        poll["end_datetime"] or "",
                        o["position"],
                        o["label"],
                        o["votes"],
                    ]
                )
    return path


def render_html(polls: list[dict[str, Any]]) -> str:
    """The "Polls" section: per poll, its post, status and a bar per option (CSS widths, no
    image), everything escaped."""
    if not polls:
        return ""
    parts = ["<h2>Polls</h2>"]
    for poll in polls:
        status = poll["voting_status"] or "unknown"
        ends = (poll["end_datetime"] or "")[:16].replace("T", " ")
        when = f"{'closed' if status == 'closed' else 'closes'} {ends} UTC" if ends else status
        parts.append(
            f'<div class="poll"><p class="text">{escape(poll["content"])}</p>'
            f'<p class="sub">{poll["total_votes"]:,} votes · {escape(status)} · {escape(when)}</p>'
            "<table><tbody>"
        )
        for o in poll["options"]:
            share = o["share"] or 0.0
            lead = " lead" if poll["leading"] == o["label"] and poll["total_votes"] else ""
            parts.append(
                f'<tr class="option{lead}"><td>{escape(o["label"])}</td>'
                f'<td class="bar"><span style="width:{share * 100:.1f}%"></span></td>'
                f'<td class="num">{o["votes"]:,}</td><td class="num">{share * 100:.1f}%</td></tr>'
            )
        parts.append("</tbody></table></div>")
    return "\n".join(parts)


CSS = """
.poll { margin:12px 0 20px; }
.poll .text { margin:0; }
td.bar { width:50%; }
td.bar span { display:block; height:12px; border-radius:6px; background:var(--accent); }
tr.lead td:first-child { font-weight:700; }
"""
