"""Media downloads through a real Pyrogram client against the stand-in Telegram's DCs."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from itam_tgstats.config import Settings
from itam_tgstats.models import MediaFile
from itam_tgstats.telegram.client import TelegramSource
from itam_tgstats.telegram.downloads import MAX_CONCURRENT_FILES, download_files
from tests.conftest import FAKE_API_HASH
from tests.faketg import SETUP_CALLS, FakeFile, FakeTelegram

T = TypeVar("T")

HANDSHAKE = ["ReqPqMulti", "ReqDHParams", "SetClientDHParams"]


def settings_for(fake: FakeTelegram) -> Settings:
    values = {
        "TG_API_ID": "12345",
        "TG_API_HASH": FAKE_API_HASH,
        "TG_SESSION_STRING": fake.session_string(),
    }
    return Settings.from_env(values, env_file=Path(os.devnull))


def with_client(fake: FakeTelegram, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(client)` on a connected client; the client is disconnected afterwards."""

    async def main() -> T:
        source = TelegramSource(settings_for(fake), protocol_factory=fake.protocol_factory)
        async with source:
            return await work(source.client)

    return asyncio.run(main())


def download(fake: FakeTelegram, files: Sequence[MediaFile], **options: Any) -> dict[str, bytes]:
    """download_files on a fresh client; the fake's records start after the connect."""

    async def work(client: Any) -> dict[str, bytes]:
        del fake.calls[:], fake.dc_calls[:], fake.dc_timeline[:], fake.dc_connections[:]
        fake.max_in_flight = 0
        return await download_files(client, files, **options)

    return with_client(fake, work)


def data(n: int, size: int = 20_000) -> bytes:
    return bytes((n * 7 + i) % 251 for i in range(size))


def add_files(fake: FakeTelegram, count: int, dc_id: int, *, first_id: int = 1) -> list[FakeFile]:
    return [
        fake.add_file("photo", first_id + i, "m", data(first_id + i), dc_id) for i in range(count)
    ]


def api_calls_on(fake: FakeTelegram, dc_id: int) -> list[str]:
    return [c for c in fake.calls_on(dc_id) if c not in SETUP_CALLS]


# -- the home DC ----------------------------------------------------------------------------


def test_home_dc_files_come_whole_one_get_file_each() -> None:
    fake = FakeTelegram()
    files = [
        fake.add_file("photo", 11, "x", data(1, 300_000)),
        fake.add_file("photo", 11, "m", data(2, 5_000)),
        fake.add_file("document", 12, "m", data(3, 511 * 1024)),
    ]
    got = download(fake, [f.media_file() for f in files])
    assert got == {f.key: f.data for f in files}
    # The home DC needs no other connection, no config, no authorization: only the files.
    assert fake.calls == ["upload.GetFile"] * 3
    assert fake.dc_calls == [(2, "upload.GetFile")] * 3
    assert fake.dc_connections == []
    assert fake.open_connections == 0


def test_downloads_run_concurrently() -> None:
    fake = FakeTelegram()
    fake.latency = 0.3
    files = add_files(fake, 6, 2) + add_files(fake, 6, 4, first_id=100)
    got = download(fake, [f.media_file() for f in files])
    assert len(got) == 12
    for dc_id in (2, 4):
        spans = [
            (start, end)
            for dc, name, start, end in fake.dc_timeline
            if dc == dc_id and name == "upload.GetFile"
        ]
        assert len(spans) == 6
        # Every download on a DC overlaps every other one there: all six were out at once.
        assert max(s for s, _ in spans) < min(e for _, e in spans)
    # DC 4's opening starts while the home DC's six files are out: its first request (the
    # home DC's help.getConfig for DC 4's address) is in flight with them. DC by DC, at most
    # six requests would ever be out at once.
    assert fake.max_in_flight >= 7
    # DC 4 costs five round trips (getConfig, its session's getConfig, export, import,
    # getFile), the home DC's files one of them; one request at a time would be 16 or more.
    assert sequential_steps([(s, e) for *_, s, e in fake.dc_timeline]) <= 5


def sequential_steps(spans: list[tuple[float, float]]) -> int:
    """Requests one after another: overlapping spans count as one step (no clock readings)."""
    steps, end = 0, float("-inf")
    for start, stop in sorted(spans):
        if start >= end:
            steps += 1
            end = stop
        else:
            end = max(end, stop)
    return steps


def max_overlap(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one moment (one that ends as another starts does not count)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def test_at_most_ten_files_are_fetched_at_once() -> None:
    """25 files: ten out at once, not 25 and not one at a time; all of them come."""
    fake = FakeTelegram()
    fake.latency = 0.1
    files = add_files(fake, 25, 2)
    got = download(fake, [f.media_file() for f in files])
    assert got == {f.key: f.data for f in files}
    assert fake.calls == ["upload.GetFile"] * 25
    assert fake.max_in_flight == MAX_CONCURRENT_FILES == 10
    spans = [(start, end) for _, name, start, end in fake.dc_timeline if name == "upload.GetFile"]
    assert max_overlap(spans) == 10


# -- another DC -----------------------------------------------------------------------------


def test_another_dc_opens_one_session_for_all_its_files() -> None:
    fake = FakeTelegram()
    fake.latency = 0.05  # the five downloads overlap the session's opening if they can
    files = add_files(fake, 5, 4)
    got = download(fake, [f.media_file() for f in files])
    assert got == {f.key: f.data for f in files}
    home, dc4 = api_calls_on(fake, 2), api_calls_on(fake, 4)
    assert home == ["auth.ExportAuthorization"]
    assert dc4 == [*HANDSHAKE, "auth.ImportAuthorization", *["upload.GetFile"] * 5]
    # The address comes from one help.getConfig; the session's InitConnection asks another.
    assert fake.calls_on(2).count("help.GetConfig") == 1
    assert fake.calls_on(4).count("help.GetConfig") == 1
    # One connection for the key, one for the session; both closed again.
    assert fake.dc_connections == [(4, False), (4, False)]
    assert fake.open_connections == 0


def test_files_on_two_dcs_at_once() -> None:
    fake = FakeTelegram()
    files = add_files(fake, 3, 2) + add_files(fake, 3, 4, first_id=40)
    got = download(fake, [f.media_file() for f in files])
    assert got == {f.key: f.data for f in files}
    assert api_calls_on(fake, 2).count("upload.GetFile") == 3
    assert api_calls_on(fake, 4).count("upload.GetFile") == 3
    assert fake.calls.count("auth.ImportAuthorization") == 1


def test_session_elsewhere_is_opened_again_by_the_next_call_and_never_left_open() -> None:
    fake = FakeTelegram()
    files = [f.media_file() for f in add_files(fake, 2, 4)]

    async def work(client: Any) -> list[dict[str, bytes]]:
        first = await download_files(client, files[:1])
        assert fake.open_connections == 1  # the client's own; DC 4's session is stopped
        assert client.sessions == {}
        second = await download_files(client, files[1:])
        return [first, second]

    first, second = with_client(fake, work)
    assert (len(first), len(second)) == (1, 1)
    assert fake.calls.count("auth.ImportAuthorization") == 2
    assert fake.open_connections == 0


def test_a_file_asked_on_the_wrong_dc_is_refused() -> None:
    fake = FakeTelegram()
    stored = fake.add_file("photo", 5, "m", data(5), 4)
    wrong = MediaFile(**{**stored.media_file().__dict__, "dc_id": 2})
    assert download(fake, [wrong]) == {}
    assert fake.calls == ["upload.GetFile"]


# -- failures -------------------------------------------------------------------------------


def test_expired_file_reference_leaves_only_that_file_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTelegram()
    files = add_files(fake, 3, 2) + add_files(fake, 2, 4, first_id=50)
    files[1].expired = True
    files[4].expired = True
    with caplog.at_level(logging.INFO, logger="itam_tgstats.telegram.downloads"):
        got = download(fake, [f.media_file() for f in files])
    assert set(got) == {files[0].key, files[2].key, files[3].key}
    assert fake.calls.count("upload.GetFile") == 5  # no retry of an expired reference
    lines = [r.getMessage() for r in caplog.records]
    assert f"media {files[1].key} not downloaded: file reference expired" in lines
    assert f"media {files[4].key} not downloaded: file reference expired" in lines


def test_flood_wait_is_not_slept_through_nor_raised(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTelegram()
    files = add_files(fake, 3, 2)
    fake.fail("upload.GetFile", "FLOOD_WAIT_5")
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="itam_tgstats.telegram.downloads"):
        got = download(fake, [f.media_file() for f in files])
    assert time.monotonic() - started < 3
    assert len(got) == 2
    assert fake.calls.count("upload.GetFile") == 3
    [line] = [r.getMessage() for r in caplog.records]
    assert line.endswith("not downloaded: FloodWait of 5 s")


def test_an_rpc_error_leaves_the_file_out() -> None:
    fake = FakeTelegram()
    files = add_files(fake, 2, 2)
    fake.fail("upload.GetFile", "LOCATION_INVALID")
    assert len(download(fake, [f.media_file() for f in files])) == 1


def test_a_dc_that_cannot_be_opened_costs_only_its_files(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTelegram()
    files = add_files(fake, 2, 2) + add_files(fake, 2, 4, first_id=60)
    fake.fail("auth.ImportAuthorization", "AUTH_BYTES_INVALID", times=3)  # Pyrogram tries 3
    with caplog.at_level(logging.INFO, logger="itam_tgstats.telegram.downloads"):
        got = download(fake, [f.media_file() for f in files])
    assert set(got) == {files[0].key, files[1].key}
    assert fake.open_connections == 0
    assert any(r.getMessage().startswith("media on DC4 not downloaded") for r in caplog.records)


def test_a_hanging_download_is_given_up_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTelegram()
    files = add_files(fake, 2, 4)
    fake.hang.add("upload.GetFile")
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="itam_tgstats.telegram.downloads"):
        got = download(fake, [f.media_file() for f in files], timeout=1)
    assert got == {}
    assert time.monotonic() - started < 3
    assert fake.open_connections == 0
    lines = sorted(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert lines == [f"media {f.key} not downloaded: no answer within 1 s" for f in files]


def test_cancellation_propagates_and_leaves_nothing_open() -> None:
    fake = FakeTelegram()
    files = add_files(fake, 2, 4)
    fake.hang.add("upload.GetFile")

    async def work(client: Any) -> None:
        task = asyncio.create_task(download_files(client, [f.media_file() for f in files]))
        while fake.calls.count("upload.GetFile") < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.sessions == {}

    with_client(fake, work)
    assert fake.open_connections == 0


def test_nothing_to_download_costs_nothing() -> None:
    fake = FakeTelegram()
    assert download(fake, []) == {}
    assert fake.calls == []
