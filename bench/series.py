"""Posts over time (issue 17 item 4): how big the series grow, and what they cost a pass.

    python bench/series.py [--latency 0.05]          (also a section of bench/run.py)

Sizes: one channel, a pass every 15 minutes on a set clock (tests/clock.py) for 7 days: all
672 passes are run, none skipped or extrapolated. (a) keeps 5 posts, (b) 100; every post is
published in the quarter hour before the first pass, so each is followed from its first
minutes for its full TG_POST_HISTORY_DAYS=7 (a point every pass for a day, then hourly: 240
points) and, until the last hour, every kept post is younger than 7 days: the worst case.
Numbers grow towards 1,040–5,000 views a post (reactions 1/25, forwards 1/150, comments
1/200 of the views). Bytes in Redis: MEMORY USAGE (SAMPLES 0) of each hash, and the total
length of its field values (the JSON the site reads).

Costs: a steady pass of day 7 with the series on (7 days of series in Redis) and off
(TG_POST_HISTORY_DAYS=0), for 1 channel × 5 posts, 1 × 100 and 50 × 100: Telegram calls,
Redis round trips, pass time, tracemalloc peak (bench/common.py's `one_pass`), and the time
Redis spends in the pass's commands (INFO commandstats and a SLOWLOG of every command). The
1-channel series are those of the 7-day runs; the 50 channels' are (b)'s series as it stood
at 6 d 21 h 45 min, RESTOREd into every channel's key (a week of 50-channel passes would
take minutes), then the same passes run on them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
import redis

from bench.common import one_pass, table
from itam_tgstats.store.keys import POST_HISTORY_KEY, channel_keys, last_points_key
from itam_tgstats.store.scripts import APPEND_SERIES_SCRIPT
from tests.channels import comments, post, reactions
from tests.clock import Clock, install
from tests.faketg import FakeChannel, FakeTelegram

P = 1_750_000_000  # the first pass
QUARTER = 900  # a pass every 15 minutes
WEEK = 7 * 96  # passes in 7 days: pass j runs at P + j * QUARTER, j = 0 … 671
# Hourly points after the first day fall on passes 99, 103, …, 671 (the last young point
# is pass 95's). These passes are measured: APPEND_AT and TRACED_AT add a point to every
# post, QUIET_AT adds none (three passes in four after the first day).
SEEDED_AT = 663
APPEND_AT = 667
QUIET_AT = 668
TRACED_AT = 671
SIZE_POSTS = (5, 100)
COSTS = ((1, 5), (1, 100), (50, 100))


def series_channel(index: int, posts: int) -> FakeChannel:
    """@series_<index>: `posts` text posts (ids 1 …), one every 9 s, the last at P."""
    channel_id = 4_200_000_000 + index
    messages = [
        post(channel_id, k, f"post {k} of @series_{index:02d}", date=P - 9 * (posts - k))
        for k in range(1, posts + 1)
    ]
    return FakeChannel(
        id=channel_id, title=f"Series {index}", username=f"series_{index:02d}",
        messages=messages, participants=1000 + index, linked_chat_id=777,
    )  # fmt: skip


def set_numbers(fake: FakeTelegram, now: float) -> None:
    """Every post's numbers at `now`: views rise towards 1,000 + 40 × id (6-hour time
    constant); reactions, forwards and comments follow them."""
    for channel in fake.channels:
        for message in channel.messages:
            age = max(0.0, now - message.date)
            views = round((1000 + 40 * message.id) * (1 - math.exp(-age / 21_600)))
            message.views = views
            message.forwards = views // 150
            message.reactions = reactions(("👍", views // 25))
            message.replies = comments(views // 200)


def env_for(channels: Sequence[FakeChannel], posts: int, days: int) -> dict[str, str]:
    return {
        "TG_CHANNEL_USERNAME": ",".join(c.username or "" for c in channels),
        "TG_POSTS_COUNT": str(posts),
        "TG_POST_HISTORY_DAYS": str(days),
    }


@contextmanager
def set_clock() -> Iterator[Clock]:
    """The package's passes read a clock this section sets (tests/clock.py)."""
    with pytest.MonkeyPatch.context() as patch:
        yield install(patch, Clock(P))


def series_size(client: redis.Redis, key: str) -> dict[str, float]:
    """One series hash: MEMORY USAGE, field values' bytes, points per post."""
    values = list(client.hgetall(key).values())
    points = [len(json.loads(v)) for v in values]
    length = sum(len(v) for v in values)
    return {
        "memory": client.memory_usage(key, samples=0) or 0,
        "values": length,
        "posts": len(values),
        "points_min": min(points, default=0),
        "points_max": max(points, default=0),
        "points": sum(points),
    }


def redis_seconds(
    before: dict[str, Any], after: dict[str, Any], log: list[Any]
) -> dict[str, float]:
    """What Redis spent on one pass: its MULTI/EXEC (commandstats), and from the SLOWLOG the
    series: the last points read (in the first round trip) and the appends (in EXEC)."""

    def usec(name: str) -> float:
        return float(after.get(name, {}).get("usec", 0) - before.get(name, {}).get("usec", 0))

    spent: dict[str, float] = defaultdict(float)
    for entry in log:
        args = [a.decode(errors="replace") for a in entry[3]]
        if len(args) < 2:
            continue
        if args[0].lower() == "hgetall" and args[1].endswith(":post_history_last"):
            spent["read_s"] += entry[2] / 1e6
        elif args[0].lower() != "eval" or len(args) < 4:
            continue
        elif args[1].startswith(APPEND_SERIES_SCRIPT[:40]):
            spent["mirror_s" if args[3] == POST_HISTORY_KEY else "append_s"] += entry[2] / 1e6
    return {
        "exec_s": usec("cmdstat_exec") / 1e6,
        "scripts_s": usec("cmdstat_eval") / 1e6,
        "read_s": spent["read_s"],
        "append_s": spent["append_s"] + spent["mirror_s"],
        "mirror_s": spent["mirror_s"],
    }


def measured(
    fake: FakeTelegram,
    url: str,
    env: dict[str, str],
    clock: Clock,
    at: int,
    *,
    latency: float,
    traced: bool = False,
) -> dict[str, float]:
    """Pass `at` (its number on the 15-minute cadence), its figures and Redis's time."""
    client = redis.Redis.from_url(url)
    old = client.config_get("slowlog-*")
    try:
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", 1_000_000)
        client.slowlog_reset()
        before = client.info("commandstats")
        clock.now = P + at * QUARTER
        set_numbers(fake, clock.now)
        fake.latency = latency
        figures = one_pass(fake, url, env, traced=traced)
        after = client.info("commandstats")
        log = client.execute_command("SLOWLOG", "GET", -1)
    finally:
        fake.latency = 0.0
        for name, value in old.items():
            client.config_set(str(name), str(value))
        client.slowlog_reset()
        client.close()
    return {**figures, **redis_seconds(before, after, log)}


def steady(
    fake: FakeTelegram, url: str, env: dict[str, str], clock: Clock, latency: float
) -> dict[str, dict[str, float]]:
    """The three measured passes of day 7: appending, quiet, appending under tracemalloc."""
    return {
        "append": measured(fake, url, env, clock, APPEND_AT, latency=latency),
        "quiet": measured(fake, url, env, clock, QUIET_AT, latency=latency),
        "traced": measured(fake, url, env, clock, TRACED_AT, latency=latency, traced=True),
    }


def week(url: str, clock: Clock, posts: int, latency: float) -> dict[str, Any]:
    """7 days of passes every 15 minutes over one channel keeping `posts` posts."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    channel = series_channel(0, posts)
    fake = FakeTelegram()
    fake.add_channel(channel)
    env = env_for([channel], posts, 7)
    key = channel_keys(channel.username or "").post_history
    day_one: list[float] = []
    day_seven: list[float] = []
    costs: dict[str, dict[str, float]] = {}
    seed = last_seed = b""
    started = time.perf_counter()
    measured_at = {APPEND_AT: "append", QUIET_AT: "quiet", TRACED_AT: "traced"}
    for j in range(WEEK):
        if j in measured_at:
            costs[measured_at[j]] = measured(
                fake, url, env, clock, j, latency=latency, traced=j == TRACED_AT
            )
            continue
        clock.now = P + j * QUARTER
        set_numbers(fake, clock.now)
        figures = one_pass(fake, url, env)
        if 0 < j < 96:
            day_one.append(figures["pass_s"])
        elif j >= WEEK - 96:
            day_seven.append(figures["pass_s"])
        if j == SEEDED_AT:
            seed = client.dump(key) or b""
            last_seed = client.dump(last_points_key(channel.username or "")) or b""
    elapsed = time.perf_counter() - started
    result = {
        "posts": posts,
        "elapsed_s": elapsed,
        "own": series_size(client, key),
        "mirror": series_size(client, POST_HISTORY_KEY),
        "day_one_s": sum(day_one) / len(day_one),
        "day_seven_s": sum(day_seven) / len(day_seven),
        "costs": costs,
        "seed": seed,
        "last_seed": last_seed,
    }
    # After the 7 days no post gains a point: the series stay as they are while kept.
    clock.now = P + WEEK * QUARTER
    before = client.hgetall(key)
    one_pass(fake, url, env)
    result["frozen"] = client.hgetall(key) == before
    client.close()
    return result


def stand_in(channels: int, posts: int) -> tuple[list[FakeChannel], FakeTelegram]:
    """`channels` series channels keeping `posts` posts, on one stand-in Telegram."""
    many = [series_channel(i, posts) for i in range(channels)]
    fake = FakeTelegram()
    for channel in many:
        fake.add_channel(channel)
    return many, fake


def off_costs(
    url: str, clock: Clock, channels: int, posts: int, latency: float
) -> tuple[dict[str, dict[str, float]], int]:
    """The measured passes with TG_POST_HISTORY_DAYS=0 (after a first, resolving pass), and
    Redis's used_memory after them."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    many, fake = stand_in(channels, posts)
    env = env_for(many, posts, 0)
    clock.now = P + (APPEND_AT - 1) * QUARTER
    set_numbers(fake, clock.now)
    one_pass(fake, url, env)
    costs = steady(fake, url, env, clock, latency)
    used = int(client.info("memory")["used_memory"])
    client.close()
    return costs, used


def many_on_costs(
    url: str,
    clock: Clock,
    channels: int,
    posts: int,
    *,
    seed: bytes,
    last_seed: bytes,
    latency: float,
) -> dict[str, Any]:
    """The measured passes with the series on, every channel's series (b)'s at SEEDED_AT."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    many, fake = stand_in(channels, posts)
    # A first pass resolves the channels (series off: it writes none).
    clock.now = P + (SEEDED_AT - 1) * QUARTER
    set_numbers(fake, clock.now)
    one_pass(fake, url, env_for(many, posts, 0))
    keys = [channel_keys(c.username or "").post_history for c in many] + [POST_HISTORY_KEY]
    for key in keys:
        client.restore(key, 0, seed, replace=True)
    for channel in many:  # and each one's last points, which a pass reads instead
        client.restore(last_points_key(channel.username or ""), 0, last_seed, replace=True)
    costs = steady(fake, url, env_for(many, posts, 7), clock, latency)
    memory = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
    used = client.info("memory")["used_memory"]
    client.close()
    return {"costs": costs, "memory": memory, "used_memory": used, "keys": len(keys)}


def run_series(latency: float, url: str) -> dict[str, Any]:
    """Every figure of this section (about a minute)."""
    started = time.perf_counter()
    with set_clock() as clock:
        weeks = {n: week(url, clock, n, latency) for n in SIZE_POSTS}
        on: dict[tuple[int, int], dict[str, dict[str, float]]] = {
            (1, n): weeks[n]["costs"] for n in SIZE_POSTS
        }
        off_runs = {(c, n): off_costs(url, clock, c, n, latency) for c, n in COSTS}
        off = {config: costs for config, (costs, _) in off_runs.items()}
        widest = max(COSTS)
        week_of = weeks[widest[1]]
        many = many_on_costs(
            url,
            clock,
            *widest,
            seed=week_of["seed"],
            last_seed=week_of["last_seed"],
            latency=latency,
        )
        on[widest] = many["costs"]
        many["used_memory_off"] = off_runs[widest][1]
    return {
        "weeks": weeks,
        "on": on,
        "off": off,
        "many": many,
        "widest": widest,
        "latency": latency,
        "elapsed_s": time.perf_counter() - started,
    }


def kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def size_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("scenario", "passes run (time)", "points a post", "bytes a point",
         "a post's series", "a channel: field values", "a channel: MEMORY USAGE",
         "first channel (+ tg:channel:post_history)")
    ]  # fmt: skip
    for label, posts in (("(a)", 5), ("(b)", 100)):
        w = results["weeks"][posts]
        own, mirror = w["own"], w["mirror"]
        points = (
            f"{own['points_min']}"
            if own["points_min"] == own["points_max"]
            else f"{own['points_min']}–{own['points_max']}"
        )
        rows.append(
            (
                f"{label} 1 channel, {posts} posts kept, 7 days",
                f"{WEEK} ({w['elapsed_s']:.1f} s)",
                points,
                f"{own['values'] / own['points']:.1f}",
                kib(own["values"] / own["posts"]),
                kib(own["values"]),
                kib(own["memory"]),
                kib(own["memory"] + mirror["memory"]),
            )
        )
    many = results["many"]
    channels, posts = results["widest"]
    rows.append(
        (
            f"(c) {channels} channels × {posts} posts, 7 days",
            f"(b)'s series RESTOREd into {many['keys']} keys",
            "", "", "",
            kib(results["weeks"][posts]["own"]["values"] * channels),
            f"{mib(many['memory'])} in all",
            f"used_memory {mib(many['used_memory'])} (series off: "
            f"{mib(many['used_memory_off'])})",
        )
    )  # fmt: skip
    return rows


def cost_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("channels × posts", "series", "pass", "Telegram calls (target)",
         "Redis round trips (target)", "pass time", "peak memory", "Redis: EXEC",
         "Redis: series scripts (read / append, mirror)")
    ]  # fmt: skip
    for config in COSTS:
        channels, posts = config
        off = results["off"][config]
        for series, figures in (("off", off), ("on", results["on"][config])):
            for which, label in (("append", "a point a post"), ("quiet", "no point")):
                if series == "off" and which == "quiet":
                    continue
                r = figures[which]
                target_trips = off["append"]["redis_trips"] + 1
                rows.append(
                    (
                        f"{channels} × {posts}",
                        "off" if series == "off" else "on (7 days)",
                        "steady" if series == "off" else label,
                        f"{r['calls']:.0f} ({2 * channels})",
                        f"{r['redis_trips']:.0f}"
                        + ("" if series == "off" else f" (≤ {target_trips:.0f})"),
                        ms(r["pass_s"]),
                        f"{figures['traced']['peak_mb']:.2f} MB" if which == "append" else "",
                        ms(r["exec_s"]),
                        "" if series == "off" else f"{ms(r['read_s'])} / {ms(r['append_s'])}",
                    )
                )
    return rows


def verdicts(results: dict[str, Any]) -> list[str]:
    def mark(ok: bool) -> str:
        return "PASS" if ok else "over"

    lines = []
    calls = {
        f"{c}×{p} {w}": (results["on"][c, p][w]["calls"], 2 * c)
        for c, p in COSTS
        for w in ("append", "quiet", "traced")
    }
    wrong = {k: v for k, v in calls.items() if v[0] != v[1]}
    lines.append(
        f"{mark(not wrong)} a steady pass with the series on costs 2 Telegram calls a channel: "
        + ", ".join(f"{c}×{p}: {results['on'][c, p]['append']['calls']:.0f}" for c, p in COSTS)
        + (f"; not 2N: {wrong}" if wrong else "")
    )
    trips = {
        (c, p): (
            max(results["on"][c, p][w]["redis_trips"] for w in ("append", "quiet", "traced")),
            max(results["off"][c, p][w]["redis_trips"] for w in ("append", "quiet", "traced")),
        )
        for c, p in COSTS
    }
    lines.append(
        f"{mark(all(on <= off + 1 for on, off in trips.values()))} at most one Redis round "
        "trip more than with the series off (on/off: "
        + ", ".join(f"{c}×{p}: {on:.0f}/{off:.0f}" for (c, p), (on, off) in trips.items())
        + "; each kept post's last point is read in the pass's first round trip, from the "
        "small post_history_last hash, not from the series)"
    )
    c, p = results["widest"]
    on, off = results["on"][c, p], results["off"][c, p]
    series = on["append"]["read_s"] + on["append"]["append_s"]
    lines.append(
        f"{c} channels × {p} posts, a pass adding a point to every post: Redis spends "
        f"{ms(series)} on the series ({ms(on['append']['read_s'])} reading the last points, "
        f"{ms(on['append']['append_s'])} appending, of which {ms(on['append']['mirror_s'])} the"
        f" first channel's mirror); its EXEC {ms(on['append']['exec_s'])} against "
        f"{ms(off['append']['exec_s'])} off; the pass {ms(on['append']['pass_s'])} against "
        f"{ms(off['append']['pass_s'])} off; a pass adding none: series "
        f"{ms(on['quiet']['read_s'] + on['quiet']['append_s'])}, pass "
        f"{ms(on['quiet']['pass_s'])}"
    )
    stored = results["weeks"][p]["own"]["values"] * c / 2**20
    lines.append(
        f"Appending follows the series' bytes: {stored:,.0f} MiB of series at {c} × {p}; an "
        "append rewrites its post's whole value (HGET, concatenate, HSET: "
        f"{on['append']['append_s'] * 1000 / stored:.1f} ms a MiB of series gaining a point, "
        "while Redis serves no one else: it runs in the pass's EXEC). Reading the last points "
        f"follows the posts: {ms(on['quiet']['read_s'])} a pass at {c} × {p}"
    )
    peak = {s: {k: r["traced"]["peak_mb"] for k, r in results[s].items()} for s in ("on", "off")}
    grown = {config: peak["on"][config] - peak["off"][config] for config in COSTS}
    lines.append(
        "peak memory (tracemalloc, pass adding a point to every post), on − off: "
        + ", ".join(f"{c}×{p}: {d * 1024:+,.0f} KB" for (c, p), d in grown.items())
    )
    b = results["weeks"][100]
    lines.append(
        f"pass time as the series grow, 1 × 100, latency 0: {ms(b['day_one_s'])} a pass on "
        f"day 1 (every pass appends), {ms(b['day_seven_s'])} on day 7 (one pass in four "
        "does); after day 7 no post gains a point "
        f"({'PASS' if b['frozen'] and results['weeks'][5]['frozen'] else 'over'}: series "
        "unchanged by a pass at 7 days)"
    )
    return lines


def print_series(results: dict[str, Any]) -> None:
    print()
    print(
        "Posts over time (TG_POST_HISTORY_DAYS=7): series size after 7 days of passes every "
        "15 minutes on a set clock, every post followed from its first minutes for its full 7 "
        "days (the worst case: each post's series at its longest); views grow to 1,040–5,000 a"
        " post"
    )
    print(table(size_rows(results)))
    print(
        "a post's series / field values: the JSON array's length (HSTRLEN); MEMORY USAGE: the"
        " hash with SAMPLES 0. A kept post older than 7 days keeps its full series while kept,"
        " so (b) is also the size of any channel keeping 100 posts once each was followed "
        "from birth, whatever its publishing rate. (c): used_memory of the whole Redis after "
        "the pass."
    )
    print()
    print(
        f"A steady pass of day 7 with the series on and off ({results['latency'] * 1000:.0f} "
        "ms a Telegram call; one run each)"
    )
    print(table(cost_rows(results)))
    print(
        "a point a post: pass 667 (6 d 22 h 45 min), every post gains an hourly point; no "
        "point: pass 668, 15 minutes later (3 passes in 4 after the first day); peak memory: "
        "tracemalloc peak of pass 671 (a point a post again); Redis: EXEC: the pass's "
        "MULTI/EXEC (INFO commandstats usec); series: SLOWLOG of the last-points reads "
        "(HGETALL, in the pass's first round trip) and the append and mirror scripts (in "
        "EXEC). Redis's "
        "own clock: on 2 cores the bench's Python competes with it."
    )
    print()
    print("Against the targets:")
    for line in verdicts(results):
        print(f"  {line}")
    print(f"  (this section: {results['elapsed_s']:.0f} s)")


def main() -> None:
    from tests.conftest import RedisServer  # only when run on its own

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Telegram call")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            results = run_series(args.latency, server.url)
        finally:
            server.stop()
    print_series(results)


if __name__ == "__main__":
    main()
