"""Every setting, read from the environment (and a ``.env`` file) by pydantic-settings.

The README's configuration table mirrors this class; keep them together.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from daemon.chat_daemon import DaemonSettings
from daemon.sandbox import SandboxLimits, SandboxSettings
from daemon.turn_runner import TurnSettings
from daemon.workspace_services import WorkspaceSettings
from schema.limits import QueryLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTGQL_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "AGENTGQL_DATABASE_URL"),
        description="PostgreSQL URL; unset = embedded cluster under the data dir.",
    )
    broadcast_url: str = Field(
        default="memory://",
        validation_alias=AliasChoices("BROADCAST_URL", "AGENTGQL_BROADCAST_URL"),
        description="memory:// for one process, redis://host:6379 when scaled out.",
    )
    data_dir: Path = Field(default=Path("./data"), description="Embedded database, secret key.")
    host: str = "127.0.0.1"
    port: int = 8000
    allow_signup: bool = Field(
        default=False, description="Let anyone create an account (the first one always may)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra origins allowed to open WebSockets (same-origin always is).",
    )
    secret_key: str | None = Field(
        default=None,
        description="Encrypts stored secrets; generated into <data dir>/secret.key when unset.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token /metrics requires; unset = open (then bind privately).",
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    db_pool_min: int = 1
    db_pool_max: int = 10
    max_body_bytes: int = Field(
        default=12 * 1024 * 1024, description="Largest accepted HTTP request body."
    )
    max_query_depth: int = 12
    max_query_aliases: int = 30
    max_query_tokens: int = 5000
    max_query_cost: int = 20000
    max_query_selections: int = 1000
    max_fragment_spreads: int = 100
    max_query_merges: int = 1000
    compiled_queries: bool = Field(
        default=True,
        description="Answer queries through compiled plans; false = graphql-core only.",
    )
    token_cache_s: float = Field(
        default=5.0,
        ge=0.0,
        le=60.0,
        description="How long a verified token is trusted without the database; 0 = never.",
    )
    daemon_poll_s: float = Field(default=1.0, description="How often the daemon looks for work.")
    daemon_heartbeat_s: float = Field(default=30.0, description="Running chats' heartbeat.")
    daemon_stale_after_s: float = Field(
        default=300.0,
        description="A running chat without heartbeat this long goes back to PENDING.",
    )
    daemon_max_chats: int = Field(default=10, description="Turns one daemon runs at once.")
    purge_interval_s: float = Field(
        default=600.0, description="How often a daemon purges expired chats and files."
    )
    retry_base_s: float = Field(default=1.0, description="First provider retry delay (doubles).")
    retry_max_s: float = Field(default=60.0, description="Longest provider retry delay.")
    retry_attempts: int = Field(default=25, description="Provider attempts before ERROR.")
    stream_coalesce_ms: int = Field(default=50, description="Live deltas are batched this long.")
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )
    workspaces_dir: Path | None = Field(
        default=None, description="Where workspaces live; unset = <data dir>/workspaces."
    )
    github_token: str | None = Field(
        default=None, description="Token for looking up pull requests on GitHub."
    )
    github_api_url: str = Field(
        default="https://api.github.com", description="GitHub REST API base URL."
    )
    git_poll_s: float = Field(default=30.0, description="Git watcher fallback poll.")
    pull_requests: bool = Field(
        default=True, description="Look up chats' pull requests (GitHub) for diffs and status."
    )
    git_cooldown_s: float = Field(default=1.0, description="Git watcher event cooldown.")
    sandbox: Literal["bwrap", "none"] = Field(
        default="bwrap",
        description="Isolates the model's commands; none runs them as the server's user (unsafe).",
    )
    sandbox_network: bool = Field(
        default=False, description="Let sandboxed commands use the network (and host loopback)."
    )
    sandbox_cpu_s: int = Field(default=600, gt=0, description="CPU seconds per sandboxed process.")
    sandbox_memory_mb: int = Field(
        default=4096, gt=0, description="Data memory per sandboxed process (RLIMIT_DATA)."
    )
    sandbox_processes: int = Field(
        default=256, gt=0, description="Processes one sandboxed command may run at once."
    )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def resolved_workspaces_dir(self) -> Path:
        return self.workspaces_dir or self.data_dir / "workspaces"

    def query_limits(self) -> QueryLimits:
        return QueryLimits(
            max_depth=self.max_query_depth,
            max_aliases=self.max_query_aliases,
            max_tokens=self.max_query_tokens,
            max_cost=self.max_query_cost,
            max_selections=self.max_query_selections,
            max_fragment_spreads=self.max_fragment_spreads,
            max_merges=self.max_query_merges,
        )

    def daemon_settings(self) -> DaemonSettings:
        return DaemonSettings(
            poll_s=self.daemon_poll_s,
            heartbeat_s=self.daemon_heartbeat_s,
            stale_after_s=self.daemon_stale_after_s,
            max_chats=self.daemon_max_chats,
            purge_interval_s=self.purge_interval_s,
            turn=TurnSettings(
                coalesce_s=self.stream_coalesce_ms / 1000,
                retry_base_s=self.retry_base_s,
                retry_max_s=self.retry_max_s,
                retry_attempts=self.retry_attempts,
            ),
        )

    def workspace_settings(self) -> WorkspaceSettings:
        return WorkspaceSettings(
            git_cooldown_s=self.git_cooldown_s,
            git_poll_s=self.git_poll_s,
            github_token=self.github_token,
            github_api_url=self.github_api_url,
            pull_requests=self.pull_requests,
            sandbox=SandboxSettings(
                mode=self.sandbox,
                network=self.sandbox_network,
                limits=SandboxLimits(
                    cpu_s=self.sandbox_cpu_s,
                    memory_mb=self.sandbox_memory_mb,
                    processes=self.sandbox_processes,
                ),
            ),
        )

    def resolved_secret_key(self) -> str:
        """The configured secret, else the one in the data dir (created once)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.write_text(key + "\n")
        return key
