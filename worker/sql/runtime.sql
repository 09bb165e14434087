-- Named queries used by the worker runtime (config, alerts, health).

-- name: load_configs
select key, value, updated_at from public.configs order by key;

-- name: raise_alert
select public.raise_alert(%(level)s, %(kind)s, %(dedupe_key)s, %(message)s, %(details)s);

-- name: resolve_alert
select public.resolve_alert(%(dedupe_key)s);

-- name: open_alerts
select id, level, kind, dedupe_key, message, details, occurrences, created_at, last_seen_at
from public.alerts where resolved_at is null order by created_at desc limit %(limit)s;

-- name: applied_migrations
select version from supabase_migrations.schema_migrations order by version;

-- name: quota_use
select resource, month, used, cap, percent, alert_threshold from public.quota_use;
