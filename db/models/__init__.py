"""All Tortoise models; Tortoise loads this module as the ``models`` app."""

# Imported for its effect: output columns are cleaned on every save (NUL, lone surrogates).
from db.models import stored_output  # noqa: F401
from db.models.api_token import ApiToken, TokenScope
from db.models.chat import Chat, ChatMessage, ChatQueuedMessage
from db.models.config import SiteConfig, UserConfig
from db.models.debug import DebugRun, DebugRunKind, DebugStatus, DebugStep
from db.models.file import ChatFile, ChatFileLink
from db.models.gateway import AiRequestLog
from db.models.login_throttle import LoginThrottle, ThrottleKind
from db.models.money import (
    CostChatDay,
    CostModelDay,
    CostUserDay,
    SpendCounter,
    SpendHold,
    UsageLimitSettings,
)
from db.models.provider import ModelConfig, Provider, UserProviderKey
from db.models.user import Group, GroupMember, User
from db.models.workspace import (
    ChatDiffStatus,
    Workspace,
    WorkspaceGitSnapshot,
    WorkspaceTemplate,
)

__all__ = [
    "AiRequestLog",
    "ApiToken",
    "Chat",
    "ChatDiffStatus",
    "ChatFile",
    "ChatFileLink",
    "ChatMessage",
    "ChatQueuedMessage",
    "CostChatDay",
    "CostModelDay",
    "CostUserDay",
    "DebugRun",
    "DebugRunKind",
    "DebugStatus",
    "DebugStep",
    "Group",
    "GroupMember",
    "LoginThrottle",
    "ModelConfig",
    "Provider",
    "SiteConfig",
    "SpendCounter",
    "SpendHold",
    "ThrottleKind",
    "TokenScope",
    "UsageLimitSettings",
    "User",
    "UserConfig",
    "UserProviderKey",
    "Workspace",
    "WorkspaceGitSnapshot",
    "WorkspaceTemplate",
]
