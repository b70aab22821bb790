"""Shared fixtures: a real redis-server started by the suite, and the stand-in Telegram."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.maint_notifications import MaintNotificationsConfig

from tests.channels import rich_channel, small_channel
from tests.faketg import FakeTelegram
from tests.schemas import PlantingRedis, check_database, export_from_env

# The suite's own clients skip the handshake a test's DEBUG logging would report (redis-py
# asks for maintenance notifications, which redis-server 7 does not know).
QUIET: dict[str, Any] = {
    "protocol": 2,
    "maint_notifications_config": MaintNotificationsConfig(enabled=False),
}

# Obviously fake credentials: no real account or application has these.
FAKE_API_ID = "12345"
FAKE_API_HASH = "0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of the suite's own: a free port, a temporary dir, no persistence."""

    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.exit("redis-server is not installed (bash .ci/run installs it)", returncode=3)
        # Persistent servers (for tests that restart Redis) fsync every write to an AOF.
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--save",
                "",
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, **QUIET)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown save."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After a test that passed, every JSON value in its Redis must match docs/schema/.

    Applies to tests that used the suite's Redis (`redis_url`) or a `persistent_redis`.
    What the test wrote itself through `rdb` and the tool left as it was is not checked
    (see PlantingRedis). A test whose planted values the tool then changes without making
    them valid says so: `@pytest.mark.foreign_values("key", …)` (those keys are not checked)
    or, with no key, `@pytest.mark.foreign_values` (nothing is). With TGSTATS_EXPORT_VALUES
    set (a directory), every value checked is also written there for `make types-check`.
    """
    result = yield  # the test's own failure, if any, is reported as it is
    marker = item.get_closest_marker("foreign_values")
    if marker is not None and not marker.args:
        return result
    skip = frozenset(marker.args if marker is not None else ())
    funcargs = getattr(item, "funcargs", {})
    urls = [funcargs["redis_url"]] if "redis_url" in funcargs else []
    server = funcargs.get("persistent_redis")
    if isinstance(server, RedisServer) and server.process is not None:
        urls.append(server.url)
    planted = getattr(funcargs.get("rdb"), "planted", None)
    problems: list[str] = []
    for url in urls:
        # A server the test stopped has nothing to check.
        with (
            redis.Redis.from_url(url, **QUIET) as client,
            contextlib.suppress(redis.ConnectionError),
        ):
            problems += check_database(client, skip, planted, export_from_env())
    if problems:
        shown = problems[:40] + ([f"… and {len(problems) - 40} more"] if len(problems) > 40 else [])
        pytest.fail(
            "values in Redis that do not match docs/schema/:\n  " + "\n  ".join(shown),
            pytrace=False,
        )
    return result


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server of its own that survives restarts (AOF), for tests that kill Redis."""
    server = RedisServer(tmp_path_factory.mktemp("redis-aof"), persistent=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the suite's own server."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url, **QUIET)
    client.flushdb()  # the suite's own server: never one it did not start
    client.close()
    yield redis_server.url


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    client = PlantingRedis.from_url(redis_url, decode_responses=True, **QUIET)
    yield client
    client.close()


@pytest.fixture
def fake_tg() -> FakeTelegram:
    server = FakeTelegram()
    server.add_channel(rich_channel())
    return server


@pytest.fixture
def fake3() -> FakeTelegram:
    """@itatmisis, @ITAM_Events and @itam_jobs on one stand-in Telegram."""
    fake = FakeTelegram()
    fake.add_channel(rich_channel())
    fake.add_channel(small_channel(1, "ITAM_Events", participants=321))
    fake.add_channel(small_channel(2, "itam_jobs", participants=77))
    return fake


@pytest.fixture
def env(
    redis_url: str, fake_tg: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """A complete, valid configuration in the process environment; cwd has no .env."""
    for name in list(os.environ):
        if name.startswith("TG_") or name in ("REDIS_URL", "LOG_LEVEL"):
            monkeypatch.delenv(name)
    values = {
        "TG_API_ID": FAKE_API_ID,
        "TG_API_HASH": FAKE_API_HASH,
        "TG_SESSION_STRING": fake_tg.session_string(int(FAKE_API_ID)),
        "TG_CHANNEL_USERNAME": "itatmisis",
        "REDIS_URL": redis_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return values
