"""One post's raw messages → the render fields, albums included, and the files to download."""

from __future__ import annotations

from typing import Any

from pyrogram import raw

from itam_tgstats.render.fields import render_post
from tests.channels import T0, document, photo, post
from tests.faketg import roundtrip
from tests.render.test_media import GREY_URI, rich_photo
from tests.render.test_thumbnails import GREY_16

T = raw.types
C = 4242
KEYS = [
    "text_html",
    "media",
    "link_preview",
    "poll",
    "buttons",
    "forwarded_from",
    "edited_at",
    "author",
]
CHATS = [
    roundtrip(
        T.Channel(id=111, title="НИТУ МИСИС", photo=T.ChatPhotoEmpty(), date=T0, username="misis")
    )
]


def photo_item(width: int, height: int, **fields: Any) -> dict[str, Any]:
    item = {
        "type": "photo",
        "width": width,
        "height": height,
        "duration": None,
        "thumbnail": None,
        "file_name": None,
        "mime_type": None,
        "size": None,
        "image": None,
    }
    item.update(fields)
    return item


def test_text_post() -> None:
    fields, files = render_post([roundtrip(post(C, 1, "Hi <all>\n& bye"))], [], [], 320)
    assert list(fields) == KEYS
    assert fields == {
        "text_html": "Hi &lt;all&gt;<br>&amp; bye",
        "media": [],
        "link_preview": None,
        "poll": None,
        "buttons": [],
        "forwarded_from": None,
        "edited_at": None,
        "author": None,
    }
    assert files == []


def test_empty_message_renders_empty_html() -> None:
    fields, _ = render_post([roundtrip(post(C, 1, "", media=photo(1)))], [], [], None)
    assert fields["text_html"] == ""
    assert fields["media"] == [photo_item(1280, 720)]


def test_single_post_with_every_extra() -> None:
    message = post(
        C,
        5,
        "🔥 Go",
        entities=[T.MessageEntityBold(offset=3, length=2)],
        media=rich_photo(),
        reply_markup=T.ReplyInlineMarkup(
            rows=[
                T.KeyboardInlineButtonRow(
                    buttons=[
                        T.KeyboardInlineButton(
                            text="Регистрация", type=T.InlineButtonTypeUrl(url="https://a.example/")
                        )
                    ]
                )
            ]
        ),
        fwd_from=T.MessageFwdHeader(date=T0, from_id=T.PeerChannel(channel_id=111), channel_post=7),
        edit_date=1_746_792_000,
        post_author="Мария",
    )
    fields, files = render_post([roundtrip(message)], CHATS, [], 1280)
    assert list(fields) == KEYS
    assert fields == {
        "text_html": "🔥 <b>Go</b>",
        "media": [photo_item(1280, 853, thumbnail=GREY_URI, image="tg:media:7001:y")],
        "link_preview": None,
        "poll": None,
        "buttons": [[{"text": "Регистрация", "url": "https://a.example/"}]],
        "forwarded_from": {"title": "НИТУ МИСИС", "link": "https://t.me/misis/7"},
        "edited_at": "2025-05-09T12:00:00+00:00",
        "author": "Мария",
    }
    assert [f.key for f in files] == ["tg:media:7001:y"]


def test_link_preview_post_has_no_media_item_but_a_card_and_its_file() -> None:
    page = T.WebPage(
        id=1,
        url="https://misis.ru/",
        display_url="misis.ru",
        hash=0,
        title="МИСИС",
        photo=T.Photo(
            id=9_001,
            access_hash=1,
            file_reference=b"p",
            date=T0,
            dc_id=2,
            sizes=[
                T.PhotoStrippedSize(type="i", bytes=GREY_16),
                T.PhotoSize(type="m", w=320, h=160, size=7_000),
            ],
        ),
    )
    message = post(
        C,
        6,
        "https://misis.ru/",
        entities=[T.MessageEntityUrl(offset=0, length=17)],
        media=T.MessageMediaWebPage(webpage=page),
    )
    fields, files = render_post([roundtrip(message)], [], [], 320)
    assert fields["text_html"] == '<a href="https://misis.ru/">https://misis.ru/</a>'
    assert fields["media"] == []
    assert fields["link_preview"] == {
        "url": "https://misis.ru/",
        "display_url": "misis.ru",
        "site_name": None,
        "title": "МИСИС",
        "description": None,
        "type": None,
        "thumbnail": GREY_URI,
        "image": "tg:media:9001:m",
    }
    assert [f.key for f in files] == ["tg:media:9001:m"]


def test_album_takes_caption_from_the_text_item_and_the_rest_from_the_first() -> None:
    album = 777
    first = post(
        C,
        11,
        "",
        media=photo(1),
        grouped_id=album,
        post_author="Первый",
        edit_date=1_746_792_000,
        fwd_from=T.MessageFwdHeader(date=T0, from_name="Аноним"),
    )
    captioned = post(
        C,
        12,
        "Подпись <3",
        entities=[T.MessageEntityItalic(offset=0, length=7)],
        media=document(2, "video/mp4", T.DocumentAttributeVideo(duration=3.5, w=640, h=360)),
        grouped_id=album,
        post_author="Второй",
        edit_date=1_746_800_000,
    )
    third = post(C, 13, "later caption", media=rich_photo(), grouped_id=album)
    items = [roundtrip(first), roundtrip(captioned), roundtrip(third)]
    fields, files = render_post(items, [], [], 320)
    assert fields["text_html"] == "<i>Подпись</i> &lt;3"
    assert fields["media"] == [
        photo_item(1280, 720, image="tg:media:10001:x"),
        {
            "type": "video",
            "width": 640,
            "height": 360,
            "duration": 3.5,
            "thumbnail": None,
            "file_name": None,
            "mime_type": "video/mp4",
            "size": 1_000_000,
            "image": None,
        },
        photo_item(1280, 853, thumbnail=GREY_URI, image="tg:media:7001:m"),
    ]
    assert fields["author"] == "Первый"
    assert fields["edited_at"] == "2025-05-09T12:00:00+00:00"
    assert fields["forwarded_from"] == {"title": "Аноним", "link": None}
    assert [f.key for f in files] == ["tg:media:10001:x", "tg:media:7001:m"]


def test_album_without_downloads_has_no_files_and_null_images() -> None:
    items = [
        roundtrip(post(C, 21, "", media=photo(1), grouped_id=5)),
        roundtrip(post(C, 22, "", media=photo(1), grouped_id=5)),
    ]
    fields, files = render_post(items, [], [], None)
    assert fields["text_html"] == ""
    assert fields["media"] == [photo_item(1280, 720), photo_item(1280, 720)]
    assert files == []
    # The same photo twice is downloaded once.
    _, files = render_post(items, [], [], 320)
    assert [f.key for f in files] == ["tg:media:10001:x"]


def test_poll_post() -> None:
    poll = T.MessageMediaPoll(
        poll=T.Poll(
            id=1,
            question=T.TextWithEntities(text="Q?", entities=[]),
            hash=0,
            answers=[T.PollAnswer(text=T.TextWithEntities(text="A", entities=[]), option=b"0")],
        ),
        results=T.PollResults(total_voters=4),
    )
    fields, _ = render_post([roundtrip(post(C, 30, "", media=poll))], [], [], None)
    assert fields["media"] == [
        {
            "type": "poll",
            "width": None,
            "height": None,
            "duration": None,
            "thumbnail": None,
            "file_name": None,
            "mime_type": None,
            "size": None,
            "image": None,
        }
    ]
    assert fields["poll"] == {
        "question": "Q?",
        "answers": [{"text": "A", "voters": None, "percent": None}],
        "total_voters": None,
        "closed": False,
        "multiple_choice": False,
        "quiz": False,
    }
