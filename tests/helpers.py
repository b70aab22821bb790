"""Running passes against the stand-in Telegram and the suite's Redis."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import redis

from itam_tgstats.collect import collect_once
from itam_tgstats.config import Settings
from itam_tgstats.store import Store
from itam_tgstats.store.keys import HISTORY_KEY, SNAPSHOT_KEYS, STATUS_KEY
from itam_tgstats.telegram.client import TelegramSource
from tests.conftest import FAKE_API_HASH
from tests.faketg import FakeTelegram


def make_settings(fake: FakeTelegram, redis_url: str, **env: str) -> Settings:
    values = {
        "TG_API_ID": "12345",
        "TG_API_HASH": FAKE_API_HASH,
        "TG_SESSION_STRING": fake.session_string(),
        "REDIS_URL": redis_url,
    }
    values.update(env)
    return Settings.from_env(values, Path(os.devnull))


def source_factory(fake: FakeTelegram) -> Any:
    return lambda settings: TelegramSource(settings, protocol_factory=fake.protocol_factory)


def run_pass(settings: Settings, fake: FakeTelegram, *, retry_now: bool = False) -> bool:
    async def main() -> bool:
        store = Store(settings.redis_url)
        try:
            return await collect_once(settings, store, source_factory(fake), retry_now=retry_now)
        finally:
            await store.aclose()

    return asyncio.run(main())


def snapshot_bytes(client: redis.Redis) -> dict[str, Any]:
    """The snapshot keys and history exactly as stored (DUMP is byte-exact)."""
    return {key: client.dump(key) for key in (*SNAPSHOT_KEYS, HISTORY_KEY)}


def status(client: redis.Redis) -> dict[str, Any]:
    import json

    value = client.get(STATUS_KEY)
    assert value is not None
    return dict(json.loads(value))
