"""Ask a running worker how it is: its `/health` answer, for `chirpbase status` and `doctor`.

Kept apart from the operator's database actions: this is the one thing the CLI asks the worker
itself rather than PostgreSQL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def fetch_health(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """GET a worker's /health. Never raises: an unreachable worker is a state, not an error."""
    if not url.rstrip("/").endswith("/health"):
        url = url.rstrip("/") + "/health"
    if not url.startswith(("http://", "https://")):
        return {"url": url, "reachable": False, "error": "not an http(s) URL"}
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - checked above
            return {
                "url": url,
                "reachable": True,
                "http_status": resp.status,
                "body": json.loads(resp.read() or b"{}"),
            }
    except urllib.error.HTTPError as exc:  # 503 still carries the JSON body
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return {"url": url, "reachable": True, "http_status": exc.code, "body": body}
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"url": url, "reachable": False, "error": str(reason)}
