"""Realistic channels built from real `pyrogram.raw.types` objects (fake data throughout)."""

from __future__ import annotations

from typing import Any

from pyrogram import raw

from tests.faketg import FakeChannel

BIG_CHANNEL_ID = 2_987_654_321  # above 2**31: channels made since 2023 have ids like this
T0 = 1_736_000_000  # 2025-01-04T14:13:20Z


def photo(n: int) -> raw.types.MessageMediaPhoto:
    return raw.types.MessageMediaPhoto(
        photo=raw.types.Photo(
            id=10_000 + n,
            access_hash=n,
            file_reference=b"\x01",
            date=T0,
            dc_id=2,
            sizes=[raw.types.PhotoSize(type="x", w=1280, h=720, size=100_000)],
        )
    )


def document(n: int, mime: str, *attributes: Any, **flags: Any) -> raw.types.MessageMediaDocument:
    return raw.types.MessageMediaDocument(
        document=raw.types.Document(
            id=20_000 + n,
            access_hash=n,
            file_reference=b"\x02",
            date=T0,
            mime_type=mime,
            size=1_000_000,
            dc_id=2,
            attributes=list(attributes),
        ),
        **flags,
    )


def video(n: int, *, round_message: bool = False) -> raw.types.MessageMediaDocument:
    return document(
        n,
        "video/mp4",
        raw.types.DocumentAttributeVideo(duration=12.5, w=1280, h=720, round_message=round_message),
    )


def poll(n: int) -> raw.types.MessageMediaPoll:
    # PollResults without `results`: in layer 229 an empty voters vector corrupts the stream.
    def text(t: str) -> raw.types.TextWithEntities:
        return raw.types.TextWithEntities(text=t, entities=[])

    return raw.types.MessageMediaPoll(
        poll=raw.types.Poll(
            id=30_000 + n,
            question=text("Go or Rust?"),
            hash=0,
            answers=[
                raw.types.PollAnswer(text=text("Go"), option=b"0"),
                raw.types.PollAnswer(text=text("Rust"), option=b"1"),
            ],
        ),
        results=raw.types.PollResults(total_voters=321),
    )


def link_preview(n: int) -> raw.types.MessageMediaWebPage:
    return raw.types.MessageMediaWebPage(
        webpage=raw.types.WebPage(
            id=40_000 + n,
            url="https://itam.example/",
            display_url="itam.example",
            hash=0,
            title="ITAM",
        )
    )


def reactions(*pairs: tuple[Any, int]) -> raw.types.MessageReactions:
    results = []
    for reaction, count in pairs:
        if isinstance(reaction, str):
            reaction = raw.types.ReactionEmoji(emoticon=reaction)
        elif isinstance(reaction, int):
            reaction = raw.types.ReactionCustomEmoji(document_id=reaction)
        results.append(raw.types.ReactionCount(reaction=reaction, count=count))
    return raw.types.MessageReactions(results=results)


PAID = raw.types.ReactionPaid()


def post(
    channel_id: int, msg_id: int, text: str = "", *, date: int | None = None, **fields: Any
) -> raw.types.Message:
    fields.setdefault("views", 100 + msg_id % 97)
    fields.setdefault("forwards", msg_id % 5)
    return raw.types.Message(
        id=msg_id,
        peer_id=raw.types.PeerChannel(channel_id=channel_id),
        date=date if date is not None else T0 + msg_id * 60,
        message=text,
        post=True,
        **fields,
    )


def comments(n: int) -> raw.types.MessageReplies:
    return raw.types.MessageReplies(replies=n, replies_pts=1, comments=True, channel_id=777)


def service(channel_id: int, msg_id: int, action: Any = None) -> raw.types.MessageService:
    return raw.types.MessageService(
        id=msg_id,
        peer_id=raw.types.PeerChannel(channel_id=channel_id),
        date=T0 + msg_id * 60,
        action=action or raw.types.MessageActionPinMessage(),
        post=True,
    )


def rich_channel(channel_id: int = BIG_CHANNEL_ID) -> FakeChannel:
    """@itatmisis with every kind of post the contract names; the newest posts, by id:

    1014 text (❤ 12, 👍 3) · 1013 service (title changed) · 1012 edited text with entities ·
    1011 poll · 1010 link preview only · 1006-1009 album of 4 (caption on 1006) ·
    1005 video (custom emoji + paid reactions, 23 comments, 45 forwards) · 1004 service (pin) ·
    1001-1003 album of 3 (caption on 1002, reactions on 1003) · 1000 plain text.
    """
    c = channel_id
    album3, album4 = 555_001, 555_002
    messages: list[Any] = [
        post(c, 1000, "Hello, ITAM"),
        post(c, 1001, "", media=photo(1), grouped_id=album3, views=900, replies=comments(4)),
        post(
            c,
            1002,
            "🏆 Победа на TulaHackDays",
            media=photo(2),
            grouped_id=album3,
            views=950,
            forwards=7,
        ),
        post(
            c,
            1003,
            "",
            media=photo(3),
            grouped_id=album3,
            views=940,
            reactions=reactions(("👍", 89), ("🔥", 34), ("❤", 12)),
        ),
        service(c, 1004),
        post(
            c,
            1005,
            "Demo day video",
            media=video(5),
            views=1234,
            forwards=45,
            reactions=reactions(("👍", 10), (5_368_324_170_671_202_286, 4), (PAID, 25)),
            replies=comments(23),
        ),
        post(c, 1006, "Hackathon photos, part 2", media=photo(6), grouped_id=album4, views=800),
        post(c, 1007, "", media=video(7), grouped_id=album4, views=820),
        post(c, 1008, "", media=photo(8), grouped_id=album4, views=810),
        post(c, 1009, "", media=photo(9), grouped_id=album4, views=805),
        post(c, 1010, "Our site: https://itam.example/", media=link_preview(10), views=300),
        post(c, 1011, "", media=poll(11), views=410),
        post(
            c,
            1012,
            "Schedule (updated)",
            views=500,
            edit_date=T0 + 1012 * 60 + 3600,
            entities=[raw.types.MessageEntityBold(offset=0, length=8)],
        ),
        service(c, 1013, raw.types.MessageActionChatEditTitle(title="IT at MISIS")),
        post(
            c,
            1014,
            "Welcome, first-years!",
            views=150,
            reactions=reactions(("❤", 12), ("👍", 3)),
            replies=comments(2),
        ),
    ]
    return FakeChannel(
        id=channel_id,
        title="IT at MISIS",
        username="itatmisis",
        messages=messages,
        participants=5500,
        linked_chat_id=777,
    )


# -- images: photos with every size, video thumbnails, a link card with a photo -------------

STRIPPED = bytes([1, 40, 27]) + bytes(range(60))  # a stripped JPEG body (fake, well-formed)


def sized_photo(photo_id: int, dc_id: int = 2) -> raw.types.Photo:
    """A photo as Telegram sends it: stripped `i`, then s/m/x/y sizes (3:2)."""
    return raw.types.Photo(
        id=photo_id,
        access_hash=photo_id * 7,
        file_reference=b"\x03ref" + photo_id.to_bytes(8, "big"),
        date=T0,
        dc_id=dc_id,
        sizes=[
            raw.types.PhotoStrippedSize(type="i", bytes=STRIPPED),
            raw.types.PhotoSize(type="s", w=90, h=60, size=1_500),
            raw.types.PhotoSize(type="m", w=320, h=213, size=12_000),
            raw.types.PhotoSize(type="x", w=800, h=533, size=60_000),
            raw.types.PhotoSizeProgressive(type="y", w=1280, h=853, sizes=[20_000, 90_000]),
        ],
    )


def thumbed_video(doc_id: int, dc_id: int = 2) -> raw.types.MessageMediaDocument:
    return raw.types.MessageMediaDocument(
        document=raw.types.Document(
            id=doc_id,
            access_hash=doc_id * 5,
            file_reference=b"\x04ref" + doc_id.to_bytes(8, "big"),
            date=T0,
            mime_type="video/mp4",
            size=5_000_000,
            dc_id=dc_id,
            thumbs=[
                raw.types.PhotoStrippedSize(type="i", bytes=STRIPPED),
                raw.types.PhotoSize(type="m", w=320, h=180, size=9_000),
            ],
            attributes=[
                raw.types.DocumentAttributeVideo(duration=30.0, w=1920, h=1080),
                raw.types.DocumentAttributeFilename(file_name="demo.mp4"),
            ],
        )
    )


def media_channel(username: str = "itam_media", channel_id: int = 3_111_222_333) -> FakeChannel:
    """Newest first: 2004 link card with a photo (DC 4) · 2003 video with a thumbnail ·
    2001-2002 album of two photos (the second on DC 4) · 2000 photo."""
    c = channel_id
    card = raw.types.MessageMediaWebPage(
        webpage=raw.types.WebPage(
            id=70_001,
            url="https://misis.ru/news/9001",
            display_url="misis.ru/news/9001",
            hash=0,
            type="article",
            site_name="НИТУ МИСИС",
            title="News",
            photo=sized_photo(60_004, dc_id=4),
        )
    )
    messages = [
        post(c, 2000, "single", media=raw.types.MessageMediaPhoto(photo=sized_photo(60_000))),
        post(
            c, 2001, "album", media=raw.types.MessageMediaPhoto(photo=sized_photo(60_001)),
            grouped_id=88,
        ),
        post(
            c, 2002, "", media=raw.types.MessageMediaPhoto(photo=sized_photo(60_002, dc_id=4)),
            grouped_id=88,
        ),
        post(c, 2003, "video", media=thumbed_video(61_003)),
        post(c, 2004, "https://misis.ru/news/9001", media=card),
    ]  # fmt: skip
    return FakeChannel(id=c, title="ITAM media", username=username, messages=messages)


def register_files(fake: Any, channel: FakeChannel) -> dict[str, bytes]:
    """Serve every downloadable size of the channel's images; their bytes by key."""
    served: dict[str, bytes] = {}

    def add(kind: str, owner: Any, size: Any) -> None:
        if isinstance(size, raw.types.PhotoStrippedSize | raw.types.PhotoPathSize):
            return
        data = f"{kind}:{owner.id}:{size.type}".encode() * 50
        file = fake.add_file(
            kind,
            owner.id,
            size.type,
            data,
            dc_id=owner.dc_id,
            access_hash=owner.access_hash,
            file_reference=owner.file_reference,
        )
        served[file.key] = data

    for message in channel.messages:
        media = getattr(message, "media", None)
        photo_ = getattr(media, "photo", None) or getattr(
            getattr(media, "webpage", None), "photo", None
        )
        if photo_ is not None:
            for size in photo_.sizes:
                add("photo", photo_, size)
        document_ = getattr(media, "document", None)
        if document_ is not None:
            for size in document_.thumbs or []:
                add("document", document_, size)
    return served


def small_channel(n: int, username: str, participants: int = 100) -> FakeChannel:
    """A plain channel of three text posts, for the tests of several channels."""
    c = 4_000_000_000 + n
    messages = [post(c, i, f"{username} post {i}", views=10 * i) for i in range(1, 4)]
    return FakeChannel(
        id=c, title=f"Channel {n}", username=username, messages=messages, participants=participants
    )
