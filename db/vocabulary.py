"""Words every layer shares: roles, permissions, error codes and hard limits.

They live in ``db`` because both the GraphQL side and the daemon need them and
``db`` is the one package both may import.
"""

from __future__ import annotations

import uuid
from enum import StrEnum


class UserRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class Permission(StrEnum):
    """What a viewer may do; clients read these instead of provoking a 403."""

    MANAGE_USERS = "manage_users"
    MANAGE_DEPLOYMENT_CONFIG = "manage_deployment_config"
    MANAGE_PROVIDERS = "manage_providers"
    VIEW_ALL_COSTS = "view_all_costs"
    VIEW_INSIGHTS = "view_insights"
    VIEW_REQUEST_LOGS = "view_request_logs"
    CREATE_CHAT = "create_chat"


ROLE_PERMISSIONS: dict[UserRole, tuple[Permission, ...]] = {
    UserRole.ADMIN: tuple(Permission),
    UserRole.MEMBER: (Permission.CREATE_CHAT,),
}
# What a group may grant its members on top of their role: read-only views, never
# management (a member who could manage users could make themselves admin).
GRANTABLE_PERMISSIONS = frozenset(
    {Permission.VIEW_ALL_COSTS, Permission.VIEW_INSIGHTS, Permission.VIEW_REQUEST_LOGS}
)


class TokenKind(StrEnum):
    """A session comes from ``login``; an API token is created explicitly."""

    SESSION = "session"
    API = "api"


class ErrorCode(StrEnum):
    """The one vocabulary for ``errors[].extensions.code``."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    QUEUE_FULL = "QUEUE_FULL"
    USAGE_LIMIT_EXCEEDED = "USAGE_LIMIT_EXCEEDED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    RATE_LIMITED = "RATE_LIMITED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    # A dependency is briefly down (the broadcast backend): retry after
    # ``extensions.retryAfterSeconds``; nothing is wrong with the request.
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


# Account rules.
USERNAME_MIN = 1
USERNAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
NAME_MAX = 200
EMAIL_MAX = 320
TOKEN_NAME_MAX = 100

# Session tokens from ``login`` live this long unless revoked by ``logout``.
SESSION_TTL_DAYS = 30
# ``last_used_at`` is written at most this often per token, so reads stay reads.
TOKEN_TOUCH_INTERVAL_S = 60

# Where a chat's workspace appears inside the tool sandbox. Paths shown to the
# model and to clients are under this, never the host's workspaces directory.
WORKSPACE_MOUNT = "/workspace"

# Connections.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class ChatStatus(StrEnum):
    WAITING = "waiting"
    PENDING = "pending"
    RUNNING = "running"
    REQUIRES_ACTION = "requires_action"
    INTERRUPTING = "interrupting"
    ERROR = "error"


# Statuses in which a turn is queued or under way: new messages wait in the queue.
BUSY_STATUSES = frozenset({ChatStatus.PENDING, ChatStatus.RUNNING, ChatStatus.INTERRUPTING})


class ChatMode(StrEnum):
    EXPLORE = "explore"


class MessageRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Visibility(StrEnum):
    """``model``: sent to the LLM, hidden from people; ``user``: the reverse."""

    USER = "user"
    MODEL = "model"
    BOTH = "both"


class BusyBehavior(StrEnum):
    QUEUE = "queue"
    INTERRUPT = "interrupt"


# Chats and messages (numbers from the reference system).
TITLE_MAX = 200
FALLBACK_TITLE = "New Chat"
FALLBACK_TITLE_WORDS = 6
AUTO_TITLE_MAX = 80
CHAT_SYSTEM_PROMPT_MAX = 10_000

# Files (Part B §5): images only, sniffed; bytes capped while reading.
CHAT_FILE_MAX_BYTES = 10 * 1024 * 1024
CHAT_FILE_LINKS_MAX = 50
FILE_NAME_MAX_BYTES = 255
CHAT_FILE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Retention (Part B §4.12): archived chats and unlinked files, 0 = keep forever.
CHAT_RETENTION_DAYS_DEFAULT = 30
CHAT_RETENTION_DAYS_MAX = 3650
PURGE_BATCH = 1000
LABELS_MAX = 50
LABEL_KEY_MAX = 64
LABEL_VALUE_MAX = 256
QUEUE_MAX = 20
MESSAGE_PARTS_MAX = 100
TEXT_PART_MAX = 1_000_000
# Sorts unpinned chats after every pinned one (``chats.list_rank``).
UNPINNED_RANK = 2**31 - 1


class ChatErrorKind(StrEnum):
    GENERIC = "generic"
    OVERLOADED = "overloaded"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    AUTH = "auth"
    CONFIG = "config"
    USAGE_LIMIT = "usage_limit"
    MISSING_KEY = "missing_key"
    PROVIDER_DISABLED = "provider_disabled"
    CONTENT_FILTER = "content_filter"


# ---- Providers and model configs (db/models/provider.py) ----


class ProviderKind(StrEnum):
    """One provider row per kind. SCRIPTED answers offline and needs no key."""

    OPENAI = "openai"
    OPENAI_COMPATIBLE = "openai_compatible"
    ANTHROPIC = "anthropic"
    SCRIPTED = "scripted"


# Kinds whose requests carry no API key at all.
KEYLESS_PROVIDER_KINDS = frozenset({ProviderKind.SCRIPTED})
# Kinds that cannot work without an explicit base URL.
BASE_URL_REQUIRED_KINDS = frozenset({ProviderKind.OPENAI_COMPATIBLE})


class ModelUnavailableReason(StrEnum):
    """Why the catalog marks a provider unusable for the viewer, and who can act."""

    MISSING_API_KEY = "missing_api_key"  # an admin must set the central key
    USER_API_KEY_REQUIRED = "user_api_key_required"  # the viewer can add their own key
    PROVIDER_DISABLED = "provider_disabled"  # an admin disabled it


PROVIDER_DISPLAY_NAME_MAX = 200
PROVIDER_BASE_URL_MAX = 2048
PROVIDER_API_KEY_MAX_BYTES = 10_240
MODEL_NAME_MAX = 200
MODEL_DISPLAY_NAME_MAX = 200
# Stored as bigint, exposed as GraphQL Int: keep it in 32 bits.
CONTEXT_LIMIT_MAX = 2**31 - 1
MAX_OUTPUT_TOKENS_MAX = 2**31 - 1
DEFAULT_COMPRESSION_THRESHOLD = 70
# Prices are USD per million tokens in the API, integer micro-USD per million in rows.
PRICE_MAX_USD = 1_000_000
MICROS_PER_USD = 1_000_000
COMPACTION_THRESHOLD_KEY_PREFIX = "chat_compaction_threshold_pct:"
# Event-hub channel on which configuration changes are announced to every replica.
CONFIG_CHANNEL = "config"
NO_DEFAULT_MODEL_MESSAGE = "No default chat model config is configured."


class ChatListEventKind(StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    TITLE_CHANGED = "title_changed"
    DIFF_STATUS_CHANGED = "diff_status_changed"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    DELETED = "deleted"
    # Events were lost (never published under this kind): refetch the list.
    RESYNC = "resync"


# The reserved worker id that marks "a title is being generated" (as in Part B).
TITLE_LOCK_WORKER = uuid.UUID(int=1)


# ---- Workspaces, their TTL and pull-request status (db/models/workspace.py) ----


class WorkspaceStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class WorkspaceSourceKind(StrEnum):
    """How a template becomes a workspace: clone a repository, or copy a directory."""

    GIT = "git"
    DIRECTORY = "directory"


class PullRequestState(StrEnum):
    OPEN = "open"
    DRAFT = "draft"
    MERGED = "merged"
    CLOSED = "closed"


WORKSPACE_NAME_MAX = 200
WORKSPACE_TEMPLATE_NAME_MAX = 200
# A site TTL of 0 means "the template's default"; anything else is bounded.
WORKSPACE_TTL_MIN_S = 60
WORKSPACE_TTL_MAX_S = 30 * 24 * 3600
# How long a diff-status worker holds a claimed row before another may retry it.
DIFF_STATUS_LEASE_S = 300


# ---- Money: cost, rollups, spend limits (db/models/money.py) ----


class UsageLimitPeriod(StrEnum):
    """UTC-aligned: midnight, Monday 00:00, the 1st 00:00."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class UsageLimitSource(StrEnum):
    NONE = "none"
    DEPLOYMENT = "deployment"
    GROUP = "group"
    USER = "user"


# A limit is positive and at most a million dollars: anything above is a typo.
USAGE_LIMIT_MAX_MICROS = 1_000_000 * MICROS_PER_USD
# Cost ranges (costSummary, userCosts, insights): at most a year, 30 days by default.
COST_RANGE_MAX_DAYS = 366
COST_RANGE_DEFAULT_DAYS = 30
GROUP_NAME_MAX = 100
# Stands for "no model config" / "no chat" in rollup keys (gateway requests,
# rows from before the config was recorded), so keys are never NULL.
NIL_UUID = uuid.UUID(int=0)
