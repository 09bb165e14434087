// The shared reply vectors (tests/fixtures/reply_vectors.json) through both mappings, plus the
// edge cases of the parsers. Run: scripts/deno.sh test --config supabase/functions/deno.json ...
import assert from "node:assert/strict";
import {
  activityForUserId,
  isActivityDelivery,
  parseIsoDate,
  parseV1Date,
  repliesFromAccountActivity,
  repliesFromActivity,
  replyFromV1,
  replyFromV2,
  type ReplyRow,
} from "./replies.ts";

interface Vector {
  name: string;
  v1: Record<string, unknown>;
  v2: { data: Record<string, unknown>; includes: { users: unknown[] } };
  expected: ReplyRow | null;
  expected_v1?: Partial<ReplyRow>;
  skip?: string;
}
interface XaaCase {
  name: string;
  from_vector?: string;
  delivery: Record<string, unknown>;
  expected: ReplyRow[];
  skipped: string[];
  ignored?: string[];
}
interface VectorFile {
  bot: { user_id: string; username: string };
  row_fields: string[];
  vectors: Vector[];
  xaa: XaaCase[];
}

const VECTORS_PATH = new URL("../../../tests/fixtures/reply_vectors.json", import.meta.url);
const file: VectorFile = JSON.parse(await Deno.readTextFile(VECTORS_PATH));
const BOT = file.bot.user_id;

Deno.test("vectors file is well formed", () => {
  assert.ok(file.vectors.length >= 10);
  const names = new Set(file.vectors.map((v) => v.name));
  assert.equal(names.size, file.vectors.length, "vector names are unique");
  for (const v of file.vectors) {
    if (v.expected === null) assert.ok(v.skip, `${v.name}: a dropped post names its reason`);
    else assert.deepEqual(Object.keys(v.expected).sort(), [...file.row_fields].sort(), v.name);
  }
  assert.ok(file.vectors.some((v) => v.expected === null), "has dropped posts");
  assert.ok(file.vectors.some((v) => v.expected?.original_tweet_id === null), "has plain mentions");
});

for (const v of file.vectors) {
  Deno.test(`vector ${v.name}: v1.1 (webhook) mapping`, () => {
    const decision = replyFromV1(v.v1, BOT);
    if (v.expected === null) {
      assert.equal(decision.row, undefined);
      assert.equal(decision.skip, v.skip);
    } else {
      assert.deepEqual(decision.row, { ...v.expected, ...(v.expected_v1 ?? {}) });
    }
  });

  Deno.test(`vector ${v.name}: v2 (poll) mapping`, () => {
    const decision = replyFromV2(v.v2.data, v.v2.includes.users, BOT);
    if (v.expected === null) {
      assert.equal(decision.row, undefined);
      assert.equal(decision.skip, v.skip);
    } else {
      assert.deepEqual(decision.row, v.expected);
    }
  });
}

Deno.test("both paths agree on every field but conversation_id", () => {
  for (const v of file.vectors) {
    const a = replyFromV1(v.v1, BOT).row;
    const b = replyFromV2(v.v2.data, v.v2.includes.users, BOT).row;
    assert.equal(a === undefined, b === undefined, v.name);
    if (a && b) assert.deepEqual({ ...a, conversation_id: null }, { ...b, conversation_id: null }, v.name);
  }
});

// --- X Activity API deliveries ---------------------------------------------------------------

Deno.test("xaa cases are well formed and cover the event kinds", () => {
  assert.ok(file.xaa.length >= 10);
  assert.equal(new Set(file.xaa.map((c) => c.name)).size, file.xaa.length, "names are unique");
  const types = new Set(
    file.xaa.flatMap((c) => {
      const data = c.delivery.data;
      return (Array.isArray(data) ? data : [data]).map((e) => (e as { event_type: string }).event_type);
    }),
  );
  for (const t of ["post.mention.create", "post.reply.create", "post.delete", "like.create"]) {
    assert.ok(types.has(t), t);
  }
});

for (const c of file.xaa) {
  Deno.test(`xaa ${c.name}: rows, skips and ignores`, () => {
    assert.equal(isActivityDelivery(c.delivery), true);
    const result = repliesFromActivity(c.delivery, BOT);
    assert.deepEqual(result.rows, c.expected);
    assert.deepEqual(result.skipped.map((s) => s.reason), c.skipped);
    assert.deepEqual(result.ignored.map((i) => i.reason), c.ignored ?? []);
  });
}

Deno.test("xaa rows equal the poll path's rows for the same post wherever the author is named", () => {
  let compared = 0;
  for (const c of file.xaa) {
    if (!c.from_vector || c.expected.length !== 1) continue;
    const v = file.vectors.find((x) => x.name === c.from_vector)!;
    const row = c.expected[0];
    const { author_username: _a, ...rest } = row;
    const { author_username: _b, ...polled } = v.expected!;
    assert.deepEqual(rest, polled, c.name);
    if (row.author_username !== null) {
      assert.equal(row.author_username, v.expected!.author_username, c.name);
      compared += 1;
    }
  }
  assert.ok(compared >= 4);
});

Deno.test("xaa: the two formats are told apart, and filter.user_id is the subscribed account", () => {
  const mention = file.xaa.find((c) => c.name === "mention_create")!.delivery;
  assert.equal(activityForUserId(mention), BOT);
  assert.equal(isActivityDelivery({ for_user_id: BOT, tweet_create_events: [] }), false);
  assert.equal(isActivityDelivery({ data: { id: "1" } }), false);
  assert.equal(isActivityDelivery({ data: [] }), false);
  assert.equal(activityForUserId({ data: { event_type: "x", filter: { user_id: 7 } } }), null);
});

Deno.test("xaa mapping is total: junk in, a result out", () => {
  const junk: unknown[] = [
    null,
    {},
    { data: null },
    { data: [null, 1, "x", { event_type: 5 }] },
    { data: { event_type: "post.mention.create" } },
    { data: { event_type: "post.mention.create", payload: [], filter: null } },
    { data: { event_type: "post.reply.create", payload: { id: "1" }, includes: { users: "no" } } },
    {
      data: {
        event_type: "post.reply.create",
        payload: { id: "1", author_id: "2" },
        includes: { users: [null, { data: 3 }] },
      },
    },
  ];
  for (const j of junk) {
    const r = repliesFromActivity(j, BOT);
    assert.deepEqual(r.rows, []);
  }
  assert.deepEqual(
    repliesFromActivity(junk[3], BOT).ignored.map((i) => i.reason),
    ["not_an_event", "not_an_event", "not_an_event", "not_an_event"],
  );
});

// --- Account Activity API deliveries -----------------------------------------------------------

Deno.test("a delivery with several posts keeps the ones for the bot, once each", () => {
  const posts = file.vectors.map((v) => v.v1);
  const result = repliesFromAccountActivity(
    { for_user_id: BOT, tweet_create_events: [...posts, posts[0]] },
    BOT,
  );
  assert.equal(result.forUserId, BOT);
  assert.equal(result.hasTweetEvents, true);
  const kept = file.vectors.filter((v) => v.expected !== null).map((v) => v.expected!.reply_id);
  assert.deepEqual(result.rows.map((r) => r.reply_id), kept);
  assert.equal(result.skipped.length, file.vectors.length - kept.length);
});

Deno.test("user_has_blocked drops the delivery's posts (boolean or string)", () => {
  const mention = file.vectors.find((v) => v.name === "plain_mention")!.v1;
  for (const flag of [true, "true"]) {
    const r = repliesFromAccountActivity(
      { for_user_id: BOT, user_has_blocked: flag, tweet_create_events: [mention] },
      BOT,
    );
    assert.deepEqual(r.rows, []);
    assert.deepEqual(r.skipped.map((s) => s.reason), ["blocked_author"]);
  }
  const ok = repliesFromAccountActivity(
    { for_user_id: BOT, user_has_blocked: "false", tweet_create_events: [mention] },
    BOT,
  );
  assert.equal(ok.rows.length, 1);
});

Deno.test("other event kinds carry no rows", () => {
  const r = repliesFromAccountActivity(
    { for_user_id: BOT, favorite_events: [{ id: "x", favorited_status: {}, user: {} }] },
    BOT,
  );
  assert.equal(r.hasTweetEvents, false);
  assert.deepEqual(r.rows, []);
});

Deno.test("ids come from id_str only, never the lossy numeric id", () => {
  const v = structuredClone(file.vectors[0].v1);
  delete v.id_str;
  assert.equal(replyFromV1(v, BOT).skip, "bad_id");
  const u = structuredClone(file.vectors[0].v1) as { user: Record<string, unknown> };
  delete u.user.id_str;
  assert.equal(replyFromV1(u, BOT).skip, "bad_author");
});

Deno.test("v1.1 created_at parsing", () => {
  assert.equal(parseV1Date("Fri Nov 20 10:15:30 +0000 2026"), "2026-11-20T10:15:30.000Z");
  assert.equal(parseV1Date("Fri Nov 20 10:15:30 +0130 2026"), "2026-11-20T08:45:30.000Z");
  assert.equal(parseV1Date("Fri Nov 20 10:15:30 -0500 2026"), "2026-11-20T15:15:30.000Z");
  for (
    const bad of [
      "",
      "2026-11-20",
      "Fri Foo 20 10:15:30 +0000 2026",
      "Fri Nov 20 25:15:30 +0000 2026",
      3,
      null,
    ]
  ) {
    assert.equal(parseV1Date(bad), null, String(bad));
  }
  assert.equal(parseIsoDate("2026-11-20T10:15:30.000Z"), "2026-11-20T10:15:30.000Z");
  assert.equal(parseIsoDate("2026-11-20T11:15:30+01:00"), "2026-11-20T10:15:30.000Z");
  assert.equal(parseIsoDate("yesterday"), null);
});

Deno.test("created_at falls back to timestamp_ms, truncated to seconds", () => {
  const v = structuredClone(file.vectors[1].v1);
  v.created_at = "garbage";
  assert.equal(replyFromV1(v, BOT).row?.created_at, file.vectors[1].expected!.created_at);
  delete v.timestamp_ms;
  assert.equal(replyFromV1(v, BOT).row?.created_at, null);
});

Deno.test("mappings are total: junk in, a decision out", () => {
  const junk: unknown[] = [
    null,
    undefined,
    0,
    "",
    "x",
    [],
    {},
    { id_str: 5 },
    { id_str: "1", user: null },
    { id_str: "1", user: { id_str: "2" }, entities: { user_mentions: "nope" } },
    { id_str: "1", user: { id_str: "2" }, entities: { user_mentions: [null, 1, { id_str: BOT }] }, text: 7 },
    { id_str: "1", user: { id_str: "2" }, extended_tweet: [], in_reply_to_user_id_str: BOT },
    {
      id: "1",
      author_id: "2",
      referenced_tweets: [null, "x", { type: "replied_to" }],
      in_reply_to_user_id: BOT,
    },
  ];
  for (const j of junk) {
    const a = replyFromV1(j, BOT);
    const b = replyFromV2(j, [null, 3], BOT);
    assert.ok(a.row || a.skip);
    assert.ok(b.row || b.skip);
    repliesFromAccountActivity({ tweet_create_events: [j, j] }, BOT);
    repliesFromAccountActivity(j, BOT);
  }
  const kept = replyFromV1(junk[10], BOT).row!;
  assert.equal(kept.content, "");
  assert.equal(kept.author_username, null);
});
