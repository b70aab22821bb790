"""`tgstats show` as a dashboard: growth from the history, what performs, the job's health."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
import redis
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from itam_tgstats.cli import app
from itam_tgstats.commands import dashboard, show
from itam_tgstats.store.keys import HISTORY_KEY, LAST_UPDATE_KEY, POSTS_KEY, STATS_KEY, STATUS_KEY

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400


def point(t: int, subscribers: int, posts: int = 100) -> dict[str, int]:
    return {"t": t, "subscribers": subscribers, "posts": posts}


def months_of_history() -> list[dict[str, int]]:
    """Hourly points over 40 days, with a two-day gap and a drop 30 days ago."""
    points = []
    for hour in range(40 * 24, -1, -1):
        t = NOW - hour * 3600
        if NOW - 12 * DAY < t < NOW - 10 * DAY:
            continue  # the collector was down for two days
        points.append(point(t, 1200 - hour // 24 * 5))
    by_t = {p["t"]: p for p in points}
    by_t[NOW - 30 * DAY]["subscribers"] = 900  # a drop (a purge of bots)
    by_t[NOW - 7 * DAY]["subscribers"] = 1150
    by_t[NOW - DAY]["subscribers"] = 1190
    by_t[NOW]["subscribers"] = 1200
    return points


def test_deltas_over_24h_7d_30d_are_exact() -> None:
    found = show.deltas(months_of_history())
    assert [(d.label, d.change, d.since_first_point) for d in found] == [
        ("24 h", 10, False), ("7 d", 50, False), ("30 d", 300, False)
    ]  # fmt: skip


def test_gaps_use_the_last_point_before_the_window() -> None:
    points = [point(NOW - 3 * DAY, 500), point(NOW - 2 * DAY + 7, 510), point(NOW, 530)]
    [day, week] = show.deltas(points)
    assert (day.label, day.change, day.since_first_point) == ("24 h", 20, False)
    assert (week.label, week.change, week.since_first_point, week.span) == (
        "7 d",
        30,
        True,
        3 * DAY,
    )


def test_no_deltas_from_fewer_than_two_points() -> None:
    assert show.deltas([]) == [] and show.deltas([point(NOW, 5)]) == []


def test_sparkline_length_and_extremes() -> None:
    values = [p["subscribers"] for p in months_of_history()]
    line = show.sparkline(values, width=60)
    assert len(line) == 60
    assert set(line) <= set(show.UNICODE_LEVELS)
    assert "▁" in line and "█" in line
    short = show.sparkline([3, 1, 2, 5], width=60)
    assert short == "▅▁▃█"  # levels: round((v - min) / (max - min) * 7)
    assert show.sparkline([7, 7, 7]) == "▄▄▄"
    assert show.sparkline([]) == ""


def test_sparkline_ascii_fallback() -> None:
    line = show.sparkline([1, 5, 3, 9], ascii_only=True)
    assert line == "_=-#" and line.isascii()


def test_engagement_rate() -> None:
    post = {"views": 200, "reactions_total": 10, "comments_count": 5, "forwards": 5}
    assert show.engagement(post) == 0.1
    assert show.engagement({**post, "views": 0}) is None


def seeded_view(**overrides: Any) -> dict[str, Any]:
    posts = [
        {"id": 30, "text": "Newest", "date": "2025-12-31T23:00:00+00:00", "views": 100,
         "reactions_total": 2, "comments_count": 0, "forwards": 0, "media_type": None},
        {"id": 20, "text": "Winner " * 20, "date": "2025-12-30T00:00:00+00:00", "views": 400,
         "reactions_total": 60, "comments_count": 30, "forwards": 10, "media_type": "photo"},
        {"id": 10, "text": "Old", "date": "2025-12-01T00:00:00+00:00", "views": 0,
         "reactions_total": 0, "comments_count": 0, "forwards": 0, "media_type": None},
    ]  # fmt: skip
    view = {
        "stats": {"title": "IT at MISIS", "username": "itatmisis", "channel_id": -1001,
                  "subscribers_count": 1200, "posts_count": 100,
                  "last_post_date": "2025-12-31T23:00:00+00:00"},
        "posts": posts,
        "last_update": "2025-12-31T23:55:00+00:00",
        "status": {"ok": True, "last_success_at": "2025-12-31T23:55:00+00:00",
                   "last_failure_at": "2025-12-31T20:00:00+00:00",
                   "last_error": "channel @itatmisis is private (CHANNEL_PRIVATE)",
                   "consecutive_failures": 0, "retry_after": None},
        "history": months_of_history(),
    }  # fmt: skip
    view.update(overrides)
    return view


def rendered(view: dict[str, Any], *, ascii_only: bool = False, color: bool = False) -> str:
    out = io.StringIO()
    console = Console(
        file=out, width=140, force_terminal=color, color_system="standard" if color else None
    )
    dashboard.render(view, console, 900, NOW, ascii_only=ascii_only)
    return out.getvalue()


def test_dashboard_answers_growing_and_what_worked() -> None:
    text = rendered(seeded_view())
    assert "subscribers 1200   +10 24 h   +50 7 d   +300 30 d" in text
    assert "900..1200 over 40 d, " in text
    rows = {}
    for line in text.splitlines():
        tokens = line.split()
        marked = bool(tokens) and tokens[0] == "★"
        if marked:
            tokens = tokens[1:]
        if tokens and tokens[0].isdigit():
            rows[tokens[0]] = ("★ " if marked else "") + " ".join(tokens[1:])
    assert rows["20"].startswith("★")  # the best engagement: (60 + 30 + 10) / 400 = 25%
    assert "25.0%" in rows["20"] and "2.0%" in rows["30"]
    assert "1 h" in rows["30"] and "2 d" in rows["20"] and "31 d" in rows["10"]
    assert "last failure 2025-12-31T20:00:00+00:00: channel @itatmisis is private" in text
    assert "health: ok: last update 5 min ago" in text


def test_stale_data_shows_the_status_in_red() -> None:
    stale = seeded_view(
        last_update="2025-12-30T00:00:00+00:00",
        status={"ok": False, "last_success_at": "2025-12-30T00:00:00+00:00",
                "last_failure_at": "2025-12-31T23:45:00+00:00",
                "last_error": "Telegram asked to wait 3600 s (FloodWait)",
                "consecutive_failures": 7, "retry_after": "2026-01-01T00:45:00+00:00"},
    )  # fmt: skip
    text = rendered(stale, color=True)
    assert "\x1b[1;31mhealth: stale: last update 2 d ago (limit 30 min)" in text
    assert "\x1b[31mstatus: last success 2025-12-30T00:00:00+00:00\x1b[0m" in text
    assert "\x1b[31m        7 failed passes in a row\x1b[0m" in text
    assert "Telegram asked to wait until 2026-01-01T00:45:00+00:00" in text


def test_ascii_view_has_no_block_characters() -> None:
    text = rendered(seeded_view(), ascii_only=True)
    assert text.isascii()
    assert any(re.match(r"\s*\*\s+20\s", line) for line in text.splitlines())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"history": []}, "no history yet: growth shows after two passes"),
        ({"history": [point(NOW, 1200)]}, "subscribers 1200\n"),
        ({"posts": []}, "no posts in the channel"),
        (
            {"stats": None, "posts": None, "last_update": None, "status": None, "history": []},
            "No data yet",
        ),
    ],
)
def test_empty_and_partial_data(overrides: dict[str, Any], expected: str) -> None:
    assert expected in rendered(seeded_view(**overrides))


def test_show_command_over_redis(env: dict[str, str], rdb: redis.Redis) -> None:
    view = seeded_view()
    rdb.set(STATS_KEY, json.dumps(view["stats"]))
    rdb.set(POSTS_KEY, json.dumps(view["posts"]))
    rdb.set(LAST_UPDATE_KEY, view["last_update"])
    rdb.set(STATUS_KEY, json.dumps(view["status"]))
    for p in view["history"]:
        rdb.zadd(HISTORY_KEY, {json.dumps(p, separators=(",", ":")): p["t"]})
    result = CliRunner().invoke(app, ["show"])
    assert result.exit_code == 0, result.stderr
    assert "IT at MISIS" in result.stdout and "+300 30 d" in result.stdout
    assert result.stdout.isascii()  # not a terminal: plain ASCII
    data = json.loads(CliRunner().invoke(app, ["show", "--json"]).stdout)
    assert set(data) == {
        "stats", "posts", "last_update", "status", "history", "post_history", "channels",
        "events",
    }  # fmt: skip
    assert data["history"] == view["history"]  # oldest first
    # the one configured channel, read from the original keys (no per-channel keys yet)
    assert data["channels"] == {
        "itatmisis": {
            "stats": view["stats"],
            "posts": view["posts"],
            "history": view["history"],
            "post_history": {},
            "admin_stats": None,
        }
    }
    assert data["status"] == view["status"]


# --- what a channel posts is data ---------------------------------------------------------

HOSTILE = {
    "closing tag": "[/b] closes nothing",
    "link": "[link=https://evil.example]docs[/link]",
    "style": "[bold red]ALARM[/]",
}


def hostile_view() -> dict[str, Any]:
    view = seeded_view()
    view["posts"] = [{**view["posts"][0], "id": i, "text": text}
                     for i, text in enumerate(HOSTILE.values(), 1)]  # fmt: skip
    view["stats"] = {
        **view["stats"],
        "title": "[bold red]IT[/] [link=https://evil.example]x[/link]",
    }
    view["status"] = {**view["status"], "last_error": "channel [/b] is private"}
    return view


@pytest.mark.parametrize("color", [False, True])
def test_channel_text_is_printed_literally(color: bool) -> None:
    text = rendered(hostile_view(), color=color)
    for literal in HOSTILE.values():
        assert literal in text
    assert "[bold red]IT[/] [link=https://evil.example]x[/link]" in text
    assert "last failure 2025-12-31T20:00:00+00:00: channel [/b] is private" in text


def test_channel_text_makes_no_terminal_hyperlink() -> None:
    """On a terminal (where rich writes OSC 8 links for `[link=…]` markup) none appears."""
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="standard").print(
        Text.from_markup("[link=https://evil.example]x[/link]")
    )
    assert "\x1b]8;" in out.getvalue()  # this console would write one
    text = rendered(hostile_view(), color=True)
    assert "\x1b[" in text  # a terminal indeed: styles are written
    assert "\x1b]8;" not in text


def test_control_characters_in_channel_text_are_shown_not_obeyed() -> None:
    view = seeded_view()
    link = "\x1b]8;;https://evil.example\x1b\\docs\x1b]8;;\x1b\\"
    view["posts"] = [{**view["posts"][0], "text": f"\x1b[2J{link} \u202egnp.exe"}]
    text = rendered(view)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\ufffd[2J\ufffd]8;;https://evil.example\ufffd\\docs" in text


C1_AND_BIDI = [
    "\x85",
    "\x9b",
    "\x9d",
    "\x9f",
    "\x7f",
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2066",
    "\u2069",
]


@pytest.mark.parametrize("char", C1_AND_BIDI)
def test_8bit_controls_and_bidi_marks_never_reach_the_terminal(char: str) -> None:
    """Bug: U+009B is the 8-bit CSI (a terminal reads `\x9b2J` as "clear the screen")."""
    view = seeded_view()
    view["stats"] = {**view["stats"], "title": f"IT{char}2J"}
    view["posts"] = [{**view["posts"][0], "text": f"post{char}31m"}]
    view["status"] = {**view["status"], "last_error": f"channel{char}x is private"}
    for color in (False, True):
        text = rendered(view, color=color)
        assert char not in text
        shown = " " if char.isspace() else "\ufffd"  # NEL is whitespace: one space
        assert f"IT{shown}2J" in text and f"post{shown}31m" in text
        assert f"channel{shown}x is private" in text


def star_rows(posts: list[dict[str, Any]]) -> list[str]:
    """The ids of the posts `show` stars."""
    text = rendered(seeded_view(posts=posts))
    return [line.split()[1] for line in text.splitlines() if line.split()[:1] == ["★"]]


def counted(post_id: int, views: int, acted: int) -> dict[str, Any]:
    return {
        "id": post_id, "text": "x", "date": "2025-12-31T23:00:00+00:00", "views": views,
        "reactions_total": acted, "comments_count": 0, "forwards": 0, "media_type": None,
    }  # fmt: skip


def test_a_star_only_for_the_one_best_engagement_above_zero() -> None:
    assert star_rows([counted(1, 100, 5), counted(2, 100, 9), counted(3, 0, 0)]) == ["2"]
    # a tie for the best: no star
    assert star_rows([counted(1, 100, 9), counted(2, 200, 18), counted(3, 100, 1)]) == []
    # nobody acted: no star
    assert star_rows([counted(1, 100, 0), counted(2, 50, 0)]) == []
    # one post with engagement above zero: its star
    assert star_rows([counted(1, 100, 1)]) == ["1"]
    assert star_rows([counted(1, 100, 0)]) == []


def store_view(rdb: redis.Redis, view: dict[str, Any]) -> None:
    rdb.set(STATS_KEY, json.dumps(view["stats"]))
    rdb.set(POSTS_KEY, json.dumps(view["posts"]))
    rdb.set(LAST_UPDATE_KEY, view["last_update"])
    rdb.set(STATUS_KEY, json.dumps(view["status"]))
    for p in view["history"]:
        rdb.zadd(HISTORY_KEY, {json.dumps(p, separators=(",", ":")): p["t"]})


def test_show_command_prints_hostile_posts_literally(env: dict[str, str], rdb: redis.Redis) -> None:
    store_view(rdb, hostile_view())
    result = CliRunner().invoke(app, ["show"], env={"COLUMNS": "200"})  # no folded cells
    assert (result.exit_code, result.stderr) == (0, "")
    for literal in HOSTILE.values():
        assert literal in result.stdout


def installed_tgstats() -> str:
    return shutil.which("tgstats") or str(Path(sys.executable).with_name("tgstats"))


def cyrillic_view() -> dict[str, Any]:
    view = seeded_view()
    view["stats"] = {**view["stats"], "title": "ИТ в МИСИС 🚀"}
    view["posts"] = [{**view["posts"][0], "text": "Привет 👋 мир"}]
    return view


@pytest.mark.parametrize(
    ("encoding", "title", "post"),
    [
        ("ascii", "?? ? ????? ?", "?????? ? ???"),
        ("cp1251", "ИТ в МИСИС ?", "Привет ? мир"),
    ],
)
def test_show_replaces_what_the_output_encoding_cannot_carry(
    env: dict[str, str], rdb: redis.Redis, encoding: str, title: str, post: str
) -> None:
    store_view(rdb, cyrillic_view())
    environ = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": "200"}
    result = subprocess.run([installed_tgstats(), "show"], capture_output=True, env=environ,
                            timeout=60, check=False)  # fmt: skip
    assert (result.returncode, result.stderr) == (0, b"")
    shown = result.stdout.decode(encoding)
    assert title in shown and post in shown
    as_json = subprocess.run([installed_tgstats(), "show", "--json"], capture_output=True,
                             env=environ, timeout=60, check=False)  # fmt: skip
    assert (as_json.returncode, as_json.stderr) == (0, b"")
    assert as_json.stdout.isascii()  # \u escapes: nothing lost
    assert json.loads(as_json.stdout)["stats"]["title"] == "ИТ в МИСИС 🚀"


def spawn_show(extra_env: dict[str, str]) -> str:
    """`tgstats show` on a real (pseudo) terminal, UTF-8: what the terminal received."""
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environ.update({"TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "COLUMNS": "140",
                    **extra_env})  # fmt: skip
    child = pexpect.spawn(installed_tgstats(), ["show"], env=environ, encoding="utf-8",
                          timeout=60, dimensions=(50, 140))  # fmt: skip
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before or ""


def test_show_honours_no_color_on_a_utf8_terminal(env: dict[str, str], rdb: redis.Redis) -> None:
    store_view(rdb, seeded_view())
    colored = spawn_show({})
    assert "\x1b[" in colored and "▁" in colored and "★" in colored  # a terminal indeed
    plain = spawn_show({"NO_COLOR": "1"})
    assert "\x1b" not in plain
    assert plain.isascii() and "+300 30 d" in plain
    assert any(re.match(r"\s*\*\s+20\s", line) for line in plain.splitlines())


def test_engagement_ignores_counters_that_are_not_numbers() -> None:
    """Whatever another writer left in Redis, `show` does not crash on it."""
    assert show.engagement({"views": 10, "reactions_total": "lots", "comments_count": 2}) == 0.2
    assert show.engagement({"views": 10, "forwards": [1], "comments_count": None}) == 0.0


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(86_399, "23 h 59 min"), (86_400, "1 d"), (86_400 + 1800, "1 d"), (90_000, "1 d 1 h")],
)
def test_ages_of_a_day_and_more_are_in_days(seconds: int, shown: str) -> None:
    """`show` writes ages as `3 h 5 min` below a day, `2 d 4 h` from a day on."""
    assert show.human_age(seconds) == shown
