"""The several-channels section: N channels in one pass, first and steady, memory growth."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis
from pyrogram import raw

from bench.common import REDIS_TRIPS_PER_PASS, median_of, one_pass, table
from itam_tgstats.config import Settings
from itam_tgstats.render.posts import group_posts
from itam_tgstats.store.keys import channel_keys
from tests.channels import rich_channel
from tests.faketg import SETUP_CALLS, FakeChannel, FakeTelegram

CHANNEL_COUNTS = (1, 5, 20, 50)
# Memory against posts kept: this many channels, keeping each of GROWTH_POSTS posts.
GROWTH_CHANNELS = 20
GROWTH_POSTS = (5, 20, 50)
# Requests in flight at once (itam_tgstats.telegram.client.MAX_IN_FLIGHT, the design's bound).
IN_FLIGHT_BOUND = 10
# rich_channel's 15 messages repeated this many times: 120 messages, 64 posts a channel, more
# than one getHistory page (at most 100 messages) holds.
RICH_BLOCKS = 8


def bench_channel(index: int) -> FakeChannel:
    """A channel like @itatmisis (`rich_channel`: albums, video, poll, link card, reactions,
    comments, service messages), its 15 messages repeated RICH_BLOCKS times, each copy with
    ids, dates, albums and texts of its own; its own id and username."""
    channel_id = 4_100_000_000 + index
    username = f"itam_bench_{index:02d}"
    messages: list[Any] = []
    ids = [m.id for m in rich_channel(channel_id).messages]
    span = max(ids) - min(ids) + 1
    for block in range(RICH_BLOCKS):
        shift = block * span
        for message in rich_channel(channel_id).messages:
            message.id += shift
            message.date += shift * 60
            if isinstance(message, raw.types.Message):
                if message.grouped_id:
                    message.grouped_id += block
                if message.edit_date:
                    message.edit_date += shift * 60
                if message.message:
                    message.message = f"{message.message} (@{username}, #{message.id})"
            messages.append(message)
    return FakeChannel(
        id=channel_id, title=f"ITAM bench {index}", username=username, messages=messages,
        participants=1000 + index, linked_chat_id=777,
    )  # fmt: skip


def telegram_span(fake: FakeTelegram) -> float:
    """Seconds from the pass's first API call to its last answer (connection set-up left out)."""
    spans = [(s, e) for name, s, e in fake.timeline if name not in SETUP_CALLS]
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0


def posts_json_bytes(url: str, names: Sequence[str]) -> int:
    """Bytes of every channel's tg:channel:<name>:posts."""
    client = redis.Redis.from_url(url)
    try:
        return sum(client.strlen(channel_keys(name).posts) for name in names)
    finally:
        client.close()


def channels_product(
    latency: float, repeat: int, url: str, channels: Sequence[FakeChannel], posts: int
) -> dict[str, Any]:
    """First (cold Redis: every channel resolved) and steady pass over `channels` in one
    pass: medians over `repeat` untraced runs; the memory peak and the call log from one more
    run under tracemalloc, after them."""
    names = [c.username or "" for c in channels]
    env = {"TG_CHANNEL_USERNAME": ",".join(names), "TG_POSTS_COUNT": str(posts)}
    runs: dict[str, list[dict[str, float]]] = {"first": [], "steady": []}
    peaks: dict[str, float] = {}
    log: dict[str, Counter[str]] = {}
    for i in range(repeat + 1):
        traced = i == repeat
        redis.Redis.from_url(url).flushdb()
        fake = FakeTelegram()
        for channel in channels:
            fake.add_channel(channel)
        fake.latency = latency
        for which in ("first", "steady"):
            figures = one_pass(fake, url, env, traced=traced)
            figures["telegram_s"] = telegram_span(fake)
            if traced:
                peaks[which] = figures["peak_mb"]
                log[which] = Counter(fake.api_calls)
            else:
                runs[which].append(figures)
    result: dict[str, Any] = {w: {**median_of(r), "peak_mb": peaks[w]} for w, r in runs.items()}
    result.update(log=log, posts_bytes=posts_json_bytes(url, names), repeat=repeat)
    return result


def expected_channel_trips(count: int, which: str) -> int:
    """Critical-path round trips the design gives: 2 calls a channel (3 with the resolve,
    which must answer before the other two start), 10 in flight at once."""
    calls = 2 * count if which == "steady" else 3 * count
    return max(1 if which == "steady" else 2, math.ceil(calls / IN_FLIGHT_BOUND))


def channels_rows(
    results: dict[tuple[int, int], dict[str, Any]], latency: float
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("channels", "posts kept", "pass", "runs", "calls (target)", "resolve / full / history",
         "round trips (≈ ceil(calls/10))", "max in flight", "Telegram time (trips × latency)",
         "pass time", "peak memory", "per channel", "Redis trips", "posts JSON in Redis")
    ]  # fmt: skip
    for (count, posts), result in results.items():
        for which in ("first", "steady"):
            r = result[which]
            log = result["log"][which]
            want_calls = 2 * count if which == "steady" else 3 * count
            trips = r["round_trips"]
            rows.append(
                (
                    str(count),
                    str(posts),
                    which,
                    str(result["repeat"]),
                    f"{r['calls']:.0f} ({want_calls})",
                    f"{log['contacts.ResolveUsername']} / {log['channels.GetFullChannel']} / "
                    f"{log['messages.GetHistory']}",
                    f"{trips:.0f} ({expected_channel_trips(count, which)})",
                    f"{r['max_in_flight']:.0f}",
                    f"{r['telegram_s'] * 1000:.0f} ms ({trips * latency * 1000:.0f} ms)",
                    f"{r['pass_s'] * 1000:.0f} ms",
                    f"{r['peak_mb']:.2f} MB",
                    f"{r['peak_mb'] * 1024 / count:.0f} KB",
                    f"{r['redis_trips']:.0f}",
                    f"{result['posts_bytes'] / 1024:,.0f} KiB",
                )
            )
    return rows


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares y = a + b·x: (a, b, R²)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for _, y in points)
    ss_res = sum((y - a - b * x) ** 2 for x, y in points)
    return a, b, 1 - ss_res / ss_tot if ss_tot else 1.0


def channels_verdicts(results: dict[tuple[int, int], dict[str, Any]], latency: float) -> list[str]:
    """One line a target: what was asked, what was measured, PASS or MISS."""

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines = []
    wrong_calls = [
        f"{n} channels/{p} posts {w}: {results[n, p]['log'][w]}"
        for (n, p), result in results.items()
        for w in ("first", "steady")
        if result["log"][w]
        != Counter(
            {"channels.GetFullChannel": n, "messages.GetHistory": n}
            | ({"contacts.ResolveUsername": n} if w == "first" else {})
        )
    ]
    lines.append(
        f"{mark(not wrong_calls)} Telegram calls = 2 per channel steady (getFullChannel + "
        "getHistory), + 1 resolve per channel first, at every channel count and posts kept"
        + (": " + "; ".join(wrong_calls) if wrong_calls else "")
    )
    trips = {
        (n, p, w): (result[w]["round_trips"], expected_channel_trips(n, w))
        for (n, p), result in results.items()
        for w in ("first", "steady")
    }
    # The stand-in counts overlapping calls as one trip: when the waves of 10 drift apart a
    # pass may count fewer trips than ceil(calls/10), never take less time than that many.
    over = {k: v for k, v in trips.items() if v[0] > v[1] + 1}
    under = sorted(
        f"{n} channels/{p} posts {w}: {got:.0f}"
        for (n, p, w), (got, want) in trips.items()
        if got < want
    )
    steady = ", ".join(
        f"{n}: {got:.0f}/{want}"
        for (n, p, w), (got, want) in trips.items()
        if w == "steady" and p == 5
    )
    lines.append(
        f"{mark(not over)} critical-path round trips at most ceil(2N/10) + 1 steady, "
        f"ceil(3N/10) + 1 first (steady, N: measured/target: {steady})"
        + (f"; over: {over}" if over else "")
        + (
            f"; fewer than ceil(calls/10) ({', '.join(under)}): waves of 10 overlapping, "
            "counted as one; the Telegram time column shows the time they took"
            if under
            else ""
        )
    )
    most = {
        n: max(r[w]["max_in_flight"] for w in ("first", "steady"))
        for (n, p), r in results.items()
        if p == 5
    }
    top = max(r[w]["max_in_flight"] for r in results.values() for w in ("first", "steady"))
    lines.append(
        f"{mark(top <= IN_FLIGHT_BOUND)} requests in flight never above {IN_FLIGHT_BOUND}: "
        f"at most {top:.0f} (N: most in flight: "
        + ", ".join(f"{n}: {m:.0f}" for n, m in most.items())
        + ")"
    )
    redis_trips = {r[w]["redis_trips"] for r in results.values() for w in ("first", "steady")}
    lines.append(
        f"{mark(redis_trips == {REDIS_TRIPS_PER_PASS})} Redis round trips per pass do not grow "
        f"with channels: {', '.join(f'{t:.0f}' for t in sorted(redis_trips))} for 1 to "
        f"{max(n for n, _ in results)} channels (lock + reads, watch the lock, check it and "
        "the stored images, one MULTI/EXEC)"
    )
    # No target is set for the pass time; what it spends beyond the network is CPU between
    # waves of 10 (parsing the answers; in-process, the stand-in Telegram encoding them too).
    widest = max(n for n, _ in results)
    big = results[widest, 5]["steady"]
    one = results[1, 5]["steady"]
    cpu = {
        (n, p): (r["steady"]["telegram_s"] - r["steady"]["round_trips"] * latency) / n
        for (n, p), r in results.items()
        if n == GROWTH_CHANNELS
    }
    timeout = Settings.timeout
    lines.append(
        f"{mark(big['pass_s'] < timeout / 10)} pass time (no target; well under TG_TIMEOUT="
        f"{timeout} s and the 15-minute cadence): steady 1 channel {one['pass_s'] * 1000:.0f} ms,"
        f" {widest} channels {big['pass_s'] * 1000:.0f} ms; beyond round trips × latency, "
        f"{GROWTH_CHANNELS} channels spend "
        + ", ".join(f"{v * 1000:.1f} ms a channel keeping {p} posts" for (_, p), v in cpu.items())
        + " (CPU: parsing, and the in-process stand-in's encoding)"
    )
    # Memory: the steady pass's peak against the posts kept in all, over every run.
    points = [(n * p, r["steady"]["peak_mb"]) for (n, p), r in results.items()]
    base, per_post, r2 = fit_line(points)
    by_count = fit_line([(n, r["steady"]["peak_mb"]) for (n, p), r in results.items() if p == 5])
    by_posts = fit_line(
        [(p, r["steady"]["peak_mb"]) for (n, p), r in results.items() if n == GROWTH_CHANNELS]
    )
    per_channel = by_count[1]
    per_kept_post = by_posts[1] / GROWTH_CHANNELS
    beyond_posts = per_channel - 5 * per_kept_post
    lines.append(
        f"{mark(r2 >= 0.95)} memory grows with the posts kept: steady peak ≈ "
        f"{base:.2f} MB + {per_post * 1024:.1f} KB × posts kept in all (R² {r2:.3f} over "
        f"{len(points)} runs); from the channel series (5 posts each) "
        f"{per_channel * 1024:.0f} KB a channel, from the posts series ({GROWTH_CHANNELS} "
        f"channels) {per_kept_post * 1024:.1f} KB a kept post, so a channel costs "
        f"{beyond_posts * 1024:.0f} KB beyond its 5 posts"
    )
    return lines


def print_channels(results: dict[tuple[int, int], dict[str, Any]], latency: float) -> None:
    sample = bench_channel(0)
    print()
    print(
        f"Several channels in one pass: N channels like @itatmisis, each {len(sample.messages)} "
        f"messages, {len(group_posts(sample.messages))} posts (albums, video, poll, link card, "
        "reactions, comments, service messages), ids, usernames and texts of its own; "
        f"{latency * 1000:.0f} ms a Telegram call; TG_MEDIA_DOWNLOAD=none"
    )
    print(table(channels_rows(results, latency)))
    print(
        "calls: API calls answered (set-up left out), target 2N steady, 3N first; round trips:"
        " sequential on the critical path, target ceil(calls/10); max in flight: requests"
        " outstanding at once at the stand-in Telegram (bound 10); Telegram time: first call to"
        " last answer, against round trips × latency; pass time: the whole pass in-process,"
        " Redis and connect included (median of `runs`); peak memory: tracemalloc peak during"
        " the pass (one extra run; the stand-in Telegram's own allocations included); per"
        " channel: peak / N; posts JSON: every tg:channel:<name>:posts after the pass."
    )
    print()
    print("Against the targets:")
    for line in channels_verdicts(results, latency):
        print(f"  {line}")


def run_channels(latency: float, repeat: int, url: str) -> dict[tuple[int, int], dict[str, Any]]:
    """Every (channels, posts kept)'s results: each of CHANNEL_COUNTS keeping 5 posts, then
    GROWTH_CHANNELS keeping each of GROWTH_POSTS."""
    many = {n: [bench_channel(i) for i in range(n)] for n in CHANNEL_COUNTS}
    several = {(n, 5): channels_product(latency, repeat, url, many[n], 5) for n in CHANNEL_COUNTS}
    for posts in GROWTH_POSTS:
        if (GROWTH_CHANNELS, posts) not in several:
            several[GROWTH_CHANNELS, posts] = channels_product(
                latency, repeat, url, many[GROWTH_CHANNELS], posts
            )
    return several
