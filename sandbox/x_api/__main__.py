"""Run the X API stand-in alone: ``python -m sandbox.x_api --port 8081``.

Credentials come from the environment (X_API_KEY, X_API_SECRET, X_ACCESS_TOKEN,
X_ACCESS_TOKEN_SECRET, X_BEARER_TOKEN) when set, so the worker and the stand-in can share one
.env; otherwise sandbox defaults are used (GET /_sandbox/credentials shows them).
"""

from __future__ import annotations

import argparse
import os

from sandbox.ports import run_app
from sandbox.x_api.app import create_app
from sandbox.x_api.state import XState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.x_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--access-tier",
        default=os.environ.get("X_SANDBOX_ACCESS_TIER", "pay_per_use"),
        choices=["pay_per_use", "basic", "pro", "enterprise"],
        help="the app's X access tier (likes and quote posts need enterprise)",
    )
    parser.add_argument("--credits-usd", type=float, default=None, help="prepaid credits")
    parser.add_argument("--username", default="chirpbase_bot")
    parser.add_argument("--monthly-post-cap", type=int, default=None)
    parser.add_argument("--monthly-read-cap", type=int, default=None)
    args = parser.parse_args(argv)
    env = os.environ
    kwargs: dict[str, str] = {}
    for option, name in (
        ("consumer_key", "X_API_KEY"),
        ("consumer_secret", "X_API_SECRET"),
        ("access_token", "X_ACCESS_TOKEN"),
        ("access_token_secret", "X_ACCESS_TOKEN_SECRET"),
        ("bearer_token", "X_BEARER_TOKEN"),
    ):
        if env.get(name):
            kwargs[option] = env[name]
    user_id = None
    token = kwargs.get("access_token")
    if token and token.partition("-")[0].isdigit():
        user_id = token.partition("-")[0]  # tweepy derives the user id from the token
    state = XState(
        consumer_key=kwargs.get("consumer_key", "sandbox-consumer-key"),
        consumer_secret=kwargs.get("consumer_secret", "sandbox-consumer-secret"),
        access_token=kwargs.get("access_token"),
        access_token_secret=kwargs.get("access_token_secret", "sandbox-access-token-secret"),
        bearer_token=kwargs.get("bearer_token", "sandbox-bearer-token"),
        user_id=user_id or "1700000000000000001",
        username=args.username,
        access_tier=args.access_tier,
        credits_usd=args.credits_usd,
        monthly_post_cap=args.monthly_post_cap,
        monthly_read_cap=args.monthly_read_cap,
    )
    run_app(
        create_app(state),
        what="X API stand-in",
        host=args.host,
        port=args.port,
        ready=f"X API stand-in (sandbox) on http://{args.host}:{args.port} as @{state.me.username}",
    )


if __name__ == "__main__":
    main()
