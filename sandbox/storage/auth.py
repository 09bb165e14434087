"""Who is asking: the role from `Authorization: Bearer <jwt>` (or the `apikey` header), checked
with `sandbox.keys.verify_key` (`src/http/plugins/jwt.ts`, behind the API gateway's apikey
check, which refuses a present but invalid key with 401).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from sandbox.keys import InvalidKey, verify_key
from sandbox.storage.errors import StorageError, _access_denied

_KNOWN_ROLES = frozenset({"anon", "authenticated", "service_role"})
_BEARER = re.compile(r"^Bearer\s+", re.IGNORECASE)


@dataclass(frozen=True)
class _Principal:
    role: str
    claims: Mapping[str, object]
    authenticated: bool

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


_UNAUTHENTICATED = _Principal(role="anon", claims={"role": "anon"}, authenticated=False)


def _principal(request: web.Request, *, allow_invalid_jwt: bool = False) -> _Principal:
    """src/http/plugins/jwt.ts, behind the API gateway's apikey check."""
    apikey = request.headers.get("apikey")
    if apikey is not None:
        try:
            verify_key(apikey)
        except InvalidKey as exc:
            raise StorageError(
                401, "AccessDenied", "Invalid API key", "Unauthorized", http_status=401
            ) from exc

    auth = request.headers.get("Authorization", "")
    token = _BEARER.sub("", auth).strip() if auth else (apikey or "")
    if not token:
        if allow_invalid_jwt:
            return _UNAUTHENTICATED
        raise _access_denied("Invalid Compact JWS")
    try:
        claims = verify_key(token)
    except InvalidKey as exc:
        if allow_invalid_jwt:
            return _UNAUTHENTICATED
        raise _access_denied(str(exc)) from exc
    role = claims.get("role")
    if not isinstance(role, str) or role not in _KNOWN_ROLES:
        raise _access_denied("Access denied: Invalid role", http_status=403)
    return _Principal(role=role, claims=claims, authenticated=True)
