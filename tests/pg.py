"""Tests use the local stack helpers from sandbox.localdb (one cluster, a clone per test)."""

from sandbox.localdb import (  # noqa: F401
    BOOTSTRAP,
    HOST,
    PORT,
    ROOT,
    TemplateDB,
    admin_dsn,
    app_dsn,
    bootstrap,
    build_template,
    create_database,
    drop_database,
    ensure_cron_database,
    start_cluster,
)
