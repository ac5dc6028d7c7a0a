"""``/metrics`` stays small whatever clients name their operations.

Operation names are the client's to invent: only names of operations that
succeeded get their own series, and only up to a fixed number of them.
"""

from __future__ import annotations

import re

import httpx

from server.metrics import MAX_OPERATION_NAMES
from tests.harness import GraphQLClient

OPERATION_LABEL = re.compile(r'^agentgql_graphql_operations_total\{operation="([^"]*)"')


async def series(http: httpx.AsyncClient) -> list[str]:
    text = (await http.get("/metrics")).text
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def operation_labels(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines if (m := OPERATION_LABEL.match(line))}


async def send_failing(gql: GraphQLClient, prefix: str, count: int) -> None:
    """Operations that do not succeed: unparsable, invalid, refused."""
    for i in range(count):
        kind = i % 3
        if kind == 0:
            await gql.post(f"query {prefix}Broken{i} {{ viewer {{")
        elif kind == 1:
            await gql.error(f"query {prefix}Invalid{i} {{ noSuchField }}")
        else:
            await gql.error(f"query {prefix}Refused{i} {{ users {{ nodes {{ id }} }} }}")


async def test_failed_operation_names_add_no_series(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await send_failing(gql, "Warm", 30)  # the first failures may open their `other` series
    before = await series(http)
    await send_failing(gql, "Flood", 600)
    after = await series(http)
    assert len(after) == len(before)
    assert not [line for line in after if "Flood" in line or "Warm" in line]
    assert "other" in operation_labels(after)


async def test_successful_names_are_capped(http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    query = "query {name} {{ viewer {{ user {{ username }} }} }}"
    for i in range(MAX_OPERATION_NAMES + 20):
        await gql.ok(query.format(name=f"Named{i}"))
    labels = operation_labels(await series(http))
    named = {label for label in labels if label.startswith("Named")}
    assert len(named) <= MAX_OPERATION_NAMES
    assert "Named0" in named
    assert f"Named{MAX_OPERATION_NAMES + 19}" not in named
    assert "other" in labels
    before = len(await series(http))
    for i in range(20):
        await gql.ok(query.format(name=f"Late{i}"))
    assert len(await series(http)) == before


async def test_known_names_keep_counting_after_the_cap(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    """Names seen before the cap filled still get their own counts."""
    await gql.ok("query Named0 { viewer { user { username } } }")
    text = (await http.get("/metrics")).text
    counts = [
        line
        for line in text.splitlines()
        if line.startswith('agentgql_graphql_operations_total{operation="Named0"')
    ]
    assert counts
    assert float(counts[0].split()[-1]) == 2.0
