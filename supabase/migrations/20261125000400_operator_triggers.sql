-- The operator's interface: scheduled_tweets, replies and configs drive jobs through triggers.

-- tweet_weighted_length: X's weighted length (twitter-text v3), close enough to refuse bad rows
-- at the door. URLs count 23; code points in the Latin ranges count 1, others 2; an emoji sequence
-- (ZWJ joins, skin tones, variation selectors, flag pairs) counts as one emoji. The worker applies
-- the exact rules again before spending an API call.
create or replace function public.tweet_weighted_length(body text)
returns integer
language plpgsql
immutable
set search_path = ''
as $$
declare
  s text := normalize(coalesce(body, ''), NFC);
  n integer := 0;
  cp integer;
  ch text;
begin
  -- URLs (with a scheme, or a bare domain with a common TLD) become a 23-character placeholder.
  s := regexp_replace(s, 'https?://[^\s]+', repeat('u', 23), 'gi');
  s := regexp_replace(s, '(^|[\s(])((?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|co|ai|app|me|ly|gg|xyz|info|edu|gov)(?:/[^\s]*)?)(?=$|[\s),.!?])',
                      '\1' || repeat('u', 23), 'gi');
  -- Emoji sequences: drop joiners + following pictographs, modifiers and selectors.
  s := regexp_replace(s, E'\u200D[^\\s]', '', 'g');
  s := regexp_replace(s, E'[\uFE0E\uFE0F\u20E3\U0001F3FB-\U0001F3FF]', '', 'g');
  s := regexp_replace(s, E'([\U0001F1E6-\U0001F1FF])[\U0001F1E6-\U0001F1FF]', '\1', 'g');
  if s = '' then
    return 0;  -- regexp_split_to_array('', '') is {""}, which would count 1
  end if;
  foreach ch in array regexp_split_to_array(s, '')
  loop
    cp := ascii(ch);
    if cp between 0 and 4351 or cp between 8192 and 8205 or cp between 8208 and 8223
       or cp between 8242 and 8247 then
      n := n + 1;
    else
      n := n + 2;
    end if;
  end loop;
  return n;
end
$$;

-- scheduled_tweets: validate at the door and create the job ------------------------------------
create or replace function public.scheduled_tweets_before_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  len integer;
begin
  -- Trim every kind of surrounding whitespace (newlines, tabs, no-break spaces ...): the set
  -- Python's str.strip() removes, so the worker never finds an accepted row empty.
  new.content := nullif(regexp_replace(new.content,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  new.topic := nullif(regexp_replace(new.topic,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  if new.content is null and new.topic is null then
    raise exception 'scheduled_tweets: give either content (exact text to post) or topic (to generate), not neither'
      using errcode = '23514';
  end if;
  if new.content is not null and new.topic is not null then
    raise exception 'scheduled_tweets: give either content or topic, not both'
      using errcode = '23514';
  end if;
  if new.content ~ '[\ufeff\ufffe\uffff]' then
    raise exception 'scheduled_tweets: content contains a character X refuses (U+FEFF, U+FFFE or U+FFFF)'
      using errcode = '23514';
  end if;
  if new.content is not null then
    len := public.tweet_weighted_length(new.content);
    if len > 280 then
      raise exception 'scheduled_tweets: content is % weighted characters; X allows 280', len
        using errcode = '23514',
              hint = 'URLs count 23 and CJK characters and emoji count 2.';
    end if;
  end if;
  if new.topic is not null and length(new.topic) > 500 then
    raise exception 'scheduled_tweets: topic is % characters; keep it under 500', length(new.topic)
      using errcode = '23514';
  end if;
  new.scheduled_for := coalesce(new.scheduled_for, now());
  if new.scheduled_for < now() - interval '1 day' then
    raise exception 'scheduled_tweets: scheduled_for % is more than a day in the past', new.scheduled_for
      using errcode = '23514',
            hint = 'Omit scheduled_for to post now.';
  end if;
  -- Also keeps the job's run_at a time every client can read (not infinity, not year 10000+).
  if new.scheduled_for > now() + interval '1 year' then
    raise exception 'scheduled_tweets: scheduled_for % is more than a year ahead', new.scheduled_for
      using errcode = '23514',
            hint = 'Schedule at most a year ahead.';
  end if;
  if new.status is distinct from 'pending' then
    raise exception 'scheduled_tweets: new rows start as pending, not %', new.status
      using errcode = '23514';
  end if;

  new.job_id := public.enqueue_job(
    case when new.content is not null then 'post_tweet' else 'generate_tweet' end,
    jsonb_build_object('scheduled_tweet_id', new.id),
    new.scheduled_for,
    0,
    case when new.content is not null then 'post_tweet:' else 'generate_tweet:' end || new.id,
    null);
  return new;
end
$$;

drop trigger if exists scheduled_tweets_before_insert on public.scheduled_tweets;
create trigger scheduled_tweets_before_insert
  before insert on public.scheduled_tweets
  for each row execute function public.scheduled_tweets_before_insert();

-- Status changes by the operator: cancel, approve, reject, reschedule.
create or replace function public.scheduled_tweets_before_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := now();

  if new.status is distinct from old.status then
    if new.status = 'cancelled' then
      if old.status in ('posting', 'posted', 'failed', 'rejected', 'cancelled') then
        raise exception 'scheduled_tweets %: cannot cancel a tweet that is %', old.id, old.status
          using errcode = '23514';
      end if;
      update public.jobs j
      set status = 'cancelled', finished_at = now(), updated_at = now()
      where (j.payload ->> 'scheduled_tweet_id')::bigint = old.id
        and j.payload ? 'scheduled_tweet_id'
        and j.status = 'queued';
    elsif new.status = 'approved' then
      if old.status <> 'awaiting_approval' then
        raise exception 'scheduled_tweets %: only a tweet awaiting approval can be approved (it is %)',
          old.id, old.status using errcode = '23514';
      end if;
      new.approved_at := now();
      new.job_id := public.enqueue_job('post_tweet', jsonb_build_object('scheduled_tweet_id', old.id),
        greatest(new.scheduled_for, now()), 0, 'post_tweet:' || old.id, null);
    elsif new.status = 'rejected' then
      if old.status <> 'awaiting_approval' then
        raise exception 'scheduled_tweets %: only a tweet awaiting approval can be rejected (it is %)',
          old.id, old.status using errcode = '23514';
      end if;
    elsif old.status in ('posted', 'cancelled', 'rejected') then
      raise exception 'scheduled_tweets %: % is final', old.id, old.status using errcode = '23514';
    end if;
  end if;

  if new.scheduled_for is distinct from old.scheduled_for
     and (new.scheduled_for < now() - interval '1 day' or new.scheduled_for > now() + interval '1 year') then
    raise exception 'scheduled_tweets %: scheduled_for % is outside the allowed window (a day ago to a year ahead)',
      old.id, new.scheduled_for using errcode = '23514';
  end if;
  if new.scheduled_for is distinct from old.scheduled_for and old.status = 'pending' then
    update public.jobs j
    set run_at = new.scheduled_for, updated_at = now()
    where (j.payload ->> 'scheduled_tweet_id')::bigint = old.id
      and j.payload ? 'scheduled_tweet_id'
      and j.status = 'queued';
  end if;
  return new;
end
$$;

drop trigger if exists scheduled_tweets_before_update on public.scheduled_tweets;
create trigger scheduled_tweets_before_update
  before update on public.scheduled_tweets
  for each row execute function public.scheduled_tweets_before_update();

-- schedule_generated_tweet: what the generation cron runs. A row like an operator's, with a
-- topic drawn from the persona, so every post goes through the same path.
create or replace function public.schedule_generated_tweet()
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  topics jsonb := public.config_value('persona') -> 'topics';
  topic text;
  new_id bigint;
begin
  if jsonb_typeof(topics) = 'array' and jsonb_array_length(topics) > 0 then
    topic := topics ->> floor(random() * jsonb_array_length(topics))::integer;
  end if;
  insert into public.scheduled_tweets (topic, with_image, source)
  values (coalesce(nullif(topic, ''), 'anything in character'),
          coalesce((public.config_value('schedule') ->> 'with_image')::boolean, false),
          'schedule')
  returning id into new_id;
  return new_id;
end
$$;

-- replies: a new reply from someone else becomes a like job when auto-like is on -------------
create or replace function public.replies_enqueue_like()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  engagement jsonb := public.config_value('engagement');
  bot_id text := (select a.user_id from public.x_account a where a.id = 1);
begin
  if coalesce((engagement ->> 'auto_like')::boolean, true)
     and not new.liked
     and new.author_id is distinct from bot_id
     and not coalesce(engagement -> 'skip_authors', '[]'::jsonb) ? new.author_id
     -- Plain mentions are liked only when like_mentions is on; replies to our tweets always.
     and (coalesce((engagement ->> 'like_mentions')::boolean, true)
          or exists (select 1 from public.tweets t where t.tweet_id = new.original_tweet_id)) then
    perform public.enqueue_job('like_reply', jsonb_build_object('reply_id', new.reply_id),
                               now(), 10, 'like_reply:' || new.reply_id, null);
  end if;
  return new;
end
$$;

drop trigger if exists replies_enqueue_like on public.replies;
create trigger replies_enqueue_like
  after insert on public.replies
  for each row execute function public.replies_enqueue_like();
