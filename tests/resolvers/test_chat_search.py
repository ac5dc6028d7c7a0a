"""The chat list's search string, parsed without a database."""

from __future__ import annotations

import pytest

from db.vocabulary import ChatStatus
from resolvers.chat_search import ChatFilter, parse_chat_query
from resolvers.errors import ApiError


def refused(query: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_chat_query(query)
    error = caught.value
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "query"
    assert error.message.startswith("query: ")
    return error


@pytest.mark.parametrize("query", [None, "", "   ", "\t\n"])
def test_empty_query_lists_unarchived_chats(query: str | None) -> None:
    assert parse_chat_query(query) == ChatFilter(
        archived=False, statuses=[], title=None, has_unread=None, labels=[]
    )


@pytest.mark.parametrize(
    ("query", "archived"),
    [
        ("archived:true", True),
        ("archived:false", False),
        ("archived:any", None),
        ("archived:TRUE", True),
        ("Archived:Any", None),
        ("ARCHIVED:False", False),
    ],
)
def test_archived(query: str, archived: bool | None) -> None:
    assert parse_chat_query(query).archived is archived


@pytest.mark.parametrize(
    ("query", "statuses"),
    [
        ("status:pending", [ChatStatus.PENDING]),
        ("status:PENDING", [ChatStatus.PENDING]),
        ("STATUS:Running", [ChatStatus.RUNNING]),
        ("status:requires_action", [ChatStatus.REQUIRES_ACTION]),
        ("status:waiting status:error", [ChatStatus.WAITING, ChatStatus.ERROR]),
        ('status:"interrupting"', [ChatStatus.INTERRUPTING]),
    ],
)
def test_status(query: str, statuses: list[ChatStatus]) -> None:
    assert parse_chat_query(query).statuses == statuses


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("title:fix", "fix"),
        ("TITLE:Fix", "Fix"),  # the key is case-insensitive, the value is kept as typed
        ('title:"fix the"', "fix the"),
        ("title:'fix the'", "fix the"),
        ('"title:fix the"', "fix the"),
        (r"title:fix\ the", "fix the"),
        ('title:"say \\"hi\\""', 'say "hi"'),
        ("title:a:b", "a:b"),
        ("title:100%", "100%"),
        ("title:#1", "#1"),  # no shell comments
    ],
)
def test_title_with_quoting(query: str, title: str) -> None:
    assert parse_chat_query(query).title == title


@pytest.mark.parametrize(
    ("query", "has_unread"),
    [("has_unread:true", True), ("has_unread:false", False), ("HAS_UNREAD:True", True)],
)
def test_has_unread(query: str, has_unread: bool) -> None:
    assert parse_chat_query(query).has_unread is has_unread


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ("label:team=core", [("team", "core")]),
        ("label:team=core label:env=prod", [("team", "core"), ("env", "prod")]),
        ("label:team=web label:team=core", [("team", "web"), ("team", "core")]),
        ("label:expr=a=b", [("expr", "a=b")]),
        ('label:"note=two words"', [("note", "two words")]),
        ('label:note="two words"', [("note", "two words")]),
        ("label:ci/run.id-1_x=7", [("ci/run.id-1_x", "7")]),
        ("label:empty=", [("empty", "")]),
    ],
)
def test_labels(query: str, labels: list[tuple[str, str]]) -> None:
    assert parse_chat_query(query).labels == labels


def test_every_key_together() -> None:
    parsed = parse_chat_query(
        'archived:any status:running title:"deploy script" has_unread:true label:team=core'
    )
    assert parsed == ChatFilter(
        archived=None,
        statuses=[ChatStatus.RUNNING],
        title="deploy script",
        has_unread=True,
        labels=[("team", "core")],
    )


def test_terms_are_separated_by_any_whitespace() -> None:
    parsed = parse_chat_query("  archived:true\tstatus:error\n has_unread:false  ")
    assert (parsed.archived, parsed.statuses, parsed.has_unread) == (
        True,
        [ChatStatus.ERROR],
        False,
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "hello",
            "query: bare term 'hello': use key:value (archived, status, title, has_unread, label)",
        ),
        (
            '"two words"',
            "query: bare term 'two words': use key:value (archived, status, "
            "title, has_unread, label)",
        ),
        (
            "archived:true hello",
            "query: bare term 'hello': use key:value (archived, status, title, has_unread, label)",
        ),
    ],
)
def test_bare_terms_are_named(query: str, message: str) -> None:
    assert refused(query).message == message


@pytest.mark.parametrize(
    ("query", "key"),
    [("colour:red", "colour"), ("PR_STATUS:open", "pr_status"), (":x", ""), ("titel:x", "titel")],
)
def test_unknown_keys_are_named(query: str, key: str) -> None:
    error = refused(query)
    assert error.message == (
        f"query: unknown key {key!r} (one of archived, status, title, has_unread, label)"
    )
    assert error.extensions["key"] == key


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("archived:maybe", "query: archived: expected true, false or any, got 'maybe'"),
        ("archived:", "query: archived: expected true, false or any, got ''"),
        (
            "status:sleeping",
            "query: status: unknown 'sleeping' (one of waiting, pending, running, "
            "requires_action, interrupting, error)",
        ),
        ("title:", "query: title: needs a value"),
        ('title:""', "query: title: needs a value"),
        ("has_unread:yes", "query: has_unread: expected true or false, got 'yes'"),
        ("label:team", "query: label: expected key=value, got 'team'"),
        ("label:=core", "query: label: expected key=value, got '=core'"),
    ],
)
def test_bad_values_are_named(query: str, message: str) -> None:
    assert refused(query).message == message


@pytest.mark.parametrize("query", ['title:"unbalanced', "title:'open", 'label:"a=b'])
def test_unbalanced_quotes(query: str) -> None:
    assert refused(query).message.startswith("query: cannot parse: ")
