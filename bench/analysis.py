"""``analysis``: what checking a query's size, validity and cost costs, in process.

A fragment bomb (each fragment spreading the next twice) and a document
repeating one field used to make this step exponential or quadratic. This
times the server's checks (parse, the size limits, graphql-core validation for
documents within them, the static cost walk) for an ordinary ~5 KB query and
for a fragment bomb of the same size, next to graphql-core's plain parse and
validate of the same documents. The goal: the bomb costs at most twice an
ordinary query of its size. No database or server is involved; caches are
bypassed so every iteration does the whole work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson
from graphql import GraphQLSchema, parse, specified_rules, validate

from schema.build import build_schema
from schema.document_walk import document_size
from schema.limits import QueryLimits, measure, refusal_of_size

NAME = "analysis"
GOAL = 2.0  # the bomb at most this many times an ordinary query of its size

CHAT_FIELDS = """
fragment ChatRow on Chat {
  id title status archived pinOrder planMode labels hasUnread createdAt updatedAt mode
  owner { ...Person }
  workspace { ...Place }
  lastError { __typename }
  children { id title status archived pinOrder hasUnread updatedAt }
}
fragment Person on User { id username name email role disabled createdAt }
fragment Place on Workspace { id name status createdAt lastActiveAt stoppedAt ttlSeconds }
fragment Page on PageInfo { hasNextPage hasPreviousPage startCursor endCursor }
fragment MessageRow on Message {
  id role createdAt runtimeMs costMicros
  createdBy { ...Person }
  parts { __typename }
}
"""
SCREEN = """
query Screen($query: String, $chat: ID!, $after: String) {
  viewer { permissions user { ...Person } }
  pinned: chats(first: 10, query: "archived:false") {
    edges { cursor node { ...ChatRow } }
    pageInfo { ...Page }
  }
  recent: chats(first: 20, after: $after, query: $query) {
    edges { cursor node { ...ChatRow } }
    pageInfo { ...Page }
  }
  archived: chats(first: 5, query: "archived:true") { nodes { id title updatedAt } }
  open: chat(id: $chat) {
    ...ChatRow
    parent { id title }
    files { __typename }
    queuedMessages { __typename }
    messages(last: 50) {
      edges { cursor node { ...MessageRow } }
      pageInfo { ...Page }
    }
  }
  workspaces { ...Place }
  modelConfigs { __typename }
  providers { __typename }
}
"""


def ordinary_query(size: int) -> str:
    """A chat screen's query, its fragments, then side panels (each its own
    alias, a few fields spelled out) until it is about ``size`` characters."""
    text = SCREEN + CHAT_FIELDS
    panel = 0
    while len(text) < size - 200:
        text = text.replace(
            "  workspaces { ...Place }",
            f"  p{panel}: chat(id: $chat) {{ id title status archived pinOrder hasUnread "
            "createdAt updatedAt owner { id username name } workspace { id name status } }\n"
            "  workspaces { ...Place }",
        )
        panel += 1
    return text


def fragment_bomb(size: int, levels: int = 45) -> str:
    """Each fragment spreads the next twice (2^levels copies of the last one),
    within the fragment-spread limit; names padded to about ``size``."""

    def text(pad: str) -> str:
        lines = [f"query Bomb {{ ...F000{pad} }}"]
        lines += [
            f"fragment F{i:03d}{pad} on Query {{ ...F{i + 1:03d}{pad} ...F{i + 1:03d}{pad} }}"
            for i in range(levels)
        ]
        lines.append(f"fragment F{levels:03d}{pad} on Query {{ viewer {{ permissions }} }}")
        return "\n".join(lines)

    pad = ""
    while len(text(pad)) < size:
        pad += "x"
    return text(pad)


def agentgql_checks(schema: GraphQLSchema, limits: QueryLimits) -> Callable[[str], bool]:
    """What a request pays before execution, uncached: True when it may run."""

    def check(text: str) -> bool:
        document = parse(text, max_tokens=limits.max_tokens)
        if refusal_of_size(document_size(document), limits) is not None:
            return False
        if validate(schema, document, specified_rules):
            return False
        found = measure(schema, document, None, {"chat": "x"})
        return (
            found is not None
            and found.depth <= limits.max_depth
            and found.aliases <= limits.max_aliases
            and found.cost <= limits.max_cost
        )

    return check


def plain_checks(schema: GraphQLSchema) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return not validate(schema, parse(text, max_tokens=100_000), specified_rules)

    return check


@dataclass(frozen=True)
class Row:
    case: str
    chars: int
    agentgql_per_s: float
    plain_per_s: float
    allowed: bool


def per_second(check: Callable[[str], bool], text: str, duration: float, rounds: int) -> float:
    """Median over rounds of iterations per second."""
    rates = []
    for _ in range(rounds):
        count, started = 0, time.perf_counter()
        deadline = started + duration
        while True:
            check(text)
            count += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(count / (now - started))
    return statistics.median(rates)


def run(args: argparse.Namespace) -> int:
    schema = build_schema()._schema
    limits = QueryLimits()
    ours, plain = agentgql_checks(schema, limits), plain_checks(schema)
    normal = ordinary_query(args.size)
    bomb = fragment_bomb(len(normal))
    rows = []
    for case, text in (("ordinary", normal), ("fragment bomb", bomb)):
        ours(text)  # warm up
        rows.append(
            Row(
                case=case,
                chars=len(text),
                agentgql_per_s=per_second(ours, text, args.duration, args.rounds),
                plain_per_s=per_second(plain, text, args.duration, args.rounds),
                allowed=ours(text),
            )
        )
    bomb_cost = rows[0].agentgql_per_s / rows[1].agentgql_per_s
    if args.json:
        data = {"rows": [asdict(r) for r in rows], "bomb_vs_ordinary": round(bomb_cost, 4)}
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"bench {NAME}: parse + size limits + validation + cost walk, uncached, in process")
        print(f"  {args.rounds} rounds of {args.duration:g} s per cell, median")
        print(f"{'case':<14} {'chars':>6} {'agentgql/s':>11} {'plain/s':>9} {'ratio':>6}  verdict")
        for r in rows:
            verdict = "runs" if r.allowed else "refused"
            ratio = r.agentgql_per_s / r.plain_per_s
            print(
                f"{r.case:<14} {r.chars:>6} {r.agentgql_per_s:>11.0f} {r.plain_per_s:>9.0f} "
                f"{ratio:>6.2f}  {verdict}"
            )
        print(
            f"{NAME}: the bomb costs {bomb_cost:.2f}x an ordinary query of its size "
            f"(goal ≤ {GOAL:g}x); 'plain' is graphql-core parse + validate alone"
        )
    return 0 if bomb_cost <= GOAL else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__)
    parser.add_argument("--size", type=int, default=5000, help="document size in characters")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per cell")
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per round")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.size < 1000:
        parser.error("--rounds ≥ 1, --duration > 0, --size ≥ 1000")
    return run(args)
