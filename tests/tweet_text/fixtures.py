"""twitter-text's conformance cases (tests/fixtures/twitter-text), loaded as its runners do."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twitter-text"


@cache
def _sections(name: str) -> dict[str, list[dict[str, Any]]]:
    with (FIXTURES / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["tests"]


def validate_cases(section: str) -> list[dict[str, Any]]:
    return _sections("validate.yml")[section]


def extract_url_cases(section: str) -> list[dict[str, Any]]:
    return _sections("extract_urls.yml")[section]


def validate_sections() -> list[str]:
    return list(_sections("validate.yml"))


def extract_url_sections() -> list[str]:
    return list(_sections("extract_urls.yml"))
