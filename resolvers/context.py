"""The per-operation context every resolver receives.

Built by the server for each HTTP request and for each WebSocket operation, so
dataloaders and auth state never outlive one operation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from db.models import ApiToken, User, Workspace, WorkspaceTemplate
from db.secret_box import SecretBox
from events.announcer import ChatAnnouncer
from resolvers.errors import ApiError
from resolvers.loaders import Loaders


class SessionCookie(Protocol):
    """How resolvers set or clear the login cookie without knowing HTTP."""

    def set(self, token: str, max_age_s: int) -> None: ...

    def clear(self) -> None: ...


class NoCookie:
    """Used where there is no HTTP response (WebSockets, tests, the CLI)."""

    def set(self, token: str, max_age_s: int) -> None:
        return None

    def clear(self) -> None:
        return None


class WorkspaceProvisioner(Protocol):
    """Makes a workspace's directory and row (the server wires the daemon's
    backend in, so this package never touches the filesystem)."""

    async def __call__(
        self,
        *,
        owner_id: uuid.UUID,
        name: str,
        template: WorkspaceTemplate | None,
        ttl_s: int | None,
    ) -> Workspace: ...


@dataclass(frozen=True)
class Policy:
    """Deployment settings resolvers must honour."""

    allow_signup: bool = False


@dataclass
class RequestContext:
    request_id: str
    viewer: User | None = None
    token: ApiToken | None = None
    # A presented but invalid token: raised by anything that needs the viewer.
    auth_error: ApiError | None = None
    policy: Policy = field(default_factory=Policy)
    # The client's IP address (after trusted proxy headers): login throttling.
    client_address: str | None = None
    cookie: SessionCookie = field(default_factory=NoCookie)
    # None where nothing listens (the CLI); the server always sets it.
    events: ChatAnnouncer | None = None
    # Encrypts provider API keys; None where no secret is loaded (the CLI).
    secrets: SecretBox | None = None
    # Creates workspaces; None where no backend is configured (the CLI).
    workspaces: WorkspaceProvisioner | None = None
    _loaders: Loaders | None = None

    def reset_loaders(self) -> None:
        """A subscription calls this per event: loaders never outlive one event."""
        self._loaders = None

    @property
    def loaders(self) -> Loaders:
        if self._loaders is None:
            self._loaders = Loaders()
        return self._loaders
