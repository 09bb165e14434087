"""The stand-in's own tweet length check (twitter-text v3 rules, as X applies them).

It decides what the stand-in refuses, so it must agree with X: it passes the same
conformance data and boundary corpus as ``worker.content.tweet_text`` (tests/tweet_text).
It is deliberately written apart from that module (a scanner rather than one big regular
expression, a trie for emoji) so that the two implementations check each other; only data is
shared: the IANA top-level domains and the emoji sequences X counts as one
(``worker/content/emoji_sequences.txt``).
"""

from __future__ import annotations

import re
import unicodedata
from importlib import resources

from worker.content.tweet_text import country_code_tlds, generic_tlds

MAX_LENGTH = 280
URL_LENGTH = 23

_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_GTLDS = generic_tlds()
_CCTLDS = country_code_tlds()  # only to recognise top-level domains

# URL pieces (twitter-text's character classes, spelled out for a scanner).
_HOST_STOP = set("!'#%&()*+,\\-./:;<=>?@[]^_{|}~$\"`") | {
    "\ufffe", "\ufeff", "\uffff", "\u061c", "\u200e", "\u200f",
}  # fmt: skip
_PATH_CHARS = re.compile(
    r"[a-z\u0400-\u04ff0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&\xc0-\xd6\xd8-\xf6\xf8-\u024f"
    r"\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb"
    r"\u0300-\u036f\u1e00-\u1eff()]",
    re.IGNORECASE,
)
_PATH_END = re.compile(
    r"[+\-a-z\u0400-\u04ff0-9=_#/\xc0-\xd6\xd8-\xf6\xf8-\u024f\u1e00-\u1eff)]", re.IGNORECASE
)
_QUERY_CHARS = re.compile(r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]", re.IGNORECASE)
_QUERY_END = re.compile(r"[a-z0-9\-_&=#/]", re.IGNORECASE)
_ASCII_LABEL = re.compile(r"^[a-z0-9\-\xc0-\xd6\xd8-\xf6\xf8-\u024f\u1e00-\u1eff]+$", re.I)


def _weight(char: str) -> int:
    code = ord(char)
    return 1 if any(lo <= code <= hi for lo, hi in _LIGHT) else 2


def _emoji_trie() -> dict[str, dict]:
    """A trie of the emoji sequences X counts as one (the same generated data as the worker)."""
    raw = resources.files("worker.content").joinpath("emoji_sequences.txt").read_text("utf-8")
    trie: dict[str, dict] = {}
    for line in raw.splitlines():
        if not line or line.startswith("#"):
            continue
        node = trie
        for code in line.split(";")[0].split():
            node = node.setdefault(chr(int(code, 16)), {})
        node[""] = {}
    return trie


_EMOJI = _emoji_trie()


def _emoji_cluster(text: str, i: int) -> int:
    """Length of the longest known emoji sequence starting at ``i`` (0 when none)."""
    node = _EMOJI
    best = 0
    j = i
    while j < len(text) and text[j] in node:
        node = node[text[j]]
        j += 1
        if "" in node:
            best = j - i
    return best


def _is_host_char(char: str) -> bool:
    return not char.isspace() and (char not in _HOST_STOP or char in "-_.")


def _host_ends(text: str) -> list[int]:
    """For each index, where the run of host characters starting there ends (one pass)."""
    ends = [len(text)] * (len(text) + 1)
    for j in range(len(text) - 1, -1, -1):
        ends[j] = ends[j + 1] if _is_host_char(text[j]) else j
    return ends


def _known_tld(label: str) -> bool:
    lowered = label.lower()
    return lowered in _GTLDS or lowered in _CCTLDS or lowered.startswith("xn--")


def _ends_tld(following: str) -> bool:
    """A TLD ends before anything but an ASCII letter or digit, "@", "+" or "-"."""
    return not following or not (
        (following.isascii() and following.isalnum()) or following in "@+-"
    )


def _tld_prefix(label: str, following: str) -> str | None:
    """``label`` itself or its longest prefix that is a TLD, where a TLD may end."""
    if _known_tld(label) and _ends_tld(following):
        return label
    for cut in range(len(label) - 1, 1, -1):
        if _ends_tld(label[cut]) and _known_tld(label[:cut]):
            return label[:cut]
    return None


def _domain_prefix(host: str, following: str) -> str | None:
    """The longest prefix of ``host`` (whole labels but the last) that ends with a TLD."""
    labels = host.split(".")
    for count in range(len(labels), 1, -1):
        last = labels[count - 1]
        tld = _tld_prefix(last, following if count == len(labels) else ".")
        if tld is None:
            continue
        names = labels[: count - 1]
        if any(not name or name[0] in "-_" or name[-1] in "-_" for name in names):
            continue
        if "_" in names[-1]:
            continue
        return ".".join([*names, tld])
    return None


def _ascii_domains(domain: str) -> list[tuple[int, int]]:
    """Spans of the ASCII domains inside ``domain`` (labels of ASCII letters, digits, "-" and
    Latin accents, then a TLD), leftmost first, each with as many labels as can be had.

    X links only these when there is no protocol: in "twitter.comこれはexample.com" both.
    """
    found: list[tuple[int, int]] = []
    start = 0
    while start < len(domain):
        span = _ascii_domain_at(domain, start)
        if span is None:
            start += 1
            continue
        found.append(span)
        start = span[1]
    return found


def _ascii_domain_at(domain: str, start: int) -> tuple[int, int] | None:
    dots: list[int] = []  # positions of the dots ending each label, in order
    j = start
    while True:
        k = j
        while k < len(domain) and _ASCII_LABEL.match(domain[k]):
            k += 1
        if k == j or k >= len(domain) or domain[k] != ".":
            break
        dots.append(k)
        j = k + 1
    for dot in reversed(dots):  # as many labels as possible, then the longest TLD
        rest = domain[dot + 1 :]
        for size in range(min(len(rest), 64), 1, -1):
            following = rest[size] if size < len(rest) else ""
            tld = rest[:size]
            punycode_ok = not tld.lower().startswith("xn--") or tld.isascii()
            if _known_tld(tld) and _ends_tld(following) and punycode_ok:
                return (start, dot + 1 + size)
    return None


def _labels_fit(domain: str) -> bool:
    """Each label is 1..63 characters once punycoded ("xn--" + RFC 3492) like twitter-text."""
    if domain.startswith("xn--") and not domain.isascii():
        return False
    for label in domain.split("."):
        size = len(label) if label.isascii() else 4 + len(label.encode("punycode"))
        if not 1 <= size <= 63:
            return False
    return True


def _scan_url(text: str, i: int, host_ends: list[int]) -> tuple[int, list[tuple[int, int]]] | None:
    """A URL candidate at ``i``: (its end, the links in it), or None when there is none."""
    if i > 0:
        before = text[i - 1]
        if (before.isascii() and (before.isalnum() or before in "@$#")) or before in "＠＃":
            return None
    lowered = text[i : i + 8].lower()
    protocol = "https://" if lowered.startswith("https://") else ""
    protocol = protocol or ("http://" if lowered.startswith("http://") else "")
    start = i + len(protocol)
    host_end = host_ends[start]
    if host_end == start or text.find(".", start, host_end) < 0:
        return None
    host = text[start:host_end].rstrip(".")
    domain = _domain_prefix(host, text[start + len(host) : start + len(host) + 1])
    if domain is None:
        return None
    j = start + len(domain)
    if text[j : j + 1] == ":" and text[j + 1 : j + 2].isdigit():
        k = j + 1
        while k < len(text) and text[k].isdigit():
            k += 1
        j = k
    has_path = False
    if text[j : j + 1] == "/":
        k = j + 1
        while k < len(text) and _PATH_CHARS.match(text[k]):
            k += 1
        segment = text[j + 1 : k]
        while segment and not _PATH_END.match(segment[-1]):
            segment = segment[:-1]
        while segment.count(")") > segment.count("("):
            segment = segment[: segment.rindex(")")]
        j = j + 1 + len(segment)
        has_path = True
    if text[j : j + 1] == "?":
        k = j + 1
        while k < len(text) and _QUERY_CHARS.match(text[k]):
            k += 1
        query = text[j + 1 : k]
        while query and not _QUERY_END.match(query[-1]):
            query = query[:-1]
        if query:
            j = j + 1 + len(query)
    if not _labels_fit(domain) or not _length_fits(protocol, text[i:j], domain):
        return (j, [])
    if protocol:
        if domain.lower() == "t.co" and has_path:
            slug = re.match(r"/([a-z0-9]+)", text[start + 4 : j], re.IGNORECASE)
            if slug and len(slug.group(1)) > 40:
                return (j, [])
            if slug:
                j = _tco_end(text, start + 4 + slug.end(), j)
        return (j, [(i, j)])
    if i > 0 and text[i - 1] in "-_./":
        return (j, [])
    # Without a protocol X links only the ASCII domains inside; a path goes with the last.
    links = [(i + a, i + b) for a, b in _ascii_domains(domain)]
    if links and has_path:
        links[-1] = (links[-1][0], j)
    return (j, links)


def _length_fits(protocol: str, url: str, domain: str) -> bool:
    """At most 4,096 characters with the domain punycoded and a protocol (twitter-text)."""
    encoded = sum(
        len(label) if label.isascii() else 4 + len(label.encode("punycode"))
        for label in domain.split(".")
    ) + domain.count(".")
    return len(protocol or "https://") + len(url) - len(domain) + encoded <= 4096


def _tco_end(text: str, slug_end: int, end: int) -> int:
    """A t.co link keeps its slug and a query string, and nothing else of its path."""
    if text[slug_end : slug_end + 1] != "?":
        return slug_end
    k = slug_end + 1
    while k < end and _QUERY_CHARS.match(text[k]):
        k += 1
    query = text[slug_end + 1 : k]
    while query and not _QUERY_END.match(query[-1]):
        query = query[:-1]
    return slug_end + 1 + len(query) if query else slug_end


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) code point spans of the links X makes of ``text`` (used as given).

    Each span is one t.co link on X and counts 23 characters.
    """
    spans: list[tuple[int, int]] = []
    host_ends = _host_ends(text)
    i = 0
    # A URL needs a preceding character that no earlier URL candidate took (or the start).
    no_url_before = 0
    while i < len(text):
        if (i > no_url_before and (text[i].isalnum() or not text[i].isascii())) or i == 0:
            found = _scan_url(text, i, host_ends)
            if found is not None:
                end, links = found
                no_url_before = end
                spans.extend(links)
                if links:
                    i = end
                    continue
        i += 1
    return spans


def tweet_length(text: str) -> int:
    """Weighted length as X counts it (twitter-text v3): links 23, emoji 2, code points 1 or 2."""
    text = unicodedata.normalize("NFC", text)
    links = dict(url_spans(text))
    total = 0
    i = 0
    while i < len(text):
        if i in links:
            total += URL_LENGTH
            i = links[i]
            continue
        cluster = _emoji_cluster(text, i)
        if cluster:
            total += 2
            i += cluster
            continue
        total += _weight(text[i])
        i += 1
    return total


def has_invalid_characters(text: str) -> bool:
    return any(char in "\ufffe\ufeff\uffff" for char in text)


def contains_url(text: str) -> bool:
    """Whether X would link something in ``text`` (what makes a post cost the URL price)."""
    return bool(url_spans(unicodedata.normalize("NFC", text)))


def is_blank(text: str) -> bool:
    """Empty or whitespace only: X refuses such a post (nothing to show).

    twitter-text's parseTweet calls " " valid (weighted length 1), but X's API and its web
    composer refuse a post of whitespace alone, no-break spaces included
    (Automattic/jetpack#17521: "This tweet will be rejected by Twitter's API ... confirmed by
    trying to tweet only whitespace on twitter.com").
    """
    return not text.strip()


def refusal(text: str) -> str | None:
    """Why X refuses ``text`` as a post's text, or None when it accepts it."""
    if is_blank(text):
        return "blank"
    if has_invalid_characters(text):
        return "invalid characters"
    if tweet_length(text) > MAX_LENGTH:
        return "too long"
    return None
