"""Stripped thumbnails: the documented JPEG expansion, computed here by hand."""

from __future__ import annotations

import base64
import io

import pytest
from pyrogram import raw

from itam_tgstats.render.thumbnails import expand_stripped, jpeg_data_uri, stripped_thumbnail_uri
from tests.faketg import roundtrip

# The JPEG header Telegram leaves out of every stripped thumbnail (its API docs, "stripped
# thumbnails"): 623 bytes, whose bytes 164 and 166 are the image's height and width.
HEADER = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300281c1e231e19282321232d2b28303c"
    "64413c37373c7b585d4964918099968f808c8aa0b4e6c3a0aadaad8a8cc8ffcbdaeef5ffffff9bc1"
    "fffffffaffe6fdfff8ffdb0043012b2d2d3c353c76414176f8a58ca5f8f8f8f8f8f8f8f8f8f8f8f8"
    "f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8f8ffc0"
    "0011080000000003012200021101031101ffc4001f00000105010101010101000000000000000001"
    "02030405060708090a0bffc400b5100002010303020403050504040000017d010203000411051221"
    "31410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a2526272829"
    "2a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a"
    "838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6"
    "c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f010003"
    "0101010101010101010000000000000102030405060708090a0bffc400b511000201020404030407"
    "05040400010277000102031104052131061241510761711322328108144291a1b1c109233352f015"
    "6272d10a162434e125f11718191a262728292a35363738393a434445464748494a53545556575859"
    "5a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6"
    "a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9ea"
    "f2f3f4f5f6f7f8f9faffda000c03010002110311003f00"
)
FOOTER = b"\xff\xd9"

# A 16x16 mid-grey image: one MCU (4 luma blocks, Cb, Cr), every DC difference 0 and every
# block ended at once: luma "00"+"1010" four times, chroma "00"+"00" twice = 28 a2 8a 00.
GREY_16 = b"\x01\x10\x10\x28\xa2\x8a\x00"


def by_hand(data: bytes) -> bytes:
    header = bytearray(HEADER)
    header[164] = data[1]
    header[166] = data[2]
    return bytes(header) + data[3:] + FOOTER


def test_header_is_the_documented_one() -> None:
    assert len(HEADER) == 623
    assert HEADER[:4] == b"\xff\xd8\xff\xe0"
    # The start-of-frame segment: ff c0, length 17, 8 bits, height at 164, width at 166.
    assert HEADER[158:167] == bytes.fromhex("ffc000110800000000")


def test_expansion_matches_the_algorithm() -> None:
    jpeg = expand_stripped(GREY_16)
    assert jpeg == by_hand(GREY_16)
    assert jpeg is not None
    assert jpeg[:2] == b"\xff\xd8"
    assert jpeg[-2:] == b"\xff\xd9"
    assert jpeg[164] == 16
    assert jpeg[166] == 16
    assert jpeg[623:-2] == b"\x28\xa2\x8a\x00"
    assert len(jpeg) == 623 + 4 + 2


def test_height_and_width_bytes_are_placed() -> None:
    data = b"\x01\x28\x1e" + bytes(range(40))
    jpeg = expand_stripped(data)
    assert jpeg is not None
    assert (jpeg[164], jpeg[166]) == (40, 30)
    assert jpeg == by_hand(data)


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x10", b"\x02\x10\x10abc"])
def test_malformed_bytes_give_nothing(data: bytes) -> None:
    assert expand_stripped(data) is None
    assert stripped_thumbnail_uri([raw.types.PhotoStrippedSize(type="i", bytes=data)]) is None


def test_data_uri_from_photo_sizes() -> None:
    photo = roundtrip(
        raw.types.Photo(
            id=1,
            access_hash=2,
            file_reference=b"r",
            date=0,
            dc_id=2,
            sizes=[
                raw.types.PhotoSize(type="m", w=320, h=320, size=9000),
                raw.types.PhotoStrippedSize(type="i", bytes=GREY_16),
                raw.types.PhotoPathSize(type="j", bytes=b"\x01\x02"),
            ],
        )
    )
    uri = stripped_thumbnail_uri(photo.sizes)
    assert uri is not None
    assert uri.startswith("data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDACgcHiMe")
    assert base64.b64decode(uri.removeprefix("data:image/jpeg;base64,")) == by_hand(GREY_16)
    assert jpeg_data_uri(b"\xff\xd8") == "data:image/jpeg;base64,/9g="


@pytest.mark.parametrize(
    "sizes",
    [
        None,
        [],
        [raw.types.PhotoSize(type="x", w=1, h=1, size=1)],
        [raw.types.PhotoSizeEmpty(type="i")],
    ],
)
def test_no_stripped_size_gives_none(sizes: list[object] | None) -> None:
    assert stripped_thumbnail_uri(sizes) is None


def test_expansion_is_a_real_jpeg() -> None:
    from PIL import Image

    jpeg = expand_stripped(GREY_16)
    assert jpeg is not None
    with Image.open(io.BytesIO(jpeg)) as image:
        image.load()
        assert image.size == (16, 16)
        assert image.convert("L").getextrema() == (128, 128)
