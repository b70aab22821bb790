"""A channel that keeps failing on its own costs nothing: backoff per channel, `--retry-now`,
`show` saying when it is asked again; a bug in one channel's answer fails it alone."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app
from itam_tgstats.errors import ChannelError, ChannelsFailed, ChannelSkipped
from itam_tgstats.models import iso_utc
from itam_tgstats.store.keys import STATUS_KEY, channel_keys
from itam_tgstats.store.status import parse_time
from itam_tgstats.telegram import client as telegram
from tests.channels import small_channel
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass

T = 1_900_000_000.0
TWO = "itatmisis, typo_channel"


class Clock:
    """The pass's clock, moved by hand: passes hours apart without waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = T
        monkeypatch.setattr(collect_module, "clock", lambda: self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def channel_entry(rdb: redis.Redis, name: str) -> dict[str, Any]:
    value = rdb.get(STATUS_KEY)
    assert value is not None
    return dict(json.loads(value)["channels"][name])


def failing_pass(settings: Any, fake: FakeTelegram, **options: Any) -> ChannelsFailed:
    with pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake, **options)
    return caught.value


def test_a_missing_channel_is_asked_about_once_an_hour_then_less_often(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME=TWO)
    error = failing_pass(settings, fake_tg)
    assert error.exit_code == 4 and error.partial
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 2  # both, the first time
    entry = channel_entry(rdb, "typo_channel")
    assert entry["retry_after"] == iso_utc(T + 3600)
    assert entry["consecutive_failures"] == 1
    reason = "channel @typo_channel does not exist (USERNAME_NOT_OCCUPIED)"
    assert entry["last_error"] == reason

    # Every pass of the next hour: the good channel is read, the typo costs no call.
    for minutes in (15, 30, 45, 59):
        clock.now = T + minutes * 60
        fake_tg.calls.clear()
        error = failing_pass(settings, fake_tg)
        assert "contacts.ResolveUsername" not in fake_tg.api_calls
        assert fake_tg.api_calls.count("messages.GetHistory") == 1  # the good channel only
        [skipped] = error.failures
        assert isinstance(skipped, ChannelSkipped) and error.exit_code == 4
        assert skipped.message == (
            f"@typo_channel not asked before {iso_utc(T + 3600)}, after failing on its own "
            f"(last error: {reason}); `tgstats collect --retry-now` asks at once"
        )
        later = channel_entry(rdb, "typo_channel")
        assert later == {**entry, "ok": False}  # the backoff and its reason stay as they were
    assert json.loads(rdb.get(channel_keys("itatmisis").stats) or "{}")["subscribers_count"]

    # Then asked again: one more failure doubles the wait, up to a day.
    waits = []
    for _ in range(6):
        retry_at = parse_time(channel_entry(rdb, "typo_channel")["retry_after"])
        assert retry_at is not None
        clock.now = retry_at  # exactly due
        fake_tg.calls.clear()
        failing_pass(settings, fake_tg)
        assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
        new = channel_entry(rdb, "typo_channel")
        waits.append((parse_time(new["retry_after"]) or 0) - clock.now)
    assert waits == [7200, 14400, 28800, 57600, 86400, 86400]
    assert channel_entry(rdb, "typo_channel")["consecutive_failures"] == 7


def test_retry_now_asks_at_once_and_a_success_resets_the_backoff(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME=TWO)
    failing_pass(settings, fake_tg)
    clock.now += 60
    fake_tg.calls.clear()
    failing_pass(settings, fake_tg, retry_now=True)
    # The first channel's peer is cached: the one resolve is the typo's.
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    assert channel_entry(rdb, "typo_channel")["retry_after"] == iso_utc(clock.now + 7200)
    # The channel appears (the typo was a channel made later): asked again, read, reset.
    fake_tg.add_channel(small_channel(7, "typo_channel"))
    clock.now += 60
    assert run_pass(settings, fake_tg, retry_now=True) is True
    entry = channel_entry(rdb, "typo_channel")
    assert (entry["ok"], entry["retry_after"], entry["consecutive_failures"]) == (True, None, 0)
    assert entry["last_success_at"] == iso_utc(clock.now)


def test_every_channel_backing_off_means_no_telegram_connection_at_all(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    fake_tg.channels[0].private = True
    settings = make_settings(fake_tg, redis_url)
    with pytest.raises(ChannelError):
        run_pass(settings, fake_tg)
    clock.now += 900
    fake_tg.calls.clear()
    with pytest.raises(ChannelSkipped) as caught:
        run_pass(settings, fake_tg)
    assert fake_tg.calls == []  # not even a connection
    assert caught.value.exit_code == 4
    st = json.loads(rdb.get(STATUS_KEY) or "{}")
    assert (st["ok"], st["exit_code"], st["consecutive_failures"]) == (False, 4, 2)
    assert st["last_error"] == caught.value.message


def test_failures_of_the_whole_pass_do_not_back_off(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    settings = make_settings(fake_tg, redis_url)
    fake_tg.fail("contacts.ResolveUsername", "FLOOD_WAIT_3600")
    with pytest.raises(telegram.TelegramError):
        run_pass(settings, fake_tg)
    assert channel_entry(rdb, "itatmisis")["retry_after"] is None
    rdb.delete(STATUS_KEY)  # forget the account-wide wait: only the channel's matters here
    fake_tg.calls.clear()
    run_pass(settings, fake_tg)
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1


def test_cli_retry_now_and_show_says_when_the_channel_is_asked_again(
    env: dict[str, str],
    fake_tg: FakeTelegram,
    rdb: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.helpers import source_factory

    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    monkeypatch.setenv("TG_CHANNEL_USERNAME", TWO)
    runner = CliRunner()
    assert runner.invoke(app, ["collect"]).exit_code == 4
    fake_tg.calls.clear()
    skipped = runner.invoke(app, ["collect"])
    assert skipped.exit_code == 4 and "not asked before" in skipped.stderr
    assert "contacts.ResolveUsername" not in fake_tg.api_calls
    forced = runner.invoke(app, ["collect", "--retry-now"])
    assert forced.exit_code == 4 and "does not exist" in forced.stderr.splitlines()[-1]
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "250")
    shown = runner.invoke(app, ["show"])
    retry_after = channel_entry(rdb, "typo_channel")["retry_after"]
    assert f"next try {retry_after}, in 1 h 59 min" in shown.stdout or (
        f"next try {retry_after}, in 2 h" in shown.stdout
    )
    detail = runner.invoke(app, ["show", "--channel", "typo_channel"])
    assert f"next try {retry_after}" in detail.stdout


def test_a_bug_in_one_channels_answer_fails_that_channel_only(
    fake_tg: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_tg.add_channel(small_channel(1, "itam_events"))
    settings = make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME="itatmisis, itam_events")
    real = telegram.build_posts

    def broken_for_events(messages: Any, wanted: int, username: str | None, *a: Any, **k: Any):
        if username == "itam_events":
            raise KeyError("boom")
        return real(messages, wanted, username, *a, **k)

    monkeypatch.setattr(telegram, "build_posts", broken_for_events)
    with caplog.at_level(logging.ERROR), pytest.raises(ChannelsFailed) as caught:
        run_pass(settings, fake_tg)
    assert caught.value.exit_code == 1 and caught.value.partial
    assert "unexpected error while reading @itam_events: KeyError: 'boom'" in caught.value.message
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is KeyError  # its traceback
    assert rdb.exists(channel_keys("itatmisis").stats) == 1  # the other channel is written
    assert rdb.exists(channel_keys("itam_events").stats) == 0
    st = json.loads(rdb.get(STATUS_KEY) or "{}")
    assert st["exit_code"] == 1
    assert st["channels"]["itam_events"]["retry_after"] is None  # our bug: asked again next pass


@pytest.mark.foreign_values(STATUS_KEY)
@pytest.mark.parametrize(
    "retry_after",
    [
        "9999-12-31T23:59:59-12:00",  # parses, but is year 10000 in UTC
        "2999-01-01T00:00:00+00:00",  # far beyond the longest backoff: a clock that went back
        "soon",
    ],
)
def test_one_channels_unreadable_retry_after_neither_sinks_the_pass_nor_stays(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock, retry_after: str
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_CHANNEL_USERNAME=TWO)
    failing_pass(settings, fake_tg)
    status = json.loads(rdb.get(STATUS_KEY) or "{}")
    status["channels"]["typo_channel"]["retry_after"] = retry_after
    rdb.set(STATUS_KEY, json.dumps(status))
    clock.now += 60
    fake_tg.calls.clear()
    error = failing_pass(settings, fake_tg)  # asked again: the value cannot be a backoff of ours
    assert fake_tg.api_calls.count("contacts.ResolveUsername") == 1
    assert error.exit_code == 4 and not isinstance(error.failures[0], ChannelSkipped)
    assert channel_entry(rdb, "typo_channel")["retry_after"] == iso_utc(clock.now + 7200)
    assert channel_entry(rdb, "itatmisis")["last_success_at"] == iso_utc(clock.now)


# -- the account-wide wait (tg:status.retry_after) ---------------------------------------------


def planted_wait(rdb: redis.Redis, until: str) -> None:
    """A `tg:status` whose account-wide `retry_after` is `until`."""
    rdb.set(STATUS_KEY, json.dumps({
        "ok": False, "last_success_at": None, "last_failure_at": iso_utc(T - 60),
        "last_error": "Telegram asked to wait", "exit_code": 4, "consecutive_failures": 1,
        "retry_after": until,
    }))  # fmt: skip


@pytest.mark.parametrize(
    "until",
    [iso_utc(T + 86_400 + 1), "2099-01-01T00:00:00+00:00", "9999-12-30T00:00:00+00:00"],
)
def test_a_wait_more_than_a_day_ahead_is_not_honoured_and_goes(
    fake_tg: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    clock: Clock,
    until: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No FloodWait is longer than a day: a later time is a clock that was ahead, or a
    planted value; honoured, it would stop every pass for good."""
    planted_wait(rdb, until)
    with caplog.at_level(logging.WARNING):
        assert run_pass(make_settings(fake_tg, redis_url), fake_tg) is True
    assert json.loads(rdb.get(STATUS_KEY) or "{}")["retry_after"] is None
    assert [r.getMessage() for r in caplog.records if "retry_after" in r.getMessage()] == [
        f"tg:status.retry_after {until} is more than a day ahead: no FloodWait is that "
        "long; ignored"
    ]


def test_a_wait_up_to_a_day_ahead_is_honoured(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    planted_wait(rdb, iso_utc(T + 86_400))
    with pytest.raises(telegram.TelegramError) as caught:
        run_pass(make_settings(fake_tg, redis_url), fake_tg)
    assert fake_tg.calls == []
    assert str(caught.value) == (
        f"Telegram asked to wait until {iso_utc(T + 86_400)} (FloodWait); this pass did not "
        "contact it (`tgstats collect --retry-now` asks at once)"
    )


def test_retry_now_asks_during_the_wait_too(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, clock: Clock
) -> None:
    planted_wait(rdb, iso_utc(T + 3 * 3600))
    assert run_pass(make_settings(fake_tg, redis_url), fake_tg, retry_now=True) is True
    assert "messages.GetHistory" in fake_tg.api_calls
    assert json.loads(rdb.get(STATUS_KEY) or "{}")["retry_after"] is None


def test_a_flood_wait_longer_than_a_day_is_recorded_as_a_day(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.clock import Clock as SetClock
    from tests.clock import install

    install(monkeypatch, SetClock(T))
    fake_tg.fail("contacts.ResolveUsername", "FLOOD_WAIT_2000000000")
    with pytest.raises(telegram.TelegramError):
        run_pass(make_settings(fake_tg, redis_url), fake_tg)
    assert json.loads(rdb.get(STATUS_KEY) or "{}")["retry_after"] == iso_utc(T + 86_400)
