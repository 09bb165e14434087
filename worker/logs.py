"""Structured JSON logs (loguru) with every secret redacted wherever it would appear.

Redaction happens on values, before anything is serialized: the message, every bound or
contextual field (nested ones too) and the traceback are redacted, then the JSON line is built.
Replacing secrets in the finished line alone is not enough: serializing changes how a secret is
spelled (`"` becomes `\\"`, `\\` becomes `\\\\`, non-ASCII may become `\\uXXXX`), and a reader
that parses the line gets it back. The finished line is scanned once more, for those escaped
spellings too, as a second net. The same `redact_value` serves `/health`, alerts and the CLI.
Standard-library logging from the client libraries is routed through the same sink.
"""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from loguru import logger

REDACTED = "[REDACTED]"
_secrets: list[str] = []

_TEXT_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def _spellings(secret: str) -> set[str]:
    """`secret` as it reads raw and once escaped by JSON or the Prometheus text format."""
    return {
        secret,
        jsonlib.dumps(secret)[1:-1],
        jsonlib.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"'),
    }


def set_secrets(values: Iterable[str]) -> None:
    """Register the values to redact (longest first, so overlapping secrets redact fully)."""
    forms = {form for v in values if v and len(v) >= 4 for form in _spellings(v)}
    _secrets[:] = sorted(forms, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every registered secret in `text` (raw or escaped)."""
    for s in _secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def redact_value(value: Any) -> Any:
    """`value` with every string in it redacted (dicts, lists and tuples walked, keys too):
    what to serialize instead of `value`."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def _redact_record(record: Any) -> None:
    """loguru patcher: redact the message and every extra field before any sink sees them."""
    record["message"] = redact(record["message"])
    for key, value in list(record["extra"].items()):
        record["extra"][key] = redact_value(value)


def _serialize(record: Any, text: str) -> str:
    """One JSON line, in loguru's own `serialize=True` shape, from redacted values."""
    exception = record["exception"]
    if exception is not None:
        exception = {
            "type": None if exception.type is None else exception.type.__name__,
            "value": redact(str(exception.value)),
            "traceback": bool(exception.traceback),
        }
    serializable = {
        "text": text,
        "record": {
            "elapsed": {
                "repr": str(record["elapsed"]),
                "seconds": record["elapsed"].total_seconds(),
            },
            "exception": exception,
            "extra": record["extra"],  # redacted by the patcher
            "file": {"name": record["file"].name, "path": record["file"].path},
            "function": record["function"],
            "level": {
                "icon": record["level"].icon,
                "name": record["level"].name,
                "no": record["level"].no,
            },
            "line": record["line"],
            "message": record["message"],  # redacted by the patcher
            "module": record["module"],
            "name": record["name"],
            "process": {"id": record["process"].id, "name": record["process"].name},
            "thread": {"id": record["thread"].id, "name": record["thread"].name},
            "time": {"repr": str(record["time"]), "timestamp": record["time"].timestamp()},
        },
    }
    return jsonlib.dumps(serializable, default=str, ensure_ascii=False) + "\n"


class _RedactingSink:
    def __init__(self, stream: TextIO, *, json: bool):
        self.stream = stream
        self.json = json

    def write(self, message: Any) -> None:
        text = redact(str(message))  # the formatted line, with its traceback if any
        line = _serialize(message.record, text) if self.json else text
        self.stream.write(redact(line))
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
    logger.configure(extra=extra or {}, patcher=_redact_record)
    logger.add(
        _RedactingSink(stream or sys.stderr, json=json),
        level=level,
        format=_TEXT_FORMAT,
        colorize=False,
        backtrace=False,
        diagnose=False,
        enqueue=False,
        catch=True,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    for noisy in ("httpx", "httpcore", "websockets", "realtime", "hpack", "urllib3", "tweepy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
