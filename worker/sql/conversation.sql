-- Named queries for conversations: reply drafts, their guards and their context.
--
-- The rules are SQL functions (supabase/migrations/20261201008000_reply_drafts.sql):
-- reply_draft_refusal, record_reply_draft, approve_reply_draft, reject_reply_draft,
-- edit_reply_draft, expire_reply_drafts. These queries ask and store.

-- name: reply_draft_facts
-- What the worker's policy looks at for one post (worker/conversation/policy.py ReplyFacts),
-- in one round trip: the post, the account, the summons, the opt-out, the drafts of this post, of
-- its conversation turn and of today.
with r as (
  select p.*, coalesce(p.conversation_id, p.original_tweet_id, p.reply_id) as turn_conversation
  from public.replies p
  where p.reply_id = %(reply_id)s::text
), today as (
  select date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' as starts
)
select r.reply_id, r.original_tweet_id, r.author_id, r.author_username, r.content, r.created_at,
       r.conversation_id, r.lang, r.turn_conversation,
       (select a.user_id from public.x_account a where a.id = 1) as bot_user_id,
       public.x_summoned_reply(r.reply_id) as summoned,
       exists (select 1 from public.reply_opt_outs o where o.author_id = r.author_id) as opted_out,
       (select d.id from public.reply_drafts d where d.reply_id = r.reply_id) as draft_id,
       (select d.id from public.reply_drafts d
        where d.conversation_id = r.turn_conversation and d.author_id = r.author_id
          and d.status in ('awaiting_approval', 'approved')
        limit 1) as open_turn_draft_id,
       (select d.id from public.reply_drafts d
        where d.conversation_id = r.turn_conversation and d.author_id = r.author_id
          and d.status = 'posted' and coalesce(d.posted_at, d.approved_at) >= r.created_at
        order by d.id desc limit 1) as answered_turn_draft_id,
       (select count(*)::integer from public.reply_drafts d, today
        where d.created_at >= today.starts) as drafts_today,
       (select count(*)::integer from public.reply_drafts d, today
        where d.author_id = r.author_id and d.created_at >= today.starts) as author_drafts_today
from r;

-- name: conversation_posts
-- The posts of a conversation chirpbase already holds (free): the account's own (`tweets`) and
-- the ones that summoned it (`replies`), by id.
select t.tweet_id as id, t.content as text, null::text as author_id, null::text as author_username,
       true as ours
from public.tweets t
where t.tweet_id = any(%(ids)s::text[])
union all
select r.reply_id, r.content, r.author_id, r.author_username, false
from public.replies r
where r.reply_id = any(%(ids)s::text[])
  and not exists (select 1 from public.tweets t where t.tweet_id = r.reply_id);

-- name: author_usernames
-- Usernames chirpbase knows for these authors (from their replies rows).
select distinct on (r.author_id) r.author_id, r.author_username
from public.replies r
where r.author_id = any(%(ids)s::text[]) and r.author_username is not null
order by r.author_id, r.ingested_at desc;

-- name: recent_reply_texts
-- The account's recent reply drafts (newest first), each with its pg_trgm similarity to %(text)s.
with recent as (
  select d.content, d.created_at
  from public.reply_drafts d
  where d.reply_id <> %(reply_id)s::text
  order by d.created_at desc
  limit %(limit)s
)
select r.content, extensions.similarity(r.content, %(text)s)::float8 as similarity
from recent r
order by r.created_at desc;

-- name: fresh_x_user
-- What X said about an author, when it was said less than a day ago (the filters' cache).
select user_id, username, account_created_at as created_at, followers_count
from public.x_users
where user_id = %(user_id)s::text and looked_up_at > now() - interval '1 day';

-- name: store_x_user
insert into public.x_users (user_id, username, account_created_at, followers_count, looked_up_at)
values (%(user_id)s, %(username)s, %(created_at)s, %(followers_count)s, now())
on conflict (user_id) do update
set username = excluded.username, account_created_at = excluded.account_created_at,
    followers_count = excluded.followers_count, looked_up_at = now();

-- name: record_reply_draft
-- Store a draft, the guards checked again under a lock: the draft, or why it was refused.
select draft_id, status, expires_at, refusal
from public.record_reply_draft(%(reply_id)s::text, %(content)s::text, %(context)s::jsonb,
                               %(drafts)s::integer, %(job_id)s::bigint);
