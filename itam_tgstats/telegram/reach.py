"""Why Telegram could not be reached, in words; where it was tried, for LOG_LEVEL=DEBUG.

Pyrogram reports a failed connection as whatever broke inside it: a `KeyError: 0` from its
decoder when the connection closed early or something other than Telegram answered (a
proxy, a firewall), a bare `ConnectionError` after its three tries, a `TimeoutError`. The
transport it dials through is wrapped (`traced`) to note the data center, the address and
the network's own error, so that the one error line says what failed, in words, and a
DEBUG line says where and the low-level cause.
"""

from __future__ import annotations

import errno
import re
import socket
from dataclasses import dataclass
from typing import Any

from itam_tgstats.errors import describe

# Pyrogram's protocol dc id: negative for a media-only connection, shifted for test servers.
_TEST_DC_SHIFT = 10_000


@dataclass
class Trace:
    """What one client's connections did (the last one's, for each field)."""

    dc: int | None = None
    address: tuple[str, int] | None = None
    error: OSError | None = None  # the network's error from the last failed connect
    connected: bool = False  # some connect() went through
    closed: bool = False  # the other side closed a connection (a read got nothing)

    def where(self) -> str:
        """`data center 2 (149.154.167.51:443)`, as far as it is known."""
        if self.dc is None:
            dc = "data center unknown"
        else:
            number = abs(self.dc) % _TEST_DC_SHIFT
            kind = " (media)" if self.dc < 0 else ""
            test = " (test servers)" if abs(self.dc) >= _TEST_DC_SHIFT else ""
            dc = f"data center {number}{kind}{test}"
        if self.address is None:
            return f"{dc}, no address dialled"
        host, port = self.address
        return f"{dc} at [{host}]:{port}" if ":" in host else f"{dc} at {host}:{port}"


def traced(factory: Any = None) -> Any:
    """A subclass of the transport `factory` (Pyrogram's default when None) noting what its
    connections do in a fresh `Trace`, its class attribute `trace`."""
    if factory is None:
        from pyrogram.connection.transport import TCPAbridged  # noqa: PLC0415 - loads Pyrogram

        factory = TCPAbridged
    trace = Trace()

    class Traced(factory):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            trace.dc = kwargs.get("dc_id", trace.dc)
            super().__init__(*args, **kwargs)

        async def connect(self, address: tuple[str, int]) -> None:
            trace.address = (str(address[0]), int(address[1]))
            try:
                await super().connect(address)
            except OSError as e:
                trace.error = e
                raise
            trace.connected, trace.error = True, None

        async def recv(self, *args: Any, **kwargs: Any) -> Any:
            data = await super().recv(*args, **kwargs)
            if data is None:
                trace.closed = True
            return data

    Traced.trace = trace
    Traced.__name__ = Traced.__qualname__ = f"Traced{factory.__name__}"
    return Traced


def trace_of(client: Any) -> Trace | None:
    """The Trace of a client made with a `traced` transport, else None."""
    trace = getattr(getattr(client, "protocol_factory", None), "trace", None)
    return trace if isinstance(trace, Trace) else None


# A network error's words, by its type, then by its errno (the first that matches).
_BY_TYPE: tuple[tuple[type[OSError] | tuple[type[OSError], ...], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    ((ConnectionResetError, ConnectionAbortedError, BrokenPipeError), "the connection was cut"),
    (TimeoutError, "no answer in time"),
    (socket.gaierror, "the name of the server could not be resolved"),
)
_BY_ERRNO = {
    errno.ENETUNREACH: "the network is unreachable",
    errno.EHOSTUNREACH: "the server is unreachable",
    errno.ENETDOWN: "the network is down",
    errno.EACCES: "the connection was not allowed",
    errno.EPERM: "the connection was not allowed",
}


def network_words(error: OSError) -> str:
    """A network error in words, without Python's names for it."""
    for kinds, words in _BY_TYPE:
        if isinstance(error, kinds):
            return words
    if error.errno in _BY_ERRNO:
        return _BY_ERRNO[error.errno]
    if error.strerror:
        return str(error.strerror)[:1].lower() + str(error.strerror)[1:]
    return "the connection failed"


def connect_words(error: BaseException, trace: Trace | None) -> str:
    """Why a connection could not be set up, in words: the network's own error when no
    connection ever went through (Pyrogram's ConnectionError after its tries, or its
    session that never started), else what `error` means."""
    if trace is not None and trace.error is not None and not trace.connected:
        return network_words(trace.error)
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if type(error) is not ConnectionError and isinstance(error, OSError):
        return network_words(error)
    if trace is not None and trace.closed:
        return "the connection was closed before Telegram answered: a firewall or proxy?"
    # Pyrogram's decoder (KeyError, struct.error, ValueError …) or handshake checks.
    return "what answered was not Telegram: a firewall or proxy in the way?"


def call_words(error: OSError) -> str:
    """Why a call of an established connection failed, in words (Pyrogram gave up)."""
    if isinstance(error, TimeoutError):
        # Pyrogram's "Failed to invoke … after 10 retries": server errors or a broken link.
        tries = re.search(r"after (\d+) retries", str(error))
        return f"no good answer in {tries.group(1)} tries" if tries else "no answer in time"
    if type(error) is ConnectionError:  # Pyrogram's own: the client lost its connection
        return "the connection was lost"
    return network_words(error)


def not_started(trace: Trace | None) -> str:
    """The DEBUG line's detail when Pyrogram returned without a working session."""
    if trace is None:
        return "data center unknown: no answer to the first requests"
    if trace.error is not None and not trace.connected:
        return f"{trace.where()}: the network said {describe(trace.error)}"
    return f"{trace.where()}: no answer to the first requests"


def low_level(error: BaseException, trace: Trace | None) -> str:
    """The DEBUG line's detail: where, and every exception involved."""
    parts = [describe(error)]
    if trace is not None and trace.error is not None and trace.error is not error:
        parts.append(f"the network said {describe(trace.error)}")
    if trace is not None and trace.closed:
        parts.append("the other side closed a connection")
    where = trace.where() if trace is not None else "data center unknown"
    return f"{where}: {'; '.join(parts)}"
