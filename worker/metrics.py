"""Prometheus metrics, defined once per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter("chirpbase_jobs_total", "Jobs finished by kind and outcome", ["kind", "outcome"])
JOB_SECONDS = Histogram(
    "chirpbase_job_duration_seconds",
    "Handler run time",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
QUEUE_LAG = Histogram(
    "chirpbase_queue_lag_seconds",
    "Time from run_at to claim",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60, 300),
)
RUNNING = Gauge("chirpbase_jobs_running", "Handlers running now", ["kind"])
QUEUE_DEPTH = Gauge("chirpbase_queue_depth", "Jobs by kind and status", ["kind", "status"])
API_CALLS = Counter(
    "chirpbase_api_calls_total", "Calls to external APIs", ["service", "endpoint", "status"]
)
RATE_LIMIT_REMAINING = Gauge(
    "chirpbase_x_rate_limit_remaining", "Last x-rate-limit-remaining seen", ["endpoint"]
)
QUOTA_USED = Gauge("chirpbase_quota_used", "Monthly quota used", ["resource"])
QUOTA_CAP = Gauge("chirpbase_quota_cap", "Monthly quota cap (absent when uncapped)", ["resource"])
DOORBELL_UP = Gauge("chirpbase_doorbell_connected", "1 when the Realtime doorbell is subscribed")
DB_UP = Gauge("chirpbase_database_up", "1 when the database answers")
WAKEUPS = Counter("chirpbase_wakeups_total", "Claim-loop wake-ups by cause", ["cause"])
