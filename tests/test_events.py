"""`tg:events` in whole passes: every type, each checked against the snapshot the same
transaction wrote; what is not an event; no event without a write (lost lock, dry run,
TG_EVENTS_MAX=0); the trim; the Redis round trips a pass costs.

Unit tests of what counts as new, edited or deleted: tests/store/test_events.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis
from pyrogram import raw
from redis.asyncio.connection import AbstractConnection
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.commands.dryrun import dry_run
from itam_tgstats.errors import ChannelError, ChannelsFailed, LockLost, TelegramError
from itam_tgstats.models import iso_utc
from itam_tgstats.store.keys import EVENTS_KEY, LOCK_KEY, STATUS_KEY, channel_keys
from tests.channels import media_channel, photo, poll, post, register_files
from tests.clock import Clock, install
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass, source_factory
from tests.test_collect import monitor

P = 1_760_000_000  # the stand-in channels' newest post
QUARTER = 900
PULSE_ID = 4_300_000_001
BEAT_ID = 4_300_000_002


def channel(channel_id: int, username: str, count: int = 3) -> FakeChannel:
    """Text posts 1 … `count`, ten minutes apart, the last at P."""
    messages = [
        post(channel_id, i, f"{username} {i}", date=P - 600 * (count - i), views=10 * i)
        for i in range(1, count + 1)
    ]
    return FakeChannel(id=channel_id, title=username, username=username, messages=messages)


def entries(rdb: redis.Redis, after: str = "-") -> list[dict[str, str]]:
    """The stream's entries after the id `after` (each one's fields and its `id`)."""
    start = "-" if after == "-" else f"({after}"
    return [{"id": i, **fields} for i, fields in rdb.xrange(EVENTS_KEY, start, "+")]


def told(found: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """(type, channel[, post_id]) of each entry."""
    return [(e["type"], e["channel"], *([e["post_id"]] if "post_id" in e else [])) for e in found]


def check_against_snapshot(rdb: redis.Redis, found: list[dict[str, str]]) -> None:
    """Every entry of one pass tells what the snapshot of the same transaction shows: read
    together with it in one MULTI/EXEC."""
    names = sorted({e["channel"] for e in found})
    with rdb.pipeline(transaction=True) as pipe:
        pipe.get(STATUS_KEY)
        for name in names:
            pipe.get(channel_keys(name).stats)
            pipe.get(channel_keys(name).posts)
        status_value, *values = pipe.execute()
    status = json.loads(status_value)
    at = status["last_success_at"] if status["ok"] else status["last_failure_at"]
    stored = {n: (values[2 * i], values[2 * i + 1]) for i, n in enumerate(names)}
    for entry in found:
        assert entry["at"] == at, entry  # the pass's time, as tg:status holds it
        stats, posts = stored[entry["channel"]]
        ids = {p["id"] for p in json.loads(posts or "[]")}
        kind = entry["type"]
        if kind in ("post_new", "post_edited"):
            assert int(entry["post_id"]) in ids, entry
        elif kind == "post_deleted":
            assert int(entry["post_id"]) not in ids, entry
        elif kind == "channel_added":
            assert stats is not None, entry
        else:
            own = status["channels"][entry["channel"]]
            assert own["ok"] is (kind == "channel_recovered"), entry
            if kind == "channel_failed":
                assert entry["error"] == own["last_error"], entry
    unique = {tuple(sorted((k, v) for k, v in e.items() if k != "id")) for e in found}
    assert len(unique) == len(found)  # never twice


class Passes:
    """Passes a quarter of an hour apart on the suite's clock; each returns its entries,
    checked against its snapshot."""

    def __init__(
        self, fake: FakeTelegram, rdb: redis.Redis, redis_url: str, clock: Clock, **env: str
    ) -> None:
        self.fake, self.rdb, self.redis_url, self.clock = fake, rdb, redis_url, clock
        self.env = {"TG_CHANNEL_USERNAME": "pulse", **env}
        self.last = "-"

    def run(
        self, fails: type[BaseException] | None = None, *, retry_now: bool = False, **env: str
    ) -> list[tuple[str, ...]]:
        self.clock.advance(QUARTER)
        settings = make_settings(self.fake, self.redis_url, **{**self.env, **env})
        if fails is None:
            assert run_pass(settings, self.fake, retry_now=retry_now) is True
        else:
            with pytest.raises(fails):
                run_pass(settings, self.fake, retry_now=retry_now)
        found = entries(self.rdb, self.last)
        check_against_snapshot(self.rdb, found)
        self.last = found[-1]["id"] if found else self.last
        self.found = found
        return told(found)

    def message(self, post_id: int, index: int = 0) -> Any:
        return next(m for m in self.fake.channels[index].messages if m.id == post_id)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, Clock(P))


@pytest.fixture
def pulse(redis_url: str, rdb: redis.Redis, clock: Clock) -> Passes:
    fake = FakeTelegram()
    fake.add_channel(channel(PULSE_ID, "pulse"))
    return Passes(fake, rdb, redis_url, clock)


@pytest.fixture
def two(redis_url: str, rdb: redis.Redis, clock: Clock) -> Passes:
    fake = FakeTelegram()
    fake.add_channel(channel(PULSE_ID, "pulse"))
    fake.add_channel(channel(BEAT_ID, "beat"))
    return Passes(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="pulse, beat")


# --- posts ---------------------------------------------------------------------------------------


def test_a_first_pass_tells_channel_added_not_each_post_and_a_quiet_pass_nothing(
    pulse: Passes,
) -> None:
    assert pulse.run() == [("channel_added", "pulse")]
    assert pulse.found[0]["at"] == iso_utc(P + QUARTER)
    assert set(pulse.found[0]) == {"id", "type", "channel", "at"}
    assert pulse.run() == []
    pulse.message(3).views = 999  # counters are not events
    pulse.message(3).forwards = 9
    assert pulse.run() == []


def test_new_posts_are_told_oldest_first_and_only_the_kept_ones(pulse: Passes) -> None:
    pulse.run(TG_POSTS_COUNT="2")
    for i in (4, 5, 6):
        pulse.fake.channels[0].messages.append(post(PULSE_ID, i, f"new {i}", date=P + i))
    # 4 is not kept (two posts are): the snapshot does not show it, so no event tells it.
    assert pulse.run(TG_POSTS_COUNT="2") == [("post_new", "pulse", "5"), ("post_new", "pulse", "6")]


def test_a_post_edited_twice_between_passes_is_told_once(pulse: Passes) -> None:
    pulse.run()
    message = pulse.message(2)
    message.message, message.edit_date = "first fix", P + 100
    message.message, message.edit_date = "second fix", P + 200
    assert pulse.run() == [("post_edited", "pulse", "2")]
    assert pulse.found[0]["changed"] == "edited_at,text_html"
    assert pulse.run() == []


def test_a_poll_whose_votes_change_is_not_edited_its_question_is(pulse: Passes) -> None:
    pulse.fake.channels[0].messages.append(post(PULSE_ID, 4, "", date=P + 60, media=poll(4)))
    pulse.run()
    media = pulse.message(4).media
    media.results = raw.types.PollResults(total_voters=999)
    assert pulse.run() == []
    media.poll.question = raw.types.TextWithEntities(text="Go, Rust or Zig?", entities=[])
    assert pulse.run() == [("post_edited", "pulse", "4")]
    assert pulse.found[0]["changed"] == "poll"


def test_an_album_that_gains_or_loses_an_item_is_edited(pulse: Passes) -> None:
    """Albums arrive as separate messages: a pass may see two items of three."""
    messages = pulse.fake.channels[0].messages
    album = [
        post(PULSE_ID, i, "album" if i == 10 else "", date=P + 60, media=photo(i), grouped_id=77)
        for i in (10, 11, 12)
    ]
    messages += album[:2]
    pulse.run()
    messages.append(album[2])
    assert pulse.run() == [("post_edited", "pulse", "10")]
    assert pulse.found[0]["changed"] == "media"
    messages.remove(album[2])
    assert pulse.run() == [("post_edited", "pulse", "10")]
    # Its first item deleted: the post is now 11 (an album's id is its lowest message id).
    messages.remove(album[0])
    assert pulse.run() == [("post_deleted", "pulse", "10"), ("post_new", "pulse", "11")]


def test_a_deleted_post_is_told_one_that_left_the_window_is_not(pulse: Passes) -> None:
    pulse.run(TG_POSTS_COUNT="2")
    messages = pulse.fake.channels[0].messages
    messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    # 2 leaves the two kept posts but the answer still holds it: not deleted.
    assert pulse.run(TG_POSTS_COUNT="2") == [("post_new", "pulse", "4")]
    messages.remove(pulse.message(3))
    assert pulse.run(TG_POSTS_COUNT="2") == [("post_deleted", "pulse", "3")]


def test_a_deleted_post_the_answer_no_longer_reaches_is_not_told(pulse: Passes) -> None:
    quiet = {"TG_POSTS_COUNT": "1", "TG_POST_HISTORY_DAYS": "0"}  # 14 messages a page
    pulse.run(**quiet)
    messages = pulse.fake.channels[0].messages
    messages.remove(pulse.message(3))  # the kept post, deleted ...
    messages += [post(PULSE_ID, i, f"new {i}", date=P + i) for i in range(4, 24)]
    # ... while 20 newer ones came: the answer ends at 10, it cannot tell 3 was deleted.
    assert pulse.run(**quiet) == [("post_new", "pulse", "23")]


def test_a_downloaded_image_is_not_an_edit(redis_url: str, rdb: redis.Redis, clock: Clock) -> None:
    fake = FakeTelegram()
    register_files(fake, fake.add_channel(media_channel()))
    passes = Passes(
        fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="itam_media", TG_MEDIA_DOWNLOAD="small"
    )
    fake.files["photo", 60_000, "m"].expired = True  # this download fails the first time
    passes.run()
    assert (
        json.loads(rdb.get(channel_keys("itam_media").posts) or "[]")[-1]["media"][0]["image"]
        is None
    )
    fake.files["photo", 60_000, "m"].expired = False
    assert passes.run() == []
    assert json.loads(rdb.get(channel_keys("itam_media").posts) or "[]")[-1]["media"][0]["image"]


# --- channels ------------------------------------------------------------------------------------


def test_a_channel_failing_and_recovering_is_told_at_the_transitions_only(two: Passes) -> None:
    two.run()
    beat = two.fake.channels[1]
    beat.private = True
    assert two.run(ChannelsFailed) == [("channel_failed", "beat")]
    assert "@beat is private" in two.found[0]["error"]
    assert two.run(ChannelsFailed, retry_now=True) == []  # failing again: no event
    assert two.run(ChannelsFailed) == []  # not asked (its backoff runs): none either
    beat.private = False
    beat.messages.append(post(BEAT_ID, 4, "beat 4", date=P + 60))
    # Back: recovered, and what it published meanwhile.
    assert two.run(retry_now=True) == [("channel_recovered", "beat"), ("post_new", "beat", "4")]


def test_a_failed_pass_tells_each_channel_with_its_status(two: Passes) -> None:
    two.run()
    two.fake.fail("messages.GetHistory", "FLOOD_WAIT_3600", times=2)
    assert two.run(TelegramError) == [("channel_failed", "pulse"), ("channel_failed", "beat")]
    status = json.loads(two.rdb.get(STATUS_KEY) or "{}")
    assert {e["error"] for e in two.found} == {status["last_error"]}
    # The next pass does not even ask (Telegram said to wait): no event.
    assert two.run(TelegramError) == []
    two.clock.advance(3600)
    assert two.run() == [("channel_recovered", "pulse"), ("channel_recovered", "beat")]


def test_every_channel_failing_on_its_own_is_told(two: Passes) -> None:
    two.run()
    for fake_channel in two.fake.channels:
        fake_channel.private = True
    assert two.run(ChannelsFailed) == [("channel_failed", "pulse"), ("channel_failed", "beat")]


def test_a_channel_that_never_succeeded_is_not_told_failed(two: Passes) -> None:
    two.fake.channels[1].private = True
    assert two.run(ChannelsFailed) == [("channel_added", "pulse")]
    two.fake.channels[1].private = False
    assert two.run(retry_now=True) == [("channel_added", "beat")]


def test_a_renamed_channel_starts_afresh_as_added(pulse: Passes) -> None:
    pulse.run()
    old = pulse.fake.channels[0]
    old.username = "pulse_old"  # renamed; another channel takes the name
    pulse.fake.add_channel(channel(PULSE_ID + 9, "pulse", count=2))
    pulse.rdb.delete(*pulse.rdb.keys("tg:peer:*"))  # as after Telegram refused the cached peer
    # Not post_deleted for the old channel's posts, nor post_new for the new one's.
    assert pulse.run() == [("channel_added", "pulse")]


def test_a_reorder_tells_each_channels_events_once(two: Passes) -> None:
    two.run()
    two.fake.channels[0].messages.append(post(PULSE_ID, 4, "pulse 4", date=P + 60))
    # @beat is first now: the original keys change hands, the events do not.
    assert two.run(TG_CHANNEL_USERNAME="beat, pulse") == [("post_new", "pulse", "4")]
    assert two.run(TG_CHANNEL_USERNAME="beat, pulse") == []
    assert two.run() == []


# --- no write, no event ------------------------------------------------------------------------


def test_a_pass_that_loses_its_lock_writes_no_event(pulse: Passes) -> None:
    pulse.run()
    pulse.fake.channels[0].messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    real = pulse.fake.handlers[raw.functions.messages.GetHistory]

    def taken(query: Any, key: bytes) -> Any:  # another pass took the lock meanwhile
        pulse.rdb.set(LOCK_KEY, "a-newer-pass")
        return real(query, key)

    pulse.fake.handlers[raw.functions.messages.GetHistory] = taken
    before = pulse.rdb.dump(EVENTS_KEY)
    assert pulse.run(LockLost) == []
    assert pulse.rdb.dump(EVENTS_KEY) == before


def test_a_dry_run_writes_no_event(pulse: Passes) -> None:
    pulse.run()
    pulse.fake.channels[0].messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    before = pulse.rdb.dump(EVENTS_KEY)
    settings = make_settings(pulse.fake, pulse.redis_url, **pulse.env)
    result = asyncio.run(dry_run(settings, source_factory(pulse.fake)))
    assert result is not None and result.snapshots["pulse"].posts[0].id == 4
    assert pulse.rdb.dump(EVENTS_KEY) == before
    assert pulse.run() == [("post_new", "pulse", "4")]  # the next pass tells it


def test_events_off_write_none_and_leave_the_stream_alone(pulse: Passes) -> None:
    pulse.run()
    before = pulse.rdb.dump(EVENTS_KEY)
    pulse.fake.channels[0].messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    pulse.fake.channels[0].private = True
    assert pulse.run(ChannelError, TG_EVENTS_MAX="0") == []
    pulse.fake.channels[0].private = False
    assert pulse.run(retry_now=True, TG_EVENTS_MAX="0") == []
    assert pulse.rdb.dump(EVENTS_KEY) == before


def test_no_stream_at_all_while_off(pulse: Passes) -> None:
    pulse.run(TG_EVENTS_MAX="0")
    assert pulse.rdb.exists(EVENTS_KEY) == 0


# --- TG_EVENTS_MAX: the trim, bad values, a foreign key ------------------------------------------


@pytest.mark.parametrize("value", ["abc", "-1", "1000001", "1e3"])
def test_a_bad_events_max_is_one_line_exit_2(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TG_EVENTS_MAX", value)
    result = CliRunner().invoke(app, ["collect"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: TG_EVENTS_MAX must be an integer from 0 to 1000000, got {value!r}\n"
    )


@pytest.mark.parametrize(("value", "expected"), [("", 10_000), ("0", 0), ("1000000", 1_000_000)])
def test_the_events_max_accepted(redis_url: str, value: str, expected: int) -> None:
    settings = make_settings(FakeTelegram(), redis_url, TG_EVENTS_MAX=value)
    assert settings.events_max == expected


def test_each_entry_is_appended_with_maxlen_about_events_max(pulse: Passes, redis_url: str) -> None:
    pulse.run()
    pulse.fake.channels[0].messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    commands = monitor(redis_url, lambda: pulse.run(TG_EVENTS_MAX="25"))
    names = [c[0].upper() for c in commands]
    inside = commands[names.index("MULTI") + 1 : names.index("EXEC")]
    [xadd] = [c for c in inside if c[0].upper() == "XADD"]
    assert xadd[:5] == ["XADD", EVENTS_KEY, "MAXLEN", "~", "25"]
    assert xadd[5:] == ["*", "type", "post_new", "channel", "pulse", "at", iso_utc(pulse.clock.now),
                        "post_id", "4"]  # fmt: skip
    assert not any(c[0].upper() == "XADD" for c in commands[names.index("EXEC") :])


def test_the_stream_is_trimmed_to_about_events_max(pulse: Passes) -> None:
    pulse.run(TG_EVENTS_MAX="10")
    messages = pulse.fake.channels[0].messages
    for n in range(4, 4 + 130):  # a post a pass: 130 entries more
        messages.append(post(PULSE_ID, n, f"post {n}", date=P + n))
        pulse.run(TG_EVENTS_MAX="10", TG_POST_HISTORY_DAYS="0")
    # `~`: Redis trims whole nodes (100 entries by default), never the newest 10.
    assert 10 <= pulse.rdb.xlen(EVENTS_KEY) < 110
    assert told(entries(pulse.rdb))[-1] == ("post_new", "pulse", "133")


@pytest.mark.foreign_values  # show reads a planted foreign key at the end
def test_a_foreign_value_under_the_streams_name_is_replaced_and_show_survives_one(
    pulse: Passes, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pulse.rdb.set(EVENTS_KEY, "what another program left")
    assert pulse.run() == [("channel_added", "pulse")]
    assert pulse.rdb.type(EVENTS_KEY) == "stream"
    pulse.rdb.delete(EVENTS_KEY)
    pulse.rdb.rpush(EVENTS_KEY, "a list")
    monkeypatch.setenv("TG_CHANNEL_USERNAME", "pulse")
    result = CliRunner().invoke(app, ["show", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["events"] == []


# --- what a pass costs ---------------------------------------------------------------------------


def redis_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every command (or pipeline) redis-py sends from now on: one round trip each."""
    count = [0]
    send = AbstractConnection.send_packed_command

    async def counting(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        await send(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return count


@pytest.mark.parametrize("events_max", ["10000", "0"])
def test_a_pass_costs_four_redis_round_trips_events_on_or_off(
    two: Passes, monkeypatch: pytest.MonkeyPatch, events_max: str
) -> None:
    """Take the lock and read (peers, status, stored posts and stats, series entries);
    WATCH the lock; check it and the stored images; one MULTI/EXEC."""
    count = redis_round_trips(monkeypatch)
    two.run(TG_EVENTS_MAX=events_max)  # a first pass (channels added)
    assert count[0] == 4
    messages = two.fake.channels[0].messages
    messages.append(post(PULSE_ID, 4, "four", date=P + 60))
    messages.remove(two.message(2))
    two.message(3).message = "edited"
    two.fake.channels[1].private = True
    count[0] = 0
    found = two.run(ChannelsFailed, TG_EVENTS_MAX=events_max)
    assert count[0] == 4
    assert len(found) == (4 if events_max != "0" else 0)  # new, edited, deleted, failed
    count[0] = 0
    two.fake.fail("messages.GetHistory", "FLOOD_WAIT_3600", times=2)
    two.run(TelegramError, TG_EVENTS_MAX=events_max)  # a failed pass, with its status
    assert count[0] == 4


# --- show ----------------------------------------------------------------------------------------


def test_show_gives_a_channels_last_events_and_json_the_newest_50(
    two: Passes, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    two.run(TG_POSTS_COUNT="100")
    pulse_messages = two.fake.channels[0].messages
    pulse_messages += [post(PULSE_ID, n, f"pulse {n}", date=P + n) for n in range(4, 64)]
    two.fake.channels[1].messages.append(post(BEAT_ID, 4, "beat 4", date=P + 60))
    two.run(TG_POSTS_COUNT="100")  # 60 post_new for @pulse, then @beat's
    pulse_messages.remove(two.message(63))
    two.run(TG_POSTS_COUNT="100")
    monkeypatch.setenv("TG_CHANNEL_USERNAME", "pulse, beat")
    runner = CliRunner()
    data = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    every = entries(two.rdb)
    assert len(every) == 64 and data["events"] == every[-50:]  # oldest first, with their ids
    assert told(data["events"][-2:]) == [("post_new", "beat", "4"), ("post_deleted", "pulse", "63")]
    view = runner.invoke(app, ["show"], env={"COLUMNS": "200"})
    assert view.exit_code == 0, view.stderr
    lines = view.stdout.splitlines()
    start = lines.index("last events of @pulse (newest first)")
    rows = [line.split() for line in lines[start + 2 : start + 12]]
    assert lines[start + 1].split() == ["time", "(UTC)", "event", "post", "detail"]
    assert rows[0] == [iso_utc(two.clock.now), "post_deleted", "63"]
    assert [r[2] for r in rows[1:]] == [str(n) for n in range(63, 54, -1)]  # 10 rows in all
    assert len(lines) == start + 12
    beat = runner.invoke(app, ["show", "--channel", "beat"], env={"COLUMNS": "200"})
    lines = beat.stdout.splitlines()
    start = lines.index("last events of @beat (newest first)")
    assert [line.split()[1:] for line in lines[start + 2 :]] == [
        ["post_new", "4"],
        ["channel_added", "-"],
    ]


# --- a consumer, as docs/events.md describes one --------------------------------------------------


def test_a_consumer_group_catches_up_takes_over_a_crashed_consumer_and_sees_a_trim(
    pulse: Passes,
) -> None:
    """The Go consumer of docs/events.md, command for command: the group created at `$`
    (with MKSTREAM, before any pass), XREADGROUP `>`, XACK, XAUTOCLAIM; after a day down it
    reads everything since; when entries it never read were trimmed, XINFO says so."""
    rdb = pulse.rdb
    rdb.xgroup_create(EVENTS_KEY, "site", id="$", mkstream=True)
    pulse.run()
    [[_, taken]] = rdb.xreadgroup("site", "web-1", {EVENTS_KEY: ">"}, count=100, block=100)
    assert [f["type"] for _, f in taken] == ["channel_added"]  # web-1 dies before XACK
    _, claimed, _ = rdb.xautoclaim(EVENTS_KEY, "site", "web-2", min_idle_time=0, count=100)
    assert claimed == taken
    rdb.xack(EVENTS_KEY, "site", *[i for i, _ in claimed])
    assert rdb.xpending(EVENTS_KEY, "site")["pending"] == 0
    # A day down: 96 passes, a post every other one.
    messages = pulse.fake.channels[0].messages
    for n in range(96):
        if n % 2 == 0:
            messages.append(post(PULSE_ID, 4 + n // 2, "later", date=P + 60 * n))
        pulse.run()
    [[_, missed]] = rdb.xreadgroup("site", "web-2", {EVENTS_KEY: ">"}, count=1000, block=100)
    assert [f["post_id"] for _, f in missed] == [str(4 + k) for k in range(48)]
    assert not trimmed_unread(rdb)
    # Down again while far more than TG_EVENTS_MAX entries came: some were trimmed unread.
    messages += [post(PULSE_ID, n, "burst", date=P + 60 * n) for n in range(100, 260)]
    pulse.run(TG_EVENTS_MAX="10", TG_POSTS_COUNT="100")
    pulse.run(TG_EVENTS_MAX="10", TG_POSTS_COUNT="100")
    assert rdb.xlen(EVENTS_KEY) < 100
    assert trimmed_unread(rdb)


def trimmed_unread(rdb: redis.Redis) -> bool:
    """docs/events.md's check: entries the group never read were trimmed when more were
    added after what it read (`lag`) than the stream still holds."""
    [group] = rdb.xinfo_groups(EVENTS_KEY)
    return bool(group["lag"] is not None and group["lag"] > rdb.xlen(EVENTS_KEY))
