"""Which provider, model and key a gateway request goes to.

The request's ``model`` names an enabled model config by its model name (what
clients send) or its id. Among configs of that name the one on a provider that
speaks the request's wire is chosen (the default first, then the oldest). The
key comes from ``db.model_resolution.resolve_model``: the same key policy, the
same decryption, the same refusals as a chat, so a model the catalog shows as
unusable is refused here with the catalog's reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from db.model_resolution import (
    ModelUnavailable,
    ResolvedModel,
    needs_key,
    provider_access,
    resolve_model,
)
from db.models import ModelConfig, UserProviderKey
from db.secret_box import SecretBox
from db.vocabulary import ModelUnavailableReason, ProviderKind
from gateway.wire import DEFAULT_BASE_URLS, WIRE_KINDS, Endpoint, Wire


class RoutingError(Exception):
    """The request cannot be routed; ``status`` and ``code`` for the client."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class Target:
    """A routed request: the resolved model (with its key) and the upstream URL."""

    model: ResolvedModel
    url: str


def _as_uuid(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def upstream_url(model: ResolvedModel, endpoint: Endpoint) -> str:
    base = model.base_url or DEFAULT_BASE_URLS.get(model.provider_kind, "")
    return base.rstrip("/") + endpoint.upstream_path


async def _config_named(name: str, wire: Wire) -> ModelConfig:
    key = _as_uuid(name)
    rows = ModelConfig.filter(deleted=False, enabled=True).select_related("provider")
    rows = rows.filter(id=key) if key is not None else rows.filter(model=name)
    candidates = await rows.order_by("-is_default", "created_at", "id")
    if not candidates:
        raise RoutingError(
            404, f"The model {name!r} does not exist or is not enabled here.", "model_not_found"
        )
    kinds = WIRE_KINDS[wire]
    for config in candidates:
        if ProviderKind(config.provider.kind) in kinds:
            return config
    other = "/v1/messages" if wire is Wire.OPENAI else "/v1/chat/completions or /v1/responses"
    raise RoutingError(
        400,
        f"The model {name!r} is served by a provider of another wire format; send it to {other}.",
        "wrong_wire_format",
    )


async def route(name: str, endpoint: Endpoint, user_id: uuid.UUID, secrets: SecretBox) -> Target:
    """The target for ``name``, or ``RoutingError`` (404 unknown, 400 wrong wire,
    403 unusable for this user, with the catalog's reason as the code)."""
    config = await _config_named(name, endpoint.wire)
    try:
        model = await resolve_model(config.id, user_id, secrets)
    except ModelUnavailable as exc:
        reason = provider_access(config.provider, has_user_key=False).reason
        code = (reason or ModelUnavailableReason.MISSING_API_KEY).value
        raise RoutingError(403, exc.message, code) from None
    return Target(model=model, url=upstream_url(model, endpoint))


class RouteCache:
    """Routing decisions, kept for a few seconds per (user, model name, endpoint).

    Routing reads the model config, the provider, the user's key and settings
    (four queries) on a path whose every millisecond is added latency; a coding
    client sends many requests a minute with the same model. A change an admin
    makes (a disabled model, a new key) applies within ``ttl_s``; refusals are
    never kept, so a fixed configuration works at once. Concurrent misses of one
    key share one lookup (a client's burst of parallel calls routes once).
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[uuid.UUID, str, str], tuple[float, Target]] = {}
        self._pending: dict[tuple[uuid.UUID, str, str], asyncio.Future[Target]] = {}

    async def route(
        self, name: str, endpoint: Endpoint, user_id: uuid.UUID, secrets: SecretBox, ttl_s: float
    ) -> Target:
        if ttl_s <= 0:
            return await route(name, endpoint, user_id, secrets)
        key = (user_id, name, endpoint.name)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(route(name, endpoint, user_id, secrets))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: one waiter leaving must not cancel the lookup the others await.
        target = await asyncio.shield(pending)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now + ttl_s, target)
        return target

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True, slots=True)
class ListedModel:
    config: ModelConfig
    kind: ProviderKind


async def usable_models(user_id: uuid.UUID, wire: Wire) -> list[ListedModel]:
    """Enabled models of this wire whose provider the user can use now (the key
    policy as in the catalog), default first, then by name."""
    rows = await (
        ModelConfig.filter(deleted=False, enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("-is_default", "model", "created_at")
    )
    with_keys = set(
        await UserProviderKey.filter(user_id=user_id).values_list("provider_id", flat=True)
    )
    listed: list[ListedModel] = []
    seen: set[str] = set()
    for config in rows:
        kind = ProviderKind(config.provider.kind)
        if kind not in WIRE_KINDS[wire] or config.model in seen:
            continue
        has_key = needs_key(kind) and config.provider.id in with_keys
        if provider_access(config.provider, has_user_key=has_key).available:
            seen.add(config.model)
            listed.append(ListedModel(config=config, kind=kind))
    return listed
