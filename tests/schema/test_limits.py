"""Depth, alias, token and cost limits: refused before execution, with numbers."""

from __future__ import annotations

from graphql import get_introspection_query

from resolvers.context import RequestContext
from schema.build import build_schema
from schema.limits import QueryLimits
from tests.harness import GraphQLClient


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
