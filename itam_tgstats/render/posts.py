"""Raw messages in, the stored posts and stats out: pure functions, no client.

What a reader sees as one post (an album is one), its counters, reactions and link, and the
channel's stats; the rendering fields come from `render`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyrogram import raw

from itam_tgstats.models import ChannelStats, Post, PostNumbers, iso_utc, marked_channel_id
from itam_tgstats.render.cards import channel_username
from itam_tgstats.render.fields import render_post
from itam_tgstats.render.media import media_type


def reaction_key(reaction: Any) -> str | None:
    """`👍` for an emoji, `custom:<id>` for a custom emoji, `⭐` for paid; None for others."""
    if isinstance(reaction, raw.types.ReactionEmoji):
        return str(reaction.emoticon)
    if isinstance(reaction, raw.types.ReactionCustomEmoji):
        return f"custom:{reaction.document_id}"
    if isinstance(reaction, raw.types.ReactionPaid):
        return "⭐"
    return None


def parse_reactions(reactions: Any) -> dict[str, int]:
    """Emoji → count from a raw MessageReactions (empty when there is none), by count
    (largest first), then by key: a defined order (Telegram's own is not always by count)."""
    counts: dict[str, int] = {}
    for result in getattr(reactions, "results", None) or []:
        key = reaction_key(result.reaction)
        if key is not None and result.count:
            counts[key] = counts.get(key, 0) + int(result.count)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def comments_count(message: Any) -> int:
    """Comments in the linked discussion group: the `replies` counter of a comments thread."""
    replies = getattr(message, "replies", None)
    if replies is None or not replies.comments:
        return 0
    return int(replies.replies or 0)


def post_link(username: str | None, channel_id: int, message_id: int) -> str:
    """`https://t.me/<username>/<id>`, or `https://t.me/c/<channel id>/<id>` without a username."""
    if username:
        return f"https://t.me/{username}/{message_id}"
    return f"https://t.me/c/{channel_id}/{message_id}"


def is_post(message: Any) -> bool:
    """Whether a raw message is something a reader sees as (part of) a post."""
    return isinstance(message, raw.types.Message)


def group_posts(messages: Iterable[Any]) -> list[list[Any]]:
    """Posts newest first, each a list of its messages oldest first; albums are one post."""
    groups: list[list[Any]] = []
    for message in sorted(filter(is_post, messages), key=lambda m: m.id, reverse=True):
        grouped_id = message.grouped_id
        if groups and grouped_id is not None and groups[-1][0].grouped_id == grouped_id:
            groups[-1].insert(0, message)
        else:
            groups.append([message])
    return groups


def build_post(
    items: Sequence[Any],
    username: str | None,
    channel_id: int,
    *,
    chats: Sequence[Any] = (),
    users: Sequence[Any] = (),
    max_side: int | None = None,
) -> Post:
    """One post from its messages (oldest first): a single message or a whole album.

    `chats`/`users` (getHistory's) name forwarded senders; `max_side` picks image sizes to
    download (None: none), whose keys go into `image` and the files into `files`.
    """
    rendered, files = render_post(items, chats, users, max_side)
    first = items[0]
    media_items = [m for m in items if media_type(m.media) is not None]
    carrier = next((m for m in items if getattr(m.reactions, "results", None)), first)
    reactions = parse_reactions(carrier.reactions)
    kind = media_type(first.media) if media_items else None
    if kind is None and media_items:
        kind = media_type(media_items[0].media)
    return Post(
        id=first.id,
        text=next((m.message for m in items if m.message), ""),
        date=iso_utc(first.date),
        views=max(int(m.views or 0) for m in items),
        forwards=max(int(m.forwards or 0) for m in items),
        reactions=reactions,
        reactions_total=sum(reactions.values()),
        comments_count=max(comments_count(m) for m in items),
        link=post_link(username, channel_id, first.id),
        has_media=bool(media_items),
        media_type=kind,
        media_count=len(media_items),
        **rendered,
        files=tuple(files),
    )


def build_posts(
    messages: Iterable[Any],
    count: int,
    username: str | None,
    channel_id: int,
    *,
    chats: Sequence[Any] = (),
    users: Sequence[Any] = (),
    max_side: int | None = None,
) -> list[Post]:
    """The newest `count` posts, newest first."""
    return [
        build_post(g, username, channel_id, chats=chats, users=users, max_side=max_side)
        for g in group_posts(messages)[:count]
    ]


def post_numbers(items: Sequence[Any]) -> PostNumbers:
    """A post's numbers (as `build_post` counts them), without rendering it: for the posts
    of the answer beyond the kept ones, whose series go on while they are young."""
    first = items[0]
    carrier = next((m for m in items if getattr(m.reactions, "results", None)), first)
    return PostNumbers(
        id=first.id,
        date=int(first.date),
        views=max(int(m.views or 0) for m in items),
        reactions=sum(parse_reactions(carrier.reactions).values()),
        forwards=max(int(m.forwards or 0) for m in items),
        comments=max(comments_count(m) for m in items),
    )


def build_stats(
    channel: Any,
    full_channel: Any,
    history_count: int,
    messages: Iterable[Any],
    collected_at: float,
) -> ChannelStats:
    """`tg:channel:stats` from the raw Channel, ChannelFull and getHistory's answer."""
    newest = max(filter(is_post, messages), key=lambda m: m.id, default=None)
    return ChannelStats(
        channel_id=marked_channel_id(channel.id),
        username=channel_username(channel),
        title=str(channel.title),
        subscribers_count=int(full_channel.participants_count or 0),
        posts_count=int(history_count),
        last_post_date=iso_utc(newest.date) if newest is not None else None,
        collected_at=iso_utc(collected_at),
    )


def history_total(history: Any) -> int:
    """The channel's total message count from a getHistory answer."""
    count = getattr(history, "count", None)
    return int(count) if count is not None else len(history.messages)


def complete_posts(messages: Sequence[Any], exhausted: bool) -> int:
    """How many posts are certainly whole: the oldest may be an album cut by the page's end."""
    groups = group_posts(messages)
    if exhausted or not groups:
        return len(groups)
    oldest = min(messages, key=lambda m: m.id)
    # The page ends inside an album only if its oldest message belongs to one.
    cut = (
        is_post(oldest)
        and oldest.grouped_id is not None
        and oldest.grouped_id == groups[-1][0].grouped_id
    )
    return len(groups) - 1 if cut else len(groups)
