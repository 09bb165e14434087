/**
 * What X bills for an X Activity API (XAA) delivery, so the spend figures (`api_usage`, the
 * budget's hard stop, `chirpbase status`, /health, the report) include it.
 *
 * X's word (the `docs` corpus and the xdevplatform/docs repository):
 *   - docs.x.com/x-api/activity/event-pricing ("X Activity API event pricing"): "Per-event
 *     billing only applies to users on the pay-per-use product. All X Activity API events are
 *     delivered via webhooks and billed per event": `post.mention.create`, `post.reply.create`,
 *     `post.create`, `post.quote.create`, `post.repost.create` and `profile.update.*` $0.005 per
 *     event, `like.create` $0.001, `follow.*`, `chat.received`, `dm.received` $0.01; `post.delete`,
 *     `subscriptions.*`, `chat.sent`, `chat.conversation_join`, `dm.sent` not billed.
 *   - x-api/getting-started/pricing.mdx "Webhook events" (repository commit 2871328, 2026-08-22):
 *     "billed per event delivered ... You are charged once per billable event, deduplicated
 *     within the same 24-hour UTC window as other resources"; it adds `dm.read` and
 *     `dm.indicate_typing` as not billed.
 *
 * So each billable event is recorded once, by its id (`data.event_uuid`; X may deliver an event
 * more than once, and retries carry the same body), through SQL `record_x_usage` with resource
 * kind `event`: a second delivery of the same event on the same UTC day is recorded as a call
 * at $0, exactly X's deduplication. The price is `configs.pricing.x.activity_event`, X's $0.005
 * for every post event, which is all chirpbase subscribes to (`chirpbase webhook register`:
 * `post.mention.create`, `post.reply.create`); an event kind X prices otherwise (likes, follows,
 * DMs) can only come from a subscription made outside chirpbase and is recorded at that price
 * too. Account Activity API deliveries (deprecated by X) are not on X's price list for events
 * and are not recorded.
 */
import { createHash } from "node:crypto";
import { activityEvents } from "./replies.ts";

/** Event kinds X delivers without billing them (both pages above). */
export const UNBILLED_EVENT_TYPES: ReadonlySet<string> = new Set([
  "post.delete",
  "subscriptions.subscribe",
  "subscriptions.unsubscribe",
  "chat.sent",
  "chat.conversation_join",
  "dm.sent",
  "dm.read",
  "dm.indicate_typing",
]);

/** One event X bills for: its id (the unit of X's deduplication) and its kind. */
export interface BilledEvent {
  id: string;
  type: string;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The billable events of a verified XAA delivery (already parsed; `raw` is the body X signed).
 * An event without an `event_uuid` (X's envelope always has one; a malformed one may not) is
 * named by the hash of the delivery's body and its place in it, so the same body delivered
 * again is still the same event.
 */
export function billedEvents(payload: unknown, raw: Uint8Array): BilledEvent[] {
  const events: BilledEvent[] = [];
  let bodyHash: string | null = null;
  activityEvents(payload).forEach((event, index) => {
    if (!isObj(event) || typeof event.event_type !== "string") return;
    if (UNBILLED_EVENT_TYPES.has(event.event_type)) return;
    let id = typeof event.event_uuid === "string" ? event.event_uuid.trim().slice(0, 200) : "";
    if (id === "") {
      bodyHash ??= createHash("sha256").update(raw).digest("hex");
      id = `body:${bodyHash}:${index}`;
    }
    if (!events.some((e) => e.id === id)) events.push({ id, type: event.event_type });
  });
  return events;
}
