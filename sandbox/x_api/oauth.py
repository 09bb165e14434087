"""OAuth 1.0a (RFC 5849) HMAC-SHA1 signature verification, as X does it for user context."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

_PARAM = re.compile(r'\s*([A-Za-z0-9_\-.~%]+)\s*=\s*"([^"]*)"\s*,?')


class OAuthError(Exception):
    """The request's OAuth 1.0a credentials are missing or wrong (answer 401)."""


@dataclass(frozen=True)
class OAuthParams:
    consumer_key: str
    token: str
    signature: str
    signature_method: str
    timestamp: str
    nonce: str
    version: str | None
    others: tuple[tuple[str, str], ...]  # oauth_* parameters that are signed


def percent_encode(value: str) -> str:
    """RFC 5849 section 3.6: UTF-8, then everything but unreserved characters escaped."""
    return quote(value.encode("utf-8"), safe="-._~")


def parse_authorization(header: str) -> OAuthParams:
    if not header.startswith("OAuth "):
        raise OAuthError("not an OAuth authorization header")
    params: dict[str, str] = {}
    rest = header[len("OAuth ") :]
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match:
            raise OAuthError("malformed OAuth authorization header")
        name, value = unquote(match.group(1)), unquote(match.group(2))
        if name in params:
            raise OAuthError(f"duplicate OAuth parameter {name}")
        params[name] = value
        position = match.end()
    params.pop("realm", None)
    try:
        signed = tuple((name, value) for name, value in params.items() if name != "oauth_signature")
        return OAuthParams(
            consumer_key=params["oauth_consumer_key"],
            token=params["oauth_token"],
            signature=params["oauth_signature"],
            signature_method=params["oauth_signature_method"],
            timestamp=params["oauth_timestamp"],
            nonce=params["oauth_nonce"],
            version=params.get("oauth_version"),
            others=signed,
        )
    except KeyError as missing:
        raise OAuthError(f"missing OAuth parameter {missing}") from None


def normalized_url(url: str) -> str:
    """RFC 5849 section 3.4.1.2: scheme and host lower case, default port dropped, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 section 3.4.1: METHOD & URL & sorted, encoded parameters."""
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in params)
    normalized_params = "&".join(f"{name}={value}" for name, value in encoded)
    return "&".join(
        (
            percent_encode(method.upper()),
            percent_encode(normalized_url(url)),
            percent_encode(normalized_params),
        )
    )


def hmac_sha1_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_signature(
    oauth: OAuthParams,
    *,
    method: str,
    url: str,
    request_params: Iterable[tuple[str, str]],
    consumer_secret: str,
    token_secret: str,
) -> bool:
    """True when ``oauth.signature`` signs this request (query + form body + oauth_*)."""
    if oauth.signature_method != "HMAC-SHA1":
        return False
    base = signature_base_string(method, url, [*request_params, *oauth.others])
    expected = hmac_sha1_signature(base, consumer_secret, token_secret)
    return hmac.compare_digest(expected.encode(), oauth.signature.encode())
