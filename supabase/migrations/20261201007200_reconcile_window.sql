-- The consistency window of a post whose outcome is unknown.
--
-- X's timelines are eventually consistent: a post X created can be missing from the account's
-- timeline for a while. After an unknown outcome (a lost answer, a timeout, a crash mid-call)
-- "not posted" may only be concluded once that window has passed; inside it the job waits
-- instead of posting again. The worker sets the end of the window before each call to X (the
-- call's longest duration plus the window) and again, shorter, when a call ends without a known
-- outcome (the window from then).

alter table public.scheduled_tweets add column if not exists reconcile_after timestamptz;
comment on column public.scheduled_tweets.reconcile_after is
  'While the row is posting with an unknown outcome: before this time a search of the timeline '
  'that finds nothing proves nothing (the post may not show there yet).';
