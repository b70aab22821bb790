"""Checks of the stored JSON shapes (docs/redis-keys.md), shared by the tests."""

from __future__ import annotations

import re
from typing import Any

MEDIA_TYPES = {
    "photo", "video", "animation", "audio", "voice", "video_note", "sticker", "document",
    "poll", "location", "venue", "contact", "dice", "game", "invoice", "story", "giveaway",
    "paid_media", "other",
}  # fmt: skip
# The old worker's fields, in its order: they must stay exactly as they were.
V1_POST_FIELDS = (
    "id", "text", "date", "views", "forwards", "reactions", "reactions_total",
    "comments_count", "link", "has_media", "media_type", "media_count",
)  # fmt: skip
RENDER_FIELDS = (
    "text_html", "media", "link_preview", "poll", "buttons", "forwarded_from", "edited_at",
    "author",
)  # fmt: skip
# Version 3: the post's views 1 and 24 hours after it was posted (from its series).
OVER_TIME_FIELDS = ("views_1h", "views_24h")
POST_FIELDS = {*V1_POST_FIELDS, *RENDER_FIELDS, *OVER_TIME_FIELDS}
MEDIA_ITEM_FIELDS = {
    "type", "width", "height", "duration", "thumbnail", "file_name", "mime_type", "size", "image",
}  # fmt: skip


def v1(post: dict[str, Any]) -> dict[str, Any]:
    """Only the old worker's fields of a post."""
    return {k: post[k] for k in V1_POST_FIELDS}


STATS_FIELDS = {
    "channel_id", "username", "title", "subscribers_count", "posts_count", "last_post_date",
    "collected_at", "err24_percent",
}  # fmt: skip
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def assert_post(post: dict[str, Any], username: str | None, channel_id: int) -> None:
    assert list(post) == [*V1_POST_FIELDS, *RENDER_FIELDS, *OVER_TIME_FIELDS]
    assert all(post[k] is None or type(post[k]) is int for k in OVER_TIME_FIELDS)
    assert isinstance(post["text_html"], str) and (post["text_html"] == "") == (post["text"] == "")
    assert isinstance(post["media"], list) and isinstance(post["buttons"], list)
    assert all(set(item) == MEDIA_ITEM_FIELDS for item in post["media"])
    assert len(post["media"]) == post["media_count"]
    for name in ("id", "views", "forwards", "reactions_total", "comments_count", "media_count"):
        assert type(post[name]) is int and post[name] >= 0, name
    assert isinstance(post["text"], str)
    assert UTC_TIME.fullmatch(post["date"])
    assert all(
        isinstance(k, str) and type(v) is int and v > 0 for k, v in post["reactions"].items()
    )
    assert post["reactions_total"] == sum(post["reactions"].values())
    expected_link = (
        f"https://t.me/{username}/{post['id']}"
        if username
        else f"https://t.me/c/{channel_id}/{post['id']}"
    )
    assert post["link"] == expected_link
    if post["has_media"]:
        assert post["media_type"] in MEDIA_TYPES and post["media_count"] >= 1
    else:
        assert post["media_type"] is None and post["media_count"] == 0


def assert_posts(posts: list[dict[str, Any]], username: str | None, channel_id: int) -> None:
    for post in posts:
        assert_post(post, username, channel_id)
    ids = [p["id"] for p in posts]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


def assert_stats(stats: dict[str, Any]) -> None:
    assert set(stats) == STATS_FIELDS
    assert type(stats["channel_id"]) is int and str(stats["channel_id"]).startswith("-100")
    assert UTC_TIME.fullmatch(stats["collected_at"])
    assert stats["last_post_date"] is None or UTC_TIME.fullmatch(stats["last_post_date"])
