"""The health check and `show` on a big deployment (issue 23 item 11).

    python bench/health.py [--repeat 3]          (also a section of bench/run.py)

(a) 50 channels x 100 kept posts, each post 2,000 characters of text with 100 entities
(bold, italic, code, links, mentions) rendered by the real pipeline: one pass over a stand-in
channel writes its 100 posts, and that value is copied to every channel's keys, with their
stats (collected a minute ago), a day of history (a point every 15 minutes) and a day of
series. `tgstats show --check` (the container's health check, every 30 s) and `tgstats show`
run as processes: wall time and peak RSS, medians of `--repeat` runs.
(b) The same deployment with one planted 200 MB value as the first channel's posts (a JSON
array of 20,000 posts of 10 KB): `tgstats show --check` and `tgstats show` (one run each).

Needs the test set-up (`make setup`, redis-server installed). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from pyrogram import raw

from bench.common import LAUNCHER, table
from itam_tgstats.store.keys import LAST_UPDATE_KEY, POSTS_KEY, STATS_KEY, STATUS_KEY, channel_keys
from tests.channels import post
from tests.conftest import RedisServer
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass

REPO = Path(__file__).resolve().parent.parent
CHANNELS = 50
POSTS = 100
ENTITIES = 100
PLANTED_MB = 200
NAMES = [f"itam_health_{i:02d}" for i in range(CHANNELS)]
ENTITY_KINDS = (
    raw.types.MessageEntityBold,
    raw.types.MessageEntityItalic,
    raw.types.MessageEntityCode,
    raw.types.MessageEntityUnderline,
)


def entity_post(channel_id: int, msg_id: int) -> Any:
    """A post of 2,000 characters with ENTITIES entities of every common kind."""
    text = " ".join(f"word{i:04d} https://e.example/{i} @itam_bot" for i in range(60))[:2000]
    entities: list[Any] = []
    for i in range(ENTITIES):
        offset, length = i * 19, 12
        if i % 5 == 4:
            entities.append(
                raw.types.MessageEntityTextUrl(
                    offset=offset, length=length, url=f"https://e.example/{msg_id}/{i}"
                )
            )
        else:
            entities.append(ENTITY_KINDS[i % 4](offset=offset, length=length))
    return post(channel_id, msg_id, text, entities=entities)


def channel_posts(url: str) -> str:
    """The stored `posts` value of one channel of POSTS such posts, by one real pass."""
    channel_id = 4_200_000_000
    fake = FakeTelegram()
    fake.add_channel(
        FakeChannel(
            id=channel_id,
            title="ITAM health",
            username="itam_health",
            messages=[entity_post(channel_id, i) for i in range(1, POSTS + 1)],
        )
    )
    settings = make_settings(
        fake, url, TG_CHANNEL_USERNAME="itam_health", TG_POSTS_COUNT=str(POSTS)
    )
    run_pass(settings, fake)
    value = redis.Redis.from_url(url).get(channel_keys("itam_health").posts)
    assert value is not None
    return value.decode()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")


def deploy(url: str, posts: str) -> None:
    """CHANNELS channels' keys, as a pass of this version leaves them, read a minute ago."""
    client = redis.Redis.from_url(url)
    now = int(time.time())
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for index, name in enumerate(NAMES):
        stats = {"channel_id": -1004200000000 - index, "username": name, "title": name,
                 "subscribers_count": 1000 + index, "posts_count": 5000, "last_post_date":
                 iso(now - 3600), "collected_at": iso(now - 60), "err24_percent": None}  # fmt: skip
        keys = channel_keys(name)
        pipe.set(keys.stats, json.dumps(stats))
        pipe.set(keys.posts, posts)
        for q in range(96):
            point = {"t": now - q * 900, "subscribers": 1000 + index, "posts": 5000}
            pipe.zadd(keys.history, {json.dumps(point, separators=(",", ":")): point["t"]})
        series = [
            {"t": now - q * 900, "views": 10 * q, "reactions": q, "forwards": 0, "comments": 0}
            for q in range(96, 0, -1)
        ]
        text = json.dumps(series, separators=(",", ":"))
        pipe.hset(keys.post_history, mapping={str(p): text for p in range(1, POSTS + 1)})
        if index == 0:
            pipe.set(STATS_KEY, json.dumps(stats))
            pipe.set(POSTS_KEY, posts)
            pipe.set(LAST_UPDATE_KEY, stats["collected_at"])
    status = {"ok": True, "last_success_at": iso(now - 60), "last_failure_at": None,
              "last_error": None, "exit_code": 0, "consecutive_failures": 0,
              "retry_after": None}  # fmt: skip
    pipe.set(STATUS_KEY, json.dumps(status))
    pipe.execute()
    client.close()


def planted(url: str, megabytes: int) -> str:
    """A JSON array of posts of `megabytes` MB as the first channel's posts, the ones `show`
    details (written in pieces); the key."""
    key = channel_keys(NAMES[0]).posts
    client = redis.Redis.from_url(url)
    one = json.dumps({"id": 1, "text": "x" * 10_000, "date": iso(time.time()), "views": 1})
    chunk = ",".join([one] * 100)  # about 1 MB
    client.set(key, "[" + chunk)
    for _ in range(megabytes - 1):
        client.append(key, "," + chunk)
    client.append(key, "]")
    client.close()
    return key


def process(args: list[str], url: str, cwd: str, repeat: int) -> tuple[float, float, int]:
    """Median wall time (s), median peak RSS (MB) and the exit code of `tgstats <args>`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TG_")}
    env.update({"REDIS_URL": url, "TG_CHANNEL_USERNAME": ",".join(NAMES), "COLUMNS": "200",
                "PYTHONPATH": str(REPO)})  # fmt: skip
    script = str(Path(sys.executable).with_name("tgstats"))
    times, peaks, code = [], [], 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", LAUNCHER, script, *args],
            env=env, cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        peaks.append(int(out[1]) / 1024)
        code = int(out[2])
    return statistics.median(times), statistics.median(peaks), code


def run_health(url: str, repeat: int) -> dict[str, Any]:
    """Every figure of this section: (a) and (b), each command's (seconds, MB, exit)."""
    posts = channel_posts(url)
    deploy(url, posts)
    client = redis.Redis.from_url(url)
    memory = client.info("memory")["used_memory"]
    client.close()
    with tempfile.TemporaryDirectory() as cwd:
        results: dict[str, Any] = {
            "posts_bytes": len(posts.encode()),
            "redis_mb": memory / 1e6,
            "big": {
                "show --check": process(["show", "--check"], url, cwd, repeat),
                "show": process(["show"], url, cwd, repeat),
            },
        }
        planted(url, PLANTED_MB)
        results["planted"] = {
            "show --check": process(["show", "--check"], url, cwd, 1),
            "show": process(["show"], url, cwd, 1),
        }
    return results


def print_health(results: dict[str, Any]) -> None:
    print()
    print(
        f"The health check and show: {CHANNELS} channels x {POSTS} posts of 2,000 characters "
        f"with {ENTITIES} entities each (one channel's posts: "
        f"{results['posts_bytes'] / 1e6:.2f} MB of JSON; Redis holds {results['redis_mb']:.0f} "
        f"MB), then with a planted {PLANTED_MB} MB value as the first channel's posts"
    )
    rows = [("command", "deployment", "time", "peak RSS", "exit")]
    for label, key in (("50 x 100", "big"), (f"+ {PLANTED_MB} MB planted", "planted")):
        for command, (seconds, mb, code) in results[key].items():
            rows.append(
                (f"tgstats {command}", label, f"{seconds:.2f} s", f"{mb:.0f} MB", str(code))
            )
    print(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            results = run_health(server.url, args.repeat)
        finally:
            server.stop()
    print_health(results)


if __name__ == "__main__":
    main()
