"""Text out of e-mail: charsets that lie, encoded headers, HTML bodies and quoted history.

Every function here is total: whatever bytes arrive, it returns text (flagging a fallback) and
never raises. Text leaving this module is safe to store: no NUL characters and no lone
surrogates (PostgreSQL's JSON type and orjson refuse both).
"""

from __future__ import annotations

import codecs
import re
from email.errors import MessageError
from email.header import decode_header
from html.parser import HTMLParser

__all__ = ["decode_bytes", "decode_header_text", "html_to_text", "safe_text", "strip_quoted"]

# Codecs Python can "decode" with that are not character sets a mail client would declare; a
# message naming one gets the fallback chain instead.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"})
# Tried in order when the declared charset is missing, unknown or wrong. cp1252 is what most
# mislabelled Western mail really is; latin-1 decodes any byte string, so the chain always ends.
_FALLBACKS = ("utf-8", "cp1252", "latin-1")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def safe_text(text: str) -> str:
    """``text`` without lone surrogates and control characters other than tab and newlines."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)


def _codec(charset: str | None) -> str | None:
    """Python's name for a declared charset, or None when it is not a usable character set."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if name in ("unknown-8bit", "x-unknown", "x-user-defined"):
        return None
    try:
        found = codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a name with NUL or similar
        return None
    return None if found in _NOT_CHARSETS else found


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode ``data`` declared as ``charset``; the flag is True when the declaration did not work.

    An absent declaration that turns out to be ASCII or UTF-8 is not a fallback: that is what
    RFC 6532 mail looks like.
    """
    declared = _codec(charset)
    tries: list[tuple[str, bool]]
    if not charset or declared == "ascii":
        tries = [("utf-8", False)]  # ASCII is UTF-8, and undeclared 8-bit text mostly is too
    elif declared == "iso8859-1":
        # Mail labelled ISO-8859-1 is, in practice, Windows-1252 (0x80 is the euro sign, not a
        # control character); the HTML standard decodes the label the same way.
        tries = [("cp1252", False), ("iso8859-1", False)]
    else:
        tries = [(declared, False)] if declared is not None else []
    tries += [(name, True) for name in _FALLBACKS]
    for name, fell_back in tries:
        try:
            return safe_text(data.decode(name)), fell_back
        except (UnicodeError, LookupError, ValueError):
            continue
    raise AssertionError("latin-1 decodes every byte string")  # pragma: no cover


def decode_header_text(value: object) -> tuple[str, bool]:
    """A header value with its RFC 2047 encoded words decoded; True when a charset fell back.

    ``value`` is what the compat32 parser returns: a ``str`` (raw 8-bit bytes are surrogate
    escaped) or an ``email.header.Header``.
    """
    raw = str(value) if not isinstance(value, str) else value
    # Raw 8-bit header bytes (RFC 6532 says UTF-8) arrive surrogate-escaped.
    if any("\udc80" <= ch <= "\udcff" for ch in raw):
        text, fell_back = decode_bytes(raw.encode("ascii", "surrogateescape"), None)
        return _unfold(text), fell_back
    try:
        pieces = decode_header(raw)
    except (MessageError, ValueError, LookupError, IndexError, AssertionError):  # malformed encoded words
        return _unfold(safe_text(raw)), True
    out: list[str] = []
    fell_back = False
    for chunk, charset in pieces:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        text, fb = decode_bytes(chunk, charset or "ascii")
        fell_back = fell_back or fb
        out.append(text)
    return _unfold(safe_text("".join(out))), fell_back


def _unfold(text: str) -> str:
    return " ".join(text.split())


class _TextOfHtml(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset(
        {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


_TAG = re.compile(r"<[^>]*>")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: tags dropped, blocks on their own lines, scripts removed."""
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    except (AssertionError, ValueError, IndexError):  # html.parser on pathological markup
        text = _TAG.sub(" ", html)
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Where quoted history begins in the usual clients: Gmail/Apple ("On ... wrote:"), Outlook
# ("-----Original Message-----" and its translations, or a "From: ... Sent: ..." block).
# A forwarded message is not history: it is what the customer wants us to read.
_ATTRIBUTION = re.compile(
    r"^(?:on\s.{0,300}\swrote:|am\s.{0,300}\sschrieb\s?.{0,100}:|le\s.{0,300}\sa\s[ée]crit\s?:|"
    r"el\s.{0,300}\sescribi[óo]:|op\s.{0,300}\sschreef.{0,100}:|il\s.{0,300}\sha scritto:)\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*(?:from|von|de|van|da):\s.+$", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(?:sent|gesendet|envoyé|enviado|verzonden|inviato):\s", re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """A reply without the history it quotes; the whole text when nothing would remain."""
    lines = text.splitlines()
    cut = len(lines)
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or _ATTRIBUTION.match(line.strip()):
            cut = i
            break
        if _OUTLOOK_FROM.match(line) and i + 1 < len(lines) and _OUTLOOK_SENT.match(lines[i + 1]):
            cut = i
            break
    kept = lines[:cut]
    while kept and (kept[-1].lstrip().startswith(">") or not kept[-1].strip()):
        kept.pop()  # a trailing block of "> " lines is history too
    result = "\n".join(kept).strip()
    return result or text.strip()
