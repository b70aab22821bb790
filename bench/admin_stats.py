"""Admin statistics (issue 26 item 6): what a due pass and a steady pass cost with them on.

    python bench/admin_stats.py [--latency 0.05] [--repeat 5]     (also a section of run.py)

One channel (@itatmisis, 5 posts) whose statistics the account may view: the stand-in
Telegram's realistic statistics (tests/fakestats.py: twelve graphs, two sent as tokens, one an
error; daily graphs of 90 and 7 days). Each figure is the median of `--repeat` runs of:

- off: a steady pass with TG_ADMIN_STATS_HOURS=0 (what a pass costs without them);
- steady, not due: a steady pass with them on, read at the pass before;
- due, at home: a steady pass (peer cached) that reads them, kept on the account's home DC;
- due, on DC 4: the same, kept on another DC (a session opened there: a new auth key, the
  authorization exported at home and imported there);
- first pass, due, on DC 4: the channel resolved too.

A pass is made due by clearing `admin_stats_at` in tg:status (what 24 hours do). Telegram
calls: every call the stand-in received but connection set-up (help.getConfig, Ping), the
three messages of a new auth key's exchange included; round trips: calls that do not overlap
in time, counted once each (the stand-in answers each call after `--latency`; the key
exchange itself is answered at once, so a real one costs three more round trips on DC 4).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.common import median_of, one_pass, table
from itam_tgstats.render.admin_stats import admin_stats_value
from itam_tgstats.store.keys import STATUS_KEY, admin_stats_key, dumps
from tests.channels import rich_channel
from tests.conftest import RedisServer
from tests.fakestats import days, graph_json, ramp, realistic_stats, stats_graph
from tests.faketg import FakeTelegram

KEY = admin_stats_key("itatmisis")
ROWS = (
    ("off", "off (TG_ADMIN_STATS_HOURS=0), steady"),
    ("not_due", "on, steady, not due"),
    ("due_home", "on, due, statistics on the home DC (2)"),
    ("due_dc4", "on, due, statistics on DC 4"),
    ("first_dc4", "on, first pass (resolves), due, DC 4"),
)


def stand_in(dc_id: int, latency: float) -> FakeTelegram:
    fake = FakeTelegram()
    channel = fake.add_channel(rich_channel())
    channel.can_view_stats, channel.stats_dc, channel.stats = True, dc_id, realistic_stats(dc_id)
    fake.latency = latency
    return fake


def make_due(client: redis.Redis) -> None:
    """tg:status as 24 hours later: the channel's statistics due again."""
    status = json.loads(client.get(STATUS_KEY) or "{}")
    status["channels"]["itatmisis"]["admin_stats_at"] = None
    client.set(STATUS_KEY, json.dumps(status))


def runs(dc_id: int, latency: float, url: str) -> dict[str, Any]:
    """One run of each pass with the statistics kept on `dc_id`; the calls of the due one."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    fake = stand_in(dc_id, latency)
    first = one_pass(fake, url, {})
    not_due = one_pass(fake, url, {})
    make_due(client)
    due = one_pass(fake, url, {})
    due_calls = list(fake.api_calls)
    off = one_pass(fake, url, {"TG_ADMIN_STATS_HOURS": "0"})
    value = client.get(KEY) or b""
    status = client.get(STATUS_KEY) or b""
    client.close()
    return {
        "first": first,
        "not_due": not_due,
        "due": due,
        "off": off,
        "due_calls": due_calls,
        "bytes": len(value),
        "graph_points": points(json.loads(value)),
        "status_bytes": len(status),
    }


def points(value: dict[str, Any]) -> int:
    """Values the stored graphs hold (every series' points)."""
    graphs = [g for g in value["graphs"].values() if g and "series" in g]
    return sum(len(s["values"]) for g in graphs for s in g["series"])


# The daily graphs that may reach back over a channel's whole history (the stand-in's 90 days).
LONG_GRAPHS = ("growth", "followers", "mute", "interactions")


def long_history_bytes(days_back: int) -> int:
    """The stored value's size were those graphs `days_back` days long (a channel's years)."""
    fake = realistic_stats()
    x = days(days_back)
    for name in LONG_GRAPHS:
        series = [
            ("y0", "A", "line", ramp(days_back, 5000, 1)),
            ("y1", "B", "line", ramp(days_back, 9, 0)),
        ]
        setattr(
            fake.answer,
            f"{name}_graph",
            stats_graph(graph_json(x, series[: 1 if name == "growth" else 2])),
        )
    loaded = {
        name: fake.async_graphs[getattr(fake.answer, f"{name}_graph").token]
        for name in ("views_by_source", "languages")
    }
    return len(dumps(admin_stats_value(fake.answer, collected_at=0, loaded=loaded)).encode())


def run_admin_stats(latency: float, repeat: int, url: str) -> dict[str, Any]:
    home = [runs(2, latency, url) for _ in range(repeat)]
    other = [runs(4, latency, url) for _ in range(repeat)]
    return {
        "latency": latency,
        "repeat": repeat,
        "off": median_of([r["off"] for r in home + other]),
        "not_due": median_of([r["not_due"] for r in home + other]),
        "due_home": median_of([r["due"] for r in home]),
        "due_dc4": median_of([r["due"] for r in other]),
        "first_dc4": median_of([r["first"] for r in other]),
        "calls_home": home[0]["due_calls"],
        "calls_dc4": other[0]["due_calls"],
        "bytes": home[0]["bytes"],
        "graph_points": home[0]["graph_points"],
        "status_bytes": home[0]["status_bytes"],
        "years": {n: long_history_bytes(365 * n) for n in (1, 3)},
    }


def print_admin_stats(results: dict[str, Any]) -> None:
    ms = results["latency"] * 1000
    print()
    print(
        f"Admin statistics (TG_ADMIN_STATS_HOURS=24): one channel, {ms:.0f} ms a Telegram call; "
        f"medians of {results['repeat']} runs"
    )
    rows = [("pass", "Telegram calls", "round trips", "pass time", "Redis round trips")]
    for key, label in ROWS:
        r = results[key]
        rows.append(
            (
                label,
                f"{r['calls']:.0f}",
                f"{r['round_trips']:.0f}",
                f"{r['pass_s'] * 1000:.0f} ms",
                f"{r['redis_trips']:.0f}",
            )
        )
    print(table(rows))
    print(f"due pass, home DC: {', '.join(results['calls_home'])}")
    print(f"due pass, DC 4:    {', '.join(results['calls_dc4'])}")
    print(
        f"stored value: {results['bytes']:,} bytes of JSON ({results['graph_points']:,} graph "
        f"values), at tg:channel:<name>:admin_stats and, for the first channel, again at "
        f"tg:channel:admin_stats; tg:status: {results['status_bytes']:,} bytes"
    )
    years = results["years"]
    print(
        f"were {', '.join(LONG_GRAPHS)} a channel's whole history: {years[1]:,} bytes for a "
        f"year of days, {years[3]:,} for three"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Telegram call")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            results = run_admin_stats(args.latency, args.repeat, server.url)
        finally:
            server.stop()
    print_admin_stats(results)


if __name__ == "__main__":
    main()
