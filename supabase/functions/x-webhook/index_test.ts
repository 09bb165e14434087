// x-webhook handler tests. Unit tests use the in-memory store; the Postgres tests at the end run
// when CHIRPBASE_TEST_DB_URL names a migrated database (tests/edge/test_deno.py provides one).
//
//   scripts/deno.sh test --config supabase/functions/deno.json --allow-env --allow-read \
//     --allow-net=127.0.0.1,localhost supabase/functions
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { billedEvents, UNBILLED_EVENT_TYPES } from "../_shared/activity_billing.ts";
import { PostgresReplyStore } from "../_shared/pg_store.ts";
import type { ReplyRow } from "../_shared/replies.ts";
import { MemoryReplyStore, type ReplyStore } from "../_shared/store.ts";
import { signBody } from "../_shared/x_signature.ts";
import { createWebhookHandler, handler as envHandler, type LogFn, type WebhookOptions } from "./index.ts";

const SECRET = "test-consumer-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const URL_BASE = "http://localhost/functions/v1/x-webhook";

interface VectorFile {
  bot: { user_id: string };
  vectors: {
    name: string;
    v1: Record<string, unknown>;
    expected: ReplyRow | null;
    expected_v1?: Partial<ReplyRow>;
  }[];
  xaa: { name: string; delivery: Record<string, unknown>; expected: ReplyRow[]; skipped: string[] }[];
}
const vectors: VectorFile = JSON.parse(
  await Deno.readTextFile(new URL("../../../tests/fixtures/reply_vectors.json", import.meta.url)),
);
const BOT = vectors.bot.user_id;
const post = (name: string) => vectors.vectors.find((v) => v.name === name)!;
const xaa = (name: string) => vectors.xaa.find((c) => c.name === name)!;

/** A log sink that remembers lines, so tests can also check nothing secret is logged. */
function capture(): { log: LogFn; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (level, msg, fields) => lines.push(JSON.stringify({ level, msg, ...fields })) };
}

function setup(opts: Partial<WebhookOptions> & { botId?: string | null } = {}) {
  const store = new MemoryReplyStore(opts.botId === undefined ? BOT : opts.botId);
  const logs = capture();
  const handler = createWebhookHandler({ consumerSecret: SECRET, store, log: logs.log, ...opts });
  return { store, handler, logs };
}

function delivery(...tweets: Record<string, unknown>[]): string {
  return JSON.stringify({ for_user_id: BOT, tweet_create_events: tweets });
}

function signed(
  body: string | Uint8Array<ArrayBuffer>,
  secret = SECRET,
  extra: Record<string, string> = {},
): Request {
  return new Request(URL_BASE, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-twitter-webhooks-signature": signBody(secret, body),
      ...extra,
    },
    body,
  });
}

function unsigned(body: string, headers: Record<string, string> = {}): Request {
  return new Request(URL_BASE, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

// --- CRC -----------------------------------------------------------------------------------

Deno.test("CRC: response_token is sha256= + base64 HMAC-SHA256(consumer secret, crc_token)", async () => {
  const { handler } = setup();
  const token = "9b4507b3-9040-4669-9ca3-6b94edb50553";
  const res = await handler(new Request(`${URL_BASE}?crc_token=${encodeURIComponent(token)}`));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const expected = "sha256=" + createHmac("sha256", SECRET).update(token).digest("base64");
  assert.deepEqual(await res.json(), { response_token: expected });
});

Deno.test("CRC: a known answer (X's example consumer secret and token)", async () => {
  // Computed independently with Python's hmac + base64 (tests/edge/test_deno.py checks the pair).
  const handler = createWebhookHandler({
    consumerSecret: "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
    store: new MemoryReplyStore(BOT),
    log: () => {},
  });
  const res = await handler(new Request(`${URL_BASE}?crc_token=9b4507b3-9040-4669-9ca3-6b94edb50553`));
  assert.deepEqual(await res.json(), {
    response_token: "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8=",
  });
});

Deno.test("CRC: missing, empty or oversized token → 400", async () => {
  const { handler } = setup();
  for (const q of ["", "?crc_token=", `?crc_token=${"a".repeat(1025)}`, "?other=1"]) {
    const res = await handler(new Request(URL_BASE + q));
    assert.equal(res.status, 400, q);
    await res.body?.cancel();
  }
});

Deno.test("CRC: refuses tokens shaped like a JSON object (no signing oracle for forged bodies)", async () => {
  const { handler, store } = setup();
  const forged = delivery(post("plain_mention").v1);
  for (const token of [forged, `  \n${forged}`, "[1,2]"]) {
    const res = await handler(new Request(`${URL_BASE}?crc_token=${encodeURIComponent(token)}`));
    assert.equal(res.status, 400);
    await res.body?.cancel();
  }
  // And the attack it prevents: had it answered, that answer would be a valid signature.
  const oracle = "sha256=" + createHmac("sha256", SECRET).update(forged).digest("base64");
  const res = await handler(unsigned(forged, { "x-twitter-webhooks-signature": oracle }));
  assert.equal(res.status, 200, "the oracle's answer would have been accepted");
  assert.equal(store.rows.size, 1);
});

// --- signatures ----------------------------------------------------------------------------

Deno.test("signature: a correctly signed delivery is accepted and stored", async () => {
  const { handler, store } = setup();
  const v = post("reply_to_bot_post");
  const res = await handler(signed(delivery(v.v1)));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, inserted: 1, duplicates: 0, skipped: 0 });
  assert.deepEqual(store.rows.get(v.expected!.reply_id), {
    ...v.expected,
    ...v.expected_v1,
    source: "webhook",
  });
  assert.ok(store.lastEventAt);
});

Deno.test("signature: tampered body → 403, nothing stored", async () => {
  const { handler, store } = setup();
  const body = delivery(post("plain_mention").v1);
  const tampered = body.replace("what do you make", "what do you fake");
  assert.notEqual(tampered, body);
  const res = await handler(unsigned(tampered, { "x-twitter-webhooks-signature": signBody(SECRET, body) }));
  assert.equal(res.status, 403);
  assert.equal(store.calls, 0);
  // One flipped byte anywhere, e.g. whitespace a JSON parser would not notice, is also refused.
  const res2 = await handler(
    unsigned(body + " ", { "x-twitter-webhooks-signature": signBody(SECRET, body) }),
  );
  assert.equal(res2.status, 403);
  assert.equal(store.calls, 0);
});

Deno.test("signature: signed with another secret → 403", async () => {
  const { handler, store } = setup();
  const res = await handler(signed(delivery(post("plain_mention").v1), SECRET + "x"));
  assert.equal(res.status, 403);
  assert.equal(store.calls, 0);
});

Deno.test("signature: missing header → 401 before the body is read", async () => {
  const { handler, store } = setup();
  let pulled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled = true;
      c.enqueue(new TextEncoder().encode(delivery(post("plain_mention").v1)));
      c.close();
    },
  });
  const res = await handler(new Request(URL_BASE, { method: "POST", body }));
  assert.equal(res.status, 401);
  assert.equal(pulled, false, "body not read");
  assert.equal(store.calls, 0);
});

Deno.test("signature: malformed headers → 401", async () => {
  const { handler, store } = setup();
  const body = delivery(post("plain_mention").v1);
  const good = signBody(SECRET, body);
  const digest = good.slice("sha256=".length);
  const hex = createHmac("sha256", SECRET).update(body).digest("hex");
  for (
    const header of [
      "",
      "sha256=",
      digest,
      `sha1=${digest}`,
      `SHA256=${digest}`,
      `sha256=${hex}`,
      `sha256=${digest.slice(0, -2)}`,
      `sha256=${digest}${digest}`,
      `sha256=${digest.replace(/=$/, "")}`,
      `sha256= ${digest}`,
      `${good}, ${good}`,
      `sha256=${"-".repeat(43)}=`,
    ]
  ) {
    const res = await handler(unsigned(body, { "x-twitter-webhooks-signature": header }));
    assert.equal(res.status, 401, JSON.stringify(header));
    await res.body?.cancel();
  }
  assert.equal(store.calls, 0);
});

Deno.test("signature: a replayed delivery is harmless (idempotent by reply_id)", async () => {
  const { handler, store } = setup();
  const body = delivery(post("reply_to_bot_post").v1, post("plain_mention").v1);
  const first = await (await handler(signed(body))).json();
  const second = await (await handler(signed(body))).json();
  assert.deepEqual(first, { ok: true, inserted: 2, duplicates: 0, skipped: 0 });
  assert.deepEqual(second, { ok: true, inserted: 0, duplicates: 2, skipped: 0 });
  assert.equal(store.rows.size, 2);
});

Deno.test("secrets never reach the logs", async () => {
  const { handler, logs } = setup();
  const body = delivery(post("plain_mention").v1);
  await handler(signed(body));
  await handler(signed(body, "wrong"));
  await handler(unsigned(body, { "x-twitter-webhooks-signature": "sha256=nope" }));
  await handler(new Request(`${URL_BASE}?crc_token=abc`));
  assert.ok(logs.lines.length >= 3);
  const all = logs.lines.join("\n");
  assert.ok(!all.includes(SECRET));
  assert.ok(!all.includes(signBody(SECRET, body).slice(7)), "no signatures");
  assert.ok(!all.includes("what do you make"), "no post text");
});

// --- filtering -----------------------------------------------------------------------------

Deno.test("filtering: own posts, retweets, unrelated posts and quotes without mention are ignored with 200", async () => {
  const { handler, store } = setup();
  for (const name of ["own_post", "retweet_of_bot_post", "unrelated_reply", "quote_without_mention"]) {
    const res = await handler(signed(delivery(post(name).v1)));
    assert.equal(res.status, 200, name);
    assert.deepEqual(await res.json(), { ok: true, inserted: 0, duplicates: 0, skipped: 1 }, name);
  }
  assert.equal(store.rows.size, 0);
});

Deno.test("filtering: a mention without a reply is accepted (original_tweet_id null)", async () => {
  const { handler, store } = setup();
  const v = post("plain_mention");
  assert.equal((await handler(signed(delivery(v.v1)))).status, 200);
  const row = store.rows.get(v.expected!.reply_id)!;
  assert.equal(row.original_tweet_id, null);
  assert.equal(row.conversation_id, v.expected!.reply_id);
});

Deno.test("filtering: every vector through the handler in one delivery", async () => {
  const { handler, store } = setup();
  const res = await handler(signed(delivery(...vectors.vectors.map((v) => v.v1))));
  assert.equal(res.status, 200);
  const kept = vectors.vectors.filter((v) => v.expected !== null);
  assert.deepEqual([...store.rows.keys()].sort(), kept.map((v) => v.expected!.reply_id).sort());
  for (const v of kept) {
    assert.deepEqual(store.rows.get(v.expected!.reply_id), {
      ...v.expected,
      ...v.expected_v1,
      source: "webhook",
    });
  }
});

Deno.test("filtering: other event kinds → 200 and only the heartbeat", async () => {
  const { handler, store } = setup();
  for (
    const body of [
      { for_user_id: BOT, favorite_events: [{ id: "a7ba", favorited_status: post("plain_mention").v1 }] },
      { for_user_id: BOT, follow_events: [{ type: "follow" }] },
      { for_user_id: BOT, tweet_delete_events: [{ status: { id: "1", user_id: "2" } }] },
      { for_user_id: BOT },
    ]
  ) {
    const res = await handler(signed(JSON.stringify(body)));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  assert.equal(store.rows.size, 0);
  assert.equal(store.calls, 4);
  assert.ok(store.lastEventAt);
});

Deno.test("filtering: a delivery for another subscribed account is ignored", async () => {
  const { handler, store } = setup();
  const body = JSON.stringify({ for_user_id: "999", tweet_create_events: [post("plain_mention").v1] });
  const res = await handler(signed(body));
  assert.equal(res.status, 200);
  assert.equal((await res.json()).ignored, "other_account");
  assert.equal(store.calls, 0);
});

Deno.test("filtering: until x_account knows the bot, for_user_id of a signed delivery stands in", async () => {
  const { handler, store } = setup({ botId: null });
  const res = await handler(signed(delivery(post("plain_mention").v1, post("own_post").v1)));
  assert.deepEqual(await res.json(), { ok: true, inserted: 1, duplicates: 0, skipped: 1 });
  const none = await handler(signed(JSON.stringify({ tweet_create_events: [post("plain_mention").v1] })));
  assert.equal((await none.json()).ignored, "unknown_bot_user_id");
  assert.equal(store.rows.size, 1);
});

// --- X Activity API deliveries ---------------------------------------------------------------

Deno.test("xaa: a signed post.mention.create becomes a row; a replay adds nothing", async () => {
  const { handler, store, logs } = setup();
  const c = xaa("mention_create");
  const body = JSON.stringify(c.delivery);
  const res = await handler(signed(body));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true, inserted: 1, duplicates: 0, skipped: 0 });
  assert.deepEqual(store.rows.get(c.expected[0].reply_id), { ...c.expected[0], source: "webhook" });
  const again = await handler(signed(body));
  assert.deepEqual(await again.json(), { ok: true, inserted: 0, duplicates: 1, skipped: 0 });
  assert.equal(store.rows.size, 1);
  const handled = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.msg === "delivery handled");
  assert.deepEqual(handled[0].format, "xaa");
  assert.deepEqual(handled[0].events, ["post.mention.create"]);
});

Deno.test("xaa: the same post by XAA and by Account Activity is one row", async () => {
  const { handler, store } = setup();
  const c = xaa("reply_without_mention_entity");
  const v = post("reply_to_bot_without_mention_entity");
  assert.equal((await (await handler(signed(JSON.stringify(c.delivery)))).json()).inserted, 1);
  assert.equal((await (await handler(signed(delivery(v.v1)))).json()).inserted, 0);
  assert.equal(store.rows.size, 1);
});

Deno.test("xaa: signature checks are the same (tampered → 403, missing → 401)", async () => {
  const { handler, store } = setup();
  const body = JSON.stringify(xaa("mention_create").delivery);
  const req = new Request(URL_BASE, {
    method: "POST",
    headers: { "x-twitter-webhooks-signature": signBody(SECRET, body) },
    body: body.replace("bob_builds", "mallory"),
  });
  const tampered = await handler(req);
  assert.equal(tampered.status, 403);
  await tampered.body?.cancel();
  const missing = await handler(unsigned(body));
  assert.equal(missing.status, 401);
  await missing.body?.cancel();
  assert.equal(store.rows.size, 0);
  assert.equal(store.calls, 0);
});

Deno.test("xaa: events that carry no reply (likes, deletes, other accounts) → 200, heartbeat only", async () => {
  const { handler, store } = setup();
  for (const name of ["like_create", "post_delete", "own_post_create", "repost_create"]) {
    const res = await handler(signed(JSON.stringify(xaa(name).delivery)));
    assert.equal(res.status, 200, name);
    assert.equal((await res.json()).inserted, 0, name);
  }
  const other = await handler(signed(JSON.stringify(xaa("other_account").delivery)));
  assert.equal((await other.json()).ignored, "other_account");
  assert.equal(store.rows.size, 0);
  assert.ok(store.lastEventAt);
});

Deno.test("xaa: until x_account knows the bot, filter.user_id of a signed event stands in", async () => {
  const { handler, store } = setup({ botId: null });
  const res = await handler(signed(JSON.stringify(xaa("batch_with_duplicate").delivery)));
  assert.deepEqual(await res.json(), { ok: true, inserted: 2, duplicates: 0, skipped: 0 });
  assert.equal(store.rows.size, 2);
});

// --- what X bills for a delivery -------------------------------------------------------------

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("billing: each billable XAA event once, by event_uuid; unbilled kinds not at all", () => {
  const priced = (name: string) => {
    const body = JSON.stringify(xaa(name).delivery);
    return billedEvents(JSON.parse(body), bytes(body));
  };
  assert.deepEqual(priced("mention_create"), [{ id: "2080765813578191303", type: "post.mention.create" }]);
  assert.deepEqual(priced("like_create"), [{ id: "4000000000000000011", type: "like.create" }]);
  assert.deepEqual(priced("post_delete"), [], "post.delete is not billed");
  // One delivery carrying the same event twice is one billed event.
  assert.deepEqual(priced("batch_with_duplicate").map((e) => e.id), [
    "4000000000000000013",
    "4000000000000000014",
  ]);
  for (const type of UNBILLED_EVENT_TYPES) {
    const body = JSON.stringify({ data: { event_uuid: "1", event_type: type, payload: {} } });
    assert.deepEqual(billedEvents(JSON.parse(body), bytes(body)), [], type);
  }
  // Account Activity API deliveries are not on X's price list for events.
  const aaa = delivery(post("plain_mention").v1);
  assert.deepEqual(billedEvents(JSON.parse(aaa), bytes(aaa)), []);
});

Deno.test("billing: an event without an event_uuid is named by the body X signed", () => {
  const envelope = structuredClone(xaa("mention_create").delivery) as { data: Record<string, unknown> };
  delete envelope.data.event_uuid;
  const body = JSON.stringify(envelope);
  const first = billedEvents(JSON.parse(body), bytes(body));
  assert.equal(first.length, 1);
  assert.match(first[0].id, /^body:[0-9a-f]{64}:0$/);
  assert.deepEqual(billedEvents(JSON.parse(body), bytes(body)), first, "the same body, the same id");
  const other = body.replace("bob_builds", "bob_builds2");
  assert.notEqual(billedEvents(JSON.parse(other), bytes(other))[0].id, first[0].id);
});

Deno.test("billing: a redelivered event is billed once; ignored events are billed too", async () => {
  const { handler, store } = setup();
  const mention = JSON.stringify(xaa("mention_create").delivery);
  for (let i = 0; i < 3; i++) assert.equal((await handler(signed(mention))).status, 200);
  assert.deepEqual([...store.billed], [["2080765813578191303", "post.mention.create"]]);
  assert.equal(store.eventDeliveries, 3);
  // X bills the app for what it delivers, whatever chirpbase keeps of it.
  for (const name of ["like_create", "own_post_create", "other_account"]) {
    const res = await handler(signed(JSON.stringify(xaa(name).delivery)));
    assert.equal(res.status, 200, name);
    await res.body?.cancel();
  }
  assert.deepEqual([...store.billed.keys()].sort(), [
    "2080765813578191303",
    "4000000000000000007",
    "4000000000000000010",
    "4000000000000000011",
  ]);
  // Not billed by X: post.delete, and Account Activity API deliveries.
  await (await handler(signed(JSON.stringify(xaa("post_delete").delivery)))).body?.cancel();
  await (await handler(signed(delivery(post("plain_mention").v1)))).body?.cancel();
  assert.equal(store.billed.size, 4);
  assert.equal(store.eventDeliveries, 6);
});

Deno.test("billing: a store that cannot price an ignored event still answers 200", async () => {
  const failing: ReplyStore = {
    botUserId: () => Promise.resolve(BOT),
    insertReplies: () => Promise.reject(new Error("connection refused")),
  };
  const { handler, logs } = setup({ store: failing });
  for (const name of ["like_create", "other_account"]) {
    const res = await handler(signed(JSON.stringify(xaa(name).delivery)));
    assert.equal(res.status, 200, name);
    await res.body?.cancel();
  }
  const warned = logs.lines.map((l) => JSON.parse(l)).filter((l) => l.level === "warn");
  assert.deepEqual(warned.map((l) => l.msg), ["heartbeat not recorded", "events not priced"]);
});

Deno.test("xaa: store down with rows to store → 503 so X may retry", async () => {
  const failing: ReplyStore = {
    botUserId: () => Promise.resolve(BOT),
    insertReplies: () => Promise.reject(new Error("connection refused")),
  };
  const { handler } = setup({ store: failing });
  const res = await handler(signed(JSON.stringify(xaa("mention_create").delivery)));
  assert.equal(res.status, 503);
  await res.body?.cancel();
});

// --- malformed and oversized ---------------------------------------------------------------

Deno.test("malformed JSON after a valid signature → 400, no crash, nothing stored", async () => {
  const { handler, store } = setup();
  for (const body of ["{", "", "not json", '{"for_user_id": }', "\uFEFF{}", "[]", "null", "42", '"str"']) {
    const res = await handler(signed(body));
    assert.equal(res.status, 400, JSON.stringify(body));
    await res.body?.cancel();
  }
  const invalidUtf8 = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
  const res = await handler(signed(invalidUtf8));
  assert.equal(res.status, 400);
  assert.equal(store.calls, 0);
});

Deno.test("oversized body → 413 by content-length, and by streaming without one", async () => {
  const { handler, store } = setup({ maxBodyBytes: 4096 });
  const big = JSON.stringify({ for_user_id: BOT, pad: "x".repeat(5000), tweet_create_events: [] });
  const res = await handler(signed(big));
  assert.equal(res.status, 413);
  await res.body?.cancel();
  // Chunked, no content-length: counted while reading, and the stream is cancelled.
  let sent = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      sent += 1024;
      c.enqueue(new Uint8Array(1024).fill(0x20));
      if (sent > 1_000_000) c.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  const res2 = await handler(
    new Request(URL_BASE, {
      method: "POST",
      headers: { "x-twitter-webhooks-signature": signBody(SECRET, "x") },
      body: stream,
    }),
  );
  assert.equal(res2.status, 413);
  assert.ok(cancelled && sent < 10_000, `stopped early (read ${sent} bytes)`);
  // Exactly at the cap is fine.
  const atCap = JSON.stringify({ for_user_id: BOT, tweet_create_events: [] });
  const padded = atCap.slice(0, -1) + ',"pad":"' + "y".repeat(4096 - atCap.length - 9) + '"}';
  assert.equal(new TextEncoder().encode(padded).length, 4096);
  assert.equal((await handler(signed(padded))).status, 200);
  assert.equal(store.rows.size, 0);
});

Deno.test("the default cap is 1 MiB", async () => {
  const { handler } = setup();
  const res = await handler(signed('{"pad":"' + "z".repeat(1024 * 1024) + '"}'));
  assert.equal(res.status, 413);
  await res.body?.cancel();
});

Deno.test("other methods → 405", async () => {
  const { handler } = setup();
  for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"]) {
    const res = await handler(new Request(URL_BASE, { method }));
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, POST");
    await res.body?.cancel();
  }
});

// --- store failures ------------------------------------------------------------------------

class FailingStore implements ReplyStore {
  constructor(private readonly mode: "throw" | "hang") {}
  botUserId(): Promise<string | null> {
    return Promise.resolve(BOT);
  }
  insertReplies(_rows: ReplyRow[]): Promise<string[]> {
    return this.mode === "throw"
      ? Promise.reject(new Error("connect ECONNREFUSED postgresql://postgres:hunter2@db:5432/postgres"))
      : new Promise(() => {});
  }
}

Deno.test("store down: rows to store → 503 (X retries); nothing to store → 200", async () => {
  for (const mode of ["throw", "hang"] as const) {
    const logs = capture();
    const handler = createWebhookHandler({
      consumerSecret: SECRET,
      store: new FailingStore(mode),
      log: logs.log,
      storeTimeoutMs: 50,
    });
    const res = await handler(signed(delivery(post("plain_mention").v1)));
    assert.equal(res.status, 503, mode);
    await res.body?.cancel();
    const ignored = await handler(signed(delivery(post("own_post").v1)));
    assert.equal(ignored.status, 200, mode);
    await ignored.body?.cancel();
    assert.ok(!logs.lines.join("\n").includes("hunter2"), "connection strings are redacted");
  }
});

Deno.test("the exported handler without X_API_SECRET answers 503 and builds nothing", async () => {
  const saved = Deno.env.get("X_API_SECRET");
  Deno.env.delete("X_API_SECRET");
  try {
    const res = await envHandler(signed(delivery(post("plain_mention").v1)));
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { error: "x-webhook is not configured" });
  } finally {
    if (saved !== undefined) Deno.env.set("X_API_SECRET", saved);
  }
});

// --- fuzz ----------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("fuzz: random bodies and headers never give a 5xx, and nothing is stored without a valid signature", async () => {
  const seed = Number(Deno.env.get("CHIRPBASE_FUZZ_SEED") ?? "20261125");
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: T[]): T => xs[int(xs.length)];
  const samples = vectors.vectors.map((v) => v.v1);
  const randomBytes = (n: number): Uint8Array<ArrayBuffer> => Uint8Array.from({ length: n }, () => int(256));
  const randomText = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(int(0x3000))).join("");
  const mutate = (s: string): string => {
    const i = int(s.length + 1);
    switch (int(5)) {
      case 0:
        return s.slice(0, i) + s.slice(i + 1 + int(8));
      case 1:
        return s.slice(0, i) + pick(["{", "}", '"', ",", "[", "]", ":", "\\", "\u0000", "é"]) + s.slice(i);
      case 2:
        return s.slice(0, i);
      case 3: {
        // Valid JSON that Postgres text cannot hold (NUL) or UTF-8 cannot encode (a lone
        // surrogate), escaped inside a string value so it survives JSON.parse.
        const at = s.indexOf('"', i);
        if (at < 0) return s;
        return s.slice(0, at + 1) + pick(["\\u0000", "\\ud800", "\\udfff", "\\u0000\\u0000"]) +
          s.slice(at + 1);
      }
      default:
        return s.replaceAll(pick(["1", '"', "id_str", "user", BOT]), pick(["", "2", "null", '"x"']));
    }
  };
  const bodies: (() => string | Uint8Array<ArrayBuffer>)[] = [
    () => delivery(...Array.from({ length: 1 + int(3) }, () => pick(samples))),
    () => mutate(delivery(pick(samples))),
    () => mutate(mutate(delivery(pick(samples), pick(samples)))),
    () => randomBytes(int(300)),
    () => randomText(int(200)),
    () =>
      JSON.stringify(
        pick([null, 1, "s", [], {}, { tweet_create_events: {} }, { tweet_create_events: [1, null, "x"] }]),
      ),
    () =>
      JSON.stringify({
        for_user_id: pick([BOT, "1", 1, null, {}]),
        tweet_create_events: [{ ...pick(samples), user: pick([null, {}, 1]) }],
      }),
  ];
  const store = new MemoryReplyStore(BOT);
  const handler = createWebhookHandler({
    consumerSecret: SECRET,
    store,
    log: () => {},
    maxBodyBytes: 64 * 1024,
  });
  const statuses = new Map<number, number>();
  const CASES = 1500;
  for (let i = 0; i < CASES; i++) {
    const body = pick(bodies)();
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const valid = signBody(SECRET, bytes);
    const headerKind = int(7);
    const headers: Record<string, string> = {};
    if (headerKind === 1) headers["x-twitter-webhooks-signature"] = valid;
    else if (headerKind === 2) headers["x-twitter-webhooks-signature"] = signBody(SECRET + int(10), bytes);
    else if (headerKind === 3) {
      // (a header value must stay printable ASCII, or Request itself throws)
      headers["x-twitter-webhooks-signature"] = mutate(valid).replace(/[^\x20-\x7e]/g, "a");
    } else if (headerKind === 4) {
      headers["x-twitter-webhooks-signature"] = randomText(int(60)).replace(/[^\x20-\x7e]/g, "a");
    } else if (headerKind === 5) {
      headers["x-twitter-webhooks-signature"] = signBody(SECRET, mutate(new TextDecoder().decode(bytes)));
    } else if (headerKind === 6) {
      headers["x-twitter-webhooks-signature"] = valid.replace("sha256=", pick(["sha1=", "", "sha256:"]));
    }
    const isValid = headers["x-twitter-webhooks-signature"] === valid;
    const method = int(10) === 0 ? pick(["GET", "PUT", "DELETE"]) : "POST";
    const before = store.calls;
    const rowsBefore = store.rows.size;
    const req = method === "GET"
      ? new Request(`${URL_BASE}?crc_token=${encodeURIComponent(randomText(int(40)))}`)
      : new Request(URL_BASE, { method, headers, body: method === "POST" ? bytes : undefined });
    const res = await handler(req);
    await res.body?.cancel();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    const context = `seed ${seed}, case ${i}, header kind ${headerKind}, status ${res.status}`;
    assert.ok(res.status < 500, context);
    if (!(isValid && method === "POST")) {
      assert.equal(store.calls, before, `store touched without a valid signature (${context})`);
      assert.equal(store.rows.size, rowsBefore, context);
    }
  }
  // Every stored row is one the database can take and the worker can act on.
  for (const row of store.rows.values()) {
    const where = JSON.stringify(row).slice(0, 200);
    assert.match(row.reply_id, /^[0-9]{1,20}$/, where);
    assert.match(row.author_id, /^[0-9]{1,20}$/, where);
    assert.notEqual(row.author_id, BOT, where);
    assert.ok(row.original_tweet_id === null || /^[0-9]{1,20}$/.test(row.original_tweet_id), where);
    assert.equal(typeof row.content, "string", where);
    for (const value of Object.values(row)) {
      if (typeof value !== "string") continue;
      assert.ok(!value.includes("\u0000"), `NUL would fail the Postgres insert: ${where}`);
    }
  }
  // The fuzz must have exercised both the accepting and the refusing paths.
  assert.ok((statuses.get(200) ?? 0) > 20, JSON.stringify([...statuses]));
  assert.ok((statuses.get(401) ?? 0) + (statuses.get(403) ?? 0) > 100, JSON.stringify([...statuses]));
  assert.ok((statuses.get(400) ?? 0) > 10, JSON.stringify([...statuses]));
  assert.ok(store.rows.size > 0);
});

// --- over HTTP ------------------------------------------------------------------------------

Deno.test("served with Deno.serve: CRC, a delivery and an oversized chunked upload over real HTTP", async () => {
  const { handler, store } = setup({ maxBodyBytes: 64 * 1024 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const base = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const crc = await fetch(`${base}?crc_token=abc`);
    assert.equal(crc.status, 200);
    assert.match((await crc.json()).response_token, /^sha256=[A-Za-z0-9+/]{43}=$/);
    const body = delivery(post("plain_mention").v1);
    const ok = await fetch(base, {
      method: "POST",
      headers: { "x-twitter-webhooks-signature": signBody(SECRET, body) },
      body,
    });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).inserted, 1);
    let n = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ > 200) c.close();
        else c.enqueue(new Uint8Array(4096).fill(0x20));
      },
    });
    const big = await fetch(base, {
      method: "POST",
      headers: { "x-twitter-webhooks-signature": signBody(SECRET, "x") },
      body: stream,
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    assert.equal(store.rows.size, 1);
  } finally {
    await server.shutdown();
  }
});

// --- against Postgres ----------------------------------------------------------------------

const DB_URL = Deno.env.get("CHIRPBASE_TEST_DB_URL");

/** A throwaway database (a fresh clone per run): start from no replies and no like jobs. */
async function emptyReplies(sql: PostgresReplyStore["sql"]): Promise<void> {
  await sql`delete from public.jobs where kind = 'like_reply'`;
  await sql`delete from public.replies`;
}

/** The stored rows, in the shape of the vectors' rows (plus source and liked). */
function storedReplies(sql: PostgresReplyStore["sql"]): Promise<Record<string, unknown>[]> {
  return sql<Record<string, unknown>[]>`
    select reply_id, original_tweet_id, author_id, author_username, content,
           to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as created_at,
           conversation_id, mentions_account, quoted_tweet_id, lang, source, liked
    from public.replies order by reply_id`;
}

Deno.test({
  name: "postgres: rows land in public.replies, the trigger queues one like job each, replays add nothing",
  ignore: !DB_URL,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new PostgresReplyStore(DB_URL!);
    const sql = store.sql;
    try {
      await emptyReplies(sql);
      await sql`update public.x_account set user_id = ${BOT}, username = 'chirpbase_bot', webhook_last_event_at = null where id = 1`;
      // Likes exist only on Enterprise access, and only when auto_like is asked for.
      await sql`update public.configs set value = value || '{"plan": "enterprise"}'::jsonb where key = 'quotas'`;
      await sql`update public.configs set value = value || '{"auto_like": true}'::jsonb where key = 'engagement'`;
      assert.equal(await store.botUserId(), BOT);
      const handler = createWebhookHandler({ consumerSecret: SECRET, store, log: () => {} });
      const all = vectors.vectors.map((v) => v.v1);
      const body = delivery(...all);
      const t0 = performance.now();
      const res = await handler(signed(body));
      const ms = performance.now() - t0;
      const kept = vectors.vectors.filter((v) => v.expected !== null);
      assert.deepEqual(await res.json(), {
        ok: true,
        inserted: kept.length,
        duplicates: 0,
        skipped: vectors.vectors.length - kept.length,
      });
      console.log(`  delivery of ${all.length} posts handled in ${ms.toFixed(1)} ms`);

      const rows = await storedReplies(sql);
      assert.deepEqual(
        [...rows],
        kept.map((v) => ({ ...v.expected, ...v.expected_v1, source: "webhook", liked: false }))
          .sort((a, b) => a.reply_id!.localeCompare(b.reply_id!)),
      );
      const jobs = await sql<{ dedupe_key: string; kind: string; status: string }[]>`
        select dedupe_key, kind, status from public.jobs where kind = 'like_reply' order by dedupe_key`;
      assert.deepEqual(
        jobs.map((j) => j.dedupe_key),
        kept.map((v) => `like_reply:${v.expected!.reply_id}`).sort(),
      );
      assert.ok(jobs.every((j) => j.status === "queued"));
      const [acct] = await sql`select webhook_last_event_at from public.x_account where id = 1`;
      assert.ok(acct.webhook_last_event_at instanceof Date);

      // Replay, and the same delivery ten times at once: no new rows, no new jobs.
      const again = await Promise.all(Array.from({ length: 10 }, () => handler(signed(body))));
      for (const r of again) {
        assert.equal(r.status, 200);
        assert.equal((await r.json()).inserted, 0);
      }
      const [{ n: replies }] = await sql`select count(*)::int as n from public.replies`;
      const [{ n: likeJobs }] =
        await sql`select count(*)::int as n from public.jobs where kind = 'like_reply'`;
      assert.equal(replies, kept.length);
      assert.equal(likeJobs, kept.length);
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "postgres: concurrent first deliveries of one post insert it exactly once",
  ignore: !DB_URL,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new PostgresReplyStore(DB_URL!, { max: 8 });
    try {
      await store.sql`update public.x_account set user_id = ${BOT} where id = 1`;
      const v = structuredClone(post("plain_mention").v1);
      v.id_str = "1860000000000099999";
      const rows = Array.from({ length: 8 }, () =>
        store.insertReplies([
          {
            reply_id: v.id_str as string,
            original_tweet_id: null,
            author_id: "1700000000000000003",
            author_username: "bob_builds",
            content: "hi",
            created_at: null,
            conversation_id: null,
            mentions_account: true,
            quoted_tweet_id: null,
            lang: "en",
          },
        ]));
      const results = await Promise.all(rows);
      assert.equal(results.flat().length, 1, "exactly one insert won");
      const [{ n, c }] = await store.sql`
        select count(*)::int as n, bool_and(created_at is not null) as c from public.replies where reply_id = ${v
        .id_str as string}`;
      assert.equal(n, 1);
      assert.equal(c, true, "created_at defaults to the ingestion time when X gave none");
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "postgres: text Postgres cannot hold (NUL, lone surrogates) is cleaned, not a 503 forever",
  ignore: !DB_URL,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new PostgresReplyStore(DB_URL!);
    try {
      await store.sql`update public.x_account set user_id = ${BOT} where id = 1`;
      const hostile = structuredClone(post("plain_mention").v1);
      hostile.id_str = "1860000000000077777";
      const clean = structuredClone(post("plain_mention").v1);
      clean.id_str = "1860000000000077778";
      const user = { ...(hostile.user as Record<string, unknown>), screen_name: "nul\u0000name" };
      // JSON.stringify writes NUL as the \u0000 escape: valid JSON, as X could send it.
      const body = delivery(
        { ...hostile, user, text: "a\u0000b \ud800 c", full_text: undefined, extended_tweet: undefined },
        clean,
      );
      const handler = createWebhookHandler({ consumerSecret: SECRET, store, log: () => {} });
      const res = await handler(signed(body));
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await res.json()).inserted, 2);
      const [row] = await store.sql<{ content: string; author_username: string }[]>`
        select content, author_username from public.replies where reply_id = ${hostile.id_str as string}`;
      assert.equal(row.content, "ab \ufffd c");
      assert.equal(row.author_username, "nulname");
    } finally {
      await store.close();
    }
  },
});

Deno.test({
  name: "postgres: an XAA delivery delivered three times lands in public.replies once",
  ignore: !DB_URL,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new PostgresReplyStore(DB_URL!);
    const sql = store.sql;
    try {
      await emptyReplies(sql);
      await sql`update public.x_account set user_id = ${BOT} where id = 1`;
      const handler = createWebhookHandler({ consumerSecret: SECRET, store, log: () => {} });
      const c = xaa("mention_create");
      const body = JSON.stringify(c.delivery);
      for (let i = 0; i < 3; i++) assert.equal((await handler(signed(body))).status, 200);
      const rows = await storedReplies(sql);
      assert.deepEqual([...rows], [{ ...c.expected[0], source: "webhook", liked: false }]);
    } finally {
      await store.close();
    }
  },
});

/** This billing cycle's record of X Activity API deliveries, and the budget held for spend. */
async function eventUsage(sql: PostgresReplyStore["sql"]) {
  const [usage] = await sql<{ calls: number; units: number; cost: number }[]>`
    select coalesce(sum(calls), 0)::int as calls, coalesce(sum(units), 0)::int as units,
           coalesce(sum(estimated_cost_usd), 0)::float8 as cost
    from public.api_usage
    where month = public.current_month() and endpoint = 'activity_events'
      and operation = 'activity_event'`;
  const [spend] = await sql<{ used: number }[]>`
    select coalesce(sum(used), 0)::float8 as used from public.quota_usage
    where month = public.current_month() and resource = 'spend_usd'`;
  return { ...usage, spend: spend.used };
}

Deno.test({
  name: "postgres: X Activity API deliveries are priced into api_usage once per event (pay-per-use only)",
  ignore: !DB_URL,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const store = new PostgresReplyStore(DB_URL!);
    const sql = store.sql;
    try {
      await emptyReplies(sql);
      await sql`delete from public.api_usage where endpoint = 'activity_events'`;
      await sql`delete from public.x_billed_resources where kind = 'event'`;
      await sql`delete from public.quota_usage where resource = 'spend_usd'`;
      await sql`update public.x_account set user_id = ${BOT} where id = 1`;
      await sql`update public.configs set value = value || '{"plan": "pay_per_use"}'::jsonb where key = 'quotas'`;
      const handler = createWebhookHandler({ consumerSecret: SECRET, store, log: () => {} });
      const deliver = async (body: string) => {
        const res = await handler(signed(body));
        assert.equal(res.status, 200, await res.clone().text());
        await res.body?.cancel();
      };

      // A mention delivered three times (X redelivers): three calls, one billed event.
      const mention = JSON.stringify(xaa("mention_create").delivery);
      for (let i = 0; i < 3; i++) await deliver(mention);
      assert.deepEqual(await eventUsage(sql), { calls: 3, units: 1, cost: 0.005, spend: 0.005 });
      const [{ n }] = await sql`select count(*)::int as n from public.replies`;
      assert.equal(n, 1);

      // An event chirpbase ignores is still billed by X; one X does not bill is not recorded.
      await deliver(JSON.stringify(xaa("other_account").delivery));
      await deliver(JSON.stringify(xaa("post_delete").delivery));
      assert.deepEqual(await eventUsage(sql), { calls: 4, units: 2, cost: 0.01, spend: 0.01 });

      // The price is the pricing row's (an operator's edit applies at once).
      await sql`update public.configs set value = jsonb_set(value, '{x,activity_event}', '0.002') where key = 'pricing'`;
      await deliver(JSON.stringify(xaa("reply_create_without_includes").delivery));
      assert.deepEqual(await eventUsage(sql), { calls: 5, units: 3, cost: 0.012, spend: 0.012 });

      // Off pay-per-use X bills no event: the delivery is a call at $0.
      await sql`update public.configs set value = value || '{"plan": "enterprise"}'::jsonb where key = 'quotas'`;
      await deliver(JSON.stringify(xaa("long_post_mention").delivery));
      assert.deepEqual(await eventUsage(sql), { calls: 6, units: 3, cost: 0.012, spend: 0.012 });
    } finally {
      await sql`update public.configs set value = jsonb_set(value, '{x,activity_event}', '0.005') where key = 'pricing'`;
      await sql`update public.configs set value = value || '{"plan": "pay_per_use"}'::jsonb where key = 'quotas'`;
      await store.close();
    }
  },
});
