"""Posts over time: a point per pass while a post is young, hourly after a day, none past
TG_POST_HISTORY_DAYS; views at 1 h and 24 h; ERR24. Passes run hours apart on a set clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from pyrogram import raw

from itam_tgstats.errors import ChannelError, ChannelsFailed, ConfigError
from itam_tgstats.store.keys import (
    LOCK_KEY,
    POST_HISTORY_KEY,
    POSTS_KEY,
    STATS_KEY,
    STATUS_KEY,
    channel_keys,
)
from tests.channels import post
from tests.clock import Clock, install
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass

P = 1_760_000_000  # when the test channel's newest post is published
HOUR = 3600
DAY = 86_400
CHANNEL_ID = 4_100_000_001


def channel(*dates: int, participants: int = 1000) -> FakeChannel:
    """@pulse, its posts (ids 1, 2, …) published at `dates`."""
    messages = [
        post(CHANNEL_ID, i, f"post {i}", date=d, views=0, forwards=0)
        for i, d in enumerate(dates, start=1)
    ]
    return FakeChannel(
        id=CHANNEL_ID, title="Pulse", username="pulse", messages=messages, participants=participants
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, Clock(P))


class Pulse:
    """One channel and passes at the clock's times, views set per pass."""

    def __init__(
        self, fake: FakeTelegram, rdb: redis.Redis, redis_url: str, clock: Clock, **env: str
    ):
        self.fake, self.rdb, self.clock = fake, rdb, clock
        env.setdefault("TG_CHANNEL_USERNAME", "pulse")
        self.settings = make_settings(fake, redis_url, **env)

    def message(self, post_id: int) -> Any:
        return next(m for m in self.fake.channels[0].messages if m.id == post_id)

    def pass_at(self, when: float, views: dict[int, int] | None = None) -> None:
        self.clock.now = when
        for post_id, count in (views or {}).items():
            self.message(post_id).views = count
        assert run_pass(self.settings, self.fake) is True

    def series(self, post_id: int, key: str = channel_keys("pulse").post_history) -> list[dict]:
        value = self.rdb.hget(key, str(post_id))
        return json.loads(value) if value is not None else []

    def times(self, post_id: int) -> list[int]:
        return [p["t"] - P for p in self.series(post_id)]

    def posts(self) -> dict[int, dict[str, Any]]:
        return {p["id"]: p for p in json.loads(self.rdb.get(POSTS_KEY) or "[]")}

    def stats(self) -> dict[str, Any]:
        return dict(json.loads(self.rdb.get(STATS_KEY) or "{}"))


@pytest.fixture
def pulse(redis_url: str, rdb: redis.Redis, clock: Clock) -> Pulse:
    fake = FakeTelegram()
    fake.add_channel(channel(P))
    return Pulse(fake, rdb, redis_url, clock)


def test_a_point_every_pass_for_a_day_then_one_an_hour(pulse: Pulse) -> None:
    quarter = 15 * 60
    for n in range(1, 30 * 4):  # every 15 minutes for 30 hours
        pulse.pass_at(P + n * quarter, views={1: 10 * n})
    times = pulse.times(1)
    young = [t for t in times if t < DAY]
    assert young == [n * quarter for n in range(1, 96)]  # every pass of the first day
    # After 24 h: the last young point is at 23 h 45 min; then one at least an hour apart.
    assert [t for t in times if t >= DAY] == [
        DAY + 45 * 60,
        DAY + 105 * 60,
        DAY + 165 * 60,
        DAY + 225 * 60,
        DAY + 285 * 60,
        DAY + 345 * 60,
    ]
    # Each point holds the post's numbers at that pass, oldest first.
    first = pulse.series(1)[0]
    assert first == {"t": P + quarter, "views": 10, "reactions": 0, "forwards": 0, "comments": 0}
    assert [p["views"] for p in pulse.series(1)] == [t // quarter * 10 for t in times]


def test_a_point_exactly_an_hour_after_the_last_is_added_one_a_second_earlier_is_not(
    pulse: Pulse,
) -> None:
    pulse.pass_at(P + DAY + 10)
    pulse.pass_at(P + DAY + 10 + HOUR - 1)
    assert pulse.times(1) == [DAY + 10]
    pulse.pass_at(P + DAY + 10 + HOUR)
    assert pulse.times(1) == [DAY + 10, DAY + 10 + HOUR]


def test_no_new_point_once_the_post_is_older_than_the_day_limit(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POST_HISTORY_DAYS="2")
    pulse.pass_at(P + 2 * DAY - 1, views={1: 5})
    pulse.pass_at(P + 2 * DAY, views={1: 6})  # exactly 2 days old: no longer younger
    pulse.pass_at(P + 5 * DAY, views={1: 7})
    assert pulse.times(1) == [2 * DAY - 1]  # the series stays as it was
    assert pulse.posts()[1]["views"] == 7


def test_views_after_1_h_and_24_h_are_interpolated_and_then_settled(pulse: Pulse) -> None:
    pulse.pass_at(P + 50 * 60, views={1: 100})
    assert (pulse.posts()[1]["views_1h"], pulse.posts()[1]["views_24h"]) == (None, None)
    pulse.pass_at(P + 65 * 60, views={1: 250})
    # 100 at 50 min, 250 at 65 min: at 60 min, 100 + 150 * 10/15 = 200.
    assert pulse.posts()[1]["views_1h"] == 200
    pulse.pass_at(P + 80 * 60, views={1: 999})
    assert pulse.posts()[1]["views_1h"] == 200  # settled: later numbers do not move it
    pulse.pass_at(P + 23 * HOUR + 55 * 60, views={1: 1000})
    pulse.pass_at(P + 25 * HOUR + 5 * 60, views={1: 1070})
    # 1000 at 23 h 55 min, 1070 at 25 h 5 min: at 24 h, 1000 + 70 * 5/70 = 1005.
    assert pulse.posts()[1]["views_24h"] == 1005


def test_a_point_exactly_at_the_mark_gives_its_own_views(pulse: Pulse) -> None:
    pulse.pass_at(P + 30 * 60, views={1: 10})
    pulse.pass_at(P + HOUR, views={1: 77})
    assert pulse.posts()[1]["views_1h"] == 77
    pulse.pass_at(P + HOUR + 900, views={1: 90})
    assert pulse.posts()[1]["views_1h"] == 77


def test_interpolation_rounds_half_up(pulse: Pulse) -> None:
    pulse.pass_at(P + HOUR - 1, views={1: 10})
    pulse.pass_at(P + HOUR + 1, views={1: 11})
    assert pulse.posts()[1]["views_1h"] == 11  # 10.5 rounds up


def test_a_post_first_seen_when_already_old_never_gets_its_early_views(pulse: Pulse) -> None:
    pulse.pass_at(P + 2 * HOUR, views={1: 500})
    pulse.pass_at(P + 3 * HOUR, views={1: 600})
    assert pulse.posts()[1]["views_1h"] is None  # no point at or before 1 h
    pulse.pass_at(P + 23 * HOUR, views={1: 900})
    pulse.pass_at(P + 25 * HOUR, views={1: 1100})
    assert pulse.posts()[1]["views_1h"] is None
    assert pulse.posts()[1]["views_24h"] == 1000


def test_err24_is_the_mean_views_at_24_h_per_subscriber(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P - 30 * 60, P, P + HOUR, participants=400))
    pulse = Pulse(fake, rdb, redis_url, clock)
    pulse.pass_at(P + 23 * HOUR, views={1: 100, 2: 100, 3: 50})
    assert pulse.stats()["err24_percent"] is None  # no post has views at 24 h yet
    pulse.pass_at(P + 24 * HOUR + 30 * 60, views={1: 400, 2: 190, 3: 60})
    posts = pulse.posts()
    # Post 1: 100 at 23.5 h, 400 at 25 h → 200 at 24 h; post 2: 100 at 23 h, 190 at
    # 24.5 h → 160; post 3 is not a day old.
    assert [posts[i]["views_24h"] for i in (1, 2, 3)] == [200, 160, None]
    assert pulse.stats()["err24_percent"] == 45.0  # (200 + 160) / 2 / 400 * 100
    fake.channels[0].participants = 0
    pulse.pass_at(P + 25 * HOUR)
    assert pulse.stats()["err24_percent"] is None  # no subscribers: no rate


def test_series_of_posts_no_longer_kept_stay_while_young_and_go_after_the_day_limit(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P - HOUR, P))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POSTS_COUNT="2", TG_POST_HISTORY_DAYS="2")
    pulse.pass_at(P + 60)
    key = channel_keys("pulse").post_history
    assert sorted(rdb.hkeys(key)) == ["1", "2"]
    fake.channels[0].messages.append(post(CHANNEL_ID, 3, "post 3", date=P + 120, views=1))
    pulse.pass_at(P + 180)
    # Post 1 is no longer kept, but younger than 25 hours: it goes on gaining points.
    assert sorted(rdb.hkeys(key)) == ["1", "2", "3"]
    assert pulse.times(1) == [60, 180]
    assert pulse.times(2) == [60, 180]
    # Older than 25 hours and not kept: no more points; its series stays ...
    pulse.pass_at(P + 26 * HOUR)
    assert pulse.times(1)[-1] < 25 * HOUR
    assert pulse.times(2)[-1] == 26 * HOUR  # (kept: an hourly point)
    # ... until it is older than TG_POST_HISTORY_DAYS: then it goes, with its last point.
    pulse.pass_at(P - HOUR + 2 * DAY - 1)
    assert "1" in rdb.hkeys(key)
    pulse.pass_at(P - HOUR + 2 * DAY)
    assert sorted(rdb.hkeys(key)) == ["2", "3"]
    assert sorted(rdb.hkeys("tg:channel:pulse:post_history_last")) == ["2", "3"]
    assert sorted(rdb.hkeys(POST_HISTORY_KEY)) == ["2", "3"]  # the first channel's mirror


def test_a_kept_post_keeps_its_series_past_the_day_limit(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POST_HISTORY_DAYS="2")
    pulse.pass_at(P + 60, views={1: 5})
    pulse.pass_at(P + 3 * DAY, views={1: 9})
    assert pulse.times(1) == [60]  # no point past the limit, and the series stays


def test_the_off_switch_deletes_the_series_and_leaves_the_fields_null(
    redis_url: str, rdb: redis.Redis, clock: Clock, pulse: Pulse
) -> None:
    pulse.pass_at(P + 50 * 60, views={1: 1})
    pulse.pass_at(P + 70 * 60, views={1: 2})
    assert rdb.exists(channel_keys("pulse").post_history, POST_HISTORY_KEY) == 2
    off = Pulse(pulse.fake, rdb, redis_url, clock, TG_POST_HISTORY_DAYS="0")
    off.pass_at(P + 80 * 60)
    assert rdb.exists(channel_keys("pulse").post_history, POST_HISTORY_KEY) == 0
    assert (off.posts()[1]["views_1h"], off.posts()[1]["views_24h"]) == (None, None)
    assert off.stats()["err24_percent"] is None


def test_the_first_channel_also_writes_the_original_key_and_a_reorder_follows(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P))
    other = channel(P)
    other.id, other.username = CHANNEL_ID + 1, "beat"
    other.messages = [post(other.id, 1, "beat 1", date=P, views=5)]
    fake.add_channel(other)
    first = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="pulse, beat")
    first.pass_at(P + 60)
    first.pass_at(P + 120)
    own = rdb.hgetall(channel_keys("pulse").post_history)
    assert own and rdb.hgetall(POST_HISTORY_KEY) == own
    assert len(json.loads(own["1"])) == 2
    # The configuration puts @beat first: the original key becomes @beat's series.
    swapped = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="beat, pulse")
    swapped.pass_at(P + 180)
    assert rdb.hgetall(POST_HISTORY_KEY) == rdb.hgetall(channel_keys("beat").post_history)
    assert [p["views"] for p in swapped.series(1, POST_HISTORY_KEY)] == [5, 5, 5]
    assert len(swapped.series(1)) == 3  # @pulse's own series goes on


def test_a_failed_channel_keeps_its_series(
    redis_url: str, rdb: redis.Redis, clock: Clock, pulse: Pulse
) -> None:
    pulse.pass_at(P + 60)
    before = rdb.hgetall(channel_keys("pulse").post_history)
    pulse.fake.channels[0].private = True
    pulse.clock.now = P + 120
    with pytest.raises(ChannelError, match="@pulse is private"):
        run_pass(pulse.settings, pulse.fake)
    assert rdb.hgetall(channel_keys("pulse").post_history) == before


def test_series_cost_no_telegram_call(pulse: Pulse) -> None:
    pulse.pass_at(P + 60)
    pulse.fake.calls.clear()
    pulse.pass_at(P + 960)
    assert sorted(pulse.fake.api_calls) == ["channels.GetFullChannel", "messages.GetHistory"]


@pytest.mark.foreign_values("tg:channel:pulse:post_history")  # garbage planted on purpose
def test_a_pass_reads_each_posts_last_point_not_its_series(pulse: Pulse, rdb: redis.Redis) -> None:
    pulse.pass_at(P + DAY + 60, views={1: 10})
    summary = "tg:channel:pulse:post_history_last"
    entry = json.loads(rdb.hget(summary, "1") or "null")
    # The series' last point, and what a pass needs without reading the series: the post's
    # date and its views at 1 h and 24 h (unknown: first seen a day old).
    assert entry == {**pulse.series(1)[-1], "posted": P, "views_1h": None, "views_24h": None}
    # A long series costs nothing: only the last point is read (its own last point is
    # planted older than the summary's, which the decision reads).
    old = f'{{"t":{P + 60},"views":1,"reactions":0,"forwards":0,"comments":0}}'
    long = "[" + ",".join([old] * 1500) + "]"
    rdb.hset(channel_keys("pulse").post_history, "1", long)
    pulse.pass_at(P + DAY + 600, views={1: 11})  # 9 min after the last point: none added
    assert rdb.hstrlen(channel_keys("pulse").post_history, "1") == len(long)
    # Without the last point, the post gains one at once: that is what the decision reads.
    rdb.delete(summary)
    pulse.pass_at(P + DAY + 900, views={1: 12})
    assert rdb.hget(summary, "1") is not None
    assert rdb.hstrlen(channel_keys("pulse").post_history, "1") > len(long)


# --- configuration changes, odd clocks, foreign data ------------------------------------------


def named(channel_id: int, username: str, views: int) -> FakeChannel:
    return FakeChannel(
        id=channel_id,
        title=username,
        username=username,
        messages=[post(channel_id, 1, "x", date=P, views=views, forwards=0)],
    )


def test_a_channel_put_first_never_takes_the_old_first_channels_views(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    alpha = fake.add_channel(named(CHANNEL_ID, "alpha", 50))
    fake.add_channel(named(CHANNEL_ID + 1, "beta", 7))
    only_alpha = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="alpha")
    only_alpha.pass_at(P + HOUR // 2)
    alpha.messages[0].views = 150
    only_alpha.pass_at(P + 3 * HOUR // 2)
    assert only_alpha.posts()[1]["views_1h"] == 100
    both = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="beta, alpha")
    both.pass_at(P + 2 * HOUR)
    # @beta's post 1 was first seen at 2 h: no point at or before 1 h, whatever @alpha had.
    assert both.posts()[1]["views_1h"] is None
    assert json.loads(rdb.get(channel_keys("alpha").posts) or "[]")[0]["views_1h"] == 100


def test_the_original_series_is_the_first_channels_after_another_was_first_for_a_while(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    alpha = fake.add_channel(named(CHANNEL_ID, "alpha", 1))
    only_alpha = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="alpha")
    typo_first = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="alhpa_typo, alpha")
    only_alpha.pass_at(P + 900)
    for n in (2, 3):  # a mistyped channel put first for two passes: the original keys wait
        alpha.messages[0].views = n
        clock.now = P + n * 900
        with pytest.raises(ChannelsFailed):
            run_pass(typo_first.settings, fake)
    alpha.messages[0].views = 4
    only_alpha.pass_at(P + 4 * 900)
    own = rdb.hgetall(channel_keys("alpha").post_history)
    assert len(json.loads(own["1"])) == 4
    assert rdb.hgetall(POST_HISTORY_KEY) == own


def test_a_name_that_changed_hands_starts_its_series_afresh(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    old = fake.add_channel(named(CHANNEL_ID, "pulse", 10))
    pulse = Pulse(fake, rdb, redis_url, clock)
    pulse.pass_at(P + 30 * 60)
    old.messages[0].views = 90
    pulse.pass_at(P + 90 * 60)
    assert pulse.posts()[1]["views_1h"] == 50
    # The username now belongs to another channel (the old one renamed, a new one took it).
    old.username = "pulse_old"
    fake.add_channel(named(CHANNEL_ID + 7, "pulse", 3))
    rdb.delete(*rdb.keys("tg:peer:*"))  # as after Telegram refused the cached peer
    pulse.pass_at(P + 100 * 60)
    assert pulse.posts()[1]["views_1h"] is None  # not the old channel's post 1
    assert [p["views"] for p in pulse.series(1)] == [3]
    assert rdb.hgetall(POST_HISTORY_KEY) == rdb.hgetall(channel_keys("pulse").post_history)


def test_no_second_point_in_the_same_second_nor_one_older_than_the_last(pulse: Pulse) -> None:
    pulse.pass_at(P + 1200, views={1: 1})
    pulse.pass_at(P + 1200, views={1: 2})  # cron and `collect --retry-now` in one second
    pulse.pass_at(P + 1000, views={1: 3})  # the clock went back, by a clock's drift
    assert pulse.times(1) == [1200]
    pulse.pass_at(P + 1201, views={1: 4})
    assert pulse.times(1) == [1200, 1201]
    # Further back than a clock's drift (5 min), the points ahead are dropped: the series is
    # not frozen until the clock catches up (tests/test_planted_values.py).
    pulse.pass_at(P + 800, views={1: 5})
    assert pulse.times(1) == [800]


@pytest.mark.parametrize("value", ["1", "31", "-1", "seven"])
def test_a_one_day_limit_is_refused_in_one_line(redis_url: str, value: str) -> None:
    """A series kept one day could never reach its 24-hour point."""
    with pytest.raises(ConfigError) as caught:
        make_settings(FakeTelegram(), redis_url, TG_POST_HISTORY_DAYS=value)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(
        f"TG_POST_HISTORY_DAYS must be 0 (off) or an integer from 2 to 30, got {value!r}"
    )
    assert ("never reaches its 24-hour point" in message) is (value == "1")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("value", "days"), [("0", 0), ("2", 2), ("30", 30), ("", 7)])
def test_the_day_limits_accepted(redis_url: str, value: str, days: int) -> None:
    settings = make_settings(FakeTelegram(), redis_url, TG_POST_HISTORY_DAYS=value)
    assert settings.post_history_days == days


@pytest.mark.foreign_values(
    "tg:channel:pulse:post_history_last", "tg:channel:pulse:post_history", "tg:channel:history"
)
@pytest.mark.parametrize(
    "plant",
    [
        "a superscript digit as a post id",
        "last points of the wrong type",
        "a series of the wrong type",
        "a history of the wrong type",
    ],
)
def test_foreign_values_in_the_series_keys_cost_no_pass(
    pulse: Pulse, rdb: redis.Redis, plant: str
) -> None:
    pulse.pass_at(P + 60, views={1: 1})
    last, series = "tg:channel:pulse:post_history_last", channel_keys("pulse").post_history
    if plant == "a superscript digit as a post id":
        rdb.hset(last, "\u00b2", "x")  # "²".isdigit() is true; int("²") fails
    elif plant == "last points of the wrong type":
        rdb.delete(last)
        rdb.set(last, "garbage")
    elif plant == "a series of the wrong type":
        rdb.delete(series)
        rdb.set(series, "garbage")
    else:
        rdb.delete("tg:channel:pulse:history")
        rdb.set("tg:channel:pulse:history", "garbage")
    pulse.pass_at(P + 960, views={1: 2})  # whole: no exception, everything written
    assert rdb.get(LOCK_KEY) is None
    assert json.loads(rdb.get(STATUS_KEY) or "{}")["ok"] is True
    assert rdb.type(series) == "hash" and rdb.type(last) == "hash"
    assert rdb.type("tg:channel:pulse:history") == "zset"
    assert pulse.series(1)[-1]["views"] == 2


def test_after_a_reorder_the_original_key_holds_only_the_new_first_channels_posts(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """The old first channel's posts (other ids than the new first's) leave
    `tg:channel:post_history`: the Go API must not chart another channel's posts."""
    fake = FakeTelegram()
    fake.add_channel(channel(P - 60, P))  # @pulse: posts 1 and 2
    other = channel(P)
    other.id, other.username = CHANNEL_ID + 1, "beat"
    other.messages = [post(other.id, 7, "beat 7", date=P, views=5)]
    fake.add_channel(other)
    Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="pulse, beat").pass_at(P + 60)
    assert set(rdb.hkeys(POST_HISTORY_KEY)) == {"1", "2"}
    swapped = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="beat, pulse")
    swapped.pass_at(P + 120)
    assert set(rdb.hkeys(POST_HISTORY_KEY)) == {"7"}
    assert rdb.hgetall(POST_HISTORY_KEY) == rdb.hgetall(channel_keys("beat").post_history)
    assert set(rdb.hkeys(channel_keys("pulse").post_history)) == {"1", "2"}


# --- every young post followed ----------------------------------------------------------------


def recording_history_limits(fake: FakeTelegram) -> list[tuple[int, int]]:
    """(limit asked, messages answered) of every messages.getHistory call from now on."""
    seen: list[tuple[int, int]] = []
    real = fake.handlers[raw.functions.messages.GetHistory]

    def spy(query: Any, key: bytes) -> Any:
        answer = real(query, key)
        seen.append((query.limit, len(answer.messages)))
        return answer

    fake.handlers[raw.functions.messages.GetHistory] = spy
    return seen


def last_entries(rdb: redis.Redis, name: str = "busy") -> dict[int, dict[str, Any]]:
    """The stored series' entries: last point, `posted`, `views_1h`, `views_24h`."""
    fields = rdb.hgetall(f"tg:channel:{name}:post_history_last")
    return {int(k): json.loads(v) for k, v in fields.items()}


def test_a_channel_posting_30_times_a_day_gets_every_views_24h_with_2_calls_a_pass(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """TG_POSTS_COUNT=5 keeps a post for 4 hours; its views 24 h after posting come from the
    same getHistory answer, which asks for as many messages as cover the young posts."""
    every = 48 * 60  # 30 posts a day
    busy = FakeChannel(id=CHANNEL_ID, title="Busy", username="busy", participants=2000)
    fake = FakeTelegram()
    fake.add_channel(busy)
    pulse = Pulse(fake, rdb, redis_url, clock, TG_CHANNEL_USERNAME="busy")
    limits = recording_history_limits(fake)
    calls: list[list[str]] = []
    for j in range(1, 2 * 96 + 1):  # a pass every 15 minutes for two days
        now = P + j * 900
        while len(busy.messages) * every <= j * 900:  # what was published by now
            n = len(busy.messages) + 1
            busy.messages.append(post(CHANNEL_ID, n, f"busy {n}", date=P + (n - 1) * every))
        for message in busy.messages:  # views grow linearly: exact at any moment
            message.views = (now - message.date) // 60 * (1 + message.id % 3)
        fake.calls.clear()
        pulse.pass_at(now)
        calls.append(fake.api_calls)
    assert all(c == ["channels.GetFullChannel", "messages.GetHistory"] for c in calls[1:])
    assert max(limit for limit, _ in limits) <= 100
    # Every post a day old by the last pass: its views 24 h after posting, exactly.
    published = [m.id for m in busy.messages if m.date + DAY <= P + 2 * 96 * 900]
    assert len(published) == 31
    entries = last_entries(rdb)
    assert {i: entries[i]["views_24h"] for i in published} == {
        i: 1440 * (1 + i % 3) for i in published
    }
    # None of them is kept (5 posts are: the last 4 hours), yet ERR24 is their mean.
    kept = pulse.posts()
    assert min(kept) > max(published)
    assert all(p["views_24h"] is None for p in kept.values())
    mean = sum(1440 * (1 + i % 3) for i in published) / len(published)
    assert pulse.stats()["err24_percent"] == round(mean / 2000 * 100, 1)
    # Each followed post's series has its points around the 24-hour mark.
    for i in published:
        date = P + (i - 1) * every
        times = [p["t"] - date for p in pulse.series(i, channel_keys("busy").post_history)]
        assert min(times) < HOUR and any(DAY - 900 <= t < DAY for t in times), i
        assert any(DAY <= t < 25 * HOUR for t in times), i


def test_err24_counts_a_post_nobody_read_in_a_day_as_0(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(P, P + HOUR, participants=100))
    pulse = Pulse(fake, rdb, redis_url, clock)
    pulse.pass_at(P + 23 * HOUR, views={1: 0, 2: 40})
    pulse.pass_at(P + 26 * HOUR, views={1: 0, 2: 100})
    posts = pulse.posts()
    assert (posts[1]["views_24h"], posts[2]["views_24h"]) == (0, 80)
    assert pulse.stats()["err24_percent"] == 40.0  # (0 + 80) / 2 per 100 subscribers


def test_get_history_asks_for_the_young_posts_the_last_pass_followed(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    """The limit grows to cover them, at most a page; then follows what fits."""
    fake = FakeTelegram()
    busy = fake.add_channel(channel(*[P + 60 * i for i in range(40)]))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POSTS_COUNT="2")
    limits = recording_history_limits(fake)
    pulse.pass_at(P + HOUR)
    assert limits[-1] == (18, 18)  # 2 posts x 4 + 10: no young post followed yet
    assert sorted(last_entries(rdb, "pulse")) == list(range(23, 41))
    pulse.pass_at(P + 2 * HOUR)
    # From the oldest young post followed (23) to the newest (40), and 10 more.
    assert limits[-1] == (40 - 23 + 1 + 10, 28)
    assert sorted(last_entries(rdb, "pulse")) == list(range(13, 41))
    # 100 posts published at once: the next pass asks for what the last one saw (and 10
    # more), the one after for everything young it knows of, at most a page.
    busy.messages += [post(CHANNEL_ID, n, "burst", date=P + 150 * 60) for n in range(41, 141)]
    pulse.pass_at(P + 3 * HOUR)
    assert limits[-1] == (38, 38)  # 103 to 140
    pulse.pass_at(P + 3 * HOUR + 900)
    assert limits[-1] == (100, 100)  # 13 to 140 do not fit: 41 to 140
    entries = last_entries(rdb, "pulse")
    now = P + 3 * HOUR + 900
    assert sorted(i for i, e in entries.items() if e["t"] == now) == list(range(41, 141))
    assert {entries[i]["t"] for i in range(13, 41)} == {P + 2 * HOUR}  # left out, kept
    pulse.pass_at(P + 27 * HOUR)  # 13 to 40 are older than 25 hours, 41 to 140 are not
    assert limits[-1] == (100, 100)
    pulse.pass_at(P + 29 * HOUR)  # none young any more: what the kept posts need
    assert limits[-1] == (18, 18)


def test_a_channel_whose_day_does_not_fit_a_page_says_so_once_a_day(
    redis_url: str, rdb: redis.Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTelegram()
    start = 1_760_054_400  # 2025-10-10T00:00:00+00:00
    busy = fake.add_channel(channel(*[start + 60 * i for i in range(30)]))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POSTS_COUNT="5")

    def warned(when: int) -> list[str]:
        caplog.clear()
        with caplog.at_level("DEBUG", logger="itam_tgstats"):
            pulse.pass_at(when)
        return [
            r.levelname for r in caplog.records if "25 hours do not fit one getHistory" in r.message
        ]

    assert warned(start + HOUR) == []
    busy.messages += [post(CHANNEL_ID, n, "burst", date=start + HOUR) for n in range(31, 161)]
    # 121 to 160 read (what the last pass saw, and 10 more); now 1 to 160 are young, more
    # than a page holds: said when it begins ...
    assert warned(start + 2 * HOUR) == ["WARNING"]
    assert warned(start + 3 * HOUR) == ["DEBUG"]
    assert warned(start + 4 * HOUR) == ["DEBUG"]
    assert warned(start + DAY + 10) == ["WARNING"]  # ... and on each day's first pass
    assert warned(start + DAY + 900) == ["DEBUG"]
    assert warned(start + 2 * DAY) == []  # the burst is older than 25 hours now


def test_a_hundred_young_posts_fit_a_page_and_are_not_said_not_to(
    redis_url: str, rdb: redis.Redis, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTelegram()
    fake.add_channel(channel(*[P + 9 * i for i in range(100)]))
    pulse = Pulse(fake, rdb, redis_url, clock, TG_POSTS_COUNT="100")
    limits = recording_history_limits(fake)
    with caplog.at_level("DEBUG", logger="itam_tgstats"):
        for n in range(3):
            pulse.pass_at(P + HOUR + 900 * n)
    # 100 young posts (and room for 10 more): a page holds them all, nothing is left out.
    assert not [r for r in caplog.records if "do not fit" in r.message]
    assert limits[-1] == (100, 100)
    assert len(last_entries(rdb, "pulse")) == 100
