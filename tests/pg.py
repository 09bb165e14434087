"""Tests use the local stack helpers from sandbox.localdb (one cluster, a clone per test)."""

from sandbox.localdb import (  # noqa: F401
    BOOTSTRAP,
    HOST,
    PORT,
    ROOT,
    SupabaseCliError,
    TemplateDB,
    admin_dsn,
    app_dsn,
    bootstrap,
    build_template,
    cli_url,
    create_database,
    db_push,
    drop_database,
    ensure_cron_database,
    migration_list,
    start_cluster,
    supabase,
)
