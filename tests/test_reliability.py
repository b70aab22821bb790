"""Faults a job meets in years of 96 runs a day: locks, signals, Redis and Telegram failing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from pyrogram import raw

from itam_tgstats.collect import collect_once
from itam_tgstats.errors import StoreError, TelegramError
from itam_tgstats.store import Store
from itam_tgstats.store.keys import HISTORY_KEY, LOCK_KEY, SNAPSHOT_KEYS, STATS_KEY, STATUS_KEY
from tests.channels import post, reactions
from tests.conftest import RedisServer
from tests.faketg import FakeChannel, FakeTelegram
from tests.helpers import make_settings, run_pass, snapshot_bytes, source_factory, status

REPO = Path(__file__).resolve().parent.parent


def spawn(env: dict[str, str], cwd: Path, latency: float = 0.0) -> subprocess.Popen[str]:
    """`tgstats collect` in its own process, talking to the stand-in Telegram."""
    full = {**os.environ, **env, "FAKE_TG_LATENCY": str(latency), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fake_tgstats", "collect"],
        cwd=cwd,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# -- one collector at a time ----------------------------------------------------------------


def test_two_collectors_in_one_process_only_one_contacts_telegram(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake_tg, redis_url)
    fake_tg.latency = 0.2

    async def both() -> list[bool]:
        stores = [Store(redis_url), Store(redis_url)]
        try:
            return list(
                await asyncio.gather(
                    *(collect_once(settings, s, source_factory(fake_tg)) for s in stores)
                )
            )
        finally:
            for s in stores:
                await s.aclose()

    assert sorted(asyncio.run(both())) == [False, True]
    assert fake_tg.api_calls.count("messages.GetHistory") == 1
    assert rdb.zcard(HISTORY_KEY) == 1


def test_two_collector_processes_started_together(
    env: dict[str, str], tmp_path: Path, rdb: redis.Redis
) -> None:
    procs = [spawn(env, tmp_path, latency=1.5) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    skipped = [err for _out, err in outputs if "another pass holds tg:lock; skipping" in err]
    assert len(skipped) == 1
    assert rdb.zcard(HISTORY_KEY) == 1
    assert rdb.exists(LOCK_KEY) == 0


def test_crashed_holders_lock_expires(
    env: dict[str, str], tmp_path: Path, rdb: redis.Redis, fake_tg: FakeTelegram, redis_url: str
) -> None:
    holder = spawn({**env, "TG_TIMEOUT": "20"}, tmp_path, latency=30)
    wait_for(lambda: rdb.exists(LOCK_KEY))
    holder.kill()  # a crash: no cleanup runs
    holder.communicate(timeout=10)
    ttl = rdb.ttl(LOCK_KEY)
    assert 0 < ttl <= 20 + 30
    settings = make_settings(fake_tg, redis_url)
    assert run_pass(settings, fake_tg) is False  # still held: skipped, Telegram untouched
    assert fake_tg.calls == []
    rdb.pexpire(LOCK_KEY, 1)  # let the expiry's time pass
    wait_for(lambda: not rdb.exists(LOCK_KEY))
    assert run_pass(settings, fake_tg) is True


# -- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_call_stops_promptly_and_writes_nothing(
    env: dict[str, str],
    tmp_path: Path,
    rdb: redis.Redis,
    fake_tg: FakeTelegram,
    redis_url: str,
    sig: signal.Signals,
    code: int,
) -> None:
    run_pass(make_settings(fake_tg, redis_url), fake_tg)
    before = snapshot_bytes(rdb)
    proc = spawn(env, tmp_path, latency=60)
    wait_for(lambda: rdb.exists(LOCK_KEY))
    time.sleep(0.3)  # well inside the slow call
    sent = time.monotonic()
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 5
    assert proc.returncode == code
    assert err.splitlines()[-1] == f"error: interrupted by {sig.name}: nothing partial was written"
    assert snapshot_bytes(rdb) == before
    assert rdb.exists(LOCK_KEY) == 0
    st = status(rdb)
    assert st["exit_code"] == code and st["consecutive_failures"] == 1


# -- mid-pass faults --------------------------------------------------------------------------


class KillsRedisAtExec:
    """A TCP relay in front of a Redis server. When the client's stream reaches an EXEC, the
    relay passes on everything before it (MULTI and the queued commands), waits until Redis
    has had them, then SIGKILLs it: the crash lands between the queued writes and their EXEC.
    Later connections find no server."""

    EXEC = b"*1\r\n$4\r\nEXEC\r\n"

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.killed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._relay, args=(client, upstream, True), daemon=True).start()
            threading.Thread(
                target=self._relay, args=(upstream, client, False), daemon=True
            ).start()

    def _relay(self, source: socket.socket, target: socket.socket, watch: bool) -> None:
        held = b""
        try:
            while data := source.recv(65536):
                if not watch:
                    target.sendall(data)
                    continue
                if self.killed.is_set():
                    break  # nothing reaches Redis after the crash
                held += data
                at = held.find(self.EXEC)
                if at >= 0:
                    target.sendall(held[:at])
                    time.sleep(0.3)  # Redis reads and queues them
                    process = self.server.process
                    assert process is not None
                    self.killed.set()
                    process.kill()  # the test's thread clears `server.process` afterwards
                    process.wait(10)
                    break
                # Hold back only a tail that could be the start of an EXEC.
                keep = next(
                    (n for n in range(len(self.EXEC) - 1, 0, -1) if held.endswith(self.EXEC[:n])),
                    0,
                )
                target.sendall(held[: len(held) - keep])
                held = held[len(held) - keep :]
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_redis_killed_between_the_queued_writes_and_their_exec_keeps_the_last_snapshot(
    fake_tg: FakeTelegram, persistent_redis: RedisServer
) -> None:
    """Redis dies (SIGKILL; every write it acknowledged is on disk) after the pass sent its
    writes and before their EXEC: after a restart every key is the last pass's, byte for byte,
    tg:status too; the pass fails as a Redis failure (exit 5)."""
    run_pass(make_settings(fake_tg, persistent_redis.url), fake_tg)
    client = redis.Redis.from_url(persistent_redis.url)
    before = {k: client.dump(k) for k in client.keys("*") if k != LOCK_KEY.encode()}
    client.close()
    assert set(before) >= {k.encode() for k in (*SNAPSHOT_KEYS, HISTORY_KEY, STATUS_KEY)}
    fake_tg.channels[0].participants = 6001  # what this pass would write differs
    relay = KillsRedisAtExec(persistent_redis)
    try:
        with pytest.raises(StoreError) as caught:
            run_pass(make_settings(fake_tg, relay.url), fake_tg)
    finally:
        relay.close()
    assert relay.killed.is_set()  # the pass did reach its EXEC
    assert caught.value.exit_code == 5
    assert "failed while writing the snapshot" in str(caught.value)
    persistent_redis.kill()  # already dead: reaped, forgotten
    persistent_redis.start()
    client = redis.Redis.from_url(persistent_redis.url)
    try:
        after = {k: client.dump(k) for k in client.keys("*") if k != LOCK_KEY.encode()}
        assert after == before
    finally:
        client.close()


@pytest.mark.parametrize("fault", ["hang", "drop"])
def test_telegram_hanging_or_dropping_mid_call_ends_within_timeout(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, fault: str
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_TIMEOUT="2")
    getattr(fake_tg, "hang" if fault == "hang" else "drop_on").add("messages.GetHistory")
    started = time.monotonic()
    with pytest.raises(TelegramError, match="took longer than TG_TIMEOUT=2 s"):
        run_pass(settings, fake_tg)
    assert time.monotonic() - started < 2 + 2
    assert status(rdb)["exit_code"] == 4
    assert rdb.exists(LOCK_KEY) == 0
    assert fake_tg.open_connections == 0


def test_unexpected_answers_still_give_a_valid_snapshot(redis_url: str, rdb: redis.Redis) -> None:
    fake = FakeTelegram()
    c = 99
    messages: list[Any] = [
        # no views/forwards/replies/reactions at all (optional fields missing)
        raw.types.Message(
            id=1, peer_id=raw.types.PeerChannel(channel_id=c), date=1_700_000_000, message="bare"
        ),
        post(c, 2, "", media=raw.types.MessageMediaUnsupported()),
        post(
            c,
            3,
            "todo",
            media=raw.types.MessageMediaToDo(
                todo=raw.types.TodoList(
                    title=raw.types.TextWithEntities(text="t", entities=[]), list=[]
                )
            ),
        ),
        post(c, 4, "odd reactions", reactions=reactions((raw.types.ReactionEmpty(), 3), ("👍", 2))),
        post(
            c,
            5,
            "Ю" * 4096,
            entities=[
                raw.types.MessageEntityBold(offset=0, length=4096),
                raw.types.MessageEntityTextUrl(offset=10, length=20, url="https://itam.example"),
            ],
        ),
        raw.types.MessageEmpty(id=6),
    ]
    messages += [post(c, 100 + i, f"post {i}") for i in range(120)]
    fake.add_channel(FakeChannel(id=c, title="odd", username="odd_channel", messages=messages))
    settings = make_settings(
        fake, redis_url, TG_CHANNEL_USERNAME="odd_channel", TG_POSTS_COUNT="100"
    )
    assert run_pass(settings, fake) is True
    posts = json.loads(rdb.get("tg:channel:posts"))
    assert len(posts) == 100 and posts[0]["id"] == 219
    fake.channels[0].messages = messages[:6]
    run_pass(settings, fake)
    posts = {p["id"]: p for p in json.loads(rdb.get("tg:channel:posts"))}
    assert posts[1]["views"] == 0 and posts[1]["reactions"] == {}
    assert posts[2]["media_type"] == "other" and posts[3]["media_type"] == "other"
    assert posts[4]["reactions"] == {"👍": 2} and posts[4]["reactions_total"] == 2
    assert len(posts[5]["text"]) == 4096
    assert 6 not in posts


# -- a lock no pass could hold ----------------------------------------------------------------

# The longest a pass holds tg:lock: TG_TIMEOUT at its maximum (86,400 s) + 30 s.
LONGEST_LOCK = 86_400 + 30


@pytest.mark.parametrize(
    "plant",
    ["no expiry", "an expiry longer than any pass", "a hash", "a list without expiry"],
)
def test_a_lock_no_pass_could_hold_is_taken_over_with_one_line(
    fake_tg: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    plant: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every pass would skip it forever (exit 0, nothing in tg:status): no pass of this
    tool takes a lock without expiry, or longer than TG_TIMEOUT's maximum + 30 s."""
    if plant == "no expiry":
        rdb.set(LOCK_KEY, "stuck")
    elif plant == "an expiry longer than any pass":
        rdb.set(LOCK_KEY, "stuck", ex=LONGEST_LOCK + 1)
    elif plant == "a hash":
        rdb.hset(LOCK_KEY, "a", "b")
        rdb.expire(LOCK_KEY, 60)
    else:
        rdb.rpush(LOCK_KEY, "x")
    settings = make_settings(fake_tg, redis_url)
    with caplog.at_level(logging.WARNING):
        assert run_pass(settings, fake_tg) is True
    lines = [r.getMessage() for r in caplog.records if "tg:lock" in r.getMessage()]
    assert len(lines) == 1 and "taken over" in lines[0], lines
    assert rdb.exists(LOCK_KEY) == 0  # released by the pass that took it
    assert status(rdb)["ok"] is True


@pytest.mark.parametrize("ttl", [1, 60, LONGEST_LOCK])
def test_a_lock_a_pass_could_hold_is_left_to_it(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis, ttl: int
) -> None:
    rdb.set(LOCK_KEY, "another pass", ex=ttl)
    assert run_pass(make_settings(fake_tg, redis_url), fake_tg) is False
    assert fake_tg.calls == []
    assert rdb.get(LOCK_KEY) == "another pass"


# -- Telegram's unknown errors -----------------------------------------------------------------


def test_an_unknown_error_keeps_telegrams_id_escaped(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, tmp_path: Path, monkeypatch: Any
) -> None:
    """Pyrogram knows no class for a new error id: its class is the code's category, whose
    ID is None ("400 None"). The id Telegram sent is kept, its control characters escaped."""
    monkeypatch.chdir(tmp_path)
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis, itam_jobs")
    fake3.fail("contacts.ResolveUsername", "CHANNEL_BRAND_NEW_\x1b[2J\u202e")
    with pytest.raises(TelegramError) as caught:
        run_pass(settings, fake3)
    message = caught.value.message
    assert "None" not in message
    assert "400 CHANNEL_BRAND_NEW_\\u001b[2J\\u202e" in message
    assert list(tmp_path.iterdir()) == []  # no unknown_errors.txt in the working directory


def test_a_working_directory_pyrogram_cannot_write_in_fails_no_pass(
    fake3: FakeTelegram, redis_url: str, rdb: redis.Redis, tmp_path: Path, monkeypatch: Any
) -> None:
    """Pyrogram appends each unknown error to ./unknown_errors.txt: where it cannot (a
    read-only directory; here a folder of that name, which stops root too), the open()
    raised OSError in place of Telegram's error, and the whole pass failed (exit 1)."""
    (tmp_path / "unknown_errors.txt").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = make_settings(fake3, redis_url, TG_CHANNEL_USERNAME="itatmisis, itam_jobs")
    fake3.fail("contacts.ResolveUsername", "CHANNEL_BRAND_NEW")
    with pytest.raises(TelegramError) as caught:
        run_pass(settings, fake3)
    assert caught.value.exit_code == 4
    assert ": 400 CHANNEL_BRAND_NEW" in caught.value.message
    # one channel failed on its own: the other one is written
    assert rdb.exists("tg:channel:itatmisis:stats") + rdb.exists("tg:channel:itam_jobs:stats") == 1


@pytest.mark.foreign_values(LOCK_KEY)
def test_a_lock_replaced_by_another_type_mid_pass_is_a_lost_lock_not_redis_down(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    from itam_tgstats.errors import LockLost

    settings = make_settings(fake_tg, redis_url)
    fake_tg.latency = 0.3
    errors: list[BaseException] = []

    def slow_pass() -> None:
        try:
            run_pass(settings, fake_tg)
        except (TelegramError, StoreError, LockLost) as e:
            errors.append(e)

    thread = threading.Thread(target=slow_pass)
    thread.start()
    wait_for(lambda: rdb.exists(LOCK_KEY))
    rdb.delete(LOCK_KEY)
    rdb.hset(LOCK_KEY, "not", "a token")
    thread.join(30)
    [error] = errors
    assert isinstance(error, LockLost) and error.exit_code == 4
    assert rdb.exists(STATS_KEY) == 0  # nothing written
