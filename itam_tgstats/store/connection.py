"""The Redis connection, its errors in one sentence, and the pass's lock and guarded write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError, WatchError
from redis.maint_notifications import MaintNotificationsConfig

from itam_tgstats.config import describe_redis_url
from itam_tgstats.errors import LockLost, StoreError, TransactionRefused, one_line
from itam_tgstats.store.keys import LOCK_KEY, STATUS_KEY, dumps
from itam_tgstats.store.scripts import CORRECT_STATUS_SCRIPT, RELEASE_LOCK_SCRIPT

LOST_LOCK = (
    "this pass lost tg:lock before writing (the lock expired or Redis lost it): another pass "
    "may have written since; nothing was written"
)


class Connection:
    """The project's Redis. Every method raises StoreError when Redis fails."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis: redis.Redis = redis.Redis.from_url(
            url,
            decode_responses=True,
            # A value that is not UTF-8 (foreign data) reads as text with U+FFFD in it, which
            # no reader takes for JSON: unreadable, not a failed read.
            encoding_errors="replace",
            socket_connect_timeout=5,
            socket_timeout=15,
            # No handshake chatter (HELLO, CLIENT SETINFO, CLIENT MAINT_NOTIFICATIONS): a pass
            # talks to Redis in two round trips, and a short-lived job gains nothing from them.
            # (A password or a database other than 0 still costs AUTH or SELECT.)
            protocol=2,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        # The pass's writes go through this connection, which WATCHes `tg:lock` from just
        # after the pass took it: if the lock changes meanwhile (it expired, another pass
        # took it, Redis lost it), EXEC writes nothing. Whether it was still the pass's when
        # the watch began is checked once, by a read after it (`_lock_checked`).
        self._guard: Any = None
        self._token: str | None = None
        self._lock_checked = False

    @asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError) as e:
            detail = one_line(str(e), 200) or type(e).__name__
            raise StoreError(
                f"Redis at {describe_redis_url(self.url)} failed while {doing}: {detail}; "
                "check REDIS_URL and that Redis is running"
            ) from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._guard is not None:
            await self._guard.reset()
            self._guard = None
        await self.redis.aclose()

    async def _watch_lock(self, token: str) -> None:
        """Start watching `tg:lock` (one round trip): the pass's writes depend on it."""
        async with self._errors("watching the lock"):
            guard = self.redis.pipeline(transaction=True)
            try:
                await guard.watch(LOCK_KEY)
            except BaseException:
                await guard.reset()  # type: ignore[no-untyped-call]
                raise
            self._guard, self._token, self._lock_checked = guard, token, False

    def _check_holder(self, holder: str | None) -> None:
        """LockLost unless `holder`, read after the watch began, is this pass's token."""
        if holder != self._token:
            raise LockLost(LOST_LOCK)
        self._lock_checked = True

    @asynccontextmanager
    async def _locked_transaction(self, doing: str) -> AsyncIterator[Any]:
        """A MULTI/EXEC that runs only while this pass still holds `tg:lock`.

        Raises LockLost (nothing written) when the lock changed since the pass took it.
        """
        guard, self._guard = self._guard, None
        if guard is None:
            raise LockLost("this pass does not hold tg:lock; nothing was written")
        try:
            async with self._errors(doing):
                if not self._lock_checked:  # one more round trip, on this path only
                    self._check_holder(await guard.get(LOCK_KEY))
                guard.multi()
                try:
                    yield guard
                    answers = await guard.execute(raise_on_error=False)
                except WatchError as e:
                    if "changed" not in str(e):  # the connection died: Redis failed
                        raise RedisError(str(e)) from None
                    raise LockLost(LOST_LOCK) from None
                refused = [a for a in answers if isinstance(a, Exception)]
                if refused:
                    # EXEC applies what it can: say plainly that the write is incomplete.
                    raise TransactionRefused(
                        f"Redis at {describe_redis_url(self.url)} refused part of the pass's "
                        f"transaction while {doing} ({one_line(str(refused[0]), 200)}); the "
                        "rest was applied"
                    )
        finally:
            await guard.reset()

    async def acquire(self, token: str, lock_seconds: int) -> bool:
        """Take `tg:lock` for `token` (False: another pass holds it)."""
        async with self._errors("taking the lock"):
            return bool(await self.redis.set(LOCK_KEY, token, nx=True, ex=lock_seconds))

    async def correct_status(self, status: dict[str, Any], *, token: str) -> None:
        """Write `status` (a failure) after a transaction Redis applied only in part, unless
        another pass holds `tg:lock` now; and release the lock if this pass still holds it."""
        async with self._errors("recording the failure"):
            await self.redis.eval(
                CORRECT_STATUS_SCRIPT, 2, LOCK_KEY, STATUS_KEY, token, dumps(status)
            )

    async def release(self, token: str) -> bool:
        """Release `tg:lock` if this token still holds it."""
        async with self._errors("releasing the lock"):
            return bool(await self.redis.eval(RELEASE_LOCK_SCRIPT, 1, LOCK_KEY, token))
