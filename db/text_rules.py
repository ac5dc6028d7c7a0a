"""What text agentgql accepts and what it shows: one rule for every input, one
cleaning for titles and labels.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` and cannot encode a lone
surrogate, so such input must be refused before it reaches a query (a refusal
is the client's mistake, not a server error). Titles and labels are shown in
lists next to other people's text: bidirectional overrides there can make one
string display as another, so they lose those along with control characters.
What a model or a command produces is not input: it is stored with those
characters replaced (``storable``), never refused.
"""

from __future__ import annotations

import re
from typing import Any

# Refused in every string input: C0 controls but tab, newline and carriage return,
# DEL, C1 controls and lone surrogates. Nothing is stripped from input text.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

# Bidirectional formatting: embeddings and overrides (U+202A–U+202E), isolates
# (U+2066–U+2069), the marks (U+200E, U+200F, U+061C). Zero-width joiners stay:
# emoji sequences need them.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_WHITESPACE_CONTROLS = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]")
_INVISIBLE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_BIDI}]")


_C0 = tuple(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))


def forbidden_character(text: str) -> str | None:
    """The first character the input rule refuses, as ``U+XXXX``; None if clean."""
    if len(text) > 1024 and text.isascii() and not any(c in text for c in _C0):
        return None  # one C-speed substring search per control beats the regex on long text
    found = _FORBIDDEN.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def clean_display_text(text: str) -> str:
    """``text`` without control characters or bidirectional formatting, for
    titles and labels; line breaks and tabs become spaces (titles are one line)."""
    return strip_invisible(_WHITESPACE_CONTROLS.sub(" ", text))


def strip_invisible(text: str) -> str:
    """``text`` without control characters (line breaks and tabs included), lone
    surrogates or bidirectional formatting: for names, where a space is no better."""
    return _INVISIBLE.sub("", text)


# What PostgreSQL cannot store: NUL (in ``text`` and as ``\u0000`` in ``jsonb``) and
# lone surrogates (no UTF-8 encoding). One character for one, so cleaning pieces
# and joining them equals cleaning the whole: streamed deltas match the message.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced by U+FFFD: what a model or
    a command produced, kept as shown rather than refused (it is not input)."""
    if "\x00" not in text:
        if text.isascii():
            return text
        try:  # a C-speed check for surrogates: ~10x faster than the regex on long text
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return _UNSTORABLE.sub("\ufffd", text)


def storable(value: Any) -> Any:
    """A JSON value with ``storable_text`` applied to every string, keys included."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {
            storable_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [storable(item) for item in value]
    return value
