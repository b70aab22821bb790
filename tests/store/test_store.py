"""The write layer through whole passes, at known times: which channel is first, the original
keys and `tg:last_update`, the history trim, the upgrade from one channel to several (its
history and its images), and `tg:status` over passes that succeed, fail in part or fail."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from itam_tgstats.errors import ChannelError, ChannelsFailed, TelegramError
from itam_tgstats.models import iso_utc
from itam_tgstats.store import Store
from itam_tgstats.store.keys import (
    CHANNELS_KEY,
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    POSTS_KEY,
    STATS_KEY,
    channel_keys,
)
from tests.channels import BIG_CHANNEL_ID, media_channel, post, register_files, small_channel
from tests.clock import DAY, T0, Clock, install
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass, status

# Longer than any channel's backoff (at most 24 h): a channel that failed is asked again.
LATER = DAY + 3600


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, Clock(T0))


THREE = "itatmisis,itam_events,itam_jobs"
NAMES = ["itatmisis", "itam_events", "itam_jobs"]
PRIVATE = "channel @{} is private or not readable by this account (CHANNEL_PRIVATE)"


def get_json(rdb: redis.Redis, key: str) -> Any:
    value = rdb.get(key)
    assert value is not None, key
    return json.loads(value)


def points(rdb: redis.Redis, key: str) -> list[tuple[dict[str, Any], float]]:
    return [(json.loads(m), score) for m, score in rdb.zrange(key, 0, -1, withscores=True)]


def member(t: int, subscribers: int, posts: int = 1) -> str:
    return json.dumps({"t": t, "subscribers": subscribers, "posts": posts}, separators=(",", ":"))


def original_keys(rdb: redis.Redis) -> dict[str, Any]:
    """The original worker's keys and the original history, byte for byte."""
    return {k: rdb.dump(k) for k in (STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY, HISTORY_KEY)}


def own_keys(rdb: redis.Redis, name: str) -> dict[str, Any]:
    keys = channel_keys(name)
    return {k: rdb.dump(k) for k in (keys.stats, keys.posts, keys.history)}


# -- the first configured channel, and only it, writes the original keys ----------------------


@pytest.mark.parametrize(
    "order",
    [NAMES, ["itam_jobs", "itatmisis", "itam_events"], ["itam_events", "itam_jobs", "itatmisis"]],
)
def test_the_first_configured_channel_and_no_other_writes_the_original_keys(
    fake3: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    order: list[str],
) -> None:
    # A clock that moves on at every reading: each channel is read at a time of its own.
    install(monkeypatch, Clock(T0, tick=7))
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=",".join(order)), fake3)
    collected = {n: get_json(rdb, channel_keys(n).stats)["collected_at"] for n in order}
    assert len(set(collected.values())) == 3  # or the checks below could not tell them apart
    first = channel_keys(order[0])
    assert rdb.get(STATS_KEY) == rdb.get(first.stats)
    assert rdb.get(POSTS_KEY) == rdb.get(first.posts)
    assert rdb.zrange(HISTORY_KEY, 0, -1, withscores=True) == rdb.zrange(
        first.history, 0, -1, withscores=True
    )
    assert rdb.get(LAST_UPDATE_KEY) == collected[order[0]]
    assert get_json(rdb, CHANNELS_KEY) == order
    # Each channel's own keys hold its own values.
    for name in order:
        assert get_json(rdb, channel_keys(name).stats)["username"].lower() == name
        [(point, _)] = points(rdb, channel_keys(name).history)
        stats = get_json(rdb, channel_keys(name).stats)
        assert (point["subscribers"], point["posts"]) == (
            stats["subscribers_count"],
            stats["posts_count"],
        )


def test_when_the_first_channel_fails_the_original_keys_stay_as_they_were(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """Hours later, so any rewrite of `tg:last_update` or of a history would differ."""
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    original = original_keys(rdb)
    first_own = own_keys(rdb, "itatmisis")
    assert rdb.get(LAST_UPDATE_KEY) == iso_utc(T0)
    later = clock.advance(2 * 3600)
    fake3.channels[0].private = True
    for channel in fake3.channels:
        channel.participants += 1
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    assert caught.value.partial is True
    assert original_keys(rdb) == original
    assert own_keys(rdb, "itatmisis") == first_own
    # The others were written, at the later time.
    for name, subscribers in (("itam_events", 322), ("itam_jobs", 78)):
        stats = get_json(rdb, channel_keys(name).stats)
        assert (stats["subscribers_count"], stats["collected_at"]) == (subscribers, iso_utc(later))
        assert [p["subscribers"] for p, _ in points(rdb, channel_keys(name).history)] == [
            subscribers - 1,
            subscribers,
        ]


def test_last_update_moves_only_with_the_first_channel(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    fake3.channels[0].private = True
    clock.advance(3600)
    with pytest.raises(ChannelsFailed):
        run_pass(settings, fake3)
    assert rdb.get(LAST_UPDATE_KEY) == iso_utc(T0)
    fake3.channels[0].private = False
    third = clock.advance(LATER)
    run_pass(settings, fake3)
    assert rdb.get(LAST_UPDATE_KEY) == iso_utc(third)
    assert get_json(rdb, STATS_KEY)["collected_at"] == iso_utc(third)
    assert [p["t"] for p, _ in points(rdb, HISTORY_KEY)] == [T0, third]


# -- the history trim -------------------------------------------------------------------------


def test_history_keeps_a_point_exactly_history_days_old_and_drops_one_a_second_older(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """TG_HISTORY_DAYS=2: at the pass's time `now`, a point scored `now - 2 days` stays and one
    scored a second before it goes; in every history the pass writes, the original one too."""
    settings = make_settings(
        fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis,itam_jobs", TG_HISTORY_DAYS="2"
    )
    clock.now = T0 - 3 * DAY
    run_pass(settings, fake3)  # every history exists: no adoption below
    now = int(clock.advance(3 * DAY))
    assert now == T0
    cutoff = now - 2 * DAY
    histories = [HISTORY_KEY, channel_keys("itatmisis").history, channel_keys("itam_jobs").history]
    for key in histories:
        rdb.zadd(
            key,
            {
                member(cutoff - 1, 1): cutoff - 1,
                member(cutoff, 2): cutoff,
                member(cutoff + 1, 3): cutoff + 1,
            },
        )
    run_pass(settings, fake3)
    for key, own in zip(histories, [5500, 5500, 77], strict=True):
        assert points(rdb, key) == [
            ({"t": cutoff, "subscribers": 2, "posts": 1}, cutoff),
            ({"t": cutoff + 1, "subscribers": 3, "posts": 1}, cutoff + 1),
            ({"t": now, "subscribers": own, "posts": 15 if own == 5500 else 3}, now),
        ], key


def test_a_failed_channels_history_is_not_trimmed_nor_added_to(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(
        fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis,itam_jobs", TG_HISTORY_DAYS="2"
    )
    run_pass(settings, fake3)
    jobs = channel_keys("itam_jobs").history
    rdb.zadd(jobs, {member(T0 - DAY, 70): T0 - DAY})
    clock.advance(3 * DAY)
    fake3.channels[2].private = True
    with pytest.raises(ChannelsFailed):
        run_pass(settings, fake3)
    assert [p["t"] for p, _ in points(rdb, jobs)] == [T0 - DAY, T0]
    assert [p["t"] for p, _ in points(rdb, HISTORY_KEY)] == [T0 + 3 * DAY]


# -- upgrading from one channel: the original history -----------------------------------------


def test_the_original_history_seeds_the_first_channels_own_history_only_once(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """Once the first channel has a history of its own, the original one never replaces it."""
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    own = channel_keys("itatmisis").history
    assert rdb.zcard(own) == 1
    rdb.delete(HISTORY_KEY)  # e.g. trimmed by hand: the channel's own series stays whole
    later = int(clock.advance(3600))
    run_pass(settings, fake3)
    assert [p["t"] for p, _ in points(rdb, own)] == [T0, later]
    assert [p["t"] for p, _ in points(rdb, HISTORY_KEY)] == [later]


def test_the_original_history_of_a_channel_whose_id_merely_starts_alike_is_not_adopted(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """The original keys hold channel -100<id>7, not -100<id>: its history is not ours."""
    other_id = int(f"-100{BIG_CHANNEL_ID}7")
    rdb.set(
        STATS_KEY,
        json.dumps(
            {
                "channel_id": other_id,
                "username": "someone_else",
                "title": "Someone else",
                "subscribers_count": 9,
                "posts_count": 9,
                "last_post_date": None,
                "collected_at": iso_utc(T0 - 3600),
            }
        ),
    )
    rdb.zadd(HISTORY_KEY, {member(T0 - 3600, 9, 9): T0 - 3600})
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE), fake3)
    assert [p for p, _ in points(rdb, channel_keys("itatmisis").history)] == [
        {"t": T0, "subscribers": 5500, "posts": 15}
    ]


def test_the_original_history_of_the_same_channel_is_adopted_with_its_scores(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    clock.now = T0 - 2 * 3600
    run_pass(make_settings(fake3, redis_url), fake3)  # one channel, as before the upgrade
    for key in rdb.keys("tg:channel:itatmisis:*"):
        rdb.delete(key)  # what a version without per-channel keys left
    rdb.zadd(HISTORY_KEY, {member(T0 - 3600, 5501, 15): T0 - 3600})
    clock.now = T0
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE), fake3)
    expected = [
        ({"t": T0 - 7200, "subscribers": 5500, "posts": 15}, T0 - 7200),
        ({"t": T0 - 3600, "subscribers": 5501, "posts": 15}, T0 - 3600),
        ({"t": T0, "subscribers": 5500, "posts": 15}, T0),
    ]
    assert points(rdb, channel_keys("itatmisis").history) == expected
    assert points(rdb, HISTORY_KEY) == expected
    for name in ("itam_events", "itam_jobs"):
        assert [p["t"] for p, _ in points(rdb, channel_keys(name).history)] == [T0]


# -- upgrading from one channel: the images ---------------------------------------------------


@pytest.fixture
def upgraded(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> tuple[FakeTelegram, FakeChannel, Any]:
    """A one-channel deployment with images, as a version without per-channel keys left it;
    then configured with a second channel."""
    fake = FakeTelegram()
    media = fake.add_channel(media_channel())
    register_files(fake, media)
    fake.add_channel(small_channel(2, "itam_jobs", participants=77))
    run_pass(
        make_settings(fake, redis_url, TG_CHANNEL_USERNAME="itam_media", TG_MEDIA_DOWNLOAD="small"),
        fake,
    )
    for key in [*rdb.keys("tg:channel:itam_media:*"), CHANNELS_KEY]:
        rdb.delete(key)
    assert len(rdb.keys("tg:media:*")) == 5
    clock.advance(3600)
    fake.calls.clear()
    settings = make_settings(
        fake, redis_url, TG_CHANNEL_USERNAME="itam_media,itam_jobs", TG_MEDIA_DOWNLOAD="small"
    )
    return fake, media, settings


def stored_images(rdb: redis.Redis, key: str) -> set[str]:
    found: set[str] = set()
    for p in get_json(rdb, key):
        found |= {item["image"] for item in p["media"] if item["image"]}
        if p["link_preview"] and p["link_preview"]["image"]:
            found.add(p["link_preview"]["image"])
    return found


def test_upgrade_with_the_first_channel_failing_keeps_the_images_its_posts_show(
    upgraded: tuple[FakeTelegram, FakeChannel, Any], rdb: redis.Redis
) -> None:
    fake, media, settings = upgraded
    posts_before = rdb.dump(POSTS_KEY)
    shown = stored_images(rdb, POSTS_KEY)
    assert len(shown) == 5
    media.private = True
    with pytest.raises(ChannelsFailed):
        run_pass(settings, fake)
    assert rdb.dump(POSTS_KEY) == posts_before
    assert set(rdb.keys("tg:media:*")) == shown
    assert rdb.exists(channel_keys("itam_jobs").stats) == 1


def test_upgrade_prunes_the_images_the_first_channels_posts_no_longer_show(
    upgraded: tuple[FakeTelegram, FakeChannel, Any], rdb: redis.Redis
) -> None:
    fake, media, settings = upgraded
    media.messages = [m for m in media.messages if m.id != 2000]  # its photo 60000 goes
    run_pass(settings, fake)
    assert "upload.GetFile" not in fake.api_calls  # the stored images count as stored
    shown = stored_images(rdb, POSTS_KEY)
    assert shown == stored_images(rdb, channel_keys("itam_media").posts)
    assert (
        set(rdb.keys("tg:media:*"))
        == shown
        == {
            "tg:media:60001:m",
            "tg:media:60002:m",
            "tg:media:61003:m",
            "tg:media:60004:m",
        }
    )


def test_a_channel_dropped_from_the_list_loses_its_images_once_the_original_keys_move_on(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """Two channels, the first with images; then only the second, which already has keys of
    its own: once it writes the original keys, nothing kept references the images."""
    fake = FakeTelegram()
    media = fake.add_channel(media_channel())
    register_files(fake, media)
    fake.add_channel(small_channel(2, "itam_jobs", participants=77))
    both = make_settings(
        fake, redis_url, TG_CHANNEL_USERNAME="itam_media,itam_jobs", TG_MEDIA_DOWNLOAD="small"
    )
    run_pass(both, fake)
    assert len(rdb.keys("tg:media:*")) == 5
    clock.advance(3600)
    run_pass(
        make_settings(fake, redis_url, TG_CHANNEL_USERNAME="itam_jobs", TG_MEDIA_DOWNLOAD="small"),
        fake,
    )
    assert get_json(rdb, STATS_KEY)["username"] == "itam_jobs"
    assert rdb.keys("tg:media:*") == []
    # The dropped channel's own keys stay as they were.
    assert len(stored_images(rdb, channel_keys("itam_media").posts)) == 5


def test_images_of_a_later_channels_posts_that_rolled_out_are_deleted(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(small_channel(2, "itam_jobs", participants=77))
    media = fake.add_channel(media_channel())
    register_files(fake, media)
    settings = make_settings(
        fake, redis_url, TG_CHANNEL_USERNAME="itam_jobs,itam_media", TG_MEDIA_DOWNLOAD="small"
    )
    run_pass(settings, fake)
    assert len(rdb.keys("tg:media:*")) == 5
    media.messages = [m for m in media.messages if m.id != 2000]
    clock.advance(3600)
    run_pass(settings, fake)
    assert set(rdb.keys("tg:media:*")) == stored_images(rdb, channel_keys("itam_media").posts)
    assert "tg:media:60000:m" not in rdb.keys("tg:media:*")
    assert len(rdb.keys("tg:media:*")) == 4


def test_images_the_original_posts_show_stay_while_a_new_first_channel_fails(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    media = fake.add_channel(media_channel())
    register_files(fake, media)
    jobs = fake.add_channel(small_channel(2, "itam_jobs", participants=77))
    fake.add_channel(small_channel(1, "itam_events", participants=321))
    run_pass(
        make_settings(
            fake, redis_url, TG_CHANNEL_USERNAME="itam_media,itam_jobs", TG_MEDIA_DOWNLOAD="small"
        ),
        fake,
    )
    shown = stored_images(rdb, POSTS_KEY)
    assert len(shown) == 5
    # @itam_media is dropped; @itam_jobs, now first, fails: the original keys keep
    # @itam_media's posts (the Go API still serves them), so their images must stay.
    clock.advance(3600)
    jobs.private = True
    with pytest.raises(ChannelsFailed):
        run_pass(
            make_settings(
                fake,
                redis_url,
                TG_CHANNEL_USERNAME="itam_jobs,itam_events",
                TG_MEDIA_DOWNLOAD="small",
            ),
            fake,
        )
    assert stored_images(rdb, POSTS_KEY) == shown
    assert set(rdb.keys("tg:media:*")) >= shown


# -- tg:status over passes ----------------------------------------------------------------------


def test_every_channel_failing_records_each_ones_own_reason(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """Configured spellings differ from the key names; each entry still gets its own reason."""
    settings = make_settings(
        fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis,@ITAM_Events,no_such_channel"
    )
    fake3.channels[1].participants = 400
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis,itam_events"), fake3)
    snapshot = {k: rdb.dump(k) for k in rdb.keys("tg:channel*")}
    later = clock.advance(3600)
    fake3.channels[0].private = True
    fake3.channels[1].private = True
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    assert caught.value.partial is False
    reasons = {
        "itatmisis": PRIVATE.format("itatmisis"),
        "itam_events": PRIVATE.format("ITAM_Events"),
        "no_such_channel": "channel @no_such_channel does not exist (USERNAME_NOT_OCCUPIED)",
    }
    st = status(rdb)
    assert (st["ok"], st["exit_code"], st["consecutive_failures"]) == (False, 4, 1)
    assert st["last_error"] == "3 of 3 channels failed: " + "; ".join(reasons.values())
    assert (st["last_success_at"], st["last_failure_at"]) == (iso_utc(T0), iso_utc(later))
    assert list(st["channels"]) == list(reasons)
    for name, reason in reasons.items():
        entry = st["channels"][name]
        assert (entry["ok"], entry["last_error"]) == (False, reason), name
    assert st["channels"]["itatmisis"]["last_success_at"] == iso_utc(T0)
    assert st["channels"]["itam_events"]["last_success_at"] == iso_utc(T0)
    assert st["channels"]["no_such_channel"]["last_success_at"] is None
    assert {k: rdb.dump(k) for k in rdb.keys("tg:channel*")} == snapshot


def test_one_channel_failing_alone_records_its_own_reason(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake_tg.channels[0].private = True
    with pytest.raises(ChannelError) as caught:
        run_pass(make_settings(fake_tg, redis_url), fake_tg)
    assert not isinstance(caught.value, ChannelsFailed)
    st = status(rdb)
    assert st["last_error"] == PRIVATE.format("itatmisis")
    assert st["channels"]["itatmisis"]["last_error"] == PRIVATE.format("itatmisis")
    assert (st["ok"], st["exit_code"], st["last_failure_at"]) == (False, 4, iso_utc(T0))


def test_status_over_a_success_a_partial_pass_a_whole_failure_and_a_success(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    t1 = int(clock.now)
    run_pass(settings, fake3)
    st = status(rdb)
    assert {k: st[k] for k in TOP} == {
        "ok": True,
        "last_success_at": iso_utc(t1),
        "last_failure_at": None,
        "last_error": None,
        "exit_code": 0,
        "consecutive_failures": 0,
        "retry_after": None,
    }
    assert channel_fields(st) == {n: (True, None, iso_utc(t1)) for n in NAMES}

    # Partial: @itam_events private.
    t2 = int(clock.advance(LATER))
    fake3.channels[1].private = True
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    events_error = PRIVATE.format("itam_events")
    st = status(rdb)
    assert {k: st[k] for k in TOP} == {
        "ok": False,
        "last_success_at": iso_utc(t1),
        "last_failure_at": iso_utc(t2),
        "last_error": str(caught.value),
        "exit_code": 4,
        "consecutive_failures": 1,
        "retry_after": None,
    }
    assert str(caught.value) == f"1 of 3 channels failed: {events_error}"
    assert channel_fields(st) == {
        "itatmisis": (True, None, iso_utc(t2)),
        "itam_events": (False, events_error, iso_utc(t1)),
        "itam_jobs": (True, None, iso_utc(t2)),
    }

    # Every channel fails.
    t3 = int(clock.advance(LATER))
    for channel in fake3.channels:
        channel.private = True
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    st = status(rdb)
    assert {k: st[k] for k in TOP} == {
        "ok": False,
        "last_success_at": iso_utc(t1),
        "last_failure_at": iso_utc(t3),
        "last_error": str(caught.value),
        "exit_code": 4,
        "consecutive_failures": 2,
        "retry_after": None,
    }
    assert channel_fields(st) == {
        "itatmisis": (False, PRIVATE.format("itatmisis"), iso_utc(t2)),
        "itam_events": (False, events_error, iso_utc(t1)),
        "itam_jobs": (False, PRIVATE.format("itam_jobs"), iso_utc(t2)),
    }
    whole_failure = str(caught.value)

    # All back: the failure's time and text stay as the last ones seen.
    t4 = int(clock.advance(LATER))
    for channel in fake3.channels:
        channel.private = False
    run_pass(settings, fake3)
    st = status(rdb)
    assert {k: st[k] for k in TOP} == {
        "ok": True,
        "last_success_at": iso_utc(t4),
        "last_failure_at": iso_utc(t3),
        "last_error": whole_failure,
        "exit_code": 0,
        "consecutive_failures": 0,
        "retry_after": None,
    }
    assert channel_fields(st) == {
        "itatmisis": (True, PRIVATE.format("itatmisis"), iso_utc(t4)),
        "itam_events": (True, events_error, iso_utc(t4)),
        "itam_jobs": (True, PRIVATE.format("itam_jobs"), iso_utc(t4)),
    }


TOP = (
    "ok",
    "last_success_at",
    "last_failure_at",
    "last_error",
    "exit_code",
    "consecutive_failures",
    "retry_after",
)


def channel_fields(st: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    """Each channel's `ok`, `last_error`, `last_success_at` (other fields may come)."""
    return {
        name: (entry["ok"], entry["last_error"], entry["last_success_at"])
        for name, entry in st["channels"].items()
    }


# -- FloodWait's retry_after, on any machine time zone -----------------------------------------


@pytest.fixture
def tokyo_time() -> Any:
    """The machine's local time zone is UTC+9 for the test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        yield
    time.tzset()


def test_a_long_flood_wait_is_waited_out_to_the_second_whatever_the_time_zone(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock, tokyo_time: Any
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_FLOOD_WAIT_MAX="60")
    fake_tg.fail("contacts.ResolveUsername", "FLOOD_WAIT_600")
    with pytest.raises(TelegramError):
        run_pass(settings, fake_tg)
    until = iso_utc(T0 + 600)
    assert status(rdb)["retry_after"] == until
    # A second before: Telegram is not called; at the time: it is.
    fake_tg.calls.clear()
    clock.now = T0 + 599
    with pytest.raises(TelegramError) as caught:
        run_pass(settings, fake_tg)
    assert str(caught.value) == (
        f"Telegram asked to wait until {until} (FloodWait); this pass did not contact it "
        "(`tgstats collect --retry-now` asks at once)"
    )
    assert fake_tg.calls == []
    assert status(rdb)["retry_after"] == until
    clock.now = T0 + 600
    assert run_pass(settings, fake_tg) is True
    assert status(rdb)["retry_after"] is None


# -- what `show` reads --------------------------------------------------------------------------


def read_all(redis_url: str, names: list[str]) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        store = Store(redis_url)
        try:
            return await store.read_all(names)
        finally:
            await store.aclose()

    return asyncio.run(main())


def test_before_the_first_pass_with_several_channels_only_the_first_falls_back_to_the_original_keys(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    run_pass(make_settings(fake3, redis_url), fake3)  # one channel
    for key in rdb.keys("tg:channel:itatmisis:*"):
        rdb.delete(key)  # as a version without per-channel keys left it
    data = read_all(redis_url, NAMES)
    assert data["channels"]["itatmisis"]["stats"] == get_json(rdb, STATS_KEY)
    assert data["channels"]["itatmisis"]["history"] == [{"t": T0, "subscribers": 5500, "posts": 15}]
    for name in ("itam_events", "itam_jobs"):
        assert data["channels"][name] == {"stats": None, "posts": None, "history": []}
    # Once the first channel has keys of its own, they are what is read.
    clock.advance(3600)
    fake3.channels[0].participants = 5600
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE), fake3)
    rdb.set(STATS_KEY, json.dumps({**get_json(rdb, STATS_KEY), "subscribers_count": 1}))
    data = read_all(redis_url, NAMES)
    assert data["channels"]["itatmisis"]["stats"]["subscribers_count"] == 5600
    assert data["stats"]["subscribers_count"] == 1
    assert data["channels"]["itam_jobs"]["stats"]["subscribers_count"] == 77


# -- foreign values and images no kept post shows -------------------------------------------


def test_an_original_history_of_another_type_is_replaced_and_the_pass_writes_everything(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """`tg:channel:history` holding a string, a channel's history a hash (another tool's,
    hand-made keys): a command failing inside EXEC would leave the rest applied, so the
    pass replaces them."""
    rdb.set(HISTORY_KEY, "not a sorted set")
    rdb.hset(channel_keys("itam_events").history, "t", "1")
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE), fake3)
    st = status(rdb)
    assert (st["ok"], st["exit_code"]) == (True, 0)
    assert rdb.type(HISTORY_KEY) == "zset"
    [(point, _)] = points(rdb, channel_keys("itam_events").history)
    assert point["subscribers"] == 321
    assert points(rdb, HISTORY_KEY) == points(rdb, channel_keys("itatmisis").history)
    assert rdb.get(LAST_UPDATE_KEY) == iso_utc(T0)


def test_a_new_channel_that_fails_keeps_none_of_the_first_channels_old_images(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """Only the first channel may fall back to the original posts' images (before it has
    keys of its own); a channel configured later has no images yet, even when it fails."""
    fake = FakeTelegram()
    media = fake.add_channel(media_channel())
    register_files(fake, media)
    run_pass(
        make_settings(fake, redis_url, TG_MEDIA_DOWNLOAD="small", TG_CHANNEL_USERNAME="itam_media"),
        fake,
    )
    old = set(rdb.keys("tg:media:*"))
    assert len(old) == 5
    # Newer text posts push every post with an image out; a second, missing channel is added.
    clock.advance(3600)
    media.messages += [post(media.id, 3000 + i, f"text {i}") for i in range(5)]
    with pytest.raises(ChannelsFailed):
        run_pass(
            make_settings(
                fake,
                redis_url,
                TG_MEDIA_DOWNLOAD="small",
                TG_CHANNEL_USERNAME="itam_media,no_such_channel",
            ),
            fake,
        )
    assert stored_images(rdb, POSTS_KEY) == set()
    assert stored_images(rdb, channel_keys("itam_media").posts) == set()
    assert set(rdb.keys("tg:media:*")) == set()  # no kept post references them any more
