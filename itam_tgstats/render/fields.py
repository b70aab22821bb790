"""One post's raw messages as the fields the site renders, and the files to download."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from itam_tgstats.models import MediaFile
from itam_tgstats.render import cards
from itam_tgstats.render.media import media_item
from itam_tgstats.render.text_html import to_html


def render_post(
    items: Sequence[Any], chats: Sequence[Any], users: Sequence[Any], max_side: int | None
) -> tuple[dict[str, Any], list[MediaFile]]:
    """The render fields of one post (its raw Messages oldest first; an album is several).

    `chats` and `users` come with getHistory's answer; `max_side` is the longest side to
    download (None: no downloads). The caption is the first non-empty one, oldest first
    (the same the post's `text` uses); media lists every item's; the rest comes from the
    first message. Returns the fields in the order the site reads them, and every file to
    download, each once.
    """
    first = items[0]
    captioned = next((m for m in items if m.message), None)
    files: dict[str, MediaFile] = {}
    media = []
    for message in items:
        item, file = media_item(message.media, max_side)
        if item is not None:
            media.append(item)
        if file is not None:
            files.setdefault(file.key, file)
    preview, preview_file = cards.link_preview(first.media, max_side)
    if preview_file is not None:
        files.setdefault(preview_file.key, preview_file)
    fields = {
        "text_html": to_html(captioned.message, captioned.entities) if captioned else "",
        "media": media,
        "link_preview": preview,
        "poll": cards.poll(first.media),
        "buttons": cards.buttons(first.reply_markup),
        "forwarded_from": cards.forwarded_from(first.fwd_from, chats, users),
        "edited_at": cards.edited_at(first),
        "author": cards.author(first),
    }
    return fields, list(files.values())
