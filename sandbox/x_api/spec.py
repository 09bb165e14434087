"""The two namings of X's spec, and answers rendered in either.

openapi.json v2.167 (2026-08-22; the `xdevplatform/docs` repository) renamed, in the Post
schema and the responses that carry posts: ``retweet_count`` -> ``repost_count``
(PostPublicMetrics), ``referenced_tweets`` -> ``referenced_posts``, ``note_tweet`` ->
``note_post``, ``edit_history_tweet_ids`` -> ``edit_history_post_ids``, ``includes.tweets`` ->
``includes.posts`` (Expansions), and added the problem ``field-unauthorized``
(FieldUnauthorizedProblem: type, title, detail, field, resource_type, section; no resource id)
beside ``not-authorized-for-field``. v2.166 and the prose pages keep the old names. Which the
live API sends is not known, so the stand-in can answer in either (``XState.spec``), and
accepts the query parameter under both names (``tweet.fields`` / ``post.fields``).
"""

from __future__ import annotations

from typing import Any

_POST_KEYS = {
    "referenced_tweets": "referenced_posts",
    "note_tweet": "note_post",
    "edit_history_tweet_ids": "edit_history_post_ids",
}
_METRIC_KEYS = {"retweet_count": "repost_count"}


def _post(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    out = {_POST_KEYS.get(k, k): v for k, v in item.items()}
    for metrics in ("public_metrics", "organic_metrics", "non_public_metrics"):
        if isinstance(out.get(metrics), dict):
            out[metrics] = {_METRIC_KEYS.get(k, k): v for k, v in out[metrics].items()}
    return out


def respell(body: dict[str, Any], spec: str) -> dict[str, Any]:
    """``body`` (written with v2.166 names) in the naming of ``spec``."""
    if spec != "v2.167":
        return body
    out = dict(body)
    data = out.get("data")
    if isinstance(data, list):
        out["data"] = [_post(d) for d in data]
    elif isinstance(data, dict):
        out["data"] = _post(data)
    includes = out.get("includes")
    if isinstance(includes, dict) and "tweets" in includes:
        includes = dict(includes)
        includes["posts"] = [_post(p) for p in includes.pop("tweets")]
        out["includes"] = includes
    return out


def field_refused(
    spec: str, problem_base: str, *, field: str, tweet_id: str, parameter: str, section: str
) -> dict[str, Any]:
    """X's error for a private field the caller may not see, in the naming of ``spec``."""
    detail = (
        f"Sorry, you are not authorized to access '{field}' on the Tweet with "
        f"{parameter}: [{tweet_id}]."
    )
    if spec == "v2.167":
        return {
            "title": "Field Authorization Error",
            "detail": detail,
            "field": field,
            "resource_type": "tweet",
            "section": section,
            "type": f"{problem_base}/field-unauthorized",
        }
    return {
        "value": tweet_id,
        "detail": detail,
        "title": "Field Authorization Error",
        "resource_type": "tweet",
        "parameter": parameter,
        "field": field,
        "resource_id": tweet_id,
        "section": section,
        "type": f"{problem_base}/not-authorized-for-field",
    }
