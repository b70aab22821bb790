"""`tg:status`: the job's health after each pass, per channel too; which channels back off."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itam_tgstats.config import Settings
from itam_tgstats.errors import ChannelError, ChannelSkipped, one_line
from itam_tgstats.models import AdminStatsRead, iso_utc

log = logging.getLogger(__name__)

# A channel that fails on its own is not asked about again for this long, doubling after
# each further failure up to the cap; a success resets it.
BACKOFF_FIRST = 3600
BACKOFF_MAX = 86400
# Counts read back from Redis stay within what any reader's integers hold.
MAX_COUNT = 1_000_000
# Stored times past this (9999-12-30) cannot be written back as ISO times: unreadable.
LATEST_TIME = 253_402_128_000
# Admin statistics are due this much before TG_ADMIN_STATS_HOURS have passed, so that a
# schedule's jitter of a second does not put every other read a whole pass later.
ADMIN_STATS_SLACK = 60
# A channel's admin_stats_error once getFullChannel says the account may not view them.
NO_LONGER_VIEWABLE = (
    "this account can no longer view the channel's statistics (can_view_stats is false: not "
    "an admin any more, or the channel has too few followers); the stored ones stay"
)
# A time up to this many seconds ahead of the clock is a clock's drift between hosts; one
# further ahead was written by a clock that was wrong, or is foreign data: it is not fresh,
# and no reason to skip anything.
CLOCK_SKEW = 300
# No FloodWait is longer than a day: a `retry_after` further ahead is not honoured, and a
# longer wait is recorded as a day (the pass after it asks Telegram again).
LONGEST_WAIT = 86_400


@dataclass(frozen=True)
class ChannelOutcome:
    """What a pass learned about one configured channel.

    `error` None: read. `own`: the channel failed on its own (missing, private, not a
    channel, another 400/403 about it): it backs off. `skipped`: not asked at all (its
    `retry_after` had not come): its entry stays as it was, apart from `ok`.
    """

    error: str | None = None
    own: bool = False
    skipped: bool = False
    # What the pass learned of its admin statistics (None: nothing, the entry's stay).
    admin_stats: AdminStatsRead | None = None


READ = ChannelOutcome()


def next_status(
    previous: dict[str, Any] | None,
    *,
    now: float,
    ok: bool,
    exit_code: int = 0,
    error: str | None = None,
    retry_after: float | None = None,
    channels: Mapping[str, ChannelOutcome] | None = None,
) -> dict[str, Any]:
    """`tg:status` after a pass: failures counted in a row, reset by a success.

    `channels`: each configured channel's name → what this pass learned of it. A partial
    pass (some channels read, some not) is recorded as a failure: `ok` false,
    `last_success_at` unchanged; its channels say which were read.
    """
    prev = previous if isinstance(previous, dict) else {}
    status = {
        "ok": ok,
        "last_success_at": iso_utc(now) if ok else prev.get("last_success_at"),
        "last_failure_at": prev.get("last_failure_at") if ok else iso_utc(now),
        "last_error": prev.get("last_error") if ok else error,
        "exit_code": exit_code,
        "consecutive_failures": 0 if ok else _count(prev) + 1,
        "retry_after": iso_utc(min(retry_after, now + LONGEST_WAIT))
        if retry_after is not None
        else None,
    }
    if channels is not None:
        before = prev.get("channels")
        before = before if isinstance(before, dict) else {}
        status["channels"] = {
            name: channel_status(before.get(name), now=now, outcome=outcome)
            for name, outcome in channels.items()
        }
    return status


def channel_status(previous: Any, *, now: float, outcome: ChannelOutcome) -> dict[str, Any]:
    """One channel's entry in `tg:status.channels`.

    `consecutive_failures` counts the channel's own failures in a row (what its backoff
    doubles on); failures of the whole pass leave it and `retry_after` as they were.
    """
    prev = previous if isinstance(previous, dict) else {}
    failures = _count(prev)
    kept_at = parse_time(prev.get("retry_after"))
    kept_retry = iso_utc(kept_at) if kept_at is not None else None
    if outcome.error is None:
        failures, retry = 0, None
    elif outcome.skipped:
        retry = kept_retry
    elif outcome.own:
        failures += 1
        retry = iso_utc(now + backoff_seconds(failures))
    else:
        retry = kept_retry
    return {
        "ok": outcome.error is None,
        "last_error": outcome.error
        if outcome.error and not outcome.skipped
        else prev.get("last_error"),
        "last_success_at": iso_utc(now) if outcome.error is None else prev.get("last_success_at"),
        "retry_after": retry,
        "consecutive_failures": failures,
        **admin_stats_fields(prev, outcome.admin_stats),
    }


def admin_stats_fields(previous: dict[str, Any], read: AdminStatsRead | None) -> dict[str, Any]:
    """A channel's `admin_stats_at` (when a pass last asked for its admin statistics) and
    `admin_stats_error` (why they were not read; null when they were).

    A failed attempt counts as one: the next is due TG_ADMIN_STATS_HOURS later. Once the
    account may not view them any more, `admin_stats_at` is cleared (they are due again as
    soon as it may) and the error says so, for a channel whose statistics it once asked for.
    """
    at = parse_time(previous.get("admin_stats_at"))
    error = previous.get("admin_stats_error")
    error = error if isinstance(error, str) else None
    if read is None:
        pass
    elif not read.can_view:
        error = NO_LONGER_VIEWABLE if at is not None or error is not None else None
        at = None
    elif read.asked_at is not None:
        at, error = read.asked_at, read.error
    elif error == NO_LONGER_VIEWABLE:
        error = None  # it may view them again: they are due at once
    return {"admin_stats_at": iso_utc(at) if at is not None else None, "admin_stats_error": error}


def admin_stats_due(
    status: dict[str, Any] | None, settings: Settings, names: Sequence[str], now: float
) -> dict[str, float]:
    """Username → `now`, for each channel whose admin statistics are due (read if the
    account may view them): never asked, or last asked TG_ADMIN_STATS_HOURS ago (or at a time
    still to come); none when TG_ADMIN_STATS_HOURS is 0. From `tg:status`, read anyway."""
    entries = (status or {}).get("channels")
    entries = entries if isinstance(entries, dict) else {}
    period = settings.admin_stats_hours * 3600
    due: dict[str, float] = {}
    for username, name in zip(settings.channels, names, strict=True):
        entry = entries.get(name)
        at = parse_time(entry.get("admin_stats_at")) if isinstance(entry, dict) else None
        if period and (at is None or at > now or now - at >= period - ADMIN_STATS_SLACK):
            due[username] = now
    return due


def admin_stats_reads(
    names: Sequence[str], read: Sequence[int], answers: Sequence[object]
) -> dict[str, AdminStatsRead]:
    """What the pass learned of each channel's admin statistics, by name: `answers` are the
    fetches of the channels at positions `read` (a failed one learned nothing)."""
    found = {names[i]: getattr(a, "admin_stats", None) for i, a in zip(read, answers, strict=True)}
    return {name: r for name, r in found.items() if isinstance(r, AdminStatsRead)}


def backoff_seconds(failures: int) -> int:
    """How long a channel is left alone after its `failures`-th own failure in a row."""
    doublings = min(max(failures - 1, 0), 8)  # 2**8 hours is past the cap already
    return min(BACKOFF_FIRST << doublings, BACKOFF_MAX)


def _count(entry: dict[str, Any]) -> int:
    value = entry.get("consecutive_failures")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return 0
    return min(int(value), MAX_COUNT)


def parse_time(value: Any) -> float | None:
    """A stored ISO time as a unix time (UTC when it names no zone); None when missing or
    unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        stamp = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None
    return stamp if 0 <= stamp <= LATEST_TIME else None


def retry_after_time(status: dict[str, Any] | None) -> float | None:
    """The unix time before which Telegram asked us not to call again, from `tg:status`."""
    return parse_time((status or {}).get("retry_after"))


def honoured_wait(status: dict[str, Any] | None, now: float) -> float | None:
    """`tg:status.retry_after` as a unix time when it is still ahead and at most a day away
    (LONGEST_WAIT); None otherwise. A time further ahead is logged once and ignored: honoured,
    a clock that was ahead or a planted value would stop every pass for good."""
    retry_at = retry_after_time(status)
    if retry_at is None or retry_at <= now:
        return None
    if retry_at > now + LONGEST_WAIT:
        log.warning(
            "tg:status.retry_after %s is more than a day ahead: no FloodWait is that long; ignored",
            iso_utc(retry_at),
        )
        return None
    return retry_at


def channel_retry_after(status: dict[str, Any] | None, name: str) -> tuple[float | None, str]:
    """A channel's `retry_after` as a unix time (None: not backing off) and its last error."""
    entries = (status or {}).get("channels")
    entry = entries.get(name) if isinstance(entries, dict) else None
    if not isinstance(entry, dict):
        return None, ""
    error = entry.get("last_error")
    return parse_time(entry.get("retry_after")), error if isinstance(error, str) else ""


def backing_off(
    status: dict[str, Any] | None, channels: Sequence[str], names: Sequence[str], now: float
) -> dict[int, ChannelError]:
    """The channels (by position) whose `retry_after` has not come: not asked this pass."""
    skipped: dict[int, ChannelError] = {}
    for index, (username, name) in enumerate(zip(channels, names, strict=True)):
        retry_at, last_error = channel_retry_after(status, name)
        # Never further ahead than the longest backoff: a clock that went back, or garbage.
        if retry_at is not None and now < retry_at <= now + BACKOFF_MAX:
            reason = f" (last error: {last_error})" if last_error else ""
            skipped[index] = ChannelSkipped(
                username,
                f"@{username} not asked before {iso_utc(retry_at)}, after failing on its "
                f"own{reason}; `tgstats collect --retry-now` asks at once",
            )
    return skipped


def outcome_of(result: object, admin_stats: AdminStatsRead | None = None) -> ChannelOutcome:
    """What a pass learned of a channel from its result: read (and of its admin statistics),
    or which failure."""
    if not isinstance(result, ChannelError):
        return READ if admin_stats is None else ChannelOutcome(admin_stats=admin_stats)
    return ChannelOutcome(
        error=one_line(result.message),
        own=result.backs_off,
        skipped=isinstance(result, ChannelSkipped),
    )
