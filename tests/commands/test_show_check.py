"""`tgstats show --check`, the container's health check: one line naming why the data is not
fresh, no trust in times ahead of the clock, and only what freshness needs read; `show`
bounds what it loads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.commands import show
from itam_tgstats.store import read
from itam_tgstats.store.keys import (
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    POSTS_KEY,
    STATS_KEY,
    STATUS_KEY,
    channel_keys,
)
from tests.commands.test_show_channels import CONFIGURED, seed

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
runner = CliRunner()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def failed(at: float, code: int, error: str, **more: Any) -> dict[str, Any]:
    return {"ok": False, "last_success_at": None, "last_failure_at": iso(at),
            "last_error": error, "exit_code": code, "consecutive_failures": 3,
            "retry_after": None, **more}  # fmt: skip


def check(view: dict[str, Any], now: float = NOW) -> tuple[bool, str]:
    return show.check_freshness(view, 900, now)


# --- the reason -------------------------------------------------------------------------------


def test_no_pass_has_run_yet() -> None:
    assert check({"last_update": None, "status": None}) == (
        False,
        "stale: no successful update recorded (tg:last_update is missing); no pass has run yet",
    )


def test_a_failing_pass_at_start_is_named_with_its_time_exit_code_and_error() -> None:
    status = failed(NOW - 20, 4, "cannot reach Telegram: the connection could not be set up")
    assert check({"last_update": None, "status": status}) == (
        False,
        "stale: no successful update recorded (tg:last_update is missing); "
        "last pass failed at 2025-12-31T23:59:40+00:00 (20 s ago), exit 4: "
        "cannot reach Telegram: the connection could not be set up",
    )


def test_stale_data_names_the_newest_failure() -> None:
    status = failed(NOW - 300, 3, "the Telegram session is not authorized any more (X)")
    status["last_success_at"] = iso(NOW - 2 * 86_400)
    fresh, line = check({"last_update": iso(NOW - 2 * 86_400), "status": status})
    assert not fresh
    assert line == (
        "stale: last update 2 d ago (limit 30 min); last pass failed at "
        "2025-12-31T23:55:00+00:00 (5 min ago), exit 3: the Telegram session is not "
        "authorized any more (X)"
    )


def test_stale_after_a_success_says_no_pass_ran_since() -> None:
    status = {**failed(NOW - 9 * 3600, 4, "old"), "ok": True, "exit_code": 0,
              "last_success_at": iso(NOW - 3 * 3600)}  # fmt: skip
    fresh, line = check({"last_update": iso(NOW - 3 * 3600), "status": status})
    assert not fresh
    assert line == (
        "stale: last update 3 h ago (limit 30 min); no pass has run since the last success "
        "at 2025-12-31T21:00:00+00:00"
    )


def test_data_without_a_status_says_so() -> None:
    fresh, line = check({"last_update": iso(NOW - 3 * 3600), "status": "not JSON"})
    assert (fresh, line) == (
        False,
        "stale: last update 3 h ago (limit 30 min); no pass has recorded its outcome "
        "(tg:status is missing)",
    )


def test_fresh_data_names_no_failure() -> None:
    status = failed(NOW - 60, 4, "one channel failed")
    assert check({"last_update": iso(NOW - 60), "status": status}) == (
        True,
        "ok: last update 1 min ago",
    )


def test_the_reason_is_one_line_and_prints_no_control_character() -> None:
    status = failed(NOW - 60, 1, "unexpected error:\n\x1b[2J ValueError \u202e\u200b")
    fresh, line = check({"last_update": None, "status": status})
    assert not fresh and "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert line.endswith("exit 1: unexpected error: \\u001b[2J ValueError \\u202e\\u200b")


def test_several_channels_name_the_reason_too() -> None:
    view = {
        "status": failed(NOW - 60, 4, "1 of 2 channels failed: channel @b is private"),
        "channels": {
            "a": {"stats": {"collected_at": iso(NOW - 60)}},
            "b": {"stats": {"collected_at": iso(NOW - 3 * 3600)}},
        },
    }
    assert check(view) == (
        False,
        "stale: @b last updated 3 h ago (limit 30 min); last pass failed at "
        "2025-12-31T23:59:00+00:00 (1 min ago), exit 4: 1 of 2 channels failed: channel @b "
        "is private",
    )


def test_the_health_check_prints_the_reason(env: dict[str, str], rdb: redis.Redis) -> None:
    now = time.time()
    rdb.set(STATUS_KEY, json.dumps(failed(now - 5, 4, "cannot reach Telegram")))
    result = runner.invoke(app, ["show", "--check"])
    assert result.exit_code == 1
    assert result.stdout.startswith("stale: no successful update recorded")
    assert result.stdout.endswith(", exit 4: cannot reach Telegram\n")
    assert result.stdout.count("\n") == 1


# --- times ahead of the clock -----------------------------------------------------------------


@pytest.mark.parametrize("ahead", [301, 10 * 86_400, 2_000_000_000])
def test_a_last_update_ahead_of_the_clock_is_not_fresh(ahead: int) -> None:
    fresh, line = check({"last_update": iso(NOW + ahead), "status": None})
    assert not fresh
    assert line.startswith(f"stale: last update {iso(NOW + ahead)} is ahead of this clock")


@pytest.mark.parametrize("ahead", [0, 60, 300])
def test_a_clock_a_few_minutes_behind_still_reads_fresh(ahead: int) -> None:
    assert check({"last_update": iso(NOW + ahead), "status": None}) == (
        True,
        "ok: last update 0 s ago",
    )


@pytest.mark.parametrize("ahead", [301, 3600, None])
def test_a_channel_collected_in_the_future_is_not_fresh(ahead: int | None) -> None:
    when = "2099-01-01T00:00:00+00:00" if ahead is None else iso(NOW + ahead)
    view = {"channels": {
        "a": {"stats": {"collected_at": iso(NOW - 60)}},
        "b": {"stats": {"collected_at": when}},
    }}  # fmt: skip
    fresh, line = check(view)
    assert not fresh
    assert line.startswith(f"stale: @b last updated {when}, ahead of this clock (limit 30 min)")


@pytest.mark.parametrize("ahead", [0, 300])
def test_a_channel_collected_a_few_minutes_ahead_is_fresh(ahead: int) -> None:
    view = {"channels": {
        "a": {"stats": {"collected_at": iso(NOW - 60)}},
        "b": {"stats": {"collected_at": iso(NOW + ahead)}},
    }}  # fmt: skip
    assert check(view)[0] is True


def test_the_health_check_of_a_planted_future_update_exits_1(
    env: dict[str, str], rdb: redis.Redis
) -> None:
    rdb.set(LAST_UPDATE_KEY, "2099-01-01T00:00:00+00:00")
    result = runner.invoke(app, ["show", "--check"])
    assert result.exit_code == 1
    assert result.stdout.startswith("stale: last update 2099-01-01T00:00:00+00:00 is ahead")


def test_a_history_point_in_the_future_makes_no_change_in_24_h(
    env: dict[str, str], rdb: redis.Redis
) -> None:
    now = int(time.time())
    stats = {"channel_id": -1001, "username": "itatmisis", "title": "IT", "posts_count": 3,
             "subscribers_count": 5500, "last_post_date": None,
             "collected_at": iso(now - 60)}  # fmt: skip
    rdb.set(STATS_KEY, json.dumps(stats))
    rdb.set(LAST_UPDATE_KEY, iso(now - 60))
    for t, subscribers in ((now - 2 * 86_400, 5490), (now - 60, 5500), (4_102_444_800, 1)):
        point = {"t": t, "subscribers": subscribers, "posts": 3}
        rdb.zadd(HISTORY_KEY, {json.dumps(point, separators=(",", ":")): t})
    result = runner.invoke(app, ["show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "-5499" not in result.stdout
    assert "+10" in result.stdout  # 5490 two days ago, 5500 now


# --- what the health check reads --------------------------------------------------------------


# The commands that load a value (TYPE, STRLEN or EXISTS only ask about it).
READS = {"GET", "MGET", "GETRANGE", "ZRANGE", "ZRANGEBYSCORE", "HGETALL", "HGET", "HVALS",
         "HMGET", "DUMP"}  # fmt: skip


def commands_during(url: str, action: Callable[[], Any]) -> list[str]:
    """Every command Redis ran (those of Lua scripts included) while `action` ran."""
    watcher = redis.Redis.from_url(url, decode_responses=True)
    seen: list[str] = []
    with watcher.monitor() as monitor:
        ready = threading.Event()

        def listen() -> None:
            ready.set()
            for command in monitor.listen():
                text = command["command"]
                if text.startswith("ECHO end-of-test"):
                    return
                seen.append(text)

        listener = threading.Thread(target=listen)
        listener.start()
        ready.wait()
        time.sleep(0.2)
        action()
        redis.Redis.from_url(url).echo("end-of-test")
        listener.join(10)
    watcher.close()
    return seen


def test_the_health_check_reads_no_posts_history_nor_series(
    env: dict[str, str], rdb: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_CHANNEL_USERNAME", CONFIGURED)
    seed(rdb, int(time.time()))
    result: list[Any] = []
    seen = commands_during(
        redis_url, lambda: result.append(runner.invoke(app, ["show", "--check"]))
    )
    assert result[0].exit_code == 1 and result[0].stdout.startswith("stale: @itam_jobs")
    reads = [c.split() for c in seen if c.split()[0].upper() in READS]
    read_keys = {key for command in reads for key in command[1:]}
    assert channel_keys("itam_jobs").stats in read_keys
    assert [k for k in read_keys if k.endswith((":posts", ":history", "post_history"))] == []


# --- show bounds what it loads ----------------------------------------------------------------


@pytest.mark.foreign_values
@pytest.mark.parametrize("command", [["show"], ["show", "--json"]], ids=" ".join)
def test_a_value_over_the_cap_is_skipped_with_one_line(
    env: dict[str, str], rdb: redis.Redis, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setattr(read, "MAX_VALUE_BYTES", 10_000)
    posts = [{"id": 1, "text": "x" * 20_000, "date": iso(time.time()), "views": 1}]
    value = json.dumps(posts)
    rdb.set(POSTS_KEY, value)
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if POSTS_KEY + " " in line]
    assert len(lines) == 1, result.stderr
    assert f"{len(value)} bytes" in lines[0] and "skipped" in lines[0]
    assert "x" * 100 not in result.stdout
    if command == ["show", "--json"]:
        assert json.loads(result.stdout)["posts"] is None
