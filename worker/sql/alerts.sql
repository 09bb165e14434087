-- Named queries for the alert lifecycle (worker/alerts/). See docs/alerts.md.

-- name: evaluate_alerts
select action, dedupe_key, message
from public.evaluate_alerts(%(failure_threshold)s::integer,
                            make_interval(secs => %(failure_window_s)s::double precision),
                            make_interval(secs => %(stale_after_s)s::double precision));

-- name: resolve_stall_alerts
select dedupe_key, message from public.resolve_stall_alerts();

-- name: close_alert
select public.close_alert(%(dedupe_key)s, %(reason)s);

-- name: touch_alert
-- The condition still holds: refresh last_seen_at without counting a new occurrence.
update public.alerts set last_seen_at = now()
where dedupe_key = %(dedupe_key)s and resolved_at is null;

-- name: open_alerts_of_kind
select id, dedupe_key, details from public.alerts
where kind = %(kind)s and resolved_at is null order by id;

-- name: config_values
select key, value from public.configs where key = any(%(keys)s::text[]);

-- name: lock_outage_record
select pg_advisory_xact_lock(hashtext('chirpbase-database-outage'));

-- name: fold_database_outage
-- Another replica already recorded this outage (the periods overlap): count this one in.
update public.alerts a
set occurrences = a.occurrences + 1,
    details = jsonb_set(a.details, '{workers}',
                        coalesce(a.details -> 'workers', '[]'::jsonb) || to_jsonb(%(worker_id)s::text))
where a.id = (
  select b.id from public.alerts b
  where b.kind = 'database_down' and b.resolved_at is not null
    and b.created_at <= %(back_at)s and b.resolved_at >= %(down_since)s
  order by b.id desc limit 1
)
returning a.id;

-- name: insert_database_outage
-- Written after the fact (nothing can be written while the database is down): raised at the
-- start of the outage, resolved now.
insert into public.alerts (level, kind, dedupe_key, message, details, created_at, last_seen_at,
                           resolved_at)
values ('critical', 'database_down', 'database_down', %(message)s, %(details)s, %(down_since)s,
        %(back_at)s, now())
returning id;

-- name: ensure_alert_delivery
insert into public.alert_delivery (id) values (1) on conflict (id) do nothing;

-- name: claim_alert_delivery
-- Take the delivery lease when a message is due: something to send, the rate limit and any
-- backoff elapsed, and no other replica sending.
update public.alert_delivery d
set locked_by = %(worker_id)s,
    locked_until = now() + make_interval(secs => %(lease_s)s::double precision),
    last_attempt_at = now()
where d.id = 1
  and (d.locked_until is null or d.locked_until < now())
  and (d.next_attempt_at is null or d.next_attempt_at <= now())
  and (d.last_sent_at is null
       or d.last_sent_at + make_interval(secs => %(min_interval_s)s::double precision) <= now())
  and exists (
    select 1 from public.alerts a
    where a.kind <> 'alert_webhook'
      and ((a.notified_at is null
            and (a.resolved_at is null or a.resolved_at > now() - interval '1 day'))
           or (a.notified_at is not null and a.resolved_at is not null
               and a.resolved_notified_at is null))
  )
returning d.failures;

-- name: pending_alert_notifications
-- What the next message carries: new alerts (open, or raised and resolved within a day without
-- ever being sent) and resolutions of alerts that were sent.
select id, level, kind, dedupe_key, message, details, occurrences, created_at, last_seen_at,
       resolved_at, notified_at
from public.alerts a
where a.kind <> 'alert_webhook'
  and ((a.notified_at is null and (a.resolved_at is null or a.resolved_at > now() - interval '1 day'))
       or (a.notified_at is not null and a.resolved_at is not null
           and a.resolved_notified_at is null))
order by a.id
limit %(limit)s;

-- name: mark_alerts_notified
update public.alerts a
set notified_at = coalesce(a.notified_at, now()),
    resolved_notified_at = case when a.id = any(%(resolved_ids)s::bigint[]) then now()
                                else a.resolved_notified_at end
where a.id = any(%(raised_ids)s::bigint[]) or a.id = any(%(resolved_ids)s::bigint[]);

-- name: alert_delivery_succeeded
update public.alert_delivery
set last_sent_at = now(), failures = 0, next_attempt_at = null, last_error = null,
    locked_by = null, locked_until = null, messages_sent = messages_sent + 1
where id = 1 and locked_by = %(worker_id)s;

-- name: alert_delivery_failed
update public.alert_delivery
set failures = failures + 1,
    next_attempt_at = now() + make_interval(secs => %(retry_in_s)s::double precision),
    last_error = %(error)s, locked_by = null, locked_until = null
where id = 1 and locked_by = %(worker_id)s
returning failures;

-- name: release_alert_delivery
update public.alert_delivery set locked_by = null, locked_until = null
where id = 1 and locked_by = %(worker_id)s;

-- name: alert_delivery_state
select last_sent_at, last_attempt_at, failures, next_attempt_at, last_error, messages_sent
from public.alert_delivery where id = 1;
