-- The X Activity API registration (`chirpbase webhook ...`): x_account's webhook columns and
-- public.x_activity_subscriptions.

-- name: webhook_registration
select user_id, username, webhook_id, webhook_url, webhook_valid, webhook_checked_at,
       webhook_registered_at, webhook_last_event_at
from public.x_account where id = 1;

-- name: save_webhook
-- The registered time stays when the same webhook is saved again (register run twice).
update public.x_account
set webhook_registered_at = case when webhook_id is not distinct from %(webhook_id)s
                                 then coalesce(webhook_registered_at, now()) else now() end,
    webhook_id = %(webhook_id)s,
    webhook_url = %(url)s,
    webhook_valid = %(valid)s,
    webhook_checked_at = now(),
    updated_at = now()
where id = 1;

-- name: mark_webhook_checked
update public.x_account
set webhook_valid = %(valid)s, webhook_checked_at = now(), updated_at = now()
where id = 1 and webhook_id = %(webhook_id)s;

-- name: clear_webhook
update public.x_account
set webhook_id = null, webhook_url = null, webhook_valid = null, webhook_checked_at = null,
    webhook_registered_at = null, updated_at = now()
where id = 1;

-- name: webhook_subscriptions
select subscription_id, event_type, user_id, webhook_id, tag, created_at
from public.x_activity_subscriptions order by event_type, subscription_id;

-- name: forget_subscriptions_except
-- Keep exactly the subscriptions X still reports (ids in %(keep)s).
delete from public.x_activity_subscriptions where subscription_id <> all(%(keep)s::text[]);

-- name: save_subscription
insert into public.x_activity_subscriptions (subscription_id, event_type, user_id, webhook_id, tag)
values (%(subscription_id)s, %(event_type)s, %(user_id)s, %(webhook_id)s, %(tag)s)
on conflict (subscription_id) do update
set event_type = excluded.event_type, user_id = excluded.user_id,
    webhook_id = excluded.webhook_id, tag = excluded.tag;

-- name: ingestion_volume
-- Mentions and replies ingested per day (both paths, over the last 30 days or since the first
-- one), how many the webhook delivered first, the polls the schedule runs, and what polling
-- found first since the webhook was registered (what the webhook missed or was slower on).
with recent as (
  select source, ingested_at from public.replies
  where ingested_at >= now() - interval '30 days' and source in ('poll', 'webhook')
), span as (
  select greatest(1.0, least(30.0, extract(epoch from now() - min(ingested_at)) / 86400.0)) as days
  from recent
)
select (select count(*) from recent)::float8 / coalesce((select days from span), 1.0) as mentions_per_day,
       (select count(*) from recent where source = 'webhook')::bigint as by_webhook_30d,
       (select count(*) from recent)::bigint as ingested_30d,
       coalesce((select days from span), 0)::float8 as window_days,
       (select count(*) from public.jobs
        where kind = 'poll_mentions' and created_at >= now() - interval '1 day'
          and dedupe_key not like 'poll_mentions:backfill:%%')::bigint as polls_last_day,
       (select value ->> 'poll_mentions_cron' from public.configs where key = 'schedule') as poll_cron,
       (select count(*) from public.replies r, public.x_account a
        where a.id = 1 and a.webhook_registered_at is not null
          and r.source = 'poll' and r.ingested_at >= a.webhook_registered_at)::bigint
         as polled_first_since_registered;
