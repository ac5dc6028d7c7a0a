"""The committed SDL is what the code exports, and keeps the contract's shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
)

from schema.build import export_sdl

ROOT = Path(__file__).resolve().parents[2]

# The contract's binding names for what exists so far: "Type.field": "type".
CONTRACT = {
    "Node.id": "ID!",
    "PageInfo.hasNextPage": "Boolean!",
    "PageInfo.hasPreviousPage": "Boolean!",
    "PageInfo.startCursor": "String",
    "PageInfo.endCursor": "String",
    "User.id": "ID!",
    "User.username": "String!",
    "User.name": "String",
    "User.email": "String",
    "User.role": "UserRole!",
    "User.createdAt": "DateTime!",
    "Viewer.user": "User!",
    "Viewer.permissions": "[Permission!]!",
    "AuthPayload.token": "String!",
    "AuthPayload.user": "User!",
    "SignUpInput.username": "String!",
    "SignUpInput.password": "String!",
    "SignUpInput.email": "String",
    "SignUpInput.name": "String",
    "LoginInput.username": "String!",
    "LoginInput.password": "String!",
    "Query.node": "Node",
    "Query.nodes": "[Node]!",
    "Query.viewer": "Viewer",
    "Mutation.signUp": "AuthPayload!",
    "Mutation.login": "AuthPayload!",
    "Mutation.logout": "Boolean!",
    # cost
    "UsageTotals.inputTokens": "BigInt!",
    "UsageTotals.outputTokens": "BigInt!",
    "UsageTotals.reasoningTokens": "BigInt!",
    "UsageTotals.cacheReadTokens": "BigInt!",
    "UsageTotals.cacheWriteTokens": "BigInt!",
    "CostSummary.from": "DateTime!",
    "CostSummary.to": "DateTime!",
    "CostSummary.totalCostMicros": "BigInt!",
    "CostSummary.pricedCount": "Int!",
    "CostSummary.unpricedCount": "Int!",
    "CostSummary.usage": "UsageTotals!",
    "CostSummary.byModel": "[ModelCost!]!",
    "CostSummary.byChat": "ChatCostConnection!",
    "CostSummary.byDay": "[DailyCost!]!",
    "CostSummary.usageLimit": "UsageLimitStatus",
    "ModelCost.modelConfig": "ModelConfig",
    "ModelCost.model": "String!",
    "ModelCost.provider": "String!",
    "ModelCost.costMicros": "BigInt!",
    "ModelCost.count": "Int!",
    "ModelCost.usage": "UsageTotals!",
    "ChatCost.chat": "Chat",
    "ChatCost.title": "String!",
    "ChatCost.costMicros": "BigInt!",
    "ChatCost.count": "Int!",
    "ChatCost.usage": "UsageTotals!",
    "ChatCostConnection.edges": "[ChatCostEdge!]!",
    "ChatCostConnection.nodes": "[ChatCost!]!",
    "ChatCostConnection.pageInfo": "PageInfo!",
    "ChatCostEdge.cursor": "String!",
    "ChatCostEdge.node": "ChatCost!",
    "DailyCost.day": "Date!",
    "DailyCost.costMicros": "BigInt!",
    "UserCost.user": "User!",
    "UserCost.costMicros": "BigInt!",
    "UserCost.count": "Int!",
    "UserCost.chatCount": "Int!",
    "UserCost.usage": "UsageTotals!",
    "UserCostConnection.edges": "[UserCostEdge!]!",
    "UserCostConnection.nodes": "[UserCost!]!",
    "UserCostConnection.pageInfo": "PageInfo!",
    "UserCostEdge.cursor": "String!",
    "UserCostEdge.node": "UserCost!",
    "Query.costSummary": "CostSummary!",
    "Query.userCosts": "UserCostConnection!",
    "Viewer.cost": "CostSummary!",
    "Chat.cost": "ChatCost!",
    # spend limits
    "UsageLimitStatus.source": "UsageLimitSource!",
    "UsageLimitStatus.period": "UsageLimitPeriod!",
    "UsageLimitStatus.limitMicros": "BigInt",
    "UsageLimitStatus.spentMicros": "BigInt!",
    "UsageLimitStatus.reservedMicros": "BigInt!",
    "UsageLimitStatus.remainingMicros": "BigInt",
    "UsageLimitStatus.periodStart": "DateTime!",
    "UsageLimitStatus.resetsAt": "DateTime!",
    "UsageLimitConfig.enabled": "Boolean!",
    "UsageLimitConfig.period": "UsageLimitPeriod!",
    "UsageLimitConfig.defaultLimitMicros": "BigInt",
    "UsageLimitConfig.unpricedModelCount": "Int!",
    "UsageLimitConfig.userOverrides": "[UserUsageLimit!]!",
    "UsageLimitConfig.groupOverrides": "[Group!]!",
    "UserUsageLimit.user": "User!",
    "UserUsageLimit.limitMicros": "BigInt!",
    "ChatConfig.usageLimits": "UsageLimitConfig",
    "Viewer.usageLimit": "UsageLimitStatus!",
    "UpdateUsageLimitConfigPayload.usageLimitConfig": "UsageLimitConfig!",
    "SetUserUsageLimitPayload.user": "User!",
    "SetUserUsageLimitPayload.usageLimit": "UsageLimitStatus!",
    "SetGroupUsageLimitPayload.group": "Group!",
    "UpdateUsageLimitConfigInput.enabled": "Boolean!",
    "UpdateUsageLimitConfigInput.period": "UsageLimitPeriod!",
    "UpdateUsageLimitConfigInput.defaultLimitMicros": "BigInt",
    "SetUserUsageLimitInput.userId": "ID!",
    "SetUserUsageLimitInput.limitMicros": "BigInt",
    "SetGroupUsageLimitInput.groupId": "ID!",
    "SetGroupUsageLimitInput.limitMicros": "BigInt",
    # prompt configuration
    "SystemPromptConfig.customPrompt": "String!",
    "SystemPromptConfig.includeDefaultSystemPrompt": "Boolean!",
    "SystemPromptConfig.defaultSystemPrompt": "String!",
    "SystemPromptConfig.effectivePrompt": "String!",
    "ChatConfig.systemPrompt": "SystemPromptConfig",
    "Viewer.personalInstructions": "String!",
    "UpdateSystemPromptConfigInput.customPrompt": "String!",
    "UpdateSystemPromptConfigInput.includeDefaultSystemPrompt": "Boolean!",
    "UpdateSystemPromptConfigPayload.systemPromptConfig": "SystemPromptConfig!",
    "UpdatePersonalInstructionsInput.instructions": "String!",
    "UpdatePersonalInstructionsPayload.viewer": "Viewer!",
    "Mutation.updateSystemPromptConfig": "UpdateSystemPromptConfigPayload!",
    "Mutation.updatePersonalInstructions": "UpdatePersonalInstructionsPayload!",
    # groups
    "Group.id": "ID!",
    "Group.name": "String!",
    "Group.members": "UserConnection!",
    "Group.memberCount": "Int!",
    "Group.usageLimitMicros": "BigInt",
    "Query.groups": "[Group!]!",
    "Mutation.createGroup": "GroupPayload!",
    "Mutation.updateGroup": "GroupPayload!",
    "Mutation.deleteGroup": "DeleteGroupPayload!",
    "Mutation.addGroupMembers": "GroupPayload!",
    "Mutation.removeGroupMembers": "GroupPayload!",
    # pull-request insights
    "Query.pullRequestInsights": "PullRequestInsights!",
    "PullRequestInsights.from": "DateTime!",
    "PullRequestInsights.to": "DateTime!",
    "PullRequestInsights.opened": "Int!",
    "PullRequestInsights.merged": "Int!",
    "PullRequestInsights.closed": "Int!",
    "PullRequestInsights.previousOpened": "Int!",
    "PullRequestInsights.previousMerged": "Int!",
    "PullRequestInsights.costMicros": "BigInt!",
    "PullRequestInsights.byDay": "[PullRequestDay!]!",
    "PullRequestInsights.byModel": "[PullRequestModel!]!",
    "PullRequestInsights.recent": "[PullRequest!]!",
    "PullRequestDay.day": "Date!",
    "PullRequestDay.opened": "Int!",
    "PullRequestDay.merged": "Int!",
    "PullRequestModel.model": "String!",
    "PullRequestModel.opened": "Int!",
    "PullRequestModel.merged": "Int!",
    "PullRequestModel.costMicros": "BigInt!",
    "PullRequest.chat": "Chat",
    "PullRequest.url": "String!",
    "PullRequest.number": "Int",
    "PullRequest.title": "String",
    "PullRequest.state": "String",
    "PullRequest.authorLogin": "String",
    "PullRequest.createdAt": "DateTime",
    # debug logs
    "DebugLoggingConfig.enabled": "Boolean!",
    "DebugLoggingConfig.allowUsers": "Boolean!",
    "DebugLoggingConfig.retentionDays": "Int!",
    "ChatConfig.debugLogging": "DebugLoggingConfig!",
    "Viewer.debugLoggingOptIn": "Boolean",
    "Chat.debugLoggingOverride": "Boolean",
    "Chat.debugRuns": "DebugRunConnection!",
    "UpdateChatInput.debugLoggingOverride": "Boolean",
    "DebugRun.id": "ID!",
    "DebugRun.chat": "Chat!",
    "DebugRun.kind": "DebugRunKind!",
    "DebugRun.status": "DebugStatus!",
    "DebugRun.model": "String",
    "DebugRun.provider": "String",
    "DebugRun.startedAt": "DateTime!",
    "DebugRun.finishedAt": "DateTime",
    "DebugRun.durationMs": "Int",
    "DebugRun.usage": "Usage",
    "DebugRun.costMicros": "Int",
    "DebugRun.tokenSummary": "String!",
    "DebugRun.steps": "[DebugStep!]!",
    "DebugStep.index": "Int!",
    "DebugStep.operation": "String!",
    "DebugStep.status": "DebugStatus!",
    "DebugStep.attempts": "Int!",
    "DebugStep.startedAt": "DateTime!",
    "DebugStep.durationMs": "Int",
    "DebugStep.usage": "Usage",
    "DebugStep.request": "DebugRequest!",
    "DebugStep.response": "DebugResponse",
    "DebugStep.error": "ChatError",
    "DebugRequest.model": "String!",
    "DebugRequest.messages": "[DebugMessage!]!",
    "DebugRequest.tools": "[DebugToolDefinition!]!",
    "DebugRequest.options": "JSON!",
    "DebugMessage.role": "MessageRole!",
    "DebugMessage.parts": "[MessagePart!]!",
    "DebugToolDefinition.name": "String!",
    "DebugToolDefinition.description": "String",
    "DebugToolDefinition.inputSchema": "JSON!",
    "DebugResponse.parts": "[MessagePart!]!",
    "DebugResponse.toolCalls": "[ToolCallPart!]!",
    "DebugResponse.finishReason": "String",
    "DebugResponse.usage": "Usage",
    "DebugRunConnection.edges": "[DebugRunEdge!]!",
    "DebugRunConnection.nodes": "[DebugRun!]!",
    "DebugRunConnection.pageInfo": "PageInfo!",
    "DebugRunEdge.cursor": "String!",
    "DebugRunEdge.node": "DebugRun!",
    "Subscription.debugRuns": "DebugRun!",
    "UpdateDebugLoggingConfigPayload.debugLoggingConfig": "DebugLoggingConfig!",
    "SetDebugLoggingOptInPayload.viewer": "Viewer!",
}
ENUMS = {
    "UserRole": {"ADMIN", "MEMBER"},
    "Permission": {
        "MANAGE_USERS",
        "MANAGE_DEPLOYMENT_CONFIG",
        "MANAGE_PROVIDERS",
        "VIEW_ALL_COSTS",
        "VIEW_INSIGHTS",
        "VIEW_REQUEST_LOGS",
        "CREATE_CHAT",
    },
    "UsageLimitPeriod": {"DAY", "WEEK", "MONTH"},
    "UsageLimitSource": {"NONE", "DEPLOYMENT", "GROUP", "USER"},
    "DebugRunKind": {"CHAT_TURN", "TITLE_GENERATION", "COMPACTION", "EXPLORE"},
    "DebugStatus": {"IN_PROGRESS", "COMPLETED", "ERROR", "INTERRUPTED"},
}


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == export_sdl().rstrip("\n") + "\n", (
        "schema.graphql is stale: run `agentgql export-schema > schema.graphql`"
    )


@pytest.mark.parametrize(("path", "expected"), sorted(CONTRACT.items()))
def test_contract_field_shapes(path: str, expected: str) -> None:
    schema = build_schema(export_sdl())
    type_name, field_name = path.split(".")
    owner = schema.get_type(type_name)
    assert isinstance(owner, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType)
    fields = owner.fields
    assert field_name in fields, f"{path} missing"
    assert str(fields[field_name].type) == expected


@pytest.mark.parametrize(("name", "values"), sorted(ENUMS.items()))
def test_contract_enums(name: str, values: set[str]) -> None:
    enum = build_schema(export_sdl()).get_type(name)
    assert isinstance(enum, GraphQLEnumType)
    assert set(enum.values) == values


def test_node_arguments() -> None:
    query = build_schema(export_sdl()).query_type
    assert query is not None
    assert str(query.fields["node"].args["id"].type) == "ID!"
    assert str(query.fields["nodes"].args["ids"].type) == "[ID!]!"
