"""Parsing (pure functions on wire-shaped raw objects); the source over the stand-in transport."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from pyrogram import raw

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelsFailed, SessionError, TelegramError
from itam_tgstats.models import ResolvedChannel, iso_utc
from itam_tgstats.render import posts as parsing
from itam_tgstats.store.keys import channel_keys
from itam_tgstats.telegram import client as telegram
from itam_tgstats.telegram.client import TelegramSource
from tests import faketg
from tests.channels import (
    BIG_CHANNEL_ID,
    PAID,
    comments,
    document,
    link_preview,
    photo,
    poll,
    post,
    reactions,
    rich_channel,
    service,
    video,
)
from tests.conftest import FAKE_API_HASH
from tests.contract import v1
from tests.faketg import FakeChannel, FakeTelegram, roundtrip
from tests.helpers import make_settings, run_pass, status


def settings_for(fake: FakeTelegram, **env: str) -> Settings:
    values = {
        "TG_API_ID": "12345",
        "TG_API_HASH": FAKE_API_HASH,
        "TG_SESSION_STRING": fake.session_string(),
    }
    values.update(env)
    return Settings.from_env(values, env_file=Path(os.devnull))


async def fetch(fake: FakeTelegram, cached: ResolvedChannel | None = None, **env: str) -> Any:
    settings = settings_for(fake, **env)
    async with TelegramSource(settings, protocol_factory=fake.protocol_factory) as source:
        return await source.fetch(settings.channel, cached)


# -- pure parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (photo(1), "photo"),
        (video(1), "video"),
        (video(1, round_message=True), "video_note"),
        (
            document(
                1,
                "image/gif",
                raw.types.DocumentAttributeAnimated(),
                raw.types.DocumentAttributeVideo(duration=1.0, w=1, h=1),
            ),
            "animation",
        ),
        (
            document(1, "audio/ogg", raw.types.DocumentAttributeAudio(duration=3, voice=True)),
            "voice",
        ),
        (document(1, "audio/mpeg", raw.types.DocumentAttributeAudio(duration=3)), "audio"),
        (
            document(
                1,
                "image/webp",
                raw.types.DocumentAttributeSticker(
                    alt="🙂", stickerset=raw.types.InputStickerSetEmpty()
                ),
            ),
            "sticker",
        ),
        (
            document(1, "application/pdf", raw.types.DocumentAttributeFilename(file_name="a.pdf")),
            "document",
        ),
        (poll(1), "poll"),
        (
            raw.types.MessageMediaGeo(geo=raw.types.GeoPoint(long=37.6, lat=55.7, access_hash=1)),
            "location",
        ),
        (
            raw.types.MessageMediaContact(
                phone_number="+70000000000", first_name="A", last_name="B", vcard="", user_id=0
            ),
            "contact",
        ),
        (raw.types.MessageMediaDice(value=6, emoticon="🎲"), "dice"),
        (raw.types.MessageMediaUnsupported(), "other"),
        (link_preview(1), None),
        (raw.types.MessageMediaEmpty(), None),
    ],
)
def test_media_type_from_the_raw_media_class(media: Any, expected: str | None) -> None:
    assert parsing.media_type(roundtrip(media)) == expected


def test_reactions_keyed_by_emoji_custom_id_and_star() -> None:
    parsed = parsing.parse_reactions(
        roundtrip(reactions(("👍", 10), (5_368_324_170_671_202_286, 4), (PAID, 25), ("❤", 1)))
    )
    assert parsed == {"👍": 10, "custom:5368324170671202286": 4, "⭐": 25, "❤": 1}
    assert parsing.parse_reactions(None) == {}


def test_reactions_are_written_by_count_largest_first_then_by_key() -> None:
    parsed = parsing.parse_reactions(
        roundtrip(reactions(("👍", 10), (5_368_324_170_671_202_286, 4), (PAID, 25), ("❤", 4)))
    )
    assert list(parsed.items()) == [("⭐", 25), ("👍", 10), ("custom:5368324170671202286", 4),
                                    ("❤", 4)]  # fmt: skip


def test_album_is_one_post_with_the_contracts_merging_rules() -> None:
    c = 42
    items = [
        roundtrip(post(c, 11, "", media=photo(1), grouped_id=9, views=900, forwards=1)),
        roundtrip(post(c, 12, "caption", media=video(2), grouped_id=9, views=950, forwards=7)),
        roundtrip(
            post(
                c,
                13,
                "",
                media=photo(3),
                grouped_id=9,
                views=940,
                forwards=0,
                reactions=reactions(("🔥", 5)),
            )
        ),
    ]
    [group] = parsing.group_posts(items[::-1])
    result = parsing.build_post(group, "chan", c)
    assert result.id == 11
    assert result.text == "caption"
    assert (result.views, result.forwards) == (950, 7)
    assert result.reactions == {"🔥": 5}
    assert (result.has_media, result.media_type, result.media_count) == (True, "photo", 3)
    assert result.link == "https://t.me/chan/11"


def test_service_messages_are_not_posts_and_links_without_username() -> None:
    c = 42
    messages = [roundtrip(m) for m in (post(c, 1, "a"), service(c, 2), post(c, 3, "b"))]
    posts = parsing.build_posts(messages, 5, None, c)
    assert [p.id for p in posts] == [3, 1]
    assert posts[0].link == "https://t.me/c/42/3"


def test_primary_username_comes_from_usernames_when_username_is_empty() -> None:
    channel = FakeChannel(
        id=5,
        title="t",
        username=None,
        usernames=[
            raw.types.Username(username="old_name", active=False),
            raw.types.Username(username="ItAtMisis", active=True),
        ],
    ).raw_channel()
    assert parsing.channel_username(roundtrip(channel)) == "ItAtMisis"


def test_dates_are_utc_whatever_tz_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Vladivostok")
    time.tzset()
    try:
        [result] = parsing.build_posts([roundtrip(post(1, 1, "x", date=1_736_251_200))], 1, "c", 1)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert result.date == "2025-01-07T12:00:00+00:00"


# -- over the stand-in transport ------------------------------------------------------------


def test_rich_channel_snapshot_matches_the_contract(fake_tg: FakeTelegram) -> None:
    result = asyncio.run(fetch(fake_tg, TG_POSTS_COUNT="7"))
    stats = result.snapshot.stats.to_json()
    assert stats == {
        "channel_id": -1002987654321,
        "username": "itatmisis",
        "title": "IT at MISIS",
        "subscribers_count": 5500,
        "posts_count": 15,
        "last_post_date": "2025-01-05T07:07:20+00:00",
        "collected_at": stats["collected_at"],
        "err24_percent": None,  # from the posts' series, which the pass adds when it writes
    }
    assert stats["collected_at"].endswith("+00:00")
    posts = [p.to_json() for p in result.snapshot.posts]
    assert [p["id"] for p in posts] == [1014, 1012, 1011, 1010, 1006, 1005, 1001]
    by_id = {p["id"]: p for p in posts}
    assert v1(by_id[1005]) == {
        "id": 1005,
        "text": "Demo day video",
        "date": "2025-01-05T06:58:20+00:00",
        "views": 1234,
        "forwards": 45,
        "reactions": {"👍": 10, "custom:5368324170671202286": 4, "⭐": 25},
        "reactions_total": 39,
        "comments_count": 23,
        "link": "https://t.me/itatmisis/1005",
        "has_media": True,
        "media_type": "video",
        "media_count": 1,
    }
    album3 = by_id[1001]
    assert album3["text"] == "🏆 Победа на TulaHackDays"
    assert (album3["views"], album3["forwards"], album3["comments_count"]) == (950, 7, 4)
    assert album3["reactions"] == {"👍": 89, "🔥": 34, "❤": 12}
    assert album3["reactions_total"] == 135
    assert (album3["media_type"], album3["media_count"]) == ("photo", 3)
    album4 = by_id[1006]
    assert (album4["text"], album4["views"], album4["media_count"]) == (
        "Hackathon photos, part 2",
        820,
        4,
    )
    assert by_id[1010]["has_media"] is False and by_id[1010]["media_type"] is None
    assert by_id[1011]["media_type"] == "poll" and by_id[1011]["text"] == ""
    # edited: the date stays the original one
    assert by_id[1012]["date"] == "2025-01-05T07:05:20+00:00"
    assert by_id[1014]["reactions_total"] == 15


def test_first_fetch_resolves_then_cached_fetch_does_not(fake_tg: FakeTelegram) -> None:
    first = asyncio.run(fetch(fake_tg))
    assert first.resolved is True
    assert fake_tg.api_calls == [
        "contacts.ResolveUsername",
        "channels.GetFullChannel",
        "messages.GetHistory",
    ]
    fake_tg.calls.clear()
    second = asyncio.run(fetch(fake_tg, first.channel))
    assert second.resolved is False
    assert sorted(fake_tg.api_calls) == ["channels.GetFullChannel", "messages.GetHistory"]
    assert second.snapshot.posts == first.snapshot.posts


def test_full_channel_and_history_are_sent_concurrently(fake_tg: FakeTelegram) -> None:
    fake_tg.latency = 0.2
    asyncio.run(fetch(fake_tg, ResolvedChannel(BIG_CHANNEL_ID, rich_channel().access_hash)))
    assert fake_tg.max_in_flight == 2


def test_stale_cached_peer_is_resolved_again_once(fake_tg: FakeTelegram) -> None:
    result = asyncio.run(fetch(fake_tg, ResolvedChannel(BIG_CHANNEL_ID, access_hash=999)))
    assert result.resolved is True
    assert result.channel.access_hash == rich_channel().access_hash
    assert fake_tg.api_calls[-3:][0] == "contacts.ResolveUsername"
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1


def test_history_pages_further_only_when_albums_fill_the_page() -> None:
    fake = FakeTelegram()
    c = 77
    messages = []
    msg_id = 1
    for album in range(12):  # 12 albums of 10: the first page (30) holds only 3 whole posts
        for _ in range(10):
            messages.append(post(c, msg_id, "", media=photo(msg_id), grouped_id=album + 1))
            msg_id += 1
    fake.add_channel(FakeChannel(id=c, title="albums", username="albums_only", messages=messages))
    result = asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="albums_only", TG_POSTS_COUNT="5"))
    assert [p.media_count for p in result.snapshot.posts] == [10] * 5
    assert fake.api_calls.count("messages.GetHistory") == 2


def test_empty_channel_gives_no_posts_and_null_last_post_date() -> None:
    fake = FakeTelegram()
    fake.add_channel(FakeChannel(id=8, title="empty", username="empty_channel"))
    result = asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="empty_channel"))
    assert result.snapshot.posts == []
    assert result.snapshot.stats.last_post_date is None
    assert result.snapshot.stats.posts_count == 0


@pytest.mark.parametrize(
    ("method", "error", "kind", "message"),
    [
        (
            "contacts.ResolveUsername",
            "AUTH_KEY_UNREGISTERED",
            SessionError,
            "the Telegram session is not authorized any more (AUTH_KEY_UNREGISTERED): mint a new "
            "one with `tgstats session` and put it in TG_SESSION_STRING",
        ),
        (
            "channels.GetFullChannel",
            "SESSION_REVOKED",
            SessionError,
            "the Telegram session is not authorized any more (SESSION_REVOKED): mint a new "
            "one with `tgstats session` and put it in TG_SESSION_STRING",
        ),
        (
            "contacts.ResolveUsername",
            "USERNAME_NOT_OCCUPIED",
            TelegramError,
            "channel @itatmisis does not exist (USERNAME_NOT_OCCUPIED)",
        ),
        (
            "messages.GetHistory",
            "CHANNEL_PRIVATE",
            TelegramError,
            "channel @itatmisis is private or not readable by this account (CHANNEL_PRIVATE)",
        ),
        (
            "messages.GetHistory",
            "FLOOD_WAIT_300",
            TelegramError,
            "Telegram asked to wait 300 s (FloodWait), more than TG_FLOOD_WAIT_MAX=60",
        ),
    ],
)
def test_telegram_errors_become_one_line_errors(
    fake_tg: FakeTelegram, method: str, error: str, kind: type[Exception], message: str
) -> None:
    fake_tg.fail(method, error)
    with pytest.raises(kind) as caught:
        asyncio.run(fetch(fake_tg))
    assert str(caught.value) == message


def test_short_flood_wait_is_slept_through(fake_tg: FakeTelegram) -> None:
    fake_tg.fail("channels.GetFullChannel", "FLOOD_WAIT_1")
    started = time.monotonic()
    result = asyncio.run(fetch(fake_tg, TG_FLOOD_WAIT_MAX="5"))
    assert time.monotonic() - started >= 1
    assert result.snapshot.stats.subscribers_count == 5500
    assert fake_tg.api_calls.count("channels.GetFullChannel") == 2


def test_unreachable_telegram_is_a_telegram_error(fake_tg: FakeTelegram) -> None:
    fake_tg.unreachable = True
    with pytest.raises(TelegramError, match="^cannot reach Telegram"):
        asyncio.run(fetch(fake_tg))


def test_a_user_or_group_username_is_not_a_channel() -> None:
    fake = FakeTelegram()
    group = FakeChannel(id=9, title="chat", username="some_group")
    fake.add_channel(group)
    original = group.raw_channel

    def megagroup() -> raw.types.Channel:
        channel = original()
        channel.broadcast, channel.megagroup = None, True
        return channel

    group.raw_channel = megagroup  # type: ignore[method-assign]
    with pytest.raises(TelegramError, match="^@some_group is not a channel$"):
        asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="some_group"))


def test_a_full_page_of_single_posts_needs_no_second_page() -> None:
    fake = FakeTelegram()
    c = 78
    messages = [post(c, i, f"post {i}") for i in range(1, 10_001)]
    fake.add_channel(FakeChannel(id=c, title="big", username="big_channel", messages=messages))
    result = asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="big_channel", TG_POSTS_COUNT="100"))
    assert [p.id for p in result.snapshot.posts] == list(range(10_000, 9_900, -1))
    assert fake.api_calls.count("messages.GetHistory") == 1
    assert result.snapshot.stats.posts_count == 10_000


# -- issue-10 gaps: behaviours that had no test that could fail ----------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [(photo(1), video(2), "photo"), (video(1), photo(2), "video")],
)
def test_album_media_type_is_the_first_items(first: Any, second: Any, expected: str) -> None:
    c = 42
    items = [
        roundtrip(post(c, 21, "", media=first, grouped_id=5)),
        roundtrip(post(c, 22, "", media=second, grouped_id=5)),
        roundtrip(post(c, 23, "", media=photo(3), grouped_id=5)),
    ]
    [group] = parsing.group_posts(items)
    assert parsing.build_post(group, "chan", c).media_type == expected


def test_album_comments_carried_by_a_later_item_count() -> None:
    c = 42
    items = [
        roundtrip(post(c, 31, "caption", media=photo(1), grouped_id=6)),
        roundtrip(post(c, 32, "", media=photo(2), grouped_id=6, replies=comments(17))),
    ]
    [group] = parsing.group_posts(items)
    assert parsing.build_post(group, "chan", c).comments_count == 17


def test_replies_that_are_not_a_comments_thread_count_zero() -> None:
    thread = raw.types.MessageReplies(replies=9, replies_pts=1, comments=False)
    message = roundtrip(post(42, 40, "x", replies=thread))
    assert parsing.comments_count(message) == 0
    assert parsing.comments_count(roundtrip(post(42, 41, "x", replies=comments(9)))) == 9


def test_cached_peer_refused_as_private_is_resolved_again_once(fake_tg: FakeTelegram) -> None:
    """An access hash bound to the session that received it: Telegram says CHANNEL_PRIVATE."""
    good = ResolvedChannel(BIG_CHANNEL_ID, rich_channel().access_hash)
    fake_tg.fail("channels.GetFullChannel", "CHANNEL_PRIVATE")
    result = asyncio.run(fetch(fake_tg, good))
    assert result.resolved is True
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    assert result.snapshot.stats.subscribers_count == 5500


def test_really_private_channel_fails_after_one_resolve(fake_tg: FakeTelegram) -> None:
    good = ResolvedChannel(BIG_CHANNEL_ID, rich_channel().access_hash)
    fake_tg.channels[0].private = True
    with pytest.raises(TelegramError) as caught:
        asyncio.run(fetch(fake_tg, good))
    assert str(caught.value) == (
        "channel @itatmisis is private or not readable by this account (CHANNEL_PRIVATE)"
    )
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1


def test_fresh_resolve_refused_as_private_does_not_resolve_twice(fake_tg: FakeTelegram) -> None:
    fake_tg.fail("messages.GetHistory", "CHANNEL_PRIVATE")
    with pytest.raises(TelegramError, match="is private"):
        asyncio.run(fetch(fake_tg))
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1


def test_history_count_without_messages_is_a_telegram_failure() -> None:
    fake = FakeTelegram()
    channel = fake.add_channel(rich_channel())
    real_history = fake.handlers[raw.functions.messages.GetHistory]

    def contradicting(query: Any, key: bytes) -> Any:
        answer = real_history(query, key)
        answer.messages = []
        return answer

    fake.handlers[raw.functions.messages.GetHistory] = contradicting
    with pytest.raises(TelegramError) as caught:
        asyncio.run(fetch(fake))
    assert str(caught.value) == (
        f"Telegram reported {len(channel.messages)} messages in @itatmisis but returned none; "
        "keeping the last snapshot"
    )


def test_server_errors_after_pyrogram_retries_say_what_happened(fake_tg: FakeTelegram) -> None:
    fake_tg.fail("channels.GetFullChannel", "INTERNAL", times=telegram.INVOKE_RETRIES)
    with pytest.raises(TelegramError) as caught:
        asyncio.run(fetch(fake_tg))
    message = str(caught.value)
    assert message.startswith("Telegram kept failing (")
    assert '"channels.GetFullChannel"' in message and "TG_TIMEOUT" not in message
    assert fake_tg.api_calls.count("channels.GetFullChannel") == telegram.INVOKE_RETRIES


def test_flood_wait_above_the_max_but_short_ends_the_pass_at_once(fake_tg: FakeTelegram) -> None:
    """5 s: above TG_FLOOD_WAIT_MAX=2, below Pyrogram's own 10 s threshold and TG_TIMEOUT."""
    fake_tg.fail("messages.GetHistory", "FLOOD_WAIT_5")
    started = time.monotonic()
    with pytest.raises(TelegramError) as caught:
        asyncio.run(fetch(fake_tg, TG_FLOOD_WAIT_MAX="2", TG_TIMEOUT="30"))
    elapsed = time.monotonic() - started
    assert str(caught.value) == (
        "Telegram asked to wait 5 s (FloodWait), more than TG_FLOOD_WAIT_MAX=2"
    )
    assert fake_tg.api_calls.count("messages.GetHistory") == 1  # not retried after a sleep
    assert elapsed < 5  # it did not sleep the wait through


class EchoingGarbage:
    """A middlebox on Telegram's port: answers every packet with 64 zero bytes."""

    def __init__(self, **_: object) -> None:
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.crypto_executor = ThreadPoolExecutor(1)  # Pyrogram decrypts in it

    async def connect(self, _address: tuple[str, int]) -> None:
        pass

    async def close(self) -> None:
        self.inbox.put_nowait(None)
        self.crypto_executor.shutdown(wait=False)

    async def send(self, _data: bytes) -> None:
        self.inbox.put_nowait(bytes(64))

    async def recv(self) -> bytes | None:
        return await self.inbox.get()


class Refusing(EchoingGarbage):
    async def connect(self, _address: tuple[str, int]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.parametrize("factory", [EchoingGarbage, Refusing])
def test_a_connection_that_cannot_be_set_up_is_one_line(factory: type) -> None:
    """A pass, like the login, turns any failure to connect into one TelegramError."""
    fake = FakeTelegram()
    settings = settings_for(fake)

    async def main() -> None:
        async with TelegramSource(settings, protocol_factory=factory) as source:
            await source.fetch(settings.channel, None)

    with pytest.raises(TelegramError) as caught:
        asyncio.run(main())
    assert str(caught.value).startswith(
        "cannot reach Telegram: the connection could not be set up ("
    )


def test_the_newest_post_not_a_service_message_dates_the_channel() -> None:
    """`last_post_date`: the newest non-service message, even when a pin came after it."""
    fake = FakeTelegram()
    c = 9
    messages = [post(c, 1, "a"), post(c, 3, "b"), service(c, 4)]
    fake.add_channel(FakeChannel(id=c, title="pinned", username="pinned_news", messages=messages))
    result = asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="pinned_news"))
    assert [p.id for p in result.snapshot.posts] == [3, 1]
    assert result.snapshot.stats.last_post_date == iso_utc(messages[1].date)


def test_a_403_about_one_channel_fails_that_channel_only(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram refusing a request about a channel with 403 Forbidden (as with 400): that
    channel fails on its own and backs off; the other channels are written, exit 4."""
    monkeypatch.setitem(faketg.ERROR_CODES, "CHAT_FORBIDDEN", 403)
    fake3.fail("channels.GetFullChannel", "CHAT_FORBIDDEN")  # whichever channel asks first
    settings = make_settings(
        fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis,itam_events,itam_jobs"
    )
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    assert caught.value.partial is True
    assert caught.value.exit_code == 4
    entries = status(rdb)["channels"]
    failed = [n for n, e in entries.items() if not e["ok"]]
    assert len(failed) == 1
    [name] = failed
    assert "403 CHAT_FORBIDDEN" in entries[name]["last_error"]
    assert entries[name]["retry_after"] is not None  # its own failure: it backs off
    for other in set(entries) - {name}:
        assert rdb.get(channel_keys(other).stats) is not None


def test_an_album_cut_by_the_pages_end_is_read_whole() -> None:
    """Service messages fill the page (TG_POSTS_COUNT=1: 14 messages) above an album of 10:
    the page ends inside the album, which is read whole from the next page."""
    fake = FakeTelegram()
    c = 78
    album = [post(c, i, "", media=photo(i), grouped_id=5) for i in range(10, 20)]
    services = [service(c, i) for i in range(20, 25)]
    fake.add_channel(
        FakeChannel(id=c, title="pins", username="pinned_album", messages=album + services)
    )
    result = asyncio.run(fetch(fake, TG_CHANNEL_USERNAME="pinned_album", TG_POSTS_COUNT="1"))
    [only] = result.snapshot.posts
    assert (only.id, only.media_count) == (10, 10)
    assert only.link == "https://t.me/pinned_album/10"
