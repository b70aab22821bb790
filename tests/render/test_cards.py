"""Link cards, polls, URL buttons, forwards, edits and signatures from raw objects."""

from __future__ import annotations

from typing import Any

import pytest
from pyrogram import raw

from itam_tgstats.models import MediaFile
from itam_tgstats.render import cards
from tests.channels import T0, photo, post
from tests.faketg import roundtrip
from tests.render.test_media import GREY_URI
from tests.render.test_thumbnails import GREY_16

T = raw.types


# -- link previews ------------------------------------------------------------------------


def page_photo() -> T.Photo:
    return T.Photo(
        id=9_009,
        access_hash=5,
        file_reference=b"wp",
        date=T0,
        dc_id=2,
        sizes=[
            T.PhotoStrippedSize(type="i", bytes=GREY_16),
            T.PhotoSize(type="m", w=320, h=168, size=10_000),
            T.PhotoSize(type="x", w=800, h=420, size=50_000),
            T.PhotoSize(type="y", w=1200, h=630, size=80_000),
        ],
    )


def web_page(**fields: Any) -> T.MessageMediaWebPage:
    fields.setdefault("id", 1)
    fields.setdefault("url", "https://misis.ru/news/9001?a=1&b=2")
    fields.setdefault("display_url", "misis.ru/news/9001")
    fields.setdefault("hash", 0)
    return roundtrip(T.MessageMediaWebPage(webpage=T.WebPage(**fields)))


def test_link_preview_with_photo() -> None:
    media = web_page(
        type="article",
        site_name="НИТУ МИСИС",
        title="Хакатон",
        description='<b>"quoted"</b> & more',
        photo=page_photo(),
    )
    card, file = cards.link_preview(media, None)
    assert card == {
        "url": "https://misis.ru/news/9001?a=1&b=2",
        "display_url": "misis.ru/news/9001",
        "site_name": "НИТУ МИСИС",
        "title": "Хакатон",
        "description": '<b>"quoted"</b> & more',
        "type": "article",
        "thumbnail": GREY_URI,
        "image": None,
    }
    assert file is None
    card, file = cards.link_preview(media, 320)
    assert file == MediaFile(
        key="tg:media:9009:m",
        kind="photo",
        id=9_009,
        access_hash=5,
        file_reference=b"wp",
        dc_id=2,
        size_type="m",
        size=10_000,
    )
    assert card is not None
    assert card["image"] == "tg:media:9009:m"
    _, large = cards.link_preview(media, 1280)
    assert large is not None
    assert large.key == "tg:media:9009:y"


def test_link_preview_without_optional_strings_or_photo() -> None:
    card, file = cards.link_preview(web_page(title=""), 1280)
    assert card == {
        "url": "https://misis.ru/news/9001?a=1&b=2",
        "display_url": "misis.ru/news/9001",
        "site_name": None,
        "title": None,
        "description": None,
        "type": None,
        "thumbnail": None,
        "image": None,
    }
    assert file is None
    card, _ = cards.link_preview(web_page(photo=T.PhotoEmpty(id=3)), 1280)
    assert card is not None
    assert (card["thumbnail"], card["image"]) == (None, None)


@pytest.mark.parametrize(
    "page",
    [
        T.WebPagePending(id=1, date=T0, url="https://a.example"),
        T.WebPageEmpty(id=1, url="https://a.example"),
        T.WebPageNotModified(),
    ],
)
def test_pending_or_empty_page_is_no_preview(page: Any) -> None:
    media = roundtrip(T.MessageMediaWebPage(webpage=page))
    assert cards.link_preview(media, 320) == (None, None)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>x</script>",
        "vbscript:x", "file:///etc/passwd", "ftp://misis.ru/", " https://misis.ru/", "",
    ],
)  # fmt: skip
def test_link_preview_url_follows_the_text_link_rule(url: str) -> None:
    card, _ = cards.link_preview(web_page(url=url), None)
    assert card is not None and card["url"] is None


@pytest.mark.parametrize(
    "url", ["https://misis.ru/", "HTTP://MISIS.RU/", "tg://resolve?domain=itam", "mailto:a@b.c"]
)
def test_link_preview_url_with_a_safe_scheme_is_kept(url: str) -> None:
    card, _ = cards.link_preview(web_page(url=url), None)
    assert card is not None and card["url"] == url


@pytest.mark.parametrize(
    "display_url",
    [
        "misis.ru/news", "misis.ru/news?a=1&b=javascript:x", "www.misis.ru", "//misis.ru/x",
        "https://misis.ru/news", "mailto:a@b.c", "tg://resolve?domain=itam", "мисис.рф/новости",
        "misis.ru/a:b", "1.2.3.4/x",
    ],
)  # fmt: skip
def test_display_url_without_a_scheme_is_kept(display_url: str) -> None:
    card, _ = cards.link_preview(web_page(display_url=display_url), None)
    assert card is not None and card["display_url"] == display_url


@pytest.mark.parametrize(
    "display_url",
    [
        "javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html;base64,PHNjcmlwdD4=",
        " javascript:alert(1)", "\x00javascript:alert(1)", "\x01\x1fdata:x", "java\tscript:x",
        "java\nscript:x", "\tjavascript:x", "vbscript:x", "ftp://misis.ru/", "http:misis.ru",
        "misis.ru:8080/news",
    ],
)  # fmt: skip
def test_display_url_with_another_scheme_is_null(display_url: str) -> None:
    """As an address a browser reads these with their scheme: ignored characters dropped,
    `host:port` read as the scheme `host` (refused too: the card's `url` still has it)."""
    card, _ = cards.link_preview(web_page(display_url=display_url), None)
    assert card is not None and card["display_url"] is None


def test_other_media_is_no_preview() -> None:
    assert cards.link_preview(roundtrip(photo(1)), 320) == (None, None)
    assert cards.link_preview(None, 320) == (None, None)


# -- polls --------------------------------------------------------------------------------


def text(t: str) -> T.TextWithEntities:
    return T.TextWithEntities(text=t, entities=[])


def voters(option: bytes, count: int, **flags: Any) -> T.PollAnswerVoters:
    # In layer 229 `voters` and `recent_voters` share one flag bit: Pyrogram writes the
    # flag for `voters` but skips an empty `recent_voters`, so give it one voter to stay
    # readable (Telegram itself always sends the vector).
    return T.PollAnswerVoters(
        option=option, voters=count, recent_voters=[T.PeerUser(user_id=1)], **flags
    )


def make_poll(results: Any, **flags: Any) -> Any:
    return roundtrip(
        T.MessageMediaPoll(
            poll=T.Poll(
                id=1,
                question=text("Куда пойдём?"),
                hash=0,
                answers=[
                    T.PollAnswer(text=text("Хакатон"), option=b"0"),
                    T.PollAnswer(text=text("Лекция"), option=b"1"),
                    T.PollAnswer(text=text("Домой"), option=b"2"),
                ],
                **flags,
            ),
            results=results,
        )
    )


def test_poll_with_results() -> None:
    results = T.PollResults(
        total_voters=3,
        results=[
            voters(b"1", 1),
            voters(b"0", 2, chosen=True),
            voters(b"2", 0),
        ],
    )
    assert cards.poll(make_poll(results, closed=True, quiz=True)) == {
        "question": "Куда пойдём?",
        "answers": [
            {"text": "Хакатон", "voters": 2, "percent": 66.7},
            {"text": "Лекция", "voters": 1, "percent": 33.3},
            {"text": "Домой", "voters": 0, "percent": 0.0},
        ],
        "total_voters": 3,
        "closed": True,
        "multiple_choice": False,
        "quiz": True,
    }


def test_multiple_choice_total_is_as_sent() -> None:
    results = T.PollResults(
        total_voters=20,
        results=[
            voters(b"0", 12),
            voters(b"1", 15),
            voters(b"2", 1),
        ],
    )
    result = cards.poll(make_poll(results, multiple_choice=True))
    assert result is not None
    assert [(a["voters"], a["percent"]) for a in result["answers"]] == [
        (12, 60.0),
        (15, 75.0),
        (1, 5.0),
    ]
    assert result["total_voters"] == 20
    assert (result["closed"], result["multiple_choice"], result["quiz"]) == (False, True, False)


def test_poll_nobody_voted_is_zero_percent() -> None:
    results = T.PollResults(total_voters=0, results=[voters(b"0", 0)])
    result = cards.poll(make_poll(results))
    assert result is not None
    assert result["answers"] == [
        {"text": "Хакатон", "voters": 0, "percent": 0.0},
        {"text": "Лекция", "voters": 0, "percent": 0.0},
        {"text": "Домой", "voters": 0, "percent": 0.0},
    ]
    assert result["total_voters"] == 0


def test_hidden_results_are_null() -> None:
    # Telegram sends the total but no per-answer results until the account votes.
    for results in (T.PollResults(total_voters=321), T.PollResults(min=True)):
        result = cards.poll(make_poll(results))
        assert result is not None
        assert result["total_voters"] is None
        assert result["answers"] == [
            {"text": "Хакатон", "voters": None, "percent": None},
            {"text": "Лекция", "voters": None, "percent": None},
            {"text": "Домой", "voters": None, "percent": None},
        ]


def test_not_a_poll() -> None:
    assert cards.poll(roundtrip(photo(1))) is None
    assert cards.poll(None) is None


# -- buttons ------------------------------------------------------------------------------


def url_button(label: str, url: str) -> T.KeyboardInlineButton:
    return T.KeyboardInlineButton(text=label, type=T.InlineButtonTypeUrl(url=url))


def callback_button(label: str) -> T.KeyboardInlineButton:
    return T.KeyboardInlineButton(text=label, type=T.InlineButtonTypeCallback(data=b"x"))


def test_url_buttons_kept_callbacks_and_empty_rows_dropped() -> None:
    markup = roundtrip(
        T.ReplyInlineMarkup(
            rows=[
                T.KeyboardInlineButtonRow(
                    buttons=[
                        url_button("Регистрация", "https://misis.ru/reg?a=1&b=2"),
                        callback_button("Like"),
                        url_button("Бот", "tg://resolve?domain=itam_bot"),
                    ]
                ),
                T.KeyboardInlineButtonRow(buttons=[callback_button("only callback")]),
                T.KeyboardInlineButtonRow(buttons=[]),
                T.KeyboardInlineButtonRow(buttons=[url_button("Сайт", "https://itam.example/")]),
            ]
        )
    )
    assert cards.buttons(markup) == [
        [
            {"text": "Регистрация", "url": "https://misis.ru/reg?a=1&b=2"},
            {"text": "Бот", "url": "tg://resolve?domain=itam_bot"},
        ],
        [{"text": "Сайт", "url": "https://itam.example/"}],
    ]


def test_no_keyboard_is_no_buttons() -> None:
    assert cards.buttons(None) == []
    only_callbacks = T.ReplyInlineMarkup(
        rows=[T.KeyboardInlineButtonRow(buttons=[callback_button("x")])]
    )
    assert cards.buttons(roundtrip(only_callbacks)) == []
    assert cards.buttons(roundtrip(T.ReplyKeyboardHide())) == []


# -- forwards -----------------------------------------------------------------------------


CHATS = [
    T.Channel(id=111, title="НИТУ МИСИС", photo=T.ChatPhotoEmpty(), date=T0, username="misis_news"),
    T.Channel(id=222, title="Private <b>", photo=T.ChatPhotoEmpty(), date=T0),
    T.Channel(
        id=333,
        title="Renamed",
        photo=T.ChatPhotoEmpty(),
        date=T0,
        usernames=[
            T.Username(username="old_name", active=False),
            T.Username(username="new_name", active=True),
        ],
    ),
]
USERS = [
    T.User(id=10, first_name="Мария", last_name="Иванова", username="masha"),
    T.User(id=11, first_name="Пётр"),
]


def fwd(**fields: Any) -> Any:
    return roundtrip(T.MessageFwdHeader(date=T0, **fields))


def forwarded(header: Any) -> Any:
    chats = [roundtrip(c) for c in CHATS]
    users = [roundtrip(u) for u in USERS]
    return cards.forwarded_from(header, chats, users)


def test_forward_from_channel_post() -> None:
    header = fwd(from_id=T.PeerChannel(channel_id=111), channel_post=77)
    assert forwarded(header) == {"title": "НИТУ МИСИС", "link": "https://t.me/misis_news/77"}


def test_forward_from_channel_without_post_id() -> None:
    header = fwd(from_id=T.PeerChannel(channel_id=111))
    assert forwarded(header) == {"title": "НИТУ МИСИС", "link": "https://t.me/misis_news"}


def test_forward_from_channel_without_username() -> None:
    header = fwd(from_id=T.PeerChannel(channel_id=222), channel_post=5)
    assert forwarded(header) == {"title": "Private <b>", "link": None}


def test_forward_from_channel_with_only_collectible_usernames() -> None:
    header = fwd(from_id=T.PeerChannel(channel_id=333), channel_post=9)
    assert forwarded(header) == {"title": "Renamed", "link": "https://t.me/new_name/9"}


def test_forward_from_users() -> None:
    assert forwarded(fwd(from_id=T.PeerUser(user_id=10))) == {
        "title": "Мария Иванова",
        "link": "https://t.me/masha",
    }
    assert forwarded(fwd(from_id=T.PeerUser(user_id=11))) == {"title": "Пётр", "link": None}


def test_forward_from_hidden_user() -> None:
    assert forwarded(fwd(from_name="Аноним")) == {"title": "Аноним", "link": None}


def test_forward_from_someone_not_in_the_answer() -> None:
    assert forwarded(fwd(from_id=T.PeerChannel(channel_id=999), channel_post=1)) == {
        "title": None,
        "link": None,
    }


def test_forward_from_a_deleted_account() -> None:
    """Bug: `userEmpty` among getHistory's users raised AttributeError and failed the pass."""
    users = [roundtrip(T.UserEmpty(id=12)), roundtrip(T.User(id=13, deleted=True))]
    for user_id in (12, 13):
        header = fwd(from_id=T.PeerUser(user_id=user_id), from_name="Shown name")
        assert cards.forwarded_from(header, [], users) == {
            "title": "Deleted Account",
            "link": None,
        }


def test_original_post_is_not_forwarded() -> None:
    assert cards.forwarded_from(None, [], []) is None


# -- edits and signatures -----------------------------------------------------------------


def test_edited_at() -> None:
    edited = roundtrip(post(1, 5, "x", edit_date=1_746_792_000))
    assert cards.edited_at(edited) == "2025-05-09T12:00:00+00:00"
    hidden = roundtrip(post(1, 5, "x", edit_date=1_746_792_000, edit_hide=True))
    assert cards.edited_at(hidden) is None
    assert cards.edited_at(roundtrip(post(1, 5, "x"))) is None


def test_author() -> None:
    assert cards.author(roundtrip(post(1, 5, "x", post_author="Мария"))) == "Мария"
    assert cards.author(roundtrip(post(1, 5, "x"))) is None


def test_buttons_with_unsafe_schemes_are_dropped() -> None:
    markup = roundtrip(
        T.ReplyInlineMarkup(
            rows=[
                T.KeyboardInlineButtonRow(
                    buttons=[
                        url_button("evil", "javascript:alert(1)"),
                        url_button("data", "data:text/html,<script>"),
                        url_button("ok", "mailto:team@itam.example"),
                    ]
                ),
            ]
        )
    )
    assert cards.buttons(markup) == [[{"text": "ok", "url": "mailto:team@itam.example"}]]
