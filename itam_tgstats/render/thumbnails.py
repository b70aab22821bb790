"""Stripped thumbnails (photo size `i`) expanded into JPEG `data:` URIs."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from pyrogram import raw, utils


def expand_stripped(data: bytes) -> bytes | None:
    """The full JPEG of a stripped thumbnail's bytes; None when they are not one.

    Telegram leaves out the JPEG header and footer it uses for every such thumbnail;
    Pyrogram's `expand_inline_bytes` puts them back (the header with its bytes 164 and 166
    set from the thumbnail's bytes 1 and 2, then the bytes from 3 on, then `FF D9`).
    """
    expanded = utils.expand_inline_bytes(bytes(data))
    return bytes(expanded) if expanded else None


def jpeg_data_uri(jpeg: bytes) -> str:
    """`data:image/jpeg;base64,…` of a JPEG."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def stripped_thumbnail_uri(sizes: Sequence[Any] | None) -> str | None:
    """The data URI of the stripped thumbnail among a Photo's `sizes` or a Document's `thumbs`.

    None when there is none or its bytes are malformed.
    """
    for size in sizes or ():
        if isinstance(size, raw.types.PhotoStrippedSize):
            jpeg = expand_stripped(size.bytes)
            return jpeg_data_uri(jpeg) if jpeg is not None else None
    return None
