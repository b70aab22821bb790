"""What is printed never carries control characters raw: JSON on stdout and log lines.

A channel's title or text may hold C0/C1 controls (ESC and the 8-bit CSI U+009B start
terminal sequences), the bidi controls that reorder what is shown, and the invisible format
characters that hide or disguise it (zero-width spaces, tags). They stay in what is stored
(the data is the data); where they are printed they appear as `\\uXXXX`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# C0 controls, DEL and C1 controls; U+061C, U+200E, U+200F (bidi marks), U+2028 and U+2029
# (line and paragraph separators), U+202A-U+202E (embeddings and overrides), U+2066-U+2069
# (isolates); and the invisible format characters that hide or disguise text: U+00AD (soft
# hyphen), U+200B-U+200D (zero-width space, non-joiner, joiner), U+2060-U+2064 (word
# joiner, invisible operators), U+FEFF (byte-order mark), U+E0000-U+E007F (tags).
_CONTROLS = (
    "\x7f-\x9f\u00ad\u061c\u200b\u200c\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f"
)
# The zero-width joiner stays between two emoji: there it makes one of them (a family, a
# profession, a rainbow flag), and hides nothing.
_EMOJI = "\u2190-\u2bff\U0001f000-\U0001faff"
_LONE_JOINER = f"\u200d(?![{_EMOJI}])|(?<![{_EMOJI}\ufe0f])\u200d"
CONTROL_CHARACTERS = re.compile(f"[\x00-\x1f{_CONTROLS}]|{_LONE_JOINER}")
# The same without the newline: a traceback keeps its lines.
_CONTROLS_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_CONTROLS}]|{_LONE_JOINER}")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # as JSON writes it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character written `\\uXXXX` (`\\u009b`)."""
    pattern = _CONTROLS_BUT_NEWLINE if keep_newlines else CONTROL_CHARACTERS
    return pattern.sub(_escaped, text)


def dumps(data: Any, *, ascii_only: bool = False) -> str:
    """`data` as indented JSON for stdout: parsed, the same data, with no control character
    raw (`json.dumps` escapes C0 already, but not DEL, C1 or the bidi controls).

    `ascii_only` escapes everything that is not ASCII too (`\\u0442`).
    """
    # Outside strings json.dumps writes only ASCII punctuation, digits, letters, spaces and
    # the indent's newlines; inside them it escapes newlines: every other control left in
    # its output is inside a string, where `\uXXXX` means the same.
    return escape_controls(json.dumps(data, ensure_ascii=ascii_only, indent=2), keep_newlines=True)


class EscapingFormatter(logging.Formatter):
    """Log lines with control characters escaped: a message is one line whatever it quotes
    (its newlines escaped too); a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return escape_controls(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return escape_controls(super().formatStack(stack_info), keep_newlines=True)


def setup_logging(level: str) -> None:
    """Log lines to stderr at LOG_LEVEL; stdout carries only a command's output."""
    handler = logging.StreamHandler(sys.stderr)
    # A channel's name or text quoted in a message never carries a control character raw.
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Pyrogram logs whole requests at DEBUG (the login's API hash among them): never show
    # those. Its reconnect warnings only repeat what a failed pass's one error line says,
    # so they show only when LOG_LEVEL=DEBUG asks for everything.
    # asyncio reports the exceptions of Pyrogram's own background tasks (a garbled packet
    # from a middlebox, say) with a traceback: the pass's one error line says it already.
    for library in ("pyrogram", "asyncio"):
        logging.getLogger(library).setLevel(
            logging.WARNING if level == "DEBUG" else logging.CRITICAL + 1
        )
