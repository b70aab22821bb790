"""`show` for a channel with admin statistics: followers now and over the period, the total
as a sparkline, the best hours, top languages and view sources, notifications on; the error
when they were not read; `--json`'s `admin_stats` per channel; `--check` never reads them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app
from itam_tgstats.commands.admin_view import admin_lines, best_hours, top_shares, value_lines
from itam_tgstats.store.keys import ADMIN_STATS_KEY, admin_stats_key
from tests.channels import rich_channel, small_channel
from tests.clock import DAY, T0, Clock, install
from tests.fakestats import graph_documents, realistic_stats
from tests.faketg import FakeTelegram
from tests.helpers import source_factory
from tests.schema_cases import admin_stats_example

runner = CliRunner()
BOTH = "itatmisis, itam_events"


@pytest.fixture
def passes(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, rdb: redis.Redis
) -> tuple[FakeTelegram, Clock]:
    """Two channels read; the first's statistics (kept on DC 4) too."""
    fake = FakeTelegram()
    first = fake.add_channel(rich_channel())
    first.can_view_stats, first.stats_dc, first.stats = True, 4, realistic_stats(4)
    fake.add_channel(small_channel(1, "itam_events"))
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake))
    monkeypatch.setenv("TG_CHANNEL_USERNAME", BOTH)
    monkeypatch.setenv("TG_SESSION_STRING", fake.session_string())
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    clock = install(monkeypatch, Clock(T0))
    result = runner.invoke(app, ["collect"])
    assert result.exit_code == 0, result.stderr
    return fake, clock


def top_hours_expected() -> list[str]:
    """The three hours of the stand-in's top_hours graph with the most views last week."""
    doc = json.loads(graph_documents()["top_hours"])
    views = doc["columns"][1][1:]  # y0: the latest week, one value per hour from 00:00 UTC
    best = sorted(range(24), key=lambda h: (-views[h], h))[:3]
    return [f"{h:02d}:00" for h in best]


def test_show_details_the_first_channels_admin_statistics(
    passes: tuple[FakeTelegram, Clock],
) -> None:
    result = runner.invoke(app, ["show"])
    assert result.exit_code == 0, result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    start = lines.index("admin statistics from Telegram, read 2025-06-15T15:06:40+00:00")
    block = lines[start : start + 7]
    assert block[1] == "followers 5545, +64 over the period (7 d)"
    assert block[2].startswith("total followers ")
    assert block[2].endswith("  5100..5549 over 89 d (90 days)")
    assert block[3] == "best hours to post (UTC): " + ", ".join(top_hours_expected())
    assert block[4] == "languages: Russian 79.2%, English 17.0%, Ukrainian 2.3%"
    assert block[5] == "views by source: Followers 73.9%, Channels 9.6%, Other 5.8%"
    assert block[6] == "notifications on: 22.3% of followers"  # 1234 of 5545
    assert result.stdout.isascii()  # the sparkline too, in plain output
    # Another channel: none stored, nothing said.
    other = runner.invoke(app, ["show", "--channel", "itam_events"])
    assert "admin statistics" not in other.stdout


def test_the_sparkline_is_the_total_followers_per_day(passes: tuple[FakeTelegram, Clock]) -> None:
    result = runner.invoke(app, ["show"])
    [line] = [x for x in result.stdout.splitlines() if x.startswith("total followers ")]
    spark = line.split()[2]
    assert len(spark) == 60  # 90 days averaged into 60 columns
    assert spark[0] == "_" and spark[-1] == "#"  # the lowest first, the highest last


def test_json_gains_admin_stats_per_channel(
    passes: tuple[FakeTelegram, Clock], rdb: redis.Redis
) -> None:
    result = runner.invoke(app, ["show", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    stored = json.loads(rdb.get(admin_stats_key("itatmisis")) or "null")
    assert stored == json.loads(rdb.get(ADMIN_STATS_KEY) or "null")
    assert data["channels"]["itatmisis"]["admin_stats"] == stored
    assert data["channels"]["itam_events"]["admin_stats"] is None
    assert stored["graphs"]["languages"]["series"][0]["name"] == "Russian"


def test_show_says_why_they_were_not_read_and_still_shows_the_stored_ones(
    passes: tuple[FakeTelegram, Clock],
) -> None:
    fake, clock = passes
    clock.advance(DAY)
    fake.fail("stats.GetBroadcastStats", "FLOOD_WAIT_30")
    assert runner.invoke(app, ["collect"]).exit_code == 0
    lines = runner.invoke(app, ["show"]).stdout.splitlines()
    assert "followers 5545, +64 over the period (7 d)" in lines
    assert lines[lines.index("notifications on: 22.3% of followers") + 1] == (
        "admin statistics not read when last asked: stats.getBroadcastStats: FloodWait of "
        "30 s (not waited for: the next due pass asks again)"
    )


def test_check_never_reads_them(passes: tuple[FakeTelegram, Clock], rdb: redis.Redis) -> None:
    """Reads go through one script that GETs only keys that exist: deleting the statistics
    changes what `show` GETs by one (the first channel's own key), and what `show --check`
    GETs not at all."""
    keys = sorted(rdb.scan_iter(match="tg:channel:*admin_stats"))
    assert len(keys) == 2  # the first channel's own key and its original key

    def gets(*args: str) -> int:
        rdb.config_resetstat()
        result = runner.invoke(app, ["show", *args])
        assert result.exit_code in (0, 1)
        return int(rdb.info("commandstats")["cmdstat_get"]["calls"])

    check, show = gets("--check"), gets()
    saved = {key: rdb.get(key) for key in keys}
    rdb.delete(*keys)
    assert (gets("--check"), gets()) == (check, show - 1)  # the channel's own key
    rdb.mset(saved)


# --- the lines, from any stored value -------------------------------------------------------------


def view_of(value: Any, error: Any = None) -> dict[str, Any]:
    return {
        "status": {"channels": {"a": {"admin_stats_error": error}}},
        "channels": {"a": {"admin_stats": value}},
    }


def test_nothing_for_a_channel_without_statistics_or_error() -> None:
    assert admin_lines(view_of(None), None) == []
    assert admin_lines(view_of(None), "a") == []
    assert admin_lines({}, None) == []
    assert admin_lines(view_of(None, "gone"), None) == [
        "admin statistics not read when last asked: gone"
    ]


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v.update(graphs="junk"),
        lambda v: v.update(followers={"current": "5545"}, period=None),
        lambda v: v["graphs"].update(growth={"x": ["?"] * 3, "series": [{"values": [1, 2, 3]}]}),
        lambda v: v["graphs"].update(top_hours={"x": [], "series": []}),
        lambda v: v["graphs"].update(languages={"series": [{"values": ["a", None]}, 5]}),
        lambda v: v["graphs"].update(views_by_source={"series": [{"name": 7, "values": [1e308]}]}),
        lambda v: v.update(enabled_notifications_percent=True, collected_at=None),
    ],
)
def test_foreign_values_are_shown_as_far_as_they_read_never_fatal(damage: Any) -> None:
    value = copy.deepcopy(admin_stats_example())
    damage(value)
    lines = value_lines(value, ascii_only=True)
    assert lines[0].startswith("admin statistics from Telegram, read ")
    assert all(isinstance(line, str) and "\n" not in line for line in lines)


def test_a_graph_sent_as_an_error_is_said() -> None:
    value = admin_stats_example()
    value["graphs"]["growth"] = {"error": "Not enough\x1b[2J data"}
    assert "followers graph: Not enough\ufffd[2J data" in value_lines(value)


def test_names_from_telegram_print_as_they_read() -> None:
    series = [{"name": "Rus\x1b[31msian\nX", "values": [3]}, {"name": "English", "values": [1]}]
    graph = {"x": ["2025-01-01T00:00:00+00:00"], "series": series}
    assert top_shares(graph, last_point=True) == [("Rus\ufffd[31msian X", 75.0), ("English", 25.0)]


def test_best_hours_ignore_empty_hours_and_take_the_earlier_of_a_tie() -> None:
    x = [f"2025-01-01T{h:02d}:00:00+00:00" for h in range(24)]
    values = [0] * 24
    values[9], values[18], values[20] = 5, 5, 2
    assert best_hours({"x": x, "series": [{"values": values}]}) == [9, 18, 20]
    values[20] = 0
    assert best_hours({"x": x, "series": [{"values": values}]}) == [9, 18]
