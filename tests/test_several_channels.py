"""Several channels in one pass: one connection, one lock, one MULTI/EXEC, per-channel keys."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats import runner as runner_module
from itam_tgstats.cli import app
from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelsFailed, ConfigError, SessionError, TelegramError
from itam_tgstats.models import iso_utc
from itam_tgstats.store.keys import (
    CHANNELS_KEY,
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    LOCK_KEY,
    POSTS_KEY,
    STATS_KEY,
    channel_keys,
)
from itam_tgstats.store.status import parse_time
from tests.channels import media_channel, register_files, small_channel
from tests.clock import T0, Clock, install
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass, snapshot_bytes, source_factory, status

NO_FILE = Path("/dev/null")


THREE = "itatmisis, @itam_events ,https://t.me/itam_jobs"
NAMES = ["itatmisis", "itam_events", "itam_jobs"]


def get_json(rdb: redis.Redis, key: str) -> Any:
    value = rdb.get(key)
    assert value is not None, key
    return json.loads(value)


def test_three_channels_exact_per_key_and_the_first_in_the_original_keys(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    assert settings.channels == ("itatmisis", "itam_events", "itam_jobs")
    assert run_pass(settings, fake3) is True
    assert get_json(rdb, CHANNELS_KEY) == NAMES
    events = get_json(rdb, channel_keys("itam_events").stats)
    assert {k: v for k, v in events.items() if k != "collected_at"} == {
        "channel_id": -1004000000001,
        "username": "ITAM_Events",  # as Telegram spells it; the key uses the configured name
        "title": "Channel 1",
        "subscribers_count": 321,
        "posts_count": 3,
        "last_post_date": "2025-01-04T14:16:20+00:00",
        "err24_percent": None,  # the posts have no series yet
    }
    jobs_posts = get_json(rdb, channel_keys("itam_jobs").posts)
    assert [(p["id"], p["text"], p["link"]) for p in jobs_posts] == [
        (3, "itam_jobs post 3", "https://t.me/itam_jobs/3"),
        (2, "itam_jobs post 2", "https://t.me/itam_jobs/2"),
        (1, "itam_jobs post 1", "https://t.me/itam_jobs/1"),
    ]
    # The original keys hold exactly the first channel's values, byte for byte.
    first = channel_keys("itatmisis")
    assert rdb.get(STATS_KEY) == rdb.get(first.stats)
    assert rdb.get(POSTS_KEY) == rdb.get(first.posts)
    assert rdb.zrange(HISTORY_KEY, 0, -1) == rdb.zrange(first.history, 0, -1)
    assert rdb.get(LAST_UPDATE_KEY) == get_json(rdb, STATS_KEY)["collected_at"]
    [point] = [json.loads(m) for m in rdb.zrange(channel_keys("itam_jobs").history, 0, -1)]
    assert (point["subscribers"], point["posts"]) == (77, 3)
    st = status(rdb)
    assert st["ok"] is True and st["exit_code"] == 0
    assert st["channels"] == {
        name: {
            "ok": True,
            "last_error": None,
            "last_success_at": st["last_success_at"],
            "retry_after": None,
            "consecutive_failures": 0,
            "admin_stats_at": None,
            "admin_stats_error": None,
        }
        for name in NAMES
    }


def test_call_log_of_a_first_and_a_steady_pass(fake3: FakeTelegram, redis_url: str) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    assert sorted(fake3.api_calls) == sorted(
        ["contacts.ResolveUsername", "channels.GetFullChannel", "messages.GetHistory"] * 3
    )
    assert fake3.connections == 1
    fake3.calls.clear()
    run_pass(settings, fake3)
    assert sorted(fake3.api_calls) == sorted(["channels.GetFullChannel", "messages.GetHistory"] * 3)


def test_a_private_and_a_missing_channel_among_good_ones(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    events_before = rdb.dump(channel_keys("itam_events").stats)
    first_before = snapshot_bytes(rdb)
    success_before = status(rdb)["last_success_at"]
    fake3.channels[1].private = True
    fake3.channels[0].participants = 6000
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE + ", no_such_channel")
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    assert caught.value.exit_code == 4 and caught.value.partial is True
    assert str(caught.value) == (
        "2 of 4 channels failed: "
        "channel @itam_events is private or not readable by this account (CHANNEL_PRIVATE); "
        "channel @no_such_channel does not exist (USERNAME_NOT_OCCUPIED)"
    )
    # The failed channel keeps its last snapshot; the good ones are written.
    assert rdb.dump(channel_keys("itam_events").stats) == events_before
    assert get_json(rdb, channel_keys("itatmisis").stats)["subscribers_count"] == 6000
    assert snapshot_bytes(rdb) != first_before
    assert rdb.exists(channel_keys("no_such_channel").stats) == 0
    assert get_json(rdb, CHANNELS_KEY) == [*NAMES, "no_such_channel"]
    st = status(rdb)
    assert (st["ok"], st["exit_code"], st["consecutive_failures"]) == (False, 4, 1)
    assert st["last_success_at"] == success_before
    assert st["last_error"] == str(caught.value)
    assert st["channels"]["itam_events"] == {
        "ok": False,
        "last_error": "channel @itam_events is private or not readable by this account "
        "(CHANNEL_PRIVATE)",
        "last_success_at": success_before,
        "retry_after": iso_utc(parse_time(st["last_failure_at"]) + 3600),  # left alone 1 h
        "consecutive_failures": 1,
        "admin_stats_at": None,
        "admin_stats_error": None,
    }
    assert st["channels"]["no_such_channel"]["last_success_at"] is None
    assert st["channels"]["itatmisis"]["ok"] is True
    assert rdb.exists(LOCK_KEY) == 0


def test_the_first_channel_failing_leaves_the_original_keys_alone(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fixed clock, an hour between the passes: a rewritten tg:last_update, stats or
    # history point would differ from the first pass's.
    clock = install(monkeypatch, Clock(T0))
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    before = snapshot_bytes(rdb)
    first_own = [rdb.dump(k) for k in vars(channel_keys("itatmisis")).values()]
    later = clock.advance(3600)
    fake3.channels[0].private = True
    fake3.channels[0].participants = 5501
    fake3.channels[2].participants = 78
    with pytest.raises(ChannelsFailed):
        run_pass(settings, fake3)
    assert snapshot_bytes(rdb) == before  # v1 keys, tg:last_update and history untouched
    assert rdb.get(LAST_UPDATE_KEY) == iso_utc(T0)
    assert [rdb.dump(k) for k in vars(channel_keys("itatmisis")).values()] == first_own
    jobs = get_json(rdb, channel_keys("itam_jobs").stats)
    assert (jobs["subscribers_count"], jobs["collected_at"]) == (78, iso_utc(later))


def test_an_account_wide_failure_stops_the_whole_pass(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    fake3.fail("contacts.ResolveUsername", "SESSION_REVOKED")
    with pytest.raises(SessionError):
        run_pass(settings, fake3)
    assert rdb.keys("tg:channel*") == []
    st = status(rdb)
    assert st["exit_code"] == 3
    # Every channel failed with the pass, for the pass's reason.
    assert list(st["channels"]) == NAMES
    assert all(
        (c["ok"], c["last_error"]) == (False, st["last_error"]) for c in st["channels"].values()
    )


def test_every_channel_failing_writes_only_the_status(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    for channel in fake3.channels:
        channel.private = True
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    assert caught.value.partial is False
    assert rdb.keys("tg:channel*") == [] and rdb.exists(CHANNELS_KEY) == 0
    assert set(status(rdb)["channels"]) == set(NAMES)


def test_never_more_than_ten_requests_in_flight(redis_url: str) -> None:
    fake = FakeTelegram()
    names = [f"chan_{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        fake.add_channel(small_channel(10 + i, name))
    fake.latency = 0.05
    settings = make_settings(fake, redis_url, TG_CHANNEL_USERNAME=",".join(names))
    run_pass(settings, fake)  # first pass: resolves too
    assert fake.max_in_flight == 10
    fake.calls.clear()
    fake.timeline.clear()
    fake.max_in_flight = 0
    run_pass(settings, fake)
    assert len(fake.api_calls) == 40 and fake.max_in_flight == 10
    assert fake.round_trips() <= 5  # about ceil(40 / 10), not 40


def test_a_concurrent_reader_never_mixes_channels_of_two_passes(
    fake3: FakeTelegram, redis_url: str
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    keys = [channel_keys(n).stats for n in NAMES]
    stop = threading.Event()
    reads: list[list[str | None]] = []

    def reader() -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        while not stop.is_set():
            reads.append(client.mget(keys))
        client.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 16):
            for channel in fake3.channels:
                channel.participants = 1000 + i
            run_pass(settings, fake3)
    finally:
        stop.set()
        thread.join()
    seen = set()
    for values in reads:
        if values[0] is None:
            assert values == [None, None, None]
            continue
        counts = {json.loads(v)["subscribers_count"] for v in values if v is not None}
        assert len(counts) == 1, counts  # all three from the same pass
        seen |= counts
    assert len(seen) > 1


def test_images_referenced_by_any_channel_stay(redis_url: str, rdb: redis.Redis) -> None:
    fake = FakeTelegram()
    first = fake.add_channel(media_channel("itam_media", 3_111_222_333))
    second = fake.add_channel(media_channel("itam_media_two", 3_111_222_444))
    second.messages = [m for m in second.messages if m.id == 2003]  # shares video 61003
    register_files(fake, first)
    settings = make_settings(
        fake,
        redis_url,
        TG_CHANNEL_USERNAME="itam_media,itam_media_two",
        TG_MEDIA_DOWNLOAD="small",
        TG_POSTS_COUNT="5",
    )
    run_pass(settings, fake)
    assert "tg:media:61003:m" in rdb.keys("tg:media:*")
    # The first channel drops the video from its kept posts: the second still shows it.
    first.messages = [m for m in first.messages if m.id != 2003]
    fake.calls.clear()
    run_pass(settings, fake)
    assert "tg:media:61003:m" in rdb.keys("tg:media:*")
    assert "upload.GetFile" not in fake.api_calls
    # ... and when the second channel fails, its posts (and their images) are kept too.
    second.private = True
    second.messages = []
    with pytest.raises(ChannelsFailed):
        run_pass(settings, fake)
    assert "tg:media:61003:m" in rdb.keys("tg:media:*")
    video = get_json(rdb, channel_keys("itam_media_two").posts)[0]["media"][0]
    assert video["image"] == "tg:media:61003:m"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "itatmisis, @ITATMISIS",
            "TG_CHANNEL_USERNAME names @itatmisis twice (names are not case-sensitive)",
        ),
        (
            ",".join(f"channel_{i}" for i in range(51)),
            "TG_CHANNEL_USERNAME names 51 channels; at most 50 are read in one pass",
        ),
        (
            "itatmisis,,itam_jobs",
            "TG_CHANNEL_USERNAME item 2 must be a public channel username "
            "(name, @name or https://t.me/name), got ''",
        ),
    ],
)
def test_bad_channel_lists_are_refused_in_one_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"TG_CHANNEL_USERNAME": value}, NO_FILE, need_telegram=False)
    assert type(caught.value) is ConfigError and caught.value.exit_code == 2
    assert str(caught.value) == message


def test_fifty_channels_are_accepted() -> None:
    value = ",".join(f"channel_{i}" for i in range(50))
    settings = Settings.from_env({"TG_CHANNEL_USERNAME": value}, NO_FILE, need_telegram=False)
    assert len(settings.channels) == 50


def test_dry_run_with_several_channels(
    env: dict[str, str], fake3: FakeTelegram, monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> None:
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake3))
    monkeypatch.setenv("TG_CHANNEL_USERNAME", THREE)
    result = CliRunner().invoke(app, ["collect", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["channels"] and list(data["channels"]) == NAMES
    assert data["channels"]["itam_jobs"]["stats"]["subscribers_count"] == 77
    assert rdb.keys("tg:channel*") == []


def test_loop_counts_only_passes_where_every_channel_failed(
    env: dict[str, str], fake3: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake3))
    monkeypatch.setenv("TG_CHANNEL_USERNAME", THREE)
    passes = 0

    async def no_sleep(_seconds: float) -> None:
        nonlocal passes
        passes += 1
        if passes == 6:  # six partial passes did not stop the loop: now every channel fails
            fake3.channels[0].private = True
            fake3.channels[2].private = True

    monkeypatch.setattr(runner_module, "wait_interval", no_sleep)
    fake3.channels[1].private = True
    result = CliRunner().invoke(app, ["collect", "--loop"])
    assert result.exit_code == 4
    assert passes == 6 + 4  # then five whole failures in a row


def test_the_first_channel_adopts_the_original_history_on_upgrade(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """A one-channel deployment upgraded: its 90 days of history stay visible per channel."""
    run_pass(make_settings(fake3, redis_url), fake3)  # as before: one channel
    for key in rdb.keys("tg:channel:itatmisis:*"):
        rdb.delete(key)  # what an older version left: only the original keys
    now = int(time.time())
    for hours in (2, 1):
        t = now - hours * 3600
        rdb.zadd(HISTORY_KEY, {f'{{"t":{t},"subscribers":{5000 + hours},"posts":1}}': t})
    fake3.channels[0].participants = 5600  # a point of its own for this pass
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE), fake3)
    own = rdb.zrange(channel_keys("itatmisis").history, 0, -1)
    assert own == rdb.zrange(HISTORY_KEY, 0, -1)
    assert [json.loads(m)["subscribers"] for m in own] == [5002, 5001, 5500, 5600]
    assert rdb.zcard(channel_keys("itam_jobs").history) == 1


def test_a_new_first_channel_does_not_adopt_another_channels_history(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    run_pass(make_settings(fake3, redis_url), fake3)  # @itatmisis in the original keys
    run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME="itam_jobs, itatmisis"), fake3)
    [point] = [json.loads(m) for m in rdb.zrange(channel_keys("itam_jobs").history, 0, -1)]
    assert point["subscribers"] == 77


def test_a_request_refused_for_one_channel_does_not_stop_the_others(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """400/403 answers concern the channel asked about; the others are still written."""
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    run_pass(settings, fake3)
    fake3.fail("channels.GetFullChannel", "CHAT_ADMIN_REQUIRED")
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake3)
    [failure] = caught.value.failures
    assert failure.message == (
        f"Telegram refused the request for @{failure.username}: 400 CHAT_ADMIN_REQUIRED"
    )
    written = [n for n, c in status(rdb)["channels"].items() if c["ok"]]
    assert len(written) == 2


def test_a_server_error_on_one_channel_stops_the_pass(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=THREE)
    fake3.fail("contacts.ResolveUsername", "INTERNAL", times=100)  # past every retry
    with pytest.raises(TelegramError) as caught:
        run_pass(settings, fake3)
    assert not isinstance(caught.value, ChannelsFailed)
    assert rdb.keys("tg:channel*") == []
