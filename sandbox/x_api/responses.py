"""X's response and error shapes on the stand-in, and the request helpers every handler uses.

The problem bodies X's v2 API answers with (x-api/fundamentals/response-codes-and-errors.mdx):
`{"title", "detail", "type", "status"}` problems (401 Unauthorized, the usage-capped 429 under
``XState.problem_base``, 429 Too Many Requests), 400 invalid-request with
`errors[].parameters`, and resource-not-found errors. The request helpers read ``tweet.fields``
also as ``post.fields`` (openapi.json v2.167 names the parameter so) and refuse a body that is
not a JSON object as X does.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.x_api import state as s

STATE_KEY = web.AppKey("x_state", s.XState)


AUTH_KEY = web.RequestKey("x_auth", str)  # "user" or "app" once authenticated


def respond(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, content_type="application/json")


def problem(
    status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any
) -> web.Response:
    return respond(
        {"title": title, "detail": detail, "type": type_, "status": status, **extra}, status
    )


def unauthorized() -> web.Response:
    return problem(401, "Unauthorized", "Unauthorized")


def invalid_request(errors: list[dict[str, Any]]) -> web.Response:
    return respond(
        {
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        },
        400,
    )


def _problem_type(request: web.Request, name: str) -> str:
    """A problem ``type`` URI under the host this stand-in answers with (XState.problem_base)."""
    return f"{state_of(request).problem_base}/{name}"


def param_error(name: str, value: str, message: str) -> web.Response:
    return invalid_request([{"parameters": {name: [value]}, "message": message}])


def not_found(resource_type: str, value: str, parameter: str) -> dict[str, Any]:
    kind = "tweet" if resource_type == "tweet" else resource_type
    return {
        "value": value,
        "detail": f"Could not find {kind} with {parameter}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }


def usage_capped(state: s.XState) -> web.Response:
    return respond(
        {
            "title": "UsageCapExceeded",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": f"{state.problem_base}/usage-capped",
            "period": "Monthly",
            "scope": "Product",
        },
        429,
    )


def too_many_requests() -> web.Response:
    return problem(429, "Too Many Requests", "Too Many Requests")


def state_of(request: web.Request) -> s.XState:
    return request.app[STATE_KEY]


def fields_param(request: web.Request, name: str) -> set[str]:
    raw = request.query.get(name, "")
    if name == "tweet.fields":  # openapi.json v2.167 names the parameter post.fields
        raw = ",".join(p for p in (raw, request.query.get("post.fields", "")) if p)
    return {part.strip() for part in raw.split(",") if part.strip()}


async def json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return invalid_request([{"message": "Request body is not valid JSON."}])
    if not isinstance(body, dict):
        return invalid_request([{"message": "Request body must be a JSON object."}])
    return body
