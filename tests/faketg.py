"""A stand-in Telegram at the network seam.

`FakeTelegram.protocol_factory` replaces Pyrogram's TCP transport class. Everything above
it is Pyrogram's own: the session encrypts real MTProto 2.0 messages with the session's
auth key; this server decrypts them, answers each function with real `pyrogram.raw.types`
objects (serialised to bytes, encrypted, and parsed back by Pyrogram exactly like wire
data), records the calls, and can answer with real RPC errors, add latency, hang, or drop
the connection.

It is several data centers at once: a connection belongs to the DC whose address it dials
(Pyrogram's own table for the home DC, help.getConfig's `dc_options` for the others), an auth
key lives on the DC that created it, and files live on one DC each (`add_file`). Another DC
learns who the user is through auth.exportAuthorization on the home DC and
auth.importAuthorization there, as on Telegram. `dc_calls` records which DC each call reached.

A channel's statistics for admins (`FakeChannel.stats`, see fakestats.py) live on one DC too:
stats.getBroadcastStats asked elsewhere answers STATS_MIGRATE_<dc>, and the graph tokens it
sends are loaded with stats.loadAsyncGraph there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pyrogram import raw
from pyrogram.crypto import aes
from pyrogram.crypto.mtproto import kdf
from pyrogram.raw.core import Int, Long, Message, MsgContainer, TLObject, Vector
from pyrogram.storage.sqlite_storage import PROD as PROD_ADDRESSES

from itam_tgstats.models import MediaFile
from itam_tgstats.telegram.session_string import SessionData
from tests.fakeauth import FakeAccount, Handshake, Srp, register_test_server_key
from tests.fakestats import FakeStats

# Calls Pyrogram makes to set up a connection, not for the pass itself.
SETUP_CALLS = frozenset({"Ping", "PingDelayDisconnect", "help.GetConfig"})

ERROR_CODES = {
    "FLOOD_WAIT": 420,
    "AUTH_KEY_UNREGISTERED": 401,
    "SESSION_REVOKED": 401,
    "USER_DEACTIVATED": 401,
    "AUTH_KEY_DUPLICATED": 406,
    "SESSION_PASSWORD_NEEDED": 401,
    "INTERNAL": 500,
    "FILE_MIGRATE": 303,
    "USER_MIGRATE": 303,
    "PHONE_MIGRATE": 303,
    "NETWORK_MIGRATE": 303,
    "STATS_MIGRATE": 303,
}

# The data centers, by the addresses a client dials. Production addresses are Pyrogram's
# own table (where a session string's home DC is reached) and help.getConfig names the
# same ones; the media-only addresses are the fake's own.
DC_IDS = (1, 2, 3, 4, 5)
MEDIA_ADDRESSES = {dc: f"10.77.0.{dc}" for dc in DC_IDS}
PORT = 443


def error_code(message: str) -> int:
    """The RPC error code Telegram sends with `message`."""
    for prefix, code in ERROR_CODES.items():
        if message.startswith(prefix):
            return code
    return 400


@dataclass
class FakeChannel:
    """A channel as the server knows it; `messages` are raw Message/MessageService objects."""

    id: int
    title: str
    username: str | None
    access_hash: int = 0x1234_5678_9ABC
    usernames: list[raw.types.Username] = field(default_factory=list)
    participants: int = 5500
    messages: list[Any] = field(default_factory=list)
    private: bool = False
    linked_chat_id: int | None = None
    # Admin statistics: what channels.getFullChannel says (whether this account may read them,
    # and where), and what stats.getBroadcastStats answers (None: CHAT_ADMIN_REQUIRED, as when
    # can_view_stats is false).
    can_view_stats: bool = False
    stats_dc: int | None = None
    stats: FakeStats | None = None

    def names(self) -> set[str]:
        names = {u.username.lower() for u in self.usernames if u.active}
        if self.username:
            names.add(self.username.lower())
        return names

    def raw_channel(self) -> raw.types.Channel:
        return raw.types.Channel(
            id=self.id,
            title=self.title,
            photo=raw.types.ChatPhotoEmpty(),
            date=1_600_000_000,
            broadcast=True,
            access_hash=self.access_hash,
            username=self.username,
            usernames=self.usernames or None,
            has_link=self.linked_chat_id is not None,
        )


def dc_options(this_dc: int = 2) -> list[raw.types.DcOption]:
    """Every DC's production address (the home DC first), then the media-only ones."""
    order = [this_dc, *(dc for dc in DC_IDS if dc != this_dc)]
    return [
        *(raw.types.DcOption(id=dc, ip_address=PROD_ADDRESSES[dc], port=PORT) for dc in order),
        *(
            raw.types.DcOption(id=dc, ip_address=MEDIA_ADDRESSES[dc], port=PORT, media_only=True)
            for dc in order
        ),
    ]


def dc_of_address(address: tuple[str, int]) -> tuple[int, bool] | None:
    """(DC, media-only) a production or media address belongs to; None for an unknown one."""
    host = address[0]
    for dc in DC_IDS:
        if PROD_ADDRESSES.get(dc) == host:
            return dc, False
        if MEDIA_ADDRESSES[dc] == host:
            return dc, True
    return None


def server_config(this_dc: int = 2) -> raw.types.Config:
    """help.getConfig's answer: a plausible Config; Pyrogram reads `dc_options` to reach a DC."""
    return raw.types.Config(
        date=int(time.time()),
        expires=int(time.time()) + 3600,
        test_mode=False,
        this_dc=this_dc,
        dc_options=dc_options(this_dc),
        dc_txt_domain_name="apv3.stel.com",
        chat_size_max=200,
        megagroup_size_max=200000,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=4,
    )


@dataclass
class FakeFile:
    """A photo size or a document thumbnail as the server stores it, on one data center."""

    kind: str  # "photo" or "document"
    id: int
    size_type: str
    data: bytes
    dc_id: int
    access_hash: int = 0x0F11_E5EE_D5
    file_reference: bytes = b"\x02fileref"
    expired: bool = False  # answer FILE_REFERENCE_EXPIRED, as after the message was edited

    @property
    def key(self) -> str:
        return f"tg:media:{self.id}:{self.size_type}"

    def media_file(self) -> MediaFile:
        """The download target a client would build from the message carrying this file."""
        return MediaFile(
            key=self.key,
            kind=self.kind,
            id=self.id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            dc_id=self.dc_id,
            size_type=self.size_type,
            size=len(self.data),
        )


class RpcFailure(Exception):
    """Raised by a handler to answer with an RPC error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FakeTelegram:
    """The server. One instance serves any number of connections (and passes)."""

    def __init__(self, *, user_id: int = 100_200_300, dc_id: int = 2, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.auth_key = bytes(rng.getrandbits(8) for _ in range(256))
        self.auth_key_id = hashlib.sha1(self.auth_key).digest()[-8:]  # noqa: S324
        # auth key id → (auth key, the account it is logged in to, or None)
        self.keys: dict[bytes, bytes] = {self.auth_key_id: self.auth_key}
        self.logged_in: dict[bytes, int | None] = {self.auth_key_id: user_id}
        self.key_dc: dict[bytes, int] = {self.auth_key_id: dc_id}  # where each key lives
        self.files: dict[tuple[str, int, str], FakeFile] = {}
        self._exported: dict[bytes, tuple[int, int]] = {}  # auth bytes → (user id, target DC)
        self.accounts: dict[str, FakeAccount] = {}
        self.srp: dict[str, Srp] = {}
        self.login_code = "12345"
        self.expire_next_codes = 0
        self._codes: dict[str, tuple[str, str]] = {}  # phone_code_hash → (phone, code)
        self._awaiting_password: dict[bytes, FakeAccount] = {}
        self.user_id = user_id
        self.dc_id = dc_id
        self.channels: list[FakeChannel] = []
        self.calls: list[str] = []
        self.dc_calls: list[tuple[int, str]] = []  # (DC, call), in the order of `calls`
        self.dc_connections: list[tuple[int, bool]] = []  # (DC, media-only) per connection
        self.latency = 0.0
        self.failures: dict[str, list[str]] = {}
        self.hang: set[str] = set()
        self.drop_on: set[str] = set()
        self.unreachable = False
        self.connections = 0
        self.open_connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.timeline: list[tuple[str, float, float]] = []  # (call, start, end), monotonic
        self.dc_timeline: list[tuple[int, str, float, float]] = []  # (DC, call, start, end)
        self.handlers: dict[type[Any], Callable[[Any], Any]] = {
            raw.functions.help.GetConfig: lambda _q, _k: server_config(self.dc_id),
            raw.functions.contacts.ResolveUsername: self._resolve,
            raw.functions.channels.GetFullChannel: self._full_channel,
            raw.functions.messages.GetHistory: self._history,
            raw.functions.auth.SendCode: self._send_code,
            raw.functions.auth.SignIn: self._sign_in,
            raw.functions.account.GetPassword: self._get_password,
            raw.functions.auth.CheckPassword: self._check_password,
        }
        self.public = {
            raw.functions.help.GetConfig,
            *(f for f in self.handlers if "auth" in f.QUALNAME),
        }
        self.public.add(raw.functions.account.GetPassword)
        # Other data centers: added after `public`, which only auth.importAuthorization joins.
        self.handlers[raw.functions.auth.ExportAuthorization] = self._export_authorization
        self.handlers[raw.functions.auth.ImportAuthorization] = self._import_authorization
        self.handlers[raw.functions.upload.GetFile] = self._get_file
        self.handlers[raw.functions.stats.GetBroadcastStats] = self._broadcast_stats
        self.handlers[raw.functions.stats.LoadAsyncGraph] = self._load_async_graph
        self.public.add(raw.functions.auth.ImportAuthorization)
        self._last_msg_id = 0

    # -- set-up -----------------------------------------------------------------------

    def session_data(self, *, user_id: int | None = None) -> SessionData:
        return SessionData(
            dc_id=self.dc_id,
            auth_key=self.auth_key,
            user_id=self.user_id if user_id is None else user_id,
        )

    def session_string(self, api_id: int = 12345) -> str:
        """A Pyrogram session string for this server's account (fake credentials)."""
        return self.session_data().to_pyrogram(api_id)

    def add_account(self, account: FakeAccount) -> FakeAccount:
        """A registered phone number; with `password`, the account has 2FA."""
        self.accounts[account.phone] = account
        if account.password is not None:
            self.srp[account.phone] = Srp(account.password)
        return account

    def revoke(self, auth_key_id: bytes | None = None) -> None:
        """The account terminated this session (Settings → Devices)."""
        self.logged_in[auth_key_id or self.auth_key_id] = None

    def add_channel(self, channel: FakeChannel) -> FakeChannel:
        self.channels.append(channel)
        return channel

    def add_file(
        self,
        kind: str,
        id: int,
        size_type: str,
        data: bytes,
        dc_id: int | None = None,
        **extra: Any,
    ) -> FakeFile:
        """A file upload.getFile serves; on the home DC unless `dc_id` says otherwise."""
        if kind not in ("photo", "document"):
            raise ValueError(f"kind must be 'photo' or 'document', not {kind!r}")
        file = FakeFile(kind, id, size_type, data, self.dc_id if dc_id is None else dc_id, **extra)
        self.files[kind, id, size_type] = file
        return file

    def calls_on(self, dc_id: int) -> list[str]:
        """The calls that reached data center `dc_id`, in order."""
        return [name for dc, name in self.dc_calls if dc == dc_id]

    def _record(self, conn: Any, name: str) -> None:
        self.calls.append(name)
        self.dc_calls.append((conn.dc, name))

    def fail(self, method: str, message: str, times: int = 1) -> None:
        """Answer the next `times` calls of `method` ("channels.GetFullChannel") with an error."""
        self.failures.setdefault(method, []).extend([message] * times)

    @property
    def api_calls(self) -> list[str]:
        """The calls a pass made, without connection set-up."""
        return [c for c in self.calls if c not in SETUP_CALLS]

    # -- the transport ----------------------------------------------------------------

    def round_trips(self) -> int:
        """Sequential round trips of the recorded API calls: overlapping calls count once."""
        spans = sorted((s, e) for n, s, e in self.timeline if n not in SETUP_CALLS)
        trips, end = 0, float("-inf")
        for start, stop in spans:
            if start >= end:
                trips += 1
                end = stop
            else:
                end = max(end, stop)
        return trips

    @property
    def protocol_factory(self) -> type[Any]:
        server = self

        register_test_server_key()

        class FakeProtocol:
            def __init__(self, *, dc_id: int | None = None, **_: Any) -> None:
                # Pyrogram names the DC it means (negated for media); the address decides.
                self.dc = abs(dc_id) if dc_id else server.dc_id
                self.media = bool(dc_id and dc_id < 0)
                self.handshake: Handshake | None = None
                self.crypto_executor = ThreadPoolExecutor(1, thread_name_prefix="FakeCrypto")
                self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
                self.closed = False
                self.tasks: set[asyncio.Task[None]] = set()

            async def connect(self, address: tuple[str, int]) -> None:
                if server.unreachable:
                    raise ConnectionRefusedError("connection refused (fake Telegram unreachable)")
                known = dc_of_address(address)
                if known is not None:
                    self.dc, self.media = known
                server.dc_connections.append((self.dc, self.media))
                server.connections += 1
                server.open_connections += 1

            async def close(self) -> None:
                if not self.closed:
                    self.closed = True
                    server.open_connections -= 1
                    for task in self.tasks:
                        task.cancel()
                    self.inbox.put_nowait(None)
                self.crypto_executor.shutdown(wait=False)

            async def send(self, data: bytes) -> None:
                if self.closed:
                    raise OSError("connection closed")
                if data[:8] == bytes(8):  # unencrypted: the auth key handshake
                    server._handshake(self, data)
                    return
                task = asyncio.get_running_loop().create_task(server._serve(self, data))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

            async def recv(self) -> bytes | None:
                if self.closed and self.inbox.empty():
                    return None
                return await self.inbox.get()

            def drop(self) -> None:
                """The server hangs up: Pyrogram sees a null packet."""
                self.inbox.put_nowait(None)

        return FakeProtocol

    # -- MTProto ----------------------------------------------------------------------

    def _handshake(self, conn: Any, data: bytes) -> None:
        if conn.handshake is None:
            conn.handshake = Handshake()
        query = TLObject.read(BytesIO(data[20:]))
        self._record(conn, type(query).__name__)
        answer, auth_key = conn.handshake.answer(query)
        if auth_key is not None:
            key_id = hashlib.sha1(auth_key).digest()[-8:]  # noqa: S324
            self.keys[key_id] = auth_key
            self.logged_in[key_id] = None
            self.key_dc[key_id] = conn.dc
        body = answer.write()
        conn.inbox.put_nowait(bytes(8) + Long(self._next_msg_id()) + Int(len(body)) + body)

    async def _serve(self, conn: Any, data: bytes) -> None:
        key_id = data[:8]
        auth_key = self.keys.get(key_id)
        if self.key_dc.get(key_id, conn.dc) != conn.dc:
            auth_key = None  # a key lives on the DC that created it
        if auth_key is None:  # Telegram answers an unknown key with transport error -404
            conn.inbox.put_nowait(Int(-404))
            return
        msg_key = data[8:24]
        aes_key, aes_iv = kdf(auth_key, msg_key, True)
        plain = BytesIO(aes.ige256_decrypt(data[24:], aes_key, aes_iv))
        salt = plain.read(8)
        session_id = plain.read(8)
        message = Message.read(plain)
        bodies = (
            list(message.body.messages) if isinstance(message.body, MsgContainer) else [message]
        )
        for msg in bodies:
            await self._answer(conn, msg, salt, session_id, key_id)

    async def _answer(
        self, conn: Any, msg: Message, salt: bytes, session_id: bytes, key_id: bytes
    ) -> None:
        body = msg.body
        if isinstance(body, raw.types.MsgsAck):
            return
        if isinstance(body, raw.functions.Ping | raw.functions.PingDelayDisconnect):
            self._record(conn, type(body).__name__)
            pong = raw.types.Pong(msg_id=msg.msg_id, ping_id=body.ping_id)
            self._send(conn, pong, salt, session_id, 0, key_id)
            return
        query = body
        while isinstance(
            query,
            raw.functions.InvokeWithLayer
            | raw.functions.InitConnection
            | raw.functions.InvokeWithoutUpdates
            | raw.functions.InvokeWithMessagesRange,
        ):
            query = query.query
        name = ".".join(query.QUALNAME.split(".")[1:])
        self._record(conn, name)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.monotonic()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            if name in self.hang:
                await asyncio.Event().wait()
            if name in self.drop_on:
                self.drop_on.discard(name)
                conn.drop()
                return
            try:
                pending = self.failures.get(name)
                if pending:
                    raise RpcFailure(pending.pop(0))
                handler = self.handlers.get(type(query))
                if handler is None:
                    raise RpcFailure("METHOD_NOT_IMPLEMENTED_IN_FAKE")
                if type(query) not in self.public and self.logged_in.get(key_id) is None:
                    raise RpcFailure("AUTH_KEY_UNREGISTERED")
                result = handler(query, key_id)
                if isinstance(result, list):  # a bare Vector answer, as Telegram sends it
                    result = _Raw(Vector(result))
            except RpcFailure as e:
                result = raw.types.RpcError(
                    error_code=error_code(e.message), error_message=e.message
                )
            answer = raw.types.RpcResult(req_msg_id=msg.msg_id, result=result)
            self._send(conn, answer, salt, session_id, 1, key_id)
        finally:
            self.in_flight -= 1
            ended = time.monotonic()
            self.timeline.append((name, started, ended))
            self.dc_timeline.append((conn.dc, name, started, ended))

    def _next_msg_id(self) -> int:
        msg_id = (int(time.time() * 2**32) & ~0b11) | 1
        if msg_id <= self._last_msg_id:
            msg_id = self._last_msg_id + 4
        self._last_msg_id = msg_id
        return msg_id

    def _send(
        self, conn: Any, body: TLObject, salt: bytes, session_id: bytes, seq_no: int, key_id: bytes
    ) -> None:
        if conn.closed:
            return
        auth_key = self.keys[key_id]
        payload = body.write()
        message = Message(
            body=_Raw(payload), msg_id=self._next_msg_id(), seq_no=seq_no, length=len(payload)
        )
        data = salt + session_id + message.write()
        padding = os.urandom(-(len(data) + 12) % 16 + 12)
        msg_key = hashlib.sha256(auth_key[96 : 96 + 32] + data + padding).digest()[8:24]
        aes_key, aes_iv = kdf(auth_key, msg_key, False)
        conn.inbox.put_nowait(
            key_id + msg_key + aes.ige256_encrypt(data + padding, aes_key, aes_iv)
        )

    # -- handlers ---------------------------------------------------------------------

    def _channel_by_input(self, channel_id: int, access_hash: int) -> FakeChannel:
        for channel in self.channels:
            if channel.id == channel_id:
                if channel.access_hash != access_hash:
                    raise RpcFailure("CHANNEL_INVALID")
                if channel.private:
                    raise RpcFailure("CHANNEL_PRIVATE")
                return channel
        raise RpcFailure("CHANNEL_INVALID")

    def _resolve(self, query: Any, _key: bytes) -> Any:
        for channel in self.channels:
            if query.username.lower() in channel.names():
                if channel.private:
                    raise RpcFailure("CHANNEL_PRIVATE")
                return raw.types.contacts.ResolvedPeer(
                    peer=raw.types.PeerChannel(channel_id=channel.id),
                    chats=[channel.raw_channel()],
                    users=[],
                )
        raise RpcFailure("USERNAME_NOT_OCCUPIED")

    def _full_channel(self, query: Any, _key: bytes) -> Any:
        channel = self._channel_by_input(query.channel.channel_id, query.channel.access_hash)
        full = raw.types.ChannelFull(
            id=channel.id,
            about="",
            read_inbox_max_id=0,
            read_outbox_max_id=0,
            unread_count=0,
            chat_photo=raw.types.PhotoEmpty(id=0),
            notify_settings=raw.types.PeerNotifySettings(),
            bot_info=[],
            pts=1,
            participants_count=channel.participants,
            linked_chat_id=channel.linked_chat_id,
            can_view_stats=channel.can_view_stats or None,
            stats_dc=channel.stats_dc,
        )
        return raw.types.messages.ChatFull(full_chat=full, chats=[channel.raw_channel()], users=[])

    def _history(self, query: Any, _key: bytes) -> Any:
        channel = self._channel_by_input(query.peer.channel_id, query.peer.access_hash)
        newest_first = sorted(channel.messages, key=lambda m: m.id, reverse=True)
        if query.offset_id:
            newest_first = [m for m in newest_first if m.id < query.offset_id]
        page = newest_first[query.add_offset : query.add_offset + min(query.limit, 100)]
        return raw.types.messages.ChannelMessages(
            pts=1,
            count=len(channel.messages),
            messages=page,
            topics=[],
            chats=[channel.raw_channel()],
            users=[],
        )

    # -- login --------------------------------------------------------------------------

    def _send_code(self, query: Any, _key: bytes) -> Any:
        phone = query.phone_number.lstrip("+")
        if not phone.isdigit() or len(phone) < 7:
            raise RpcFailure("PHONE_NUMBER_INVALID")
        phone_code_hash = os.urandom(8).hex()
        self._codes[phone_code_hash] = (phone, self.login_code)
        return raw.types.auth.SentCode(
            type=raw.types.auth.SentCodeTypeApp(length=len(self.login_code)),
            phone_code_hash=phone_code_hash,
        )

    def _sign_in(self, query: Any, key_id: bytes) -> Any:
        phone, code = self._codes.get(query.phone_code_hash, ("", ""))
        if not phone or phone != query.phone_number.lstrip("+"):
            raise RpcFailure("PHONE_CODE_EXPIRED")
        if self.expire_next_codes:
            self.expire_next_codes -= 1
            del self._codes[query.phone_code_hash]
            raise RpcFailure("PHONE_CODE_EXPIRED")
        if query.phone_code != code:
            raise RpcFailure("PHONE_CODE_INVALID")
        del self._codes[query.phone_code_hash]
        account = self.accounts.get(phone)
        if account is None:
            return raw.types.auth.AuthorizationSignUpRequired()
        if account.password is not None:
            self._awaiting_password[key_id] = account
            raise RpcFailure("SESSION_PASSWORD_NEEDED")
        self.logged_in[key_id] = account.user_id
        return raw.types.auth.Authorization(user=account.raw_user())

    def _get_password(self, _query: Any, key_id: bytes) -> Any:
        account = self._awaiting_password.get(key_id)
        if account is None:
            raise RpcFailure("AUTH_KEY_UNREGISTERED")
        return self.srp[account.phone].password_info()

    def _check_password(self, query: Any, key_id: bytes) -> Any:
        account = self._awaiting_password.get(key_id)
        if account is None:
            raise RpcFailure("AUTH_KEY_UNREGISTERED")
        if not self.srp[account.phone].verify(query.password):
            raise RpcFailure("PASSWORD_HASH_INVALID")
        del self._awaiting_password[key_id]
        self.logged_in[key_id] = account.user_id
        return raw.types.auth.Authorization(user=account.raw_user())

    # -- other data centers and files ----------------------------------------------------

    def _export_authorization(self, query: Any, key_id: bytes) -> Any:
        if query.dc_id not in DC_IDS or query.dc_id == self.key_dc[key_id]:
            raise RpcFailure("DC_ID_INVALID")
        user_id = self.logged_in[key_id]
        assert user_id is not None  # only logged-in keys reach a non-public handler
        token = os.urandom(128)
        self._exported[token] = (user_id, query.dc_id)
        return raw.types.auth.ExportedAuthorization(id=user_id, bytes=token)

    def _import_authorization(self, query: Any, key_id: bytes) -> Any:
        user_id, dc = self._exported.pop(query.bytes, (None, None))
        if user_id is None or user_id != query.id or dc != self.key_dc[key_id]:
            raise RpcFailure("AUTH_BYTES_INVALID")
        self.logged_in[key_id] = user_id
        user = raw.types.User(id=user_id, is_self=True, first_name="Test", access_hash=1)
        return raw.types.auth.Authorization(user=user)

    def _get_file(self, query: Any, key_id: bytes) -> Any:
        location = query.location
        if isinstance(location, raw.types.InputPhotoFileLocation):
            kind = "photo"
        elif isinstance(location, raw.types.InputDocumentFileLocation):
            kind = "document"
        else:
            raise RpcFailure("LOCATION_INVALID")
        file = self.files.get((kind, location.id, location.thumb_size))
        if file is None or file.access_hash != location.access_hash:
            raise RpcFailure("LOCATION_INVALID")
        if file.dc_id != self.key_dc[key_id]:
            raise RpcFailure(f"FILE_MIGRATE_{file.dc_id}")
        if file.expired or file.file_reference != location.file_reference:
            raise RpcFailure("FILE_REFERENCE_EXPIRED")
        # upload.getFile's rules for a non-precise request.
        offset, limit, mib = query.offset, query.limit, 1024 * 1024
        if offset < 0 or offset % 4096:
            raise RpcFailure("OFFSET_INVALID")
        one_block = offset // mib == (offset + limit - 1) // mib if limit > 0 else False
        if limit <= 0 or limit % 4096 or mib % limit or not one_block:
            raise RpcFailure("LIMIT_INVALID")
        return raw.types.upload.File(
            type=raw.types.storage.FileJpeg(),
            mtime=1_700_000_000,
            bytes=file.data[offset : offset + limit],
        )

    # -- admin statistics ----------------------------------------------------------------

    def _broadcast_stats(self, query: Any, key_id: bytes) -> Any:
        channel = self._channel_by_input(query.channel.channel_id, query.channel.access_hash)
        if not channel.can_view_stats or channel.stats is None:
            raise RpcFailure("CHAT_ADMIN_REQUIRED")
        if self.key_dc[key_id] != channel.stats.dc_id:
            raise RpcFailure(f"STATS_MIGRATE_{channel.stats.dc_id}")
        return channel.stats.answer

    def _load_async_graph(self, query: Any, key_id: bytes) -> Any:
        for channel in self.channels:
            stats = channel.stats
            if stats is not None and query.token in stats.async_graphs:
                if self.key_dc[key_id] != stats.dc_id:  # a token is known where it was issued
                    break
                return stats.async_graphs[query.token]
        raise RpcFailure("GRAPH_INVALID_RELOAD")


class _Raw(TLObject):
    """Already-serialised bytes inside a Message."""

    __slots__ = ["data"]
    QUALNAME = "Raw"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def write(self, *args: Any) -> bytes:
        return self.data


def roundtrip(obj: TLObject) -> Any:
    """An object as Telegram would send it: serialised and read back."""
    return TLObject.read(BytesIO(obj.write()))


__all__ = ["FakeChannel", "FakeFile", "FakeTelegram", "Long", "roundtrip"]
