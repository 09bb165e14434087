"""twitter-text's own conformance data, for chirpbase's counter and for the X stand-in's.

The sections of ``validate.yml`` run with the configuration twitter-text's runner gives them
(``js/test/conformance.html``): ``tweets`` with v1 (140 characters, no weights),
``WeightedTweetsCounterTest`` with v2, ``WeightedTweetsWithDiscountedEmojiCounterTest`` and
``UnicodeDirectionalMarkerCounterTest`` with v3, the one X uses. The sections about lone
usernames, lists, hashtags and URLs (``isValidUsername``, ``isValidUrl``...) test validators
chirpbase does not have; :func:`test_every_section_is_accounted_for` keeps that list honest.
The display and valid ranges of parseTweet (UTF-16 offsets for an editor) are not checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.x_api import text as standin
from tests.tweet_text.fixtures import (
    extract_url_cases,
    extract_url_sections,
    validate_cases,
    validate_sections,
)
from worker.content.tweet_text import V1, V2, V3, TwitterTextConfig, extract_url_spans, measure

COUNTER_SECTIONS: dict[str, TwitterTextConfig] = {
    "tweets": V1,
    "WeightedTweetsCounterTest": V2,
    "WeightedTweetsWithDiscountedEmojiCounterTest": V3,
    "UnicodeDirectionalMarkerCounterTest": V3,
}
NOT_APPLICABLE = {"usernames", "lists", "hashtags", "urls", "urls_without_protocol"}
V3_SECTIONS = [name for name, config in COUNTER_SECTIONS.items() if config is V3]


def _cases(sections: list[str]) -> list[Any]:
    return [
        pytest.param(section, case, id=f"{section}: {case['description']}")
        for section in sections
        for case in validate_cases(section)
    ]


def test_every_section_is_accounted_for() -> None:
    assert set(validate_sections()) == set(COUNTER_SECTIONS) | NOT_APPLICABLE
    assert set(extract_url_sections()) == {
        "urls",
        "urls_with_indices",
        "urls_with_directional_markers",
        "tco_urls_with_params",
    }
    total = sum(len(validate_cases(s)) for s in COUNTER_SECTIONS)
    total += sum(len(extract_url_cases(s)) for s in extract_url_sections())
    assert total == 8 + 20 + 22 + 2 + 108  # the cases below, so none is silently dropped


@pytest.mark.parametrize(("section", "case"), _cases(list(COUNTER_SECTIONS)))
def test_counter(section: str, case: dict[str, Any]) -> None:
    config = COUNTER_SECTIONS[section]
    result = measure(case["text"], config)
    expected = case["expected"]
    if isinstance(expected, bool):  # the `tweets` section: validity alone
        assert result.valid is expected
        return
    assert result.weighted_length == expected["weightedLength"]
    assert result.valid is expected["valid"]
    permillage = result.weighted_length * 1000 // config.max_weighted_length
    assert permillage == expected["permillage"]


def _url_cases() -> list[Any]:
    return [
        pytest.param(case, id=f"{section}: {case['description']}")
        for section in extract_url_sections()
        for case in extract_url_cases(section)
    ]


def _expected_urls(case: dict[str, Any]) -> tuple[list[str], list[list[int]] | None]:
    expected = case["expected"] or []
    if expected and isinstance(expected[0], dict):
        return [item["url"] for item in expected], [item["indices"] for item in expected]
    return list(expected), None


@pytest.mark.parametrize("case", _url_cases())
def test_url_extraction(case: dict[str, Any]) -> None:
    text = case["text"]
    urls, indices = _expected_urls(case)
    spans = extract_url_spans(text)
    assert [text[a:b] for a, b in spans] == urls
    if indices is not None:
        assert [list(span) for span in spans] == indices


# The stand-in decides what it refuses: it must pass the same data (v3 only, as X).


@pytest.mark.parametrize(("section", "case"), _cases(V3_SECTIONS))
def test_standin_counter(section: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert standin.tweet_length(case["text"]) == expected["weightedLength"]
    assert (standin.refusal(case["text"]) is None) is expected["valid"]


@pytest.mark.parametrize("case", _url_cases())
def test_standin_url_extraction(case: dict[str, Any]) -> None:
    text = case["text"]
    urls, indices = _expected_urls(case)
    spans = standin.url_spans(text)
    assert [text[a:b] for a, b in spans] == urls
    if indices is not None:
        assert [list(span) for span in spans] == indices
