-- Named queries for the job queue. Semantics live in the SQL functions (supabase/migrations).
-- Every write about a claim carries its fencing token (jobs.lease_token, set by claim_jobs).

-- name: enqueue_job
select public.enqueue_job(%(kind)s, %(payload)s, %(run_at)s, %(priority)s, %(dedupe_key)s, %(max_attempts)s);

-- name: claim_jobs
select * from public.claim_jobs(%(worker_id)s, %(kinds)s, %(max)s, %(lease)s);

-- name: heartbeat_jobs
select id, lease_token from public.heartbeat_jobs(%(worker_id)s, %(ids)s, %(lease_tokens)s, %(lease)s);

-- name: holds_lease
select public.holds_lease(%(id)s, %(worker_id)s, %(lease_token)s);

-- name: complete_job
select public.complete_job(%(id)s, %(worker_id)s, lease_token => %(lease_token)s, result => %(result)s);

-- name: skip_job
select public.skip_job(%(id)s, %(worker_id)s, lease_token => %(lease_token)s, reason => %(reason)s,
                       result => %(result)s);

-- name: fail_job
select public.fail_job(%(id)s, %(worker_id)s, lease_token => %(lease_token)s, error => %(error)s,
                       retry_in => %(retry_in)s, retryable => %(retryable)s);

-- name: snooze_job
select public.snooze_job(%(id)s, %(worker_id)s, lease_token => %(lease_token)s, until => %(until)s,
                         reason => %(reason)s);

-- name: release_jobs
select public.release_jobs(%(worker_id)s, %(ids)s, %(lease_tokens)s);

-- name: reap_expired_leases
select public.reap_expired_leases();

-- name: next_run_at
select min(run_at) from public.jobs
where status = 'queued' and run_at > now() and kind = any(%(kinds)s);

-- name: queue_depth
select kind, status, jobs, oldest_run_at, extract(epoch from max_lag) as max_lag_s
from public.queue_depth;
