"""Putting a test on X's Enterprise access: the stand-in's tier and chirpbase's config agree.

Likes and quote posts exist only on Enterprise since 2026-04-20; tests of the like path run
there. Both sides are set, as an operator on Enterprise access would have them, and auto_like is
turned on (it is off unless asked: X's guidelines forbid apps to offer auto-liking).
"""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from sandbox.x_api import XState


def set_access_tier(conn: psycopg.Connection, tier: str) -> None:
    """configs.quotas.plan := tier (merged into the row)."""
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"plan": tier}),),
    )


def enable_likes(conn: psycopg.Connection) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'engagement'",
        (Jsonb({"auto_like": True}),),
    )


def use_enterprise(x: XState, conn: psycopg.Connection) -> None:
    x.access_tier = "enterprise"
    set_access_tier(conn, "enterprise")
    enable_likes(conn)
