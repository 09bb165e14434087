-- Polls: a scheduled post may carry a poll (`poll_options`, `poll_duration_minutes`), refused at
-- the door when X would refuse it; its results, read with the hourly stats, land in `polls`.
--
-- X's rules (openapi.json, xdevplatform/docs):
--   * v2.167 CreatePostsPoll: `options` 2 to 4 strings of 1 to 25 characters ("Poll options
--     (2-4 choices, 1-25 characters each)"), `duration_minutes` 5 to 10080; both required.
--     JSON Schema's maxLength counts characters (code points), not twitter-text's weighted
--     length: an emoji or a CJK character counts 1 here, as char_length counts it.
--   * v2.166 TweetCreateRequest.poll: "mutually exclusive from Media, Quote Tweet Id, and Card
--     URI" (v2.167 dropped the sentence, not the rule).
-- An option is trimmed like post text; a blank one is refused (JSON Schema's minLength 1 would let
-- a single space through, which no reader can vote for meaningfully).

alter table public.scheduled_tweets add column if not exists poll_options text[];
alter table public.scheduled_tweets add column if not exists poll_duration_minutes integer;
comment on column public.scheduled_tweets.poll_options is
  'A poll on this post: 2 to 4 options of 1 to 25 characters each (X''s rule). Needs '
  'poll_duration_minutes; excludes an image and quote_tweet_id.';
comment on column public.scheduled_tweets.poll_duration_minutes is
  'How long the poll stays open: 5 to 10,080 minutes (7 days), X''s rule.';

-- x_trim: surrounding whitespace removed the way the insert door trims post text (the set
-- Python's str.strip() removes), null when nothing is left.
create or replace function public.x_trim(value text)
returns text
language sql
immutable
set search_path = ''
as $$
  select nullif(pg_catalog.regexp_replace(value,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
$$;

-- poll_refusal: why X would refuse this poll, or null when it would accept it. One home for the
-- rule, used by the door below (the worker's own check is worker/content/polls.py, the same
-- rules, checked again before any call).
create or replace function public.poll_refusal(
  options text[], duration_minutes integer, has_media boolean, quotes boolean
)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  n integer := coalesce(pg_catalog.cardinality(options), 0);
  option text;
begin
  if options is null and duration_minutes is null then
    return null;
  end if;
  if options is null then
    return 'a poll needs its options: poll_duration_minutes is set but poll_options is not';
  end if;
  if duration_minutes is null then
    return 'a poll needs a duration: poll_options is set but poll_duration_minutes is not (5 to 10,080 minutes)';
  end if;
  if pg_catalog.array_ndims(options) > 1 then
    return 'poll_options must be a flat list of texts';
  end if;
  if n < 2 or n > 4 then
    return pg_catalog.format('a poll has 2 to 4 options (X''s rule); got %s', n);
  end if;
  for i in 1 .. n loop
    option := public.x_trim(options[i]);
    if option is null then
      return pg_catalog.format('poll option %s is empty', i);
    end if;
    if pg_catalog.char_length(option) > 25 then
      return pg_catalog.format('poll option %s ("%s") is %s characters; X allows 25 per option',
        i, pg_catalog.left(option, 40), pg_catalog.char_length(option));
    end if;
  end loop;
  if duration_minutes < 5 or duration_minutes > 10080 then
    return pg_catalog.format(
      'poll_duration_minutes is %s; X allows 5 to 10,080 minutes (7 days)', duration_minutes);
  end if;
  if has_media then
    return 'a post with a poll cannot carry an image (X: poll and media are mutually exclusive)';
  end if;
  if quotes then
    return 'a post with a poll cannot quote a post (X: poll and quote_tweet_id are mutually exclusive)';
  end if;
  return null;
end
$$;

create or replace function public.scheduled_tweets_check_poll()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  refusal text;
begin
  if tg_op = 'UPDATE' and new.status in ('posted', 'failed', 'cancelled', 'rejected') then
    return new;  -- final rows are not re-checked
  end if;
  if tg_op = 'UPDATE' and old.status in ('posting', 'posted')
     and (new.poll_options is distinct from old.poll_options
          or new.poll_duration_minutes is distinct from old.poll_duration_minutes) then
    raise exception 'scheduled_tweets %: the poll of a post that is % cannot change', old.id, old.status
      using errcode = '23514';
  end if;
  if new.poll_options is not null and pg_catalog.array_ndims(new.poll_options) = 1 then
    new.poll_options := array(select public.x_trim(o) from pg_catalog.unnest(new.poll_options) o);
  end if;
  refusal := public.poll_refusal(new.poll_options, new.poll_duration_minutes,
                                 new.with_image or new.image_path is not null,
                                 new.quote_tweet_id is not null);
  if refusal is not null then
    raise exception 'scheduled_tweets: %', refusal
      using errcode = '23514',
            hint = 'X''s poll rules: 2 to 4 options of at most 25 characters, 5 to 10,080 minutes, no image or quote on the same post.';
  end if;
  return new;
end
$$;

drop trigger if exists scheduled_tweets_check_poll on public.scheduled_tweets;
create trigger scheduled_tweets_check_poll
  before insert or update of poll_options, poll_duration_minutes, with_image, image_path, quote_tweet_id
  on public.scheduled_tweets
  for each row execute function public.scheduled_tweets_check_poll();

-- polls: the results of the account's polls, as the last stats collection read them ---------
create table if not exists public.polls (
  poll_id text primary key,
  tweet_id text not null unique,
  options jsonb not null default '[]'::jsonb,
  duration_minutes integer,
  end_datetime timestamptz,
  voting_status text,
  total_votes integer not null default 0,
  collected_at timestamptz not null default now()
);
comment on table public.polls is
  'Polls on the account''s posts with their latest results (X''s includes.polls: options '
  '[{position, label, votes}], voting_status open|closed, end_datetime), refreshed by collect_stats.';
alter table public.polls enable row level security;
revoke all on table public.polls from anon, authenticated;

do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('x_trim', 'poll_refusal', 'scheduled_tweets_check_poll')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
