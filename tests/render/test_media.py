"""Raw MessageMedia → the site's media item, and which photo size gets downloaded."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pyrogram import raw

from itam_tgstats.models import MediaFile
from itam_tgstats.render import media as m
from tests.channels import document, link_preview, photo, poll, video
from tests.faketg import roundtrip
from tests.render.test_thumbnails import GREY_16, by_hand

T = raw.types
GREY_URI = "data:image/jpeg;base64," + base64.b64encode(by_hand(GREY_16)).decode()

# A photo as Telegram sends it: stripped, small/medium/large JPEGs, a progressive big one.
SIZES = [
    T.PhotoStrippedSize(type="i", bytes=GREY_16),
    T.PhotoSize(type="s", w=90, h=60, size=1_500),
    T.PhotoSize(type="m", w=320, h=213, size=12_000),
    T.PhotoSize(type="x", w=800, h=533, size=60_000),
    T.PhotoSizeProgressive(type="y", w=1280, h=853, sizes=[10_000, 40_000, 90_000]),
    T.PhotoPathSize(type="j", bytes=b"\x01\x02"),
]


def rich_photo(sizes: list[Any] | None = None) -> T.MessageMediaPhoto:
    return T.MessageMediaPhoto(
        photo=T.Photo(
            id=7_001,
            access_hash=-99,
            file_reference=b"\x00ref",
            date=0,
            dc_id=4,
            sizes=SIZES if sizes is None else sizes,
        )
    )


def item(media: Any, max_side: int | None = None) -> tuple[dict[str, Any] | None, Any]:
    return m.media_item(roundtrip(media), max_side)


def expected(kind: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(
        ["width", "height", "duration", "thumbnail", "file_name", "mime_type", "size", "image"]
    )
    result = {"type": kind, **result}
    result.update(fields)
    return result


MEDIA_TYPES = [
    (photo(1), "photo"),
    (video(1), "video"),
    (video(1, round_message=True), "video_note"),
    (
        document(
            1,
            "image/gif",
            T.DocumentAttributeAnimated(),
            T.DocumentAttributeVideo(duration=1.0, w=1, h=1),
        ),
        "animation",
    ),
    (document(1, "audio/ogg", T.DocumentAttributeAudio(duration=3, voice=True)), "voice"),
    (document(1, "audio/mpeg", T.DocumentAttributeAudio(duration=3)), "audio"),
    (
        document(
            1,
            "image/webp",
            T.DocumentAttributeSticker(alt="🙂", stickerset=T.InputStickerSetEmpty()),
        ),
        "sticker",
    ),
    (document(1, "application/pdf"), "document"),
    (document(1, "video/mp4", video=True), "video"),
    (document(1, "video/mp4", round=True), "video_note"),
    (document(1, "audio/ogg", voice=True), "voice"),
    (poll(1), "poll"),
    (T.MessageMediaGeo(geo=T.GeoPoint(long=37.6, lat=55.7, access_hash=1)), "location"),
    (T.MessageMediaDice(value=6, emoticon="🎲"), "dice"),
    (T.MessageMediaPaidMedia(stars_amount=5, extended_media=[]), "paid_media"),
    (T.MessageMediaUnsupported(), "other"),
    (link_preview(1), None),
    (T.MessageMediaEmpty(), None),
]


@pytest.mark.parametrize(("media", "kind"), MEDIA_TYPES)
def test_media_type_is_the_v1_vocabulary(media: Any, kind: str | None) -> None:
    wire = roundtrip(media)
    assert m.media_type(wire) == kind
    assert m.media_type(None) is None


def test_photo_item_without_downloads() -> None:
    result, file = item(rich_photo())
    assert result == expected("photo", width=1280, height=853, thumbnail=GREY_URI)
    assert file is None


def test_photo_small_picks_the_largest_that_fits_320() -> None:
    result, file = item(rich_photo(), 320)
    assert file == MediaFile(
        key="tg:media:7001:m",
        kind="photo",
        id=7_001,
        access_hash=-99,
        file_reference=b"\x00ref",
        dc_id=4,
        size_type="m",
        size=12_000,
    )
    assert result is not None
    assert result["image"] == "tg:media:7001:m"


def test_photo_large_picks_the_progressive_size_and_its_largest_byte_count() -> None:
    result, file = item(rich_photo(), 1280)
    assert file is not None
    assert (file.key, file.size_type, file.size) == ("tg:media:7001:y", "y", 90_000)
    assert result is not None
    assert result["image"] == "tg:media:7001:y"


def test_photo_with_no_size_that_fits_takes_the_smallest() -> None:
    sizes = [
        T.PhotoSize(type="x", w=800, h=600, size=60_000),
        T.PhotoCachedSize(type="w", w=2560, h=1440, bytes=b"abc"),
        T.PhotoSize(type="y", w=1280, h=960, size=90_000),
    ]
    _, small = item(rich_photo(sizes), 320)
    assert small is not None
    assert (small.key, small.size) == ("tg:media:7001:x", 60_000)
    _, large = item(rich_photo(sizes), 1280)
    assert large is not None
    assert large.key == "tg:media:7001:y"
    # The longer side counts: a 300x1300 portrait does not fit 1280.
    _, tall = item(rich_photo([T.PhotoSize(type="y", w=300, h=1300, size=1)]), 1280)
    assert tall is not None
    assert tall.key == "tg:media:7001:y"


def test_photo_with_only_a_stripped_size_has_no_download_and_no_pixels() -> None:
    result, file = item(rich_photo([T.PhotoStrippedSize(type="i", bytes=GREY_16)]), 320)
    assert result == expected("photo", thumbnail=GREY_URI)
    assert file is None


def test_expired_photo_is_a_photo_with_nothing_else() -> None:
    result, file = item(T.MessageMediaPhoto(photo=T.PhotoEmpty(id=5)), 320)
    assert result == expected("photo")
    assert file is None


def full_document(
    mime: str, *attributes: Any, thumbs: list[Any] | None = None, **flags: Any
) -> Any:
    return T.MessageMediaDocument(
        document=T.Document(
            id=8_002,
            access_hash=77,
            file_reference=b"doc",
            date=0,
            mime_type=mime,
            size=3_456_789,
            dc_id=2,
            attributes=list(attributes),
            thumbs=thumbs,
        ),
        **flags,
    )


THUMBS = [
    T.PhotoStrippedSize(type="i", bytes=GREY_16),
    T.PhotoSize(type="m", w=320, h=180, size=8_000),
]


def test_video_item() -> None:
    media = full_document(
        "video/mp4",
        T.DocumentAttributeVideo(duration=12.5, w=1920, h=1080, supports_streaming=True),
        T.DocumentAttributeFilename(file_name="demo day.mp4"),
        thumbs=THUMBS,
    )
    result, file = item(media)
    assert result == expected(
        "video",
        width=1920,
        height=1080,
        duration=12.5,
        thumbnail=GREY_URI,
        file_name="demo day.mp4",
        mime_type="video/mp4",
        size=3_456_789,
    )
    assert file is None
    result, file = item(media, 1280)
    assert file == MediaFile(
        key="tg:media:8002:m",
        kind="document",
        id=8_002,
        access_hash=77,
        file_reference=b"doc",
        dc_id=2,
        size_type="m",
        size=8_000,
    )
    assert result is not None
    assert result["image"] == "tg:media:8002:m"


def test_video_note_animation_and_sticker_sizes() -> None:
    note, _ = item(
        full_document(
            "video/mp4", T.DocumentAttributeVideo(duration=9, w=384, h=384, round_message=True)
        )
    )
    assert note == expected(
        "video_note", width=384, height=384, duration=9, mime_type="video/mp4", size=3_456_789
    )
    gif, _ = item(
        full_document(
            "video/mp4",
            T.DocumentAttributeAnimated(),
            T.DocumentAttributeVideo(duration=2.0, w=480, h=270),
            T.DocumentAttributeFilename(file_name="cat.gif.mp4"),
        )
    )
    assert gif == expected(
        "animation",
        width=480,
        height=270,
        duration=2.0,
        file_name="cat.gif.mp4",
        mime_type="video/mp4",
        size=3_456_789,
    )
    sticker, _ = item(
        full_document(
            "image/webp",
            T.DocumentAttributeImageSize(w=512, h=500),
            T.DocumentAttributeSticker(alt="🙂", stickerset=T.InputStickerSetEmpty()),
            T.DocumentAttributeFilename(file_name="sticker.webp"),
            thumbs=[T.PhotoPathSize(type="j", bytes=b"\x01")],
        ),
        320,
    )
    assert sticker == expected(
        "sticker",
        width=512,
        height=500,
        file_name="sticker.webp",
        mime_type="image/webp",
        size=3_456_789,
    )


def test_audio_voice_and_file_items() -> None:
    audio, _ = item(
        full_document(
            "audio/mpeg",
            T.DocumentAttributeAudio(duration=185, title="Anthem", performer="ITAM"),
            T.DocumentAttributeFilename(file_name="anthem.mp3"),
        )
    )
    assert audio == expected(
        "audio", duration=185, file_name="anthem.mp3", mime_type="audio/mpeg", size=3_456_789
    )
    voice, _ = item(full_document("audio/ogg", T.DocumentAttributeAudio(duration=4, voice=True)))
    assert voice == expected("voice", duration=4, mime_type="audio/ogg", size=3_456_789)
    pdf, file = item(
        full_document(
            "application/pdf",
            T.DocumentAttributeImageSize(w=100, h=100),  # not a sized kind: no pixels
            T.DocumentAttributeFilename(file_name="rules.pdf"),
            thumbs=THUMBS,
        ),
        320,
    )
    assert pdf == expected(
        "document",
        thumbnail=GREY_URI,
        file_name="rules.pdf",
        mime_type="application/pdf",
        size=3_456_789,
        image="tg:media:8002:m",
    )
    assert file is not None


def test_document_without_attributes_or_thumbs() -> None:
    result, file = item(full_document("", video=True), 320)
    assert result == expected("video", size=3_456_789)
    assert file is None
    empty, _ = item(T.MessageMediaDocument(document=T.DocumentEmpty(id=1)))
    assert empty == expected("document")
    missing, _ = item(T.MessageMediaDocument(voice=True))
    assert missing == expected("voice")


def test_non_file_media_has_only_its_type() -> None:
    for media, kind in [
        (poll(1), "poll"),
        (T.MessageMediaGeo(geo=T.GeoPoint(long=37.6, lat=55.7, access_hash=1)), "location"),
        (T.MessageMediaUnsupported(), "other"),
    ]:
        assert item(media, 1280) == (expected(kind), None)


def test_link_preview_and_empty_media_are_not_items() -> None:
    assert item(link_preview(1), 320) == (None, None)
    assert item(T.MessageMediaEmpty(), 320) == (None, None)
    assert m.media_item(None, 320) == (None, None)


def test_paid_media_shows_its_preview() -> None:
    paid = T.MessageMediaPaidMedia(
        stars_amount=50,
        extended_media=[
            T.MessageExtendedMediaPreview(
                w=1280, h=720, thumb=T.PhotoStrippedSize(type="i", bytes=GREY_16)
            ),
            T.MessageExtendedMediaPreview(w=10, h=10),
        ],
    )
    assert item(paid, 320) == (
        expected("paid_media", width=1280, height=720, thumbnail=GREY_URI),
        None,
    )


def test_choose_size_skips_stripped_and_path_sizes() -> None:
    only_vectors = [
        T.PhotoStrippedSize(type="i", bytes=GREY_16),
        T.PhotoPathSize(type="j", bytes=b""),
    ]
    assert m.choose_size(only_vectors, 320) is None
    assert m.choose_size(None, 320) is None
    assert m.choose_size(SIZES, 90).type == "s"
    assert m.choose_size(SIZES, 89).type == "s"  # nothing fits: the smallest
    assert m.choose_size(SIZES, 799).type == "m"
    assert m.choose_size(SIZES, 800).type == "x"


def test_a_live_location_is_a_location_item() -> None:
    """A live location shows on the map like any location: `location`, not `other`."""
    live = T.MessageMediaGeoLive(
        geo=T.GeoPoint(long=37.6, lat=55.7, access_hash=1), period=900, heading=90
    )
    wire = roundtrip(live)
    assert m.media_type(wire) == "location"
    item, file = m.media_item(wire, 320)
    assert item == m.empty_item("location")
    assert file is None
