"""Text and raw entities → the HTML fragment: UTF-16 offsets, nesting, escaping, safe links."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from pyrogram import raw

from itam_tgstats.render.text_html import REOPEN_BUDGET, to_html
from tests.faketg import roundtrip

E = raw.types

ALLOWED = {
    "b": set(),
    "i": set(),
    "u": set(),
    "s": set(),
    "tg-spoiler": set(),
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
    "tg-emoji": {"emoji-id"},
    "a": {"href"},
}
VOID = {"br"}


class Checker(HTMLParser):
    """Fails on unbalanced tags and on any tag or attribute the site does not allow."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            assert not attrs
            self.text.append("\n")
            return
        assert tag in ALLOWED, tag
        assert {name for name, _ in attrs} <= ALLOWED[tag], (tag, attrs)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> closes the wrong tag"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(fragment: str) -> str:
    """Asserts `fragment` is well-formed and allowed; returns its text (`<br>` as newline)."""
    checker = Checker()
    checker.feed(fragment)
    checker.close()
    assert checker.stack == [], f"left open: {checker.stack}"
    return "".join(checker.text)


def render(text: str, *entities: Any) -> str:
    """to_html of wire-shaped text and entities."""
    wire = roundtrip(E.TextWithEntities(text=text, entities=list(entities)))
    html = to_html(wire.text, wire.entities)
    check(html)
    return html


def test_no_text_is_empty() -> None:
    assert to_html("", None) == ""
    assert to_html("", [E.MessageEntityBold(offset=0, length=3)]) == ""


def test_plain_text_is_escaped_and_newlines_become_br() -> None:
    assert render('a & b < c > d "q"\nline 2') == 'a &amp; b &lt; c &gt; d "q"<br>line 2'
    assert render("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_the_example_post_from_the_site() -> None:
    text = "🔥 Хакатон MISIS Hack\nПишите @itam_bot"
    html = render(
        text,
        E.MessageEntityBold(offset=3, length=18),
        E.MessageEntityItalic(offset=11, length=10),
        E.MessageEntityMention(offset=29, length=9),
    )
    assert html == (
        "🔥 <b>Хакатон <i>MISIS Hack</i></b><br>"
        'Пишите <a href="https://t.me/itam_bot">@itam_bot</a>'
    )


def test_emoji_before_bold_counts_two_units() -> None:
    # "🔥" is one character but two UTF-16 units: the bold "hot" starts at unit 3, not 2.
    assert render("🔥 hot!", E.MessageEntityBold(offset=3, length=3)) == "🔥 <b>hot</b>!"
    # Two astral emoji in a row, then bold on the second word.
    assert render("😀😀 a bc", E.MessageEntityBold(offset=7, length=2)) == "😀😀 a <b>bc</b>"


def test_zwj_emoji_under_a_custom_emoji() -> None:
    family = "👨\u200d👩\u200d👧"  # 3 astral emoji (2 units each) + 2 ZWJ: 8 units
    assert len(family.encode("utf-16-le")) // 2 == 8
    html = render(
        f"x{family}y <b>",
        E.MessageEntityCustomEmoji(offset=1, length=8, document_id=5_368_324_170_671_202_286),
        E.MessageEntityBold(offset=9, length=1),
    )
    assert html == (
        f'x<tg-emoji emoji-id="5368324170671202286">{family}</tg-emoji><b>y</b> &lt;b&gt;'
    )


def test_offset_inside_a_surrogate_pair_does_not_split_it() -> None:
    # A broken entity starting in the middle of 😀 snaps forward to the next character.
    assert render("😀ab", E.MessageEntityBold(offset=1, length=2)) == "😀<b>a</b>b"
    # Offsets past the end are clamped.
    assert render("ab", E.MessageEntityItalic(offset=1, length=50)) == "a<i>b</i>"


def test_simple_tags() -> None:
    html = render(
        "b i u s sp c q",
        E.MessageEntityBold(offset=0, length=1),
        E.MessageEntityItalic(offset=2, length=1),
        E.MessageEntityUnderline(offset=4, length=1),
        E.MessageEntityStrike(offset=6, length=1),
        E.MessageEntitySpoiler(offset=8, length=2),
        E.MessageEntityCode(offset=11, length=1),
        E.MessageEntityBlockquote(offset=13, length=1),
    )
    assert html == (
        "<b>b</b> <i>i</i> <u>u</u> <s>s</s> <tg-spoiler>sp</tg-spoiler> "
        "<code>c</code> <blockquote>q</blockquote>"
    )


def test_collapsed_blockquote_is_expandable() -> None:
    html = render("one\ntwo", E.MessageEntityBlockquote(offset=0, length=7, collapsed=True))
    assert html == "<blockquote expandable>one<br>two</blockquote>"


def test_pre_keeps_newlines_and_escapes() -> None:
    code = 'if a < b && c > "d":\n    print(1)\n'
    html = render(
        f"Code:\n{code}end",
        E.MessageEntityPre(offset=6, length=len(code), language="python"),
    )
    assert html == (
        'Code:<br><pre><code class="language-python">'
        'if a &lt; b &amp;&amp; c &gt; "d":\n    print(1)\n</code></pre>end'
    )
    assert render("x\ny", E.MessageEntityPre(offset=0, length=3, language="")) == "<pre>x\ny</pre>"
    assert render("a\nb", E.MessageEntityCode(offset=0, length=3)) == "<code>a\nb</code>"


def test_language_with_quotes_cannot_break_out() -> None:
    html = render("x", E.MessageEntityPre(offset=0, length=1, language='py" onclick="alert(1)'))
    assert html == '<pre><code class="language-pyonclickalert1">x</code></pre>'
    assert render("x", E.MessageEntityPre(offset=0, length=1, language='"<>')) == "<pre>x</pre>"
    assert render("x", E.MessageEntityPre(offset=0, length=1, language="c++")) == (
        '<pre><code class="language-c++">x</code></pre>'
    )


def test_nesting() -> None:
    html = render(
        "abcdef",
        E.MessageEntityBold(offset=0, length=6),
        E.MessageEntityItalic(offset=1, length=4),
        E.MessageEntityUnderline(offset=2, length=2),
    )
    assert html == "<b>a<i>b<u>cd</u>e</i>f</b>"


def test_same_span_keeps_telegram_order() -> None:
    html = render(
        "ab", E.MessageEntityItalic(offset=0, length=2), E.MessageEntityBold(offset=0, length=2)
    )
    assert html == "<i><b>ab</b></i>"


def test_partial_overlap_is_closed_and_reopened() -> None:
    html = render(
        "abcdefgh",
        E.MessageEntityBold(offset=0, length=5),
        E.MessageEntityItalic(offset=3, length=5),
    )
    assert html == "<b>abc<i>de</i></b><i>fgh</i>"
    html = render(
        "0123456789",
        E.MessageEntityUnderline(offset=4, length=6),
        E.MessageEntityBold(offset=0, length=6),
        E.MessageEntityStrike(offset=2, length=6),
    )
    assert html == "<b>01<s>23<u>45</u></s></b><s><u>67</u></s><u>89</u>"
    assert check(html) == "0123456789"


def test_text_link_with_partly_bold_text() -> None:
    html = render(
        "see the docs now",
        E.MessageEntityTextUrl(offset=4, length=8, url="https://itam.example/docs?a=1&b=2"),
        E.MessageEntityBold(offset=8, length=4),
    )
    assert html == ('see <a href="https://itam.example/docs?a=1&amp;b=2">the <b>docs</b></a> now')


def test_quotes_and_angles_in_url_are_escaped() -> None:
    html = render(
        "x",
        E.MessageEntityTextUrl(offset=0, length=1, url='https://e.example/"><script>x</script>'),
    )
    assert html == ('<a href="https://e.example/&quot;&gt;&lt;script&gt;x&lt;/script&gt;">x</a>')


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        " https://itam.example/",
        "\thttps://itam.example/",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "ftp://itam.example/",
        "//evil.example/",
        "",
    ],
)
def test_unsafe_text_links_are_text_only(url: str) -> None:
    html = render("click <me>", E.MessageEntityTextUrl(offset=0, length=10, url=url))
    assert html == "click &lt;me&gt;"


@pytest.mark.parametrize(
    "url", ["http://a.example/", "HTTPS://A.EXAMPLE/", "tg://resolve?domain=itam", "mailto:a@b.c"]
)
def test_safe_text_links(url: str) -> None:
    assert render("go", E.MessageEntityTextUrl(offset=0, length=2, url=url)) == (
        f'<a href="{url}">go</a>'
    )


def test_bare_urls() -> None:
    html = render(
        "a itam.example/x?a=1&b=2 b http://h.example c HTTPS://S.example d ftp://f.example",
        E.MessageEntityUrl(offset=2, length=22),
        E.MessageEntityUrl(offset=27, length=16),
        E.MessageEntityUrl(offset=46, length=17),
        E.MessageEntityUrl(offset=66, length=16),
    )
    assert html == (
        'a <a href="https://itam.example/x?a=1&amp;b=2">itam.example/x?a=1&amp;b=2</a> '
        'b <a href="http://h.example">http://h.example</a> '
        'c <a href="HTTPS://S.example">HTTPS://S.example</a> '
        "d ftp://f.example"
    )


def test_bare_url_that_is_not_http_gets_https_or_nothing() -> None:
    # Telegram would not mark these, but the text decides the link: it cannot run script.
    assert render("javascript://x", E.MessageEntityUrl(offset=0, length=14)) == "javascript://x"
    assert render('a"b.example', E.MessageEntityUrl(offset=0, length=11)) == (
        '<a href="https://a&quot;b.example">a"b.example</a>'
    )


def test_email_mention_and_plain_entities() -> None:
    text = "mail a@b.example @itam_bot #tag $USD /start +7 999 Masha"
    html = render(
        text,
        E.MessageEntityEmail(offset=5, length=11),
        E.MessageEntityMention(offset=17, length=9),
        E.MessageEntityHashtag(offset=27, length=4),
        E.MessageEntityCashtag(offset=32, length=4),
        E.MessageEntityBotCommand(offset=37, length=6),
        E.MessageEntityPhone(offset=44, length=6),
        E.MessageEntityMentionName(offset=51, length=5, user_id=42),
        E.MessageEntityBankCard(offset=0, length=4),
    )
    assert html == (
        'mail <a href="mailto:a@b.example">a@b.example</a> '
        '<a href="https://t.me/itam_bot">@itam_bot</a> #tag $USD /start +7 999 Masha'
    )


def test_mention_that_is_not_a_username_is_text() -> None:
    assert render('@a"b', E.MessageEntityMention(offset=0, length=4)) == '@a"b'
    assert render("@", E.MessageEntityMention(offset=0, length=1)) == "@"


def test_newline_inside_bold_and_at_boundaries() -> None:
    html = render("a\nb\n", E.MessageEntityBold(offset=0, length=3))
    assert html == "<b>a<br>b</b><br>"
    assert check(html) == "a\nb\n"


def test_entity_list_none_or_empty() -> None:
    assert to_html("a<b", None) == "a&lt;b"
    assert to_html("a<b", []) == "a&lt;b"


def test_characters_at_the_utf16_boundary_before_an_entity() -> None:
    # U+FFFF is the last character of one UTF-16 unit, U+10000 the first of two.
    assert to_html("\uffffab", [E.MessageEntityBold(offset=1, length=1)]) == "\uffff<b>a</b>b"
    assert to_html("\U00010000ab", [E.MessageEntityBold(offset=2, length=1)]) == (
        "\U00010000<b>a</b>b"
    )


def test_code_nested_in_another_tag_keeps_its_newline() -> None:
    """Any open code or pre keeps newlines, wherever it sits among the open tags."""
    html = render(
        "a\nb", E.MessageEntityBold(offset=0, length=3), E.MessageEntityCode(offset=0, length=3)
    )
    assert html == "<b><code>a\nb</code></b>"
    html = render(
        "xa\nb", E.MessageEntityCode(offset=0, length=4), E.MessageEntityItalic(offset=1, length=3)
    )
    assert html == "<code>x<i>a\nb</i></code>"
    html = render(
        "a\nb\nc",
        E.MessageEntityBold(offset=0, length=5),
        E.MessageEntityPre(offset=2, length=3, language=""),
    )
    assert html == "<b>a<br><pre>b\nc</pre></b>"


@pytest.mark.parametrize(("start", "kept"), [("\r\n", "\n\r\n"), ("\r", "\n\r"), ("\n", "\n\n")])
def test_a_line_break_first_in_pre_survives_the_browser(start: str, kept: str) -> None:
    """Bug: a browser reads CR LF (or a lone CR) as one newline, and drops a newline right
    after `<pre>`: the block lost its first (empty) line. One more newline keeps it."""
    text = f"{start}x"
    assert to_html(text, [E.MessageEntityPre(offset=0, length=len(text), language="")]) == (
        f"<pre>{kept}x</pre>"
    )
    # after `<code>` nothing is dropped, and nothing is added
    assert to_html(text, [E.MessageEntityPre(offset=0, length=len(text), language="sh")]) == (
        f'<pre><code class="language-sh">{start}x</code></pre>'
    )


def test_at_most_1000_entities_are_used() -> None:
    text = "x" * 1_001
    html = to_html(text, [E.MessageEntityBold(offset=i, length=1) for i in range(1_001)])
    assert html == "<b>x</b>" * 1_000 + "x"


def crossing(n: int, length: int, kind: type[Any] = E.MessageEntityBold) -> list[Any]:
    """`n` entities of `length` units, one starting at each of the first `n` characters:
    every pair overlaps without nesting."""
    return [kind(offset=i, length=length) for i in range(n)]


def test_crossing_entities_keep_the_fragment_a_few_times_the_text() -> None:
    """Bug: each entity that ended inside crossing ones closed and reopened all of them,
    quadratic in the entities (20,000 of them: minutes and gigabytes)."""
    text = "x" * 4_096
    entities = crossing(1_000, 2_000)
    html = to_html(text, entities)
    assert check(html) == text  # well-formed, and the text is all there
    own_tags = len("<b></b>") * len(entities)
    assert len(html) <= len(text) + own_tags + 2 * len(text) + REOPEN_BUDGET
    assert len(html) < 6 * len(text)


def test_reopening_past_the_budget_ends_the_entity_there() -> None:
    """Formatting may be cut short, never the text or the tree: a link with a long URL
    inside bold runs that each end inside it would be reopened at each of their ends."""
    text = "ab" * 600
    link = E.MessageEntityTextUrl(offset=1, length=1_199, url="https://e.example/" + "u" * 1_000)
    bold = [E.MessageEntityBold(offset=0, length=2 * k) for k in range(1, 600)]
    html = to_html(text, [link, *bold])
    assert check(html) == text
    opens = html.count("<a ")
    assert 1 < opens <= 1 + (2 * len(text) + REOPEN_BUDGET) // len(link.url)
    assert html.count("<b>") == len(bold)


def test_a_few_crossing_entities_are_all_reopened() -> None:
    html = render("abcdef", *crossing(3, 3, E.MessageEntityItalic))
    assert html == "<i>a<i>b<i>c</i></i></i><i><i>d</i></i><i>e</i>f"
