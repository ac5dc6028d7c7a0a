"""Every setting, read from the environment (and a ``.env`` file) by pydantic-settings.

The README's configuration table mirrors this class; keep them together.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    db_pool_min: int = 1
    db_pool_max: int = 10
    max_body_bytes: int = Field(
        default=12 * 1024 * 1024, description="Largest accepted HTTP request body."
    )
    max_query_depth: int = 12
    max_query_aliases: int = 30
    max_query_tokens: int = 5000
    max_query_cost: int = 20000
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set behind HTTPS)."
    )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def query_limits(self) -> QueryLimits:
        return QueryLimits(
            max_depth=self.max_query_depth,
            max_aliases=self.max_query_aliases,
            max_tokens=self.max_query_tokens,
            max_cost=self.max_query_cost,
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
