"""Admin statistics in whole passes: read when due and allowed, on their data center, stored in
the pass's transaction; a pass that is not due (or not allowed) costs no call and no Redis round
trip more; a failure never fails the pass nor starts a backoff. Passes run hours apart on a set
clock (tests/clock.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis

from itam_tgstats.errors import ChannelsFailed
from itam_tgstats.models import iso_utc
from itam_tgstats.render.admin_stats import GRAPHS, admin_stats_value
from itam_tgstats.store.keys import ADMIN_STATS_KEY, STATUS_KEY, admin_stats_key
from itam_tgstats.store.status import NO_LONGER_VIEWABLE
from tests.channels import media_channel, register_files, rich_channel
from tests.clock import T0, Clock, install
from tests.fakestats import ASYNC_GRAPHS, ERROR_GRAPH, ERROR_TEXT, realistic_stats, stats_graph
from tests.faketg import SETUP_CALLS, FakeChannel, FakeTelegram, roundtrip
from tests.helpers import make_settings, run_pass, status
from tests.test_collect import monitor

HOUR = 3600
DAY = 86_400
HANDSHAKE = ["ReqPqMulti", "ReqDHParams", "SetClientDHParams"]
GET, LOAD = "stats.GetBroadcastStats", "stats.LoadAsyncGraph"
EXPORT, IMPORT = "auth.ExportAuthorization", "auth.ImportAuthorization"
STEADY = ["channels.GetFullChannel", "messages.GetHistory"]
OWN_KEY = admin_stats_key("itatmisis")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install(monkeypatch, Clock(T0))


def with_stats(channel: FakeChannel, dc_id: int, *, said: int | None = None) -> FakeChannel:
    """`channel`, whose statistics this account may view, kept on `dc_id`; getFullChannel
    names `said` (default: `dc_id`)."""
    channel.can_view_stats = True
    channel.stats_dc = dc_id if said is None else said
    channel.stats = realistic_stats(dc_id, tag=f"c{channel.id}")
    return channel


def expected(channel: FakeChannel, at: float) -> dict[str, Any]:
    """The value a pass at `at` stores for the channel's statistics."""
    stats = channel.stats
    assert stats is not None
    loaded = {
        name: stats.async_graphs[getattr(stats.answer, f"{name}_graph").token]
        for name in ASYNC_GRAPHS
    }
    return admin_stats_value(roundtrip(stats.answer), collected_at=at, loaded=loaded)


def stored(rdb: redis.Redis, key: str = OWN_KEY) -> Any:
    value = rdb.get(key)
    return None if value is None else json.loads(value)


def entry(rdb: redis.Redis, name: str = "itatmisis") -> dict[str, Any]:
    return dict(status(rdb)["channels"][name])


def calls_on(fake: FakeTelegram, dc_id: int) -> list[str]:
    return [c for c in fake.calls_on(dc_id) if c not in SETUP_CALLS]


def one_pass(fake: FakeTelegram, redis_url: str, **env: str) -> None:
    """A pass with the fake's records cleared first."""
    fake.calls.clear()
    fake.dc_calls.clear()
    fake.dc_connections.clear()
    assert run_pass(make_settings(fake, redis_url, **env), fake)


# --- a due pass ------------------------------------------------------------------------------


def test_a_due_pass_reads_them_on_their_dc_and_stores_every_graph(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    one_pass(fake, redis_url)
    # At home: the pass's own calls, then the authorization exported once for DC 4; there: a
    # new key, the import, the statistics and the two graphs sent as tokens.
    assert calls_on(fake, 2) == ["contacts.ResolveUsername", *STEADY, EXPORT]
    assert calls_on(fake, 4) == [*HANDSHAKE, IMPORT, GET, LOAD, LOAD]
    assert fake.dc_connections == [(2, False), (4, False), (4, False)]  # ours; DC 4: key, session
    assert fake.open_connections == 0
    value = stored(rdb)
    assert value == expected(channel, T0)
    assert rdb.get(ADMIN_STATS_KEY) == rdb.get(OWN_KEY)  # the first channel's
    graphs = value["graphs"]
    assert list(graphs) == list(GRAPHS)  # all twelve
    assert graphs[ERROR_GRAPH] == {"error": ERROR_TEXT}
    assert all(graphs[n]["x"] and graphs[n]["series"] for n in GRAPHS if n != ERROR_GRAPH)
    assert all(len(graphs[n]["x"]) == 7 for n in ASYNC_GRAPHS)  # the tokens' graphs, loaded
    assert value["collected_at"] == iso_utc(T0)
    assert (entry(rdb)["admin_stats_at"], entry(rdb)["admin_stats_error"]) == (iso_utc(T0), None)


def test_statistics_at_home_cost_three_calls_and_no_other_session(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    one_pass(fake, redis_url)
    assert fake.api_calls == ["contacts.ResolveUsername", *STEADY, GET, LOAD, LOAD]
    assert fake.dc_connections == [(2, False)]  # the client's own only
    assert stored(rdb) == expected(channel, T0)


def test_stats_migrate_is_followed_in_a_pass(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 5, said=4)
    one_pass(fake, redis_url)
    assert calls_on(fake, 4) == [*HANDSHAKE, IMPORT, GET]  # STATS_MIGRATE_5
    assert calls_on(fake, 5) == [*HANDSHAKE, IMPORT, GET, LOAD, LOAD]
    assert stored(rdb) == expected(channel, T0)
    assert entry(rdb)["admin_stats_error"] is None


def test_channels_on_one_stats_dc_share_one_session_and_only_the_first_has_the_original_key(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    first = with_stats(fake3.channels[0], 4)
    second = with_stats(fake3.channels[1], 4)
    one_pass(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis, ITAM_Events, itam_jobs")
    assert fake3.calls.count(EXPORT) == 1 and fake3.calls.count(IMPORT) == 1
    assert (fake3.calls.count(GET), fake3.calls.count(LOAD)) == (2, 4)
    assert stored(rdb) == expected(first, T0)
    assert stored(rdb, admin_stats_key("itam_events")) == expected(second, T0)
    assert rdb.get(ADMIN_STATS_KEY) == rdb.get(OWN_KEY)
    assert rdb.exists(admin_stats_key("itam_jobs")) == 0  # may not view them: not asked
    assert entry(rdb, "itam_jobs")["admin_stats_at"] is None


def test_image_downloads_use_the_session_the_statistics_opened(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(media_channel()), 4)
    register_files(fake, channel)  # two of its images are kept on DC 4
    one_pass(fake, redis_url, TG_CHANNEL_USERNAME="itam_media", TG_MEDIA_DOWNLOAD="small")
    assert fake.calls.count(EXPORT) == 1 and fake.calls.count(IMPORT) == 1
    assert "upload.GetFile" in calls_on(fake, 4)
    assert fake.dc_connections == [(2, False), (4, False), (4, False)]
    assert stored(rdb, admin_stats_key("itam_media")) == expected(channel, T0)


# --- passes that are not due, or not allowed: nothing more -----------------------------------


def command_keys(commands: list[list[str]]) -> list[tuple[str, ...]]:
    """Each Redis command by its name and first argument (values and times left out)."""
    return [(c[0].upper(), *c[1:2]) for c in commands]


def test_a_steady_pass_that_is_not_due_costs_no_call_and_no_redis_command_more(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 4)
    one_pass(fake, redis_url)
    value = rdb.dump(OWN_KEY)
    clock.advance(900)
    not_due = monitor(redis_url, lambda: one_pass(fake, redis_url))
    assert fake.api_calls == STEADY
    assert fake.dc_connections == [(2, False)]  # the client's own only
    assert rdb.dump(OWN_KEY) == value
    assert entry(rdb)["admin_stats_at"] == iso_utc(T0)
    assert ("SET", ADMIN_STATS_KEY) not in command_keys(not_due)  # equal: nothing written
    clock.advance(900)
    off = monitor(redis_url, lambda: one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="0"))
    assert fake.api_calls == STEADY
    # The same Redis commands as with admin statistics off: nothing read, nothing written more.
    assert command_keys(not_due) == command_keys(off)
    # A due pass: the same commands, and the value set in its MULTI/EXEC, then copied to the
    # original key by the script every pass that writes the first channel runs (in steady
    # passes it finds the two equal and writes nothing).
    clock.advance(DAY)
    due = monitor(redis_url, lambda: one_pass(fake, redis_url))
    assert fake.api_calls == [*STEADY, *HANDSHAKE, EXPORT, IMPORT, GET, LOAD, LOAD]
    names = [c[0] for c in command_keys(due)]
    inside = command_keys(due)[names.index("MULTI") : names.index("EXEC")]
    written = [("SET", OWN_KEY), ("SET", ADMIN_STATS_KEY)]
    assert [c for c in inside if c in written] == written
    assert [c for c in command_keys(due) if c not in written] == command_keys(off)
    assert rdb.get(ADMIN_STATS_KEY) == rdb.get(OWN_KEY)
    assert rdb.dump(OWN_KEY) != value


def test_they_are_read_again_once_the_hours_have_passed(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="6")
    for _ in range(23):  # every 15 minutes for 5 h 45 min: not due
        clock.advance(900)
        one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="6")
        assert fake.api_calls == STEADY
    clock.advance(900)  # 6 h after the first
    one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="6")
    assert fake.api_calls == [*STEADY, GET, LOAD, LOAD]
    assert stored(rdb) == expected(channel, T0 + 6 * HOUR)
    assert entry(rdb)["admin_stats_at"] == iso_utc(T0 + 6 * HOUR)


def test_a_second_early_is_due_too_so_the_reads_do_not_drift(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 2)
    one_pass(fake, redis_url)
    clock.advance(DAY - 61)
    one_pass(fake, redis_url)
    assert GET not in fake.api_calls
    clock.advance(2)  # a day less 59 s: within the slack of a minute
    one_pass(fake, redis_url)
    assert GET in fake.api_calls


def test_a_channel_the_account_may_not_view_costs_no_call(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    fake.add_channel(rich_channel())  # can_view_stats false
    one_pass(fake, redis_url)
    assert fake.api_calls == ["contacts.ResolveUsername", *STEADY]
    clock.advance(2 * DAY)
    one_pass(fake, redis_url)
    assert fake.api_calls == STEADY
    assert rdb.exists(OWN_KEY, ADMIN_STATS_KEY) == 0
    assert (entry(rdb)["admin_stats_at"], entry(rdb)["admin_stats_error"]) == (None, None)


def test_off_reads_nothing_even_for_an_admin(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 4)
    one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="0")
    assert fake.api_calls == ["contacts.ResolveUsername", *STEADY]
    assert rdb.exists(OWN_KEY) == 0
    assert entry(rdb)["admin_stats_at"] is None


# --- when they cannot be read: the value stays, the pass goes on ------------------------------


def test_no_admin_any_more_keeps_the_value_says_so_and_reads_as_soon_as_it_may_again(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    one_pass(fake, redis_url)
    value = rdb.dump(OWN_KEY)
    channel.can_view_stats = False
    for _ in range(3):
        clock.advance(DAY)
        one_pass(fake, redis_url)
        assert fake.api_calls == STEADY  # no call until can_view_stats returns
        assert rdb.dump(OWN_KEY) == value
        assert entry(rdb)["admin_stats_error"] == NO_LONGER_VIEWABLE
        assert entry(rdb)["admin_stats_at"] is None
        assert (entry(rdb)["ok"], status(rdb)["ok"], status(rdb)["exit_code"]) == (True, True, 0)
    channel.can_view_stats = True
    clock.advance(900)
    one_pass(fake, redis_url)
    assert fake.api_calls == [*STEADY, *HANDSHAKE, EXPORT, IMPORT, GET, LOAD, LOAD]
    assert stored(rdb) == expected(channel, clock.now)
    assert entry(rdb)["admin_stats_error"] is None


def test_chat_admin_required_keeps_the_old_value_with_the_error(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 4)
    one_pass(fake, redis_url)
    value, original = rdb.dump(OWN_KEY), rdb.dump(ADMIN_STATS_KEY)
    clock.advance(DAY)
    fake.fail(GET, "CHAT_ADMIN_REQUIRED")
    one_pass(fake, redis_url)
    assert fake.api_calls == [*STEADY, *HANDSHAKE, EXPORT, IMPORT, GET]
    assert (rdb.dump(OWN_KEY), rdb.dump(ADMIN_STATS_KEY)) == (value, original)
    st = status(rdb)
    assert (st["ok"], st["exit_code"], st["retry_after"]) == (True, 0, None)
    assert entry(rdb) | {"last_success_at": None} == {
        "ok": True,
        "last_error": None,
        "last_success_at": None,
        "retry_after": None,  # no backoff
        "consecutive_failures": 0,
        "admin_stats_at": iso_utc(T0 + DAY),
        "admin_stats_error": "stats.getBroadcastStats: this account is not an admin of the "
        "channel (CHAT_ADMIN_REQUIRED)",
    }
    clock.advance(900)  # the failed attempt counts: the next is a day later
    one_pass(fake, redis_url)
    assert fake.api_calls == STEADY
    assert entry(rdb)["admin_stats_error"] is not None


def test_a_flood_wait_is_not_slept_through_the_pass_succeeds_and_the_next_due_pass_retries(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.fail(GET, "FLOOD_WAIT_30")  # within TG_FLOOD_WAIT_MAX: Pyrogram would sleep 30 s
    started = time.monotonic()
    one_pass(fake, redis_url)
    assert time.monotonic() - started < 10
    assert fake.api_calls.count(GET) == 1
    assert rdb.exists(OWN_KEY) == 0
    assert rdb.exists("tg:channel:itatmisis:stats") == 1  # the snapshot is written
    st = status(rdb)
    assert (st["ok"], st["exit_code"], st["retry_after"]) == (True, 0, None)
    assert entry(rdb)["retry_after"] is None
    assert entry(rdb)["admin_stats_error"] == (
        "stats.getBroadcastStats: FloodWait of 30 s (not waited for: the next due pass asks again)"
    )
    clock.advance(900)
    one_pass(fake, redis_url)
    assert fake.api_calls == STEADY
    clock.advance(DAY)
    one_pass(fake, redis_url)
    assert fake.api_calls == [*STEADY, *HANDSHAKE, EXPORT, IMPORT, GET, LOAD, LOAD]
    assert stored(rdb) == expected(channel, T0 + DAY + 900)
    assert entry(rdb)["admin_stats_error"] is None


def test_a_graph_token_that_fails_keeps_the_old_value(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 2)
    one_pass(fake, redis_url)
    value = rdb.dump(OWN_KEY)
    clock.advance(DAY)
    fake.fail(LOAD, "GRAPH_EXPIRED_RELOAD", times=2)
    one_pass(fake, redis_url)
    assert rdb.dump(OWN_KEY) == value
    assert entry(rdb)["admin_stats_error"] == (
        "stats.loadAsyncGraph (views_by_source): 400 GRAPH_EXPIRED_RELOAD"
    )


def test_a_bug_in_reading_them_costs_the_statistics_only(
    redis_url: str, rdb: redis.Redis, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 2)

    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("growth")

    monkeypatch.setattr("itam_tgstats.telegram.stats.admin_stats_value", broken)
    one_pass(fake, redis_url)
    assert rdb.exists(OWN_KEY) == 0
    assert entry(rdb)["ok"] is True
    assert entry(rdb)["admin_stats_error"] == "unexpected error: KeyError: 'growth'"


def test_a_channel_that_fails_keeps_its_statistics_and_their_status(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    names = "itatmisis, ITAM_Events"
    with_stats(fake3.channels[1], 2)
    one_pass(fake3, redis_url, TG_CHANNEL_USERNAME=names)
    value, before = rdb.dump(admin_stats_key("itam_events")), entry(rdb, "itam_events")
    fake3.channels[1].private = True
    clock.advance(DAY)
    with pytest.raises(ChannelsFailed):
        run_pass(make_settings(fake3, redis_url, TG_CHANNEL_USERNAME=names), fake3)
    assert rdb.dump(admin_stats_key("itam_events")) == value
    after = entry(rdb, "itam_events")
    assert (after["admin_stats_at"], after["admin_stats_error"]) == (
        before["admin_stats_at"],
        None,
    )
    assert rdb.exists(ADMIN_STATS_KEY) == 0  # the first channel's: it has none


def test_a_status_written_by_an_older_version_reads_as_never_asked(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 2)
    one_pass(fake, redis_url, TG_ADMIN_STATS_HOURS="0")
    old = status(rdb)
    for name in ("admin_stats_at", "admin_stats_error"):
        del old["channels"]["itatmisis"][name]
    rdb.set(STATUS_KEY, json.dumps(old))
    clock.advance(900)
    one_pass(fake, redis_url)
    assert GET in fake.api_calls
    assert entry(rdb)["admin_stats_at"] == iso_utc(T0 + 900)


def test_a_graph_telegram_sends_unreadable_is_stored_as_an_error_the_rest_kept(
    redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    assert channel.stats is not None
    channel.stats.answer.mute_graph = stats_graph("{not json")
    one_pass(fake, redis_url)
    graphs = stored(rdb)["graphs"]
    assert graphs["mute"]["error"].startswith("cannot read the graph: not JSON")
    assert all("x" in graphs[n] for n in GRAPHS if n not in ("mute", ERROR_GRAPH))


# --- the original key follows the first channel --------------------------------------------


def test_the_original_key_is_always_the_first_channels_after_a_reorder(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    with_stats(fake3.channels[0], 2)
    one_pass(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis, ITAM_Events")
    own = rdb.get(OWN_KEY)
    assert own is not None and rdb.get(ADMIN_STATS_KEY) == own
    clock.advance(900)  # another channel first, with no statistics: the key is not its
    one_pass(fake3, redis_url, TG_CHANNEL_USERNAME="ITAM_Events, itatmisis")
    assert rdb.exists(ADMIN_STATS_KEY) == 0
    assert rdb.get(OWN_KEY) == own
    clock.advance(900)  # back first, not due: its stored statistics again
    one_pass(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis, ITAM_Events")
    assert GET not in fake3.api_calls
    assert rdb.get(ADMIN_STATS_KEY) == own


@pytest.mark.parametrize("kind", ["hash", "list"])
def test_a_foreign_original_key_is_replaced_the_pass_unharmed(
    redis_url: str, rdb: redis.Redis, clock: Clock, kind: str
) -> None:
    fake = FakeTelegram()
    with_stats(fake.add_channel(rich_channel()), 2)
    if kind == "hash":
        rdb.hset(ADMIN_STATS_KEY, "a", "b")
    else:
        rdb.rpush(ADMIN_STATS_KEY, "a")
    one_pass(fake, redis_url)
    assert rdb.get(ADMIN_STATS_KEY) == rdb.get(OWN_KEY) is not None
    rdb.delete(OWN_KEY)
    rdb.hset(OWN_KEY, "a", "b")  # its own key foreign too: the original is not a copy of it
    clock.advance(900)
    one_pass(fake, redis_url)
    assert rdb.exists(ADMIN_STATS_KEY) == 0
