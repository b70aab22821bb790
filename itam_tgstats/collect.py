"""One collection pass: lock, fetch from Telegram, write one consistent snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from itam_tgstats.config import Settings
from itam_tgstats.errors import Interrupted, StoreError, TelegramError, TgStatsError
from itam_tgstats.models import ChannelSnapshot, MediaFile, ResolvedChannel, iso_utc
from itam_tgstats.store import PassStart, Store, next_status, peer_key

log = logging.getLogger(__name__)

# Seconds a lock outlives TG_TIMEOUT, so a crashed holder's lock expires on its own.
LOCK_GRACE = 30
# --loop gives up after this many failed passes in a row (the original worker's rule).
LOOP_MAX_FAILURES = 5


class FetchResultLike(Protocol):
    """What a source's `fetch` returns (see telegram.FetchResult)."""

    snapshot: ChannelSnapshot
    channel: ResolvedChannel
    resolved: bool


class ChannelSource(Protocol):
    """Reads the channel: telegram.TelegramSource, or anything shaped like it."""

    async def fetch(self, username: str, cached: ResolvedChannel | None) -> FetchResultLike:
        """One snapshot of the channel."""
        ...

    async def download(self, files: Sequence[MediaFile]) -> dict[str, bytes]:
        """The files' bytes by key; failed ones left out."""
        ...


SourceFactory = Callable[[Settings], AbstractAsyncContextManager[ChannelSource]]


def default_source_factory(settings: Settings) -> AbstractAsyncContextManager[ChannelSource]:
    """The real Telegram source (imports Pyrogram only now)."""
    from itam_tgstats.telegram import TelegramSource  # noqa: PLC0415 - keeps `show` light

    return TelegramSource(settings)  # type: ignore[return-value]


class Interruption:
    """Which signal, if any, stopped the pass."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    def error(self) -> Interrupted:
        """The Interrupted error for the signal received."""
        sig = self.signal or signal.SIGINT
        return Interrupted(sig.name, 128 + int(sig))


async def collect_once(
    settings: Settings,
    store: Store,
    source_factory: SourceFactory = default_source_factory,
    *,
    interruption: Interruption | None = None,
) -> bool:
    """One pass. True when written, False when skipped (another pass holds the lock).

    Raises a TgStatsError on failure, after recording it in `tg:status`.
    """
    assert settings.session is not None
    token = secrets.token_hex(16)
    peer = peer_key(settings.session.account_key, settings.channel)
    start = await store.begin_pass(token, settings.timeout + LOCK_GRACE, peer)
    if not start.locked:
        log.info("another pass holds tg:lock; skipping this one")
        return False
    try:
        await _fetch_and_save(
            settings,
            store=store,
            source_factory=source_factory,
            start=start,
            token=token,
            peer=peer,
        )
    except BaseException as e:
        error = _as_error(e, settings, interruption)
        await _record_failure(store, start, token, error)
        if error is e:
            raise
        raise error from None
    return True


async def _fetch_and_save(
    settings: Settings,
    *,
    store: Store,
    source_factory: SourceFactory,
    start: PassStart,
    token: str,
    peer: str,
) -> None:
    retry_after = _retry_after(start.status)
    if retry_after is not None and retry_after > time.time():
        raise TelegramError(
            f"Telegram asked to wait until {iso_utc(retry_after)} (FloodWait); "
            "this pass did not contact it",
            retry_at=retry_after,
        )
    async with asyncio.timeout(settings.timeout), source_factory(settings) as source:
        result = await source.fetch(settings.channel, start.peer)
        snapshot, downloaded = await with_images(result.snapshot, source, start.media)
    now = time.time()
    referenced = {key for post in snapshot.posts for key in post.image_keys()}
    await store.save_snapshot(
        snapshot,
        status=next_status(start.status, now=now, ok=True),
        token=token,
        now=int(now),
        history_days=settings.history_days,
        peer=peer,
        channel=result.channel if result.resolved else None,
        media=downloaded,
        stale_media=start.media - referenced,
    )
    stats = result.snapshot.stats
    log.info(
        "saved @%s: %s subscribers, %s messages, %s posts%s",
        stats.username or settings.channel,
        stats.subscribers_count,
        stats.posts_count,
        len(result.snapshot.posts),
        " (channel resolved)" if result.resolved else "",
    )


async def with_images(
    snapshot: ChannelSnapshot, source: ChannelSource, stored: frozenset[str]
) -> tuple[ChannelSnapshot, dict[str, bytes]]:
    """Download the posts' images Redis does not hold yet; each `image` names a stored key
    or is null (not downloaded, or its download failed: the next pass tries again)."""
    wanted = {f.key: f for post in snapshot.posts for f in post.files}
    missing = [f for key, f in wanted.items() if key not in stored]
    downloaded = await source.download(missing) if missing else {}
    available = (stored & wanted.keys()) | downloaded.keys()
    if missing:
        log.info(
            "images: %s downloaded, %s failed", len(downloaded), len(missing) - len(downloaded)
        )
    posts = [post.with_images(available) for post in snapshot.posts]
    return ChannelSnapshot(stats=snapshot.stats, posts=posts), downloaded


def _as_error(
    error: BaseException, settings: Settings, interruption: Interruption | None
) -> BaseException:
    """The error to record and raise for what stopped a pass."""
    if isinstance(error, KeyboardInterrupt):
        return Interrupted("SIGINT", 128 + int(signal.SIGINT))
    if isinstance(error, asyncio.CancelledError):
        return interruption.error() if interruption and interruption.signal else error
    if isinstance(error, TimeoutError):
        return TelegramError(f"the pass took longer than TG_TIMEOUT={settings.timeout} s; gave up")
    return error


async def _record_failure(store: Store, start: PassStart, token: str, error: BaseException) -> None:
    if isinstance(error, StoreError):
        # Redis is what failed: try to free the lock at least; it expires anyway.
        with contextlib.suppress(StoreError):
            await store.release(token)
        return
    if isinstance(error, TgStatsError):
        message, code = error.message, error.exit_code
    else:
        message, code = f"unexpected error: {type(error).__name__}: {error}", 1
    status = next_status(
        start.status,
        now=time.time(),
        ok=False,
        exit_code=code,
        error=" ".join(message.split())[:500],
        retry_after=error.retry_at if isinstance(error, TelegramError) else None,
    )
    try:
        await store.save_failure(status, token=token)
    except StoreError as e:
        log.warning("could not record the failure in tg:status: %s", e)


def _retry_after(status: dict[str, Any] | None) -> float | None:
    value = (status or {}).get("retry_after")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC).timestamp()
    except ValueError:
        return None


async def dry_run(
    settings: Settings, source_factory: SourceFactory = default_source_factory
) -> ChannelSnapshot | None:
    """Fetch without writing; uses the cached peer when Redis answers, and works without it.

    None (skipped) while a pass holds `tg:lock`: one session string must never be used by
    two processes at once. The dry run only reads the lock; it writes nothing.
    """
    assert settings.session is not None
    cached: ResolvedChannel | None = None
    store = Store(settings.redis_url)
    try:
        if await store.lock_holder() is not None:
            log.warning("another pass holds tg:lock; skipping the dry run (try again shortly)")
            return None
        cached = await store.read_peer(peer_key(settings.session.account_key, settings.channel))
    except StoreError as e:
        log.warning("dry run without Redis: %s", e)
    finally:
        await store.aclose()
    try:
        async with asyncio.timeout(settings.timeout), source_factory(settings) as source:
            result = await source.fetch(settings.channel, cached)
    except TimeoutError:
        raise TelegramError(
            f"the pass took longer than TG_TIMEOUT={settings.timeout} s; gave up"
        ) from None
    return result.snapshot


def print_snapshot(snapshot: ChannelSnapshot | None) -> None:
    """The dry run's output: `{"stats": ..., "posts": [...]}` on stdout (nothing if skipped)."""
    if snapshot is None:
        return
    sys.stdout.write(json.dumps(snapshot.to_json(), ensure_ascii=False, indent=2) + "\n")


async def collect_loop(
    settings: Settings,
    run_pass: Callable[[], Awaitable[bool]],
    *,
    max_failures: int = LOOP_MAX_FAILURES,
) -> None:
    """A pass every TG_UPDATE_INTERVAL; raise the last error after `max_failures` in a row."""
    failures = 0
    while True:
        try:
            await run_pass()
        except (Interrupted, asyncio.CancelledError):
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
