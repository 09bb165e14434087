"""config get / set / validate: pydantic first, then the database's own check."""

from __future__ import annotations

import psycopg

from tests.cli.conftest import Cli
from tests.sql.helpers import Jsonb, scalar
from worker.config.models import CONFIG_MODELS
from worker.ops.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_USAGE


def stored(conn: psycopg.Connection, key: str) -> dict:
    return scalar(conn, "select value from public.configs where key = %s", (key,))


def test_config_get(cli: Cli, conn: psycopg.Connection) -> None:
    everything = cli("config", "get", "--json")
    assert everything.code == 0, everything
    assert set(everything.json()) == set(CONFIG_MODELS)
    one = cli("config", "get", "quotas", "--json")
    assert one.json() == stored(conn, "quotas")
    human = cli("config", "get", "persona")
    assert human.code == 0 and "persona" in human.out and '"tone"' in human.out
    missing = cli("config", "get", "nope")
    assert missing.code == EXIT_FAILURE and "no config row 'nope'" in missing.err


def test_config_set_replaces_or_merges(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("config", "set", "engagement", '{"auto_like": false, "daily_like_cap": 50}')
    assert run.code == 0, run
    assert stored(conn, "engagement") == {"auto_like": False, "daily_like_cap": 50}

    before = stored(conn, "quotas")
    run = cli("config", "set", "quotas", '{"plan": "basic", "alert_threshold": "0.9"}', "--merge")
    assert run.code == 0, run
    # Merged, and stored as the model understood it ("0.9" -> 0.9).
    assert stored(conn, "quotas") == {**before, "plan": "basic", "alert_threshold": 0.9}
    caps = dict(conn.execute("select resource, cap from public.quota_caps()").fetchall())
    assert caps["posts"] == 3000  # the basic plan's preset now applies


def test_config_set_refuses_invalid_values_with_the_pydantic_message(
    cli: Cli, conn: psycopg.Connection
) -> None:
    before = stored(conn, "quotas")
    run = cli("config", "set", "quotas", '{"plan": "gold"}')
    assert run.code == EXIT_USAGE, run
    assert (
        "invalid quotas config: plan: Input should be 'pay_per_use', 'basic', 'pro', "
        "'enterprise' or 'free'" in run.err
    )
    run = cli("config", "set", "schedule", '{"generate_cron": "daily"}', "--merge")
    assert run.code == EXIT_USAGE, run
    assert "generate_cron" in run.err and "5 fields" in run.err
    run = cli("config", "set", "persona", '{"tone": "calm", "mood": "sunny"}')
    assert run.code == EXIT_USAGE and "mood: Extra inputs are not permitted" in run.err
    assert stored(conn, "quotas") == before


def test_config_set_refuses_bad_json_unknown_keys_and_non_objects(cli: Cli) -> None:
    bad_json = cli("config", "set", "quotas", '{"plan": ')
    assert bad_json.code == EXIT_USAGE and "VALUE is not valid JSON" in bad_json.err
    unknown = cli("config", "set", "colour", "{}")
    assert unknown.code == EXIT_USAGE and "unknown config key 'colour'" in unknown.err
    not_object = cli("config", "set", "quotas", "[1, 2]")
    assert not_object.code == EXIT_USAGE and "must be a JSON object" in not_object.err


def test_config_validate(cli: Cli, conn: psycopg.Connection) -> None:
    run = cli("config", "validate")
    assert run.code == 0, run
    assert run.out.count("valid") == len(CONFIG_MODELS)
    # A row the database's cheap check lets through but the model refuses (written by SQL).
    conn.execute(
        "update public.configs set value = %s where key = 'persona'",
        (Jsonb({"name": "bot", "language": "x"}),),
    )
    run = cli("config", "validate", "--json")
    assert run.code == EXIT_CONFIG, run
    persona = next(c for c in run.json() if c["key"] == "persona")
    assert persona["ok"] is False and "language" in persona["message"]
    human = cli("config", "validate")
    assert human.code == EXIT_CONFIG and "invalid persona: language" in human.out
