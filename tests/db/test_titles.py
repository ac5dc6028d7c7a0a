"""Titles from every source lose control characters and bidirectional overrides:
a model's answer (automatic and regenerated titles), the fallback from the first
message, and a title someone typed."""

from __future__ import annotations

import pytest

from db.parts import TextPart
from db.text_rules import clean_display_text, forbidden_character
from db.titles import clean_title, fallback_title, normalize_title

SNEAKY = [
    "\u202e",  # right-to-left override: "gnp.exe" shows as "exe.png"
    "\u202a",
    "\u202d",
    "\u2066",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x9b",
]


@pytest.mark.parametrize("character", SNEAKY, ids=lambda c: f"U+{ord(c):04X}")
def test_a_models_title_loses_the_character(character: str) -> None:
    assert normalize_title(f"Fix the {character}login bug") == "Fix the login bug"


@pytest.mark.parametrize("character", SNEAKY, ids=lambda c: f"U+{ord(c):04X}")
def test_the_fallback_title_loses_the_character(character: str) -> None:
    assert fallback_title([TextPart(f"please rename inv{character}oice.pdf")]) == (
        "please rename invoice.pdf"
    )


@pytest.mark.parametrize("character", SNEAKY, ids=lambda c: f"U+{ord(c):04X}")
def test_a_typed_title_loses_the_character(character: str) -> None:
    assert clean_title(f"  Invoice {character}gnp.exe ") == "Invoice gnp.exe"


def test_line_breaks_and_tabs_become_spaces() -> None:
    assert clean_title("Two\nlines\tand\u2028more") == "Two lines and more"


def test_emoji_sequences_keep_their_joiners() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_display_text(f"team {family}") == f"team {family}"


def test_the_input_rule_allows_text_whitespace_only() -> None:
    assert forbidden_character("tab\tnewline\ncr\r fine \u202e") is None
    assert forbidden_character("a\x00") == "U+0000"
    assert forbidden_character("\x85") == "U+0085"


def test_the_input_rule_reads_long_text_to_the_end() -> None:
    assert forbidden_character("x" * 5000) is None
    assert forbidden_character("x" * 5000 + "\x1f") == "U+001F"
    assert forbidden_character("é" * 5000 + "\x9f") == "U+009F"
