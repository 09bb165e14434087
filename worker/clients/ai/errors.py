"""OpenAI's refusals as chirpbase sees them: each an AIError with a ``retryable`` flag.

Messages are redacted (never an API key) and the SDK's exception is not chained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    pass

from worker.clients.ai.limits import RateLimitInfo
from worker.clients.ai.pricing import Usage


class AIError(Exception):
    """Base of every error this client raises. ``retryable`` tells the handler whether running
    the job again later can help; ``retry_after`` (seconds) is the server's requested wait."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.attempts = attempts
        self.usage = usage

    def __str__(self) -> str:
        return self.message


class AIRateLimited(AIError):
    """429 rate limit (requests or tokens per minute) still hit after the bounded retries, or
    with a ``retry_after`` longer than the client sleeps through."""

    retryable = True

    def __init__(self, message: str, *, rate_limit: RateLimitInfo | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.rate_limit = rate_limit


class AIQuotaExhausted(AIError):
    """429 ``insufficient_quota``: the account is out of credit or over its budget. Retrying
    does not help until someone acts (alert the operator)."""

    retryable = False


class AIUnavailable(AIError):
    """5xx, timeout or connection failure after the bounded retries."""

    retryable = True

    def __init__(self, message: str, *, timeout: bool = False, **kw: Any):
        super().__init__(message, **kw)
        self.timeout = timeout


class AIBadRequest(AIError):
    """The request itself is wrong (400/404/422...): bad parameters, unknown model. Not
    retryable without a change (usually of config)."""

    retryable = False


class AIAuthError(AIError):
    """401/403: missing, wrong or revoked API key, or no access to the project/model."""

    retryable = False


class AIRefusal(AIError):
    """The model refused (``message.refusal``) or the output was stopped by the content filter.
    Tokens were billed: ``usage`` says how many."""

    retryable = False

    def __init__(self, message: str, *, refusal: str, reason: str = "refusal", **kw: Any):
        super().__init__(message, **kw)
        self.refusal = refusal
        self.reason = reason


class AIInvalidOutput(AIError):
    """The reply did not parse into the requested schema (truncated at the token limit,
    invalid JSON, failed validation). Billed; a new sample may succeed."""

    retryable = True

    def __init__(self, message: str, *, raw_content: str | None = None, reason: str, **kw: Any):
        super().__init__(message, **kw)
        self.raw_content = raw_content
        self.reason = reason
