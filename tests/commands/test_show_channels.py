"""`tgstats show` with several channels: the list, --channel, --json's channels, --check."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.commands import dashboard, show
from itam_tgstats.config import Settings
from itam_tgstats.store.keys import (
    CHANNELS_KEY,
    LAST_UPDATE_KEY,
    STATUS_KEY,
    V1_KEYS,
    ChannelKeys,
    channel_keys,
)

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
CONFIGURED = "itatmisis, @ITAM_Events, https://t.me/itam_jobs"
NAMES = ("itatmisis", "itam_events", "itam_jobs")
PRIVATE = "channel @itam_jobs is private or not readable by this account (CHANNEL_PRIVATE)"
runner = CliRunner()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def point(t: int, subscribers: int) -> dict[str, int]:
    return {"t": t, "subscribers": subscribers, "posts": 10}


def channel_data(now: int) -> dict[str, dict[str, Any]]:
    """Three channels: two read 5 min ago, the third failing for 3 h."""

    def stats(username: str, title: str, subscribers: int, last_post: float | None,
              collected: float) -> dict[str, Any]:  # fmt: skip
        return {"channel_id": -1000 - subscribers, "username": username, "title": title,
                "subscribers_count": subscribers, "posts_count": 10,
                "last_post_date": iso(last_post) if last_post is not None else None,
                "collected_at": iso(collected)}  # fmt: skip

    def post(post_id: int, text: str, t: float) -> dict[str, Any]:
        counts = {"views": 100, "reactions_total": 5, "comments_count": 0, "forwards": 1}
        return {"id": post_id, "text": text, "date": iso(t), **counts, "media_type": None}

    return {
        "itatmisis": {
            "stats": stats("itatmisis", "IT at MISIS", 5500, now - 3600, now - 300),
            "posts": [post(1014, "Хакатон", now - 3600)],
            "history": [point(now - DAY - 600, 5480), point(now - 300, 5500)],
        },
        "itam_events": {
            "stats": stats("ITAM_Events", "ITAM Events", 340, now - 2 * DAY, now - 300),
            "posts": [post(77, "Meetup on Friday", now - 2 * DAY)],
            "history": [point(now - 5 * 3600, 337), point(now - 300, 340)],
        },
        "itam_jobs": {
            "stats": stats("itam_jobs", "ITAM Jobs", 120, None, now - 3 * 3600),
            "posts": [],
            "history": [point(now - 3 * 3600, 120)],
        },
    }


def status_of(now: int) -> dict[str, Any]:
    """A partial pass: the third channel failed."""
    return {
        "ok": False, "last_success_at": iso(now - 3 * 3600), "last_failure_at": iso(now - 300),
        "last_error": PRIVATE, "exit_code": 4, "consecutive_failures": 12, "retry_after": None,
        "channels": {
            "itatmisis": {"ok": True, "last_error": None, "last_success_at": iso(now - 300)},
            "itam_events": {"ok": True, "last_error": None, "last_success_at": iso(now - 300)},
            "itam_jobs": {"ok": False, "last_error": PRIVATE,
                          "last_success_at": iso(now - 3 * 3600)},
        },
    }  # fmt: skip


def write_channel(rdb: redis.Redis, keys: ChannelKeys, channel: dict[str, Any]) -> None:
    rdb.set(keys.stats, json.dumps(channel["stats"], ensure_ascii=False))
    rdb.set(keys.posts, json.dumps(channel["posts"], ensure_ascii=False))
    for p in channel["history"]:
        rdb.zadd(keys.history, {json.dumps(p, separators=(",", ":")): p["t"]})


def seed(rdb: redis.Redis, now: int, *, original_keys: bool = True) -> dict[str, Any]:
    """What a pass of this version leaves: every channel's keys, the first's also in the
    original keys, tg:channels and tg:status."""
    channels = channel_data(now)
    for name, channel in channels.items():
        write_channel(rdb, channel_keys(name), channel)
    if original_keys:
        write_channel(rdb, V1_KEYS, channels["itatmisis"])
        rdb.set(LAST_UPDATE_KEY, channels["itatmisis"]["stats"]["collected_at"])
    rdb.set(CHANNELS_KEY, json.dumps(list(NAMES)))
    rdb.set(STATUS_KEY, json.dumps(status_of(now)))
    return channels


def read(redis_url: str, channels: str = CONFIGURED) -> dict[str, Any]:
    settings = Settings.from_env(
        {"TG_CHANNEL_USERNAME": channels, "REDIS_URL": redis_url},
        Path(os.devnull),
        need_telegram=False,
    )
    return asyncio.run(show.read_view(settings))


def rendered(view: dict[str, Any], *, channel: str | None = None, color: bool = False) -> str:
    out = io.StringIO()
    console = Console(
        file=out, width=200, force_terminal=color, color_system="standard" if color else None
    )
    dashboard.render(view, console, 900, NOW, ascii_only=not color, channel=channel)
    return out.getvalue()


@pytest.fixture
def three(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("TG_CHANNEL_USERNAME", CONFIGURED)
    monkeypatch.setenv("COLUMNS", "200")  # no folded cells
    return env


# --- the list ----------------------------------------------------------------------------------


def test_list_of_three_channels_with_one_failing(redis_url: str, rdb: redis.Redis) -> None:
    seed(rdb, NOW)
    lines = rendered(read(redis_url)).splitlines()
    assert [line.rstrip() for line in lines[:5]] == [
        " channel       subscribers              24 h  last post  status",
        " @itatmisis           5500               +20    1 h ago  ok",
        " @itam_events          340  +3 in 4 h 55 min    2 d ago  ok",
        f" @itam_jobs            120                 -       none  error: {PRIVATE}",
        "",
    ]
    # then the first channel's detail, as with one channel
    assert lines[5] == "IT at MISIS  @itatmisis"
    assert "health: ok: last update 5 min ago" in lines
    assert "ITAM Events" not in "\n".join(lines)


def test_show_command_lists_every_channel_then_the_first(
    three: dict[str, str], rdb: redis.Redis
) -> None:
    seed(rdb, int(time.time()))
    result = runner.invoke(app, ["show"])
    assert (result.exit_code, result.stderr) == (0, "")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[0].split() == ["channel", "subscribers", "24", "h", "last", "post", "status"]
    assert lines[1].split()[:3] == ["@itatmisis", "5500", "+20"]
    assert lines[2].split()[:3] == ["@itam_events", "340", "+3"]
    assert lines[3] == f"@itam_jobs            120                 -       none  error: {PRIVATE}"
    assert "IT at MISIS  @itatmisis" in lines and "ITAM Events" not in result.stdout
    assert "\u2605" not in result.stdout  # not a terminal: the ASCII star


def test_channel_error_text_is_printed_literally(redis_url: str, rdb: redis.Redis) -> None:
    seed(rdb, NOW)
    status = status_of(NOW)
    hostile = "[bold red]ALARM[/] [link=https://evil.example]x[/link] \x1b[2J\u202eexe"
    status["channels"]["itam_jobs"]["last_error"] = hostile
    rdb.set(STATUS_KEY, json.dumps(status))
    for color in (False, True):
        text = rendered(read(redis_url), color=color)
        assert "[bold red]ALARM[/] [link=https://evil.example]x[/link] \ufffd[2J\ufffdexe" in text
        assert "\x1b]8;" not in text and "\x1b[2J" not in text and "\u202e" not in text


def test_one_channel_configured_lists_it_and_its_json_channels(
    env: dict[str, str], rdb: redis.Redis
) -> None:
    seed(rdb, int(time.time()))
    result = runner.invoke(app, ["show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["channel", "subscribers", "24", "h", "last", "post", "status"]
    assert lines[1].split()[0] == "@itatmisis" and lines[1].split()[-1] == "ok"
    assert len([line for line in lines if line.startswith(" @")]) == 1  # that channel only
    assert "IT at MISIS  @itatmisis" in lines
    data = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    assert list(data) == [
        "stats", "posts", "last_update", "status", "history", "post_history", "channels",
        "events",
    ]  # fmt: skip
    assert list(data["channels"]) == ["itatmisis"]
    assert data["channels"]["itatmisis"]["stats"] == data["stats"]


# --- --channel ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["itam_events", "@ITAM_EVENTS", "https://t.me/Itam_Events"])
def test_channel_option_selects_the_detail(
    three: dict[str, str], rdb: redis.Redis, spelling: str
) -> None:
    seed(rdb, int(time.time()))
    result = runner.invoke(app, ["show", "--channel", spelling])
    assert (result.exit_code, result.stderr) == (0, "")
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert lines[1].startswith("@itatmisis")  # the list still comes first
    assert "ITAM Events  @ITAM_Events" in lines
    assert "health: ok: last update 5 min ago" in lines
    assert "Meetup on Friday" in result.stdout
    assert "IT at MISIS" not in result.stdout and "Хакатон" not in result.stdout


def test_channel_option_details_a_failing_channel(redis_url: str, rdb: redis.Redis) -> None:
    seed(rdb, NOW)
    lines = [line.rstrip() for line in rendered(read(redis_url), channel="itam_jobs").splitlines()]
    assert lines[5:] == [
        "ITAM Jobs  @itam_jobs",
        "subscribers 120",
        "messages 10   last post -",
        "health: stale: last update 3 h ago (limit 30 min)",
        "status: last success 2025-12-31T21:00:00+00:00",
        f"        last error: {PRIVATE}",
        "no posts in the channel",
    ]


@pytest.mark.parametrize("wanted", ["@nope", "ITAM", "not a name!"])
def test_channel_option_refuses_a_channel_not_configured(
    three: dict[str, str], rdb: redis.Redis, wanted: str
) -> None:
    result = runner.invoke(app, ["show", "--channel", wanted])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: --channel {wanted!r} is not a configured channel "
        "(TG_CHANNEL_USERNAME names @itatmisis, @itam_events, @itam_jobs)\n"
    )
    assert rdb.dbsize() == 0


@pytest.mark.parametrize("other", ["--json", "--check"])
def test_channel_option_is_for_the_detail_view_only(three: dict[str, str], other: str) -> None:
    result = runner.invoke(app, ["show", "--channel", "itam_jobs", other])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --channel chooses the detail view: not with --json or --check\n"
    )


# --- --json ------------------------------------------------------------------------------------


def test_json_gains_every_channel(three: dict[str, str], rdb: redis.Redis) -> None:
    now = int(time.time())
    channels = seed(rdb, now)
    result = runner.invoke(app, ["show", "--json"])
    assert (result.exit_code, result.stderr) == (0, "")
    data = json.loads(result.stdout)
    assert data == {
        "stats": channels["itatmisis"]["stats"],
        "posts": channels["itatmisis"]["posts"],
        "last_update": channels["itatmisis"]["stats"]["collected_at"],
        "status": status_of(now),
        "history": channels["itatmisis"]["history"],
        "post_history": {},  # no series stored
        # in the configured order, history oldest first
        "channels": {
            name: {**c, "post_history": {}, "admin_stats": None} for name, c in channels.items()
        },
        "events": [],  # no pass wrote any
    }
    assert list(data["channels"]) == list(NAMES)


def test_json_gives_null_for_a_channel_never_read(three: dict[str, str]) -> None:
    data = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    assert data == {
        "stats": None, "posts": None, "last_update": None, "status": None, "history": [],
        "post_history": {},
        "channels": {
            name: {"stats": None, "posts": None, "history": [], "post_history": {},
                   "admin_stats": None}
            for name in NAMES
        },
        "events": [],
    }  # fmt: skip


# --- the original keys before this version's first pass ---------------------------------------


def test_first_channel_falls_back_to_the_original_keys(redis_url: str, rdb: redis.Redis) -> None:
    channels = channel_data(NOW)
    write_channel(rdb, V1_KEYS, channels["itatmisis"])  # all a version 1 deployment has
    rdb.set(LAST_UPDATE_KEY, channels["itatmisis"]["stats"]["collected_at"])
    view = read(redis_url, "ItatMisis, itam_events")
    assert view["channels"] == {
        "itatmisis": channels["itatmisis"],
        "itam_events": {"stats": None, "posts": None, "history": []},
    }
    lines = [line.rstrip() for line in rendered(view).splitlines()]
    assert lines[1:3] == [
        " @itatmisis           5500   +20    1 h ago  -",
        " @itam_events            -     -          -  -",
    ]
    assert "IT at MISIS  @itatmisis" in lines
    assert show.check_freshness(view, 900, NOW) == (
        False,
        "stale: @itam_events never (limit 30 min); no pass has recorded its outcome "
        "(tg:status is missing)",
    )


def test_the_first_channels_own_keys_win_over_the_original_ones(
    redis_url: str, rdb: redis.Redis
) -> None:
    channels = seed(rdb, NOW)
    rdb.set(V1_KEYS.stats, json.dumps({"title": "an older first channel"}))
    view = read(redis_url)
    assert view["channels"]["itatmisis"] == channels["itatmisis"]


def test_one_round_trip_for_every_channel(redis_url: str, rdb: redis.Redis) -> None:
    seed(rdb, NOW)
    rdb.config_resetstat()
    read(redis_url)
    calls = {
        name: stats["calls"]
        for name, stats in rdb.info("commandstats").items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))  # the test's own
    }
    # one script: the original keys (4 GET, 1 ZRANGE), then 2 GET + 1 ZRANGE per channel,
    # each after its TYPE and size (STRLEN, ZCARD)
    assert calls == {"cmdstat_eval": 1, "cmdstat_type": 5 + 3 * 3, "cmdstat_strlen": 4 + 2 * 3,
                     "cmdstat_get": 4 + 2 * 3, "cmdstat_zcard": 1 + 3,
                     "cmdstat_zrange": 1 + 3}  # fmt: skip


# --- --check -----------------------------------------------------------------------------------


def test_check_names_the_stale_channel_and_exits_1(three: dict[str, str], rdb: redis.Redis) -> None:
    seed(rdb, int(time.time()))
    result = runner.invoke(app, ["show", "--check"])
    assert (result.exit_code, result.stderr) == (1, "")
    assert result.stdout.startswith(
        "stale: @itam_jobs last updated 3 h ago (limit 30 min); last pass failed at "
    )
    assert result.stdout.endswith(f" (5 min ago), exit 4: {PRIVATE}\n")


def test_check_exits_0_when_every_channel_is_fresh(three: dict[str, str], rdb: redis.Redis) -> None:
    now = int(time.time())
    seed(rdb, now)
    jobs = {**channel_data(now)["itam_jobs"]["stats"], "collected_at": iso(now - 600)}
    rdb.set(channel_keys("itam_jobs").stats, json.dumps(jobs))
    result = runner.invoke(app, ["show", "--check"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "ok: 3 channels, oldest update 10 min ago (@itam_jobs)\n"


def test_check_names_every_stale_channel_in_order(three: dict[str, str]) -> None:
    view = {"channels": {
        "a": {"stats": {"collected_at": iso(NOW - 3 * 3600)}},
        "b": {"stats": None},
        "c": {"stats": {"collected_at": iso(NOW - 60)}},
        "d": {"stats": {"collected_at": "yesterday"}},
    }}  # fmt: skip
    assert show.check_freshness(view, 900, NOW) == (
        False, "stale: @a last updated 3 h ago, @b never, @d never (limit 30 min); "
        "no pass has recorded its outcome (tg:status is missing)"
    )  # fmt: skip


@pytest.mark.parametrize(("age", "fresh"), [(1799, True), (1800, True), (1801, False)])
def test_check_cut_off_is_exactly_twice_the_interval_for_every_channel(
    age: int, fresh: bool
) -> None:
    view = {"channels": {
        "a": {"stats": {"collected_at": iso(NOW - 60)}},
        "b": {"stats": {"collected_at": iso(NOW - age)}},
    }}  # fmt: skip
    assert show.check_freshness(view, 900, NOW) == (
        (True, "ok: 2 channels, oldest update 29 min ago (@b)")
        if age == 1799
        else (True, "ok: 2 channels, oldest update 30 min ago (@b)")
        if fresh
        else (
            False,
            "stale: @b last updated 30 min ago (limit 30 min); no pass has recorded "
            "its outcome (tg:status is missing)",
        )
    )


def test_a_backoff_that_has_run_out_names_no_next_try() -> None:
    """`next try …` only while the channel's `retry_after` is still ahead: once it has
    passed, the next pass asks, and the line says nothing of a wait."""
    status = status_of(NOW)
    entry = status["channels"]["itam_jobs"]
    view = {"status": status, "channels": channel_data(NOW)}
    entry["retry_after"] = iso(NOW + 2 * 3600)
    assert f"next try {iso(NOW + 2 * 3600)}, in 2 h" in rendered(view)
    assert "next try" in rendered(view, channel="itam_jobs")
    entry["retry_after"] = iso(NOW - 60)
    assert "next try" not in rendered(view)
    assert "next try" not in rendered(view, channel="itam_jobs")
    assert f"error: {PRIVATE}" in rendered(view)
