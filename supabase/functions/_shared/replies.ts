/**
 * Which posts are replies to or mentions of the bot, and the `public.replies` row each becomes.
 *
 * Two paths feed `public.replies` and must produce the same rows for the same post:
 *   - the webhook (this repo's `x-webhook` edge function), in either of X's formats:
 *       X Activity API deliveries carry one event in `data` (`event_type`, `filter.user_id`,
 *       `payload` = an X API v2 Post object, `includes.users`) → {@link repliesFromActivity},
 *       which maps the Post with {@link replyFromV2};
 *       Account Activity API deliveries (deprecated by X) carry v1.1-style tweet objects in
 *       `tweet_create_events[]` → {@link replyFromV1};
 *   - the worker's `poll_mentions` job (Python: `worker/conversation/mentions.py`, used by
 *     `worker/jobs/poll_mentions.py`): X API v2 `GET /2/users/:id/mentions` → {@link replyFromV2},
 *     which this module also implements so the shared vectors in
 *     `tests/fixtures/reply_vectors.json` are checked from both languages.
 *
 * The rules, identical on both paths:
 *   - keep a post when it replies to the bot (`in_reply_to_user_id[_str]` = bot id) or mentions
 *     the bot (`entities.user_mentions[].id_str` / `entities.mentions[].id` = bot id);
 *   - drop the bot's own posts (`user.id_str` / `author_id` = bot id) and retweets
 *     (`retweeted_status` / `referenced_tweets[].type = "retweeted"`): a retweet is not a reply;
 *   - row fields:
 *       reply_id          the post id (`id_str` / `id`; never the numeric `id` of v1.1, which
 *                         loses precision in JSON number parsers)
 *       original_tweet_id the post it replies to (`in_reply_to_status_id_str` /
 *                         `referenced_tweets[type=replied_to].id`), null for a plain mention
 *       author_id         `user.id_str` / `author_id`
 *       author_username   `user.screen_name` / the `includes.users[]` entry of `author_id`
 *       content           the full text as X delivers it (`extended_tweet.full_text` ??
 *                         `full_text` ?? `text` / `note_tweet.text` ?? `text`), not trimmed and not
 *                         HTML-unescaped: both APIs escape `&`, `<`, `>` the same way
 *       created_at        the post time as ISO-8601 UTC with milliseconds
 *                         (`"2026-11-20T10:15:30.000Z"`); v1.1 `created_at` has whole seconds
 *                         like v2, so the instants agree. Null when X gave none (the database
 *                         then uses the ingestion time).
 *       conversation_id   v2 `conversation_id`. v1.1 objects carry none, so the webhook knows it
 *                         only for a post that replies to nothing (it starts its own
 *                         conversation: conversation_id = its own id) and leaves it null
 *                         otherwise; the vectors say so case by case (`expected_v1`).
 *       mentions_account  the post's mention entities name the bot (its text, its note, or the
 *                         handles X puts before a reply's text). A reply to the bot's post that
 *                         left the handle out is kept (it replies to the bot) but did not summon
 *                         it: X refuses a reply to it on self-serve access (integrate.mdx,
 *                         "Reply restrictions"), so no reply draft is written for it
 *       quoted_tweet_id   the post it quotes (`quoted_status_id_str` / `referenced_tweets`
 *                         `quoted`): a quote of the bot's post summons it too
 *       lang              X's language tag (`lang`, BCP 47, "und" when X could not tell), null
 *                         when absent or malformed
 *
 * One webhook-only filter: an Account Activity delivery of a mention by an account the bot has
 * blocked carries `user_has_blocked: true` next to `tweet_create_events` (X's own examples show
 * it as a string, so "true" counts too); its posts are dropped (v2 mentions carry no such flag).
 *
 * Everything here is pure and total: any JSON value in, a decision out, never an exception.
 */

/** One `public.replies` row, as both ingestion paths build it (source is set by the caller). */
export interface ReplyRow {
  reply_id: string;
  original_tweet_id: string | null;
  author_id: string;
  author_username: string | null;
  content: string;
  created_at: string | null;
  conversation_id: string | null;
  mentions_account: boolean;
  quoted_tweet_id: string | null;
  lang: string | null;
}

export type SkipReason =
  | "not_an_object"
  | "bad_id"
  | "bad_author"
  | "own_post"
  | "retweet"
  | "blocked_author"
  | "not_for_bot";

export type ReplyDecision = { row: ReplyRow; skip?: undefined } | { row?: undefined; skip: SkipReason };

type Obj = Record<string, unknown>;

const ID_RE = /^[0-9]{1,20}$/;
// A BCP 47 tag as X writes one ("en", "pt", "zh-cn", "und"); worker/conversation/mentions.py
// applies the same pattern.
const LANG_RE = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$/;
const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};
// v1.1: "Wed Nov 20 10:15:30 +0000 2026"
const V1_DATE_RE =
  /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})$/;
// v2: "2026-11-20T10:15:30.000Z" (any RFC 3339 instant is accepted)
const ISO_DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** X's language tag of a post, or null when absent or malformed. */
export function langOf(v: unknown): string | null {
  return typeof v === "string" && LANG_RE.test(v) ? v : null;
}

/** A snowflake id given as a string of digits; anything else is null. */
export function idOf(v: unknown): string | null {
  return typeof v === "string" && ID_RE.test(v) ? v : null;
}

/**
 * A string as Postgres text can hold it: lone surrogates (valid in JSON, not in UTF-8) become
 * U+FFFD and NUL is dropped. Without this one such post fails the whole delivery's insert, and
 * X redelivers it forever. worker/conversation/mentions.py cleans polled posts the same way.
 */
function str(v: unknown): string | null {
  return typeof v === "string" ? v.toWellFormed().replaceAll("\u0000", "") : null;
}

function validInstant(ms: number): string | null {
  if (!Number.isFinite(ms)) return null;
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  return y >= 2006 && y <= 9999 ? d.toISOString() : null;
}

/** v1.1 `created_at` ("Wed Nov 20 10:15:30 +0000 2026") → ISO-8601 UTC, or null. */
export function parseV1Date(v: unknown): string | null {
  if (typeof v !== "string") return null;
  const m = V1_DATE_RE.exec(v);
  if (!m) return null;
  const month = MONTHS[m[1]];
  if (month === undefined) return null;
  const [day, hh, mi, ss, year] = [m[2], m[3], m[4], m[5], m[9]].map(Number);
  if (day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 60) return null;
  const offset = (m[6] === "-" ? -1 : 1) * (Number(m[7]) * 60 + Number(m[8]));
  const ms = Date.UTC(year, month, day, hh, mi, ss) - offset * 60_000;
  return validInstant(ms);
}

/** v2 `created_at` (RFC 3339) → ISO-8601 UTC with milliseconds, or null. */
export function parseIsoDate(v: unknown): string | null {
  if (typeof v !== "string" || !ISO_DATE_RE.test(v)) return null;
  return validInstant(Date.parse(v));
}

// ---------------------------------------------------------------------------------------------
// v1.1 (Account Activity `tweet_create_events[]`)

/**
 * Decide whether one v1.1 tweet object from an Account Activity delivery is a reply to or a
 * mention of `botUserId`, and build its row.
 */
export function replyFromV1(tweet: unknown, botUserId: string): ReplyDecision {
  if (!isObj(tweet)) return { skip: "not_an_object" };
  const replyId = idOf(tweet.id_str);
  if (replyId === null) return { skip: "bad_id" };
  const user = isObj(tweet.user) ? tweet.user : null;
  const authorId = user ? idOf(user.id_str) : null;
  if (authorId === null || user === null) return { skip: "bad_author" };
  if (authorId === botUserId) return { skip: "own_post" };
  if (tweet.retweeted_status !== undefined && tweet.retweeted_status !== null) {
    return { skip: "retweet" };
  }

  const inReplyToUser = idOf(tweet.in_reply_to_user_id_str);
  const entities = isObj(tweet.entities) ? tweet.entities : null;
  const extended = isObj(tweet.extended_tweet) ? tweet.extended_tweet : null;
  const extendedEntities = extended && isObj(extended.entities) ? extended.entities : null;
  const mentions = [
    ...(entities && Array.isArray(entities.user_mentions) ? entities.user_mentions : []),
    ...(extendedEntities && Array.isArray(extendedEntities.user_mentions)
      ? extendedEntities.user_mentions
      : []),
  ];
  const mentionsBot = mentions.some((m) => isObj(m) && idOf(m.id_str) === botUserId);
  if (inReplyToUser !== botUserId && !mentionsBot) return { skip: "not_for_bot" };

  const originalTweetId = idOf(tweet.in_reply_to_status_id_str);
  const content = str(extended?.full_text) ?? str(tweet.full_text) ?? str(tweet.text) ?? "";
  let createdAt = parseV1Date(tweet.created_at);
  if (createdAt === null && typeof tweet.timestamp_ms === "string" && /^\d{1,16}$/.test(tweet.timestamp_ms)) {
    // Fall back to the delivery's millisecond timestamp, truncated to whole seconds like
    // created_at, so both paths still agree.
    createdAt = validInstant(Math.floor(Number(tweet.timestamp_ms) / 1000) * 1000);
  }
  return {
    row: {
      reply_id: replyId,
      original_tweet_id: originalTweetId,
      author_id: authorId,
      author_username: str(user.screen_name),
      content,
      created_at: createdAt,
      // v1.1 has no conversation_id; a post replying to nothing starts its own conversation.
      conversation_id: originalTweetId === null ? replyId : null,
      mentions_account: mentionsBot,
      quoted_tweet_id: idOf(tweet.quoted_status_id_str),
      lang: langOf(tweet.lang),
    },
  };
}

/** The result of reading one Account Activity delivery. */
export interface AccountActivityResult {
  /** `for_user_id` of the delivery (the subscribed account), when present and well formed. */
  forUserId: string | null;
  /** Whether the delivery has a `tweet_create_events` array at all. */
  hasTweetEvents: boolean;
  rows: ReplyRow[];
  skipped: { reply_id: string | null; reason: SkipReason }[];
}

/**
 * All replies/mentions for the bot in one Account Activity delivery (an already parsed JSON
 * value). Other event kinds (favorite_events, follow_events, direct_message_events, ...) are
 * ignored. Duplicate posts within one delivery yield one row.
 */
export function repliesFromAccountActivity(payload: unknown, botUserId: string): AccountActivityResult {
  const result: AccountActivityResult = { forUserId: null, hasTweetEvents: false, rows: [], skipped: [] };
  if (!isObj(payload)) return result;
  result.forUserId = idOf(payload.for_user_id);
  const events = payload.tweet_create_events;
  if (!Array.isArray(events)) return result;
  result.hasTweetEvents = true;
  const blocked = payload.user_has_blocked === true || payload.user_has_blocked === "true";
  const seen = new Set<string>();
  for (const tweet of events) {
    let decision = replyFromV1(tweet, botUserId);
    if (decision.row && blocked) decision = { skip: "blocked_author" };
    if (decision.row) {
      if (seen.has(decision.row.reply_id)) continue;
      seen.add(decision.row.reply_id);
      result.rows.push(decision.row);
    } else {
      result.skipped.push({ reply_id: isObj(tweet) ? idOf(tweet.id_str) : null, reason: decision.skip });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// X Activity API (XAA) webhook deliveries: x-api/activity/event-payloads.mdx

/** Why a whole XAA event gave no row (its post was never looked at). */
export type IgnoreReason = "not_an_event" | "not_a_post_event" | "other_account";

/** The result of reading one X Activity API delivery. */
export interface ActivityResult {
  /** `filter.user_id` of the first event (the subscribed account), when well formed. */
  forUserId: string | null;
  /** `event_type` of each event, in order (for logs). */
  eventTypes: string[];
  rows: ReplyRow[];
  skipped: { reply_id: string | null; reason: SkipReason }[];
  ignored: { event_type: string | null; reason: IgnoreReason }[];
}

/** Whether a parsed delivery body is in the X Activity API format (`data.event_type`). */
export function isActivityDelivery(payload: unknown): boolean {
  if (!isObj(payload)) return false;
  const data = payload.data;
  const first = Array.isArray(data) ? data[0] : data;
  return isObj(first) && typeof first.event_type === "string";
}

/** The events of an X Activity API delivery (`data`: one event, or an array of them). */
export function activityEvents(payload: unknown): unknown[] {
  if (!isObj(payload)) return [];
  // X documents one event per delivery in `data`; an array is read the same way, defensively.
  return Array.isArray(payload.data) ? payload.data : payload.data === undefined ? [] : [payload.data];
}

/** `filter.user_id` of a delivery's first event, or null. */
export function activityForUserId(payload: unknown): string | null {
  const first = activityEvents(payload)[0];
  return isObj(first) && isObj(first.filter) ? idOf(first.filter.user_id) : null;
}

/**
 * All replies/mentions for the bot in one X Activity API delivery (an already parsed JSON value).
 * Post events (`post.mention.create`, `post.reply.create`, and any other `post.*` but
 * `post.delete`) carry a v2 Post as `payload`, mapped by the same rules as the poll path
 * ({@link replyFromV2}); `includes.users` names the author when X sends it, either as user
 * objects or wrapped as `{"data": {...}}` (both appear in X's examples). Events for another
 * subscribed account and events that are not posts (likes, follows, DMs ...) are ignored. The
 * same post twice in one delivery yields one row.
 */
export function repliesFromActivity(payload: unknown, botUserId: string): ActivityResult {
  const result: ActivityResult = {
    forUserId: activityForUserId(payload),
    eventTypes: [],
    rows: [],
    skipped: [],
    ignored: [],
  };
  const seen = new Set<string>();
  for (const event of activityEvents(payload)) {
    if (!isObj(event) || typeof event.event_type !== "string") {
      result.ignored.push({ event_type: null, reason: "not_an_event" });
      continue;
    }
    const eventType = event.event_type;
    result.eventTypes.push(eventType);
    const filterUser = isObj(event.filter) ? idOf(event.filter.user_id) : null;
    if (filterUser !== null && filterUser !== botUserId) {
      result.ignored.push({ event_type: eventType, reason: "other_account" });
      continue;
    }
    if (!eventType.startsWith("post.") || eventType === "post.delete" || !isObj(event.payload)) {
      result.ignored.push({ event_type: eventType, reason: "not_a_post_event" });
      continue;
    }
    const includes = isObj(event.includes) ? event.includes : null;
    const users = includes && Array.isArray(includes.users)
      ? includes.users.map((u) => (isObj(u) && isObj(u.data) ? u.data : u))
      : [];
    const decision = replyFromV2(event.payload, users, botUserId);
    if (decision.row) {
      if (seen.has(decision.row.reply_id)) continue;
      seen.add(decision.row.reply_id);
      result.rows.push(decision.row);
    } else {
      result.skipped.push({ reply_id: idOf(event.payload.id), reason: decision.skip });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// v2 (`GET /2/users/:id/mentions`, the poll path): the reference the Python side mirrors.

/**
 * Decide for one X API v2 post object (with `tweet.fields=created_at,author_id,conversation_id,
 * in_reply_to_user_id,referenced_tweets,entities,note_tweet` and `expansions=author_id`) whether
 * it is a reply to or mention of `botUserId`, and build its row. `users` is the response's
 * `includes.users`.
 */
export function replyFromV2(tweet: unknown, users: unknown, botUserId: string): ReplyDecision {
  if (!isObj(tweet)) return { skip: "not_an_object" };
  const replyId = idOf(tweet.id);
  if (replyId === null) return { skip: "bad_id" };
  const authorId = idOf(tweet.author_id);
  if (authorId === null) return { skip: "bad_author" };
  if (authorId === botUserId) return { skip: "own_post" };
  const refs = Array.isArray(tweet.referenced_tweets) ? tweet.referenced_tweets.filter(isObj) : [];
  if (refs.some((r) => r.type === "retweeted")) return { skip: "retweet" };

  const inReplyToUser = idOf(tweet.in_reply_to_user_id);
  const entities = isObj(tweet.entities) ? tweet.entities : null;
  const noteTweet = isObj(tweet.note_tweet) ? tweet.note_tweet : null;
  const noteEntities = noteTweet && isObj(noteTweet.entities) ? noteTweet.entities : null;
  const mentions = [
    ...(entities && Array.isArray(entities.mentions) ? entities.mentions : []),
    ...(noteEntities && Array.isArray(noteEntities.mentions) ? noteEntities.mentions : []),
  ];
  const mentionsBot = mentions.some((m) => isObj(m) && idOf(m.id) === botUserId);
  if (inReplyToUser !== botUserId && !mentionsBot) return { skip: "not_for_bot" };

  const repliedTo = refs.find((r) => r.type === "replied_to");
  const quoted = refs.find((r) => r.type === "quoted");
  const author = Array.isArray(users) ? users.find((u) => isObj(u) && idOf(u.id) === authorId) : undefined;
  return {
    row: {
      reply_id: replyId,
      original_tweet_id: repliedTo ? idOf(repliedTo.id) : null,
      author_id: authorId,
      author_username: isObj(author) ? str(author.username) : null,
      content: str(noteTweet?.text) ?? str(tweet.text) ?? "",
      created_at: parseIsoDate(tweet.created_at),
      conversation_id: idOf(tweet.conversation_id),
      mentions_account: mentionsBot,
      quoted_tweet_id: quoted ? idOf(quoted.id) : null,
      lang: langOf(tweet.lang),
    },
  };
}
