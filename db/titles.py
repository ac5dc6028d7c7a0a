"""Chat titles: the fallback from the first message, and cleaning a model's title.

Shared by the API (fallback at creation, manual renames) and the daemon
(automatic and regenerated titles), so both judge a title the same way: none
keeps control characters or bidirectional overrides (``clean_display_text``).
"""

from __future__ import annotations

import re

from db.parts import Part, plain_text
from db.text_rules import clean_display_text
from db.vocabulary import AUTO_TITLE_MAX, FALLBACK_TITLE, FALLBACK_TITLE_WORDS

TITLE_WORDS_MIN = 2
TITLE_WORDS_MAX = 8
_SPACES = re.compile(r"\s+")
_QUOTES = "\"'`“”‘’«»"


def fallback_title(parts: list[Part]) -> str:
    """The first six words (+ "…" when cut), at most 80 characters, or "New Chat"."""
    words = clean_display_text(plain_text(parts)).split()
    if not words:
        return FALLBACK_TITLE
    title = " ".join(words[:FALLBACK_TITLE_WORDS])
    if len(words) > FALLBACK_TITLE_WORDS:
        title += "…"
    if len(title) > AUTO_TITLE_MAX:
        title = title[: AUTO_TITLE_MAX - 1].rstrip() + "…"
    return title


def normalize_title(raw: str) -> str | None:
    """First line, cleaned; trim, strip quotes and backticks, collapse spaces,
    ≤ 80 characters, 2–8 words; None when the model's answer is not a usable title."""
    text = raw.strip().splitlines()[0] if raw.strip() else ""
    text = clean_display_text(text)
    text = text.strip().strip(_QUOTES).strip()
    if text.lower().startswith("title:"):
        text = text[len("title:") :].strip().strip(_QUOTES).strip()
    text = _SPACES.sub(" ", text).rstrip(".!?;:,")
    if len(text) > AUTO_TITLE_MAX:
        text = text[:AUTO_TITLE_MAX].rstrip()
    words = text.split()
    if not TITLE_WORDS_MIN <= len(words) <= TITLE_WORDS_MAX:
        return None
    return text


def clean_title(raw: str) -> str:
    """A title someone typed: one line, no control or bidirectional characters,
    trimmed (the length rule is the caller's)."""
    return clean_display_text(raw).strip()
