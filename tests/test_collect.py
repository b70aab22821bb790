"""A whole pass: real redis-server, stand-in Telegram; keys, atomicity, failures, lock."""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from typing import Any

import pytest
import redis

from itam_tgstats.config import Settings
from itam_tgstats.errors import LockLost, SessionError, StoreError, TelegramError
from itam_tgstats.store import peer_key
from itam_tgstats.store.connection import Connection
from itam_tgstats.store.keys import (
    HISTORY_KEY,
    LAST_UPDATE_KEY,
    LOCK_KEY,
    POSTS_KEY,
    STATS_KEY,
    STATUS_KEY,
)
from itam_tgstats.telegram.client import TelegramSource
from tests.channels import BIG_CHANNEL_ID
from tests.faketg import FakeTelegram
from tests.helpers import make_settings, run_pass, snapshot_bytes, status


def test_pass_writes_the_contracts_keys(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    assert run_pass(make_settings(fake_tg, redis_url), fake_tg) is True
    stats = json.loads(rdb.get(STATS_KEY))
    posts = json.loads(rdb.get(POSTS_KEY))
    assert stats["channel_id"] == -1002987654321
    assert [p["id"] for p in posts] == [1014, 1012, 1011, 1010, 1006]
    assert rdb.get(LAST_UPDATE_KEY) == stats["collected_at"]
    assert set(posts[0]) >= {
        "id",
        "text",
        "date",
        "views",
        "forwards",
        "reactions",
        "reactions_total",
        "comments_count",
        "link",
        "has_media",
        "media_type",
    }
    # UTF-8 characters, not \u escapes
    assert "❤" in rdb.get(POSTS_KEY) and "\\u" not in rdb.get(POSTS_KEY)
    # no TTL on data keys; the lock is released
    assert all(rdb.ttl(k) == -1 for k in (STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY))
    assert rdb.exists(LOCK_KEY) == 0
    st = status(rdb)
    assert st == {
        "ok": True,
        "last_success_at": stats["collected_at"],
        "last_failure_at": None,
        "last_error": None,
        "exit_code": 0,
        "consecutive_failures": 0,
        "retry_after": None,
        "channels": {
            "itatmisis": {
                "ok": True,
                "last_error": None,
                "last_success_at": stats["collected_at"],
                "retry_after": None,
                "consecutive_failures": 0,
                "admin_stats_at": None,
                "admin_stats_error": None,
            }
        },
    }
    [member] = rdb.zrange(HISTORY_KEY, 0, -1, withscores=True)
    point = json.loads(member[0])
    assert point == {"t": int(member[1]), "subscribers": 5500, "posts": 15}
    assert member[0] == json.dumps(point, separators=(",", ":"))
    cached = json.loads(rdb.get(peer_key(str(fake_tg.user_id), "itatmisis")))
    assert cached["id"] == BIG_CHANNEL_ID


def test_second_pass_uses_the_cached_peer(fake_tg: FakeTelegram, redis_url: str) -> None:
    settings = make_settings(fake_tg, redis_url)
    run_pass(settings, fake_tg)
    first = list(fake_tg.api_calls)
    fake_tg.calls.clear()
    run_pass(settings, fake_tg)
    assert first == ["contacts.ResolveUsername", "channels.GetFullChannel", "messages.GetHistory"]
    assert sorted(fake_tg.api_calls) == ["channels.GetFullChannel", "messages.GetHistory"]


def test_history_is_trimmed_to_history_days(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """Days, not hours or minutes: with 2 days, a 47-hour-old point stays, a 49-hour one goes."""
    now = int(time.time())
    rdb.zadd(
        HISTORY_KEY,
        {
            '{"t":1,"subscribers":1,"posts":1}': now - 3 * 86400,
            '{"t":2,"subscribers":2,"posts":2}': now - 49 * 3600,
            '{"t":3,"subscribers":3,"posts":3}': now - 47 * 3600,
            '{"t":4,"subscribers":4,"posts":4}': now - 3600,
        },
    )
    run_pass(make_settings(fake_tg, redis_url, TG_HISTORY_DAYS="2"), fake_tg)
    points = [json.loads(m) for m in rdb.zrange(HISTORY_KEY, 0, -1)]
    assert [p["subscribers"] for p in points] == [3, 4, 5500]


def test_failed_pass_leaves_the_snapshot_byte_for_byte(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake_tg, redis_url)
    run_pass(settings, fake_tg)
    before = snapshot_bytes(rdb)
    fake_tg.channels[0].private = True  # the cached peer is refused, and so is a new resolve
    with pytest.raises(TelegramError):
        run_pass(settings, fake_tg)
    assert snapshot_bytes(rdb) == before
    st = status(rdb)
    assert st["ok"] is False and st["consecutive_failures"] == 1 and st["exit_code"] == 4
    assert st["last_error"] == (
        "channel @itatmisis is private or not readable by this account (CHANNEL_PRIVATE)"
    )
    assert st["last_success_at"] is not None
    assert rdb.exists(LOCK_KEY) == 0
    fake_tg.channels[0].private = False
    fake_tg.fail("contacts.ResolveUsername", "SESSION_REVOKED")
    fake_tg.fail("channels.GetFullChannel", "SESSION_REVOKED")
    with pytest.raises(SessionError):  # asked again at once: its backoff is overridden
        run_pass(settings, fake_tg, retry_now=True)
    assert status(rdb)["consecutive_failures"] == 2
    assert snapshot_bytes(rdb) == before
    run_pass(settings, fake_tg, retry_now=True)
    assert status(rdb)["consecutive_failures"] == 0
    assert status(rdb)["last_error"] is not None  # the last failure's reason is kept


def test_long_flood_wait_sets_retry_after_and_next_pass_skips_telegram(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    settings = make_settings(fake_tg, redis_url)
    fake_tg.fail("contacts.ResolveUsername", "FLOOD_WAIT_3600")
    with pytest.raises(TelegramError):
        run_pass(settings, fake_tg)
    retry_after = status(rdb)["retry_after"]
    assert retry_after is not None and retry_after.endswith("+00:00")
    fake_tg.calls.clear()
    with pytest.raises(TelegramError, match=re.escape(f"wait until {retry_after}")):
        run_pass(settings, fake_tg)
    assert fake_tg.calls == []
    assert status(rdb)["retry_after"] is not None
    assert status(rdb)["consecutive_failures"] == 2


def test_redis_unreachable_fails_before_telegram(fake_tg: FakeTelegram) -> None:
    from tests.conftest import free_port

    settings = make_settings(fake_tg, f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreError, match=r"^Redis at 127\.0\.0\.1:\d+ db 0 failed"):
        run_pass(settings, fake_tg)
    assert fake_tg.calls == []


def test_a_held_lock_skips_the_pass(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    rdb.set(LOCK_KEY, "someone-else", ex=60)
    assert run_pass(make_settings(fake_tg, redis_url), fake_tg) is False
    assert fake_tg.calls == []
    assert rdb.get(LOCK_KEY) == "someone-else"
    assert rdb.exists(STATS_KEY) == 0


def test_concurrent_reader_never_sees_mixed_passes(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """Each pass changes subscribers and the newest post's views together; a reader using
    MGET (one atomic read, as the Go API's GETs would be within one snapshot) checks they match."""
    settings = make_settings(fake_tg, redis_url)
    channel = fake_tg.channels[0]
    newest = max(channel.messages, key=lambda m: m.id)
    stop = threading.Event()
    reads: list[tuple[str | None, str | None, str | None]] = []

    def reader() -> None:
        # Only records what it reads: a mixed snapshot must fail the assertions below, not
        # crash this thread (which pytest would not notice).
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        while not stop.is_set():
            reads.append(tuple(client.mget(STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY)))  # type: ignore[arg-type]
        client.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 21):
            channel.participants = 10_000 + i
            newest.views = 10_000 + i
            run_pass(settings, fake_tg)
    finally:
        stop.set()
        thread.join()
    seen = []
    for stats, posts, updated in reads:
        if stats is None:
            assert posts is None and updated is None  # nothing yet: all three missing
            continue
        assert posts is not None and updated is not None
        s, p = json.loads(stats), json.loads(posts)
        seen.append((s["subscribers_count"], p[0]["views"], s["collected_at"], updated))
    assert len({s[0] for s in seen}) > 1
    assert all(subs == views and c == u for subs, views, c, u in seen)


def test_channel_without_public_username_links_by_id(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """The channel dropped its username after it was resolved: the cached peer still reads it."""
    settings = make_settings(fake_tg, redis_url)
    run_pass(settings, fake_tg)
    fake_tg.channels[0].username = None
    run_pass(settings, fake_tg)
    stats = json.loads(rdb.get(STATS_KEY))
    posts = json.loads(rdb.get(POSTS_KEY))
    assert stats["username"] is None
    assert posts[0]["link"] == f"https://t.me/c/{BIG_CHANNEL_ID}/1014"


def test_telethon_session_string_is_accepted(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    import base64
    import struct

    packed = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, fake_tg.auth_key)
    telethon = "1" + base64.urlsafe_b64encode(packed).decode()
    settings = make_settings(fake_tg, redis_url, TG_SESSION_STRING=telethon)
    assert run_pass(settings, fake_tg) is True
    assert json.loads(rdb.get(STATS_KEY))["subscribers_count"] == 5500
    # No user id in a Telethon string: the peer is cached under the auth key's public id.
    [key] = rdb.keys("tg:peer:*")
    assert key == f"tg:peer:key-{fake_tg.auth_key_id.hex()}:itatmisis"


def monitor(redis_url: str, action: Any) -> list[list[str]]:
    """The commands Redis receives while `action` runs (MONITOR on a connection of its own)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    commands: list[list[str]] = []
    ready = threading.Event()
    done = threading.Event()

    def watch() -> None:
        with client.monitor() as m:
            ready.set()
            for event in m.listen():
                command = event["command"]
                if command == "PING" and done.is_set():
                    return
                commands.append(shlex.split(command))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.05)
    try:
        action()
    finally:
        done.set()
        redis.Redis.from_url(redis_url).ping()
        thread.join(5)
        client.close()
    return commands


def test_snapshot_goes_through_one_multi_exec_and_the_lock_lives_timeout_plus_30(
    fake_tg: FakeTelegram, redis_url: str
) -> None:
    settings = make_settings(fake_tg, redis_url, TG_TIMEOUT="7")
    commands = monitor(redis_url, lambda: run_pass(settings, fake_tg))
    names = [c[0].upper() for c in commands]
    # taken by a script (a lock no pass could hold is taken over: tests/test_reliability.py)
    [lock] = [c for c in commands if c[0].upper() == "SET" and c[1] == LOCK_KEY]
    assert lock[3:] == ["PX", "37000"]  # TG_TIMEOUT + 30 s, exactly
    assert names.count("MULTI") == 1 and names.count("EXEC") == 1
    inside = commands[names.index("MULTI") + 1 : names.index("EXEC")]
    written = {c[1] for c in inside if c[0].upper() == "SET"}
    assert {STATS_KEY, POSTS_KEY, LAST_UPDATE_KEY, STATUS_KEY} <= written
    outside = commands[: names.index("MULTI")] + commands[names.index("EXEC") + 1 :]
    assert not any(c[0].upper() == "SET" and c[1] in written for c in outside)


# When the pass loses tg:lock: after taking it but before it began to watch it (only the
# check of who holds it catches that), or once connected to Telegram, the watch running (the
# watch catches it too). Each at an exact point of the pass, not a time that races it.
LOSING_MOMENTS = ["before the watch", "during the Telegram calls"]


def pass_losing_its_lock(
    settings: Settings,
    fake: FakeTelegram,
    rdb: redis.Redis,
    newer: str | None,
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> list[BaseException]:
    """Run a pass that loses tg:lock to `newer` (None: deleted) at `moment` (one of
    LOSING_MOMENTS). What the pass raised."""

    def swap() -> None:
        if newer is None:
            rdb.delete(LOCK_KEY)
        else:
            rdb.set(LOCK_KEY, newer)

    if moment == "before the watch":
        watch_lock = Connection._watch_lock

        async def watch(self: Connection, token: str) -> None:
            assert rdb.get(LOCK_KEY) == token  # the pass holds it
            swap()
            await watch_lock(self, token)

        monkeypatch.setattr(Connection, "_watch_lock", watch)
    else:
        enter = TelegramSource.__aenter__

        async def connected(self: TelegramSource) -> TelegramSource:
            source = await enter(self)
            assert rdb.exists(LOCK_KEY) == 1  # the pass holds it
            swap()
            return source

        monkeypatch.setattr(TelegramSource, "__aenter__", connected)
    errors: list[BaseException] = []
    try:
        run_pass(settings, fake)
    except (TelegramError, LockLost) as e:
        errors.append(e)
    return errors


@pytest.mark.parametrize("moment", LOSING_MOMENTS)
@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        # Fails before anything is read back: recording it checks the lock first.
        ("FLOOD_WAIT_9999", TelegramError),
        # The channel fails on its own: the pass learns it lost the lock before recording.
        ("CHANNEL_PRIVATE", LockLost),
    ],
)
def test_a_failed_pass_never_deletes_a_lock_another_pass_holds(
    fake_tg: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    failure: str,
    raised: type[BaseException],
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> None:
    settings = make_settings(fake_tg, redis_url)
    fake_tg.fail("contacts.ResolveUsername", failure)
    # Ours expired; another pass took it.
    errors = pass_losing_its_lock(settings, fake_tg, rdb, "another-pass-token", monkeypatch, moment)
    assert [type(e) for e in errors] == [raised]
    # tg:status belongs to the pass holding the lock now: the failure is not recorded.
    assert rdb.get(STATUS_KEY) is None
    assert rdb.get(LOCK_KEY) == "another-pass-token"


@pytest.mark.parametrize("moment", LOSING_MOMENTS)
@pytest.mark.parametrize("lock_change", ["taken", "expired"])
def test_a_pass_that_lost_its_lock_writes_nothing_and_exits_4(
    fake_tg: FakeTelegram,
    redis_url: str,
    rdb: redis.Redis,
    lock_change: str,
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> None:
    settings = make_settings(fake_tg, redis_url)
    run_pass(settings, fake_tg)
    rdb.set("tg:peer:marker", "untouched")
    before = {k: rdb.dump(k) for k in rdb.keys("*")}
    fake_tg.channels[0].participants = 7777  # what this pass would write
    # Taken: ours expired and a newer pass took it. Expired (or Redis lost it): nobody has it.
    newer = "a-newer-pass" if lock_change == "taken" else None
    [error] = pass_losing_its_lock(settings, fake_tg, rdb, newer, monkeypatch, moment)
    assert isinstance(error, LockLost) and error.exit_code == 4
    assert "lost tg:lock" in error.message and "nothing was written" in error.message
    # Not a byte of the pass landed: snapshot, history, status, peers.
    assert {k: rdb.dump(k) for k in rdb.keys("*") if k != LOCK_KEY} == {
        k: v for k, v in before.items() if k != LOCK_KEY
    }
    assert rdb.get(LOCK_KEY) == ("a-newer-pass" if lock_change == "taken" else None)


def test_channels_resolved_before_a_failure_are_cached_anyway(
    fake_tg: FakeTelegram, redis_url: str, rdb: redis.Redis
) -> None:
    """A FloodWait after the resolve must not make the next pass resolve again (the most
    flood-limited call, whose waits escalate when repeated)."""
    settings = make_settings(fake_tg, redis_url)
    fake_tg.fail("messages.GetHistory", "FLOOD_WAIT_3600")
    with pytest.raises(TelegramError):
        run_pass(settings, fake_tg)
    cached = json.loads(rdb.get(peer_key(str(fake_tg.user_id), "itatmisis")))
    assert cached["id"] == BIG_CHANNEL_ID
    assert rdb.exists(STATS_KEY) == 0  # still nothing else written
