"""Values planted in Redis stop nothing for good: unreadable data (nested too deep, of the
wrong type) reads as missing with one line naming the key, in every reader (`collect`,
`show`, `show --json`, `show --check`, the container's init), and the pass overwrites it."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app
from itam_tgstats.commands import container
from itam_tgstats.config import Settings
from itam_tgstats.store import peer_key, write
from itam_tgstats.store.keys import (
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    LOCK_KEY,
    POST_HISTORY_KEY,
    POSTS_KEY,
    STATS_KEY,
    STATUS_KEY,
    channel_keys,
    last_points_key,
)
from tests.channels import T0
from tests.clock import Clock, install
from tests.faketg import FakeTelegram
from tests.helpers import source_factory, status

runner = CliRunner()
# 1,000 nested brackets: 2 KB that json.loads cannot parse without a RecursionError.
DEEP = "[" * 1000 + "]" * 1000
OWN = channel_keys("itatmisis")
# The newest post of the stand-in channel (tests/channels.py): passes an hour after it, so
# that it gains a point in its series each pass.
POST_ID = "1014"
YOUNG = T0 + 1014 * 60 + 3600


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The passes' clock, an hour after the newest post."""
    return install(monkeypatch, Clock(YOUNG))


@pytest.fixture
def cli_env(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> dict[str, str]:
    """A valid configuration, with `collect` talking to the stand-in Telegram."""
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    return env


def the_peer_key(env: dict[str, str]) -> str:
    settings = Settings.from_env(env, Path("/dev/null"))
    assert settings.session is not None
    return peer_key(settings.session.account_key, "itatmisis")


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


# Where a deeply nested value can be planted, and how.
def plant(key: str, how: Callable[[str], Any]) -> str:
    how(key)
    return key


# Where a deeply nested value can be planted, and how; each gives the key it planted in.
DEEP_PLANTS: dict[str, Callable[[redis.Redis, dict[str, str]], str]] = {
    "tg:status": lambda r, e: plant(STATUS_KEY, lambda k: r.set(k, DEEP)),
    "tg:channel:posts": lambda r, e: plant(POSTS_KEY, lambda k: r.set(k, DEEP)),
    "tg:channel:stats": lambda r, e: plant(STATS_KEY, lambda k: r.set(k, DEEP)),
    "a channel's posts": lambda r, e: plant(OWN.posts, lambda k: r.set(k, DEEP)),
    "a channel's stats": lambda r, e: plant(OWN.stats, lambda k: r.set(k, DEEP)),
    "tg:peer:*": lambda r, e: plant(the_peer_key(e), lambda k: r.set(k, DEEP)),
    "post_history_last": lambda r, e: plant(
        last_points_key("itatmisis"), lambda k: r.hset(k, POST_ID, DEEP)
    ),
    "a history member": lambda r, e: plant(OWN.history, lambda k: r.zadd(k, {DEEP: 1})),
    "the original history": lambda r, e: plant(HISTORY_KEY, lambda k: r.zadd(k, {DEEP: 1})),
    "a series": lambda r, e: plant(OWN.post_history, lambda k: r.hset(k, POST_ID, DEEP)),
    "the original series": lambda r, e: plant(POST_HISTORY_KEY, lambda k: r.hset(k, POST_ID, DEEP)),
}


def collected(clock: Clock) -> None:
    """A first pass, so that every reader has data around what is planted; the next pass
    runs 15 minutes later."""
    assert invoke("collect").exit_code == 0
    clock.advance(900)


@pytest.mark.foreign_values
@pytest.mark.parametrize("where", DEEP_PLANTS)
@pytest.mark.parametrize(
    "command", [["show"], ["show", "--json"], ["show", "--check"]], ids=" ".join
)
def test_a_deeply_nested_value_reads_as_missing_in_show(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, where: str, command: list[str]
) -> None:
    collected(clock)
    key = DEEP_PLANTS[where](rdb, cli_env)
    result = invoke(*command)
    assert result.exception is None or isinstance(result.exception, SystemExit), where
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    # Named in one line when it was read (--check reads only what freshness needs).
    assert result.stderr.count(key) <= 1
    if command == ["show", "--json"] and where not in ("tg:peer:*", "post_history_last"):
        assert result.stderr.count(key) == 1, result.stderr


@pytest.mark.foreign_values("tg:channel:history", "tg:channel:itatmisis:history")
@pytest.mark.parametrize("where", DEEP_PLANTS)
def test_a_deeply_nested_value_costs_no_pass_and_the_pass_overwrites_it(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, where: str
) -> None:
    collected(clock)
    key = DEEP_PLANTS[where](rdb, cli_env)
    result = invoke("collect")
    assert result.exit_code == 0, result.stderr
    assert "RecursionError" not in result.stderr
    assert status(rdb)["ok"] is True
    values: list[Any] = []
    kind = rdb.type(key)
    if kind == "string":
        values = [rdb.get(key)]
    elif kind == "hash":
        values = list(rdb.hgetall(key).values())
    if where not in ("a history member", "the original history"):  # trimmed by age only
        assert DEEP not in values, where
    if where in ("a series", "the original series"):  # started afresh with this pass's point
        assert [p["t"] for p in json.loads(rdb.hget(key, POST_ID) or "")] == [YOUNG + 900]
    if where in ("tg:status", "tg:channel:posts", "a channel's stats", "tg:peer:*"):
        assert result.stderr.count(key) == 1, result.stderr  # read by the pass, and named


@pytest.mark.foreign_values
def test_the_container_init_reads_a_deeply_nested_status_as_no_success(
    redis_url: str, rdb: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({"REDIS_URL": redis_url}, Path("/dev/null"), need_telegram=False)
    rdb.set(STATUS_KEY, DEEP)
    with caplog.at_level(logging.WARNING):
        assert container.pass_needed(settings, time.time()) is True
    assert [r.getMessage().count(STATUS_KEY) for r in caplog.records] == [1]


# --- a key of the wrong type ----------------------------------------------------------------

# (key, how to plant it) for each key of the wrong type.
WRONG_TYPES: dict[str, tuple[str, Callable[[redis.Redis, str], Any]]] = {
    "tg:channel:stats as a list": (STATS_KEY, lambda r, k: r.rpush(k, "x")),
    "tg:channel:posts as a hash": (POSTS_KEY, lambda r, k: r.hset(k, "a", "x")),
    "tg:last_update as a set": (LAST_UPDATE_KEY, lambda r, k: r.sadd(k, "x")),
    "tg:status as a list": (STATUS_KEY, lambda r, k: r.rpush(k, "x")),
    "a channel's stats as a list": (OWN.stats, lambda r, k: r.rpush(k, "x")),
    "a channel's posts as a set": (OWN.posts, lambda r, k: r.sadd(k, "x")),
    "a history as a string": (OWN.history, lambda r, k: r.set(k, "x")),
    "the original history as a string": (HISTORY_KEY, lambda r, k: r.set(k, "x")),
    "a series as a string": (OWN.post_history, lambda r, k: r.set(k, "x")),
    "the original series as a list": (POST_HISTORY_KEY, lambda r, k: r.rpush(k, "x")),
}


def plant_wrong_type(rdb: redis.Redis, where: str) -> str:
    key, plant = WRONG_TYPES[where]
    rdb.delete(key)
    plant(rdb, key)
    return key


@pytest.mark.foreign_values
@pytest.mark.parametrize("where", WRONG_TYPES)
@pytest.mark.parametrize(
    "command", [["show"], ["show", "--json"], ["show", "--check"]], ids=" ".join
)
def test_a_key_of_the_wrong_type_reads_as_missing_not_as_redis_down(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, where: str, command: list[str]
) -> None:
    collected(clock)
    key = plant_wrong_type(rdb, where)
    result = invoke(*command)
    assert result.exit_code in (0, 1), result.stderr
    assert "check REDIS_URL" not in result.stderr
    assert result.stderr.count(key) <= 1
    if command == ["show", "--json"]:
        assert result.stderr.count(key) == 1, result.stderr
        json.loads(result.stdout)


@pytest.mark.foreign_values(HISTORY_KEY, POST_HISTORY_KEY, OWN.history, OWN.post_history)
@pytest.mark.parametrize("where", WRONG_TYPES)
def test_a_key_of_the_wrong_type_costs_no_pass(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, where: str
) -> None:
    collected(clock)
    key = plant_wrong_type(rdb, where)
    result = invoke("collect")
    assert result.exit_code == 0, result.stderr
    assert status(rdb)["ok"] is True and status(rdb)["exit_code"] == 0
    assert rdb.get(LOCK_KEY) is None
    if key in (STATS_KEY, POSTS_KEY, OWN.stats, OWN.posts, LAST_UPDATE_KEY, STATUS_KEY):
        assert rdb.type(key) == "string"  # overwritten


@pytest.mark.foreign_values
def test_a_status_never_says_ok_for_a_pass_that_exits_nonzero(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever makes EXEC refuse one of the pass's commands, the rest is applied: the
    status it wrote is then corrected, as a failure."""
    collected(clock)
    before = status(rdb)
    monkeypatch.setattr(write, "ADOPT_HISTORY_SCRIPT", "return redis.error_reply('refused')")
    result = invoke("collect")
    assert result.exit_code == 5
    assert "refused part of the pass's transaction" in result.stderr
    after = status(rdb)
    assert after["ok"] is False and after["exit_code"] == 5
    assert "refused" in after["last_error"]
    assert after["last_success_at"] == before["last_success_at"]
    assert after["consecutive_failures"] == 1
    assert rdb.get(LOCK_KEY) is None


# --- times ahead of the clock ---------------------------------------------------------------


@pytest.mark.parametrize("ahead", [301, 86_400, 4_102_444_800 - YOUNG])
def test_a_series_point_ahead_of_the_clock_does_not_freeze_the_series(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, ahead: int
) -> None:
    collected(clock)
    future = {"t": int(clock.now) + ahead, "views": 1, "reactions": 0, "forwards": 0,
              "comments": 0}  # fmt: skip
    text = json.dumps(future, separators=(",", ":"))
    rdb.hset(OWN.post_history, POST_ID, f"[{text}]")
    rdb.hset(last_points_key("itatmisis"), POST_ID, text)
    result = invoke("collect")
    assert result.exit_code == 0, result.stderr
    times = [p["t"] for p in json.loads(rdb.hget(OWN.post_history, POST_ID) or "")]
    assert times == [int(clock.now)]  # the point ahead dropped, this pass's point added
    assert json.loads(rdb.hget(last_points_key("itatmisis"), POST_ID) or "")["t"] == clock.now


@pytest.mark.foreign_values(OWN.history, HISTORY_KEY)
def test_a_history_point_ahead_of_the_clock_leaves_with_the_next_pass(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock
) -> None:
    collected(clock)
    ahead = json.dumps({"t": 4_102_444_800, "subscribers": 1, "posts": 1}, separators=(",", ":"))
    for key in (OWN.history, HISTORY_KEY):
        rdb.zadd(key, {ahead: 4_102_444_800})
    assert invoke("collect").exit_code == 0
    for key in (OWN.history, HISTORY_KEY):
        assert rdb.zcard(key) == 2 and rdb.zscore(key, ahead) is None
        assert max(s for _, s in rdb.zrange(key, 0, -1, withscores=True)) == clock.now


@pytest.mark.foreign_values
@pytest.mark.parametrize("key", [STATUS_KEY, OWN.stats, POSTS_KEY, LAST_UPDATE_KEY])
def test_bytes_that_are_not_utf8_read_as_unreadable_text(
    cli_env: dict[str, str], rdb: redis.Redis, clock: Clock, redis_url: str, key: str
) -> None:
    collected(clock)
    raw_client = redis.Redis.from_url(redis_url)
    raw_client.set(key, b'\xff\xfe{"ok": true}')
    raw_client.close()
    for command in (["show"], ["show", "--json"], ["show", "--check"]):
        result = invoke(*command)
        assert result.exception is None or isinstance(result.exception, SystemExit), command
        assert result.exit_code in (0, 1), result.stderr
    result = invoke("collect")
    assert result.exit_code == 0, result.stderr
    assert status(rdb)["ok"] is True
