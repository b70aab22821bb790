"""Hostile input for the two places that take it: message text with raw entities → HTML the
site inserts as-is, and a user's .env file that `--write-env` rewrites.

Fuzzed with hypothesis (random text, entity lists and .env files) against invariants that
hold for any input, plus one regression test for each bug that fuzzing or review found.
"""

from __future__ import annotations

import io
import os
import re
import socket
import stat
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrogram import raw

from itam_tgstats.commands.envfile import check_env_target, with_session_string, write_env
from itam_tgstats.errors import ConfigError
from itam_tgstats.render.text_html import SAFE_LINK_PREFIXES, to_html
from tests.faketg import roundtrip
from tests.render.test_text_html import ALLOWED

E = raw.types
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------
# Text and entities → HTML
# ---------------------------------------------------------------------------------------------


class Browserish(HTMLParser):
    """Checks a fragment the way the site's browser will read it, and keeps its text.

    Asserts: only allowed tags and attributes, balanced nesting, no `<a>` inside `<a>` (a
    browser closes the outer one), every href on the allow-list. Records each character
    with the tags around it; `<br>` is a newline, and a newline (LF, CR LF or CR) right
    after `<pre>` is dropped, as HTML parsing does.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.chars: list[tuple[str, tuple[str, ...]]] = []
        self.hrefs: list[str] = []
        self.after_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.after_pre = tag == "pre"
        if tag == "br":
            assert not attrs
            self.chars.append(("\n", tuple(self.stack)))
            return
        assert tag in ALLOWED, tag
        assert {name for name, _ in attrs} <= ALLOWED[tag], (tag, attrs)
        assert len(attrs) == len({name for name, _ in attrs}), attrs
        if tag == "a":
            assert "a" not in self.stack, "a link inside a link"
            [(_, href)] = attrs
            assert href is not None
            assert href.lower().startswith(SAFE_LINK_PREFIXES), href
            self.hrefs.append(href)
        if tag == "tg-emoji":
            [(_, emoji_id)] = attrs
            assert emoji_id is not None
            int(emoji_id)
        if tag == "code" and attrs:
            [(_, css)] = attrs
            assert css is not None
            assert css.startswith("language-") and " " not in css, css
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise AssertionError(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self.after_pre = False
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack.pop() == tag, f"</{tag}> closes the wrong tag"

    def handle_data(self, data: str) -> None:
        # HTML reads CR LF or a lone CR as one newline; one right after <pre> is dropped.
        if self.after_pre:
            newline = next((n for n in ("\r\n", "\r", "\n") if data.startswith(n)), "")
            data = data[len(newline) :]
        self.after_pre = False
        self.chars.extend((char, tuple(self.stack)) for char in data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"comment {data!r}")

    def handle_decl(self, decl: str) -> None:
        raise AssertionError(f"declaration {decl!r}")

    def handle_pi(self, data: str) -> None:
        raise AssertionError(f"processing instruction {data!r}")

    def unknown_decl(self, data: str) -> None:
        raise AssertionError(f"declaration {data!r}")


def read(fragment: str) -> Browserish:
    reader = Browserish()
    reader.feed(fragment)
    reader.close()
    assert reader.stack == [], f"left open: {reader.stack}"
    return reader


def utf16_starts(text: str) -> list[int]:
    """The UTF-16 offset where each character of `text` starts."""
    starts, unit = [], 0
    for char in text:
        starts.append(unit)
        unit += 2 if ord(char) > 0xFFFF else 1
    return starts


def expected_tags(entity: Any) -> list[str]:
    """The tag names a formatting entity wraps its characters in (links are checked apart)."""
    simple = {
        E.MessageEntityBold: ["b"],
        E.MessageEntityItalic: ["i"],
        E.MessageEntityUnderline: ["u"],
        E.MessageEntityStrike: ["s"],
        E.MessageEntitySpoiler: ["tg-spoiler"],
        E.MessageEntityCode: ["code"],
        E.MessageEntityBlockquote: ["blockquote"],
        E.MessageEntityCustomEmoji: ["tg-emoji"],
    }.get(type(entity))
    if simple is not None:
        return simple
    if isinstance(entity, E.MessageEntityPre):
        language = re.sub(r"[^A-Za-z0-9_+#.-]", "", entity.language)
        return ["pre", "code"] if language else ["pre"]
    return []


def without_surrogates(text: str) -> str:
    """What the page shows of `text`: surrogate pairs joined, a lone one (which UTF-8
    cannot encode) as U+FFFD; as many UTF-16 units as before."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


TEXT_PIECES = st.sampled_from(
    [
        "a", "Я", " ", "\n", "\r\n", "<", ">", "&", '"', "'", "&amp;", "<b>", "</pre>",
        "😀", "👨\u200d👩\u200d👧", "\u200d", "\ufe0f", "🇷🇺", "\ud83d", "\ude00", "\x00", "\t",
        "javascript:alert(1)", "https://e.example/?a=1&b=2", "@itam_bot", "a@b.example", "é",
        "\u2028", "\x0c", "<!--", "]]>", "<![CDATA[",
    ]
)  # fmt: skip
TEXTS = st.lists(TEXT_PIECES | st.characters(), max_size=30).map("".join)
URLS = st.sampled_from(
    [
        "https://e.example/", "HTTP://E.EXAMPLE", "tg://resolve?domain=x", "mailto:a@b.c",
        "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
        "\x00javascript:alert(1)", "java\tscript:alert(1)", "&#106;avascript:alert(1)",
        "data:text/html,<script>", "vbscript:x", "https://e.example/\"><script>x</script>",
        "https://e.example/`x`\n'y'", "", "//evil.example", "\u212aelvin://x",
    ]
) | st.text()  # fmt: skip


@st.composite
def entities(draw: st.DrawFn, text: str) -> list[Any]:
    """A list of raw entities, mostly around the text, some of them nonsense."""
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    positions = st.integers(-3, units + 3) | st.sampled_from([-(2**31), 2**31 - 1, 2**40])
    kinds = st.sampled_from(
        [
            E.MessageEntityBold, E.MessageEntityItalic, E.MessageEntityUnderline,
            E.MessageEntityStrike, E.MessageEntitySpoiler, E.MessageEntityCode,
            E.MessageEntityPre, E.MessageEntityBlockquote, E.MessageEntityCustomEmoji,
            E.MessageEntityTextUrl, E.MessageEntityUrl, E.MessageEntityEmail,
            E.MessageEntityMention, E.MessageEntityHashtag, E.MessageEntityMentionName,
            E.MessageEntityUnknown, E.MessageEntityBotCommand,
        ]
    )  # fmt: skip
    result: list[Any] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(kinds)
        fields: dict[str, Any] = {"offset": draw(positions), "length": draw(positions)}
        if kind is E.MessageEntityPre:
            fields["language"] = draw(st.sampled_from(["", "python", 'a" b<c>', "c++"]) | st.text())
        elif kind is E.MessageEntityBlockquote:
            fields["collapsed"] = draw(st.booleans())
        elif kind is E.MessageEntityCustomEmoji:
            fields["document_id"] = draw(st.integers(-(2**63), 2**63 - 1))
        elif kind is E.MessageEntityTextUrl:
            fields["url"] = draw(URLS)
        elif kind is E.MessageEntityMentionName:
            fields["user_id"] = draw(st.integers(0, 2**40))
        result.append(kind(**fields))
    if result and draw(st.booleans()):
        result.append(result[0])  # the same entity twice
    return result


def check_rendering(text: str, entity_list: list[Any]) -> str:
    """to_html's output, read like a browser would, checked against the input."""
    fragment = to_html(text, entity_list)
    fragment.encode("utf-8")  # the page is UTF-8: no lone surrogate may reach it
    reader = read(fragment)
    shown = without_surrogates(text)
    assert "".join(char for char, _ in reader.chars) == shown
    starts = utf16_starts(shown)
    for k, (_, tags) in enumerate(reader.chars):
        wanted: Counter[str] = Counter()
        for entity in entity_list:
            if entity.offset <= starts[k] < entity.offset + entity.length:
                wanted.update(expected_tags(entity))
        got = Counter(tag for tag in tags if tag != "a")
        assert got == wanted, (k, shown[k], tags)
    return fragment


@FUZZ
@given(st.data())
def test_fuzz_any_text_and_entities_give_safe_well_formed_html(data: st.DataObject) -> None:
    text = data.draw(TEXTS)
    check_rendering(text, data.draw(entities(text)))


@FUZZ
@given(st.data())
def test_fuzz_wire_shaped_input_renders(data: st.DataObject) -> None:
    """As Pyrogram reads it off the wire (invalid UTF-8 already replaced)."""
    text = data.draw(TEXTS.map(without_surrogates))
    entity_list = data.draw(entities(text))
    entity_list = [e for e in entity_list if -(2**31) <= e.offset < 2**31]
    entity_list = [e for e in entity_list if -(2**31) <= e.length < 2**31]
    wire = roundtrip(E.TextWithEntities(text=text, entities=entity_list))
    check_rendering(wire.text, wire.entities)


@FUZZ
@given(st.text(), URLS)
def test_fuzz_links_only_to_allowed_schemes(text: str, url: str) -> None:
    text = text or "x"
    length = len(text.encode("utf-16-le", "surrogatepass")) // 2
    for entity in (
        E.MessageEntityTextUrl(offset=0, length=length, url=url),
        E.MessageEntityUrl(offset=0, length=length),
        E.MessageEntityEmail(offset=0, length=length),
        E.MessageEntityMention(offset=0, length=length),
    ):
        check_rendering(text, [entity])
    url_text = without_surrogates(url) or "x"
    bare = to_html(url_text, [E.MessageEntityUrl(offset=0, length=len(url_text) * 2)])
    read(bare)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
        "\x00javascript:alert(1)", "\x01javascript:alert(1)", "java\tscript:alert(1)",
        "java\nscript:alert(1)", "&#106;avascript:alert(1)", "javascript&colon;alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=", "vbscript:msgbox(1)", "file:///etc/passwd",
        "\u212aelvin:x", "ftp://e.example/", "https:/e.example", "https:e.example",
        "\ufeffhttps://e.example/", "%68ttps://e.example/",
    ],
)  # fmt: skip
def test_text_links_to_other_schemes_are_plain_text(url: str) -> None:
    html = to_html("x<y", [E.MessageEntityTextUrl(offset=0, length=3, url=url)])
    assert html == "x&lt;y"


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("javascript:alert(1)", "https://javascript:alert(1)"),
        ("JAVASCRIPT:alert(1)", "https://JAVASCRIPT:alert(1)"),
        ("data:text/html,<b>", "https://data:text/html,&lt;b&gt;"),
        ('e.example/"onmouseover="x', "https://e.example/&quot;onmouseover=&quot;x"),
        ("e.example/`x`", "https://e.example/`x`"),
    ],
)
def test_bare_url_text_without_a_scheme_becomes_an_https_link(text: str, href: str) -> None:
    html = to_html(text, [E.MessageEntityUrl(offset=0, length=len(text))])
    assert html.startswith(f'<a href="{href}">')
    read(html)


@pytest.mark.parametrize("text", ["ftp://e.example", "javascript://%0aalert(1)", "tg://x"])
def test_bare_url_with_another_scheme_is_no_link(text: str) -> None:
    assert to_html(text, [E.MessageEntityUrl(offset=0, length=len(text))]) == text


def test_mention_with_odd_characters_is_no_link() -> None:
    for name in ("@a b", "@a/../x", "@a?x=1", "@ä", "@a\n", "@@a", "@a\u200d"):
        assert "<a" not in to_html(name, [E.MessageEntityMention(offset=0, length=len(name))])


def test_link_inside_a_link_is_not_nested() -> None:
    """Bug: `<a><a></a></a>` is balanced, but a browser ends the outer link at the inner
    one's start, so the rest of the outer text lost its link and the tree differed."""
    html = to_html(
        "see e.example now",
        [
            E.MessageEntityTextUrl(offset=0, length=17, url="https://outer.example/"),
            E.MessageEntityUrl(offset=4, length=9),
        ],
    )
    assert html == '<a href="https://outer.example/">see e.example now</a>'
    html = to_html(
        "abcdef",
        [
            E.MessageEntityMention(offset=0, length=4),
            E.MessageEntityTextUrl(offset=2, length=4, url="https://b.example/"),
        ],
    )
    assert html == '<a href="https://t.me/abcd">abcd</a><a href="https://b.example/">ef</a>'
    read(html)


def test_leading_newline_in_pre_survives_the_browser() -> None:
    """Bug: a browser drops a newline right after `<pre>`, so the block lost its first
    (empty) line; one more newline keeps it."""
    assert to_html("\nx", [E.MessageEntityPre(offset=0, length=2, language="")]) == (
        "<pre>\n\nx</pre>"
    )
    # not after `<code>`, where nothing is dropped
    assert to_html("\nx", [E.MessageEntityPre(offset=0, length=2, language="sh")]) == (
        '<pre><code class="language-sh">\nx</code></pre>'
    )
    # nor after a `<pre>` that some other tag follows
    html = to_html(
        "\nx",
        [
            E.MessageEntityPre(offset=0, length=2, language=""),
            E.MessageEntityBold(offset=0, length=1),
        ],
    )
    assert html == "<pre><b>\n</b>x</pre>"
    assert "".join(char for char, _ in read(html).chars) == "\nx"


def test_lone_surrogates_become_replacement_characters() -> None:
    """Bug: text that is not valid Unicode (a lone surrogate, or a pair an entity split)
    went into the fragment as is, and writing the page as UTF-8 then failed."""
    html = to_html("a\ud83d\ude00b\udc00", [E.MessageEntityBold(offset=3, length=1)])
    assert html == "a😀<b>b</b>\ufffd"  # the pair is one character, two units
    html.encode("utf-8")
    html = to_html("\ud83d<\ude00", [E.MessageEntityItalic(offset=1, length=1)])
    assert html == "\ufffd<i>&lt;</i>\ufffd"


def test_huge_negative_and_zero_length_entities() -> None:
    text = "ab😀c"
    for offset, length in [
        (-(2**31), 2**32), (2**40, 5), (-5, 3), (1, 0), (1, -1), (0, 2**63), (2, 1), (3, 1),
    ]:  # fmt: skip
        check_rendering(text, [E.MessageEntityBold(offset=offset, length=length)])
    html = to_html(text, [E.MessageEntityBold(offset=-(2**31), length=2**32)])
    assert html == "<b>ab😀c</b>"


# ---------------------------------------------------------------------------------------------
# .env files
# ---------------------------------------------------------------------------------------------

SESSION = "AQAB-cd_EF012"
ENV_PIECES = st.sampled_from(
    [
        "A=1", "TG_SESSION_STRING=old", "export TG_SESSION_STRING = 'old'", "# comment",
        "OLD_TG_SESSION_STRING=x", "TG_SESSION_STRING_OLD=x", "TG_SESSION_STRING", "\ufeff",
        'B="multi', "TG_SESSION_STRING=inside", 'end"', "C='one", "two'", "\n", "\r\n", "\r",
        " ", "\t", "=", "#", '"', "'", "\\", "TG_SESSION_STRING= # empty", "'TG_SESSION_STRING'=q",
        "TG_SESSION_STRING=a#b", "TG_SESSION_STRING# c", "TG_SESSION_STRING=\"x\\\"y\"",
        "export", "é", "\xa0", "\x85",
    ]
)  # fmt: skip
ENV_TEXTS = st.lists(ENV_PIECES, max_size=14).map("".join)


def parsed(data: bytes) -> dict[str, str | None]:
    return dict(dotenv_values(stream=io.StringIO(data.decode("utf-8"))))


@FUZZ
@given(ENV_TEXTS)
def test_fuzz_env_file_gets_the_session_and_keeps_every_other_value(text: str) -> None:
    """Read back the way the app reads it (python-dotenv): the session is set, every
    other key keeps its value, and the file is changed only where the session was."""
    before = text.encode("utf-8")
    after = with_session_string(before, SESSION)
    old, new = parsed(before), parsed(after)
    assert new.get("TG_SESSION_STRING") == SESSION
    old.pop("TG_SESSION_STRING", None)
    new.pop("TG_SESSION_STRING", None)
    assert new == old
    if "TG_SESSION_STRING" not in text:  # nothing to replace: only appended
        assert after.startswith(before)
    assert with_session_string(after, SESSION) == after


def test_session_key_inside_another_keys_multi_line_value_is_left_alone() -> None:
    """Bug: a line of another key's quoted multi-line value that looked like the session
    key was rewritten (changing that value), and the real key was never added."""
    before = b'CERT="-----BEGIN-----\nTG_SESSION_STRING=not-a-key\n-----END-----"\nA=1\n'
    after = with_session_string(before, SESSION)
    assert after == before + b"TG_SESSION_STRING=" + SESSION.encode() + b"\n"
    assert parsed(after)["CERT"] == "-----BEGIN-----\nTG_SESSION_STRING=not-a-key\n-----END-----"


def test_multi_line_session_value_is_replaced_whole() -> None:
    """Bug: only the first line of a quoted multi-line value was replaced; the rest stayed
    behind as stray lines."""
    before = b"A=1\r\nexport TG_SESSION_STRING='old\r\nstill old' # c\r\nB=2"
    assert with_session_string(before, "NEW") == (
        b"A=1\r\nexport TG_SESSION_STRING='NEW' # c\r\nB=2"
    )


def test_bom_first_line_is_the_key_the_app_reads() -> None:
    """Bug: with a byte-order mark the first line was not recognised, so a second key was
    appended and the stale secret stayed in the file."""
    before = b"\xef\xbb\xbfTG_SESSION_STRING=old\nA=1\n"
    assert with_session_string(before, "NEW") == b"\xef\xbb\xbfTG_SESSION_STRING=NEW\nA=1\n"


def test_single_quoted_key_and_empty_value_with_comment() -> None:
    """The same key for python-dotenv, so replaced in place, not shadowed."""
    assert with_session_string(b"'TG_SESSION_STRING'=old\n", "NEW") == (
        b"'TG_SESSION_STRING'=NEW\n"
    )
    assert with_session_string(b"TG_SESSION_STRING= # c\n", "NEW") == (
        b"TG_SESSION_STRING= NEW # c\n"
    )
    assert parsed(b"TG_SESSION_STRING= NEW # c\n")["TG_SESSION_STRING"] == "NEW"


@pytest.mark.parametrize(
    "line",
    [b"OLD_TG_SESSION_STRING=x\n", b"TG_SESSION_STRING_OLD=x\n", b"#TG_SESSION_STRING=x\n",
     b"XTG_SESSION_STRING=x\n", b"export_TG_SESSION_STRING=x\n"],
)  # fmt: skip
def test_keys_containing_the_name_are_other_keys(line: bytes) -> None:
    assert with_session_string(line, "NEW") == line + b"TG_SESSION_STRING=NEW\n"


def test_non_utf8_bytes_and_unclosed_quotes_survive() -> None:
    before = b"T=\xcf\xf0\n" + b"TG_SESSION_STRING=o\xffld # \xfe\n" + b'Q="unclosed'
    assert with_session_string(before, "NEW") == (
        b'T=\xcf\xf0\nTG_SESSION_STRING=NEW # \xfe\nQ="unclosed'
    )
    after = with_session_string(b'Q="unclosed', "NEW")
    assert after == b'Q="unclosed\nTG_SESSION_STRING=NEW\n'
    assert parsed(after)["TG_SESSION_STRING"] == "NEW"


@pytest.mark.parametrize("value", ["", "a\nB=1", "a'b", 'a"b', "a #b", "a b", "ж", "a\x00"])
def test_a_session_string_that_would_inject_lines_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="session string"):
        with_session_string(b"A=1\n", value)


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(ConfigError, match="is a socket, not a regular file"):
            write_env(path, SESSION)
    assert stat.S_ISSOCK(path.lstat().st_mode)


def test_a_hard_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    """Renaming a new file over the name leaves another name of the old file untouched."""
    original = tmp_path / "secrets.txt"
    original.write_text("keep\n")
    link = tmp_path / ".env"
    os.link(original, link)
    write_env(link, SESSION)
    assert original.read_text() == "keep\n"
    assert link.read_text() == f"keep\nTG_SESSION_STRING={SESSION}\n"
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_a_key_without_a_value_is_set_too() -> None:
    """Bug: a later `TG_SESSION_STRING` line without `=` makes python-dotenv read the key as
    unset, so the app saw no session although the earlier line had been rewritten."""
    before = b"TG_SESSION_STRING=old\nexport TG_SESSION_STRING\n"
    after = with_session_string(before, "NEW")
    assert after == b"TG_SESSION_STRING=NEW\nexport TG_SESSION_STRING=NEW\n"
    assert parsed(after)["TG_SESSION_STRING"] == "NEW"
    assert with_session_string(b"TG_SESSION_STRING# c\n", "NEW") == b"TG_SESSION_STRING=NEW # c\n"


def test_the_longest_file_name_can_be_written(tmp_path: Path) -> None:
    """Bug: the temporary file's name (the whole name plus mkstemp's part) was too long for
    a 255-byte name, so the write failed after the login and the new session was lost."""
    path = tmp_path / ("a" * 251 + ".env")
    path.write_text("A=1\n")
    write_env(path, SESSION)
    assert path.read_text() == f"A=1\nTG_SESSION_STRING={SESSION}\n"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_own_file_this_user_cannot_read_is_refused_before_the_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug: the file is read only after the login, so an unreadable one lost the session.
    (Root reads anything, so the kernel's answer is faked for a user who cannot.)"""
    path = tmp_path / ".env"
    path.write_text("A=1\n")
    path.chmod(0o200)
    real_access = os.access

    def access(target: Any, mode: int, **kwargs: Any) -> bool:
        if Path(target) == path and mode & os.R_OK:
            return False
        return real_access(target, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(ConfigError) as caught:
        check_env_target(path)
    assert str(caught.value) == f"--write-env {path}: this user cannot read it"
