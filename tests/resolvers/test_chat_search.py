"""The chat list's search string: parsed without a database, then through the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from db.models import Chat
from db.vocabulary import LABELS_MAX, ChatStatus
from resolvers.chat_search import (
    SEARCH_MAX_LENGTH,
    SEARCH_MAX_TERMS,
    ChatFilter,
    Terms,
    parse_chat_query,
    split_terms,
)
from resolvers.errors import ApiError
from tests.harness import GraphQLClient, new_person


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
            "query: bare term 'hello': use key:value (archived, status, title, has_unread, "
            "label, pr_status)",
        ),
        (
            '"two words"',
            "query: bare term 'two words': use key:value (archived, status, "
            "title, has_unread, label, pr_status)",
        ),
        (
            "archived:true hello",
            "query: bare term 'hello': use key:value (archived, status, title, has_unread, "
            "label, pr_status)",
        ),
    ],
)
def test_bare_terms_are_named(query: str, message: str) -> None:
    assert refused(query).message == message


@pytest.mark.parametrize(
    ("query", "key"),
    [("colour:red", "colour"), ("PR_STATE:open", "pr_state"), (":x", ""), ("titel:x", "titel")],
)
def test_unknown_keys_are_named(query: str, key: str) -> None:
    error = refused(query)
    assert error.message == (
        f"query: unknown key {key!r} (one of archived, status, title, has_unread, label, pr_status)"
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


# --- bounded work ------------------------------------------------------------


def test_a_megabyte_title_is_refused_before_it_is_read() -> None:
    query = "title:" + "x" * 1_000_000
    seen = Terms()
    with pytest.raises(ApiError) as caught:
        split_terms(query, seen)
    assert seen.steps == 0
    error = refused(query)
    assert error is not caught.value
    assert error.message == f"query: at most {SEARCH_MAX_LENGTH} characters, got {len(query)}"
    assert error.extensions == {
        "code": "BAD_USER_INPUT",
        "field": "query",
        "limit": "length",
        "maximum": SEARCH_MAX_LENGTH,
        "actual": len(query),
    }


def test_too_many_terms_are_refused_after_reading_only_the_allowed_ones() -> None:
    query = " ".join(f"label:k{i % 10}=v" for i in range(1500))
    assert len(query) <= SEARCH_MAX_LENGTH
    seen = Terms()
    with pytest.raises(ApiError):
        split_terms(query, seen)
    assert seen.steps <= (SEARCH_MAX_TERMS + 1) * len("label:k0=v ")
    error = refused(query)
    assert error.message == f"query: at most {SEARCH_MAX_TERMS} terms"
    assert error.extensions["limit"] == "terms"
    # 20 000 terms do not fit the length limit: refused without reading.
    assert refused("label:k=v " * 20_000).extensions["limit"] == "length"


def test_the_limits_fit_a_label_term_for_every_label_at_full_length() -> None:
    labels = " ".join(f"label:{'k' * 62}{i:02}={'v' * 256}" for i in range(LABELS_MAX))
    query = f"{labels} archived:any status:running title:x has_unread:true"
    assert len(parse_chat_query(query).labels) == LABELS_MAX


def test_splitting_takes_one_step_per_character() -> None:
    query = 'title:"a \\"quoted\\" word" label:x=\'y z\' status:error'
    found = split_terms(query)
    assert found.terms == ['title:a "quoted" word', "label:x=y z", "status:error"]
    assert found.steps == len(query)


@pytest.mark.parametrize(
    ("labels", "sets"),
    [
        ([], []),
        ([("team", "core"), ("env", "prod")], [{"team": "core", "env": "prod"}]),
        ([("team", "core"), ("team", "core")], [{"team": "core"}]),
        (
            [("team", "web"), ("team", "core"), ("env", "x")],
            [{"team": "web", "env": "x"}, {"team": "core"}],
        ),
    ],
)
def test_label_terms_become_few_containments(
    labels: list[tuple[str, str]], sets: list[dict[str, str]]
) -> None:
    assert ChatFilter(labels=labels).label_sets() == sets


# --- through the API -----------------------------------------------------------

CHATS = "query($q: String) { chats(query: $q) { nodes { title } } }"


async def test_hundreds_of_label_terms_are_refused_not_an_internal_error(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    query = " ".join(f"label:k{i}=v" for i in range(960))
    error = await gql.error(CHATS, {"q": query}, token=me.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["limit"] == "terms"


async def test_every_label_term_allowed_gives_the_right_chats(
    gql: GraphQLClient, admin_token: str
) -> None:
    me = await new_person()
    labels = {f"k{i}": "v" for i in range(LABELS_MAX)}
    for title, chat_labels in (("all", labels), ("some", {"k0": "v"})):
        chat_id = uuid.uuid4()
        await Chat.create(
            id=chat_id,
            owner_id=me.user.id,
            root_id=chat_id,
            title=title,
            labels=chat_labels,
            updated_at=datetime.now(UTC),
        )
    terms = [f"label:k{i % LABELS_MAX}=v" for i in range(SEARCH_MAX_TERMS)]
    data = await gql.ok(CHATS, {"q": " ".join(terms)}, token=me.token)
    assert [n["title"] for n in data["chats"]["nodes"]] == ["all"]
    data = await gql.ok(CHATS, {"q": "label:k0=v label:k0=w"}, token=me.token)
    assert data["chats"]["nodes"] == []


async def test_a_megabyte_title_search_is_refused(gql: GraphQLClient, admin_token: str) -> None:
    me = await new_person()
    error = await gql.error(CHATS, {"q": "title:" + "x" * 1_000_000}, token=me.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["limit"] == "length"
