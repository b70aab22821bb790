"""A post's extras around its text: link card, poll, URL buttons, forward, edit and author."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyrogram import raw

from itam_tgstats.models import MediaFile, iso_utc
from itam_tgstats.render.media import photo_file
from itam_tgstats.render.text_html import is_safe_display_url, is_safe_link
from itam_tgstats.render.thumbnails import stripped_thumbnail_uri

# What Telegram apps call the sender of a forward whose account was deleted.
DELETED_ACCOUNT = "Deleted Account"


def link_preview(
    media: Any, max_side: int | None
) -> tuple[dict[str, Any] | None, MediaFile | None]:
    """The link card of a raw MessageMediaWebPage with a loaded page, and its photo to download.

    None for other media and for a pending, empty or unchanged page. `url` and
    `display_url` follow the text-link rule: null unless http, https, tg or mailto (a
    display form without a scheme, `misis.ru/news`, is kept).
    """
    if not isinstance(media, raw.types.MessageMediaWebPage):
        return None, None
    page = media.webpage
    if not isinstance(page, raw.types.WebPage):
        return None, None
    photo = page.photo if isinstance(page.photo, raw.types.Photo) else None
    file = photo_file(photo, max_side)
    url = str(page.url or "")
    display_url = str(page.display_url or "")
    card = {
        "url": url if is_safe_link(url) else None,
        "display_url": display_url if display_url and is_safe_display_url(display_url) else None,
        "site_name": page.site_name or None,
        "title": page.title or None,
        "description": page.description or None,
        "type": page.type or None,
        "thumbnail": stripped_thumbnail_uri(photo.sizes) if photo is not None else None,
        "image": file.key if file is not None else None,
    }
    return card, file


def poll(media: Any) -> dict[str, Any] | None:
    """The poll of a raw MessageMediaPoll; None for other media.

    Voters, percentages and the total are null when Telegram sends no per-answer results
    to this account (hidden until it votes or the poll closes).
    """
    if not isinstance(media, raw.types.MessageMediaPoll):
        return None
    question = media.poll
    results = media.results
    # Pyrogram reads absent results as an empty list: nothing per answer means hidden.
    counts = getattr(results, "results", None) or []
    voters = {bytes(r.option): int(r.voters or 0) for r in counts}
    total = int(results.total_voters or 0) if counts else None
    answers: list[dict[str, Any]] = []
    for answer in question.answers or ():
        if not counts:
            answers.append({"text": _text(answer.text), "voters": None, "percent": None})
            continue
        count = voters.get(bytes(answer.option), 0)
        percent = round(100 * count / total, 1) if total else 0.0
        answers.append({"text": _text(answer.text), "voters": count, "percent": percent})
    return {
        "question": _text(question.question),
        "answers": answers,
        "total_voters": total,
        "closed": bool(question.closed),
        "multiple_choice": bool(question.multiple_choice),
        "quiz": bool(question.quiz),
    }


def buttons(reply_markup: Any) -> list[list[dict[str, str]]]:
    """The rows of URL buttons of a raw inline keyboard; other buttons and empty rows left out."""
    if not isinstance(reply_markup, raw.types.ReplyInlineMarkup):
        return []
    rows = []
    for row in reply_markup.rows or ():
        kept = []
        for button in getattr(row, "buttons", None) or ():
            url = _button_url(button)
            if url:
                kept.append({"text": str(button.text or ""), "url": url})
        if kept:
            rows.append(kept)
    return rows


def _button_url(button: Any) -> str | None:
    """A URL button's target; None for other kinds of button."""
    # Layer 229: KeyboardInlineButton(text, type=InlineButtonTypeUrl(url)); earlier layers
    # had a KeyboardButtonUrl(text, url) class of its own.
    # The site renders these as links: the same schemes as text links, nothing else.
    kind = getattr(button, "type", None)
    url_class = getattr(raw.types, "KeyboardButtonUrl", None)
    if isinstance(kind, raw.types.InlineButtonTypeUrl):
        url = str(kind.url)
    elif url_class is not None and isinstance(button, url_class):
        url = str(button.url)
    else:
        return None
    return url if is_safe_link(url) else None


def forwarded_from(
    fwd_from: Any, chats: Iterable[Any], users: Iterable[Any]
) -> dict[str, Any] | None:
    """`{"title", "link"}` of a raw MessageFwdHeader, names from getHistory's chats and users.

    None for an original post. A deleted account (`userEmpty`, or a user marked deleted)
    is "Deleted Account" without a link.
    """
    if fwd_from is None:
        return None
    peer = fwd_from.from_id
    title: str | None = fwd_from.from_name or None
    link: str | None = None
    if isinstance(peer, raw.types.PeerChannel | raw.types.PeerChat):
        chat_id = peer.channel_id if isinstance(peer, raw.types.PeerChannel) else peer.chat_id
        chat = next((c for c in chats if c.id == chat_id), None)
        if chat is not None:
            title = getattr(chat, "title", None) or title
            username = channel_username(chat)
            if username and isinstance(peer, raw.types.PeerChannel):
                post = fwd_from.channel_post
                link = f"https://t.me/{username}/{post}" if post else f"https://t.me/{username}"
    elif isinstance(peer, raw.types.PeerUser):
        user = next((u for u in users if u.id == peer.user_id), None)
        if isinstance(user, raw.types.UserEmpty) or getattr(user, "deleted", False):
            title = DELETED_ACCOUNT
        elif user is not None:
            name = " ".join(n for n in (user.first_name, user.last_name) if n).strip()
            title = name or title
            username = channel_username(user)
            link = f"https://t.me/{username}" if username else None
    return {"title": title, "link": link}


def edited_at(message: Any) -> str | None:
    """ISO UTC of a raw Message's last edit; None when never edited or the edit is hidden."""
    if not message.edit_date or message.edit_hide:
        return None
    return iso_utc(message.edit_date)


def author(message: Any) -> str | None:
    """The signature of a raw Message (`post_author`), if the channel signs its posts."""
    return str(message.post_author) if message.post_author else None


def _text(value: Any) -> str:
    """The plain text of a TextWithEntities (or of a plain string, as older layers send)."""
    return str(getattr(value, "text", value) or "")


def channel_username(peer: Any) -> str | None:
    """A channel's or user's primary public username: `username`, else the first active one."""
    if getattr(peer, "username", None):
        return str(peer.username)
    for item in getattr(peer, "usernames", None) or ():
        if item.active:
            return str(item.username)
    return None
