"""A message's text and raw entities as a safe, well-formed HTML fragment."""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from pyrogram import raw

# Text links may point only here (compared case-insensitively); anything else, such as
# `javascript:`, stays plain text.
SAFE_LINK_PREFIXES = ("http://", "https://", "tg://", "mailto:")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USERNAME = re.compile(r"[A-Za-z0-9_]+")
# What may stay of a code block's language inside `class="language-…"`.
_LANGUAGE_UNSAFE = re.compile(r"[^A-Za-z0-9_+#.-]")

_SIMPLE_TAGS: dict[type[Any], str] = {
    raw.types.MessageEntityBold: "b",
    raw.types.MessageEntityItalic: "i",
    raw.types.MessageEntityUnderline: "u",
    raw.types.MessageEntityStrike: "s",
    raw.types.MessageEntitySpoiler: "tg-spoiler",
    raw.types.MessageEntityCode: "code",
}


@dataclass(frozen=True)
class _Span:
    """One entity that renders as a tag: where it starts and ends (in characters)."""

    start: int
    end: int
    index: int
    open: str
    close: str
    keeps_newlines: bool
    is_link: bool


def is_safe_link(url: str) -> bool:
    """Whether a text link's URL may become an `href` (http, https, tg or mailto)."""
    return url.lower().startswith(SAFE_LINK_PREFIXES)


def to_html(text: str, entities: Sequence[Any] | None) -> str:
    """The HTML fragment of `text` with its raw MessageEntity list (UTF-16 offsets).

    All text is escaped, newlines become `<br>` outside code, and entities that overlap
    without nesting are closed and reopened so that the fragment is always well-formed.
    A link never opens inside another (a browser would end the outer one there), and text
    that is not valid Unicode (a lone surrogate) shows U+FFFD.
    """
    if not text:
        return ""
    text = _valid_unicode(text)
    offsets = _utf16_offsets(text)
    spans: list[_Span] = []
    for index, entity in enumerate(entities or ()):
        start = _char_index(offsets, int(entity.offset))
        end = _char_index(offsets, int(entity.offset) + int(entity.length))
        if start >= end:
            continue
        tags = _tags(entity, text[start:end])
        if tags is not None:
            keeps_newlines = isinstance(
                entity, raw.types.MessageEntityPre | raw.types.MessageEntityCode
            )
            is_link = tags[0].startswith("<a ")
            spans.append(_Span(start, end, index, *tags, keeps_newlines, is_link))

    boundaries = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out: list[str] = []
    stack: list[_Span] = []
    for start, end in pairwise(boundaries):
        # Outermost first: earlier start, then longer, then the order Telegram sent.
        wanted = _outermost_link_only(
            sorted(
                (s for s in spans if s.start <= start and end <= s.end),
                key=lambda s: (s.start, -s.end, s.index),
            )
        )
        keep = 0
        while keep < min(len(stack), len(wanted)) and stack[keep] is wanted[keep]:
            keep += 1
        out.extend(s.close for s in reversed(stack[keep:]))
        out.extend(s.open for s in wanted[keep:])
        stack = wanted
        chunk = html.escape(text[start:end], quote=False)
        if not any(s.keeps_newlines for s in wanted):
            chunk = chunk.replace("\n", "<br>")
        elif out and out[-1].endswith("<pre>") and chunk.startswith("\n"):
            chunk = "\n" + chunk  # HTML drops a newline right after <pre>
        out.append(chunk)
    out.extend(s.close for s in reversed(stack))
    return "".join(out)


def _valid_unicode(text: str) -> str:
    """`text` with surrogate pairs joined and lone surrogates as U+FFFD: each stays as many
    UTF-16 units long, so entity offsets still fit."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _outermost_link_only(spans: list[_Span]) -> list[_Span]:
    """`spans` (outermost first) without the links inside another link."""
    first_link = next((s for s in spans if s.is_link), None)
    return [s for s in spans if not s.is_link or s is first_link]


def _utf16_offsets(text: str) -> list[int]:
    """The UTF-16 offset of each character of `text`, and the total length last."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


def _char_index(offsets: list[int], unit: int) -> int:
    """The character index at a UTF-16 offset (one inside a surrogate pair moves forward)."""
    unit = max(0, min(unit, offsets[-1]))
    return bisect_left(offsets, unit)


def _tags(entity: Any, covered: str) -> tuple[str, str] | None:
    """The opening and closing tags of an entity; None when it renders as plain text."""
    simple = _SIMPLE_TAGS.get(type(entity))
    if simple is not None:
        return f"<{simple}>", f"</{simple}>"
    if isinstance(entity, raw.types.MessageEntityPre):
        return _pre_tags(entity.language)
    if isinstance(entity, raw.types.MessageEntityBlockquote):
        return ("<blockquote expandable>" if entity.collapsed else "<blockquote>"), "</blockquote>"
    if isinstance(entity, raw.types.MessageEntityCustomEmoji):
        return f'<tg-emoji emoji-id="{int(entity.document_id)}">', "</tg-emoji>"
    href = _href(entity, covered)
    if href is None:
        return None
    return f'<a href="{_attr(href)}">', "</a>"


def _pre_tags(language: str | None) -> tuple[str, str]:
    """`<pre>`, or `<pre><code class="language-…">` with a (sanitised) language."""
    language = _LANGUAGE_UNSAFE.sub("", language or "")
    if language:
        return f'<pre><code class="language-{_attr(language)}">', "</code></pre>"
    return "<pre>", "</pre>"


def _href(entity: Any, covered: str) -> str | None:
    """Where a link entity points; None for other entities and for unsafe targets."""
    if isinstance(entity, raw.types.MessageEntityTextUrl):
        url = str(entity.url or "")
        return url if is_safe_link(url) else None
    if isinstance(entity, raw.types.MessageEntityUrl):
        if not _SCHEME.match(covered):
            return f"https://{covered}"
        return covered if covered.lower().startswith(("http://", "https://")) else None
    if isinstance(entity, raw.types.MessageEntityEmail):
        return f"mailto:{covered}"
    if isinstance(entity, raw.types.MessageEntityMention):
        name = covered.removeprefix("@")
        return f"https://t.me/{name}" if _USERNAME.fullmatch(name) else None
    return None


def _attr(value: str) -> str:
    """`value` escaped for a double-quoted attribute."""
    return html.escape(value, quote=True)
