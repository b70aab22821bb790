"""Soak: 300 passes with random faults and a concurrent reader, as the Go API reads."""

from __future__ import annotations

import json
import os
import random
import resource
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from itam_tgstats.errors import TgStatsError
from itam_tgstats.store.keys import LAST_UPDATE_KEY, LOCK_KEY, POSTS_KEY, STATS_KEY, STATUS_KEY
from tests.conftest import RedisServer
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass, snapshot_bytes

PASSES = 300
# fault → weight; None is a clean pass.
FAULTS: dict[str | None, int] = {
    None: 70,
    "flood_wait_short": 5,  # each sleeps 1 s, as Telegram asks
    "flood_wait_long": 4,
    "disconnect": 4,  # each waits out TG_TIMEOUT (2 s)
    "revoked": 6,
    "redis_restart": 6,
    "redis_killed_mid_pass": 5,
}


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def rss_mb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Reader(threading.Thread):
    """Polls the three keys with one MGET, as fast as it can; counts mixed snapshots."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.reads = 0
        self.mixed = 0
        self.unavailable = 0

    def run(self) -> None:
        client = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2)
        while not self.stop.is_set():
            try:
                stats, posts, updated = client.mget(STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY)
            except redis.RedisError:
                self.unavailable += 1
                time.sleep(0.01)
                continue
            if stats is None:
                continue
            self.reads += 1
            time.sleep(0.0005)  # poll hard, but leave the passes some of the GIL
            s, p = json.loads(stats), json.loads(posts)
            # each pass sets subscribers and the newest post's views to the same marker
            if s["subscribers_count"] != p[0]["views"] or s["collected_at"] != updated:
                self.mixed += 1
        client.close()


@pytest.mark.slow
def test_soak(
    fake_tg: FakeTelegram, persistent_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(20261123)
    url = persistent_redis.url
    settings = make_settings(fake_tg, url, TG_TIMEOUT="2", TG_FLOOD_WAIT_MAX="1")
    channel = fake_tg.channels[0]
    newest = max(channel.messages, key=lambda m: m.id)
    client = redis.Redis.from_url(url, decode_responses=True)
    reader = Reader(url)
    reader.start()
    injected: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    expected_failures = 0
    good: dict[str, Any] | None = None
    lost = 0
    wrong_status = 0
    baseline: tuple[int, float] | None = None
    started = time.monotonic()

    def restart_redis() -> None:
        persistent_redis.kill()
        persistent_redis.start()

    try:
        for n in range(PASSES):
            marker = 100_000 + n
            channel.participants = newest.views = marker
            fault = rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
            injected[fault or "none"] += 1
            recorded = True  # whether this pass can write tg:status
            if fault == "flood_wait_short":
                fake_tg.fail("messages.GetHistory", "FLOOD_WAIT_1")
            elif fault == "flood_wait_long":
                fake_tg.fail("channels.GetFullChannel", "FLOOD_WAIT_3600")
            elif fault == "disconnect":
                fake_tg.drop_on.add("messages.GetHistory")
            elif fault == "revoked":
                fake_tg.fail("channels.GetFullChannel", "AUTH_KEY_UNREGISTERED")
            elif fault == "redis_restart":
                restart_redis()
            elif fault == "redis_killed_mid_pass":
                fake_tg.latency = 0.3
                threading.Timer(0.15, persistent_redis.kill).start()
                recorded = False
            try:
                ok = run_pass(settings, fake_tg)
                assert ok, "no other pass runs: the lock is always free"
                outcomes["ok"] += 1
            except TgStatsError as e:
                ok = False
                outcomes[f"exit {e.exit_code}"] += 1
            fake_tg.latency = 0
            fake_tg.failures.clear()
            fake_tg.drop_on.clear()
            if persistent_redis.process is None:
                persistent_redis.start()
                # The killed pass's lock outlives it (TG_TIMEOUT + 30 s); let that time pass.
                client.delete(LOCK_KEY)

            expected_failures = 0 if ok else expected_failures + (1 if recorded else 0)
            status = json.loads(client.get(STATUS_KEY) or "{}")
            if status.get("consecutive_failures") != expected_failures:
                wrong_status += 1
            if fault == "flood_wait_long" and not ok:
                assert status["retry_after"] is not None
                # The clock moves past retry_after before the next pass.
                status["retry_after"] = "2000-01-01T00:00:00+00:00"
                client.set(STATUS_KEY, json.dumps(status))
            now = snapshot_bytes(client)
            if ok:
                stats = json.loads(client.get(STATS_KEY))
                assert stats["subscribers_count"] == marker
                good = now
            elif good is not None and now != good:
                lost += 1
            if n == 20:
                baseline = (open_fds(), rss_mb())
    finally:
        reader.stop.set()
        reader.join(10)
        client.close()

    assert baseline is not None
    fds, rss = open_fds(), rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with capsys.disabled():
        print(
            f"\nsoak: {PASSES} passes in {time.monotonic() - started:.1f} s; "
            f"faults injected {dict(sorted(injected.items()))}; "
            f"outcomes {dict(sorted(outcomes.items()))}; "
            f"reader {reader.reads} reads, {reader.mixed} mixed, "
            f"{reader.unavailable} while Redis was down; "
            f"lost snapshots {lost}; wrong consecutive_failures {wrong_status}; "
            f"open fds {baseline[0]} -> {fds}; RSS {baseline[1]:.1f} -> {rss:.1f} MB; "
            f"peak RSS {peak:.1f} MB"
        )
    assert outcomes["exit 3"] == injected["revoked"]
    assert outcomes["exit 4"] == injected["disconnect"] + injected["flood_wait_long"]
    assert outcomes["exit 5"] == injected["redis_killed_mid_pass"]
    assert reader.reads > 1000
    assert reader.mixed == 0
    assert lost == 0
    assert wrong_status == 0
    assert fds <= baseline[0] + 2
    assert rss - baseline[1] < 25
