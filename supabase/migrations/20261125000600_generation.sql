-- Content generation: what generate_tweet needs from the database beyond the queue and quotas.

-- pg_trgm scores a generated draft against the account's recent tweets (near-duplicate check,
-- `extensions.similarity(a, b)`). Supabase ships it but does not enable it; it is a trusted
-- extension, so the migration role may create it. Supabase keeps extensions in `extensions`.
create schema if not exists extensions;
create extension if not exists pg_trgm with schema extensions;
