"""The chat list's search string: ``key:value`` terms, quotes allowed.

``archived:true|false|any`` (default false), ``status:<status>``,
``title:<substring>``, ``has_unread:true|false``, ``label:key=value``
(repeatable, all must match). A bare word or an unknown key is an error that
names it, so a typo never silently widens or empties a list.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from db.vocabulary import ChatStatus
from resolvers.errors import bad_input

KEYS = ("archived", "status", "title", "has_unread", "label")
_BOOL = {"true": True, "false": False}


@dataclass
class ChatFilter:
    archived: bool | None = False  # None = any
    statuses: list[ChatStatus] = field(default_factory=list)
    title: str | None = None
    has_unread: bool | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)  # all must match


def _terms(query: str) -> list[str]:
    lexer = shlex.shlex(query, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise bad_input("query", f"cannot parse: {exc}") from None


def _bool(key: str, value: str) -> bool:
    if value.lower() not in _BOOL:
        raise bad_input("query", f"{key}: expected true or false, got {value!r}", key=key)
    return _BOOL[value.lower()]


def parse_chat_query(query: str | None) -> ChatFilter:
    result = ChatFilter()
    for term in _terms(query or ""):
        key, sep, value = term.partition(":")
        if not sep:
            raise bad_input("query", f"bare term {term!r}: use key:value ({', '.join(KEYS)})")
        key = key.lower()
        if key == "archived":
            low = value.lower()
            if low not in {"any", "true", "false"}:
                raise bad_input("query", f"archived: expected true, false or any, got {value!r}")
            result.archived = None if low == "any" else low == "true"
        elif key == "status":
            try:
                result.statuses.append(ChatStatus[value.upper()])
            except KeyError:
                names = ", ".join(s.name.lower() for s in ChatStatus)
                raise bad_input("query", f"status: unknown {value!r} (one of {names})") from None
        elif key == "title":
            if not value:
                raise bad_input("query", "title: needs a value")
            result.title = value
        elif key == "has_unread":
            result.has_unread = _bool(key, value)
        elif key == "label":
            name, eq, wanted = value.partition("=")
            if not eq or not name:
                raise bad_input("query", f"label: expected key=value, got {value!r}")
            result.labels.append((name, wanted))
        else:
            raise bad_input("query", f"unknown key {key!r} (one of {', '.join(KEYS)})", key=key)
    return result
