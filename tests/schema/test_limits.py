"""Depth, alias, token and cost limits: refused before execution, with numbers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, Node, SelectionNode, get_introspection_query, parse

from resolvers.context import RequestContext
from schema.build import build_schema
from schema.document_walk import document_size
from schema.limits import QueryLimits, measure
from tests.harness import GraphQLClient, graphql_ws


async def test_cost_is_reported_on_every_response(gql: GraphQLClient, admin_token: str) -> None:
    result = await gql("{ users(first: 10) { edges { node { username } } } }", token=admin_token)
    # users: 1 + 10 × (edges 1 + node 1)
    assert result["extensions"]["cost"] == 21


async def test_cost_uses_variables_and_clamps_to_the_page_maximum(
    gql: GraphQLClient, admin_token: str
) -> None:
    query = "query($n: Int) { users(first: $n) { nodes { username } } }"
    assert (await gql(query, {"n": 5}, token=admin_token))["extensions"]["cost"] == 6
    assert (await gql(query, {"n": 10_000}, token=admin_token))["extensions"]["cost"] == 201


async def test_depth_over_the_limit_is_query_too_complex() -> None:
    # No type recurses yet, so a schema with a lower maximum shows the rule.
    schema = build_schema(QueryLimits(max_depth=4))
    query = "{ viewer { apiTokens { edges { node { id } } } } }"  # depth 5
    result = await schema.execute(query, context_value=RequestContext(request_id="t"))
    assert result.errors is not None
    assert result.errors[0].extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "depth",
        "maximum": 4,
        "actual": 5,
    }
    ok = await schema.execute(
        "{ viewer { apiTokens { nodes { id } } } }", context_value=RequestContext(request_id="t")
    )
    assert ok.errors is None


async def test_aliases_over_the_limit(gql: GraphQLClient) -> None:
    fields = " ".join(f"a{i}: viewer {{ permissions }}" for i in range(31))
    error = await gql.error("{ " + fields + " }")
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "aliases",
        "maximum": 30,
        "actual": 31,
    }
    assert error["message"] == "query aliases 31 exceeds the maximum of 30"


async def test_cost_over_the_limit() -> None:
    schema = build_schema(QueryLimits(max_cost=500))
    query = "{ users(first: 200) { edges { node { id } } nodes { id } pageInfo { hasNextPage } } }"
    result = await schema.execute(query, context_value=RequestContext(request_id="t"))
    assert result.errors is not None
    assert result.errors[0].extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "cost",
        "maximum": 500,
        "actual": 1 + 200 * 2 + 200 * 1 + 1,
    }
    assert result.data is None


async def test_a_full_page_passes_the_default_limits(gql: GraphQLClient, admin_token: str) -> None:
    query = (
        "{ users(first: 200) { edges { cursor node { id username role } } "
        "pageInfo { endCursor } } }"
    )
    result = await gql(query, token=admin_token)
    assert "errors" not in result
    assert result["extensions"]["cost"] == 1 + 200 * 2 + 1


async def test_token_limit(gql: GraphQLClient) -> None:
    query = "{ " + " ".join("viewer { permissions }" for _ in range(1300)) + " }"
    error = await gql.error(query)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "5000 tokens" in error["message"]


async def test_introspection_passes_every_limit(gql: GraphQLClient) -> None:
    result = await gql(get_introspection_query(descriptions=True))
    assert "errors" not in result
    assert result["data"]["__schema"]["queryType"]["name"] == "Query"


# --- document size, checked before validation ----------------------------------


def fragment_bomb(levels: int, leaf: str = "viewer { permissions }", on: str = "Query") -> str:
    """Each fragment spreads the next twice: 2^levels copies of ``leaf``."""
    frags = "".join(f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}\n" for i in range(levels))
    head = "{ ...F0 }" if on == "Query" else "subscription { ...F0 }"
    return f"{head}\n{frags}fragment F{levels} on {on} {{ {leaf} }}"


def selection_nodes(document: DocumentNode) -> int:
    return sum(isinstance(n, SelectionNode) for n in _nodes(document))


def _nodes(node: Any) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for key in current.keys:
            value = getattr(current, key)
            children = value if isinstance(value, tuple | list) else [value]
            stack.extend(c for c in children if isinstance(c, Node))


async def test_a_fragment_bomb_is_refused_after_a_walk_linear_in_its_size(
    gql: GraphQLClient,
) -> None:
    query = fragment_bomb(40)
    assert len(query) < 2000
    error = await gql.error(query)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "selections",
        "maximum": 1000,
        # 2^40 copies of two fields, 2^41 - 2 spreads in fragments, one in the query
        "actual": 2**42 - 1,
    }
    assert error["message"].startswith("query selections ")
    document = parse(query)
    nodes = selection_nodes(document)
    assert document_size(document).visits <= 4 * nodes
    # The cost walk (run on documents that pass) reuses fragments the same way.
    found = measure(build_schema()._schema, document, None, None)
    assert found is not None
    assert found.cost == 2**40
    assert found.visits <= 2 * nodes


async def test_a_fragment_bomb_of_leaves_is_refused_too(gql: GraphQLClient) -> None:
    # Costs nothing by the cost model, yet a planner expanding it would never finish.
    error = await gql.error(fragment_bomb(40, leaf="__typename"))
    assert error["extensions"]["limit"] == "selections"


async def test_a_subscription_fragment_bomb_is_refused_over_websocket(app: Any) -> None:
    query = fragment_bomb(40, leaf="titleChanges { __typename }", on="Subscription")
    async with graphql_ws(app) as ws:
        await ws.send_json({"id": "s1", "type": "subscribe", "payload": {"query": query}})
        frame = await ws.receive_json(timeout=10)
    assert frame["type"] == "error", frame
    assert frame["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert frame["payload"][0]["extensions"]["limit"] == "selections"


async def test_one_field_repeated_is_refused_before_validation(gql: GraphQLClient) -> None:
    # ``nope`` does not exist: had validation run, the error would say so.
    query = "{ nope " + " ".join("viewer { permissions }" for _ in range(1249)) + " }"
    assert len(query) < 30_000
    error = await gql.error(query)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "selections"
    # Fewer copies pass the selection limit and meet the one on field merges.
    query = "{ nope " + " ".join("viewer { permissions }" for _ in range(300)) + " }"
    error = await gql.error(query)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "merges",
        "maximum": 1000,
        "actual": 300 * 299 // 2,
    }
    assert error["message"] == "query field merges 44850 exceeds the maximum of 1000"


async def test_same_field_through_many_fragments_counts_as_merges(gql: GraphQLClient) -> None:
    spreads = " ".join(f"...A{i}" for i in range(60))
    frags = " ".join(f"fragment A{i} on Query {{ viewer {{ permissions }} }}" for i in range(60))
    error = await gql.error(f"{{ {spreads} }} {frags}")
    assert error["extensions"]["limit"] == "merges"
    assert error["extensions"]["actual"] == 60 * 59 // 2


async def test_fragment_spreads_over_the_limit(gql: GraphQLClient) -> None:
    query = (
        "{ "
        + " ".join("...V" for _ in range(101))
        + " } fragment V on Query { viewer { permissions } }"
    )
    error = await gql.error(query)
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "fragmentSpreads",
        "maximum": 100,
        "actual": 101,
    }
    assert error["message"] == "query fragment spreads 101 exceeds the maximum of 100"


async def test_the_fast_lane_refuses_what_the_ordinary_path_refuses() -> None:
    schema = build_schema()

    async def no_context() -> Any:
        raise AssertionError("a refused query needs no context")

    lane = schema.fast_lane  # type: ignore[attr-defined]
    assert await lane.answer(fragment_bomb(40, leaf="__typename"), None, None, no_context) is None


def test_introspection_and_fragments_are_well_inside_the_size_limits() -> None:
    limits = QueryLimits()
    for query in (
        get_introspection_query(descriptions=True),
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        ),
    ):
        size = document_size(parse(query))
        assert size.selections <= limits.max_selections // 2
        assert size.spreads <= limits.max_fragment_spreads // 2
        assert size.nesting <= limits.max_nesting // 2
        assert size.merges == 0
    # A fragment used in many places is counted once per place, and its
    # same-named fields merge with the ones beside them.
    query = "{ viewer { ...U username } } fragment U on Viewer { username permissions }"
    size = document_size(parse(query))
    assert (size.selections, size.spreads, size.nesting, size.merges) == (5, 1, 2, 1)


async def test_nesting_through_a_chain_of_fragments_is_refused(gql: GraphQLClient) -> None:
    chain = " ".join(
        f"fragment P{i} on Chat {{ parent {{ parent {{ ...P{i + 1} }} }} }}" for i in range(40)
    )
    query = "{ chats { nodes { ...P0 } } } " + chain + " fragment P40 on Chat { id }"
    error = await gql.error(query)
    assert error["extensions"]["limit"] == "nesting"
    assert error["extensions"]["actual"] > 64
