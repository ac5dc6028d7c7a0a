"""Every string input is answered cleanly: a NUL (or another control character)
anywhere in a String or ID argument is BAD_USER_INPUT naming it, never a server
error and never half-written.

The cases come from the schema itself: every String/ID argument and every
String/ID field of an input object, of every query, mutation and subscription,
each sent once as a variable and once as a literal.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    get_named_type,
    is_leaf_type,
)
from graphql.pyutils import Undefined
from httpx_ws import WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from db.models import ApiToken, Chat, User
from db.text_rules import forbidden_character
from resolvers import global_id
from schema.build import build_schema
from tests.harness import GraphQLClient, graphql_ws
from tests.uploads import PREFLIGHT, multipart_upload, png, stored_files

BAD = "a\x00b"
_SCHEMA = build_schema()._schema
_DUMMY: dict[str, Any] = {
    "String": "x",
    "ID": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "JSON": {},
    "DateTime": "2026-01-01T00:00:00Z",
}


@dataclass(frozen=True)
class Case:
    root: str  # query, mutation or subscription
    field: str
    path: tuple[str, ...]  # argument, then input-object fields

    @property
    def id(self) -> str:
        return f"{self.root}.{self.field}({'.'.join(self.path)})"


def _string_paths(
    t: GraphQLInputType, path: tuple[str, ...], seen: frozenset[str]
) -> list[tuple[str, ...]]:
    named = get_named_type(t)
    if named.name in ("String", "ID"):
        return [path]
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        return [
            found
            for name, field in named.fields.items()
            for found in _string_paths(field.type, (*path, name), seen | {named.name})
        ]
    return []


def _cases() -> list[Case]:
    roots = [
        ("query", _SCHEMA.query_type),
        ("mutation", _SCHEMA.mutation_type),
        ("subscription", _SCHEMA.subscription_type),
    ]
    return [
        Case(root, name, path)
        for root, root_type in roots
        if root_type is not None
        for name, field in root_type.fields.items()
        for arg, definition in field.args.items()
        for path in _string_paths(definition.type, (arg,), frozenset())
    ]


CASES = _cases()


def _dummy(t: GraphQLInputType) -> Any:
    """A value of type ``t`` with only its required parts filled in."""
    inner = t.of_type if isinstance(t, GraphQLNonNull) else t
    if isinstance(inner, GraphQLList):
        return [_dummy(inner.of_type)]
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        return {
            name: _dummy(field.type)
            for name, field in inner.fields.items()
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined
        }
    return _DUMMY[inner.name]


def _with_bad(value: Any, t: GraphQLInputType, rest: tuple[str, ...]) -> Any:
    """``value`` with ``BAD`` at ``rest`` (the first item of any list on the way)."""
    inner = t.of_type if isinstance(t, GraphQLNonNull) else t
    if isinstance(inner, GraphQLList):
        return [_with_bad(_dummy(inner.of_type), inner.of_type, rest)]
    if not rest:
        return BAD
    assert isinstance(inner, GraphQLInputObjectType)
    field = inner.fields[rest[0]]
    current = value.get(rest[0]) if isinstance(value, dict) else None
    if current is None:
        current = _dummy(field.type)
    return {**value, rest[0]: _with_bad(current, field.type, rest[1:])}


def _expected_field(case: Case) -> str:
    """The path the error names: list positions included (``content[0].text``)."""
    out = case.path[0]
    t: Any = _root_field(case).args[case.path[0]].type
    for name in case.path[1:]:
        named = t.of_type if isinstance(t, GraphQLNonNull) else t
        if isinstance(named, GraphQLList):
            out += "[0]"
        out += f".{name}"
        t = get_named_type(t).fields[name].type
    named = t.of_type if isinstance(t, GraphQLNonNull) else t
    if isinstance(named, GraphQLList):
        out += "[0]"
    return out


def _root_field(case: Case) -> Any:
    root = {
        "query": _SCHEMA.query_type,
        "mutation": _SCHEMA.mutation_type,
        "subscription": _SCHEMA.subscription_type,
    }[case.root]
    assert root is not None
    return root.fields[case.field]


def _selection(field: Any) -> str:
    named = get_named_type(field.type)
    return "" if is_leaf_type(named) else "{ __typename }"


def _arguments(case: Case) -> dict[str, tuple[GraphQLInputType, Any]]:
    """Every argument the operation passes: required ones, and the one under test."""
    field = _root_field(case)
    values: dict[str, tuple[GraphQLInputType, Any]] = {}
    for name, arg in field.args.items():
        if name == case.path[0]:
            values[name] = (arg.type, _with_bad(_dummy(arg.type), arg.type, case.path[1:]))
        elif isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined:
            values[name] = (arg.type, _dummy(arg.type))
    return values


def with_variables(case: Case) -> tuple[str, dict[str, Any]]:
    args = _arguments(case)
    declared = ", ".join(f"${name}: {t}" for name, (t, _) in args.items())
    passed = ", ".join(f"{name}: ${name}" for name in args)
    selection = _selection(_root_field(case))
    query = f"{case.root} Probe({declared}) {{ {case.field}({passed}) {selection} }}"
    return query, {name: value for name, (_, value) in args.items()}


def _literal(value: Any, t: Any) -> str:
    inner = t.of_type if isinstance(t, GraphQLNonNull) else t
    if isinstance(inner, GraphQLList):
        return "[" + ", ".join(_literal(v, inner.of_type) for v in value) + "]"
    if isinstance(inner, GraphQLEnumType):
        return str(value)
    if isinstance(inner, GraphQLInputObjectType):
        fields = ", ".join(f"{k}: {_literal(v, inner.fields[k].type)}" for k, v in value.items())
        return "{" + fields + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_literal(v, t)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # JSON string escapes are GraphQL string escapes


def with_literals(case: Case) -> str:
    args = _arguments(case)
    passed = ", ".join(f"{name}: {_literal(value, t)}" for name, (t, value) in args.items())
    selection = _selection(_root_field(case))
    return f"{case.root} {{ {case.field}({passed}) {selection} }}"


def assert_refused(result: dict[str, Any], field: str) -> None:
    assert result.get("data") is None, result
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == field, error
    assert error["extensions"]["character"] == "U+0000", error
    assert field in error["message"], error


async def _subscribe(app: Any, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The first answer to a subscription: its error frame, or its first event."""
    async with graphql_ws(app, init={"authToken": token}) as ws:
        await ws.send_json({"id": "s1", "type": "subscribe", "payload": payload})
        frame = await ws.receive_json(timeout=10)
    assert frame["type"] in ("error", "next"), frame
    if frame["type"] == "error":
        return {"data": None, "errors": frame["payload"]}
    result: dict[str, Any] = frame["payload"]
    return result


async def _counts() -> tuple[int, int, int]:
    return await User.all().count(), await Chat.all().count(), await ApiToken.all().count()


def test_the_cases_cover_every_string_argument() -> None:
    found = {case.id for case in CASES}
    for expected in (
        "mutation.login(input.username)",
        "mutation.updateChat(input.title)",
        "mutation.createChat(input.content.text)",
        "query.chats(query)",
        "query.node(id)",
        "subscription.titleChanges(chatId)",
    ):
        assert expected in found
    assert len(CASES) > 60


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_nul_in_a_variable_is_refused_naming_the_field(
    app: Any, gql: GraphQLClient, admin_token: str, case: Case
) -> None:
    query, variables = with_variables(case)
    before = await _counts()
    if case.root == "subscription":
        result = await _subscribe(app, admin_token, {"query": query, "variables": variables})
    else:
        result = await gql(query, variables, token=admin_token)
    assert_refused(result, _expected_field(case))
    assert await _counts() == before


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_nul_in_a_literal_is_refused_naming_the_field(
    app: Any, gql: GraphQLClient, admin_token: str, case: Case
) -> None:
    query = with_literals(case)
    before = await _counts()
    if case.root == "subscription":
        result = await _subscribe(app, admin_token, {"query": query})
    else:
        result = await gql(query, token=admin_token)
    assert_refused(result, _expected_field(case))
    assert await _counts() == before


async def test_anonymous_login_with_nul_is_bad_user_input(gql: GraphQLClient) -> None:
    login = "mutation($u: String!) { login(input: {username: $u, password: $u}) { token } }"
    assert_refused(await gql(login, {"u": "ad\x00min"}), "input.username")


@pytest.mark.parametrize(
    "character",
    ["\x01", "\x1b", "\x7f", "\x85", "\x9f"],
    ids=["SOH", "ESC", "DEL", "NEL", "APC"],
)
async def test_other_control_characters_are_refused_too(
    gql: GraphQLClient, admin_token: str, character: str
) -> None:
    mutation = "mutation($n: String!) { createApiToken(input: {name: $n}) { secret } }"
    before = await _counts()
    error = await gql.error(mutation, {"n": f"laptop{character}"}, token=admin_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "input.name"
    assert error["extensions"]["character"] == f"U+{ord(character):04X}"
    assert await _counts() == before


async def test_a_lone_surrogate_over_a_websocket_is_refused(app: Any, admin_token: str) -> None:
    """JSON over HTTP cannot carry one (the body parser refuses it); a WebSocket
    message can, and PostgreSQL could not store it."""
    mutation = "mutation($n: String!) { createApiToken(input: {name: $n}) { secret } }"
    before = await _counts()
    result = await _subscribe(app, admin_token, {"query": mutation, "variables": {"n": "x\ud800"}})
    assert result.get("data") is None, result
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["character"] == "U+D800", error
    assert await _counts() == before


async def test_tabs_and_line_breaks_are_text(gql: GraphQLClient, admin_token: str) -> None:
    mutation = "mutation($n: String!) { createApiToken(input: {name: $n}) { token { name } } }"
    data = await gql.ok(mutation, {"n": "a\tb"}, token=admin_token)
    assert data["createApiToken"]["token"]["name"] == "a\tb"


async def test_a_query_answered_by_the_fast_lane_refuses_a_nul(
    gql: GraphQLClient, admin_token: str
) -> None:
    """The same document answers with data, then refuses once a NUL comes in."""
    query = "query($q: String, $id: ID!) { chats(query: $q) { nodes { id } } chat(id: $id) { id } }"
    missing = global_id.encode("Chat", uuid.uuid4())
    data = await gql.ok(query, {"q": "title:hello", "id": missing}, token=admin_token)
    assert data == {"chats": {"nodes": []}, "chat": None}
    refused = await gql(query, {"q": "title:hel\x00lo", "id": missing}, token=admin_token)
    assert_refused(refused, "query")
    assert_refused(await gql(query, {"q": "title:hi", "id": BAD}, token=admin_token), "id")
    literal = '{ chats(query: "title:x\\u0000") { nodes { id } } }'
    assert_refused(await gql(literal, token=admin_token), "query")


async def test_the_fast_lane_leaves_a_refusal_to_the_ordinary_path() -> None:
    """It declines before making a context (which would authenticate)."""
    lane = build_schema().fast_lane  # type: ignore[attr-defined]

    async def no_context() -> Any:
        raise AssertionError("the lane must not run this query")

    query = "query($q: String) { chats(query: $q) { nodes { id } } }"
    assert await lane.answer(query, {"q": "a\x00"}, None, no_context) is None
    literal = '{ chats(query: "a\\u0001") { nodes { id } } }'
    assert await lane.answer(literal, None, None, no_context) is None


async def test_a_multipart_request_refuses_a_nul_and_stores_no_file(
    http: httpx.AsyncClient, admin_token: str
) -> None:
    query = (
        "mutation($file: Upload!) { uploadFile(file: $file) { id } "
        'createApiToken(input: {name: "up\\u0000load"}) { secret } }'
    )
    before = (await stored_files(), await _counts())
    body, form_type = multipart_upload("ok.png", png(7), "image/png", query)
    headers = {"Content-Type": form_type, "Authorization": f"Bearer {admin_token}", **PREFLIGHT}
    response = await http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert_refused(response.json(), "input.name")
    assert (await stored_files(), await _counts()) == before


@pytest.mark.parametrize(
    "disposition",
    [
        "attachment; filename*=UTF-8''a%00b%E2%80%AEgnp.exe.png",
        "attachment; filename*=UTF-8''%ED%A0%80.png",
        'attachment; filename="a\x7fb.png"',
    ],
    ids=["nul-and-bidi", "encoded-surrogate", "raw-del"],
)
async def test_post_files_cleans_what_the_file_name_cannot_hold(
    http: httpx.AsyncClient, admin_token: str, disposition: str
) -> None:
    """The raw upload route has no GraphQL argument to refuse: its file name is
    cleaned (control and bidirectional characters out) and the upload stored."""
    headers = {
        "Authorization": f"Bearer {admin_token}",
        "Content-Type": "image/png",
        "Content-Disposition": disposition,
    }
    seed = sum(map(ord, disposition))  # distinct bytes: the same bytes dedupe to one file
    response = await http.post("/files", content=png(seed), headers=headers)
    assert response.status_code == 201, response.text
    node = "query($id: ID!) { node(id: $id) { ... on ChatFile { name } } }"
    data = await GraphQLClient(http).ok(node, {"id": response.json()["id"]}, token=admin_token)
    name = data["node"]["name"]
    assert forbidden_character(name) is None, name
    assert "\u202e" not in name, name


async def test_a_token_with_a_lone_surrogate_is_just_a_wrong_token(app: Any) -> None:
    """A WebSocket's connection_init can carry what JSON over HTTP cannot; the
    token check must refuse it like any wrong token, not fail hashing it."""
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        aconnect_ws("/graphql", client, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"authToken": "agq_\ud800"}})
        with pytest.raises(WebSocketDisconnect) as caught:
            await ws.receive_json(timeout=5)
    assert caught.value.code == 4403
