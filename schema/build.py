"""Assembling the schema: root types merged from the per-domain modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.ai_request_log import AiRequestLog, AiRequestLogQueries
from schema.auth import AuthMutations
from schema.chat import Chat, ChatQueries
from schema.chat_config import ChatConfigMutations, ChatConfigQueries
from schema.chat_diff import GitMutations
from schema.chat_mutations import ChatMutations
from schema.cost import CostQueries
from schema.debug import DebugRun
from schema.debug_settings import DebugSettingsMutations
from schema.engine.extension_runner import ExtensionsRunner
from schema.engine.shared_execution import SharedEventExecutor
from schema.engine.strawberry_compat import CompiledQueries, install
from schema.errors import ErrorShaping, shape_errors
from schema.file import ChatFile, FileMutations
from schema.group import Group, GroupMutations, GroupQueries
from schema.limits import LimitGuard, QueryLimits
from schema.message import Message, QueuedMessage
from schema.model_config import ModelConfigMutations, ModelConfigQueries
from schema.node_queries import NodeQueries
from schema.pr_insights import PullRequestInsightsQueries
from schema.prompt_config import PromptConfigMutations
from schema.provider import ModelConfig, Provider, ProviderMutations, ProviderQueries
from schema.subscription import Subscription
from schema.text_input import TextInputGuard
from schema.usage_limit import UsageLimitMutations
from schema.user import ApiToken, User, UserMutations, UserQueries
from schema.workspace import (
    Workspace,
    WorkspaceMutations,
    WorkspaceQueries,
    WorkspaceTemplate,
)


class AgentSchema(CompiledQueries):
    """Errors are shaped (and unexpected ones logged once) by ``process_errors``
    instead of Strawberry's traceback logging: client errors are not server events.
    Queries run through the compiled engine once installed (``build_schema``)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Runs for every result, subscription frames included, where ErrorShaping
        # (an operation-level hook) never sees the errors of frames after the first.
        shape_errors(errors, execution_context.context if execution_context else None)

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        # Subscription frames run the extension hooks per subscriber: keep that cheap.
        return ExtensionsRunner(execution_context, extensions)


Query = merge_types(
    "Query",
    (
        NodeQueries,
        UserQueries,
        GroupQueries,
        ChatQueries,
        ChatConfigQueries,
        CostQueries,
        AiRequestLogQueries,
        ProviderQueries,
        ModelConfigQueries,
        WorkspaceQueries,
        PullRequestInsightsQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AuthMutations,
        UserMutations,
        GroupMutations,
        ChatMutations,
        GitMutations,
        FileMutations,
        ChatConfigMutations,
        DebugSettingsMutations,
        PromptConfigMutations,
        ProviderMutations,
        ModelConfigMutations,
        UsageLimitMutations,
        WorkspaceMutations,
    ),
)


def build_schema(
    limits: QueryLimits | None = None,
    extra_extensions: Sequence[Callable[[], SchemaExtension]] = (),
    compiled_queries: bool = True,
) -> strawberry.Schema:
    """The schema with its extensions; ``extra_extensions`` come from the server
    (metrics), so this package does not depend on it. ``compiled_queries=False``
    leaves every operation to graphql-core (the compiled engine's off switch)."""
    chosen = limits or QueryLimits()

    def limit_guard() -> SchemaExtension:
        return LimitGuard(chosen)

    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ErrorShaping,
        limit_guard,  # size limits, then (cached) validation, then depth/aliases/cost
        TextInputGuard,  # after validation: refuses control characters in any input
        *extra_extensions,
    ]
    schema = AgentSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            User,
            ApiToken,
            AiRequestLog,
            Group,
            Chat,
            ChatFile,
            DebugRun,
            Message,
            QueuedMessage,
            Provider,
            ModelConfig,
            Workspace,
            WorkspaceTemplate,
        ],
        extensions=extensions,
        # Subscribers of one event with equal selections share one execution.
        execution_context_class=SharedEventExecutor,
        config=StrawberryConfig(sort_schema=True),
    )
    if compiled_queries:
        install(schema, chosen)
    return schema


def export_sdl() -> str:
    return print_schema(build_schema())
