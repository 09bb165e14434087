"""API keys for the sandbox's Supabase gateway.

A Supabase project hands out two JWTs signed with the project's JWT secret: the `anon` key and
the `service_role` key. The sandbox does the same with a fixed, clearly fake secret so the real
supabase client can be pointed at it and the gateway can tell the two roles apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

SANDBOX_JWT_SECRET = "chirpbase-sandbox-jwt-secret-not-for-production"


class InvalidKey(Exception):
    """The presented key is not a JWT signed with the sandbox secret."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_key(role: str, secret: str = SANDBOX_JWT_SECRET, ttl_s: int = 10 * 365 * 86400) -> str:
    """Return an HS256 JWT for `role`, shaped like the keys a Supabase project issues."""
    header = {"alg": "HS256", "typ": "JWT"}
    now = int(time.time())
    claims = {"iss": "supabase", "ref": "sandbox", "role": role, "iat": now, "exp": now + ttl_s}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


def verify_key(token: str, secret: str = SANDBOX_JWT_SECRET) -> dict[str, object]:
    """The claims of a valid key; InvalidKey otherwise (bad shape, signature, expiry)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidKey("malformed JWT")
    signing_input = (parts[0] + "." + parts[1]).encode()
    expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    try:
        given = _b64url_decode(parts[2])
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, json.JSONDecodeError) as exc:
        raise InvalidKey("malformed JWT") from exc
    if not hmac.compare_digest(expected, given):
        raise InvalidKey("invalid signature")
    if not isinstance(claims, dict) or "role" not in claims:
        raise InvalidKey("no role claim")
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp < time.time():
        raise InvalidKey("expired")
    return claims


SERVICE_ROLE_KEY = make_key("service_role")
ANON_KEY = make_key("anon")
