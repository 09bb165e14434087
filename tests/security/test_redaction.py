"""Redaction happens on values, before anything is serialized.

Replacing a secret in the final JSON line misses it whenever serialization changed its spelling:
a `"` becomes `\\"`, a `\\` becomes `\\\\`, non-ASCII becomes `\\uXXXX` (or stays raw, depending
on the serializer). A reader that parses the line gets the secret back. So logs, `/health`,
alerts and CLI output redact every string value first, then serialize; these secrets contain
exactly the characters that would slip through.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from loguru import logger
from typer.testing import CliRunner

from worker.logs import REDACTED, set_secrets, setup_logging

SECRETS = [
    'quote"inside-9f3a7c',
    "back\\slash\\inside-5be1c0",
    "non-ascii-wörd-ключ-🔑",
    'all"of\\them-ü\n-77d2',
]


def strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON document (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def assert_clean(text: str, secret: str) -> None:
    """`secret` is neither in `text` nor in any string of the JSON it holds (one document, or
    one per line)."""
    assert secret not in text
    try:
        documents = [json.loads(text)]
    except json.JSONDecodeError:
        documents = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert documents
    for document in documents:
        for s in strings(document):
            assert secret not in s, s


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    set_secrets([])
    setup_logging("INFO", stream=io.StringIO())


@pytest.mark.parametrize("secret", SECRETS)
def test_log_lines_carry_no_secret_in_any_field(secret: str) -> None:
    out = io.StringIO()
    setup_logging("DEBUG", secrets=[secret], stream=out)
    logger.info("token is {}", secret)
    logger.bind(token=secret, nested={"deep": [secret]}).warning("bound fields")
    try:
        raise ValueError(f"the API said no to {secret}")
    except ValueError:
        logger.exception("handler raised")
    with logger.contextualize(job=secret):
        logger.error("in context")
    text = out.getvalue()
    assert text.count("\n") == 4
    assert_clean(text, secret)
    records = [json.loads(line)["record"] for line in text.splitlines()]
    assert [r["message"] for r in records] == [
        f"token is {REDACTED}",
        "bound fields",
        "handler raised",
        "in context",
    ]
    assert records[1]["extra"]["token"] == REDACTED
    assert records[1]["extra"]["nested"] == {"deep": [REDACTED]}
    assert records[3]["extra"]["job"] == REDACTED
    assert "ValueError" in json.loads(text.splitlines()[2])["text"]  # the traceback is kept


@pytest.mark.parametrize("secret", SECRETS)
async def test_health_carries_no_secret(secret: str) -> None:
    from worker.runtime.health import create_health_app

    set_secrets([secret])
    body = {"config_rejected": {"alerts": f"webhook_url {secret} is not a URL"}, "id": secret}
    app = create_health_app(lambda: (False, body))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/health")
        text = await response.text()
    assert response.status == 503
    assert_clean(text, secret)
    assert json.loads(text)["config_rejected"]["alerts"] == f"webhook_url {REDACTED} is not a URL"


@pytest.mark.parametrize("secret", SECRETS)
def test_cli_json_output_carries_no_secret(
    secret: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.ops.cli.app import print_json

    set_secrets([secret])
    print_json({"last_error": f"boom {secret}", "rows": [{"note": secret}]})
    out = capsys.readouterr().out
    assert_clean(out, secret)
    assert json.loads(out)["rows"] == [{"note": REDACTED}]


def test_the_cli_knows_the_secrets_of_its_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """`chirpbase config show --json` of a value that contains a secret of the environment."""
    from worker.ops.cli import app

    secret = SECRETS[3]
    for name, value in {
        "X_API_KEY": "k" * 8,
        "X_API_SECRET": secret,
        "X_ACCESS_TOKEN": "t" * 8,
        "X_ACCESS_TOKEN_SECRET": "s" * 8,
        "X_BEARER_TOKEN": "b" * 8,
        "OPENAI_API_KEY": "o" * 8,
        "SUPABASE_URL": "http://127.0.0.1:9",
        "SUPABASE_KEY": "service" * 3,
        "DATABASE_URL": "postgresql://postgres:pw-unused@127.0.0.1:9/none",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env here
    from worker.ops.cli.app import load_settings

    load_settings()
    result = CliRunner().invoke(app, ["config", "check", "--json"], catch_exceptions=True)
    assert secret not in (result.stdout or "") + (result.stderr or "")
    from worker.logs import redact

    assert redact(f"x {secret} y") == f"x {REDACTED} y"


@pytest.mark.parametrize("secret", SECRETS)
async def test_alerts_raised_by_handlers_carry_no_secret(secret: str) -> None:
    from worker.jobs._x import alert

    written: list[dict[str, Any]] = []

    class Db:
        async def execute(self, name: str, params: dict[str, Any]) -> int:
            written.append(params)
            return 1

    set_secrets([secret])
    ctx = SimpleNamespace(services=SimpleNamespace(db=Db()))
    await alert(ctx, "critical", "x_auth", "x_auth", f"X said {secret}", detail=secret)  # type: ignore[arg-type]
    (params,) = written
    assert secret not in params["message"]
    assert secret not in json.dumps(params["details"].obj, ensure_ascii=False)
    assert params["details"].obj == {"detail": REDACTED}
