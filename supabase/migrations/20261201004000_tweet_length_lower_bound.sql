-- The database door counts tweet text conservatively: it refuses only what is certainly over
-- X's 280 weighted characters, and leaves the exact verdict to the worker, which counts as X does
-- (worker/content/tweet_text.py, checked against twitter-text) before any call to X. So a text
-- X accepts is never refused here, and a text X refuses is caught by the worker with its exact
-- count, without a request to X.

-- tweet_length_at_least: a lower bound of X's weighted length (twitter-text v3 counting).
--
-- X's count walks the NFC text in pieces: a URL counts 23, a known emoji sequence 2, any other
-- code point its weight (1 in 0-4351, 8192-8205, 8208-8223, 8242-8247; else 2). This function
-- gives each code point a share no larger than what its piece can count:
--   * where an emoji sequence could hold them, joiners, variation selectors, skin tones, tag
--     characters and the emoji right after a joiner 0, the keycap mark 1: the shares of any
--     emoji sequence add up to at most 2 (tests check every sequence X knows);
--   * a regional indicator 1 (a flag is two of them, 2);
--   * any other code point its weight.
-- URLs never hold whitespace, so the text is taken in runs between whitespace. A run without a
-- "." holds no URL: its shares are a lower bound. A run with a "." may hold URLs, each counting
-- 23 but possibly longer as text: the shares of the characters a URL could hold (see the loop
-- below) are discounted down to 15 (23 less the 8 of "https://", which is never among them).
-- A run that is one plain link (see below) counts 23 and its punctuation, even when shorter.
-- Finally no piece counts less than 23 per 4,096 code points (the longest URL), which bounds
-- very long texts without reading them through.
--
-- Tests check the bound against X's exact count (worker/content/tweet_text.py) on twitter-text's
-- boundary corpus and on random texts: it is never above it.
create or replace function public.tweet_length_at_least(body text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  normalized text;
  cps integer[];
  to_dot integer[];  -- code points to the next "." through what a domain may hold (null: none)
  n integer;
  cp integer;
  prev integer := 0;
  is_space boolean;
  stops boolean;
  share integer;
  from_dot integer;  -- since the last "." (null: none within reach)
  from_protocol integer;  -- since a "://"
  from_start integer := 0;  -- since the last place a URL may start
  in_label boolean;
  urlish boolean;
  total integer := 0;
  run_start integer := 1;
  run_shares integer := 0;
  run_urlish integer := 0;
  run_has_dot boolean := false;
  run_has_path boolean := false;
  run_bound integer;
  floor_by_length integer;
  -- A run that is one plain link counts 23 and its punctuation, even when shorter:
  -- "https://example.com/path", "bit.ly/x", "(www.example.co.uk)." are one link on X whatever
  -- twitter-text's other rules: http(s) or no protocol, ASCII labels of at most 63 characters,
  -- a top-level domain from a short list of common ones followed by the run's end or a path of
  -- letters, digits, "-", "_" and "/" (all characters a path may end with), and only brackets
  -- and quotes before, sentence punctuation after (never part of a link).
  link_pattern constant text :=
    '^([(\['']*)(?:https?://)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+'
    '(?:com|org|net|edu|gov|io|dev|app|ai|co|me|tv|ly|gg|xyz|info|jp|de|uk|fr|us|ca|au|eu|nl|es|it)'
    '(?:/[a-z0-9_/-]*)?([.,;:!?)\]'']*)$';
  link text[];
begin
  if body is null or body = '' then
    return 0;
  end if;
  normalized := normalize(body, NFC);
  n := char_length(normalized);
  floor_by_length := ((23 * n::bigint + 4095) / 4096)::integer;
  if n > 50000 then
    return floor_by_length;  -- 50,000 code points can never fit: no need to look closer
  end if;
  select array_agg(ascii(t.ch) order by t.ord)
    into cps
  from regexp_split_to_table(normalized, '') with ordinality as t(ch, ord);

  -- What ends a domain label: whitespace (twitter-text's regexp/spaces.js) and ASCII
  -- punctuation but "-", "_", "." and the quote marks twitter-text's domain pattern lets
  -- through (fewer stops only lower the bound).
  to_dot := array_fill(null::integer, array[n]);
  for i in reverse n .. 1 loop
    cp := cps[i];
    if cp = 46 then
      to_dot[i] := 0;
    elsif i < n and not (cp between 9 and 13 or cp between 8192 and 8202
                         or cp in (32, 133, 160, 5760, 6158, 8232, 8233, 8239, 8287, 12288,
                                   33, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 58, 59, 60,
                                   61, 62, 63, 64, 91, 92, 93, 94, 123, 124, 125, 126)) then
      to_dot[i] := to_dot[i + 1] + 1;
    end if;
  end loop;

  for i in 1 .. n + 1 loop
    if i <= n then
      cp := cps[i];
      is_space := cp between 9 and 13 or cp between 8192 and 8202
                  or cp in (32, 133, 160, 5760, 6158, 8232, 8233, 8239, 8287, 12288);
    end if;
    if i > n or is_space then
      -- The end of a run: its bound, or 23 and its punctuation when it is one plain link.
      run_bound := run_shares
                   - case when run_has_dot then greatest(0, run_urlish - 15) else 0 end;
      if run_has_dot and i - run_start <= 4000 then
        link := regexp_match(substr(normalized, run_start, i - run_start), link_pattern, 'i');
        if link is not null then
          run_bound := greatest(run_bound, 23 + char_length(link[1]) + char_length(link[2]));
        end if;
      end if;
      total := total + run_bound;
      exit when i > n;
      run_start := i + 1;
      run_shares := 0;
      run_urlish := 0;
      run_has_dot := false;
      run_has_path := false;
    end if;

    -- This code point's share. Emoji parts take a share of 0 only where an emoji sequence
    -- could hold them (checked against every sequence X knows): else they count as the code
    -- points they are.
    if is_space then
      share := case when cp <= 4351 or cp between 8192 and 8205 then 1 else 2 end;
    elsif cp = 8205 and prev >= 8192 then
      share := 0;  -- a joiner after an emoji
    elsif cp in (65038, 65039) and (prev >= 128 or prev in (35, 42) or prev between 48 and 57) then
      share := 0;  -- a variation selector after an emoji or a keycap base
    elsif cp between 127995 and 127999 and prev >= 8192 then
      share := 0;  -- a skin tone after an emoji
    elsif cp between 917536 and 917631 and (prev = 127988 or prev between 917536 and 917631) then
      share := 0;  -- tag characters after a black flag
    elsif cp = 8419 and (prev in (35, 42) or prev between 48 and 57
                         or (prev in (65038, 65039) and i > 2
                             and (cps[i - 2] in (35, 42) or cps[i - 2] between 48 and 57))) then
      share := 1;  -- a keycap: its base takes the other 1
    elsif prev = 8205 and i > 2 and cps[i - 2] >= 8192
          and (cp between 8192 and 11263 or cp >= 126976) then
      share := 0;  -- an emoji joined to the one before it
    elsif cp between 127462 and 127487 then
      share := 1;  -- a regional indicator: a flag is two
    elsif cp <= 4351 or cp between 8192 and 8205 or cp between 8208 and 8223
          or cp between 8242 and 8247 then
      share := 1;
    else
      share := 2;
    end if;

    -- Where a domain label could lie.
    stops := is_space or cp in (33, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 47, 58, 59, 60, 61,
                                62, 63, 64, 91, 92, 93, 94, 123, 124, 125, 126);
    if cp = 46 then
      from_dot := 0;
    elsif stops then
      from_dot := null;
    else
      from_dot := from_dot + 1;
    end if;
    if stops then
      from_protocol := null;
    elsif i > 3 and prev = 47 and cps[i - 2] = 47 and cps[i - 3] = 58 then
      from_protocol := 1;
    else
      from_protocol := from_protocol + 1;
    end if;
    -- A URL may start at a run's start, or after anything but an ASCII letter, digit, "@",
    -- "$" or "#" (twitter-text's preceding characters).
    if i > 1 and i > run_start
       and (prev between 48 and 57 or prev between 65 and 90 or prev between 97 and 122
            or prev in (35, 36, 64, 65283, 65312)) then
      from_start := from_start + 1;
    else
      from_start := 0;
    end if;
    prev := cp;
    if is_space then
      total := total + share;
      continue;
    end if;

    -- Could a URL hold it? In a domain label (at most 63 code points: between two dots, after
    -- "://" or a place a URL may start, up to a dot), in a top-level domain (at most 63 ASCII
    -- letters after a dot, 8 of any other kind: the longest such is 6), or in a path, query or
    -- port (after a dot then "/", "?" or ":": only weight-1 characters and U+1E00-U+1EFF).
    run_shares := run_shares + share;
    run_has_path := run_has_path or (run_has_dot and cp in (47, 58, 63));
    in_label := coalesce(to_dot[i] <= 63 and (from_dot + to_dot[i] <= 64
                                              or from_protocol + to_dot[i] <= 64), false);
    if share < 2 or cp between 7680 and 7935 then
      urlish := run_has_path or in_label or coalesce(from_dot <= 63, false)
                or coalesce(to_dot[i] <= 63 and from_start + to_dot[i] <= 71, false);
    else
      urlish := in_label or coalesce(from_dot <= 8, false);
    end if;
    if urlish then
      run_urlish := run_urlish + share;
    end if;
    run_has_dot := run_has_dot or cp = 46;
  end loop;
  return greatest(total, floor_by_length);
end
$$;

-- scheduled_tweets: validate at the door and create the job ------------------------------------
-- As before, with the conservative count, and a blank content named as such.
create or replace function public.scheduled_tweets_before_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  len integer;
  blank_content boolean := new.content is not null;
begin
  -- Trim every kind of surrounding whitespace (newlines, tabs, no-break spaces ...): the set
  -- Python's str.strip() removes, so the worker never finds an accepted row empty.
  new.content := nullif(regexp_replace(new.content,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  new.topic := nullif(regexp_replace(new.topic,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  blank_content := blank_content and new.content is null;
  if blank_content and new.topic is null then
    -- X refuses a post of whitespace alone (twitter-text calls it valid; X's API does not).
    raise exception 'scheduled_tweets: content is empty or whitespace only, which X refuses'
      using errcode = '23514',
            hint = 'Give the exact text to post, or a topic to generate one.';
  end if;
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
    len := public.tweet_length_at_least(new.content);
    if len > 280 then
      raise exception 'scheduled_tweets: content is at least % weighted characters; X allows 280', len
        using errcode = '23514',
              hint = 'URLs count 23, CJK characters and emoji 2; `chirpbase count TEXT` gives the exact count.';
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

-- The old approximation could refuse text X accepts; nothing calls it any more.
drop function if exists public.tweet_weighted_length(text);

do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('tweet_length_at_least', 'scheduled_tweets_before_insert')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
