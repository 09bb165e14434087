"""What a check reports (status, detail, the fix), and the fixes themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

BUCKET = "generated-images"
CHECKS = (
    "env",
    "database",
    "migrations",
    "pg_cron",
    "realtime",
    "storage",
    "x",
    "x_access",
    "openai",
)
TITLES = {
    "env": "environment",
    "database": "database",
    "migrations": "migrations",
    "pg_cron": "pg_cron schedules",
    "realtime": "Realtime",
    "storage": "Storage bucket",
    "x": "X credentials",
    "x_access": "X access tier",
    "openai": "OpenAI key",
}
Status = Literal["ok", "fail", "skip"]

FIX_ENV = (
    "set them in the environment or .env (see .env.example), then run `chirpbase doctor` again"
)
FIX_DB = (
    "check DATABASE_URL (host, port, user, password, database); on Supabase use the direct "
    "connection or the session pooler (port 5432), not the transaction pooler (6543), and allow "
    "this host under Database → Network restrictions"
)
FIX_MIGRATIONS = "apply them: `supabase db push` (or `chirpbase db migrate`)"
FIX_CRON_MISSING_EXT = (
    "enable pg_cron (Supabase dashboard → Database → Extensions → pg_cron), then create the "
    "schedules: `select public.sync_schedules();`"
)
FIX_CRON_JOBS = (
    "create them: `select public.sync_schedules();` (as the role that ran the migrations)"
)
FIX_REALTIME = (
    "check SUPABASE_URL and SUPABASE_KEY (the service-role key) and that Realtime is enabled for "
    "the project; the worker still runs without it, polling every POLL_INTERVAL_S"
)
FIX_REALTIME_PUBLICATION = (
    "add the tables to the publication: `alter publication supabase_realtime add table "
    "public.jobs, public.configs;` (the migrations do this: `supabase db push`)"
)
FIX_BUCKET_MISSING = (
    "create it: `insert into storage.buckets (id, name, public) values ('generated-images', "
    "'generated-images', true) on conflict (id) do update set public = true;` "
    "(or `supabase db push`)"
)
FIX_BUCKET_PRIVATE = (
    "make it public (X fetches images by URL): `update storage.buckets set public = true "
    "where id = 'generated-images';`"
)
FIX_STORAGE_API = "check SUPABASE_URL and SUPABASE_KEY (the service-role key)"
FIX_X_AUTH = (
    "X rejected the credentials: check X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN and "
    "X_ACCESS_TOKEN_SECRET (developer portal → your app → Keys and tokens; the app needs Read "
    "and Write permission, and the access token must be regenerated after changing it)"
)
FIX_X_NETWORK = "cannot reach the X API: check network access and X_API_BASE_URL (if set)"
FIX_X_RATE = "X rate-limited or capped the call: wait for the reset (see `chirpbase status`)"
FIX_X_ACCESS = (
    "set configs.quotas.plan to the tier X gives this app (developer console → the project), "
    "or ask X for Enterprise access; the pause lifts when the plan changes"
)
# X's developer guidelines, "Automation rules" (docs.x.com/developer-guidelines).
AUTOMATED_LABEL = (
    "X requires automated accounts to show the 'Automated' profile label (account settings → "
    "your account → automation) and to say in the bio that it is a bot and who runs it "
    "(docs.x.com/developer-guidelines, Automation rules)"
)
FIX_OPENAI_AUTH = (
    "OpenAI rejected OPENAI_API_KEY: create a key at https://platform.openai.com/api-keys "
    "(and check OPENAI_BASE_URL, if set)"
)
FIX_OPENAI_QUOTA = "the OpenAI account is out of credit: add billing or raise its limit"
FIX_OPENAI_NETWORK = "cannot reach OpenAI: check network access and OPENAI_BASE_URL (if set)"
FIX_TIMEOUT = "it did not answer within {timeout:g}s: check the network path to it"


@dataclass
class Check:
    """One check's outcome."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def get(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{**asdict(c), "ok": c.ok, "title": c.title} for c in self.checks],
        }


class _Fail(Exception):
    """A failed check: `detail` and `fix`."""

    def __init__(self, detail: str, fix: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix
