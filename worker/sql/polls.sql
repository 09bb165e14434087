-- Named queries for polls: their results as the stats collection read them, and the report's view.

-- name: upsert_polls
-- The latest results of each poll read (one row per poll, replaced at every collection: X's
-- counts only grow while the poll is open, and freeze when it closes).
insert into public.polls as p (poll_id, tweet_id, options, duration_minutes, end_datetime,
                               voting_status, total_votes, collected_at)
select r.poll_id, r.tweet_id, r.options, r.duration_minutes, r.end_datetime, r.voting_status,
       r.total_votes, %(collected_at)s
from jsonb_to_recordset(%(rows)s) as r(poll_id text, tweet_id text, options jsonb,
                                      duration_minutes int, end_datetime timestamptz,
                                      voting_status text, total_votes int)
on conflict (poll_id) do update
set options = excluded.options,
    duration_minutes = excluded.duration_minutes,
    end_datetime = excluded.end_datetime,
    voting_status = excluded.voting_status,
    total_votes = excluded.total_votes,
    collected_at = excluded.collected_at;

-- name: report_polls
-- The polls on posts made in the report's window, with their latest results, oldest post first.
select t.tweet_id, t.content, t.posted_at, p.poll_id, p.options, p.voting_status, p.end_datetime,
       p.total_votes, p.collected_at
from public.polls p
join public.tweets t on t.tweet_id = p.tweet_id
where t.posted_at >= %(since)s::timestamptz and t.posted_at < %(until)s::timestamptz
order by t.posted_at;
