"""A corpus of boundary cases for tweet length, generated against twitter-text at test time.

Each snippet is a construct counters get wrong (bare country domains, URLs running into
punctuation or CJK, ZWJ sequences, keycaps, variation selectors, tag flags, IPs, localhost,
whitespace, NFC ...). :func:`boundary_corpus` places each one in texts padded to 279, 280 and
281 weighted characters *as twitter-text counts them* (the padding is computed from
twitter-text's own count of the snippet, then every text is measured again), with latin, CJK
and emoji filler, before and after the snippet, with and without a separating space. Nothing
here states an expected length: the expectations are twitter-text's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tests.tweet_text import oracle
from worker.content.tweet_text import weighted_length

ZWJ = "\u200d"
VS16 = "\ufe0f"
VS15 = "\ufe0e"
KEYCAP = "\u20e3"


def _tags(letters: str) -> str:
    return "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in letters) + "\U000e007f"


SNIPPETS: dict[str, str] = {
    # bare domains on country codes, with and without a path
    "cctld_jp": "foo.jp",
    "cctld_de": "example.de",
    "cctld_ly_path": "bit.ly/abc",
    "cctld_co": "t.co",
    "cctld_tv": "foo.tv",
    "cctld_co_jp": "foo.co.jp",
    "cctld_io": "a.io",
    "cctld_ai": "x.ai",
    "cctld_upper": "EXAMPLE.DE",
    "www_co_uk_path": "www.x.co.uk/path",
    "www_example_co_uk_path": "www.example.co.uk/path?q=1&r=2",
    # long bare domains, endings outside any short list
    "long_photography": "very-long-subdomain.example-company.photography",
    "long_museum": "collections.example.museum/item/42",
    "long_technology": "foo.bar.baz.technology",
    "long_berlin": "example.berlin",
    "long_xyz": "sixty-three-character-label-abcdefghijklmnopqrstuvwxyz0123456.xyz",
    "label_64": "sixty-four-character-label-abcdefghijklmnopqrstuvwxyz01234567.com",
    "idn_tld_bare": "example.みんな",
    "cjk_label_bare": "中国.com",
    "punycode": "xn--ls8h.la",
    "not_tld_py": "setup.py",
    "not_tld_js": "node.js is fine",
    "foo_bar_baz": "foo.bar.baz",
    "email": "me@example.com",
    "preceded_dash": "-example.com",
    "preceded_underscore": "_example.com",
    "preceded_slash": "/example.com",
    "preceded_dollar": "$example.com",
    "preceded_hash": "#example.com",
    # URLs with a scheme, and what follows them
    "scheme": "https://example.com",
    "scheme_path_long": "https://example.com/" + "a/b-c_d" * 20,
    "scheme_port_query": "https://example.com:8080/path?x=1&y=2#frag",
    "scheme_paren": "https://en.wikipedia.org/wiki/Primer_(film).",
    "scheme_in_parens": "(see https://example.com/path)",
    "scheme_comma": "https://example.com/a, next",
    "scheme_bang": "https://example.com/a!?",
    "scheme_quote": "'https://example.com/path'",
    "scheme_ellipsis": "https://example.com/path…",
    "scheme_cjk": "https://example.com/path日本語です",
    "scheme_cjk_no_path": "https://example.comこれは",
    "scheme_ideographic_stop": "http://twitter.com/これは日本語です。example.com中国語",
    "bare_cjk": "example.com日本",
    "cjk_bare_cjk": "これはexample.comです",
    "scheme_unicode_domain": "http://ああ.com",
    "scheme_emoji_domain": "https://👍.ws",
    "scheme_cyrillic_path": "http://example.com/путь",
    "scheme_accents": "http://example.com/café",
    "scheme_underscore_sub": "http://foo_bar.example.com",
    "scheme_bad_label": "http://-example.com",
    "scheme_directional": "\u2066\u202ahttp://foobar.پاکستان/\u202c\u2069",
    "tco": "https://t.co/abc123",
    "tco_long_slug": "https://t.co/" + "a" * 41,
    "tco_params": "https://t.co/UqIyJAJTfo?amp=1",
    "two_urls_adjacent": "https://a.com/x,https://b.org/y",
    "url_too_long": "https://example.com/" + "a" * 4100,
    "url_4096": "https://example.com/" + "a" * 4000,
    "cjk_label_too_long": "http://" + "日本語" * 30 + ".jp",
    # addresses X does not link
    "ipv4_scheme": "http://127.0.0.1/path",
    "ipv4_bare": "192.168.0.1",
    "ipv6": "http://[::1]:8080/",
    "localhost": "http://localhost:8080/x",
    "localhost_bare": "localhost/path",
    # emoji sequences
    "family": "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "rainbow_flag": "\U0001f3f3" + VS16 + ZWJ + "\U0001f308",
    "mechanic": "\U0001f9d1" + ZWJ + "\U0001f527",  # Unicode 12.1
    "heart_on_fire": "\u2764" + VS16 + ZWJ + "\U0001f525",  # 13.1
    "face_exhaling": "\U0001f62e" + ZWJ + "\U0001f4a8",  # 13.1
    "phoenix": "\U0001f426" + ZWJ + "\U0001f525",  # 15.1
    "family_adult_child": "\U0001f9d1" + ZWJ + "\U0001f9d1" + ZWJ + "\U0001f9d2",  # 15.1
    "head_shaking": "\U0001f642" + ZWJ + "\u2194" + VS16,  # 15.1
    "runner_right": "\U0001f3c3" + ZWJ + "\u27a1" + VS16,  # 15.1
    "shaking_face": "\U0001fae8",  # 15.0
    "couple_skin": "\U0001f469\U0001f3fd" + ZWJ + "\U0001f91d" + ZWJ + "\U0001f469\U0001f3ff",
    "zwj_letters": "a" + ZWJ + "b",
    "zwj_cjk": "\U0001f600" + ZWJ + "日",
    "zwj_latin": "\U0001f600" + ZWJ + "a",
    "zwj_trailing": "\U0001f600" + ZWJ,
    "zwj_double": "\U0001f600" + ZWJ + ZWJ + "\U0001f600",
    # keycaps and variation selectors
    "keycap_one": "1" + VS16 + KEYCAP,
    "keycap_hash": "#" + VS16 + KEYCAP,
    "keycap_bare": "1" + KEYCAP,
    "keycap_alone": KEYCAP,
    "keycap_after_letter": "a" + KEYCAP,
    "vs16_smile": "\u263a" + VS16,
    "vs15_smile": "\u263a" + VS15,
    "vs16_after_letter": "a" + VS16,
    "vs16_alone": VS16,
    "copyright": "\u00a9",
    "copyright_vs16": "\u00a9" + VS16,
    "tm_vs16": "\u2122" + VS16,
    "chess_vs16": "\u265f" + VS16,
    "heart": "\u2764",
    "heart_vs16": "\u2764" + VS16,
    "skin_tone": "\U0001f44d\U0001f3fd",
    "skin_tone_alone": "\U0001f3fd",
    "skin_tone_after_letter": "a\U0001f3fd",
    "skin_tone_no_base": "\u2615\U0001f3fd",
    # flags
    "flag_jp": "\U0001f1ef\U0001f1f5",
    "regional_single": "\U0001f1ef",
    "regional_three": "\U0001f1ef\U0001f1f5\U0001f1ef",
    "flag_scotland": _tags("gbsct"),
    "flag_england": _tags("gbeng"),
    "flag_wales": _tags("gbwls"),
    "tag_no_cancel": "\U0001f3f4\U000e0067\U000e0062",
    "tags_alone": "\U000e0067\U000e0062\U000e007f",
    # whitespace (the filler sits beside it)
    "space": " ",
    "spaces_run": "   ",
    "newlines": "\n\n",
    "crlf": "a\r\nb",
    "tab": "\t",
    "ideographic_space": "\u3000",
    "nbsp": "\u00a0",
    "en_quad": "\u2000",
    # NFC
    "nfc_e_acute": "e\u0301",
    "nfc_hangul_jamo": "\u1100\u1161",
    "nfc_angstrom": "\u212b",
    "nfc_hebrew": "A\ufb2c",
    "nfc_q_dot": "q\u0307",
    # weights
    "ellipsis": "\u2026",
    "quotes_dashes": "\u2013\u2014\u2018\u2019\u201c\u201d\u2032",
    "astral_cjk": "\U00020000",
    "hangul": "저찀쯿쿿",
    "arabic": "مرحبا بالعالم",
    "devanagari": "नमस्ते",
    "mention_hashtag": "@chirpbase #postgres $TSLA",
}

# Texts checked as they are: blanks, invalid characters, and texts whose length is the point.
STANDALONE: dict[str, str] = {
    "empty": "",
    "blank_space": " ",
    "blank_spaces": "     ",
    "blank_newline": "\n",
    "blank_mixed": " \t\n\u3000\u00a0",
    "blank_280": " " * 280,
    "blank_281": " " * 281,
    "bom": "hello\ufeff",
    "fffe": "\ufffe",
    "ffff": "ab\uffff",
    "latin_280": "a" * 280,
    "latin_281": "a" * 281,
    "cjk_140": "日" * 140,
    "cjk_141": "日" * 141,
    "emoji_140": "\U0001f600" * 140,
    "emoji_141": "\U0001f600" * 141,
    "family_140": SNIPPETS["family"] * 140,
    "phoenix_140": SNIPPETS["phoenix"] * 140,
    "keycap_140": SNIPPETS["keycap_one"] * 140,
    "keycap_141": SNIPPETS["keycap_one"] * 141,
    "urls_12": " ".join(["https://example.com/" + "x" * 200] * 11),
    "bare_urls_12": " ".join(["foo.jp"] * 12),
    "bare_urls_11": " ".join(["foo.jp"] * 11),
    "decomposed_280": "e\u0301" * 280,
    "decomposed_281": "e\u0301" * 281,
    "zwj_run": ("a" + ZWJ) * 140,
    "vs16_run": ("a" + VS16) * 100,
    "tags_run": "\U000e0067" * 150,
}

# X's count (the worker's) of a text, computed once per run: several modules check the corpus.
exact_length = cache(weighted_length)

_FILLERS = {"latin": ("a", 1), "cjk": ("日", 2), "emoji": ("\U0001f600", 2)}
TARGETS = (279, 280, 281)


# Emoji sequences of Emoji 12.1-15.1, newer than twitter-text 3.1.0's data (twemoji-parser
# 11.0.2), which counts them by their parts. X counts every RGI emoji as 2: "All emojis count
# as 2 characters, regardless of complexity" (xdevplatform/docs,
# fundamentals/counting-characters.mdx); twitter-text's data has not followed Unicode since
# 2020 (twitter/twitter-text#369). The one documented exception to twitter-text's counts.
NEWER_EMOJI = (
    "mechanic",
    "heart_on_fire",
    "face_exhaling",
    "phoenix",
    "family_adult_child",
    "head_shaking",
    "runner_right",
    "couple_skin",
)
_INVALID = frozenset("\ufffe\ufeff\uffff")


@dataclass(frozen=True)
class Case:
    """One corpus text, twitter-text 3.1.0's verdict on it, and X's."""

    name: str
    text: str
    reference: oracle.Reference
    x_length: int  # twitter-text's count with the documented exception (NEWER_EMOJI) applied

    @property
    def x_valid(self) -> bool:
        """Whether X accepts the text: twitter-text's rule, and never whitespace alone."""
        return (
            bool(self.text.strip())
            and not any(char in _INVALID for char in self.text)
            and 0 < self.x_length <= 280
        )

    @property
    def has_newer_emoji(self) -> bool:
        return self.x_length != self.reference.weighted_length


def _fill(kind: str, weight: int) -> str:
    """Filler of ``kind`` weighing ``weight`` (a latin letter makes up an odd weight)."""
    char, unit = _FILLERS[kind]
    count, rest = divmod(max(weight, 0), unit)
    return char * count + "b" * rest


def _templates() -> list[tuple[str, str, str]]:
    """(name, prefix kind, layout) for every way a snippet is padded."""
    layouts = []
    for kind in _FILLERS:
        for layout in ("before_space", "after_space", "before_tight", "after_tight"):
            layouts.append((f"{kind}_{layout}", kind, layout))
    return layouts


def _compose(filler: str, snippet: str, layout: str) -> str:
    if layout == "before_space":
        return f"{filler} {snippet}"
    if layout == "after_space":
        return f"{snippet} {filler}"
    if layout == "before_tight":
        return filler + snippet
    return snippet + filler


def boundary_corpus() -> list[Case]:
    """Every snippet padded to 279/280/281 (twitter-text's count) in every layout, plus STANDALONE."""
    return list(_boundary_corpus())


@cache
def _boundary_corpus() -> tuple[Case, ...]:
    snippet_weights = dict(
        zip(
            SNIPPETS,
            (ref.weighted_length for ref in oracle.parse(list(SNIPPETS.values()))),
            strict=True,
        )
    )
    named: list[tuple[str, str]] = list(STANDALONE.items()) + list(SNIPPETS.items())
    for key, snippet in SNIPPETS.items():
        for layout_name, kind, layout in _templates():
            separator = 1 if layout.endswith("_space") else 0
            for target in TARGETS:
                filler = _fill(kind, target - snippet_weights[key] - separator)
                named.append((f"{key}/{layout_name}/{target}", _compose(filler, snippet, layout)))
    references = oracle.parse([text for _, text in named])
    # What twitter-text counts beyond 2 for each newer emoji, taken off where it occurs.
    surplus = {SNIPPETS[key]: snippet_weights[key] - 2 for key in NEWER_EMOJI}
    return tuple(
        Case(
            name,
            text,
            ref,
            ref.weighted_length - sum(text.count(e) * extra for e, extra in surplus.items()),
        )
        for (name, text), ref in zip(named, references, strict=True)
    )
