"""The MIME body of a message: its readable text and its attachments.

The tree is walked without recursion and with a bound on the number of parts; an attached
message (``message/rfc822``, a forwarded mail) is one attachment, not walked into. The text is
every inline ``text/plain`` part, else every inline ``text/html`` part converted to text (so the
HTML twin in a ``multipart/alternative`` is never read twice). Everything else is an attachment:
recorded with name, type, size and SHA-256, and stored when a store is given and the per-file and
per-message caps allow; over a cap it is recorded only and the message is flagged.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message

from baton.model import Attachment
from baton.signals.email.attachments import AttachmentStore, Budget, Stored, digest_only
from baton.signals.email.text import decode_bytes, decode_header_text, html_to_text, safe_text

__all__ = ["MAX_ATTACHMENTS", "Content", "read_parts"]

MAX_ATTACHMENTS = 100  # Event.attachments holds at most this many
_MAX_NAME = 255
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Content:
    """What the body of one message amounts to."""

    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    defects: set[str] = field(default_factory=set)


def _leaves(msg: Message, *, max_parts: int, content: Content) -> list[Message]:
    """Non-multipart parts in document order; attached messages count as leaves."""
    leaves: list[Message] = []
    stack: list[Message] = [msg]
    seen = 0
    while stack:
        part = stack.pop()
        seen += 1
        if seen > max_parts:
            content.flags.add("too_many_parts")
            break
        content.defects.update(type(d).__name__ for d in part.defects)
        if part.get_content_type() == "message/rfc822" or not part.is_multipart():
            leaves.append(part)
            continue
        children = part.get_payload()
        if isinstance(children, list):
            stack.extend(reversed([c for c in children if isinstance(c, Message)]))
    return leaves


def _filename(part: Message) -> str | None:
    raw = part.get_filename()
    if raw is None:
        return None
    text, _ = decode_header_text(raw[:2_000])  # Outlook puts encoded words in filename parameters
    name = _UNSAFE_NAME.sub("", re.split(r"[\\/]", text)[-1]).strip()
    return name[:_MAX_NAME] or None


def _is_text_body(part: Message, filename: str | None) -> bool:
    if filename is not None or part.get_content_disposition() == "attachment":
        return False
    return part.get_content_type() in ("text/plain", "text/html")


def _payload(part: Message) -> bytes | None:
    """The decoded bytes of a leaf; an attached message as its own bytes."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            try:
                return inner[0].as_bytes()
            except (ValueError, LookupError, UnicodeError, TypeError, AttributeError):
                return None
        return None
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else None


def _text_of(part: Message, content: Content) -> str:
    data = _payload(part) or b""
    text, fell_back = decode_bytes(data, part.get_content_charset())
    if fell_back:
        content.flags.add("charset_fallback")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return html_to_text(text) if part.get_content_type() == "text/html" else text


def _default_name(part: Message, number: int) -> str:
    ctype = part.get_content_type()
    ext = ".eml" if ctype == "message/rfc822" else (mimetypes.guess_extension(ctype) or ".bin")
    return f"attachment-{number}{ext}"


def read_parts(msg: Message, *, store: AttachmentStore | None, budget: Budget, max_parts: int) -> Content:
    """The text and attachments of ``msg`` (see the module docstring)."""
    content = Content()
    plain: list[str] = []
    html: list[str] = []
    files: list[tuple[Message, str | None]] = []
    for part in _leaves(msg, max_parts=max_parts, content=content):
        name = _filename(part)
        if _is_text_body(part, name):
            (plain if part.get_content_type() == "text/plain" else html).append(_text_of(part, content))
        else:
            files.append((part, name))
    content.text = safe_text("\n\n".join(t.strip() for t in (plain or html) if t.strip()))
    if len(files) > MAX_ATTACHMENTS:
        content.flags.add("too_many_attachments")
        files = files[:MAX_ATTACHMENTS]
    for number, (part, name) in enumerate(files, start=1):
        data = _payload(part)
        if data is None:
            content.flags.add("attachment_unreadable")
            data = b""
        shown = name or _default_name(part, number)
        stored: Stored
        if store is not None and budget.admits(len(data)):
            stored = store.put(data)
            budget.spend(len(data))
        else:
            stored = digest_only(data)
            if store is not None:
                content.flags.add("attachment_over_cap")
                content.not_stored.append(shown)
        content.attachments.append(
            Attachment(
                name=shown,
                type=safe_text(part.get_content_type())[:255],
                size=stored.size,
                sha256=stored.sha256,
                uri=stored.uri,
            )
        )
    return content
