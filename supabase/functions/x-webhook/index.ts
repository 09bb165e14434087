/**
 * x-webhook: X webhook deliveries → `public.replies`, within milliseconds.
 *
 *   GET  ?crc_token=T   the Challenge-Response Check: 200 {"response_token": "sha256=" +
 *                       base64(HMAC-SHA256(X_API_SECRET, T))}
 *   POST (delivery)     verified with `x-twitter-webhooks-signature` over the raw body, in
 *                       constant time, before anything is parsed. Two formats are read:
 *                         - X Activity API (XAA) events, `{"data": {"event_type":
 *                           "post.mention.create" | "post.reply.create" | ..., "filter":
 *                           {"user_id"}, "payload": <v2 Post>, "includes"}}`;
 *                         - Account Activity API (deprecated by X) deliveries,
 *                           `{"for_user_id", "tweet_create_events": [<v1.1 tweet>]}`.
 *                       Each post that replies to or mentions the bot (and is not the bot's
 *                       own) becomes a `replies` row (source 'webhook'), inserted idempotently
 *                       by reply_id. The `replies` trigger queues the like job. What X bills
 *                       for an XAA delivery (per event, on pay-per-use) is recorded in
 *                       `api_usage` in the same statement, once per event id
 *                       (../_shared/activity_billing.ts), also for events otherwise ignored.
 *
 * Status codes: 200 for every authentic delivery, including the ones merely ignored (other
 * event kinds, other accounts, posts not for the bot), so X never disables the webhook over
 * them; 401 no or malformed signature header; 403 wrong signature; 413 body over the cap;
 * 400 a signed body that is not a JSON object, or a bad CRC request; 405 other methods; 503
 * when rows could not be stored (X retries, and the poll path catches up anyway) or the
 * function is not configured.
 *
 * Authentication is the signature alone: `verify_jwt = false` for this function in
 * supabase/config.toml, since X cannot send a Supabase JWT.
 *
 * Environment: X_API_SECRET (the app's consumer secret), SUPABASE_DB_URL (provided by Supabase
 * to every edge function; DATABASE_URL is accepted for local runs), optional
 * X_WEBHOOK_MAX_BODY_BYTES (default 1 MiB). Nothing secret is ever logged: log lines carry
 * counts, ids of public posts, outcomes and timings only.
 */
import { type BilledEvent, billedEvents } from "../_shared/activity_billing.ts";
import { PostgresReplyStore } from "../_shared/pg_store.ts";
import {
  activityForUserId,
  idOf,
  isActivityDelivery,
  repliesFromAccountActivity,
  repliesFromActivity,
  type ReplyRow,
} from "../_shared/replies.ts";
import type { ReplyStore } from "../_shared/store.ts";
import {
  crcResponseToken,
  SIGNATURE_HEADER,
  signatureShape,
  verifySignature,
} from "../_shared/x_signature.ts";

export type LogFn = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface WebhookOptions {
  /** The X app's consumer secret (X_API_SECRET). */
  consumerSecret: string;
  store: ReplyStore;
  /** Largest accepted body in bytes (default 1 MiB; Account Activity deliveries are a few KB). */
  maxBodyBytes?: number;
  /** Give up on the store after this long and answer 503 (default 8 s; X waits 10 s). */
  storeTimeoutMs?: number;
  /** How long the bot's user id read from the store is reused (default 60 s). */
  botIdTtlMs?: number;
  log?: LogFn;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const MAX_CRC_TOKEN_CHARS = 1024;
const JSON_WS = /^[ \t\n\r]*/;

export const jsonLog: LogFn = (level, msg, fields = {}) => {
  const line = JSON.stringify({ ts: new Date().toISOString(), level, fn: "x-webhook", msg, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
};

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

class TooLarge extends Error {}

/** The raw body, refusing (without buffering) anything over `max` bytes. */
async function readCapped(req: Request, max: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared.trim()) > max) {
    await req.body?.cancel().catch(() => {});
    throw new TooLarge();
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new TooLarge();
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`store did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function errorText(e: unknown): string {
  // Driver errors can quote a connection string; keep the class and the first line only.
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.split("\n")[0].replace(/postgres(ql)?:\/\/\S+/g, "postgres://…").slice(0, 300);
}

/** Build the request handler around a consumer secret and a store. */
export function createWebhookHandler(options: WebhookOptions): (req: Request) => Promise<Response> {
  const secret = options.consumerSecret;
  const store = options.store;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const storeTimeout = options.storeTimeoutMs ?? 8000;
  const botIdTtl = options.botIdTtlMs ?? 60_000;
  const log = options.log ?? jsonLog;
  let botCache: { id: string; until: number } | null = null;

  async function botUserId(): Promise<string | null> {
    const now = Date.now();
    if (botCache && botCache.until > now) return botCache.id;
    try {
      const id = idOf(await withTimeout(store.botUserId(), storeTimeout));
      if (id !== null) botCache = { id, until: now + botIdTtl };
      return id;
    } catch (e) {
      log("warn", "bot user id unavailable", { error: errorText(e) });
      return botCache?.id ?? null;
    }
  }

  /** Record what X bills for a delivery chirpbase otherwise ignores (best effort: logged). */
  async function recordOnly(billed: BilledEvent[]): Promise<void> {
    if (billed.length === 0) return;
    try {
      await withTimeout(store.insertReplies([], billed), storeTimeout);
    } catch (e) {
      log("warn", "events not priced", { error: errorText(e), events_billed: billed.length });
    }
  }

  function crc(url: URL): Response {
    const token = url.searchParams.get("crc_token");
    if (token === null || token === "") return json(400, { error: "missing crc_token" });
    if (token.length > MAX_CRC_TOKEN_CHARS) return json(400, { error: "crc_token too long" });
    // The CRC answer is HMAC(secret, token), the same function that signs deliveries: answering
    // for a token that is itself a JSON object or array would hand out a valid signature for a
    // forged delivery body. X's tokens never look like JSON; refuse the ones that do.
    const first = token.replace(JSON_WS, "")[0];
    if (first === "{" || first === "[") return json(400, { error: "invalid crc_token" });
    return json(200, { response_token: crcResponseToken(secret, token) });
  }

  async function deliver(req: Request, started: number): Promise<Response> {
    const header = req.headers.get(SIGNATURE_HEADER);
    const shape = signatureShape(header);
    if (shape !== "valid") {
      await req.body?.cancel().catch(() => {});
      log("warn", "delivery refused", { status: 401, signature: shape });
      return json(401, { error: shape === "missing" ? "missing signature" : "malformed signature" });
    }
    let raw: Uint8Array;
    try {
      raw = await readCapped(req, maxBody);
    } catch (e) {
      if (e instanceof TooLarge) {
        log("warn", "delivery refused", { status: 413, max_bytes: maxBody });
        return json(413, { error: `body larger than ${maxBody} bytes` });
      }
      return json(400, { error: "could not read body" });
    }
    if (verifySignature(secret, raw, header) !== "valid") {
      log("warn", "delivery refused", { status: 403, signature: "mismatch", bytes: raw.byteLength });
      return json(403, { error: "bad signature" });
    }

    // Authentic from here on. The BOM is kept so that the body X signed is the body we parse.
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(raw));
    } catch {
      log("warn", "signed delivery is not JSON", { status: 400, bytes: raw.byteLength });
      return json(400, { error: "body is not valid JSON" });
    }
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      return json(400, { error: "body is not a JSON object" });
    }

    const activity = isActivityDelivery(payload);
    // X bills the app for every event it delivers, whatever chirpbase makes of it.
    const billed = activity ? billedEvents(payload, raw) : [];
    const forUserId = activity
      ? activityForUserId(payload)
      : idOf((payload as Record<string, unknown>).for_user_id);
    const known = await botUserId();
    if (known !== null && forUserId !== null && forUserId !== known) {
      await recordOnly(billed);
      log("info", "delivery ignored", { reason: "other_account", for_user_id: forUserId });
      return json(200, { ok: true, ignored: "other_account" });
    }
    // A signed delivery names its subscribed account; until the worker has recorded the bot's
    // id in x_account, that is the bot.
    const bot = known ?? forUserId;
    if (bot === null) {
      await recordOnly(billed);
      log("warn", "delivery ignored", { reason: "unknown_bot_user_id" });
      return json(200, { ok: true, ignored: "unknown_bot_user_id" });
    }

    const result = activity ? repliesFromActivity(payload, bot) : repliesFromAccountActivity(payload, bot);
    const rows: ReplyRow[] = result.rows;
    const kinds = "eventTypes" in result
      ? result.eventTypes
      : Object.keys(payload as object).filter((k) => k.endsWith("_events"));
    try {
      const inserted = await withTimeout(store.insertReplies(rows, billed), storeTimeout);
      const ms = Math.round(performance.now() - started);
      log("info", "delivery handled", {
        format: activity ? "xaa" : "account_activity",
        events: kinds,
        events_billed: billed.length,
        inserted: inserted.length,
        duplicates: rows.length - inserted.length,
        skipped: result.skipped.map((s) => s.reason),
        reply_ids: inserted,
        ms,
      });
      return json(200, {
        ok: true,
        inserted: inserted.length,
        duplicates: rows.length - inserted.length,
        skipped: result.skipped.length,
      });
    } catch (e) {
      if (rows.length === 0) {
        // No rows to store; only the heartbeat (and the price of the events) failed. The
        // delivery itself is fine: a 503 would not bring it back (X retries only on
        // Enterprise, where events are not billed per event).
        log("warn", "heartbeat not recorded", { error: errorText(e), events_billed: billed.length });
        return json(200, { ok: true, inserted: 0, duplicates: 0, skipped: result.skipped.length });
      }
      log("error", "rows not stored", { error: errorText(e), rows: rows.length });
      return json(503, { error: "store unavailable" }, { "retry-after": "5" });
    }
  }

  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    try {
      if (req.method === "GET") return crc(new URL(req.url));
      if (req.method === "POST") return await deliver(req, started);
      await req.body?.cancel().catch(() => {});
      return json(405, { error: "method not allowed" }, { allow: "GET, POST" });
    } catch (e) {
      // Not expected: every path above is total. Answer without details.
      log("error", "unhandled", { error: errorText(e) });
      return json(500, { error: "internal error" });
    }
  };
}

/** The handler configured from the environment (built on first request). */
let fromEnv: ((req: Request) => Promise<Response>) | null = null;

export function handler(req: Request): Promise<Response> {
  if (fromEnv === null) {
    const secret = Deno.env.get("X_API_SECRET");
    const dbUrl = Deno.env.get("SUPABASE_DB_URL") ?? Deno.env.get("DATABASE_URL");
    if (!secret || !dbUrl) {
      jsonLog("error", "not configured: set X_API_SECRET and SUPABASE_DB_URL");
      req.body?.cancel().catch(() => {});
      return Promise.resolve(json(503, { error: "x-webhook is not configured" }));
    }
    const maxEnv = Number(Deno.env.get("X_WEBHOOK_MAX_BODY_BYTES") ?? "");
    fromEnv = createWebhookHandler({
      consumerSecret: secret,
      store: new PostgresReplyStore(dbUrl),
      maxBodyBytes: Number.isInteger(maxEnv) && maxEnv > 0 ? maxEnv : DEFAULT_MAX_BODY_BYTES,
    });
  }
  return fromEnv(req);
}

if (import.meta.main) {
  // On Supabase the runtime owns the socket. Locally (tests, `make demo`), PORT picks one on
  // the loopback interface.
  const port = Deno.env.get("PORT");
  if (port) Deno.serve({ hostname: Deno.env.get("HOST") ?? "127.0.0.1", port: Number(port) }, handler);
  else Deno.serve(handler);
}
