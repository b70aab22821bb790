"""Passes as a process: SIGINT/SIGTERM become a clean stop, and `--loop` repeats them."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelsFailed, Interrupted, TgStatsError

log = logging.getLogger(__name__)

# --loop gives up after this many failed passes in a row (the original worker's rule).
LOOP_MAX_FAILURES = 5


class Interruption:
    """Which signal, if any, stopped the pass."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def error(self) -> Interrupted:
        """The Interrupted error for the signal received."""
        sig = self.signal or signal.SIGINT
        return Interrupted(sig.name, 128 + int(sig))


async def collect_loop(
    settings: Settings,
    run_pass: Callable[[], Awaitable[bool]],
    *,
    max_failures: int = LOOP_MAX_FAILURES,
) -> None:
    """A pass every TG_UPDATE_INTERVAL; raise the last error after `max_failures` in a row.

    Only passes in which every channel failed count: one that wrote some channels does not.
    """
    failures = 0
    while True:
        try:
            await run_pass()
        except (Interrupted, asyncio.CancelledError):
            raise
        except ChannelsFailed as e:
            if not e.partial:
                failures += 1
            else:  # the channels that could be read were written: not a failed pass here
                failures = 0
            log.error("pass failed (%s in a row): %s", failures, e)
            if failures >= max_failures:
                raise
        except TgStatsError as e:
            failures += 1
            log.error("pass failed (%s in a row): %s", failures, e)
            if failures >= max_failures or e.exit_code in (2, 3):
                raise
        else:
            failures = 0
        await wait_interval(settings.update_interval)


async def wait_interval(seconds: float) -> None:
    """The pause between --loop passes (a seam for tests)."""
    await asyncio.sleep(seconds)


def run_with_signals(main: Callable[[Interruption], Awaitable[Any]]) -> Any:
    """asyncio.run(main) where SIGINT/SIGTERM cancel it and become Interrupted."""
    interruption = Interruption()

    async def runner() -> Any:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if interruption.signal is None:
                log.warning("received %s: stopping the pass", sig.name)
                interruption.signal = sig
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await main(interruption)
        except asyncio.CancelledError:
            if interruption.signal is not None:
                raise interruption.error() from None
            raise
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())
