"""The stand-in's own tweet length check (twitter-text v3 rules).

Deliberately written apart from ``worker.content.tweet_text`` (a scanner rather than one big
regular expression, coarser emoji tables) so that the two implementations check each other;
only the list of top-level domains (IANA data) is shared.
"""

from __future__ import annotations

import re
import unicodedata

from worker.content.tweet_text import country_code_tlds, generic_tlds

MAX_LENGTH = 280
URL_LENGTH = 23

_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
_GTLDS = generic_tlds()
_CCTLDS = country_code_tlds()

_PICTO_SINGLES = {
    0xA9, 0xAE, 0x203C, 0x2049, 0x2122, 0x2139, 0x21A9, 0x21AA, 0x231A, 0x231B, 0x2328,
    0x2388, 0x23CF, 0x24C2, 0x25AA, 0x25AB, 0x25B6, 0x25C0, 0x2934, 0x2935, 0x2B1B, 0x2B1C,
    0x2B50, 0x2B55, 0x3030, 0x303D, 0x3297, 0x3299,
}  # fmt: skip
_PICTO_RANGES = (
    (0x2194, 0x2199), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x25FB, 0x25FE), (0x2600, 0x27BF),
    (0x2B05, 0x2B07), (0x1F000, 0x1F1E5), (0x1F200, 0x1F3FA), (0x1F400, 0x1FAFF),
)  # fmt: skip

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


def _pictographic(char: str) -> bool:
    code = ord(char)
    return code in _PICTO_SINGLES or any(lo <= code <= hi for lo, hi in _PICTO_RANGES)


def _emoji_cluster(text: str, i: int) -> int:
    """Length of the emoji cluster starting at ``i`` (0 when none)."""
    n = len(text)
    char = text[i]
    code = ord(char)
    if 0x1F1E6 <= code <= 0x1F1FF:
        return 2 if i + 1 < n and 0x1F1E6 <= ord(text[i + 1]) <= 0x1F1FF else 1
    if char in "#*0123456789":
        j = i + 1 + (1 if text[i + 1 : i + 2] == "\ufe0f" else 0)
        return j + 1 - i if text[j : j + 1] == "\u20e3" else 0
    if 0x1F3FB <= code <= 0x1F3FF:
        return 1

    def element(k: int) -> int:
        if k >= n or not _pictographic(text[k]):
            return 0
        nxt = text[k + 1 : k + 2]
        if nxt == "\ufe0e" or (text[k] in "\u00a9\u00ae\u2122\u265f" and nxt != "\ufe0f"):
            return 0
        end = k + 1
        if nxt == "\ufe0f" or (nxt and 0x1F3FB <= ord(nxt) <= 0x1F3FF):
            end += 1
        tags = end
        while tags < n and 0xE0020 <= ord(text[tags]) <= 0xE007E:
            tags += 1
        if tags > end and tags < n and ord(text[tags]) == 0xE007F:
            end = tags + 1
        return end - k

    size = element(i)
    if not size:
        return 0
    j = i + size
    while j < n and text[j] == "\u200d":
        more = element(j + 1)
        if not more:
            break
        j += 1 + more
    return j - i


def _host_end(text: str, i: int) -> int:
    j = i
    while (
        j < len(text) and not text[j].isspace() and (text[j] not in _HOST_STOP or text[j] in "-_.")
    ):
        j += 1
    return j


def _known_tld(label: str) -> bool:
    lowered = label.lower()
    return lowered in _GTLDS or lowered in _CCTLDS or lowered.startswith("xn--")


def _tld_prefix(label: str) -> str | None:
    """``label`` itself or its longest prefix that is a TLD ending before a non-word char."""
    if _known_tld(label):
        return label
    for cut in range(len(label) - 1, 1, -1):
        after = label[cut]
        if (after.isascii() and after.isalnum()) or after in "@+-":
            continue
        if _known_tld(label[:cut]):
            return label[:cut]
    return None


def _domain_prefix(host: str, ascii_only: bool) -> str | None:
    """The longest prefix of ``host`` (whole labels) that ends with a known TLD, if any."""
    labels = host.split(".")
    for count in range(len(labels), 1, -1):
        tld = _tld_prefix(labels[count - 1]) if count == len(labels) else labels[count - 1]
        if tld is None or not _known_tld(tld):
            continue
        names = labels[: count - 1]
        if any(not name or name[0] in "-_" or name[-1] in "-_" for name in names):
            continue
        if "_" in names[-1]:
            continue
        candidate = [*names, tld]
        if ascii_only and not all(_ASCII_LABEL.match(name) for name in candidate):
            continue
        return ".".join(candidate)
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


def _scan_url(text: str, i: int) -> tuple[int, bool] | None:
    """A URL candidate at ``i``: (end, counts as URL), or None when there is none."""
    if i > 0:
        before = text[i - 1]
        if (before.isascii() and (before.isalnum() or before in "@$#")) or before in "＠＃":
            return None
    lowered = text[i : i + 8].lower()
    protocol = "https://" if lowered.startswith("https://") else ""
    protocol = protocol or ("http://" if lowered.startswith("http://") else "")
    start = i + len(protocol)
    host_end = _host_end(text, start)
    if host_end == start:
        return None
    host = text[start:host_end].rstrip(".")
    domain = _domain_prefix(host, ascii_only=False)
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
    if not _labels_fit(domain):
        return (j, False)
    if protocol:
        if domain.lower() == "t.co" and has_path:
            slug = re.match(r"/([a-z0-9]+)", text[start + 4 : j], re.IGNORECASE)
            if slug and len(slug.group(1)) > 40:
                return (j, False)
            if slug:
                j = start + 4 + slug.end()
        return (j, True)
    if i > 0 and text[i - 1] in "-_./":
        return (j, False)
    # Without a protocol only an ASCII domain counts (the last ASCII labels of the host).
    labels = domain.split(".")
    first_ascii = len(labels) - 1  # the TLD itself may be internationalised
    while first_ascii > 0 and _ASCII_LABEL.match(labels[first_ascii - 1]):
        first_ascii -= 1
    if first_ascii:
        return None  # any URL starts later, where the ASCII labels begin
    lowered_labels = [label.lower() for label in labels]
    if (
        not has_path
        and len(labels) == 2
        and lowered_labels[1] in _CCTLDS
        and lowered_labels[1] not in ("co", "tv")
    ):
        return (j, False)
    return (j, True)


def tweet_length(text: str) -> int:
    """Weighted length as X counts it (twitter-text v3)."""
    text = unicodedata.normalize("NFC", text)
    total = 0
    i = 0
    # A URL needs a preceding character that no earlier URL candidate took (or the start).
    no_url_before = 0
    while i < len(text):
        if (i > no_url_before and (text[i].isalnum() or not text[i].isascii())) or i == 0:
            found = _scan_url(text, i)
            if found is not None:
                end, is_url = found
                no_url_before = end
                if is_url:
                    total += URL_LENGTH
                    i = end
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


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) code point offsets of every URL X links in ``text`` (NFC), in order.

    The same scan as :func:`tweet_length`: these are the links X wraps in t.co, including bare
    domains it auto-links (``see chirpbase.dev``).
    """
    text = unicodedata.normalize("NFC", text)
    spans: list[tuple[int, int]] = []
    i = 0
    no_url_before = 0
    while i < len(text):
        if (i > no_url_before and (text[i].isalnum() or not text[i].isascii())) or i == 0:
            found = _scan_url(text, i)
            if found is not None:
                end, is_url = found
                no_url_before = end
                if is_url:
                    spans.append((i, end))
                    i = end
                    continue
        i += _emoji_cluster(text, i) or 1
    return spans
