"""Property-based: every generated channel history yields contract-valid JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pyrogram import raw

from itam_tgstats.render import posts as parsing
from tests.channels import (
    PAID,
    comments,
    link_preview,
    photo,
    poll,
    post,
    reactions,
    service,
    video,
)
from tests.contract import assert_posts, assert_stats
from tests.faketg import FakeChannel, roundtrip

CHANNEL_ID = 3_000_000_123

reaction_kinds = st.one_of(
    st.sampled_from(["👍", "🔥", "❤", "🎉", "😁"]),
    st.integers(min_value=1, max_value=2**63 - 1),
    st.just(PAID),
    st.just(raw.types.ReactionEmpty()),
)
media = st.one_of(
    st.none(),
    st.integers(1, 10**6).map(photo),
    st.integers(1, 10**6).map(video),
    st.integers(1, 10**6).map(poll),
    st.integers(1, 10**6).map(link_preview),
    st.just(raw.types.MessageMediaUnsupported()),
)
item = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["single", "single", "album", "service"]),
        "size": st.integers(2, 10),
        "caption_at": st.integers(0, 9),
        "text": st.text(max_size=50),
        "media": media,
        "views": st.none() | st.integers(0, 10**7),
        "forwards": st.none() | st.integers(0, 10**5),
        "comments": st.none() | st.integers(0, 10**4),
        "reactions": st.lists(st.tuples(reaction_kinds, st.integers(0, 10**6)), max_size=6),
        "gap": st.integers(1, 3),
    }
)


def build_history(items: list[dict[str, Any]]) -> tuple[list[Any], dict[int, int]]:
    """Raw messages oldest first, and each album's (lowest id → size)."""
    messages: list[Any] = []
    albums: dict[int, int] = {}
    msg_id = 1
    for n, spec in enumerate(items):
        # views and forwards share one flag bit: Telegram sends both or neither.
        counters: dict[str, Any] = (
            {"views": None, "forwards": None}
            if spec["views"] is None
            else {"views": spec["views"], "forwards": spec["forwards"] or 0}
        )
        fields: dict[str, Any] = dict(counters)
        if spec["comments"] is not None:
            fields["replies"] = comments(spec["comments"])
        if spec["reactions"]:
            fields["reactions"] = reactions(*spec["reactions"])
        if spec["kind"] == "service":
            messages.append(service(CHANNEL_ID, msg_id))
        elif spec["kind"] == "album":
            albums[msg_id] = spec["size"]
            for i in range(spec["size"]):
                text = spec["text"] if i == spec["caption_at"] % spec["size"] else ""
                own = fields if i == 0 else counters
                messages.append(
                    post(
                        CHANNEL_ID,
                        msg_id + i,
                        text,
                        media=photo(msg_id + i),
                        grouped_id=n + 1,
                        **own,
                    )
                )
            msg_id += spec["size"] - 1
        else:
            messages.append(post(CHANNEL_ID, msg_id, spec["text"], media=spec["media"], **fields))
        msg_id += spec["gap"]
    return messages, albums


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(item, max_size=25),
    posts_count=st.integers(1, 12),
    username=st.sampled_from(["itatmisis", None]),
)
def test_any_history_gives_contract_json(
    items: list[dict[str, Any]], posts_count: int, username: str | None
) -> None:
    messages, albums = build_history(items)
    wire = [roundtrip(m) for m in reversed(messages)]  # getHistory: newest first, as bytes
    posts = [p.to_json() for p in parsing.build_posts(wire, posts_count, username, CHANNEL_ID)]
    # what Redis gets is JSON text
    posts = json.loads(json.dumps(posts, ensure_ascii=False))
    assert_posts(posts, username, CHANNEL_ID)
    real_posts = [s for s in items if s["kind"] != "service"]
    assert len(posts) == min(posts_count, len(real_posts))
    for p in posts:
        if p["id"] in albums:
            assert p["media_count"] == albums[p["id"]] and p["media_type"] == "photo"
    channel = FakeChannel(id=CHANNEL_ID, title="t", username=username).raw_channel()
    full = raw.types.ChannelFull(
        id=CHANNEL_ID, about="", read_inbox_max_id=0, read_outbox_max_id=0, unread_count=0,
        chat_photo=raw.types.PhotoEmpty(id=0), notify_settings=raw.types.PeerNotifySettings(),
        bot_info=[], pts=1, participants_count=42,
    )  # fmt: skip
    stats = parsing.build_stats(
        roundtrip(channel), roundtrip(full), len(messages), wire, 1_736_000_000
    ).to_json()
    assert_stats(json.loads(json.dumps(stats)))
    assert (stats["last_post_date"] is None) == (not real_posts)
