/**
 * Where ingested replies go. The webhook handler talks to a `ReplyStore`, never to a database
 * driver, so it is unit-tested with {@link MemoryReplyStore} and runs against Postgres with
 * `PostgresReplyStore` (./pg_store.ts).
 */
import type { BilledEvent } from "./activity_billing.ts";
import type { ReplyRow } from "./replies.ts";

export interface ReplyStore {
  /** The bot's X user id (`public.x_account.user_id`), or null while the worker has not set it. */
  botUserId(): Promise<string | null>;
  /**
   * Insert rows into `public.replies` with `source = 'webhook'`, idempotently by `reply_id`
   * (`on conflict (reply_id) do nothing`), record what X bills for the delivery's `events`
   * (`public.api_usage` through `record_x_usage`, once per event id and UTC day: see
   * ./activity_billing.ts), and record that the webhook delivered something
   * (`public.x_account.webhook_last_event_at`; also when `rows` is empty), all at once.
   * Returns the `reply_id`s actually inserted (a replayed delivery returns none).
   */
  insertReplies(rows: ReplyRow[], events?: BilledEvent[]): Promise<string[]>;
}

/** An in-memory store with the same semantics, for tests and local experiments. */
export class MemoryReplyStore implements ReplyStore {
  readonly rows = new Map<string, ReplyRow & { source: "webhook" }>();
  /** Events billed (once per id), and how many deliveries of billable events arrived. */
  readonly billed = new Map<string, string>();
  eventDeliveries = 0;
  lastEventAt: Date | null = null;
  calls = 0;

  constructor(public userId: string | null = null) {}

  botUserId(): Promise<string | null> {
    return Promise.resolve(this.userId);
  }

  insertReplies(rows: ReplyRow[], events: BilledEvent[] = []): Promise<string[]> {
    this.calls += 1;
    this.eventDeliveries += events.length;
    for (const e of events) if (!this.billed.has(e.id)) this.billed.set(e.id, e.type);
    const inserted: string[] = [];
    for (const row of rows) {
      if (this.rows.has(row.reply_id)) continue;
      this.rows.set(row.reply_id, { ...row, source: "webhook" });
      inserted.push(row.reply_id);
    }
    this.lastEventAt = new Date();
    return Promise.resolve(inserted);
  }
}
