"""What changed, told to the site (issue 24 item 6): what `tg:events` costs a pass, and what
following every young post costs the getHistory answer.

    python bench/events.py [--latency 0.05] [--repeat 3]      (also a section of bench/run.py)

Events: a steady pass with TG_EVENTS_MAX=10000 and 0, for 1 channel × 100 posts and 50 × 100
(TG_POSTS_COUNT=100). Each channel holds 100 posts of every kind (text with entities, photo,
video, poll, link card, buttons); between the measured pass and the one before it, 10 posts
are published, 5 kept posts edited and 3 kept posts deleted in every channel: 18 events a
channel. Figures: Telegram calls, Redis round trips (bench/common.py's counter), the time
Redis spends in the pass's EXEC and in its XADDs (INFO commandstats), the pass's time and
its tracemalloc peak; medians of `--repeat` runs, the peak from one more traced run.

Young posts: one channel publishing 30 posts a day (one every 48 minutes) with
TG_POSTS_COUNT=5, a pass every 15 minutes for two days on a set clock (tests/clock.py):
the messages each pass's getHistory asked for and got, the bytes of that answer (the TL
object as Telegram sends it), against a page of the 30 messages the kept posts alone need
(5 × 4 + 10) at the same moments; and how many posts a day old have their views_24h.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
import redis
from pyrogram import raw

from bench.common import one_pass, table
from itam_tgstats.store.keys import EVENTS_KEY
from tests.channels import link_preview, photo, poll, post, video
from tests.clock import Clock, install
from tests.faketg import FakeChannel, FakeTelegram

CONFIGS = ((1, 100), (50, 100))
NEW, EDITED, DELETED = 10, 5, 3
T0 = 1_700_000_000  # the posts' dates: older than any series window (the events alone)
P = 1_750_000_000  # the young-post section's first pass
EVERY = 48 * 60  # 30 posts a day
QUARTER = 900
PASSES = 2 * 96


def events_channel(index: int, posts: int) -> FakeChannel:
    """@events_<index>: `posts` posts (ids 1 …), every kind of post in turn."""
    channel_id = 4_400_000_000 + index
    bold = [raw.types.MessageEntityBold(offset=0, length=4)]
    buttons = raw.types.ReplyInlineMarkup(
        rows=[
            raw.types.KeyboardButtonRow(
                buttons=[
                    raw.types.KeyboardInlineButton(
                        text="Join",
                        type=raw.types.InlineButtonTypeUrl(url="https://itam.example/j"),
                    )
                ]
            )
        ]
    )
    kinds: list[Callable[[int], dict[str, Any]]] = [
        lambda n: {"entities": bold},
        lambda n: {"media": photo(n)},
        lambda n: {"media": video(n)},
        lambda n: {"media": poll(n)},
        lambda n: {"media": link_preview(n), "reply_markup": buttons},
    ]
    messages = [
        post(channel_id, n, f"Post {n} of @events_{index:02d}", date=T0 + 60 * n,
             **kinds[n % len(kinds)](n))
        for n in range(1, posts + 1)
    ]  # fmt: skip
    return FakeChannel(
        id=channel_id, title=f"Events {index}", username=f"events_{index:02d}",
        messages=messages, participants=1000 + index, linked_chat_id=777,
    )  # fmt: skip


def change(channel: FakeChannel, posts: int) -> None:
    """NEW posts published, EDITED kept posts edited, DELETED kept posts deleted."""
    channel_id = channel.id
    for n in range(posts + 1, posts + NEW + 1):
        channel.messages.append(post(channel_id, n, f"New post {n}", date=T0 + 60 * n))
    by_id = {m.id: m for m in channel.messages}
    for n in range(posts - 9, posts - 9 + EDITED):
        by_id[n].message = f"{by_id[n].message} (edited)"
        by_id[n].edit_date = T0 + 60 * (posts + NEW)
    gone = set(range(posts - 40, posts - 40 + DELETED))
    channel.messages[:] = [m for m in channel.messages if m.id not in gone]


def redis_usec(client: redis.Redis, before: dict[str, Any], name: str) -> float:
    after = client.info("commandstats").get(f"cmdstat_{name}", {}).get("usec", 0)
    return float(after - before.get(f"cmdstat_{name}", {}).get("usec", 0))


def steady_pass(
    url: str, channels: int, posts: int, events_max: int, *, latency: float, traced: bool
) -> dict[str, float]:
    """A first and a quiet pass, then the changes, then the measured pass."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    fake = FakeTelegram()
    many = [fake.add_channel(events_channel(i, posts)) for i in range(channels)]
    env = {
        "TG_CHANNEL_USERNAME": ",".join(c.username or "" for c in many),
        "TG_POSTS_COUNT": str(posts),
        "TG_EVENTS_MAX": str(events_max),
    }
    one_pass(fake, url, env)
    one_pass(fake, url, env)
    for channel in many:
        change(channel, posts)
    written = client.xlen(EVENTS_KEY) if client.exists(EVENTS_KEY) else 0
    before = client.info("commandstats")
    fake.latency = latency
    figures = one_pass(fake, url, env, traced=traced)
    figures["exec_ms"] = redis_usec(client, before, "exec") / 1000
    figures["xadd_ms"] = redis_usec(client, before, "xadd") / 1000
    figures["events"] = (client.xlen(EVENTS_KEY) if client.exists(EVENTS_KEY) else 0) - written
    client.close()
    return figures


def run_event_costs(latency: float, repeat: int, url: str) -> dict[tuple[int, int, int], Any]:
    """(channels, posts, TG_EVENTS_MAX) → medians, and the traced peak."""
    results: dict[tuple[int, int, int], Any] = {}
    for channels, posts in CONFIGS:
        for events_max in (10_000, 0):
            runs = [
                steady_pass(url, channels, posts, events_max, latency=latency, traced=False)
                for _ in range(repeat)
            ]
            median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            traced = steady_pass(url, channels, posts, events_max, latency=latency, traced=True)
            results[channels, posts, events_max] = {**median, "peak_mb": traced["peak_mb"]}
    return results


# --- young posts ---------------------------------------------------------------------------------


def run_young(url: str) -> dict[str, Any]:
    """Two days of passes every 15 minutes over a channel posting 30 times a day."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    busy = FakeChannel(id=4_500_000_001, title="Busy", username="busy", participants=2000)
    fake = FakeTelegram()
    fake.add_channel(busy)
    real = fake.handlers[raw.functions.messages.GetHistory]
    # (limit, messages, bytes) of each answer, and of a page of 30 at the same moment
    answers: list[tuple[int, int, int, int, int]] = []

    def measured(query: Any, key: bytes) -> Any:
        answer = real(query, key)
        kept_only = real(
            raw.functions.messages.GetHistory(
                peer=query.peer, offset_id=0, offset_date=0, add_offset=0, limit=30,
                max_id=0, min_id=0, hash=0,
            ),
            key,
        )  # fmt: skip
        answers.append(
            (
                query.limit,
                len(answer.messages),
                len(answer.write()),
                len(kept_only.messages),
                len(kept_only.write()),
            )
        )
        return answer

    fake.handlers[raw.functions.messages.GetHistory] = measured
    env = {"TG_CHANNEL_USERNAME": "busy", "TG_POSTS_COUNT": "5"}
    calls: list[float] = []
    with pytest.MonkeyPatch.context() as patch:
        clock = install(patch, Clock(P))
        for j in range(1, PASSES + 1):
            clock.now = now = P + j * QUARTER
            while len(busy.messages) * EVERY <= j * QUARTER:
                n = len(busy.messages) + 1
                text = f"Busy post {n}: " + "news of the day, " * 12  # about 200 characters
                busy.messages.append(
                    post(busy.id, n, text, date=P + (n - 1) * EVERY, media=photo(n))
                )
            for message in busy.messages:
                message.views = (now - message.date) // 60
            calls.append(one_pass(fake, url, env)["calls"])
    entries = {
        int(k): json.loads(v)
        for k, v in client.hgetall("tg:channel:busy:post_history_last").items()
    }
    day_old = [m.id for m in busy.messages if m.date + 86_400 <= P + PASSES * QUARTER]
    stats = json.loads(client.get("tg:channel:busy:stats") or "{}")
    client.close()
    steady = answers[96:]  # the second day: a day of posts young, the window at its width
    return {
        "calls": calls[1:],
        "limit": [a[0] for a in steady],
        "messages": [a[1] for a in steady],
        "bytes": [a[2] for a in steady],
        "kept_messages": [a[3] for a in steady],
        "kept_bytes": [a[4] for a in steady],
        "day_old": len(day_old),
        "known": sum(1 for i in day_old if entries.get(i, {}).get("views_24h") is not None),
        "err24": stats.get("err24_percent"),
    }


def run_events(latency: float, repeat: int, url: str) -> dict[str, Any]:
    return {"costs": run_event_costs(latency, repeat, url), "young": run_young(url)}


def print_events(results: dict[str, Any], latency: float, repeat: int) -> None:
    costs = results["costs"]
    print()
    print(
        f"Events (tg:events): a steady pass with 10 new, 5 edited and 3 deleted posts a channel "
        f"(TG_POSTS_COUNT=100); {latency * 1000:.0f} ms a Telegram call; medians of {repeat}"
    )
    rows: list[tuple[str, ...]] = [
        ("channels × posts", "TG_EVENTS_MAX", "events", "Telegram calls", "Redis round trips",
         "Redis: EXEC", "Redis: XADD", "pass time", "peak memory")
    ]  # fmt: skip
    for channels, posts in CONFIGS:
        for events_max in (10_000, 0):
            r = costs[channels, posts, events_max]
            rows.append(
                (
                    f"{channels} × {posts}",
                    str(events_max),
                    f"{r['events']:.0f}",
                    f"{r['calls']:.0f}",
                    f"{r['redis_trips']:.0f}",
                    f"{r['exec_ms']:.2f} ms",
                    f"{r['xadd_ms']:.2f} ms",
                    f"{r['pass_s'] * 1000:.0f} ms",
                    f"{r['peak_mb']:.2f} MB",
                )
            )
    print(table(rows))
    print("Against the targets:")
    for channels, posts in CONFIGS:
        on, off = costs[channels, posts, 10_000], costs[channels, posts, 0]
        mark = "PASS" if on["calls"] == off["calls"] else "over"
        trips = "PASS" if on["redis_trips"] == off["redis_trips"] else "over"
        print(
            f"  {mark} +{on['calls'] - off['calls']:.0f} Telegram calls, {trips} "
            f"+{on['redis_trips'] - off['redis_trips']:.0f} Redis round trips at {channels} × "
            f"{posts}; EXEC {on['exec_ms'] - off['exec_ms']:+.2f} ms, peak memory "
            f"{(on['peak_mb'] - off['peak_mb']) * 1024:+.0f} KB with events on"
        )
    one = costs[1, 100, 10_000]
    print(
        f"  {'PASS' if one['exec_ms'] < 5 else 'over'} Redis time of a pass at 1 × 100 with "
        f"events on: EXEC {one['exec_ms']:.2f} ms (< 5 ms), of which XADD {one['xadd_ms']:.2f} ms"
    )
    young = results["young"]
    print()
    print(
        "Young posts: a channel posting 30 times a day (a photo and 200 characters each), "
        "TG_POSTS_COUNT=5, a pass every 15 minutes for two days; the answers of the second "
        f"day's {len(young['limit'])} passes"
    )

    def spread(values: list[int]) -> str:
        return f"{statistics.median(values):,.0f} (max {max(values):,})"

    rows = [
        ("getHistory", "messages asked", "messages read", "answer bytes"),
        ("with the young posts (this version)", spread(young["limit"]),
         spread(young["messages"]), spread(young["bytes"])),
        ("the kept posts alone (5 × 4 + 10)", "30", spread(young["kept_messages"]),
         spread(young["kept_bytes"])),
    ]  # fmt: skip
    print(table(rows))
    calls_ok = all(c == 2 for c in young["calls"])
    print(
        f"  {'PASS' if calls_ok else 'over'} {max(young['calls']):.0f} Telegram calls a steady "
        f"pass (all {len(young['calls'])}); views_24h known for {young['known']} of the "
        f"{young['day_old']} posts a day old "
        f"(kept posts alone: none of them, a post is kept 4 hours); ERR24 {young['err24']} %"
    )


def main() -> None:
    from tests.conftest import RedisServer  # only when run on its own

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Telegram call")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            results = run_events(args.latency, args.repeat, server.url)
        finally:
            server.stop()
    print_events(results, args.latency, args.repeat)


if __name__ == "__main__":
    main()
