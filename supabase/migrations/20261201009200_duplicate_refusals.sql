-- A duplicate refusal, remembered: X refused this row's text as a duplicate (403 "duplicate
-- content") at this moment. The post it duplicates may be this row's own earlier call whose
-- answer was lost (then the timeline shows it once the consistency window has passed), or a
-- post made long before, which reconciliation never finds (it searches from five minutes before
-- the row started posting). Without this mark, every retry would post again, be refused again
-- and wait again, forever; with it, a retry that still finds nothing once the window has passed
-- ends the row as failed instead of asking X a third time.
alter table public.scheduled_tweets add column if not exists duplicate_refused_at timestamptz;
comment on column public.scheduled_tweets.duplicate_refused_at is
  'When X first refused this row''s text as a duplicate; a later attempt that still finds no post '
  'after the consistency window fails the row instead of posting again.';
