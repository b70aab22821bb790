"""One collection pass: lock, fetch from Telegram, write one consistent snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from itam_tgstats.config import Settings, channel_key_name
from itam_tgstats.errors import (
    ChannelError,
    ChannelsFailed,
    Interrupted,
    LockLost,
    StoreError,
    TelegramError,
    TgStatsError,
    TransactionRefused,
    one_line,
)
from itam_tgstats.models import ChannelSnapshot, MediaFile, ResolvedChannel, iso_utc
from itam_tgstats.runner import Interruption
from itam_tgstats.store import PassStart, Store, peer_key
from itam_tgstats.store.events import failure_events, pass_events
from itam_tgstats.store.status import (
    ChannelOutcome,
    admin_stats_due,
    admin_stats_reads,
    backing_off,
    honoured_wait,
    next_status,
    outcome_of,
)
from itam_tgstats.store.write import over_time
from itam_tgstats.telegram.images import with_images

log = logging.getLogger(__name__)

# Seconds a lock outlives TG_TIMEOUT, so a crashed holder's lock expires on its own.
LOCK_GRACE = 30


class FetchResultLike(Protocol):
    """What a source's `fetch` returns (see telegram.FetchResult)."""

    snapshot: ChannelSnapshot
    channel: ResolvedChannel
    resolved: bool


class ChannelSource(Protocol):
    """Reads the channel: telegram.TelegramSource, or anything shaped like it."""

    resolved: dict[str, ResolvedChannel]  # channels resolved so far, by username
    admin_stats_at: dict[str, float]  # username → the pass's time: admin statistics to read

    async def fetch(
        self, username: str, cached: ResolvedChannel | None, messages: int = 0
    ) -> FetchResultLike:
        """One snapshot of the channel (its first page holding at least `messages`)."""
        ...

    async def download(self, files: Sequence[MediaFile], *, timeout: float) -> dict[str, bytes]:
        """The files' bytes by key, within `timeout` seconds; failed ones left out."""
        ...


SourceFactory = Callable[[Settings], AbstractAsyncContextManager[ChannelSource]]


def default_source_factory(settings: Settings) -> AbstractAsyncContextManager[ChannelSource]:
    """The real Telegram source (imports Pyrogram only now)."""
    from itam_tgstats.telegram.client import TelegramSource  # noqa: PLC0415 - keeps `show` light

    return TelegramSource(settings)  # type: ignore[return-value]


async def collect_once(
    settings: Settings,
    store: Store,
    source_factory: SourceFactory = default_source_factory,
    *,
    interruption: Interruption | None = None,
    retry_now: bool = False,
) -> bool:
    """One pass over every configured channel. True when written, False when skipped
    (another pass holds the lock). `retry_now`: ask about every channel, also those whose
    backoff runs.

    Raises a TgStatsError on failure, after recording it in `tg:status`. When only some
    channels failed, the others are written first, then ChannelsFailed (partial) is raised.
    """
    assert settings.session is not None
    token = secrets.token_hex(16)
    names = [channel_key_name(c) for c in settings.channels]
    peers = [peer_key(settings.session.account_key, c) for c in settings.channels]
    start = await store.begin_pass(
        token,
        settings.timeout + LOCK_GRACE,
        peers,
        names,
        series=settings.post_history_days > 0,
    )
    if not start.locked:
        log.info("another pass holds tg:lock; skipping this one")
        return False
    resolved: dict[str, ResolvedChannel] = {}
    try:
        failures = await _fetch_and_save(
            settings,
            store=store,
            source_factory=source_factory,
            start=start,
            token=token,
            names=names,
            resolved=resolved,
            retry_now=retry_now,
        )
    except BaseException as e:
        error = _as_error(e, settings, interruption)
        await _record_failure(
            store,
            start,
            token,
            error,
            names=names,
            peers=_peer_keys(settings, resolved),
            events_max=settings.events_max,
        )
        if error is e:
            raise
        raise error from None
    if failures:
        raise ChannelsFailed(failures, len(names))
    return True


async def _fetch_and_save(
    settings: Settings,
    *,
    store: Store,
    source_factory: SourceFactory,
    start: PassStart,
    token: str,
    names: list[str],
    resolved: dict[str, ResolvedChannel],
    retry_now: bool,
) -> list[ChannelError]:
    """Read every channel and write those read; the channels that failed, if others did not.

    `resolved` receives the channels resolved, also when the pass fails. A channel whose
    backoff runs is not asked about (unless `retry_now`): it fails as ChannelSkipped. So is
    Telegram while the account's FloodWait runs (unless `retry_now`).
    """
    retry_after = None if retry_now else honoured_wait(start.status, clock())
    if retry_after is not None:
        raise TelegramError(
            f"Telegram asked to wait until {iso_utc(retry_after)} (FloodWait); "
            "this pass did not contact it (`tgstats collect --retry-now` asks at once)",
            retry_at=retry_after,
        )
    started = clock()
    skipped = {} if retry_now else backing_off(start.status, settings.channels, names, started)
    due = [i for i in range(len(names)) if i not in skipped]
    fetched: dict[int, ChannelSnapshot | ChannelError] = dict(skipped)
    downloaded: dict[str, bytes] = {}
    if due:
        async with (
            asyncio.timeout(settings.timeout) as deadline,
            source_factory(settings) as source,
        ):
            source.admin_stats_at = admin_stats_due(start.status, settings, names, started)
            try:
                answers = await read_channels(
                    source,
                    [settings.channels[i] for i in due],
                    [_peer(start, i) for i in due],
                    [start.history_wanted(i, started) for i in due],
                )
            finally:
                resolved.update(source.resolved)
            read = {
                i: a.snapshot
                for i, a in zip(due, answers, strict=True)
                if not isinstance(a, ChannelError)
            }
            wanted = {f.key for s in read.values() for post in s.posts for f in post.files}
            stored_images = await store.check_before_write(sorted(start.media & wanted))
            with_stored, downloaded = await with_images(
                list(read.values()),
                source.download,
                stored_images,
                seconds_left=_seconds_left(deadline),
            )
        fetched |= {i: a for i, a in zip(due, answers, strict=True) if isinstance(a, ChannelError)}
        fetched |= dict(zip(read, with_stored, strict=True))
    results = [fetched[i] for i in range(len(names))]
    failures = [r for r in results if isinstance(r, ChannelError)]
    for failure in failures:
        if failure.exit_code == 1:  # a bug of ours: its traceback belongs in the log
            log.error("%s", failure.message, exc_info=failure.__cause__ or failure)
    if len(failures) == len(results):
        raise failures[0] if len(failures) == 1 else ChannelsFailed(failures, len(failures))
    admin = admin_stats_reads(names, due, answers)
    outcomes = {n: outcome_of(r, admin.get(n)) for n, r in zip(names, results, strict=True)}
    now = clock()
    writes, series_writes = over_time(settings, start, names, results, int(now))
    # Images stay while a kept post references them: the new posts of the channels read,
    # the unchanged posts of those that failed, and the original keys' posts while the first
    # channel is not written (they may be another channel's, from before a reorder).
    referenced = {key for w in writes for post in w.snapshot.posts for key in post.image_keys()}
    for index, result in enumerate(results):
        if isinstance(result, ChannelError) and index < len(start.channel_media):
            referenced |= start.channel_media[index]
    if isinstance(results[0], ChannelError):
        referenced |= start.original_media
    partial = ChannelsFailed(failures, len(names)) if failures else None
    await store.save_pass(
        writes,
        names=names,
        status=next_status(
            start.status,
            now=now,
            ok=partial is None,
            exit_code=partial.exit_code if partial else 0,
            error=one_line(partial.message) if partial else None,
            channels=outcomes,
        ),
        token=token,
        now=int(now),
        history_days=settings.history_days,
        peers=_peer_keys(settings, resolved),
        media=downloaded,
        stale_media=start.media - referenced,
        series=series_writes if settings.post_history_days else None,
        admin_stats={n: a.value for n, a in admin.items() if a.value is not None},
        events=pass_events(start, names, results, now, settings.events_max),
    )
    for write in writes:
        stats = write.snapshot.stats
        log.info(
            "saved @%s: %s subscribers, %s messages, %s posts",
            stats.username or write.name,
            stats.subscribers_count,
            stats.posts_count,
            len(write.snapshot.posts),
        )
    for failure in failures:
        log.warning("not read this pass (its last snapshot stays): %s", failure.message)
    return failures


def clock() -> float:
    """The pass's time (unix seconds); tests replace it to run passes hours apart."""
    return time.time()


def _peer(start: PassStart, index: int) -> ResolvedChannel | None:
    return start.peers[index] if index < len(start.peers) else None


async def read_channels(
    source: ChannelSource,
    channels: Sequence[str],
    cached: Sequence[ResolvedChannel | None],
    wanted: Sequence[int] = (),
) -> list[FetchResultLike | ChannelError]:
    """Every channel read concurrently (the source bounds the requests in flight); `wanted`:
    the messages each one's first page should hold (the young posts followed).

    A channel that cannot be read gives its ChannelError in its place; any other failure
    (the session, a long FloodWait, the network) stops them all and is raised.
    """

    async def one(
        name: str, peer: ResolvedChannel | None, n: int
    ) -> FetchResultLike | ChannelError:
        try:
            return await source.fetch(name, peer, n)
        except ChannelError as e:
            return e

    peers = [*cached, *[None] * len(channels)]  # zip stops at the channels' end
    counts = [*wanted, *[0] * len(channels)]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(*r)) for r in zip(channels, peers, counts, strict=False)]
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    return [task.result() for task in tasks]


def _peer_keys(
    settings: Settings, resolved: dict[str, ResolvedChannel]
) -> dict[str, ResolvedChannel]:
    """The channels resolved this pass, by their `tg:peer:…` key."""
    assert settings.session is not None
    return {peer_key(settings.session.account_key, u): c for u, c in resolved.items()}


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (tasks cancelled because of it say nothing)."""
    error: BaseException = group.exceptions[0]
    return _first_error(error) if isinstance(error, BaseExceptionGroup) else error


def _seconds_left(deadline: asyncio.Timeout) -> float:
    when = deadline.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()


def _as_error(
    error: BaseException, settings: Settings, interruption: Interruption | None
) -> BaseException:
    """The error to record and raise for what stopped a pass."""
    if isinstance(error, KeyboardInterrupt):
        return Interrupted("SIGINT", 128 + int(signal.SIGINT))
    if isinstance(error, asyncio.CancelledError):
        return interruption.error() if interruption and interruption.signal else error
    if isinstance(error, TimeoutError):
        return timeout_error(settings)
    return error


async def _record_failure(
    store: Store,
    start: PassStart,
    token: str,
    error: BaseException,
    *,
    names: Sequence[str],
    peers: dict[str, ResolvedChannel],
    events_max: int,
) -> None:
    if isinstance(error, LockLost):
        return  # another pass may own the keys now: not even tg:status is ours to write
    refused = isinstance(error, TransactionRefused)
    if isinstance(error, StoreError) and not refused:
        # Redis is what failed: try to free the lock at least; it expires anyway.
        with contextlib.suppress(StoreError):
            await store.release(token)
        return
    if isinstance(error, TgStatsError):
        message, code = error.message, error.exit_code
    else:
        message, code = f"unexpected error: {type(error).__name__}: {error}", 1
    # Every channel failed: each with its own reason when known, else the pass's.
    reasons = {n: ChannelOutcome(error=one_line(message)) for n in names}
    if isinstance(error, ChannelsFailed | ChannelError):
        failed = error.failures if isinstance(error, ChannelsFailed) else [error]
        by_name = {channel_key_name(f.username): outcome_of(f) for f in failed}
        reasons.update({n: by_name[n] for n in names if n in by_name})
    now = clock()
    status = next_status(
        start.status,
        now=now,
        ok=False,
        exit_code=code,
        error=one_line(message),
        retry_after=error.retry_at if isinstance(error, TelegramError) else None,
        channels=reasons,
    )
    try:
        if refused:
            # The rest of the pass's transaction was applied, its tg:status among it: never
            # "ok" for a pass that exits nonzero.
            await store.correct_status(status, token=token)
        else:
            events = failure_events(start.status, reasons, now, events_max)
            await store.save_failure(status, token=token, peers=peers, events=events)
    except (StoreError, LockLost) as e:
        log.warning("could not record the failure in tg:status: %s", e)


def timeout_error(settings: Settings) -> TelegramError:
    """What TG_TIMEOUT running out is reported as."""
    return TelegramError(f"the pass took longer than TG_TIMEOUT={settings.timeout} s; gave up")
