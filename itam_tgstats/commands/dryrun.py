"""`collect --dry-run`: read every channel as a pass would, print it, write nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from itam_tgstats import escapes
from itam_tgstats.collect import (
    LOCK_GRACE,
    SourceFactory,
    default_source_factory,
    read_channels,
    timeout_error,
)
from itam_tgstats.config import Settings, channel_key_name
from itam_tgstats.errors import ChannelError, ChannelsFailed, StoreError
from itam_tgstats.models import ChannelSnapshot, ResolvedChannel
from itam_tgstats.store import Store, peer_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DryRun:
    """What a dry run read: snapshots by channel key name, in order, and the failures."""

    snapshots: dict[str, ChannelSnapshot]
    failures: list[ChannelError]

    def to_json(self) -> dict[str, Any]:
        """`{"stats", "posts"}` for one channel (as the original worker's keys hold them),
        `{"channels": {<name>: {"stats", "posts"}}}` for several."""
        if len(self.snapshots) + len(self.failures) == 1 and self.snapshots:
            return next(iter(self.snapshots.values())).to_json()
        return {"channels": {name: s.to_json() for name, s in self.snapshots.items()}}


async def dry_run(
    settings: Settings, source_factory: SourceFactory = default_source_factory
) -> DryRun | None:
    """Fetch without writing; uses the cached peers when Redis answers, and works without it.

    None (skipped) while a pass holds `tg:lock`. When Redis answers, the dry run holds the
    lock itself while it talks to Telegram: one session string must never be used by two
    processes at once. It writes nothing else and downloads no image (every `image` is null).
    """
    assert settings.session is not None
    cached: list[ResolvedChannel | None] = []
    token = secrets.token_hex(16)
    store = Store(settings.redis_url)
    locked = False
    try:
        try:
            locked = await store.acquire(token, settings.timeout + LOCK_GRACE)
            if not locked:
                log.warning("another pass holds tg:lock; skipping the dry run (try again shortly)")
                return None
            cached = await store.read_peers(
                [peer_key(settings.session.account_key, c) for c in settings.channels]
            )
        except StoreError as e:
            log.warning("dry run without Redis: %s", e)
        async with asyncio.timeout(settings.timeout), source_factory(settings) as source:
            results = await read_channels(source, settings.channels, cached)
    except TimeoutError:
        raise timeout_error(settings) from None
    finally:
        if locked:
            with contextlib.suppress(StoreError):
                await store.release(token)
        await store.aclose()
    snapshots = {
        channel_key_name(c): r.snapshot.with_images(set())
        for c, r in zip(settings.channels, results, strict=True)
        if not isinstance(r, ChannelError)
    }
    return DryRun(snapshots, [r for r in results if isinstance(r, ChannelError)])


def print_dry_run(result: DryRun | None) -> None:
    """The dry run's output on stdout (nothing if skipped); then its failures, if any, raised:
    one channel's own error when every channel failed alone, else ChannelsFailed."""
    if result is None:
        return
    total = len(result.snapshots) + len(result.failures)
    if result.snapshots:
        sys.stdout.write(escapes.dumps(result.to_json()) + "\n")
    if len(result.failures) == 1 and total == 1:
        raise result.failures[0]
    if result.failures:
        raise ChannelsFailed(result.failures, total)
