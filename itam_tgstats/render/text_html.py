"""A message's text and raw entities as a safe, well-formed HTML fragment."""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import Any

from pyrogram import raw

# Text links may point only here (compared case-insensitively); anything else, such as
# `javascript:`, stays plain text.
SAFE_LINK_PREFIXES = ("http://", "https://", "tg://", "mailto:")

# At most this many entities of a message are used (Telegram sends far fewer); the rest are
# dropped. Reopening crossing entities may add at most twice the text plus this much markup.
MAX_ENTITIES = 1_000
REOPEN_BUDGET = 1_024

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A URL's scheme as a browser reads it: any `name:` first, after what it ignores (leading C0
# controls and spaces, and tabs and newlines anywhere).
_ANY_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_IGNORED_IN_URLS = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
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


def is_safe_display_url(text: str) -> bool:
    """Whether a URL's display form (`misis.ru/news`) may reach the page: it carries no
    scheme, or one a text link may have. Read as a browser would read it as an address, so
    ` javascript:…` (and a tab or newline inside the word) count as `javascript:`;
    `host:8080/…` reads as the scheme `host` and is refused too."""
    as_address = _IGNORED_IN_URLS.sub("", text).lstrip(_C0_OR_SPACE)
    return _ANY_SCHEME.match(as_address) is None or is_safe_link(as_address)


def to_html(text: str, entities: Sequence[Any] | None) -> str:
    """The HTML fragment of `text` with its raw MessageEntity list (UTF-16 offsets).

    All text is escaped, newlines become `<br>` outside code, and entities that overlap
    without nesting are closed and reopened so that the fragment is always well-formed.
    A link never opens inside another (a browser would end the outer one there), and text
    that is not valid Unicode (a lone surrogate) shows U+FFFD.

    Bounded for hostile input: only the first MAX_ENTITIES entities are used, and the
    markup spent on reopening crossing entities is at most twice the text plus
    REOPEN_BUDGET characters (an entity that would be reopened past that ends there), so
    the cost is near-linear in the entities and the fragment a few times the text.
    """
    if not text:
        return ""
    text = _valid_unicode(text)
    offsets = _utf16_offsets(text)
    starts: dict[int, list[_Span]] = {}
    ends: dict[int, list[_Span]] = {}
    for index, entity in enumerate(islice(entities or (), MAX_ENTITIES)):
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
            span = _Span(start, end, index, *tags, keeps_newlines, is_link)
            starts.setdefault(start, []).append(span)
            ends.setdefault(end, []).append(span)
    writer = _Writer(budget=2 * len(text) + REOPEN_BUDGET)
    boundaries = sorted({0, len(text), *starts, *ends})
    for start, end in pairwise(boundaries):
        # Outermost first: earlier start, then longer, then the order Telegram sent.
        writer.move(ends.get(start, ()), sorted(starts.get(start, ()), key=_nesting))
        writer.write(text[start:end])
    writer.move(ends.get(len(text), ()), [])
    return "".join(writer.out)


def _nesting(span: _Span) -> tuple[int, int]:
    """Sort key of spans starting at the same place: the longer outside, then Telegram's order."""
    return (-span.end, span.index)


class _Writer:
    """The fragment, written piece by piece while spans start and end around the pieces.

    `active` holds every span over the current piece, outermost first; `opened` the tags
    actually open (a link inside a link stays closed). A span that ends closes the tags
    opened after its own and reopens the ones still wanted: the work is that markup, charged
    to `budget` and bounded by it.
    """

    def __init__(self, budget: int) -> None:
        self.out: list[str] = []
        self.budget = budget
        self.active: list[_Span] = []
        self.place: dict[int, int] = {}  # span index → its position in `active`
        self.depth: list[int] = []  # depth[i]: how many of active[:i] are open tags
        self.opened: list[_Span] = []
        self.keepers = [0]  # keepers[j]: how many of opened[:j] keep newlines (code, pre)
        self.link_at: int | None = None  # where in `opened` the open link is

    def move(self, ending: Iterable[_Span], starting: list[_Span]) -> None:
        """Close the spans `ending` here, reopen what they cut through, open `starting`."""
        gone = {s.index for s in ending if s.index in self.place}
        cut = min(
            (self.place[i] for i in gone if self._is_open(self.place[i])),
            default=len(self.active),
        )
        for index in gone:  # a closed link inside a link just goes; no tag to close
            del self.place[index]
        k = self.depth[cut] if cut < len(self.active) else len(self.opened)
        reopened = {s.index for s in self.opened[k:]}
        self.out.extend(s.close for s in reversed(self.opened[k:]))
        del self.opened[k:]
        del self.keepers[k + 1 :]
        if self.link_at is not None and self.link_at >= k:
            self.link_at = None
        survivors = [s for s in self.active[cut:] if s.index in self.place]
        for s in self.active[cut:]:
            self.place.pop(s.index, None)
        del self.active[cut:]
        del self.depth[cut:]
        for s in survivors:
            # Reopening costs its markup; carrying a closed link along costs a little too.
            cost = len(s.open) + len(s.close) if s.index in reopened else 1
            if cost > self.budget:
                continue  # out of budget: this span ends here
            self.budget -= cost
            self._push(s)
        for s in starting:
            self._push(s)

    def write(self, piece: str) -> None:
        """A piece of text inside the open tags."""
        chunk = html.escape(piece, quote=False)
        if not self.keepers[-1]:
            chunk = chunk.replace("\n", "<br>")
        elif self.out and self.out[-1].endswith("<pre>") and chunk.startswith(("\n", "\r")):
            # HTML drops a newline right after <pre> (a CR LF or a lone CR reads as one)
            chunk = "\n" + chunk
        self.out.append(chunk)

    def _is_open(self, position: int) -> bool:
        opened_before = self.depth[position]
        return opened_before < len(self.opened) and (
            self.opened[opened_before] is self.active[position]
        )

    def _push(self, span: _Span) -> None:
        self.place[span.index] = len(self.active)
        self.depth.append(len(self.opened))
        self.active.append(span)
        if span.is_link:
            if self.link_at is not None:
                return
            self.link_at = len(self.opened)
        self.out.append(span.open)
        self.opened.append(span)
        self.keepers.append(self.keepers[-1] + span.keeps_newlines)


def _valid_unicode(text: str) -> str:
    """`text` with surrogate pairs joined and lone surrogates as U+FFFD: each stays as many
    UTF-16 units long, so entity offsets still fit."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


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
