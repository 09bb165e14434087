"""configs.pricing: X's prices per operation and OpenAI's per model, checked and applied."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from worker.billing.prices import cheapest_stats_read, has_url, post_operation, post_price
from worker.clients.ai import Pricing
from worker.config.models import PricingConfig, XPrices
from worker.runtime.services import Services


def test_x_prices_are_xs_published_ones_and_the_keys_are_fixed() -> None:
    prices = XPrices()
    assert (prices.post, prices.post_with_url, prices.reply_summoned) == (0.015, 0.20, 0.010)
    assert (prices.post_read, prices.owned_read, prices.user_read) == (0.005, 0.001, 0.010)
    assert (prices.media_metadata, prices.activity_event) == (0.005, 0.005)
    with pytest.raises(ValidationError, match="like"):
        PricingConfig.model_validate({"x": {"like": 0.01}})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PricingConfig.model_validate({"x": {"post": -0.01}})
    with pytest.raises(ValidationError, match=r"openai\.text\.mystery-model\.output"):
        PricingConfig.model_validate({"openai": {"text": {"mystery-model": {"input": 1}}}})
    assert str(PricingConfig().as_of) == "2026-04-20"


def test_a_post_is_priced_by_what_x_bills() -> None:
    prices = XPrices()
    assert post_operation("plain text") == "post"
    assert post_operation("read https://example.com") == "post_with_url"
    assert post_operation("see example.com") == "post_with_url"  # X links bare domains too
    assert post_operation("thanks!", summoned_reply=True) == "reply_summoned"
    # A reply with a link: the higher price (the page does not say which wins).
    assert post_operation("thanks! example.com", summoned_reply=True) == "post_with_url"
    assert post_price(prices, "read https://example.com") == 0.20
    assert not has_url("version 3.14, not a link")


def test_the_cheaper_stats_read() -> None:
    prices = XPrices()
    source, costs = cheapest_stats_read(prices, wanted=21, timeline_posts=21)
    assert source == "owned_timeline" and costs == {
        "lookup": pytest.approx(0.105),
        "owned_timeline": pytest.approx(0.021),
    }
    # An account that posts far more elsewhere than through chirpbase: lookups win.
    source, _ = cheapest_stats_read(prices, wanted=10, timeline_posts=60)
    assert source == "lookup"


def _services(openai: dict[str, Any]) -> Services:
    config = SimpleNamespace(pricing=PricingConfig.model_validate({"openai": openai}))
    return Services(settings=None, db=None, queue=None, config=config)  # type: ignore[arg-type]


def test_openai_prices_from_the_config_row_reach_the_client() -> None:
    cheap = {"text": {"gpt-5.4-mini": {"input": 0.1, "output": 1.0}}}
    services = _services(cheap)
    pricing = services.openai_pricing()
    assert pricing.text_cost("gpt-5.4-mini", 1_000_000, 0, 1_000_000) == pytest.approx(1.1)
    # Models the row leaves out keep the worker's table.
    assert pricing.text_price("gpt-5.4") == Pricing().text_price("gpt-5.4")
    client = SimpleNamespace(pricing=Pricing())
    services.__dict__["ai"] = client  # an AI client made before the change
    services.config.pricing = PricingConfig.model_validate(  # type: ignore[misc]
        {"openai": {"text": {"gpt-5.4-mini": {"input": 2.0, "output": 3.0}}}}
    )
    services.apply_config(["persona"])
    assert client.pricing.text_price("gpt-5.4-mini") == Pricing().text_price("gpt-5.4-mini")
    services.apply_config(["pricing"])
    assert client.pricing.text_cost("gpt-5.4-mini", 1_000_000, 0, 0) == pytest.approx(2.0)
