set client_min_messages = warning;
-- What a Supabase project already provides, recreated for the local stack.
--
-- Run as the cluster superuser (supabase_admin) in every database that will hold chirpbase,
-- before `chirpbase db migrate`. Idempotent. Lives outside supabase/migrations on purpose:
-- on a hosted project all of this exists before the first `supabase db push`.

-- Roles ---------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_roles where rolname = 'postgres') then
    -- On Supabase `postgres` owns the migrations but is not a superuser.
    create role postgres login password 'postgres' createdb createrole replication bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    -- PostgREST's login role: switches to anon/authenticated/service_role from the JWT.
    create role authenticator login password 'authenticator' noinherit;
  end if;
end
$$;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
alter role postgres set search_path = public, extensions;

do $$
begin
  execute format('grant all on database %I to postgres', current_database());
end
$$;

-- Schemas -------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pg_trgm with schema extensions;

grant usage, create on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;
alter schema public owner to postgres;

-- pg_cron lives only in the database named by cron.database_name (as on Supabase: postgres).
do $$
begin
  if current_database() = coalesce(current_setting('cron.database_name', true), 'postgres') then
    create extension if not exists pg_cron with schema pg_catalog;
    grant usage on schema cron to postgres;
    grant all on all tables in schema cron to postgres;
    grant all on all sequences in schema cron to postgres;
  end if;
end
$$;

-- auth: the helpers RLS policies use -----------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role, postgres;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

-- storage: shaped like Supabase Storage's own migrations ----------------------------------------
create schema if not exists storage;
grant usage on schema storage to postgres, anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[]
);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant all on storage.buckets, storage.objects to postgres, service_role;
-- As on Supabase: the API roles hold table privileges; RLS (no policy = no rows) guards them.
grant all on storage.buckets, storage.objects to anon, authenticated;

-- Realtime ------------------------------------------------------------------------------------
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;

-- Supabase's default privileges: whatever `postgres` creates in public is open to the API
-- roles. Only RLS and explicit revokes in the migrations keep chirpbase's objects private.
alter default privileges for role postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;
