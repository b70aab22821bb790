"""`tg:status`: the job's health after each pass, overall and per channel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itam_tgstats.models import iso_utc


def next_status(
    previous: dict[str, Any] | None,
    *,
    now: float,
    ok: bool,
    exit_code: int = 0,
    error: str | None = None,
    retry_after: float | None = None,
    channels: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """`tg:status` after a pass: failures counted in a row, reset by a success.

    `channels`: each configured channel's name → its error this pass (None: read). A
    partial pass (some channels read, some not) is recorded as a failure: `ok` false,
    `last_success_at` unchanged; its channels say which were read.
    """
    prev = previous if isinstance(previous, dict) else {}
    failures = prev.get("consecutive_failures")
    failures = failures if isinstance(failures, int) and failures >= 0 else 0
    status = {
        "ok": ok,
        "last_success_at": iso_utc(now) if ok else prev.get("last_success_at"),
        "last_failure_at": prev.get("last_failure_at") if ok else iso_utc(now),
        "last_error": prev.get("last_error") if ok else error,
        "exit_code": exit_code,
        "consecutive_failures": 0 if ok else failures + 1,
        "retry_after": iso_utc(retry_after) if retry_after is not None else None,
    }
    if channels is not None:
        before = prev.get("channels")
        before = before if isinstance(before, dict) else {}
        status["channels"] = {
            name: channel_status(before.get(name), now=now, error=channel_error)
            for name, channel_error in channels.items()
        }
    return status


def channel_status(previous: Any, *, now: float, error: str | None) -> dict[str, Any]:
    """One channel's entry in `tg:status.channels`."""
    prev = previous if isinstance(previous, dict) else {}
    return {
        "ok": error is None,
        "last_error": prev.get("last_error") if error is None else error,
        "last_success_at": iso_utc(now) if error is None else prev.get("last_success_at"),
    }


def retry_after_time(status: dict[str, Any] | None) -> float | None:
    """The unix time before which Telegram asked us not to call again, from `tg:status`."""
    value = (status or {}).get("retry_after")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC).timestamp()
    except ValueError:
        return None
