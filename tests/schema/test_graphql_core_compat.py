"""graphql-core's private memo of collected subfields is where agentgql expects it.

``schema.engine.graphql_core_compat`` replaces that memo in every per-event copy of a
subscription's executor (a shared one grows by every event). If an upgrade
renames or removes it, these fail: the copy would otherwise quietly share a new
cache again, or the fix would quietly do nothing.
"""

from __future__ import annotations

from copy import copy

from graphql import GraphQLObjectType, build_schema, parse
from graphql.execution.collect_fields import collect_fields
from graphql.execution.executor import Executor

from schema.engine.graphql_core_compat import SUB_FIELD_CACHE, own_sub_field_cache, sub_field_cache
from schema.engine.shared_execution import SharedEventExecutor

SDL = """
type Query { noop: String }
type Greeting { text: String }
type Subscription { greeting: Greeting }
"""
DOCUMENT = parse("subscription { greeting { text } }")


def test_a_fresh_executor_has_the_memo_as_a_dict_and_collect_subfields_fills_it() -> None:
    schema = build_schema(SDL)
    executor = Executor.build(schema, DOCUMENT)
    assert isinstance(executor, Executor), executor
    assert SUB_FIELD_CACHE in vars(executor)
    cache = sub_field_cache(executor)
    assert isinstance(cache, dict)
    assert cache == {}

    root = schema.subscription_type
    assert root is not None
    fields = collect_fields(
        schema, executor.fragments, executor.variable_values, root, executor.operation
    ).grouped_field_set
    greeting = schema.get_type("Greeting")
    assert isinstance(greeting, GraphQLObjectType)
    collected = executor.collect_subfields(greeting, fields["greeting"])
    assert list(collected.grouped_field_set) == ["text"]
    assert len(sub_field_cache(executor)) == 1
    assert executor.collect_subfields(greeting, fields["greeting"]) is collected


def test_graphql_core_copies_per_event_executors_with_copy() -> None:
    """The fix hooks ``__copy__``: a plain per-event copy still shares the memo."""
    executor = Executor.build(build_schema(SDL), DOCUMENT)
    assert isinstance(executor, Executor), executor
    event_executor = executor.build_per_event_executor({"greeting": {"text": "hi"}})
    assert sub_field_cache(event_executor) is sub_field_cache(executor)
    assert sub_field_cache(copy(executor)) is sub_field_cache(executor)


def test_agentgqls_per_event_executors_have_their_own_memo() -> None:
    executor = SharedEventExecutor.build(build_schema(SDL), DOCUMENT)
    assert isinstance(executor, SharedEventExecutor), executor
    event_executor = executor.build_per_event_executor({"greeting": {"text": "hi"}})
    assert isinstance(event_executor, SharedEventExecutor)
    assert sub_field_cache(event_executor) is not sub_field_cache(executor)
    assert sub_field_cache(event_executor) == {}


def test_replacing_the_memo_adds_nothing_where_there_is_none() -> None:
    class Bare:
        pass

    bare = Bare()
    own_sub_field_cache(bare)  # type: ignore[arg-type]
    assert SUB_FIELD_CACHE not in vars(bare)
