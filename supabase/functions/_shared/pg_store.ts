/**
 * `ReplyStore` on a direct Postgres connection (npm:postgres, porsager's driver).
 *
 * Why SQL and not supabase-js/PostgREST: the edge runtime is given `SUPABASE_DB_URL` (a
 * connection as the `postgres` role, which owns the tables), and a direct connection
 *   - does the whole ingestion in one statement and one round trip: insert the rows with
 *     `on conflict (reply_id) do nothing returning reply_id`, price the delivery's events
 *     (`record_x_usage`), and mark `x_account.webhook_last_event_at`, atomically;
 *   - works the same on a hosted project and on the local stack, which has no PostgREST (the
 *     worker talks SQL through DATABASE_URL for the same reason);
 *   - needs no service-role key in the function's environment.
 * `prepare: false` keeps it correct behind Supavisor's transaction-mode pooler (port 6543),
 * where named prepared statements do not survive between transactions.
 */
import postgres from "npm:postgres@3.4.9";
import type { BilledEvent } from "./activity_billing.ts";
import type { ReplyRow } from "./replies.ts";
import type { ReplyStore } from "./store.ts";

export interface PostgresReplyStoreOptions {
  /** Connections kept by this isolate (default 2: a webhook isolate handles few at once). */
  max?: number;
  /** Seconds before an idle connection is closed (default 30). */
  idleTimeout?: number;
  /** Seconds to wait for a connection (default 5). */
  connectTimeout?: number;
}

export class PostgresReplyStore implements ReplyStore {
  readonly sql: postgres.Sql;

  constructor(url: string, options: PostgresReplyStoreOptions = {}) {
    this.sql = postgres(url, {
      max: options.max ?? 2,
      idle_timeout: options.idleTimeout ?? 30,
      connect_timeout: options.connectTimeout ?? 5,
      prepare: false,
      onnotice: () => {},
      connection: { application_name: "chirpbase-x-webhook" },
    });
  }

  async botUserId(): Promise<string | null> {
    const rows = await this.sql<{ user_id: string | null }[]>`
      select user_id from public.x_account where id = 1`;
    return rows[0]?.user_id ?? null;
  }

  async insertReplies(rows: ReplyRow[], events: BilledEvent[] = []): Promise<string[]> {
    if (rows.length === 0 && events.length === 0) {
      await this.sql`
        update public.x_account set webhook_last_event_at = now()
        where id = 1
          and (webhook_last_event_at is null or webhook_last_event_at < now() - interval '1 second')`;
      return [];
    }
    // One statement: the inserts (each fires the like_reply trigger), what X bills for the
    // events, and the heartbeat commit together. The events are priced by SQL record_x_usage
    // (configs.pricing.x.activity_event), each event id once per UTC day as X bills it
    // (x_billed_resources, kind 'event'); X bills events per event only on pay-per-use access,
    // so on any other tier a delivery is recorded as a call at $0. The heartbeat is throttled
    // to once a second so bursts do not queue on the row.
    const ids = events.map((e) => e.id);
    const [result] = await this.sql<{ inserted: string[] }[]>`
      with input as (
        select *
        from jsonb_to_recordset(${this.sql.json(rows as unknown as postgres.JSONValue)}::jsonb) as r(
          reply_id text, original_tweet_id text, author_id text, author_username text,
          content text, created_at timestamptz, conversation_id text, mentions_account boolean,
          quoted_tweet_id text, lang text)
      ), ins as (
        insert into public.replies
          (reply_id, original_tweet_id, author_id, author_username, content, created_at,
           conversation_id, mentions_account, quoted_tweet_id, lang, source)
        select reply_id, original_tweet_id, author_id, author_username, coalesce(content, ''),
               coalesce(created_at, now()), conversation_id, mentions_account, quoted_tweet_id,
               lang, 'webhook'
        from input
        order by reply_id
        on conflict (reply_id) do nothing
        returning reply_id
      ), usage as (
        select public.record_x_usage(
                 endpoint => 'activity_events',
                 operation => 'activity_event',
                 requests => ${ids.length}::integer,
                 resource_kind => 'event',
                 resource_ids => case when public.x_access_tier() = 'pay_per_use'
                                      then array(select jsonb_array_elements_text(
                                             ${this.sql.json(ids)}::jsonb))
                                      else '{}'::text[] end) as cost
        where ${ids.length}::integer > 0
      ), heartbeat as (
        update public.x_account set webhook_last_event_at = now()
        where id = 1
          and (webhook_last_event_at is null or webhook_last_event_at < now() - interval '1 second')
      )
      select array(select reply_id from ins) as inserted, (select cost from usage) as cost`;
    return result.inserted;
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 2 });
  }
}
