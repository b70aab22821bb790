"""A Telegram that cannot be reached, in plain words: `collect`, `--dry-run` and the pieces."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from itam_tgstats import collect as collect_module
from itam_tgstats.cli import app
from itam_tgstats.errors import TelegramError
from itam_tgstats.telegram import reach
from itam_tgstats.telegram.login import Credentials, login
from tests.conftest import FAKE_API_HASH
from tests.faketg import FakeTelegram
from tests.helpers import source_factory
from tests.telegram.test_login import Script

# Python's and Pyrogram's names for what went wrong: never in the one line.
INTERNAL_NAMES = ("KeyError", "ConnectionError", "Errno", "TimeoutError", "OSError")


@pytest.fixture
def unreachable(
    env: dict[str, str], fake_tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> FakeTelegram:
    """A valid configuration; every connection to the stand-in Telegram is refused."""
    monkeypatch.setattr(collect_module, "default_source_factory", source_factory(fake_tg))
    fake_tg.unreachable = True
    return fake_tg


@pytest.mark.parametrize("command", [["collect"], ["collect", "--dry-run"]])
def test_a_refused_connection_is_said_in_words(
    unreachable: FakeTelegram, command: list[str]
) -> None:
    result = CliRunner().invoke(app, command)
    assert (result.exit_code, result.stdout) == (4, "")
    line = result.stderr.splitlines()[-1]
    assert line == (
        "error: cannot reach Telegram: the connection could not be set up (connection refused)"
    )
    assert not any(name in line for name in INTERNAL_NAMES)


def test_debug_names_where_it_tried_for_a_pass(
    unreachable: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    result = CliRunner().invoke(app, ["collect"])
    assert result.exit_code == 4
    [line] = [ln for ln in result.stderr.splitlines() if "cannot connect to Telegram's" in ln]
    # the session string's home: data center 2, at Pyrogram's address for it
    assert "data center 2 at 149.154.167.51:443" in line
    assert "ConnectionRefusedError" in line  # the low-level cause, at DEBUG only


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (ConnectionResetError(104, "Connection reset by peer"), "the connection was cut"),
        (BrokenPipeError(32, "Broken pipe"), "the connection was cut"),
        (TimeoutError("Connection timed out"), "no answer in time"),
        (socket.gaierror(-2, "Name or service not known"),
         "the name of the server could not be resolved"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "the network is unreachable"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "the server is unreachable"),
        (OSError(errno.EACCES, "Permission denied"), "the connection was not allowed"),
        (OSError(errno.EIO, "Input/output error"), "input/output error"),
        (OSError(), "the connection failed"),
    ],
)  # fmt: skip
def test_network_errors_in_words(error: OSError, words: str) -> None:
    assert reach.network_words(error) == words


def test_pyrogram_giving_up_after_its_tries_says_the_networks_reason() -> None:
    """Pyrogram's bare ConnectionError after three refused tries: the trace knows why."""
    trace = reach.Trace(dc=2, address=("149.154.167.51", 443))
    trace.error = ConnectionRefusedError(111, "Connection refused")
    assert reach.connect_words(ConnectionError(), trace) == "connection refused"
    assert reach.connect_words(ConnectionError(), None) == reach.connect_words(KeyError(0), None)
    closed = reach.Trace(connected=True, closed=True)
    assert reach.connect_words(KeyError(0), closed) == (
        "the connection was closed before Telegram answered: a firewall or proxy?"
    )
    assert reach.connect_words(TimeoutError(), closed) == "no answer in time"


@pytest.mark.parametrize(
    ("dc", "address", "where"),
    [
        (2, ("149.154.167.51", 443), "data center 2 at 149.154.167.51:443"),
        (-4, ("149.154.167.92", 443), "data center 4 (media) at 149.154.167.92:443"),
        (10_002, ("149.154.167.40", 80), "data center 2 (test servers) at 149.154.167.40:80"),
        (5, ("2001:b28:f23f:f005::a", 443), "data center 5 at [2001:b28:f23f:f005::a]:443"),
        (None, None, "data center unknown, no address dialled"),
    ],
)
def test_where_it_tried(dc: int | None, address: Any, where: str) -> None:
    assert reach.Trace(dc=dc, address=address).where() == where


def test_the_traced_transport_notes_the_dc_and_the_address(fake_tg: FakeTelegram) -> None:
    base = fake_tg.protocol_factory
    transport = reach.traced(base)
    assert issubclass(transport, base)

    async def dial() -> None:
        connection = transport(dc_id=-4)
        await connection.connect(("149.154.167.92", 443))
        await connection.close()

    asyncio.run(dial())
    trace = transport.trace
    assert (trace.dc, trace.address, trace.connected, trace.error) == (
        -4, ("149.154.167.92", 443), True, None
    )  # fmt: skip
    fake_tg.unreachable = True
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(dial())
    assert isinstance(trace.error, ConnectionRefusedError)
    fake_tg.unreachable = False  # Pyrogram's next try goes through: the refusal is history
    asyncio.run(dial())
    assert (trace.connected, trace.error) == (True, None)
    assert reach.traced(fake_tg.protocol_factory).trace is not trace  # one per client


class Hanging:
    """Accepts the connection, then closes it before answering anything."""

    def __init__(self, **_: object) -> None:
        pass

    async def connect(self, _address: tuple[str, int]) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, _data: bytes) -> None:
        pass

    async def recv(self) -> bytes | None:
        return None  # what Pyrogram's transport gives for a connection closed


def test_a_connection_closed_before_any_answer_is_said_so() -> None:
    """What this sandbox's network does to Telegram's address (Pyrogram: `KeyError: 0`)."""
    with pytest.raises(TelegramError) as caught:
        asyncio.run(login(Credentials(12345, FAKE_API_HASH), Script(), protocol_factory=Hanging))
    assert str(caught.value) == (
        "cannot reach Telegram: the connection could not be set up "
        "(the connection was closed before Telegram answered: a firewall or proxy?)"
    )


def test_the_low_level_detail_names_both_errors() -> None:
    trace = reach.Trace(dc=2, address=("149.154.167.51", 443), error=ConnectionRefusedError())
    text = reach.low_level(ConnectionError(), trace)
    assert text.startswith("data center 2 at 149.154.167.51:443: ConnectionError")
    assert "the network said ConnectionRefusedError" in text
