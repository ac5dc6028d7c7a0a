"""All Tortoise models; Tortoise loads this module as the ``models`` app."""

from db.models.api_token import ApiToken
from db.models.chat import Chat, ChatMessage, ChatQueuedMessage
from db.models.config import SiteConfig, UserConfig
from db.models.provider import ModelConfig, Provider, UserProviderKey
from db.models.user import Group, GroupMember, User

__all__ = [
    "ApiToken",
    "Chat",
    "ChatMessage",
    "ChatQueuedMessage",
    "Group",
    "GroupMember",
    "ModelConfig",
    "Provider",
    "SiteConfig",
    "User",
    "UserConfig",
    "UserProviderKey",
]
