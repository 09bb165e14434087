"""What every model endpoint of the OpenAI stand-in does around its own work.

`HandlerBase.run` records the request, checks `Authorization: Bearer` (401 with OpenAI's
messages), applies an injected fault (429 rate limit or quota, 500, 502 with a proxy's HTML
body, 503, a stall, a dropped connection), checks the body is a JSON object and the per-minute
request window, then calls the endpoint's producer and adds the rate-limit headers and latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.openai_api.errors import ApiError, format_reset
from sandbox.openai_api.params import _article, _type_name
from sandbox.openai_api.state import Fault, OpenAIState, RecordedRequest

STATE_KEY = web.AppKey("openai_state", OpenAIState)
_SHUTDOWN_KEY = web.AppKey("openai_shutdown", asyncio.Event)

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
    "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
    "through our help center at help.openai.com.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


_DROPPED = 599  # internal marker: the "disconnect" fault answered nothing


def _mask_key(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 12}{key[-4:]}"


class HandlerBase:
    """The app, its state, and the request cycle every endpoint shares."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    @property
    def state(self) -> OpenAIState:
        return self.app[STATE_KEY]

    async def _pause(self, seconds: float) -> None:
        """Sleep that ends early when the app shuts down (so cleanup never waits on it)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.app[_SHUTDOWN_KEY].wait(), timeout=seconds)

    async def run(
        self,
        request: web.Request,
        endpoint: str,
        produce: Callable[[Any, dict[str, str]], Awaitable[tuple[dict[str, Any], int]]],
        *,
        needs_body: bool = True,
    ) -> web.StreamResponse:
        st = self.state
        started = time.monotonic()
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers_seen = {
            k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"
        }
        rec = RecordedRequest(
            seq=st._next_seq(),
            endpoint=endpoint,
            method=request.method,
            path=request.path,
            headers=headers_seen,
            body=body,
            status=0,
            authorized=False,
            fault=None,
            at=time.time(),
        )
        st.requests.append(rec)
        request_id = "req_" + secrets.token_hex(16)
        base_headers = {"x-request-id": request_id, "openai-version": "2020-10-01"}
        response: web.StreamResponse
        try:
            response = await self._dispatch(
                request, endpoint, raw, body, rec, produce, base_headers, needs_body
            )
        except ApiError as exc:
            exc.headers = {**base_headers, **exc.headers}
            response = exc.response()
        status = 0 if response.status == _DROPPED else response.status
        if response.status < 400:
            response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
        await st._answered(rec, status)
        return response

    async def _dispatch(
        self,
        request: web.Request,
        endpoint: str,
        raw: bytes,
        body: Any,
        rec: RecordedRequest,
        produce: Callable[[Any, dict[str, str]], Awaitable[tuple[dict[str, Any], int]]],
        base_headers: dict[str, str],
        needs_body: bool,
    ) -> web.StreamResponse:
        st = self.state
        auth = request.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if not auth or scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, _NO_KEY)
        key = key.strip()
        if key not in st.api_keys:
            raise ApiError(
                401,
                f"Incorrect API key provided: {_mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        rec.authorized = True

        fault = st._take_fault(endpoint)
        if fault is not None:
            rec.fault = fault.kind
            faulted = await self._fault_response(request, fault, body, base_headers)
            if faulted is not None:
                return faulted

        if needs_body:
            if not raw or isinstance(body, str):
                raise ApiError(400, _BAD_JSON)
            if not isinstance(body, dict):
                raise ApiError(
                    400,
                    f"Invalid type for body: expected an object, but got "
                    f"{_article(_type_name(body))} instead.",
                    code="invalid_type",
                )
        rl_headers, exceeded = st._rate_window(0, count=False)
        if exceeded:
            model = body.get("model") if isinstance(body, dict) else None
            limit = st.requests_per_minute
            raise ApiError(
                429,
                f"Rate limit reached for {model or 'requests'} in organization org-sandbox on "
                f"requests per min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try "
                f"again in {rl_headers['x-ratelimit-reset-requests']}. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=rl_headers,
            )
        payload, tokens = await produce(body, base_headers)
        rl_headers, _ = st._rate_window(tokens, count=True)
        await self._pause(st.latency.get(endpoint, 0.0))
        return web.json_response(payload, headers={**base_headers, **rl_headers})

    async def _fault_response(
        self, request: web.Request, fault: Fault, body: Any, base_headers: dict[str, str]
    ) -> web.StreamResponse | None:
        st = self.state
        model = body.get("model") if isinstance(body, dict) else None
        if fault.kind == "rate_limit":
            wait = fault.retry_after if fault.retry_after is not None else 1.0
            rl_headers, _ = st._rate_window(0, count=False)
            headers = {
                **rl_headers,
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": format_reset(wait),
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(round(wait * 1000)),
            }
            raise ApiError(
                429,
                f"Rate limit reached for {model or 'requests'} in organization org-sandbox on "
                f"requests per min (RPM): Limit {st.requests_per_minute}, Used "
                f"{st.requests_per_minute}, Requested 1. Please try again in "
                f"{format_reset(wait)}. Visit https://platform.openai.com/account/rate-limits "
                "to learn more.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if fault.kind == "quota":
            raise ApiError(
                429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        if fault.kind == "server_error":
            raise ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
            )
        if fault.kind == "overloaded":
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(max(1, math.ceil(fault.retry_after)))
                headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            raise ApiError(
                503,
                "The engine is currently overloaded, please try again later.",
                type_="server_error",
                headers=headers,
            )
        if fault.kind == "bad_gateway":
            return web.Response(
                status=502, text=_BAD_GATEWAY_HTML, content_type="text/html", headers=base_headers
            )
        if fault.kind == "disconnect":
            # Drop the connection without a response; nothing can be written after this.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=_DROPPED)
        # "timeout": stall, then answer normally unless the client has given up meanwhile.
        await self._pause(st.hang_seconds)
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=_DROPPED)
        return None
