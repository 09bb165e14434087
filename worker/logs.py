"""Structured JSON logs (loguru) with every secret redacted wherever it would appear.

Redaction happens on the final serialized line, so secrets in messages, bound fields and
tracebacks alike are replaced. Standard-library logging from the client libraries is routed
through the same sink.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from loguru import logger

REDACTED = "[REDACTED]"
_secrets: list[str] = []


def set_secrets(values: Iterable[str]) -> None:
    """Register the values to redact (longest first, so overlapping secrets redact fully)."""
    _secrets[:] = sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every registered secret in `text`."""
    for s in _secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


class _RedactingSink:
    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, message: str) -> None:
        self.stream.write(redact(message))
        self.stream.flush()


class _InterceptHandler(logging.Handler):
    """Send stdlib log records to loguru (and so through redaction)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).bind(logger_name=record.name).log(
            level, record.getMessage()
        )


def setup_logging(
    level: str = "INFO",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    json: bool = True,
    extra: dict[str, Any] | None = None,
) -> None:
    """Configure loguru once for the process: JSON lines on stderr, secrets redacted."""
    set_secrets(secrets)
    logger.remove()
    logger.configure(extra=extra or {})
    logger.add(
        _RedactingSink(stream or sys.stderr),
        level=level,
        serialize=json,
        backtrace=False,
        diagnose=False,
        enqueue=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    for noisy in ("httpx", "httpcore", "websockets", "realtime", "hpack", "urllib3", "tweepy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
