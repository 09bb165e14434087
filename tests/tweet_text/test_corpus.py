"""The boundary corpus (tests/tweet_text/corpus.py), generated with npm twitter-text 3.1.0 at
test time: chirpbase's counter and the X stand-in's agree with it on every text, apart from
the one documented exception (emoji newer than twitter-text's data count 2, as on X)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable

import pytest

from sandbox.x_api import text as standin
from tests.tweet_text.corpus import NEWER_EMOJI, STANDALONE, TARGETS, Case, boundary_corpus
from worker.content.tweet_text import (
    TweetTextError,
    extract_url_spans,
    measure,
    validate_tweet_text,
)


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    return boundary_corpus()


def _report(failures: list[str]) -> str:
    return f"{len(failures)} disagreements, first: " + "; ".join(failures[:5])


def test_corpus_sits_on_the_boundary(corpus: list[Case]) -> None:
    lengths = Counter(case.reference.weighted_length for case in corpus)
    assert len(corpus) > 4000
    for target in TARGETS:  # most texts land where they were aimed, both sides of 280
        assert lengths[target] > 1000
    assert sum(case.x_valid for case in corpus) > 1000
    assert sum(not case.x_valid for case in corpus) > 1000


def test_counter_matches_x(corpus: list[Case]) -> None:
    failures = []
    for case in corpus:
        result = measure(case.text)
        if result.weighted_length != case.x_length:
            failures.append(f"{case.name}: {result.weighted_length} != {case.x_length}")
            continue
        try:
            validate_tweet_text(case.text)
            accepted = True
        except TweetTextError as error:
            accepted = False
            # the exact count is in the message
            assert re.search(rf"weighted length {case.x_length}\b", str(error)), str(error)
        if accepted != case.x_valid:
            failures.append(f"{case.name}: accepted={accepted}, X accepts={case.x_valid}")
    assert not failures, _report(failures)


@pytest.mark.parametrize(
    "find_urls", [extract_url_spans, standin.url_spans], ids=["counter", "standin"]
)
def test_urls_found_are_those_twitter_text_finds(
    corpus: list[Case], find_urls: Callable[[str], list[tuple[int, int]]]
) -> None:
    failures = [
        case.name
        for case in corpus
        if tuple(find_urls(unicodedata.normalize("NFC", case.text))) != case.reference.url_spans
    ]
    assert not failures, _report(failures)


def test_standin_matches_x(corpus: list[Case]) -> None:
    failures = []
    for case in corpus:
        length = standin.tweet_length(case.text)
        accepted = standin.refusal(case.text) is None
        if length != case.x_length or accepted != case.x_valid:
            failures.append(f"{case.name}: {length}/{accepted} != {case.x_length}/{case.x_valid}")
    assert not failures, _report(failures)


def test_the_documented_exception_is_real_and_bounded(corpus: list[Case]) -> None:
    """twitter-text 3.1.0 does count the newer emoji higher, and nothing else differs."""
    differing = {case.name.split("/")[0] for case in corpus if case.has_newer_emoji}
    assert differing == {*NEWER_EMOJI, "phoenix_140"}
    phoenix = next(case for case in corpus if case.name == "phoenix_140")
    assert (phoenix.reference.weighted_length, phoenix.x_length) == (700, 280)


def test_whitespace_alone_is_refused_though_twitter_text_calls_it_valid(corpus: list[Case]) -> None:
    blanks = [case for case in corpus if case.name.startswith("blank_")]
    assert {case.name for case in blanks} == {n for n in STANDALONE if n.startswith("blank_")}
    for case in blanks:
        if case.reference.weighted_length <= 280:
            assert case.reference.valid  # parseTweet's verdict ...
        assert not case.x_valid  # ... and X's
        with pytest.raises(TweetTextError, match="empty"):
            validate_tweet_text(case.text)
        assert standin.refusal(case.text) == "blank"
