"""tg:status after a pass: failures counted in a row, per-channel facts and backoff,
FloodWait's deadline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from itam_tgstats.config import Settings
from itam_tgstats.models import AdminStatsRead, iso_utc
from itam_tgstats.store.status import (
    NO_LONGER_VIEWABLE,
    READ,
    ChannelOutcome,
    admin_stats_due,
    admin_stats_fields,
    admin_stats_reads,
    backoff_seconds,
    channel_retry_after,
    next_status,
    retry_after_time,
)

T = 1_800_000_000
GONE = ChannelOutcome(error="gone", own=True)


def test_failures_count_in_a_row_and_a_success_resets_them() -> None:
    first = next_status(None, now=T, ok=False, exit_code=4, error="down")
    second = next_status(first, now=T + 900, ok=False, exit_code=4, error="still down")
    assert (second["consecutive_failures"], second["last_error"]) == (2, "still down")
    assert second["last_success_at"] is None
    ok = next_status(second, now=T + 1800, ok=True)
    assert ok["consecutive_failures"] == 0 and ok["last_error"] == "still down"
    assert ok["last_failure_at"] == second["last_failure_at"]


def test_each_channel_keeps_its_own_last_success_and_error() -> None:
    both = next_status(None, now=T, ok=True, channels={"a": READ, "b": READ})
    partial = next_status(
        both, now=T + 900, ok=False, exit_code=4, error="1 of 2", channels={"a": READ, "b": GONE}
    )
    assert partial["channels"]["a"] == {
        "ok": True,
        "last_error": None,
        "last_success_at": "2027-01-15T08:15:00+00:00",
        "retry_after": None,
        "consecutive_failures": 0,
        "admin_stats_at": None,
        "admin_stats_error": None,
    }
    assert partial["channels"]["b"] == {
        "ok": False,
        "last_error": "gone",
        "last_success_at": "2027-01-15T08:00:00+00:00",
        "retry_after": iso_utc(T + 900 + 3600),
        "consecutive_failures": 1,
        "admin_stats_at": None,
        "admin_stats_error": None,
    }
    assert partial["last_success_at"] == both["last_success_at"]  # a partial pass is a failure
    assert partial["consecutive_failures"] == 1


def test_backoff_is_one_hour_then_doubles_up_to_a_day() -> None:
    assert [backoff_seconds(n) for n in range(1, 9)] == [
        3600,
        7200,
        14400,
        28800,
        57600,
        86400,
        86400,
        86400,
    ]
    assert backoff_seconds(10**6) == 86400


def test_own_failures_back_off_doubling_and_a_success_resets_them() -> None:
    status = None
    now = T
    waits = []
    for _ in range(7):
        status = next_status(status, now=now, ok=False, error="x", channels={"b": GONE})
        retry_at, last_error = channel_retry_after(status, "b")
        assert retry_at is not None and last_error == "gone"
        waits.append(retry_at - now)
        now = retry_at
    assert waits == [3600, 7200, 14400, 28800, 57600, 86400, 86400]
    read = next_status(status, now=now, ok=True, channels={"b": READ})
    assert read["channels"]["b"]["retry_after"] is None
    assert read["channels"]["b"]["consecutive_failures"] == 0
    again = next_status(read, now=now + 900, ok=False, error="x", channels={"b": GONE})
    assert channel_retry_after(again, "b")[0] == now + 900 + 3600  # back to one hour


def test_a_skipped_channel_keeps_its_backoff_and_reason() -> None:
    failed = next_status(None, now=T, ok=False, error="x", channels={"b": GONE})
    skipped = next_status(
        failed,
        now=T + 900,
        ok=False,
        error="x",
        channels={"b": ChannelOutcome(error="not asked", own=False, skipped=True)},
    )
    assert skipped["channels"]["b"] == {**failed["channels"]["b"], "ok": False}
    assert skipped["channels"]["b"]["last_error"] == "gone"


def test_a_failure_of_the_whole_pass_neither_starts_nor_extends_a_backoff() -> None:
    failed = next_status(None, now=T, ok=False, error="x", channels={"b": GONE})
    account = ChannelOutcome(error="FloodWait 9999 s")
    later = next_status(failed, now=T + 900, ok=False, error="flood", channels={"b": account})
    assert later["channels"]["b"]["retry_after"] == failed["channels"]["b"]["retry_after"]
    assert later["channels"]["b"]["consecutive_failures"] == 1
    assert later["channels"]["b"]["last_error"] == "FloodWait 9999 s"
    fresh = next_status(None, now=T, ok=False, error="flood", channels={"a": account})
    assert fresh["channels"]["a"]["retry_after"] is None


def test_retry_after_reads_back_what_was_written() -> None:
    status = next_status(None, now=T, ok=False, exit_code=4, error="flood", retry_after=T + 3600)
    assert retry_after_time(status) == T + 3600
    assert retry_after_time({"retry_after": "not a time"}) is None
    assert retry_after_time(None) is None
    assert channel_retry_after({"channels": {"b": {"retry_after": 5}}}, "b") == (None, "")
    assert channel_retry_after({"channels": "junk"}, "b") == (None, "")


def test_values_read_back_are_normalised_before_they_are_written_again() -> None:
    account = ChannelOutcome(error="flood")
    odd = {"channels": {"b": {"retry_after": "soon", "consecutive_failures": 10**30}}}
    entry = next_status(odd, now=T, ok=False, error="x", channels={"b": account})["channels"]["b"]
    assert entry["retry_after"] is None  # unreadable: not written back
    assert entry["consecutive_failures"] == 1_000_000  # within any reader's integers
    zoned = {"channels": {"b": {"retry_after": "2027-01-15T11:00:00+03:00"}}}
    again = next_status(zoned, now=T, ok=False, error="x", channels={"b": account})
    assert again["channels"]["b"]["retry_after"] == "2027-01-15T08:00:00+00:00"


# --- admin statistics: when due, and what the entry keeps ----------------------------------------


def settings(hours: str = "24") -> Settings:
    env = {"TG_CHANNEL_USERNAME": "Aa_channel, bb_channel", "TG_ADMIN_STATS_HOURS": hours}
    return Settings.from_env(env, Path(os.devnull), need_telegram=False)


def asked(at: object) -> dict[str, object]:
    return {"channels": {"aa_channel": {"admin_stats_at": at}, "bb_channel": "junk"}}


NAMES = ["aa_channel", "bb_channel"]


@pytest.mark.parametrize(
    ("at", "now", "due"),
    [
        (None, T, True),  # never asked
        (iso_utc(T), T + 900, False),
        (iso_utc(T), T + 86_400 - 61, False),
        (iso_utc(T), T + 86_400 - 60, True),  # within a minute of the day: the schedule's jitter
        (iso_utc(T), T + 86_400, True),
        (iso_utc(T + 3600), T, True),  # a time still to come: the clock went back
        ("yesterday", T, True),  # unreadable: as never asked
        (12345, T, True),
    ],
)
def test_admin_statistics_are_due_hours_after_they_were_last_asked(
    at: object, now: int, due: bool
) -> None:
    expected = {"Aa_channel": now, "bb_channel": now} if due else {"bb_channel": now}
    assert admin_stats_due(asked(at), settings(), NAMES, now) == expected


def test_admin_statistics_are_never_due_when_off() -> None:
    assert admin_stats_due(None, settings("0"), NAMES, T) == {}
    assert admin_stats_due(None, settings("1"), NAMES, T) == {"Aa_channel": T, "bb_channel": T}


def fields(previous: dict[str, object], read: AdminStatsRead | None) -> tuple[object, object]:
    found = admin_stats_fields(previous, read)
    return found["admin_stats_at"], found["admin_stats_error"]


def test_the_entry_keeps_when_they_were_last_asked_and_why_they_failed() -> None:
    before = {"admin_stats_at": iso_utc(T), "admin_stats_error": None}
    assert fields({}, None) == (None, None)
    assert fields(before, None) == (iso_utc(T), None)  # learned nothing: kept
    assert fields(before, AdminStatsRead(can_view=True)) == (iso_utc(T), None)  # not due
    read = AdminStatsRead(can_view=True, asked_at=T + 9, value={})
    assert fields(before, read) == (iso_utc(T + 9), None)
    failed = AdminStatsRead(can_view=True, asked_at=T + 9, error="FloodWait of 30 s")
    assert fields(before, failed) == (iso_utc(T + 9), "FloodWait of 30 s")  # counts as asked
    assert fields({"admin_stats_at": "soon", "admin_stats_error": 5}, None) == (None, None)


def test_an_account_that_may_not_view_them_any_more_is_told_only_if_it_once_could() -> None:
    gone = AdminStatsRead(can_view=False)
    assert fields({}, gone) == (None, None)  # never could: nothing to say
    once = {"admin_stats_at": iso_utc(T), "admin_stats_error": None}
    assert fields(once, gone) == (None, NO_LONGER_VIEWABLE)
    still = {"admin_stats_at": None, "admin_stats_error": NO_LONGER_VIEWABLE}
    assert fields(still, gone) == (None, NO_LONGER_VIEWABLE)
    # It may again: due at once (never asked since), the error gone even before.
    assert fields(still, AdminStatsRead(can_view=True)) == (None, None)


def test_a_channel_entry_carries_the_admin_statistics_fields_through_failures() -> None:
    read = AdminStatsRead(can_view=True, asked_at=T, error="x")
    first = next_status(None, now=T, ok=True, channels={"b": ChannelOutcome(admin_stats=read)})
    assert first["channels"]["b"]["admin_stats_at"] == iso_utc(T)
    failed = next_status(first, now=T + 900, ok=False, error="down", channels={"b": GONE})
    assert failed["channels"]["b"]["admin_stats_at"] == iso_utc(T)
    assert failed["channels"]["b"]["admin_stats_error"] == "x"


def test_what_a_pass_learned_of_them_comes_from_the_channels_it_read() -> None:
    read = AdminStatsRead(can_view=False)

    class Answer:
        admin_stats = read

    answers: list[object] = [Answer(), ValueError("failed")]
    assert admin_stats_reads(["a", "b", "c"], [0, 2], answers) == {"a": read}
