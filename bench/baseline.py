"""The baseline: the pass written the way most Pyrogram users would, high-level methods only.

`async with Client(...)` (start), `get_chat`, `get_chat_history_count`, `get_chat_history`
and `get_discussion_replies_count` per post. The stand-in Telegram learns the few extra
functions these use, answering with real raw types as for the product.
"""

from __future__ import annotations

import time
from typing import Any

from pyrogram import Client, raw

from tests.faketg import FakeTelegram, RpcFailure


def teach_high_level_calls(fake: FakeTelegram) -> None:
    """Handlers for what Client.start() and the high-level methods call."""

    def state(_q: Any, _k: bytes) -> Any:
        return raw.types.updates.State(pts=1, qts=0, date=int(time.time()), seq=1, unread_count=0)

    def full_user(_q: Any, _k: bytes) -> Any:
        me = raw.types.User(id=fake.user_id, is_self=True, first_name="Bench", access_hash=1)
        full = raw.types.UserFull(
            id=fake.user_id,
            settings=raw.types.PeerSettings(),
            notify_settings=raw.types.PeerNotifySettings(),
            common_chats_count=0,
        )
        return raw.types.users.UserFull(full_user=full, chats=[], users=[me])

    def users(_q: Any, _k: bytes) -> Any:
        return [raw.types.User(id=fake.user_id, is_self=True, first_name="Bench", access_hash=1)]

    def replies(query: Any, _k: bytes) -> Any:
        channel = fake.channels[0]
        message = next((m for m in channel.messages if m.id == query.msg_id), None)
        if message is None or getattr(message, "replies", None) is None:
            raise RpcFailure("MSG_ID_INVALID")
        return raw.types.messages.ChannelMessages(
            pts=1, count=message.replies.replies, messages=[], topics=[], chats=[], users=[]
        )

    def split_ranges(_q: Any, _k: bytes) -> Any:
        return [raw.types.MessageRange(min_id=1, max_id=2**31 - 1)]

    fake.handlers[raw.functions.messages.GetSplitRanges] = split_ranges
    fake.handlers[raw.functions.updates.GetState] = state
    fake.handlers[raw.functions.users.GetFullUser] = full_user
    fake.handlers[raw.functions.users.GetUsers] = users
    fake.handlers[raw.functions.messages.GetReplies] = replies


async def baseline_pass(fake: FakeTelegram, session_string: str, username: str, posts: int) -> Any:
    """One pass the high-level way; returns what it read."""
    app = Client(
        "baseline",
        api_id=12345,
        api_hash="0123456789abcdef0123456789abcdef",
        session_string=session_string,
        in_memory=True,
        protocol_factory=fake.protocol_factory,
    )
    async with app:
        chat = await app.get_chat(username)
        total = await app.get_chat_history_count(username)
        messages = [m async for m in app.get_chat_history(username, limit=posts)]
        comments = {}
        for message in messages:
            if message.service or message.empty:
                continue
            try:
                comments[message.id] = await app.get_discussion_replies_count(chat.id, message.id)
            except Exception:  # noqa: BLE001 - posts without a thread have no count
                comments[message.id] = 0
        return chat.members_count, total, len(messages), comments
