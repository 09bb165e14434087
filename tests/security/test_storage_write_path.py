"""The Storage stand-in's write path: nothing but the service-role key writes to generated-images.

Raw HTTP, the way anyone holding the project's public (anon) key could call it, against every
write route (create, upsert, update, delete, bulk delete, move/copy, bucket changes), with every
credential short of the service-role key: none, the anon key (as apikey and as bearer), a real
`authenticated` JWT, the service role's claims signed with another secret or with alg "none",
expired, or naming roles Storage does not know. Afterwards the bucket's rows, the stored bytes and
the public download are exactly as the service left them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiohttp import web

from sandbox.keys import ANON_KEY, SANDBOX_JWT_SECRET, SERVICE_ROLE_KEY, make_key
from sandbox.storage import create_app

BUCKET = "generated-images"
EXISTING = "tweets/2026/11/chart.png"
ORIGINAL = b"\x89PNG\r\n\x1a\n original bytes"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict[str, Any], claims: dict[str, Any], secret: str | None) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    if secret is None:
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(sig)


_NOW = int(time.time())
_SERVICE_CLAIMS = {"iss": "supabase", "ref": "sandbox", "role": "service_role", "exp": _NOW + 3600}


def _auth(key: str | None, apikey: str | None = None) -> dict[str, str]:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if apikey is not None:
        headers["apikey"] = apikey
    return headers


CREDENTIALS: dict[str, dict[str, str]] = {
    "no key": {},
    "anon key": _auth(ANON_KEY, ANON_KEY),
    "anon apikey only": _auth(None, ANON_KEY),
    "authenticated user": _auth(make_key("authenticated"), ANON_KEY),
    "service claims, other secret": _auth(make_key("service_role", secret="guessed"), ANON_KEY),
    "service claims, alg none": _auth(_jwt({"alg": "none", "typ": "JWT"}, _SERVICE_CLAIMS, None)),
    "service claims, expired": _auth(make_key("service_role", ttl_s=-60), ANON_KEY),
    "service key as apikey, anon bearer": _auth(ANON_KEY, SERVICE_ROLE_KEY),
    "role postgres": _auth(make_key("postgres"), ANON_KEY),
    "role supabase_admin": _auth(make_key("supabase_admin"), ANON_KEY),
    "role as a list": _auth(
        _jwt(
            {"alg": "HS256", "typ": "JWT"},
            {**_SERVICE_CLAIMS, "role": ["service_role"]},
            SANDBOX_JWT_SECRET,
        ),
        ANON_KEY,
    ),
    "service key, mangled": _auth(SERVICE_ROLE_KEY[:-2] + "xx", ANON_KEY),
}


def _writes(base: str) -> list[tuple[str, str, dict[str, Any]]]:
    obj = f"{base}/object/{BUCKET}"
    png: dict[str, Any] = {"content": b"\x89PNG evil", "headers": {"content-type": "image/png"}}
    return [
        ("POST", f"{obj}/evil/new.png", png),
        ("POST", f"{obj}/{EXISTING}", {**png, "headers": {**png["headers"], "x-upsert": "true"}}),
        ("PUT", f"{obj}/{EXISTING}", png),
        ("DELETE", f"{obj}/{EXISTING}", {}),
        ("DELETE", obj, {"json": {"prefixes": [EXISTING, "evil/new.png"]}}),
        ("POST", f"{base}/object/move", {"json": {"bucketId": BUCKET, "sourceKey": EXISTING,
                                                   "destinationKey": "evil/moved.png"}}),
        ("POST", f"{base}/object/copy", {"json": {"bucketId": BUCKET, "sourceKey": EXISTING,
                                                   "destinationKey": "evil/copy.png"}}),
        ("POST", f"{base}/bucket", {"json": {"id": "evil", "name": "evil", "public": True}}),
        ("PUT", f"{base}/bucket/{BUCKET}", {"json": {"public": False}}),
        ("DELETE", f"{base}/bucket/{BUCKET}", {}),
        ("POST", f"{base}/bucket/{BUCKET}/empty", {}),
    ]  # fmt: skip


@pytest.fixture
async def storage(dsn: str, tmp_path: Path) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(dsn, public_base_url=url, data_dir=tmp_path / "blobs")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"{url}/storage/v1"
    finally:
        await runner.cleanup()


def _rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select 'bucket', id, public::text, allowed_mime_types::text, file_size_limit::text"
        " from storage.buckets union all"
        " select 'object', bucket_id, name, version, metadata::text from storage.objects"
        " order by 1, 2, 3"
    ).fetchall()


async def test_only_the_service_role_key_writes(
    storage: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(
            f"{storage}/object/{BUCKET}/{EXISTING}",
            content=ORIGINAL,
            headers={**_auth(SERVICE_ROLE_KEY, SERVICE_ROLE_KEY), "content-type": "image/png"},
        )
        assert created.status_code == 200, created.text
        before = _rows(conn)
        blobs = sorted(
            (p.name, p.read_bytes()) for p in (tmp_path / "blobs").rglob("*") if p.is_file()
        )
        assert [b for _n, b in blobs] == [ORIGINAL]

        refused: dict[str, set[int]] = {}
        for name, headers in CREDENTIALS.items():
            for method, url, extra in _writes(storage):
                kwargs = {**extra, "headers": {**headers, **extra.get("headers", {})}}
                response = await http.request(method, url, **kwargs)
                if "json" in extra and "prefixes" in extra["json"]:
                    # Bulk delete answers like Supabase: 200 with what RLS let it delete.
                    ok = response.status_code >= 400 or response.json() == []
                else:
                    ok = response.status_code >= 400
                assert ok, (name, method, url, response.status_code, response.text)
                refused.setdefault(name, set()).add(response.status_code)

        assert _rows(conn) == before
        after = sorted(
            (p.name, p.read_bytes()) for p in (tmp_path / "blobs").rglob("*") if p.is_file()
        )
        assert after == blobs
        public = await http.get(f"{storage}/object/public/{BUCKET}/{EXISTING}")
        assert public.status_code == 200 and public.content == ORIGINAL

        # The control: the same routes do work with the service-role key.
        service = _auth(SERVICE_ROLE_KEY, SERVICE_ROLE_KEY)
        gone = await http.request(
            "DELETE", f"{storage}/object/{BUCKET}", json={"prefixes": [EXISTING]}, headers=service
        )
        assert gone.status_code == 200 and len(gone.json()) == 1
    assert set(refused) == set(CREDENTIALS)
