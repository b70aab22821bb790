"""tg:status after a pass: failures counted in a row, per-channel facts, FloodWait's deadline."""

from __future__ import annotations

from itam_tgstats.status import next_status, retry_after_time

T = 1_800_000_000


def test_failures_count_in_a_row_and_a_success_resets_them() -> None:
    first = next_status(None, now=T, ok=False, exit_code=4, error="down")
    second = next_status(first, now=T + 900, ok=False, exit_code=4, error="still down")
    assert (second["consecutive_failures"], second["last_error"]) == (2, "still down")
    assert second["last_success_at"] is None
    ok = next_status(second, now=T + 1800, ok=True)
    assert ok["consecutive_failures"] == 0 and ok["last_error"] == "still down"
    assert ok["last_failure_at"] == second["last_failure_at"]


def test_each_channel_keeps_its_own_last_success_and_error() -> None:
    both = next_status(None, now=T, ok=True, channels={"a": None, "b": None})
    partial = next_status(
        both, now=T + 900, ok=False, exit_code=4, error="1 of 2", channels={"a": None, "b": "gone"}
    )
    assert partial["channels"]["a"] == {
        "ok": True,
        "last_error": None,
        "last_success_at": "2027-01-15T08:15:00+00:00",
    }
    assert partial["channels"]["b"] == {
        "ok": False,
        "last_error": "gone",
        "last_success_at": "2027-01-15T08:00:00+00:00",
    }
    assert partial["last_success_at"] == both["last_success_at"]  # a partial pass is a failure
    assert partial["consecutive_failures"] == 1


def test_retry_after_reads_back_what_was_written() -> None:
    status = next_status(None, now=T, ok=False, exit_code=4, error="flood", retry_after=T + 3600)
    assert retry_after_time(status) == T + 3600
    assert retry_after_time({"retry_after": "not a time"}) is None
    assert retry_after_time(None) is None
