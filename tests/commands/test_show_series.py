"""`show` and posts over time: the 24 h views column, `--post ID`, `--json`'s post_history;
the health check never reads a series."""

from __future__ import annotations

import json

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app
from itam_tgstats.store import Store
from itam_tgstats.store.keys import POST_HISTORY_KEY, channel_keys
from tests.clock import Clock, install
from tests.faketg import FakeTelegram
from tests.helpers import source_factory
from tests.test_post_history import HOUR, P, channel

runner = CliRunner()


@pytest.fixture
def passes(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> tuple[FakeTelegram, Clock]:
    fake = FakeTelegram()
    fake.add_channel(channel(P - 30 * HOUR, P))
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake))
    monkeypatch.setenv("TG_CHANNEL_USERNAME", "pulse")
    monkeypatch.setenv("TG_SESSION_STRING", fake.session_string())
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    clock = install(monkeypatch, Clock(P))
    for minutes, views in ((50, 100), (65, 250), (80, 300)):
        clock.now = P + minutes * 60
        fake.channels[0].messages[1].views = views
        fake.channels[0].messages[0].views = 40 + minutes
        result = runner.invoke(app, ["collect"])
        assert result.exit_code == 0, result.stderr
    return fake, clock


def test_post_shows_the_series_as_a_sparkline_and_its_points(
    passes: tuple[FakeTelegram, Clock],
) -> None:
    result = runner.invoke(app, ["show", "--post", "2"])
    assert result.exit_code == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == "post 2 of @pulse: 3 points over 30 min"
    assert lines[1] == "views _+#  100..300"  # not a terminal: ASCII levels
    assert lines[2].split() == ["time", "(UTC)", "views", "reactions", "forwards", "comments"]
    assert [line.split() for line in lines[3:]] == [
        ["2025-10-09T09:43:20+00:00", "100", "0", "0", "0"],
        ["2025-10-09T09:58:20+00:00", "250", "0", "0", "0"],
        ["2025-10-09T10:13:20+00:00", "300", "0", "0", "0"],
    ]


def test_post_without_a_series_is_one_line_exit_2(passes: tuple[FakeTelegram, Clock]) -> None:
    # Post 1 was first seen 30 h old: a point every hour at most, so it has one.
    assert runner.invoke(app, ["show", "--post", "1"]).exit_code == 0
    missing = runner.invoke(app, ["show", "--post", "99"])
    assert (missing.exit_code, missing.stdout) == (2, "")
    assert missing.stderr == (
        "error: post 99 of the first channel has no series (only posts kept or younger than "
        "TG_POST_HISTORY_DAYS have one)\n"
    )
    for other in (["--json"], ["--check"]):
        combined = runner.invoke(app, ["show", "--post", "2", *other])
        assert combined.exit_code == 2
        assert combined.stderr.startswith("error: --post shows one post's series")


def test_the_post_table_has_the_views_after_24_hours(
    passes: tuple[FakeTelegram, Clock], rdb: redis.Redis
) -> None:
    posts = json.loads(rdb.get(channel_keys("pulse").posts) or "[]")
    posts[0]["views_24h"] = 4321  # as a pass a day later would store it
    rdb.set(channel_keys("pulse").posts, json.dumps(posts))
    rdb.set("tg:channel:posts", json.dumps(posts))
    lines = runner.invoke(app, ["show"]).stdout.splitlines()
    header = next(line for line in lines if "24 h views" in line)
    assert header.split()[:6] == ["id", "age", "views", "24", "h", "views"]
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["2"], ["1"])}
    assert rows["2"][6] == "4321"
    assert rows["1"][6] == "-"


def test_json_gives_every_series_by_post_id(
    passes: tuple[FakeTelegram, Clock], rdb: redis.Redis
) -> None:
    data = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    own = data["channels"]["pulse"]["post_history"]
    assert list(own) == ["2", "1"]  # newest post first
    assert [p["views"] for p in own["2"]] == [100, 250, 300]
    assert data["post_history"] == own  # the first channel's
    assert {json.dumps(v, separators=(",", ":")) for v in own.values()} == set(
        rdb.hgetall(POST_HISTORY_KEY).values()
    )
    assert data["posts"][0]["views_1h"] == 200


def test_the_health_check_never_reads_a_series(
    passes: tuple[FakeTelegram, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[bool, bool]] = []
    real = Store.read_all

    async def recording(
        self: Store,
        names: object = (),
        *,
        series: bool = False,
        admin_stats: bool = False,
        events: bool = False,
    ) -> object:
        asked.append((series, admin_stats, events))
        return await real(  # type: ignore[arg-type]
            self, names, series=series, admin_stats=admin_stats, events=events
        )

    monkeypatch.setattr(Store, "read_all", recording)
    runner.invoke(app, ["show", "--check"])  # reads only what freshness needs (read_health)
    runner.invoke(app, ["show"])
    runner.invoke(app, ["show", "--json"])
    runner.invoke(app, ["show", "--post", "2"])
    # (series, admin statistics, events); the health check reads none of them (read_health).
    assert asked == [(False, True, True), (True, True, True), (True, True, True)]


@pytest.mark.foreign_values("tg:channel:pulse:post_history", "tg:channel:post_history")
def test_foreign_series_values_are_shown_not_fatal(
    passes: tuple[FakeTelegram, Clock], rdb: redis.Redis
) -> None:
    key = channel_keys("pulse").post_history
    rdb.hset(key, "\u00b2", "[1]")  # "²".isdigit() is true
    rdb.hset(key, "7", '[{"t": 100000000000000000000, "views": 1}]')  # past any date
    data = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    assert list(data["channels"]["pulse"]["post_history"]) == ["7", "2", "1", "\u00b2"]
    far = runner.invoke(app, ["show", "--post", "7"])
    assert (far.exit_code, far.stderr.startswith("error: post 7 of the first channel")) == (2, True)
