"""What the X stand-in counts: the requests it received, and posts created and read.

The request log (every request, rejected or not, with its endpoint, status and authentication)
and the requests in flight are what tests inspect. Posts created and Post reads count against
the project's monthly caps: reaching one gives X's usage-capped 429 (middleware.py); Post reads
are also what ``GET /2/usage/tweets`` reports, per UTC day (reads.py). ``XState`` mixes
:class:`Counting` in.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Literal

from sandbox.x_api.model import RequestRecord


class Counting:
    """The counters of ``XState`` (its ``__init__`` sets the attributes)."""

    _lock: threading.RLock
    requests: list[RequestRecord]
    _in_flight: Counter[str]
    monthly_post_cap: int | None
    monthly_read_cap: int | None
    posts_created: int
    posts_read: int
    daily_reads: Counter[str]

    def _now_datetime(self) -> datetime:
        raise NotImplementedError  # XState's clock

    # --- request log -----------------------------------------------------------------------

    def record_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def request_started(self, endpoint: str, delta: int = 1) -> None:
        """Count a request in flight (``delta=-1`` when its answer is sent or given up)."""
        with self._lock:
            self._in_flight[endpoint] += delta

    def in_flight(self, endpoint: str | None = None) -> int:
        """Requests received and not answered yet (held by latency, a hang, a slow handler)."""
        with self._lock:
            if endpoint is None:
                return sum(self._in_flight.values())
            return self._in_flight[endpoint]

    def request_count(self, endpoint: str | None = None, *, status: int | None = None) -> int:
        """Requests received (every one, rejected or not) for ``endpoint`` or in total."""
        with self._lock:
            return sum(
                1
                for record in self.requests
                if (endpoint is None or record.endpoint == endpoint)
                and (status is None or record.status == status)
            )

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(Counter(record.endpoint for record in self.requests))

    # --- usage ----------------------------------------------------------------------------------

    def set_usage_cap(
        self,
        *,
        posts: int | Literal["keep"] | None = "keep",
        reads: int | Literal["keep"] | None = "keep",
    ) -> None:
        """Monthly project caps (None = unlimited). Reaching one gives the usage-capped 429."""
        with self._lock:
            if posts != "keep":
                self.monthly_post_cap = posts
            if reads != "keep":
                self.monthly_read_cap = reads

    def count_reads(self, n: int) -> None:
        with self._lock:
            self.posts_read += n
            self.daily_reads[self._now_datetime().strftime("%Y-%m-%d")] += n

    def count_post(self) -> None:
        with self._lock:
            self.posts_created += 1

    def posts_capped(self) -> bool:
        with self._lock:
            return self.monthly_post_cap is not None and self.posts_created >= self.monthly_post_cap

    def reads_capped(self) -> bool:
        with self._lock:
            return self.monthly_read_cap is not None and self.posts_read >= self.monthly_read_cap
