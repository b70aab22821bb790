"""store/events.py: what a pass tells `tg:events` (pure functions; whole passes are in
tests/test_events.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from itam_tgstats.errors import ChannelError
from itam_tgstats.models import ChannelSnapshot, ChannelStats, Post
from itam_tgstats.store.events import (
    Event,
    changed_fields,
    channel_events,
    failure_events,
    pass_events,
    post_events,
)
from itam_tgstats.store.start import PassStart
from itam_tgstats.store.status import ChannelOutcome

NOW = 1_750_000_000
AT = "2025-06-15T15:06:40+00:00"  # NOW
CHANNEL_ID = -1_004_100_000_001


def stats(channel_id: int = CHANNEL_ID) -> ChannelStats:
    return ChannelStats(channel_id, "pulse", "Pulse", 100, 10, None, AT)


def full_post(post_id: int, **fields: Any) -> Post:
    """A post with every rendering field filled."""
    values: dict[str, Any] = {
        "text_html": f"post {post_id}",
        "media": [
            {
                "type": "photo",
                "width": 10,
                "height": 10,
                "duration": None,
                "thumbnail": None,
                "file_name": None,
                "mime_type": None,
                "size": None,
                "image": None,
            },
        ],
        "link_preview": {"url": "https://itam.example/", "title": "ITAM", "image": None},
        "poll": {
            "question": "Go or Rust?",
            "answers": [
                {"text": "Go", "voters": 3, "percent": 75.0},
                {"text": "Rust", "voters": 1, "percent": 25.0},
            ],
            "total_voters": 4,
            "closed": False,
            "multiple_choice": False,
            "quiz": False,
        },
        "buttons": [[{"text": "Join", "url": "https://itam.example/join"}]],
        "edited_at": None,
    }
    values.update(fields)
    return Post(id=post_id, text=f"post {post_id}", date=AT, views=10, forwards=0, **values)


def stored(*posts: Post) -> list[dict[str, Any]]:
    """Posts as a pass reads them back from Redis."""
    return [json.loads(json.dumps(p.to_json())) for p in posts]


def snapshot(*posts: Post, ids: set[int] | None = None) -> ChannelSnapshot:
    held = ids if ids is not None else {p.id for p in posts}
    return ChannelSnapshot(stats(), list(posts), message_ids=frozenset(held))


# --- what is an edit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"edited_at": "2025-06-15T11:00:00+00:00"}, ("edited_at",)),
        ({"text_html": "<b>post</b>"}, ("text_html",)),
        ({"buttons": []}, ("buttons",)),
        ({"link_preview": None}, ("link_preview",)),
        ({"link_preview": {"url": "https://itam.example/", "title": "New", "image": None}},
         ("link_preview",)),
        ({"media": []}, ("media",)),
        ({"edited_at": "2025-06-15T11:00:00+00:00", "text_html": "x", "media": []},
         ("edited_at", "text_html", "media")),
    ],
)  # fmt: skip
def test_an_edit_is_a_change_of_a_rendering_field(
    change: dict[str, Any], expected: tuple[str, ...]
) -> None:
    before = stored(full_post(1))[0]
    after = full_post(1, **change).to_json()
    assert changed_fields(before, after) == expected


def test_counters_votes_and_downloads_are_not_edits() -> None:
    before = stored(full_post(1))[0]
    after = copy.deepcopy(before)
    after.update(views=999, forwards=5, reactions={"👍": 3}, reactions_total=3, comments_count=7)
    after.update(views_1h=5, views_24h=9)
    after["poll"].update(total_voters=40)
    after["poll"]["answers"][0].update(voters=30, percent=75.0)
    after["poll"]["answers"][1].update(voters=10, percent=25.0)
    after["media"][0]["image"] = "tg:media:1:m"  # downloaded this pass
    after["link_preview"]["image"] = "tg:media:2:m"
    assert changed_fields(before, after) == ()
    gone = copy.deepcopy(after)
    gone["media"][0]["image"] = None  # and dropped again
    assert changed_fields(after, gone) == ()


@pytest.mark.parametrize(
    "change",
    [
        lambda poll: poll.update(question="Go, Rust or Zig?"),
        lambda poll: poll["answers"][1].update(text="Zig"),
        lambda poll: poll["answers"].append({"text": "Zig", "voters": 0, "percent": 0.0}),
        lambda poll: poll.update(closed=True),
        lambda poll: poll.update(multiple_choice=True),
        lambda poll: poll.update(quiz=True),
    ],
    ids=["question", "an answer's text", "an answer more", "closed", "multiple", "quiz"],
)
def test_a_poll_is_edited_by_its_question_answers_and_flags(change: Any) -> None:
    before = stored(full_post(1))[0]
    after = copy.deepcopy(before)
    change(after["poll"])
    assert changed_fields(before, after) == ("poll",)


def test_a_field_an_older_version_did_not_store_tells_nothing() -> None:
    before = stored(full_post(1))[0]
    for name in ("text_html", "media", "link_preview", "poll", "buttons", "edited_at"):
        del before[name]
    assert changed_fields(before, full_post(1, text_html="new", media=[]).to_json()) == ()


# --- new, deleted, edited posts ------------------------------------------------------------------


def test_new_is_newer_than_the_newest_stored_post_and_kept() -> None:
    before = stored(full_post(5), full_post(3))
    # 4 comes back into the window after 5 was deleted: not new; 6 and 7 are.
    after = snapshot(full_post(7), full_post(6), full_post(4), full_post(3), ids={3, 4, 6, 7})
    events = post_events("pulse", before, after, AT)
    assert [(e.type, e.post_id) for e in events] == [
        ("post_deleted", 5),
        ("post_new", 6),
        ("post_new", 7),
    ]


def test_a_post_that_only_left_the_kept_window_is_not_deleted() -> None:
    before = stored(full_post(3), full_post(2))
    # 2 is still in the answer, not among the kept posts.
    events = post_events("pulse", before, snapshot(full_post(4), full_post(3), ids={2, 3, 4}), AT)
    assert events == [Event("post_new", "pulse", AT, post_id=4)]


def test_deleted_only_where_the_answer_still_reaches() -> None:
    before = stored(full_post(30), full_post(20), full_post(10))
    # The answer holds messages 15 to 40: 20 and 30 are gone; 10 lies below its reach.
    ids = set(range(15, 41)) - {20, 30}
    after = snapshot(full_post(40), ids=ids)
    events = post_events("pulse", before, after, AT)
    assert [(e.type, e.post_id) for e in events] == [
        ("post_deleted", 20),
        ("post_deleted", 30),
        ("post_new", 40),
    ]
    # One id below the oldest message held: not reached.
    assert [e.post_id for e in post_events("pulse", before, snapshot(ids={21, 22}), AT)] == [30]


def test_an_empty_answer_reaches_nothing_and_unreadable_posts_tell_nothing() -> None:
    before = stored(full_post(3))
    assert post_events("pulse", before, snapshot(ids=set()), AT) == []
    assert post_events("pulse", "not a list", snapshot(full_post(9)), AT) == []
    assert post_events("pulse", None, snapshot(full_post(9)), AT) == []
    # An empty channel (stored as []) that publishes: new posts.
    assert [e.type for e in post_events("pulse", [], snapshot(full_post(1)), AT)] == ["post_new"]


def test_an_edited_post_is_told_once_with_every_field_that_changed() -> None:
    before = stored(full_post(2), full_post(1))
    after = snapshot(
        full_post(2, text_html="v3", edited_at="2025-06-15T11:59:00+00:00"), full_post(1)
    )
    assert post_events("pulse", before, after, AT) == [
        Event("post_edited", "pulse", AT, post_id=2, changed=("edited_at", "text_html"))
    ]


# --- channels ------------------------------------------------------------------------------------


def status(**channels: bool) -> dict[str, Any]:
    return {"ok": True, "channels": {n: {"ok": ok} for n, ok in channels.items()}}


def test_channel_transitions_only() -> None:
    failed = ChannelOutcome(error="channel @b is private")
    before = status(a=True, b=True, c=False, d=False)
    outcomes = {"a": ChannelOutcome(), "b": failed, "c": ChannelOutcome(), "d": failed}
    assert channel_events(before, outcomes, AT) == [
        Event("channel_failed", "b", AT, error="channel @b is private"),
        Event("channel_recovered", "c", AT),
    ]
    # No entry yet (a new channel), or no status at all: nothing to tell.
    assert channel_events(None, outcomes, AT) == []
    assert channel_events({"channels": "junk"}, outcomes, AT) == []


def test_a_failed_pass_tells_each_channel_that_was_read_last_time() -> None:
    reason = ChannelOutcome(error="cannot reach Telegram")
    batch = failure_events(status(a=True, b=False), {"a": reason, "b": reason}, NOW, 100)
    assert batch.entries == (Event("channel_failed", "a", AT, error="cannot reach Telegram"),)
    assert batch.maxlen == 100
    assert failure_events(status(a=True), {"a": reason}, NOW, 0).entries == ()


def start_of(channel_ids: tuple[int | None, ...], posts: tuple[Any, ...], **ok: bool) -> PassStart:
    return PassStart(
        locked=True, peers=(), status=status(**ok), channel_ids=channel_ids, channel_posts=posts
    )


def test_a_first_pass_or_a_name_that_changed_hands_is_channel_added() -> None:
    results: list[ChannelSnapshot | ChannelError] = [
        snapshot(full_post(2)),
        snapshot(full_post(2)),
        snapshot(full_post(2)),
        ChannelError("gone", "channel @gone is private"),
    ]
    start = start_of(
        (None, CHANNEL_ID + 1, CHANNEL_ID, CHANNEL_ID),
        (None, stored(full_post(1)), stored(full_post(1)), stored(full_post(1))),
        fresh=False,
        taken=True,
        known=False,
        gone=True,
    )
    batch = pass_events(start, ["fresh", "taken", "known", "gone"], results, NOW, 50)
    assert batch.entries == (
        # never read (and failing before): added, not recovered; no post_new per post
        Event("channel_added", "fresh", AT),
        Event("channel_added", "taken", AT),  # stored stats name another channel
        Event("channel_recovered", "known", AT),
        Event("post_new", "known", AT, post_id=2),
        Event("channel_failed", "gone", AT, error="channel @gone is private"),
    )
    assert pass_events(start, ["fresh", "taken", "known", "gone"], results, NOW, 0).entries == ()


def test_every_value_is_a_string_in_a_fixed_order() -> None:
    edited = Event("post_edited", "pulse", AT, post_id=7, changed=("media", "poll"))
    assert edited.fields() == {
        "type": "post_edited", "channel": "pulse", "at": AT, "post_id": "7",
        "changed": "media,poll",
    }  # fmt: skip
    assert list(Event("channel_failed", "pulse", AT, error="x").fields()) == [
        "type",
        "channel",
        "at",
        "error",
    ]
