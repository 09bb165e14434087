"""X's reference counter, npm ``twitter-text`` 3.1.0, run for real (Node) from the tests.

``scripts/twitter-text.sh`` installs the pinned package under ``.local/`` (npm, like Deno) and
runs ``scripts/twitter_text_parse.cjs``, which answers ``parseTweet`` and
``extractUrlsWithIndices`` for a batch of strings. Results are cached per process: the corpus
is generated in two passes and several test modules ask about the same strings.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "twitter-text.sh"
_TIMEOUT_S = 300  # a first call installs the package from the npm registry


@dataclass(frozen=True)
class Reference:
    """What twitter-text 3.1.0 says about one text."""

    weighted_length: int
    valid: bool
    url_spans: tuple[tuple[int, int], ...]  # code point indices


_cache: dict[str, Reference] = {}


def parse(texts: list[str]) -> list[Reference]:
    """twitter-text's verdict for each text (one Node process for the whole batch)."""
    missing = list(dict.fromkeys(text for text in texts if text not in _cache))
    if missing:
        done = subprocess.run(
            ["bash", str(SCRIPT), "parse"],
            input=json.dumps(missing),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"scripts/twitter-text.sh parse failed ({done.returncode}): {done.stderr[-2000:]}"
            )
        for text, answer in zip(missing, json.loads(done.stdout), strict=True):
            _cache[text] = Reference(
                weighted_length=int(answer["weightedLength"]),
                valid=bool(answer["valid"]),
                url_spans=tuple(
                    (int(a), int(b)) for a, b in (u["indices"] for u in answer["urls"])
                ),
            )
    return [_cache[text] for text in texts]
