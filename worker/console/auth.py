"""The console's locks: the password, signed session cookies, CSRF tokens, the login rate limit.

- **Password**: one operator password, stored only as an argon2id hash in
  `CONSOLE_PASSWORD_HASH` (`chirpbase console hash-password` prints one). Verification runs in a
  thread: argon2 is slow on purpose and must not stall the worker's event loop.
- **Session**: a cookie `v1.<payload>.<signature>`, the payload (session id, issued, expires)
  signed with HMAC-SHA256. Nothing is stored server-side (the console holds no state): the
  signature and the expiry inside it are the whole check. The key comes from
  `CONSOLE_SESSION_SECRET`, or is derived from the service-role key and the password hash (so
  replicas agree, and changing the password ends every session). A forged, altered, expired or
  wrongly-versioned cookie is simply no session.
- **CSRF**: every state-changing request carries a token bound to its session (an HMAC of the
  session id under the same key, in a form field or the `X-CSRF-Token` header). The login form
  has one too, bound to a short-lived pre-login cookie, so a foreign page cannot log a browser in.
- **Rate limit**: failed logins per client address (5 per 15 minutes) and for all clients
  together (30 per 15 minutes, against guessing from many addresses), in this process's memory.
  A locked-out client gets 429 with `Retry-After` and its password is not even checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SESSION_COOKIE = "chirpbase_console"
LOGIN_COOKIE = "chirpbase_console_login"
LOGIN_COOKIE_TTL_S = 30 * 60
_COOKIE_VERSION = "v1"

_hasher = PasswordHasher()  # argon2id, argon2-cffi's defaults (RFC 9106's low-memory profile)


class ConsoleConfigError(Exception):
    """The console cannot be enabled as configured; the message says what to fix."""


def hash_password(password: str) -> str:
    """An argon2id hash for CONSOLE_PASSWORD_HASH."""
    if len(password) < 12:
        raise ValueError("use a password of at least 12 characters")
    return _hasher.hash(password)


def check_password_hash(encoded: str) -> None:
    """Refuse, at start-up, a CONSOLE_PASSWORD_HASH that is not an argon2 hash."""
    if not encoded.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
        raise ConsoleConfigError(
            "CONSOLE_PASSWORD_HASH is not an argon2 hash: create one with "
            "`chirpbase console hash-password`"
        )
    try:
        _hasher.check_needs_rehash(encoded)  # parses the parameters
    except (InvalidHashError, ValueError) as exc:
        raise ConsoleConfigError(f"CONSOLE_PASSWORD_HASH cannot be read ({exc})") from None


def verify_password(encoded: str, password: str) -> bool:
    """True when `password` matches; never raises for a wrong or malformed input."""
    try:
        return bool(_hasher.verify(encoded, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def derive_key(session_secret: str | None, service_key: str, password_hash: str) -> bytes:
    """The signing key: the configured secret, else HMAC(service-role key, password hash)."""
    if session_secret:
        if len(session_secret) < 32:
            raise ConsoleConfigError("CONSOLE_SESSION_SECRET must be at least 32 characters")
        return hashlib.sha256(b"chirpbase-console-session\0" + session_secret.encode()).digest()
    return hmac.new(
        service_key.encode(), b"chirpbase-console-session\0" + password_hash.encode(), "sha256"
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    sid: str
    issued_at: int
    expires_at: int


class Signer:
    """Issues and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, key: bytes, ttl_s: float):
        self._key = key
        self.ttl_s = int(ttl_s)

    def _mac(self, purpose: str, message: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\0{message}".encode(), "sha256").digest())

    def issue(self, now: float | None = None) -> tuple[str, Session]:
        now_s = int(now if now is not None else time.time())
        session = Session(secrets.token_urlsafe(18), now_s, now_s + self.ttl_s)
        payload = _b64(
            json.dumps(
                {"sid": session.sid, "iat": session.issued_at, "exp": session.expires_at},
                separators=(",", ":"),
            ).encode()
        )
        body = f"{_COOKIE_VERSION}.{payload}"
        return f"{body}.{self._mac('session', body)}", session

    def session(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie proves, or None (missing, forged, altered or expired)."""
        if not cookie or len(cookie) > 512:
            return None
        parts = cookie.split(".")
        if len(parts) != 3 or parts[0] != _COOKIE_VERSION:
            return None
        body = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(parts[2], self._mac("session", body)):
            return None
        try:
            data = json.loads(_unb64(parts[1]))
            session = Session(str(data["sid"]), int(data["iat"]), int(data["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        now_s = now if now is not None else time.time()
        if session.expires_at <= now_s or session.issued_at > now_s + 60:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    # The login form's token, bound to a random value in a short-lived cookie.
    def login_nonce(self) -> str:
        return secrets.token_urlsafe(18)

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token or len(nonce) > 64:
            return False
        return hmac.compare_digest(str(token), self.login_token(nonce))


@dataclass
class LoginLimiter:
    """Failed logins per client and overall, in a sliding window."""

    per_client: int = 5
    overall: int = 30
    window_s: float = 15 * 60
    _clients: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window_s:
            q.popleft()

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """Seconds until `client` may try again, or None when it may try now."""
        now = time.monotonic() if now is None else now
        self._trim(self._all, now)
        waits = []
        q = self._clients.get(client)
        if q is not None:
            self._trim(q, now)
            if not q:
                del self._clients[client]
            elif len(q) >= self.per_client:
                waits.append(q[0] + self.window_s - now)
        if len(self._all) >= self.overall:
            waits.append(self._all[0] + self.window_s - now)
        return max(waits) if waits else None

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._clients.setdefault(client, deque()).append(now)
        self._all.append(now)
        if len(self._clients) > 10_000:  # bounded memory under a flood of addresses
            for key in list(self._clients)[:1000]:
                del self._clients[key]

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
