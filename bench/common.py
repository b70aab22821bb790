"""What the sections share: Redis round-trip counter, one timed pass, medians, tables."""

from __future__ import annotations

import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection

from itam_tgstats.collect import collect_once
from itam_tgstats.models import MediaFile
from itam_tgstats.store import Store
from itam_tgstats.telegram.client import TelegramSource
from tests.faketg import FakeTelegram
from tests.helpers import make_settings

# Every Redis command redis-py sends is counted: patched once, when this module is first
# imported (before any section runs); `one_pass` resets and reads the count.
REDIS_TRIPS = 0
# What a pass costs Redis: take the lock and read (peers, status, stored posts and stats,
# last points), WATCH the lock, check it and the stored images, one MULTI/EXEC.
REDIS_TRIPS_PER_PASS = 4
_send = AbstractConnection.send_packed_command


async def _counting_send(self: Any, command: Any, check_health: bool = True) -> None:
    global REDIS_TRIPS  # noqa: PLW0603 - a benchmark's counter
    REDIS_TRIPS += 1
    await _send(self, command, check_health)


AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]


class TimedSource:
    """The real source, timing `fetch` (the pass after the client is connected) and
    `download` (the images of the pass; 0 when nothing is downloaded)."""

    last_fetch = 0.0
    last_download = 0.0

    def __init__(self, settings: Any, fake: FakeTelegram) -> None:
        self.inner = TelegramSource(settings, protocol_factory=fake.protocol_factory)
        self.resolved = self.inner.resolved

    @property
    def admin_stats_at(self) -> dict[str, float]:
        return self.inner.admin_stats_at

    @admin_stats_at.setter
    def admin_stats_at(self, due: dict[str, float]) -> None:
        self.inner.admin_stats_at = due

    async def __aenter__(self) -> TimedSource:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)

    async def fetch(self, *args: Any) -> Any:
        started = time.perf_counter()
        result = await self.inner.fetch(*args)
        TimedSource.last_fetch = time.perf_counter() - started
        return result

    async def download(self, files: Sequence[MediaFile], **kwargs: Any) -> dict[str, bytes]:
        started = time.perf_counter()
        result = await self.inner.download(files, **kwargs)
        TimedSource.last_download = time.perf_counter() - started
        return result


def one_pass(
    fake: FakeTelegram, url: str, env: dict[str, str], *, traced: bool = False
) -> dict[str, float]:
    """One product pass; its figures. `traced`: also the tracemalloc peak (slows the pass)."""
    global REDIS_TRIPS  # noqa: PLW0603
    settings = make_settings(fake, url, **env)
    fake.calls.clear()
    fake.dc_calls.clear()
    fake.timeline.clear()
    fake.dc_timeline.clear()
    fake.max_in_flight = 0
    REDIS_TRIPS = 0
    TimedSource.last_download = 0.0

    async def main() -> None:
        store = Store(url)
        try:
            await collect_once(settings, store, lambda s: TimedSource(s, fake))
        finally:
            await store.aclose()

    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        asyncio.run(main())
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
    return {
        "calls": len(fake.api_calls),
        "round_trips": fake.round_trips(),
        "fetch_s": TimedSource.last_fetch,
        "download_s": TimedSource.last_download,
        "pass_s": elapsed,
        "redis_trips": REDIS_TRIPS,
        "peak_mb": peak / 2**20,
        "max_in_flight": fake.max_in_flight,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# A small launcher times the command and reads its own child's rusage: the bench process is
# large, and a child forked (or vforked) from it would count the bench's memory as its own.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""
