"""A raw MessageMedia as the site's media item, and the photo size to download for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyrogram import raw

from itam_tgstats.models import MediaFile
from itam_tgstats.render.thumbnails import stripped_thumbnail_uri

_DOCUMENT_KINDS: Sequence[tuple[type[Any], Callable[[Any], str | None]]] = (
    (raw.types.DocumentAttributeSticker, lambda _: "sticker"),
    (raw.types.DocumentAttributeAnimated, lambda _: "animation"),
    (raw.types.DocumentAttributeVideo, lambda a: "video_note" if a.round_message else "video"),
    (raw.types.DocumentAttributeAudio, lambda a: "voice" if a.voice else "audio"),
)

_MEDIA_KINDS: dict[type[Any], str | None] = {
    raw.types.MessageMediaPhoto: "photo",
    raw.types.MessageMediaPoll: "poll",
    raw.types.MessageMediaGeo: "location",
    raw.types.MessageMediaGeoLive: "location",
    raw.types.MessageMediaVenue: "venue",
    raw.types.MessageMediaContact: "contact",
    raw.types.MessageMediaDice: "dice",
    raw.types.MessageMediaGame: "game",
    raw.types.MessageMediaInvoice: "invoice",
    raw.types.MessageMediaStory: "story",
    raw.types.MessageMediaGiveaway: "giveaway",
    raw.types.MessageMediaGiveawayResults: "giveaway",
    raw.types.MessageMediaPaidMedia: "paid_media",
    # Not media for a reader: a link preview, or nothing at all.
    raw.types.MessageMediaWebPage: None,
    raw.types.MessageMediaEmpty: None,
}

# Kinds whose pixel size comes from the document's attributes, and kinds with a duration.
_SIZED_KINDS = frozenset({"video", "video_note", "animation", "sticker"})
_TIMED_KINDS = frozenset({"video", "audio", "voice", "video_note", "animation"})

# Photo sizes that are real downloadable images (not the stripped `i` or the vector `j`).
_IMAGE_SIZES = (raw.types.PhotoSize, raw.types.PhotoCachedSize, raw.types.PhotoSizeProgressive)


def media_type(media: Any) -> str | None:
    """The contract's `media_type` of a raw MessageMedia; None for no media or a link preview."""
    if media is None:
        return None
    if isinstance(media, raw.types.MessageMediaDocument):
        return _document_type(media)
    return _MEDIA_KINDS.get(type(media), "other")


def _document_type(media: Any) -> str:
    attributes = getattr(media.document, "attributes", None) or []
    for kind, name in _DOCUMENT_KINDS:
        for attribute in attributes:
            if isinstance(attribute, kind):
                found = name(attribute)
                if found:
                    return found
    # Newer layers also flag the kind on the media itself.
    if media.round:
        return "video_note"
    if media.voice:
        return "voice"
    if media.video:
        return "video"
    return "document"


def empty_item(kind: str) -> dict[str, Any]:
    """A media item of type `kind` with every other field null."""
    return {
        "type": kind,
        "width": None,
        "height": None,
        "duration": None,
        "thumbnail": None,
        "file_name": None,
        "mime_type": None,
        "size": None,
        "image": None,
    }


def media_item(media: Any, max_side: int | None) -> tuple[dict[str, Any] | None, MediaFile | None]:
    """The media item of a raw MessageMedia and the file to download for its `image`.

    `max_side` is the longest side wanted for a download (None: nothing is downloaded,
    `image` stays null). The item is None when the media is not one (a link preview, none).
    """
    kind = media_type(media)
    if kind is None:
        return None, None
    item = empty_item(kind)
    file: MediaFile | None = None
    if isinstance(media, raw.types.MessageMediaPhoto):
        photo = media.photo
        if isinstance(photo, raw.types.Photo):
            largest = max(_image_sizes(photo.sizes), key=_area, default=None)
            if largest is not None:
                item["width"], item["height"] = int(largest.w), int(largest.h)
            item["thumbnail"] = stripped_thumbnail_uri(photo.sizes)
            file = photo_file(photo, max_side)
    elif isinstance(media, raw.types.MessageMediaDocument):
        document = media.document
        if isinstance(document, raw.types.Document):
            _fill_document(item, document)
            file = document_thumb_file(document, max_side)
    elif isinstance(media, raw.types.MessageMediaPaidMedia):
        # What a reader sees before paying: the first item's blurred preview and its size.
        preview = next(
            (
                m
                for m in media.extended_media or ()
                if isinstance(m, raw.types.MessageExtendedMediaPreview)
            ),
            None,
        )
        if preview is not None:
            item["width"], item["height"] = preview.w, preview.h
            item["thumbnail"] = stripped_thumbnail_uri([preview.thumb] if preview.thumb else None)
    if file is not None:
        item["image"] = file.key
    return item, file


def _fill_document(item: dict[str, Any], document: Any) -> None:
    """Sets a document item's sizes, duration, file fields and thumbnail."""
    kind = item["type"]
    for attribute in document.attributes or ():
        if (
            kind in _SIZED_KINDS
            and item["width"] is None
            and isinstance(
                attribute, raw.types.DocumentAttributeVideo | raw.types.DocumentAttributeImageSize
            )
        ):
            item["width"], item["height"] = int(attribute.w), int(attribute.h)
        if (
            kind in _TIMED_KINDS
            and item["duration"] is None
            and isinstance(
                attribute, raw.types.DocumentAttributeVideo | raw.types.DocumentAttributeAudio
            )
        ):
            item["duration"] = attribute.duration
        if isinstance(attribute, raw.types.DocumentAttributeFilename):
            item["file_name"] = attribute.file_name or None
    item["mime_type"] = document.mime_type or None
    item["size"] = int(document.size) if document.size is not None else None
    item["thumbnail"] = stripped_thumbnail_uri(document.thumbs)


def photo_file(photo: Any, max_side: int | None) -> MediaFile | None:
    """The size of a raw Photo to download (see `choose_size`); None for no download."""
    if max_side is None or not isinstance(photo, raw.types.Photo):
        return None
    return _file("photo", photo, photo.sizes, max_side)


def document_thumb_file(document: Any, max_side: int | None) -> MediaFile | None:
    """The thumbnail of a raw Document to download (see `choose_size`); None for none."""
    if max_side is None or not isinstance(document, raw.types.Document):
        return None
    return _file("document", document, document.thumbs, max_side)


def choose_size(sizes: Sequence[Any] | None, max_side: int) -> Any | None:
    """The largest image size whose longer side is at most `max_side`, else the smallest."""
    images = _image_sizes(sizes)
    fitting = [s for s in images if max(s.w, s.h) <= max_side]
    if fitting:
        return max(fitting, key=_area)
    return min(images, key=_area, default=None)


def size_bytes(size: Any) -> int:
    """A photo size's length in bytes as Telegram states it (0 when it does not say)."""
    if isinstance(size, raw.types.PhotoSizeProgressive):
        return int(max(size.sizes or [0]))
    if isinstance(size, raw.types.PhotoCachedSize):
        return len(size.bytes)
    return int(getattr(size, "size", 0) or 0)


def _file(kind: str, owner: Any, sizes: Sequence[Any] | None, max_side: int) -> MediaFile | None:
    size = choose_size(sizes, max_side)
    if size is None:
        return None
    return MediaFile(
        key=f"tg:media:{owner.id}:{size.type}",
        kind=kind,
        id=int(owner.id),
        access_hash=int(owner.access_hash),
        file_reference=bytes(owner.file_reference),
        dc_id=int(owner.dc_id),
        size_type=str(size.type),
        size=size_bytes(size),
    )


def _image_sizes(sizes: Sequence[Any] | None) -> list[Any]:
    return [s for s in sizes or () if isinstance(s, _IMAGE_SIZES)]


def _area(size: Any) -> tuple[int, int]:
    return int(size.w) * int(size.h), size_bytes(size)
