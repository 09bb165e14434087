"""`GET /v1/models[/{model}]`, the 404 for other `/v1` paths, and the unauthenticated
`/_sandbox/...` control endpoints that mirror `OpenAIState` for processes outside the tests.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.openai_api.catalog import DEFAULT_REFUSAL
from sandbox.openai_api.errors import error_response
from sandbox.openai_api.handlers import HandlerBase
from sandbox.openai_api.params import _model_error
from sandbox.openai_api.state import ChatScript, RawContent, Refusal


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


class ControlHandlers(HandlerBase):
    """The models endpoints and the sandbox control endpoints."""

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        async def produce(_b: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
            st = self.state
            names = sorted(st.chat_models | st.image_models | st.moderation_models)
            return {"object": "list", "data": [_model_obj(m) for m in names]}, 0

        return await self.run(request, "models", produce, needs_body=False)

    async def get_model(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["model"]

        async def produce(_b: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
            if not self.state._known_model(name):
                raise _model_error(name, "models", self.state)
            return _model_obj(name), 0

        return await self.run(request, "models", produce, needs_body=False)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return error_response(
            404,
            f"Invalid URL ({request.method} {request.path})",
            code=None,
        )

    # -- control -------------------------------------------------------------------------------
    async def ctl_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.summary())

    async def ctl_reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response(self.state.summary())

    async def ctl_requests(self, request: web.Request) -> web.Response:
        endpoint = request.query.get("endpoint")
        return web.json_response(
            {"requests": [r.to_json() for r in self.state.requests_for(endpoint)]}
        )

    async def ctl_clear_requests(self, request: web.Request) -> web.Response:
        self.state.clear_requests()
        return web.json_response({"requests": []})

    async def _ctl_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text="body must be JSON") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    async def ctl_chat_queue(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        items: list[ChatScript] = []
        for item in body.get("items", []):
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, dict) and "refusal" in item:
                items.append(Refusal(str(item["refusal"] or DEFAULT_REFUSAL)))
            elif isinstance(item, dict) and "raw" in item:
                items.append(RawContent(str(item["raw"])))
            elif isinstance(item, dict) and "content" in item:
                items.append(item["content"])
            else:
                raise web.HTTPBadRequest(
                    text="items are strings or {refusal: str} | {raw: str} | {content: json}"
                )
        self.state.queue_chat(*items)
        return web.json_response(self.state.summary())

    async def ctl_refuse(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        self.state.refuse_next(int(body.get("count", 1)), str(body.get("message", DEFAULT_REFUSAL)))
        return web.json_response(self.state.summary())

    async def ctl_flagged_terms(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        if body.get("replace"):
            self.state.flagged_terms.clear()
        terms = body.get("terms", [])
        try:
            if isinstance(terms, dict):
                self.state.flag_terms({str(k): str(v) for k, v in terms.items()})
            else:
                self.state.flag_terms(
                    [str(t) for t in terms], str(body.get("category", "harassment"))
                )
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_latency(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        try:
            self.state.set_latency(**{str(k): float(v) for k, v in body.items()})
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_faults(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        retry_after = body.get("retry_after")
        try:
            self.state.inject_fault(
                body.get("kind", "server_error"),
                int(body.get("count", 1)),
                endpoint=body.get("endpoint"),
                retry_after=float(retry_after) if retry_after is not None else None,
            )
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_config(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        st = self.state
        if "hang_seconds" in body:
            st.hang_seconds = float(body["hang_seconds"])
        if "requests_per_minute" in body:
            st.requests_per_minute = max(1, int(body["requests_per_minute"]))
        if "tokens_per_minute" in body:
            st.tokens_per_minute = max(1, int(body["tokens_per_minute"]))
        for key, target in (
            ("chat_models", st.chat_models),
            ("image_models", st.image_models),
            ("moderation_models", st.moderation_models),
            ("api_keys", st.api_keys),
        ):
            if key in body:
                target.update(str(v) for v in body[key])
        return web.json_response(st.summary())
