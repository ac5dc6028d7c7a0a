"""The one place agentgql reaches into graphql-core beyond its public API.

graphql-core 3.3's ``Executor`` memoizes the subfields it collects in a private
dict, ``_relevant_sub_fields``, keyed by ``(type, id(field_details_list))`` and
keeping each list alive. A subscription's per-event executors are shallow
copies of one executor (``build_per_event_executor``), so they all share that
dict; every event collects its fields into new lists, so each event adds
entries that stay for as long as the subscription is open (about 2 KB per
event). A per-event copy therefore starts with a fresh cache of its own: it
still memoizes within the event (a list of items), and is dropped with it.

``tests/schema/test_graphql_core_compat.py`` fails if an upgrade renames or
removes the attribute, so this is revisited rather than silently ignored.
"""

from __future__ import annotations

from typing import Any

from graphql.execution.executor import Executor

SUB_FIELD_CACHE = "_relevant_sub_fields"
"""graphql-core's per-executor memo of collected subfields."""


def sub_field_cache(executor: Executor[Any]) -> dict[Any, Any]:
    """The executor's memo of collected subfields (raises if graphql-core dropped it)."""
    cache: dict[Any, Any] = getattr(executor, SUB_FIELD_CACHE)
    return cache


def own_sub_field_cache(executor: Executor[Any]) -> None:
    """Give a per-event copy its own empty memo instead of the one it shares with
    the subscription's executor. Without the attribute there is nothing shared to
    replace, so nothing is added."""
    if SUB_FIELD_CACHE in vars(executor):
        setattr(executor, SUB_FIELD_CACHE, {})
