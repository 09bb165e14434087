"""A Supabase Storage-compatible HTTP API, backed by the real `storage` schema in Postgres.

`create_storage_app(dsn, public_base_url=...)` returns an aiohttp sub-application meant to be
mounted at `/storage/v1/` (the gateway does that; `create_app` does it for a standalone server),
so `supabase.acreate_client("http://host:port", key).storage` works against it unchanged.

What it copies from Supabase Storage (github.com/supabase/storage, `src/http/routes/object`,
`src/http/routes/bucket`, `src/storage/uploader.ts`, `src/internal/errors/codes.ts`,
`src/http/error-handler.ts`):

- Buckets are rows of `storage.buckets`; objects are rows of `storage.objects` (metadata
  `eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode`, a fresh
  `version` per write); the bytes live on disk, one file per version.
- Uploads: `POST /object/{bucket}/{name}` (create; `x-upsert: true` to overwrite) and
  `PUT /object/{bucket}/{name}` (always upsert), multipart (what the clients send: a `file`
  part plus `cacheControl`/`metadata` fields) or a raw body. The bucket's `allowed_mime_types`
  (with `type/*` wildcards) and `file_size_limit` are enforced, in the same order as the real
  server: bucket lookup, mime type, declared size, permission (RLS) and duplicate check, then
  the bytes.
- Permissions are Postgres's own: the check inserts the row inside a rolled-back transaction
  as the JWT's role (`set local role`, `request.jwt.claims`), so RLS decides exactly as it
  does on Supabase. With chirpbase's setup (RLS on, no policy) only `service_role` can write.
- Errors render like Storage: JSON `{"statusCode": "<code>", "code", "error", "message"}`
  with HTTP status 400 for every 4xx-class error and 500 for 500 (Storage's
  `userStatusCode`), e.g. a duplicate is HTTP 400 with `"statusCode": "409"`.
- Downloads: `GET /object/public/{bucket}/{name}` (no auth; public buckets only),
  `GET /object/authenticated/{bucket}/{name}`, `GET /object/{bucket}/{name}`, HEAD on each,
  `GET /object/info[/public|/authenticated]/{bucket}/{name}`; `ETag`, `Cache-Control`,
  `Last-Modified`, `If-None-Match` → 304, `?download`.
- `GET /bucket`, `GET /bucket/{id}`, `POST /object/list/{bucket}` (folder-style listing like
  `storage.search`), `DELETE /object/{bucket}` (`{"prefixes": [...]}`), `DELETE
  /object/{bucket}/{name}`.

Not implemented (clear `NotSupported` error): signed URLs, move/copy, image transformations,
TUS/S3 protocols, bucket creation through the API (buckets come from migrations).

Auth: the role comes from `Authorization: Bearer <jwt>` (or the `apikey` header when there is
no Authorization header), checked with `sandbox.keys.verify_key`. A present but invalid
`apikey` is refused with HTTP 401, as Supabase's API gateway does, rendered in Storage's error
shape so the storage client can parse it. Public object URLs need no key, as on Supabase.

Sandbox only: `StorageState` (in `app[STATE_KEY]`) records requests and can inject faults
(`fail_next`) so clients' retry paths can be tested.

The package, one module per concern: `errors` (Storage's error shape and codes), `state`
(`StorageState`, `STATE_KEY`), `auth` (the caller's role), `db` (transactions as that role,
lookups, rows as JSON), `uploads`, `downloads`, `objects` (delete, list and the other object
routes), `buckets`, `app` (middleware, routes, `create_storage_app`, `create_app`, `main`).
Every public name of every module is importable from the package; `__all__` lists the six
that `import *` gives.
"""

from __future__ import annotations

from sandbox.storage.app import create_app, create_storage_app, main
from sandbox.storage.app import log as log
from sandbox.storage.buckets import get_bucket as get_bucket
from sandbox.storage.buckets import list_buckets as list_buckets
from sandbox.storage.downloads import get_authenticated_object as get_authenticated_object
from sandbox.storage.downloads import get_object as get_object
from sandbox.storage.downloads import get_public_object as get_public_object
from sandbox.storage.errors import StorageError
from sandbox.storage.objects import create_object as create_object
from sandbox.storage.objects import delete_object as delete_object
from sandbox.storage.objects import delete_objects as delete_objects
from sandbox.storage.objects import list_objects as list_objects
from sandbox.storage.objects import not_supported as not_supported
from sandbox.storage.objects import update_object as update_object
from sandbox.storage.state import DEFAULT_MAX_UPLOAD_BYTES as DEFAULT_MAX_UPLOAD_BYTES
from sandbox.storage.state import STATE_KEY, StorageState
from sandbox.storage.uploads import MAX_USER_METADATA_BYTES as MAX_USER_METADATA_BYTES

__all__ = [
    "STATE_KEY",
    "StorageError",
    "StorageState",
    "create_app",
    "create_storage_app",
    "main",
]
