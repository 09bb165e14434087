"""The Storage stand-in, driven through the real supabase client, and ImageStore against it."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from aiohttp import web
from PIL import Image
from psycopg.rows import dict_row
from storage3.exceptions import StorageApiError

from sandbox.keys import ANON_KEY, SERVICE_ROLE_KEY, make_key
from sandbox.storage import STATE_KEY, StorageState, create_app
from supabase import AClientOptions, AsyncClient, acreate_client
from tests import pg
from worker.clients.storage import (
    BUCKET,
    ImageNotFound,
    ImageStore,
    ImageStoreRejected,
    ImageStoreUnavailable,
    StorageRetryPolicy,
)
from worker.content.images import fit_for_x

FIVE_MIB = 5 * 1024 * 1024
PRIVATE = "private-images"


@dataclass
class Stack:
    url: str
    dsn: str
    state: StorageState


@pytest.fixture(scope="module")
def storage_dsn() -> Iterator[str]:
    """A database of our own: bootstrap.sql plus the bucket rows the migrations insert."""
    pg.start_cluster()
    name = f"chirpbase_storage_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    pg.create_database(name)
    try:
        pg.bootstrap(name)
        with psycopg.connect(pg.admin_dsn(name), autocommit=True) as conn:
            conn.execute(
                "insert into storage.buckets (id, name, public, file_size_limit,"
                " allowed_mime_types) values ('generated-images', 'generated-images', true,"
                " 5242880, array['image/png','image/jpeg','image/webp','image/gif'])"
                " on conflict (id) do update set public = excluded.public,"
                " file_size_limit = excluded.file_size_limit,"
                " allowed_mime_types = excluded.allowed_mime_types"
            )
            conn.execute(
                "insert into storage.buckets (id, name, public) values (%s, %s, false)",
                (PRIVATE, PRIVATE),
            )
        yield pg.app_dsn(name)
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="module")
async def stack(storage_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(
        storage_dsn, public_base_url=url, data_dir=tmp_path_factory.mktemp("storage-data")
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield Stack(url=url, dsn=storage_dsn, state=app[STATE_KEY])
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _no_leftover_faults(stack: Stack) -> Iterator[None]:
    stack.state.clear_faults()
    yield
    stack.state.clear_faults()


async def _client(url: str, key: str, headers: dict[str, str] | None = None) -> AsyncClient:
    # Our own httpx client (as ImageStore does): no deprecated timeout/verify arguments.
    http = httpx.AsyncClient(timeout=10, follow_redirects=True)
    options = AClientOptions(httpx_client=http, headers=headers or {})
    return await acreate_client(url, key, options)


async def _close(client: AsyncClient) -> None:
    await client.storage.session.aclose()


@pytest.fixture
async def service(stack: Stack) -> AsyncIterator[AsyncClient]:
    client = await _client(stack.url, SERVICE_ROLE_KEY)
    yield client
    await _close(client)


@pytest.fixture
async def anon(stack: Stack) -> AsyncIterator[AsyncClient]:
    client = await _client(stack.url, ANON_KEY)
    yield client
    await _close(client)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def png(color: tuple[int, int, int] = (200, 30, 90), size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def unique(ext: str = "png") -> str:
    return f"tests/{uuid.uuid4().hex}.{ext}"


def options(content_type: str = "image/png", **extra: str) -> Any:
    # A fresh dict per call: storage3 pops keys out of it.
    return {"content-type": content_type, **extra}


async def object_row(dsn: str, name: str, bucket: str = BUCKET) -> dict[str, Any] | None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "select * from storage.objects where bucket_id = %s and name = %s", (bucket, name)
        )
        return await cur.fetchone()


def blob_count(state: StorageState) -> int:
    root = state.data_dir / "objects"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


# -- uploads and downloads through the supabase client -----------------------------------------


async def test_upload_with_upsert_then_public_download_returns_same_bytes(
    stack: Stack, service: AsyncClient, http: httpx.AsyncClient
) -> None:
    data = png()
    path = unique()
    bucket = service.storage.from_(BUCKET)
    uploaded = await bucket.upload(path, data, options(upsert="true"))
    assert uploaded.path == path
    assert uploaded.full_path == f"{BUCKET}/{path}"

    url = await bucket.get_public_url(path)
    assert url == f"{stack.url}/storage/v1/object/public/{BUCKET}/{path}"
    assert url == stack.state.public_url(BUCKET, path)
    response = await http.get(url)  # no key at all: public bucket
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "max-age=3600"
    etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert response.headers["etag"] == etag
    assert "last-modified" in response.headers

    cached = await http.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    head = await http.head(url)
    assert head.status_code == 200 and head.headers["etag"] == etag
    assert await bucket.download(path) == data  # authenticated route too


async def test_objects_row_written_and_refreshed_by_upsert(
    stack: Stack, service: AsyncClient, http: httpx.AsyncClient
) -> None:
    path = unique()
    bucket = service.storage.from_(BUCKET)
    first, second = png((1, 2, 3)), png((250, 250, 10), size=(80, 80))
    before = blob_count(stack.state)
    await bucket.upload(path, first, options(upsert="true", **{"cache-control": "600"}))

    row = await object_row(stack.dsn, path)
    assert row is not None
    meta = row["metadata"]
    assert meta["size"] == len(first) and meta["contentLength"] == len(first)
    assert meta["mimetype"] == "image/png"
    assert meta["eTag"] == f'"{hashlib.md5(first, usedforsecurity=False).hexdigest()}"'
    assert meta["cacheControl"] == "max-age=600"
    assert meta["lastModified"].endswith("Z")
    assert row["path_tokens"] == path.split("/")
    assert row["owner"] is None and row["version"]

    await bucket.upload(path, second, options(upsert="true"))
    again = await object_row(stack.dsn, path)
    assert again is not None
    assert again["id"] == row["id"]
    assert again["version"] != row["version"]
    assert again["metadata"]["size"] == len(second)
    assert (
        again["metadata"]["eTag"] == f'"{hashlib.md5(second, usedforsecurity=False).hexdigest()}"'
    )
    assert again["updated_at"] >= row["updated_at"]
    assert blob_count(stack.state) == before + 1  # the old version's bytes are gone
    # Bytes live under the server-made version id, never under the user-chosen name.
    assert stack.state.blob_path(again["version"]).read_bytes() == second
    assert not stack.state.blob_path(row["version"]).exists()
    assert (await http.get(await bucket.get_public_url(path))).content == second


async def test_file_size_limit_rejected_like_supabase(
    stack: Stack, service: AsyncClient, http: httpx.AsyncClient
) -> None:
    path = unique()
    bucket = service.storage.from_(BUCKET)
    before = blob_count(stack.state)
    with pytest.raises(StorageApiError) as caught:
        await bucket.upload(path, b"\x89PNG" + b"\0" * FIVE_MIB, options(upsert="true"))
    assert str(caught.value.status) == "413"
    assert caught.value.code == "Payload too large"
    assert caught.value.message == "The object exceeded the maximum allowed size"
    assert await object_row(stack.dsn, path) is None
    assert blob_count(stack.state) == before

    # Exactly at the limit is fine.
    await bucket.upload(path, b"\0" * FIVE_MIB, options(upsert="true"))

    # A raw (non-multipart) upload with a declared length over the limit: refused up front.
    response = await http.post(
        f"{stack.url}/storage/v1/object/{BUCKET}/{unique()}",
        content=b"\0" * (FIVE_MIB + 10),
        headers={
            "Authorization": f"Bearer {SERVICE_ROLE_KEY}",
            "apikey": SERVICE_ROLE_KEY,
            "Content-Type": "image/png",
        },
    )
    assert response.status_code == 400  # Storage's userStatusCode for 4xx errors
    assert response.json() == {
        "statusCode": "413",
        "code": "EntityTooLarge",
        "error": "Payload too large",
        "message": "The object exceeded the maximum allowed size",
    }


@pytest.mark.parametrize("mime", ["text/plain", "image/svg+xml", "application/octet-stream"])
async def test_wrong_mime_type_rejected(stack: Stack, service: AsyncClient, mime: str) -> None:
    path = unique("bin")
    with pytest.raises(StorageApiError) as caught:
        await service.storage.from_(BUCKET).upload(path, b"<svg/>", options(mime, upsert="true"))
    assert str(caught.value.status) == "415"
    assert caught.value.code == "invalid_mime_type"
    assert caught.value.message == f"mime type {mime} is not supported"
    assert await object_row(stack.dsn, path) is None


async def test_early_refusals_of_big_bodies_still_reach_the_client(
    stack: Stack, service: AsyncClient, anon: AsyncClient
) -> None:
    big = b"\0" * (4 * 1024 * 1024)
    with pytest.raises(StorageApiError) as caught:
        await service.storage.from_(BUCKET).upload(unique(), big, options("text/plain"))
    assert str(caught.value.status) == "415"
    with pytest.raises(StorageApiError) as caught:
        await anon.storage.from_(BUCKET).upload(unique(), big, options())
    assert str(caught.value.status) == "403"
    assert len(await service.storage.list_buckets()) >= 2  # the connection is still usable


async def test_upload_without_upsert_to_existing_path_conflicts(
    stack: Stack, service: AsyncClient
) -> None:
    path = unique()
    bucket = service.storage.from_(BUCKET)
    original = png((9, 9, 9))
    await bucket.upload(path, original, options())
    with pytest.raises(StorageApiError) as caught:
        await bucket.upload(path, png((8, 8, 8)), options())
    assert str(caught.value.status) == "409"
    assert caught.value.code == "Duplicate"
    assert caught.value.message == "The resource already exists"
    assert await bucket.download(path) == original

    replaced = png((7, 7, 7))
    await bucket.update(path, replaced, options())  # PUT always overwrites
    assert await bucket.download(path) == replaced


async def test_anon_key_cannot_upload_but_can_read_public(
    stack: Stack, service: AsyncClient, anon: AsyncClient, http: httpx.AsyncClient
) -> None:
    path = unique()
    with pytest.raises(StorageApiError) as caught:
        await anon.storage.from_(BUCKET).upload(path, png(), options(upsert="true"))
    assert str(caught.value.status) == "403"
    assert caught.value.code == "Unauthorized"
    assert caught.value.message == "new row violates row-level security policy"
    assert await object_row(stack.dsn, path) is None

    # Reading a public bucket needs no write permission; deleting is filtered by RLS.
    data = png((4, 5, 6))
    await service.storage.from_(BUCKET).upload(path, data, options())
    assert await anon.storage.from_(BUCKET).download(path) == data
    assert (await http.get(await anon.storage.from_(BUCKET).get_public_url(path))).content == data
    assert await anon.storage.from_(BUCKET).remove([path]) == []
    assert await object_row(stack.dsn, path) is not None


async def test_bad_keys_rejected(stack: Stack, http: httpx.AsyncClient) -> None:
    path = unique()
    forged = make_key("service_role", secret="not-the-project-secret")
    client = await _client(stack.url, forged)
    try:
        with pytest.raises(StorageApiError) as caught:
            await client.storage.from_(BUCKET).upload(path, png(), options(upsert="true"))
        assert str(caught.value.status) == "401"
        assert caught.value.message == "Invalid API key"
        with pytest.raises(StorageApiError):
            await client.storage.list_buckets()
    finally:
        await _close(client)

    # A valid apikey but a forged or expired user JWT: Storage's own AccessDenied.
    for bad_jwt, reason in (
        (forged, "invalid signature"),
        (make_key("service_role", ttl_s=-60), "expired"),
    ):
        client = await _client(stack.url, ANON_KEY, {"Authorization": f"Bearer {bad_jwt}"})
        try:
            with pytest.raises(StorageApiError) as caught:
                await client.storage.from_(BUCKET).upload(path, png(), options(upsert="true"))
            assert str(caught.value.status) == "403"
            assert caught.value.message == reason
        finally:
            await _close(client)
    assert await object_row(stack.dsn, path) is None


async def test_private_bucket_is_not_public(
    stack: Stack, service: AsyncClient, anon: AsyncClient, http: httpx.AsyncClient
) -> None:
    path = unique()
    data = png((0, 100, 0))
    await service.storage.from_(PRIVATE).upload(path, data, options())
    response = await http.get(await service.storage.from_(PRIVATE).get_public_url(path))
    assert response.status_code == 400
    assert response.json()["statusCode"] == "404"
    assert response.json()["error"] == "Bucket not found"
    assert await service.storage.from_(PRIVATE).download(path) == data
    with pytest.raises(StorageApiError) as caught:
        await anon.storage.from_(PRIVATE).download(path)  # RLS hides the row from anon
    assert str(caught.value.status) == "404"
    unauthenticated = await http.get(f"{stack.url}/storage/v1/object/{PRIVATE}/{path}")
    assert unauthenticated.status_code == 400
    assert unauthenticated.json()["error"] == "Bucket not found"


async def test_buckets_listed_by_role(service: AsyncClient, anon: AsyncClient) -> None:
    buckets = {b.id: b for b in await service.storage.list_buckets()}
    images = buckets[BUCKET]
    assert images.public is True
    assert images.file_size_limit == FIVE_MIB
    assert images.allowed_mime_types == ["image/png", "image/jpeg", "image/webp", "image/gif"]
    assert buckets[PRIVATE].public is False
    assert (await service.storage.get_bucket(BUCKET)).name == BUCKET
    assert await anon.storage.list_buckets() == []  # RLS on storage.buckets, no policy
    with pytest.raises(StorageApiError) as caught:
        await service.storage.get_bucket("no-such-bucket")
    assert str(caught.value.status) == "404" and caught.value.code == "Bucket not found"


async def test_exists_info_list_and_remove(stack: Stack, service: AsyncClient) -> None:
    folder = f"listing-{uuid.uuid4().hex[:8]}"
    bucket = service.storage.from_(BUCKET)
    for name in ("b.png", "a.png", "sub/c.png"):
        await bucket.upload(f"{folder}/{name}", png(), options(upsert="true"))

    assert await bucket.exists(f"{folder}/a.png") is True
    assert await bucket.exists(f"{folder}/missing.png") is False
    info = await bucket.info(f"{folder}/a.png")
    assert info["name"] == f"{folder}/a.png" and info["content_type"] == "image/png"
    assert info["size"] == len(png())

    listing = await bucket.list(folder)
    assert [entry["name"] for entry in listing] == ["a.png", "b.png", "sub"]
    assert listing[2]["id"] is None and listing[0]["metadata"]["mimetype"] == "image/png"
    assert [e["name"] for e in await bucket.list(folder, {"search": "b"})] == ["b.png"]
    assert [e["name"] for e in await bucket.list(folder, {"limit": 1, "offset": 1})] == ["b.png"]

    removed = await bucket.remove([f"{folder}/a.png", f"{folder}/nope.png"])
    assert [r["name"] for r in removed] == [f"{folder}/a.png"]
    assert await bucket.exists(f"{folder}/a.png") is False
    assert await object_row(stack.dsn, f"{folder}/a.png") is None
    assert await bucket.remove([f"{folder}/a.png"]) == []


async def test_missing_bucket_missing_object_and_unknown_route(
    stack: Stack, service: AsyncClient, http: httpx.AsyncClient
) -> None:
    with pytest.raises(StorageApiError) as caught:
        await service.storage.from_("no-such-bucket").upload(unique(), png(), options())
    assert str(caught.value.status) == "404" and caught.value.code == "Bucket not found"

    missing = await http.get(f"{stack.url}/storage/v1/object/public/{BUCKET}/{unique()}")
    assert missing.status_code == 400
    assert missing.json() == {
        "statusCode": "404",
        "code": "NoSuchKey",
        "error": "not_found",
        "message": "Object not found",
    }
    unknown = await http.get(f"{stack.url}/storage/v1/nothing/here")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "Not Found"
    assert unknown.json()["message"] == "Route GET:/storage/v1/nothing/here not found"


async def test_fault_injection_surfaces_as_storage_errors(
    stack: Stack, service: AsyncClient
) -> None:
    stack.state.fail_next(status=503)
    with pytest.raises(StorageApiError) as caught:
        await service.storage.list_buckets()
    assert str(caught.value.status) == "503"
    assert len(await service.storage.list_buckets()) >= 2  # one failure only


# -- ImageStore against the stand-in ----------------------------------------------------------


FAST_RETRY = StorageRetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0)


@pytest.fixture
async def store(stack: Stack) -> AsyncIterator[ImageStore]:
    image_store = ImageStore(stack.url, SERVICE_ROLE_KEY, retry=FAST_RETRY)
    yield image_store
    await image_store.aclose()


def requests_to(state: StorageState, method: str, fragment: str) -> int:
    return sum(1 for m, p in state.requests if m == method and fragment in p)


async def test_image_store_uploads_fitted_image(
    stack: Stack, store: ImageStore, http: httpx.AsyncClient
) -> None:
    fitted = fit_for_x(png((10, 200, 30), size=(300, 200)))
    url = await store.upload_image(fitted)
    assert url == stack.state.public_url(BUCKET, fitted.filename)
    response = await http.get(url)
    assert response.content == fitted.data
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "max-age=31536000"
    assert await store.exists(fitted.filename) is True
    assert await store.exists(f"missing/{uuid.uuid4().hex}.jpg") is False
    assert await store.download(fitted.filename) == (fitted.data, "image/jpeg")
    # Same name again: upsert, no conflict (and file_options are rebuilt per call).
    assert await store.upload_image(fitted) == url
    assert (await store.upload_png(unique(), png())).startswith(stack.url)


async def test_image_store_retries_5xx_and_dropped_connections(
    stack: Stack, store: ImageStore
) -> None:
    path = unique()
    stack.state.fail_next(2, status=503, method="POST", path_contains=path)
    await store.upload_png(path, png())
    assert requests_to(stack.state, "POST", path) == 3

    path = unique()
    stack.state.fail_next(1, method="POST", path_contains=path, disconnect=True)
    await store.upload_png(path, png())
    assert requests_to(stack.state, "POST", path) == 2
    assert (await object_row(stack.dsn, path)) is not None

    stack.state.fail_next(1, status=544, path_contains="/object/info/")
    assert await store.exists(path) is True


async def test_image_store_gives_up_after_bounded_retries(stack: Stack, store: ImageStore) -> None:
    path = unique()
    stack.state.fail_next(10, status=500, method="POST", path_contains=path)
    with pytest.raises(ImageStoreUnavailable) as caught:
        await store.upload_png(path, png())
    assert caught.value.retryable is True
    assert caught.value.attempts == 3 and caught.value.status == 500
    assert requests_to(stack.state, "POST", path) == 3
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_image_store_does_not_retry_rejections_or_leak_the_key(
    stack: Stack, store: ImageStore
) -> None:
    path = unique("txt")
    with pytest.raises(ImageStoreRejected) as caught:
        await store.upload(path, b"hello", "text/plain")
    assert caught.value.retryable is False and caught.value.status == 415
    assert requests_to(stack.state, "POST", path) == 1
    assert SERVICE_ROLE_KEY not in str(caught.value)
    assert "mime type text/plain is not supported" in str(caught.value)

    with pytest.raises(ImageNotFound):
        await store.download(f"missing/{uuid.uuid4().hex}.jpg")

    forged = make_key("service_role", secret="wrong-secret")
    bad = ImageStore(stack.url, forged, retry=FAST_RETRY)
    try:
        with pytest.raises(ImageStoreRejected) as caught:
            await bad.upload_png(unique(), png())
        assert caught.value.status == 401
        assert forged not in str(caught.value) and forged not in repr(bad)
    finally:
        await bad.aclose()


async def test_image_store_network_failure_is_retryable(stack: Stack) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    store = ImageStore(f"http://127.0.0.1:{dead_port}", SERVICE_ROLE_KEY, retry=FAST_RETRY)
    try:
        with pytest.raises(ImageStoreUnavailable) as caught:
            await store.upload_png(unique(), png())
        assert caught.value.retryable and caught.value.attempts == 3
        assert "ConnectError" in str(caught.value)
    finally:
        await store.aclose()
