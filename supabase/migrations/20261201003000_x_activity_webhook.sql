-- The account's X Activity API registration: the webhook X delivers to (on x_account, one per
-- account) and its event subscriptions, as `chirpbase webhook register` records them.
--
-- X holds the truth (GET /2/webhooks, GET /2/activity/subscriptions); these rows are what
-- chirpbase registered, so `register` can tell its own webhook from someone else's, `remove`
-- can undo exactly that, and `status` shows it without a call to X. Deliveries themselves
-- leave their mark in x_account.webhook_last_event_at (the x-webhook edge function).

alter table public.x_account
  add column if not exists webhook_id text
    check (webhook_id ~ '^[0-9]{1,19}$'),
  add column if not exists webhook_url text
    check (webhook_url ~ '^https://[^/:?#@]+([/?#].*)?$' and length(webhook_url) <= 200),
  add column if not exists webhook_valid boolean,
  add column if not exists webhook_checked_at timestamptz,
  add column if not exists webhook_registered_at timestamptz;

alter table public.x_account drop constraint if exists x_account_webhook_pair;
alter table public.x_account add constraint x_account_webhook_pair
  check ((webhook_id is null) = (webhook_url is null));

create table if not exists public.x_activity_subscriptions (
  subscription_id text primary key check (subscription_id ~ '^[0-9]{1,19}$'),
  event_type text not null check (event_type ~ '^[a-z_]+(\.[a-z_]+)+$'),
  user_id text not null check (user_id ~ '^[0-9]{1,20}$'),
  webhook_id text not null check (webhook_id ~ '^[0-9]{1,19}$'),
  tag text,
  created_at timestamptz not null default now()
);
-- One subscription per event, account and webhook: X would accept a second one and deliver
-- every event twice.
create unique index if not exists x_activity_subscriptions_one_per_event
  on public.x_activity_subscriptions (event_type, user_id, webhook_id);

alter table public.x_activity_subscriptions enable row level security;
revoke all on table public.x_activity_subscriptions from anon, authenticated;
grant all on table public.x_activity_subscriptions to service_role;
