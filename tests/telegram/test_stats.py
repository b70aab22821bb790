"""Reading admin statistics through a real Pyrogram client against the stand-in Telegram:
stats.getBroadcastStats on the statistics data center (one STATS_MIGRATE_X followed), its
tokens loaded there, sessions opened once per pass and DC (stats_fetch.py, dc_sessions.py)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyrogram import raw

from itam_tgstats.config import Settings
from itam_tgstats.render.admin_stats import admin_stats_value
from itam_tgstats.telegram.client import TelegramSource
from itam_tgstats.telegram.dc_sessions import DcSessions
from itam_tgstats.telegram.downloads import download_files
from itam_tgstats.telegram.stats import AdminStatsError, fetch_admin_stats
from tests.channels import rich_channel, small_channel
from tests.conftest import FAKE_API_HASH
from tests.fakestats import ASYNC_GRAPHS, ERROR_GRAPH, realistic_stats
from tests.faketg import SETUP_CALLS, FakeChannel, FakeTelegram, roundtrip
from tests.schemas import errors_of

T = TypeVar("T")

HANDSHAKE = ["ReqPqMulti", "ReqDHParams", "SetClientDHParams"]
GET, LOAD = "stats.GetBroadcastStats", "stats.LoadAsyncGraph"
NOW = 1_736_300_000


def with_stats(channel: FakeChannel, dc_id: int, *, said: int | None = None) -> FakeChannel:
    """`channel` whose statistics this account may read, kept on `dc_id`; getFullChannel
    names `said` (default: `dc_id`)."""
    channel.can_view_stats = True
    channel.stats_dc = dc_id if said is None else said
    channel.stats = realistic_stats(dc_id, tag=f"c{channel.id}")
    return channel


def input_channel(channel: FakeChannel) -> raw.types.InputChannel:
    return raw.types.InputChannel(channel_id=channel.id, access_hash=channel.access_hash)


def with_client(fake: FakeTelegram, work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(client)` on a connected client; the fake's records start after the connect."""
    settings = Settings.from_env(
        {
            "TG_API_ID": "12345",
            "TG_API_HASH": FAKE_API_HASH,
            "TG_SESSION_STRING": fake.session_string(),
        },
        env_file=Path(os.devnull),
    )

    async def main() -> T:
        async with TelegramSource(settings, protocol_factory=fake.protocol_factory) as source:
            del fake.calls[:], fake.dc_calls[:], fake.dc_connections[:]
            return await work(source.client)

    return asyncio.run(main())


def fetch(fake: FakeTelegram, channel: FakeChannel, stats_dc: int | None, **options: Any) -> Any:
    """One channel's statistics in a pass of its own: the value, or the AdminStatsError."""

    async def work(client: Any) -> Any:
        async with DcSessions(client) as sessions:
            try:
                return await fetch_admin_stats(
                    sessions, input_channel(channel), stats_dc, collected_at=NOW, **options
                )
            except AdminStatsError as e:
                return e

    return with_client(fake, work)


def api_calls_on(fake: FakeTelegram, dc_id: int) -> list[str]:
    return [c for c in fake.calls_on(dc_id) if c not in SETUP_CALLS]


def expected_value(channel: FakeChannel) -> dict[str, Any]:
    stats = channel.stats
    assert stats is not None
    loaded = {
        name: stats.async_graphs[getattr(stats.answer, f"{name}_graph").token]
        for name in ASYNC_GRAPHS
    }
    return admin_stats_value(roundtrip(stats.answer), collected_at=NOW, loaded=loaded)


# --- getFullChannel says whether and where -------------------------------------------------------


def test_get_full_channel_says_who_may_read_the_statistics_and_where() -> None:
    fake = FakeTelegram()
    admin = with_stats(fake.add_channel(rich_channel()), 4)
    other = fake.add_channel(small_channel(1, "ITAM_Events"))

    async def work(client: Any) -> list[Any]:
        answers = [
            await client.invoke(raw.functions.channels.GetFullChannel(channel=input_channel(c)))
            for c in (admin, other)
        ]
        return [(a.full_chat.can_view_stats, a.full_chat.stats_dc) for a in answers]

    assert with_client(fake, work) == [(True, 4), (False, None)]


# --- where the statistics are ----------------------------------------------------------------


def test_statistics_on_another_dc_cost_one_session_there_and_three_calls() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    value = fetch(fake, channel, 4)
    assert value == expected_value(channel)
    assert api_calls_on(fake, 2) == ["auth.ExportAuthorization"]
    assert api_calls_on(fake, 4) == [*HANDSHAKE, "auth.ImportAuthorization", GET, LOAD, LOAD]
    assert fake.dc_connections == [(4, False), (4, False)]  # the key's, the session's
    assert fake.open_connections == 0
    # Every graph: the two tokens loaded, the error kept as one.
    assert all("x" in value["graphs"][name] for name in ASYNC_GRAPHS)
    assert value["graphs"][ERROR_GRAPH] == {"error": "Not enough data to display."}
    assert errors_of("admin-stats.json", value) == []


def test_statistics_at_home_need_no_other_session() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    assert fetch(fake, channel, 2) == expected_value(channel)
    assert fake.dc_calls == [(2, GET), (2, LOAD), (2, LOAD)]
    assert fake.dc_connections == []


def test_without_stats_dc_they_are_asked_at_home_and_the_migration_followed() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 5)
    assert fetch(fake, channel, None) == expected_value(channel)
    assert api_calls_on(fake, 2) == [GET, "auth.ExportAuthorization"]
    assert api_calls_on(fake, 5) == [*HANDSHAKE, "auth.ImportAuthorization", GET, LOAD, LOAD]


def test_stats_migrate_is_followed_once_and_the_tokens_loaded_where_they_were_issued() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 5, said=4)
    assert fetch(fake, channel, 4) == expected_value(channel)
    assert api_calls_on(fake, 2) == ["auth.ExportAuthorization"] * 2
    assert api_calls_on(fake, 4) == [*HANDSHAKE, "auth.ImportAuthorization", GET]
    assert api_calls_on(fake, 5) == [*HANDSHAKE, "auth.ImportAuthorization", GET, LOAD, LOAD]
    assert fake.open_connections == 0


def test_a_second_stats_migrate_is_an_error() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    fake.fail(GET, "STATS_MIGRATE_4", times=2)
    error = fetch(fake, channel, 2)
    assert isinstance(error, AdminStatsError)
    assert str(error) == (
        "stats.getBroadcastStats: STATS_MIGRATE_4 again, after DC2 sent us to DC4"
    )
    assert fake.calls.count(GET) == 2
    assert LOAD not in fake.calls


def test_a_migration_to_where_it_was_asked_is_an_error() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    fake.fail(GET, "STATS_MIGRATE_2")
    error = fetch(fake, channel, 2)
    assert str(error) == "stats.getBroadcastStats: STATS_MIGRATE_2 from DC2"
    assert fake.calls.count(GET) == 1


def test_an_input_peer_channel_is_accepted() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)

    async def work(client: Any) -> Any:
        peer = raw.types.InputPeerChannel(channel_id=channel.id, access_hash=channel.access_hash)
        return await fetch_admin_stats(DcSessions(client), peer, 2, collected_at=NOW)

    assert with_client(fake, work) == expected_value(channel)


# --- refusals and failures: one AdminStatsError, never a sleep --------------------------------


def test_an_account_that_is_not_an_admin_gets_chat_admin_required() -> None:
    fake = FakeTelegram()
    channel = fake.add_channel(rich_channel())
    error = fetch(fake, channel, 2)
    assert isinstance(error, AdminStatsError)
    assert error.not_admin
    assert str(error) == (
        "stats.getBroadcastStats: this account is not an admin of the channel (CHAT_ADMIN_REQUIRED)"
    )
    assert fake.calls == [GET]


def test_an_admin_no_more_on_the_stats_dc_is_refused_there() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.fail(GET, "CHAT_ADMIN_REQUIRED")
    error = fetch(fake, channel, 4)
    assert isinstance(error, AdminStatsError)
    assert error.not_admin
    assert api_calls_on(fake, 4)[-1] == GET
    assert LOAD not in fake.calls
    assert fake.open_connections == 0


def test_a_flood_wait_on_the_statistics_is_not_slept_through() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.fail(GET, "FLOOD_WAIT_5")  # Pyrogram would sleep through 5 s by default
    started = time.monotonic()
    error = fetch(fake, channel, 4)
    assert time.monotonic() - started < 3
    assert isinstance(error, AdminStatsError)
    assert error.flood_wait == 5
    assert not error.not_admin
    assert str(error) == (
        "stats.getBroadcastStats: FloodWait of 5 s (not waited for: the next due pass asks again)"
    )
    assert fake.calls.count(GET) == 1


def test_a_flood_wait_on_a_graph_is_not_slept_through() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.fail(LOAD, "FLOOD_WAIT_4")
    started = time.monotonic()
    error = fetch(fake, channel, 4)
    assert time.monotonic() - started < 3
    assert isinstance(error, AdminStatsError)
    assert error.flood_wait == 4
    assert re.fullmatch(
        r"stats\.loadAsyncGraph \((views_by_source|languages)\): FloodWait of 4 s "
        r"\(not waited for: the next due pass asks again\)",
        str(error),
    )
    assert fake.calls.count(LOAD) == 2  # both were asked at once; neither again


def test_an_expired_graph_token_is_an_error() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    fake.fail(LOAD, "GRAPH_EXPIRED_RELOAD", times=2)
    error = fetch(fake, channel, 2)
    assert str(error) == "stats.loadAsyncGraph (views_by_source): 400 GRAPH_EXPIRED_RELOAD"


def test_an_error_kurigram_does_not_know_is_named_as_telegram_sent_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # kurigram notes unknown errors in ./unknown_errors.txt
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 2)
    fake.fail(GET, "STATS_SOMETHING_NEW")
    assert str(fetch(fake, channel, 2)) == "stats.getBroadcastStats: 400 STATS_SOMETHING_NEW"


def test_a_dc_that_cannot_be_reached_is_an_error_and_leaves_nothing_open() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.fail("auth.ImportAuthorization", "AUTH_BYTES_INVALID", times=3)  # kurigram tries 3

    async def work(client: Any) -> tuple[Any, ...]:
        async with DcSessions(client) as sessions:
            with pytest.raises(AdminStatsError) as failed:
                await fetch_admin_stats(sessions, input_channel(channel), 4)
            assert client.sessions == {}  # not left registered for the next caller
            assert fake.open_connections == 1  # the client's own
            # The next caller of the pass opens it again.
            value = await fetch_admin_stats(sessions, input_channel(channel), 4, collected_at=NOW)
        return str(failed.value), value

    message, value = with_client(fake, work)
    assert message == "cannot open a session on DC4: 400 AUTH_BYTES_INVALID"
    assert value == expected_value(channel)
    assert fake.open_connections == 0


def test_no_answer_within_the_timeout_is_an_error() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.hang.add(GET)
    started = time.monotonic()
    error = fetch(fake, channel, 4, timeout=1)
    assert time.monotonic() - started < 3
    assert str(error) == "no answer within 1 s"
    assert fake.open_connections == 0


def test_cancellation_propagates_and_close_leaves_nothing_open() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    fake.hang.add(LOAD)

    async def work(client: Any) -> None:
        async with DcSessions(client) as sessions:
            task = asyncio.create_task(fetch_admin_stats(sessions, input_channel(channel), 4))
            while fake.calls.count(LOAD) < 2:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert client.sessions == {}

    with_client(fake, work)
    assert fake.open_connections == 0


# --- one session per pass and DC -------------------------------------------------------------


def test_channels_on_one_stats_dc_share_its_session_even_asking_at_once() -> None:
    fake = FakeTelegram()
    first = with_stats(fake.add_channel(rich_channel()), 4)
    second = with_stats(fake.add_channel(small_channel(1, "ITAM_Events")), 4)

    async def work(client: Any) -> list[Any]:
        async with DcSessions(client) as sessions:
            return await asyncio.gather(
                *(
                    fetch_admin_stats(sessions, input_channel(c), 4, collected_at=NOW)
                    for c in (first, second)
                )
            )

    values = with_client(fake, work)
    assert values == [expected_value(first), expected_value(second)]
    assert fake.calls.count("auth.ExportAuthorization") == 1
    assert fake.calls.count("auth.ImportAuthorization") == 1
    assert api_calls_on(fake, 4).count(GET) == 2
    assert api_calls_on(fake, 4).count(LOAD) == 4
    assert fake.open_connections == 0


def test_media_downloads_of_the_pass_use_the_session_the_statistics_opened() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)
    file = fake.add_file("photo", 77, "m", b"\xff\xd8 photo", 4)

    async def work(client: Any) -> dict[str, bytes]:
        async with DcSessions(client) as sessions:
            await fetch_admin_stats(sessions, input_channel(channel), 4)
            got = await download_files(client, [file.media_file()])
            assert 4 in client.sessions  # downloads leave a session they did not open
        assert client.sessions == {}
        return got

    assert with_client(fake, work) == {file.key: file.data}
    assert fake.calls.count("auth.ImportAuthorization") == 1
    assert api_calls_on(fake, 4)[-1] == "upload.GetFile"
    assert fake.open_connections == 0


def test_a_session_someone_else_opened_is_used_and_left_to_them() -> None:
    fake = FakeTelegram()
    channel = with_stats(fake.add_channel(rich_channel()), 4)

    async def work(client: Any) -> None:
        theirs = await client.get_session(4)
        async with DcSessions(client) as sessions:
            assert await sessions.get(4) is theirs
            await fetch_admin_stats(sessions, input_channel(channel), 4)
        assert client.sessions == {4: theirs}  # still theirs, still open
        assert fake.open_connections == 2
        await client.sessions.pop(4).stop()

    with_client(fake, work)
    assert fake.calls.count("auth.ImportAuthorization") == 1


def test_the_home_dc_is_the_clients_own_session() -> None:
    fake = FakeTelegram()

    async def work(client: Any) -> None:
        sessions = DcSessions(client)
        assert await sessions.get() is client.session
        assert await sessions.get(2) is client.session
        await sessions.close()
        assert client.session.is_started.is_set()  # closing stops only what it opened

    with_client(fake, work)
    assert fake.calls == []
