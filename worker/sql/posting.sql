-- Named queries for posting exactly once: the lease check, the consistency window of an unknown
-- outcome, and giving a reservation back to its month.

-- name: arm_post_call
-- Right before the post reaches X, under the lease: from now on a search that finds nothing
-- proves nothing until the call could have ended and the timeline caught up. Returns the previous
-- end of the window (restored by disarm_post_call when X certainly created nothing), or no row
-- when the lease is gone (the post must not be sent).
with held as (
  select public.holds_lease(%(job_id)s, %(worker_id)s, %(lease_token)s) as ok
), old as (
  select s.reconcile_after from public.scheduled_tweets s where s.id = %(id)s
)
update public.scheduled_tweets s
set reconcile_after = now() + make_interval(secs => %(call_s)s + %(window_s)s)
from held, old
where s.id = %(id)s and s.status = 'posting' and held.ok
returning old.reconcile_after as previous;

-- name: disarm_post_call
-- X answered that it created nothing (429, usage cap, auth, shutting down): this call does not
-- extend the window.
update public.scheduled_tweets set reconcile_after = %(previous)s
where id = %(id)s and status = 'posting';

-- name: post_outcome_unknown
-- The call ended without a known outcome: the window now runs from this moment.
update public.scheduled_tweets
set reconcile_after = now() + make_interval(secs => %(window_s)s)
where id = %(id)s and status = 'posting';

-- name: reconcile_window_end
-- The end of the consistency window when it is still open (by the database's clock), else null.
-- A row from before the window was recorded counts from when it started posting.
select w from (
  select coalesce(reconcile_after,
                  post_started_at + make_interval(secs => %(call_s)s + %(window_s)s)) as w
  from public.scheduled_tweets where id = %(id)s
) s where w > now();

-- name: refund_post_reservation
-- Give a post's reservation back to the month it was taken in.
select public.refund_quota('posts', 1, public.post_reservation_month(%(id)s));

-- name: tweet_recorded_for
-- Which scheduled row a tweet is already recorded for, if any.
select scheduled_tweet_id from public.tweets where tweet_id = %(tweet_id)s;

-- name: note_duplicate_refusal
-- X refused this row's text as a duplicate: remember the first time (see the migration).
update public.scheduled_tweets set duplicate_refused_at = coalesce(duplicate_refused_at, now())
where id = %(id)s and status = 'posting';

-- name: settle_unposted
-- reconcile_post found no post once the window had passed: quota back to its month and the row
-- failed or cancelled, one transaction (SQL settle_unposted_post). No row when the row moved on
-- or a post job of it is live again.
select status from (
  select public.settle_unposted_post(%(id)s, %(outcome)s, %(error)s) as status
) s where status is not null;
