"""The chat list's search string: ``key:value`` terms, quotes allowed.

``archived:true|false|any`` (default false), ``status:<status>``,
``title:<substring>``, ``has_unread:true|false``, ``label:key=value``
(repeatable, all must match), ``pr_status:open|draft|merged|closed|none``
(repeatable, any may match; ``none``: no pull request, or no branch at all).
A bare word or an unknown key is an error that names it, so a typo never
silently widens or empties a list.

The string is split in one pass (quotes and backslashes as in a POSIX shell),
with a cap on its length and on its number of terms checked as it goes: a
megabyte of text or thousands of terms are refused without doing work in
proportion to them. All label terms become one or a few JSON containments
rather than one SQL condition each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.expressions import Q, Subquery

from db.models import ChatDiffStatus
from db.vocabulary import LABEL_KEY_MAX, LABEL_VALUE_MAX, LABELS_MAX, ChatStatus, PullRequestState
from resolvers.errors import bad_input

KEYS = ("archived", "status", "title", "has_unread", "label", "pr_status")
# ``pr_status:`` values: a pull request's state, or none (no pull request).
PR_STATUSES: dict[str, PullRequestState | None] = {
    **{state.value: state for state in PullRequestState},
    "none": None,
}
_BOOL = {"true": True, "false": False}
# Enough for a label term per label a chat can have, at full length, and the rest.
SEARCH_MAX_TERMS = LABELS_MAX + 14
SEARCH_MAX_LENGTH = SEARCH_MAX_TERMS * (len("label:") + LABEL_KEY_MAX + LABEL_VALUE_MAX + 4)
_SPACE = frozenset(" \t\r\n")


@dataclass
class ChatFilter:
    archived: bool | None = False  # None = any
    statuses: list[ChatStatus] = field(default_factory=list)
    title: str | None = None
    has_unread: bool | None = None
    labels: list[tuple[str, str]] = field(default_factory=list)  # all must match
    pr_statuses: list[PullRequestState | None] = field(default_factory=list)  # any; None = none

    def label_sets(self) -> list[dict[str, str]]:
        """The label terms as few containments as can express them: one, unless
        a key is asked for with two values (then no chat matches both)."""
        sets: list[dict[str, str]] = []
        for key, value in dict.fromkeys(self.labels):
            for wanted in sets:
                if key not in wanted:
                    wanted[key] = value
                    break
            else:
                sets.append({key: value})
        return sets


@dataclass
class Terms:
    terms: list[str] = field(default_factory=list)
    steps: int = 0  # characters read: the work done, whatever the input


def split_terms(query: str, found: Terms | None = None) -> Terms:
    """Whitespace-separated terms; quotes group, a backslash escapes (inside
    double quotes only a quote or backslash), like ``shlex`` in POSIX mode
    but in one linear pass that stops at the term limit. ``found`` collects
    them (and the steps taken, even when the query is refused)."""
    if len(query) > SEARCH_MAX_LENGTH:
        raise bad_input(
            "query",
            f"at most {SEARCH_MAX_LENGTH} characters, got {len(query)}",
            limit="length",
            maximum=SEARCH_MAX_LENGTH,
            actual=len(query),
        )
    found = found if found is not None else Terms()
    buf: list[str] = []
    in_term = False
    quote = ""
    i, end = 0, len(query)
    while i < end:
        c = query[i]
        i += 1
        if quote:
            if c == quote:
                quote = ""
            elif c == "\\" and quote == '"' and i < end and query[i] in '"\\':
                buf.append(query[i])
                i += 1
            else:
                buf.append(c)
        elif c in _SPACE:
            if in_term:
                _add(found, "".join(buf))
                buf.clear()
                in_term = False
        else:
            in_term = True
            if c in "'\"":
                quote = c
            elif c == "\\":
                if i == end:
                    raise bad_input("query", "cannot parse: no escaped character")
                buf.append(query[i])
                i += 1
            else:
                buf.append(c)
        found.steps = i
    if quote:
        raise bad_input("query", "cannot parse: no closing quotation")
    if in_term:
        _add(found, "".join(buf))
    return found


def _add(found: Terms, term: str) -> None:
    if len(found.terms) == SEARCH_MAX_TERMS:
        raise bad_input(
            "query",
            f"at most {SEARCH_MAX_TERMS} terms",
            limit="terms",
            maximum=SEARCH_MAX_TERMS,
        )
    found.terms.append(term)


def _bool(key: str, value: str) -> bool:
    if value.lower() not in _BOOL:
        raise bad_input("query", f"{key}: expected true or false, got {value!r}", key=key)
    return _BOOL[value.lower()]


def parse_chat_query(query: str | None) -> ChatFilter:
    result = ChatFilter()
    for term in split_terms(query or "").terms:
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
        elif key == "pr_status":
            low = value.lower()
            if low not in PR_STATUSES:
                names = ", ".join(PR_STATUSES)
                raise bad_input("query", f"pr_status: unknown {value!r} (one of {names})")
            result.pr_statuses.append(PR_STATUSES[low])
        else:
            raise bad_input("query", f"unknown key {key!r} (one of {', '.join(KEYS)})", key=key)
    return result


def pr_status_condition(wanted: list[PullRequestState | None]) -> Q:
    """Chats whose pull request is in one of the states (``None``: chats with no
    pull request — no diff-status row, or a row the provider reported none for)."""
    states = [state for state in wanted if state is not None]
    conditions: list[Q] = []
    if states:
        having = ChatDiffStatus.filter(pull_request_state__in=states).values("chat_id")
        conditions.append(Q(id__in=Subquery(having)))
    if None in wanted:
        with_pr = ChatDiffStatus.filter(pull_request_state__isnull=False).values("chat_id")
        conditions.append(~Q(id__in=Subquery(with_pr)))
    return Q(*conditions, join_type=Q.OR)
