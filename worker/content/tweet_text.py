"""X's weighted tweet length (twitter-text v3 rules), without network or X's own library.

X counts a tweet the way the twitter-text v3 configuration says:

* the text is NFC-normalised first;
* every code point weighs 200 (counts 2), except the ranges 0-4351 (Latin, Greek, Cyrillic,
  Hebrew, Arabic, Indic scripts...), 8192-8205, 8208-8223 and 8242-8247 (spaces, dashes,
  quotes, primes), which weigh 100 (count 1); the total is divided by the scale (100);
* every URL counts as 23 (``transformed_url_length``), whatever its real length, following
  twitter-text's URL extraction (http/https with any domain that ends in a known TLD, and
  bare ASCII domains such as ``example.com`` when not preceded by ``-_./``; a two-label
  domain on a country TLD such as ``foo.jp`` only counts as a URL with a path, except on
  ``.co`` and ``.tv``);
* an emoji, including a whole sequence (ZWJ family, skin tone, flag, keycap, tag flag),
  counts as 2 (``emoji_parsing_enabled``);
* the limit is 280, and U+FFFE, U+FEFF and U+FFFF make a tweet invalid.

The PyPI port ``twitter-text-parser`` 3.0.0 was checked and is not used: it does not import
without ``pkg_resources`` (setuptools), its emoji list stops at Unicode 12.0 (newer ZWJ
sequences such as U+1F426 U+200D U+1F525 would count 5 instead of 2), it counts "\\r\\n" as one
character, and it lacks twitter-text's short country-domain rule (it counts ``foo.jp`` as a
23-character URL).

Emoji are recognised structurally (UTS #51 sequences built on Extended_Pictographic, data from
Unicode 15) rather than from a fixed list of RGI sequences, so new emoji sequences count 2 as
they do on X. Text-default symbols that twitter-text only treats as emoji with U+FE0F
(©, ®, ™, ♟) count by their code point weight without it.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

__all__ = [
    "MAX_WEIGHTED_LENGTH",
    "TRANSFORMED_URL_LENGTH",
    "TweetLength",
    "TweetTextError",
    "country_code_tlds",
    "extract_url_spans",
    "generic_tlds",
    "is_valid_tweet_text",
    "measure",
    "validate_tweet_text",
    "weighted_length",
]

# twitter-text v3 configuration (config/v3.json).
MAX_WEIGHTED_LENGTH = 280
TRANSFORMED_URL_LENGTH = 23
_SCALE = 100
_DEFAULT_WEIGHT = 200
_WEIGHTED_RANGES: tuple[tuple[int, int, int], ...] = (
    (0, 4351, 100),
    (8192, 8205, 100),
    (8208, 8223, 100),
    (8242, 8247, 100),
)
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40
_INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")


class TweetTextError(ValueError):
    """The text cannot be posted as a tweet (empty, too long or with invalid characters)."""

    def __init__(self, message: str, *, weighted_length: int) -> None:
        super().__init__(message)
        self.weighted_length = weighted_length


@dataclass(frozen=True)
class TweetLength:
    """The result of :func:`measure`."""

    weighted_length: int
    valid: bool
    has_invalid_characters: bool
    url_count: int
    emoji_count: int


def _char_weight(code_point: int) -> int:
    for start, end, weight in _WEIGHTED_RANGES:
        if start <= code_point <= end:
            return weight
    return _DEFAULT_WEIGHT


# --- emoji -------------------------------------------------------------------------------

# Extended_Pictographic (emoji-data.txt, Unicode 14-15: reserved pictographic blocks included).
_EXT_PICT_RANGES: tuple[tuple[int, int], ...] = (
    (0xA9, 0xA9), (0xAE, 0xAE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x2605),
    (0x2607, 0x2612), (0x2614, 0x2685), (0x2690, 0x2705), (0x2708, 0x2712), (0x2714, 0x2714),
    (0x2716, 0x2716), (0x271D, 0x271D), (0x2721, 0x2721), (0x2728, 0x2728), (0x2733, 0x2734),
    (0x2744, 0x2744), (0x2747, 0x2747), (0x274C, 0x274C), (0x274E, 0x274E), (0x2753, 0x2755),
    (0x2757, 0x2757), (0x2763, 0x2767), (0x2795, 0x2797), (0x27A1, 0x27A1), (0x27B0, 0x27B0),
    (0x27BF, 0x27BF), (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
    (0x2B55, 0x2B55), (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
    (0x1F000, 0x1F0FF), (0x1F10D, 0x1F10F), (0x1F12F, 0x1F12F), (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F), (0x1F18E, 0x1F18E), (0x1F191, 0x1F19A), (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F), (0x1F21A, 0x1F21A), (0x1F22F, 0x1F22F), (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F), (0x1F249, 0x1F3FA), (0x1F400, 0x1F53D), (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F774, 0x1F77F), (0x1F7D5, 0x1F7FF), (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F), (0x1F85A, 0x1F85F), (0x1F888, 0x1F88F), (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A), (0x1F93C, 0x1F945), (0x1F947, 0x1FAFF), (0x1FC00, 0x1FFFD),
)  # fmt: skip

# Emoji_Modifier_Base (Unicode 15: adds U+1FAF7-U+1FAF8).
_MODIFIER_BASE_RANGES: tuple[tuple[int, int], ...] = (
    (0x261D, 0x261D), (0x26F9, 0x26F9), (0x270A, 0x270D), (0x1F385, 0x1F385),
    (0x1F3C2, 0x1F3C4), (0x1F3C7, 0x1F3C7), (0x1F3CA, 0x1F3CC), (0x1F442, 0x1F443),
    (0x1F446, 0x1F450), (0x1F466, 0x1F478), (0x1F47C, 0x1F47C), (0x1F481, 0x1F483),
    (0x1F485, 0x1F487), (0x1F48F, 0x1F48F), (0x1F491, 0x1F491), (0x1F4AA, 0x1F4AA),
    (0x1F574, 0x1F575), (0x1F57A, 0x1F57A), (0x1F590, 0x1F590), (0x1F595, 0x1F596),
    (0x1F645, 0x1F647), (0x1F64B, 0x1F64F), (0x1F6A3, 0x1F6A3), (0x1F6B4, 0x1F6B6),
    (0x1F6C0, 0x1F6C0), (0x1F6CC, 0x1F6CC), (0x1F90C, 0x1F90C), (0x1F90F, 0x1F90F),
    (0x1F918, 0x1F91F), (0x1F926, 0x1F926), (0x1F930, 0x1F939), (0x1F93C, 0x1F93E),
    (0x1F977, 0x1F977), (0x1F9B5, 0x1F9B6), (0x1F9B8, 0x1F9B9), (0x1F9BB, 0x1F9BB),
    (0x1F9CD, 0x1F9CF), (0x1F9D1, 0x1F9DD), (0x1FAC3, 0x1FAC5), (0x1FAF0, 0x1FAF8),
)  # fmt: skip

_EXT_PICT_STARTS = [start for start, _ in _EXT_PICT_RANGES]
_MODIFIER_BASE_STARTS = [start for start, _ in _MODIFIER_BASE_RANGES]

_ZWJ = "\u200d"
_VS15 = "\ufe0e"  # text presentation selector
_VS16 = "\ufe0f"  # emoji presentation selector
_KEYCAP = "\u20e3"
_CANCEL_TAG = 0xE007F
# Text-default symbols that twitter-text (twemoji) only takes as emoji when followed by VS16.
_NEEDS_VS16 = frozenset("\u00a9\u00ae\u2122\u265f")


def _in_ranges(code_point: int, starts: list[int], ranges: tuple[tuple[int, int], ...]) -> bool:
    index = bisect.bisect_right(starts, code_point) - 1
    return index >= 0 and ranges[index][0] <= code_point <= ranges[index][1]


def _is_ext_pict(code_point: int) -> bool:
    return _in_ranges(code_point, _EXT_PICT_STARTS, _EXT_PICT_RANGES)


def _is_modifier_base(code_point: int) -> bool:
    return _in_ranges(code_point, _MODIFIER_BASE_STARTS, _MODIFIER_BASE_RANGES)


def _is_modifier(code_point: int) -> bool:
    return 0x1F3FB <= code_point <= 0x1F3FF


def _is_regional_indicator(code_point: int) -> bool:
    return 0x1F1E6 <= code_point <= 0x1F1FF


def _is_tag(code_point: int) -> bool:
    return 0xE0020 <= code_point <= 0xE007E


def _emoji_element_end(text: str, index: int) -> int | None:
    """End of one pictographic element (base + VS16 or skin tone + tag run) or None."""
    n = len(text)
    char = text[index]
    code_point = ord(char)
    if not _is_ext_pict(code_point):
        return None
    following = text[index + 1] if index + 1 < n else ""
    if following == _VS15:
        return None
    if char in _NEEDS_VS16 and following != _VS16:
        return None
    end = index + 1
    if following == _VS16 or (
        following and _is_modifier(ord(following)) and _is_modifier_base(code_point)
    ):
        end += 1
    if end < n and _is_tag(ord(text[end])):
        tag_end = end
        while tag_end < n and _is_tag(ord(text[tag_end])):
            tag_end += 1
        if tag_end < n and ord(text[tag_end]) == _CANCEL_TAG:
            end = tag_end + 1
    return end


def _emoji_end(text: str, index: int) -> int | None:
    """If an emoji (sequence) starts at ``index``, the index just past it."""
    n = len(text)
    char = text[index]
    code_point = ord(char)
    if _is_regional_indicator(code_point):
        if index + 1 < n and _is_regional_indicator(ord(text[index + 1])):
            return index + 2
        return index + 1
    if char in "#*0123456789":
        keycap = index + 1
        if keycap < n and text[keycap] == _VS16:
            keycap += 1
        if keycap < n and text[keycap] == _KEYCAP:
            return keycap + 1
        return None
    if _is_modifier(code_point):
        return index + 1
    end = _emoji_element_end(text, index)
    if end is None:
        return None
    while end + 1 < n and text[end] == _ZWJ:
        joined = _emoji_element_end(text, end + 1)
        if joined is None:
            break
        end = joined
    return end


# --- URLs ----------------------------------------------------------------------------------

_PUNCTUATION = r"!'#%&'()*+,\\\-./:;<=>?@\[\]^_{|}~$"
_SPACES = r"\x09-\x0D\x20\x85\xA0\u1680\u180E\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
_DIRECTIONAL_MARKERS = r"\u202A-\u202E\u061C\u200E\u200F\u2066\u2067\u2068\u2069"
_INVALID_CHARS_CLASS = r"\uFFFE\uFEFF\uFFFF"
_LATIN_ACCENTS = (
    r"\xC0-\xD6\xD8-\xF6\xF8-\xFF\u0100-\u024F\u0253\u0254\u0256\u0257\u0259\u025B\u0263"
    r"\u0268\u026F\u0272\u0289\u028B\u02BB\u0300-\u036F\u1E00-\u1EFF"
)
_CYRILLIC = r"\u0400-\u04FF"


@dataclass(frozen=True)
class _UrlRegexes:
    extract: re.Pattern[str]
    ascii_domain: re.Pattern[str]
    invalid_short_domain: re.Pattern[str]
    special_short_domain: re.Pattern[str]
    tco: re.Pattern[str]
    invalid_without_protocol_preceding: re.Pattern[str]


def _alternation(words: list[str]) -> str:
    """A regex matching any of ``words``, built as a trie (fast even with ~1,400 TLDs).

    Longer words are preferred (``comcast`` before ``com``), as with twitter-text's
    longest-first alternation; the TLD lookahead then decides.
    """
    trie: dict[str, dict] = {}
    for word in set(words):
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        terminal = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if terminal:
            return "(?:" + body + ")?"
        return body

    return build(trie)


@cache
def _url_regexes() -> _UrlRegexes:
    tld_end = r"(?=[^0-9a-zA-Z@+-]|$)"
    gtld = rf"(?:(?:{_alternation(sorted(generic_tlds()))}){tld_end})"
    cctld = rf"(?:(?:{_alternation(sorted(country_code_tlds()))}){tld_end})"
    special_cctld = rf"(?:(?:co|tv){tld_end})"
    punycode = r"(?:xn--[\-0-9a-z]+)"
    domain_char = rf"[^{_PUNCTUATION}{_SPACES}{_INVALID_CHARS_CLASS}{_DIRECTIONAL_MARKERS}]"
    subdomain = rf"(?:(?:{domain_char}(?:[_-]|{domain_char})*)?{domain_char}\.)"
    domain_name = rf"(?:(?:{domain_char}(?:-|{domain_char})*)?{domain_char}\.)"
    domain = rf"(?:{subdomain}*{domain_name}(?:{gtld}|{cctld}|{punycode}))"
    path_char = rf"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN_ACCENTS}]"
    balanced_parens = rf"\((?:{path_char}+|(?:{path_char}*\({path_char}+\){path_char}*))\)"
    path_ending = rf"(?:[+\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|(?:{balanced_parens}))"
    path = (
        rf"(?:(?:{path_char}*(?:{balanced_parens}{path_char}*)*{path_ending})"
        rf"|(?:@{path_char}+/))"
    )
    query_char = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
    query_ending = r"[a-z0-9\-_&=#/]"
    preceding = rf"(?:[^A-Za-z0-9@＠$#＃{_INVALID_CHARS_CLASS}]|[{_DIRECTIONAL_MARKERS}]|^)"
    extract = (
        rf"(({preceding})"  # 1: whole match, 2: preceding character
        rf"((https?://)?"  # 3: URL, 4: protocol
        rf"({domain})"  # 5: domain
        rf"(?::([0-9]+))?"  # 6: port
        rf"(/{path}*)?"  # 7: path
        rf"(\?{query_char}*{query_ending})?))"  # 8: query
    )
    return _UrlRegexes(
        extract=re.compile(extract, re.IGNORECASE),
        ascii_domain=re.compile(
            rf"(?:(?:[\-a-z0-9{_LATIN_ACCENTS}]+)\.)+(?:{gtld}|{cctld}|{punycode})",
            re.IGNORECASE,
        ),
        invalid_short_domain=re.compile(rf"^{domain_name}{cctld}$", re.IGNORECASE),
        special_short_domain=re.compile(rf"^{domain_name}{special_cctld}$", re.IGNORECASE),
        tco=re.compile(
            rf"^https?://t\.co/([a-z0-9]+)(?:\?{query_char}*{query_ending})?", re.IGNORECASE
        ),
        invalid_without_protocol_preceding=re.compile(r"[-_./]$"),
    )


_MAX_LABEL_LENGTH = 63


def _domain_is_encodable(domain: str, ascii_domain: re.Pattern[str]) -> bool:
    """twitter-text's light IDNA check: every label is 1..63 characters once punycoded."""
    if domain.startswith("xn--") and not ascii_domain.search(domain):
        return False  # a punycode domain cannot contain non-ASCII characters
    for label in domain.split("."):
        if all(ord(char) <= 0x7E for char in label):
            encoded = len(label)
        else:
            encoded = len("xn--") + len(label.encode("punycode"))
        if not 1 <= encoded <= _MAX_LABEL_LENGTH:
            return False
    return True


def extract_url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) code point spans of the URLs twitter-text finds in ``text``.

    ``text`` is used as given (callers normalise first). Each span counts as 23.
    """
    if "." not in text:
        return []
    regexes = _url_regexes()
    spans: list[tuple[int, int]] = []
    for match in regexes.extract.finditer(text):
        before, url, protocol, domain, path = (
            match.group(2),
            match.group(3),
            match.group(4),
            match.group(5),
            match.group(7),
        )
        end = match.end()
        start = end - len(url)
        if not _domain_is_encodable(domain, regexes.ascii_domain):
            continue
        if len(protocol or "https://") + len(url) > _MAX_URL_LENGTH:
            continue
        if not protocol:
            if regexes.invalid_without_protocol_preceding.search(before):
                continue
            found = False
            for ascii_match in regexes.ascii_domain.finditer(domain):
                found = True
                ascii_domain = ascii_match.group(0)
                if (
                    path
                    or regexes.special_short_domain.search(ascii_domain)
                    or not regexes.invalid_short_domain.search(ascii_domain)
                ):
                    spans.append((start + ascii_match.start(), start + ascii_match.end()))
            if found and path:
                # With a path every candidate was kept; the last one runs to the URL's end.
                spans[-1] = (spans[-1][0], end)
        else:
            tco = regexes.tco.search(url)
            if tco:
                if len(tco.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                end = start + len(tco.group(0))
            spans.append((start, end))
    return spans


def generic_tlds() -> frozenset[str]:
    """Known non-country top-level domains (lower case; IDN ones in Unicode)."""
    return frozenset(_GTLDS.split()) | (frozenset(_IDN_TLDS.split()) - country_code_tlds())


def country_code_tlds() -> frozenset[str]:
    """Known country-code top-level domains (two ASCII letters, or internationalised)."""
    return frozenset(_CCTLDS.split() + _IDN_CCTLDS.split())


# --- counting --------------------------------------------------------------------------------


def measure(text: str) -> TweetLength:
    """Weighted length and validity of ``text`` as X counts it."""
    normalized = unicodedata.normalize("NFC", text)
    url_ends = dict(extract_url_spans(normalized))
    total = 0
    urls = emojis = 0
    index = 0
    n = len(normalized)
    while index < n:
        url_end = url_ends.get(index)
        if url_end is not None:
            total += TRANSFORMED_URL_LENGTH * _SCALE
            urls += 1
            index = url_end
            continue
        emoji_end = _emoji_end(normalized, index)
        if emoji_end is not None:
            total += _DEFAULT_WEIGHT
            emojis += 1
            index = emoji_end
            continue
        total += _char_weight(ord(normalized[index]))
        index += 1
    weighted = total // _SCALE
    invalid = any(char in _INVALID_CHARACTERS for char in normalized)
    return TweetLength(
        weighted_length=weighted,
        valid=(not invalid) and 0 < weighted <= MAX_WEIGHTED_LENGTH,
        has_invalid_characters=invalid,
        url_count=urls,
        emoji_count=emojis,
    )


def weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3): what must stay <= 280."""
    return measure(text).weighted_length


def is_valid_tweet_text(text: str) -> bool:
    try:
        validate_tweet_text(text)
    except TweetTextError:
        return False
    return True


def validate_tweet_text(text: str) -> None:
    """Raise :class:`TweetTextError` (a ``ValueError``) when X would refuse ``text``."""
    result = measure(text)
    if not text.strip():
        raise TweetTextError(
            "tweet text is empty (weighted length "
            f"{result.weighted_length}, must be 1..{MAX_WEIGHTED_LENGTH})",
            weighted_length=result.weighted_length,
        )
    if result.has_invalid_characters:
        raise TweetTextError(
            "tweet text contains a character X refuses (U+FFFE, U+FEFF or U+FFFF); "
            f"weighted length {result.weighted_length}",
            weighted_length=result.weighted_length,
        )
    if result.weighted_length > MAX_WEIGHTED_LENGTH:
        raise TweetTextError(
            f"tweet text is too long: weighted length {result.weighted_length} > "
            f"{MAX_WEIGHTED_LENGTH} (URLs count {TRANSFORMED_URL_LENGTH}, CJK and emoji 2)",
            weighted_length=result.weighted_length,
        )


# --- data -------------------------------------------------------------------------------------
# Top-level domains from IANA's list (version 2026111700); the IDN ones decoded from punycode.
# Country codes (two ASCII letters, and _IDN_CCTLDS) get twitter-text's short-domain rule.

_CCTLDS = """
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt
bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg
er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn
hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li
lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne
nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb
sc sd se sg sh si sj sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr
tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
"""

_GTLDS = """
aaa aarp abb abbott abbvie abc able abogado abudhabi academy accenture accountant accountants
aco actor ads adult aeg aero aetna afl africa agakhan agency aig airbus airforce airtel akdn
alibaba alipay allfinanz allstate ally alsace alstom amazon americanexpress americanfamily amex
amfam amica amsterdam analytics android anquan anz aol apartments app apple aquarelle arab
aramco archi army arpa art arte asda asia associates athleta attorney auction audi audible audio
auspost author auto autos aws axa azure baby baidu banamex band bank bar barcelona barclaycard
barclays barefoot bargains baseball basketball bauhaus bayern bbc bbt bbva bcg bcn beats beauty
beer berlin best bestbuy bet bharti bible bid bike bing bingo bio biz black blackfriday
blockbuster blog bloomberg blue bms bmw bnpparibas boats boehringer bofa bom bond boo book
booking bosch bostik boston bot boutique box bradesco bridgestone broadway broker brother
brussels build builders business buy buzz bzh cab cafe cal call calvinklein cam camera camp
canon capetown capital capitalone car caravan cards care career careers cars casa case cash
casino cat catering catholic cba cbn cbre center ceo cern cfa cfd chanel channel charity chase
chat cheap chintai christmas chrome church cipriani circle cisco citadel citi citic city claims
cleaning click clinic clinique clothing cloud club clubmed coach codes coffee college cologne
com commbank community company compare computer comsec condos construction consulting contact
contractors cooking cool coop corsica country coupon coupons courses cpa credit creditcard
creditunion cricket crown crs cruise cruises cuisinella cymru cyou dad dance data date dating
datsun day dclk dds deal dealer deals degree delivery dell deloitte delta democrat dental
dentist desi design dev dhl diamonds diet digital direct directory discount discover dish diy
dnp docs doctor dog domains dot download drive dtv dubai dupont durban dvag dvr earth eat eco
edeka edu education email emerck energy engineer engineering enterprises epson equipment
ericsson erni esq estate eurovision eus events exchange expert exposed express extraspace fage
fail fairwinds faith family fan fans farm farmers fashion fast fedex feedback ferrari ferrero
fidelity fido film final finance financial fire firestone firmdale fish fishing fit fitness
flickr flights flir florist flowers fly foo food football ford forex forsale forum foundation
fox free fresenius frl frogans frontier ftr fujitsu fun fund furniture futbol fyi gal gallery
gallo gallup game games gap garden gay gbiz gdn gea gent genting george ggee gift gifts gives
giving glass gle global globo gmail gmbh gmo gmx godaddy gold goldpoint golf goodyear goog
google gop got gov grainger graphics gratis green gripe grocery group gucci guge guide guitars
guru hair hamburg hangout haus hbo hdfc hdfcbank health healthcare help here hermes hiphop
hisamitsu hitachi hiv hkt hockey holdings holiday homedepot homegoods homes homesense honda
horse hospital host hosting hot hotels hotmail house how hsbc hughes hyatt hyundai ibm icbc ice
icu ieee ifm ikano imamat imdb immo immobilien inc industries infiniti info ing ink institute
insurance insure int international intuit investments ipiranga irish ismaili ist istanbul itau
itv jaguar java jcb jeep jetzt jewelry jio jll jmp jnj jobs joburg jot joy jpmorgan jprs juegos
kaufen kddi kerryhotels kerryproperties kfh kia kids kim kindle kitchen kiwi koeln komatsu
kosher kpmg kpn krd kred kuokgroup kyoto lacaixa lamborghini lamer land landrover lanxess
lasalle lat latino latrobe law lawyer lds lease leclerc lefrak legal lego lexus lgbt lidl life
lifeinsurance lifestyle lighting like lilly limited limo lincoln link live living llc llp loan
loans locker locus lol london lotte lotto love lpl lplfinancial ltd ltda lundbeck luxe luxury
madrid maif maison makeup man management mango map market marketing markets marriott marshalls
mattel mba mckinsey med media meet melbourne meme memorial men menu merck merckmsd miami
microsoft mil mini mint mit mitsubishi mlb mls mma mobi mobile moda moe moi mom monash money
monster mormon mortgage moscow moto motorcycles mov movie msd mtn mtr museum music nab nagoya
name navy nba nec net netbank netflix network neustar new news next nextdirect nexus nfl ngo nhk
nico nike nikon ninja nissan nissay nokia norton now nowruz nowtv nra nrw ntt nyc obi observer
office okinawa olayan olayangroup ollo omega one ong onl online ooo open oracle orange org
organic origins osaka otsuka ott ovh page panasonic paris pars partners parts party pay pccw pet
pfizer pharmacy phd philips phone photo photography photos physio pics pictet pictures pid pin
ping pink pioneer pizza place play playstation plumbing plus pnc pohl poker politie porn post
praxi press prime pro prod productions prof progressive promo properties property protection pru
prudential pub pwc qpon quebec quest racing radio read realestate realtor realty recipes red
redumbrella rehab reise reisen reit reliance ren rent rentals repair report republican rest
restaurant review reviews rexroth rich richardli ricoh ril rio rip rocks rodeo rogers room rsvp
rugby ruhr run rwe ryukyu saarland safe safety sakura sale salon samsclub samsung sandvik
sandvikcoromant sanofi sap sarl sas save saxo sbi sbs scb schaeffler schmidt scholarships school
schule schwarz science scot search seat secure security seek select sener services seven sew sex
sexy sfr shangrila sharp shell shia shiksha shoes shop shopping shouji show silk sina singles
site ski skin sky skype sling smart smile sncf soccer social softbank software sohu solar
solutions song sony soy spa space sport spot srl stada staples star statebank statefarm stc
stcgroup stockholm storage store stream studio study style sucks supplies supply support surf
surgery suzuki swatch swiss sydney systems tab taipei talk taobao target tatamotors tatar tattoo
tax taxi tci tdk team tech technology tel temasek tennis teva thd theater theatre tiaa tickets
tienda tips tires tirol tjmaxx tjx tkmaxx tmall today tokyo tools top toray toshiba total tours
town toyota toys trade trading training travel travelers travelersinsurance trust trv tube tui
tunes tushu tvs ubank ubs unicom university uno uol ups vacations vana vanguard vegas ventures
verisign versicherung vet viajes video vig viking villas vin vip virgin visa vision viva vivo
vlaanderen vodka volvo vote voting voto voyage wales walmart walter wang wanggou watch watches
weather weatherchannel web webcam weber website wed wedding weibo weir whoswho wien wiki
williamhill win windows wine winners wme woodside work works world wow wtc wtf xbox xerox xihuan
xin xxx xyz yachts yahoo yamaxun yandex yodobashi yoga yokohama you youtube yun zappos zara zero
zip zone zuerich
"""

_IDN_TLDS = """
vermögensberater vermögensberatung ελ ευ бг бел дети ею католик ком мкд мон москва онлайн
орг рус рф сайт срб укр қаз հայ ישראל קום ابوظبي ارامكو الاردن البحرين الجزائر السعودية
العليان المغرب امارات ایران بارت بازار بيتك بھارت تونس سودان سورية شبكة عراق عرب عمان
فلسطين قطر كاثوليك كوم مصر مليسيا موريتانيا موقع همراه پاکستان ڀارت कॉम नेट भारत भारतम्
भारोत संगठन বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ இந்தியா இலங்கை சிங்கப்பூர் భారత్ ಭಾರತ ഭാരതം
ලංකා คอม ไทย ລາວ გე みんな アマゾン クラウド グーグル コム ストア セール ファッション
ポイント 世界 中信 中国 中國 中文网 亚马逊 企业 佛山 信息 健康 八卦 公司 公益 台湾 台灣
商城 商店 商标 嘉里 嘉里大酒店 在线 大拿 天主教 娱乐 家電 广东 微博 慈善 我爱你 手机 招聘
政务 政府 新加坡 新闻 时尚 書籍 机构 淡马锡 游戏 澳門 点看 移动 组织机构 网址 网店 网站
网络 联通 谷歌 购物 通販 集团 電訊盈科 飞利浦 食品 餐厅 香格里拉 香港 닷넷 닷컴 삼성 한국
"""

# The internationalised ones among _IDN_TLDS that are country codes.
_IDN_CCTLDS = """
ελ ευ бг бел ею мкд мон рф срб укр қаз հայ ישראל الاردن البحرين الجزائر السعودية المغرب
امارات ایران بارت بھارت تونس سودان سورية عراق عمان فلسطين قطر مصر مليسيا موريتانيا پاکستان
ڀارت भारत भारतम् भारोत বাংলা ভারত ভাৰত ਭਾਰਤ ભારત ଭାରତ இந்தியா இலங்கை சிங்கப்பூர் భారత్
ಭಾರತ ഭാരതം ලංකා ไทย ລາວ გე 中国 中國 台湾 台灣 新加坡 澳門 香港 한국
"""
