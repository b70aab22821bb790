"""A clock the tests set: whole passes run at known times, hours or days apart.

Every `time.time()` the package's pass makes (collect, telegram, status, store) reads the
clock; the stand-in Telegram, Pyrogram and asyncio keep the real time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from itam_tgstats import collect, store
from itam_tgstats.store import status
from itam_tgstats.telegram import client as telegram

# 2025-06-15T12:00:00+00:00: a round time, after every post of the stand-in channels.
T0 = 1_750_000_000
DAY = 86_400


class Clock:
    """`time()` returns `now`, then moves it on by `tick` seconds (0: a stopped clock)."""

    def __init__(self, now: float = T0, tick: float = 0) -> None:
        self.now = now
        self.tick = tick

    def time(self) -> float:
        value = self.now
        self.now += self.tick
        return value

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class _TimeModule:
    """The `time` module, but for `time()`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.time()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Clock:
    """Make the package's passes read `clock`."""
    for module in (collect, telegram, status, store):
        if getattr(module, "time", None) is time:
            monkeypatch.setattr(module, "time", _TimeModule(clock))
    return clock
