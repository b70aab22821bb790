"""Benchmark: Telegram calls, round trips, pass time, Redis round trips, process start-up.

    python bench/run.py [--latency 0.05] [--repeat 5]        (or: make bench)

Runs against the stand-in Telegram (tests/faketg.py) with the given latency per call and a
redis-server of its own; every figure is the median of `--repeat` runs. Needs the test
set-up (`make setup`, redis-server installed). Not part of the test suite.

The second table is TG_MEDIA_DOWNLOAD=none/small/large for 5 and 100 kept posts of a channel
whose every post carries images (`image_channel`), first pass (cold Redis: every image is
downloaded) and steady pass (nothing new); the call log of each pass follows it.

The third table is several channels in one pass (TG_CHANNEL_USERNAME="a,b,..."): 1, 5, 20
and 50 channels of realistic posts (`bench_channel`), first and steady pass, then 20 channels
keeping 5, 20 and 50 posts each: calls, round trips, requests in flight, time, memory, Redis.

The fourth table is the renderer's cost (bench/render.py): text and 100, 1,000 and 20,000
entities, nested and crossing, → `text_html`: time and HTML size.

The fifth is posts over time (bench/series.py): the series' size after 7 days of passes
every 15 minutes (5 and 100 posts kept, and 50 channels × 100), and a steady pass's calls,
Redis round trips, memory and Redis time with TG_POST_HISTORY_DAYS=7 and 0.

The sixth is admin statistics (bench/admin_stats.py): a steady pass with them off, on but not
due, and due (kept at home and on another DC), and a first pass that reads them: calls, round
trips, time, Redis round trips; the stored value's size.

The seventh is what changed, told to the site (bench/events.py): a steady pass with
TG_EVENTS_MAX=10000 and 0 (1 and 50 channels × 100 posts, 10 new, 5 edited and 3 deleted a
channel), and the getHistory answer of a channel posting 30 times a day with every young
post followed.

The eighth is the health check and `show` on 50 channels x 100 posts, and with a planted 200 MB
value (bench/health.py): time and peak memory of each process.

The sections live in bench/media.py, bench/channels.py, bench/render.py, bench/series.py,
bench/admin_stats.py, bench/events.py and bench/health.py; bench/common.py holds what they
share (the Redis round-trip counter among it); this script runs them and the first table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from bench.admin_stats import print_admin_stats, run_admin_stats  # noqa: E402
from bench.baseline import baseline_pass, teach_high_level_calls  # noqa: E402
from bench.channels import print_channels, run_channels  # noqa: E402
from bench.common import (  # noqa: E402
    LAUNCHER,
    REDIS_TRIPS_PER_PASS,
    median_of,
    one_pass,
    table,
)
from bench.events import print_events, run_events  # noqa: E402
from bench.health import print_health, run_health  # noqa: E402
from bench.media import print_media, run_media  # noqa: E402
from bench.render import print_render, run_render  # noqa: E402
from bench.series import print_series, run_series  # noqa: E402
from tests.channels import post, rich_channel  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402
from tests.faketg import FakeChannel, FakeTelegram  # noqa: E402


def product(
    latency: float, repeat: int, url: str, channel: FakeChannel, **env: str
) -> dict[str, Any]:
    """First pass (resolving) and steady state, medians over `repeat`."""
    firsts, steadies = [], []
    for _ in range(repeat):
        redis.Redis.from_url(url).flushdb()
        fake = FakeTelegram()
        fake.add_channel(channel)
        fake.latency = latency
        firsts.append(one_pass(fake, url, env))
        steadies.append(one_pass(fake, url, env))
    return {"first": median_of(firsts), "steady": median_of(steadies)}


def baseline(latency: float, repeat: int, posts: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        fake = FakeTelegram()
        fake.add_channel(rich_channel())
        teach_high_level_calls(fake)
        fake.latency = latency
        started = time.perf_counter()
        asyncio.run(baseline_pass(fake, fake.session_string(), "itatmisis", posts))
        runs.append(
            {
                "calls": len(fake.api_calls),
                "round_trips": fake.round_trips(),
                "pass_s": time.perf_counter() - started,
            }
        )
    return median_of(runs)


def process(
    command: list[str], env: dict[str, str], cwd: Path, repeat: int
) -> tuple[float, float, int]:
    """Median wall time (s), median peak RSS (MB) and the exit code of a whole process."""
    times, peaks, code = [], [], 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *command],
            env=env, cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        peaks.append(int(out[1]) / 1024)
        code = int(out[2])
    return statistics.median(times), statistics.median(peaks), code


def big_channel(messages: int) -> FakeChannel:
    c = rich_channel()
    c.messages = [post(c.id, i, f"post {i}") for i in range(1, messages + 1)]
    return c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per Telegram call")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lat, rep = args.latency, args.repeat
    ms: Callable[[float], str] = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            url = server.url
            p5 = product(lat, rep, url, rich_channel())
            p20 = product(lat, rep, url, rich_channel(), TG_POSTS_COUNT="20")
            p100 = product(lat, rep, url, big_channel(10_000), TG_POSTS_COUNT="100")
            big5 = product(lat, rep, url, big_channel(10_000))
            base = baseline(lat, rep, 5)
            procs = processes(url, tmp, rep)
            images, media, expected = run_media(lat, rep, url)
            several = run_channels(lat, rep, url)
            series = run_series(lat, url)
            admin = run_admin_stats(lat, rep, url)
            events = run_events(lat, min(rep, 3), url)
            health = run_health(url, rep)
        finally:
            server.stop()

    rows = [("figure", "product", "target", "baseline (high-level Pyrogram)")]
    rows.append(
        (
            "Telegram calls, first pass (5 posts)",
            f"{p5['first']['calls']:.0f}",
            "3",
            f"{base['calls']:.0f} ({base['calls'] / p5['first']['calls']:.1f}x)",
        )
    )
    rows.append(
        (
            "Telegram calls, steady state (5 posts)",
            f"{p5['steady']['calls']:.0f}",
            "2",
            f"{base['calls']:.0f} ({base['calls'] / p5['steady']['calls']:.1f}x)",
        )
    )
    rows.append(
        (
            "Telegram calls, first / steady (20 posts)",
            f"{p20['first']['calls']:.0f} / {p20['steady']['calls']:.0f}",
            "3 / 2",
            "",
        )
    )
    rows.append(
        (
            "Round trips on the critical path, steady",
            f"{p5['steady']['round_trips']:.0f}",
            "1",
            f"{base['round_trips']:.0f}",
        )
    )
    rows.append(
        (
            f"Pass after connect, {ms(lat)} latency, steady",
            ms(p5["steady"]["fetch_s"]),
            f"< {ms(2 * lat + 0.3)}",
            "",
        )
    )
    rows.append(
        (
            "Whole pass in-process (connect included), steady",
            ms(p5["steady"]["pass_s"]),
            "",
            f"{ms(base['pass_s'])} ({base['pass_s'] / p5['steady']['pass_s']:.1f}x)",
        )
    )
    rows.append(
        (
            "Redis round trips per pass, first / steady",
            f"{p5['first']['redis_trips']:.0f} / {p5['steady']['redis_trips']:.0f}",
            f"{REDIS_TRIPS_PER_PASS}",
            "",
        )
    )
    rows.append(
        (
            "10,000-message channel, 5 posts: calls / pass after connect",
            f"{big5['steady']['calls']:.0f} / {ms(big5['steady']['fetch_s'])}",
            "as small",
            "",
        )
    )
    rows.append(
        (
            "10,000-message channel, 100 posts: calls / pass after connect",
            f"{p100['steady']['calls']:.0f} / {ms(p100['steady']['fetch_s'])}",
            "",
            "",
        )
    )
    for name, (wall, peak, code) in procs.items():
        target = {"tgstats collect --once": f"< {ms(1.5 + lat * 4)}, < 90 MB"}.get(
            name, "< 300 ms, < 40 MB"
        )
        figure = f"{ms(wall)}, {peak:.0f} MB"
        rows.append((f"process: {name} (exit {code})", figure, target, ""))
    python = sys.version.split()[0]
    print(f"latency {ms(lat)} per Telegram call; medians of {rep} runs; Python {python}")
    print(table(rows))
    print_media(images, media, expected)
    print_channels(several, lat)
    print_render(run_render(3), 3)
    print_series(series)
    print_admin_stats(admin)
    print_events(events, lat, min(rep, 3))
    print_health(health)


def processes(url: str, tmp: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    fake = FakeTelegram()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update({"TG_API_ID": "12345", "TG_API_HASH": "0123456789abcdef0123456789abcdef",
                "TG_SESSION_STRING": fake.session_string(), "REDIS_URL": url,
                "PYTHONPATH": str(REPO), "FAKE_TG_LATENCY": "0.05"})  # fmt: skip
    script = str(Path(sys.executable).with_name("tgstats"))
    cwd = Path(tmp)
    return {
        # the collect process imports the stand-in Telegram (tests/) in place of the network
        "tgstats collect --once": process(
            [sys.executable, "-m", "tests.fake_tgstats", "collect", "--once"], env, cwd, repeat
        ),
        "tgstats show": process([script, "show"], env, cwd, repeat),
        "tgstats show --check": process([script, "show", "--check"], env, cwd, repeat),
        "tgstats --help": process([script, "--help"], env, cwd, repeat),
    }


if __name__ == "__main__":
    main()
