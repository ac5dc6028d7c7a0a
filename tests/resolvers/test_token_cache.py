"""The per-process verified-token cache: hot requests skip the token SELECT, and no
ended session outlives its announcement (revoke, disable, role, another replica)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.models import ApiToken, TokenScope, User
from db.vocabulary import TokenKind, UserRole
from events.channels import SESSIONS_CHANNEL
from events.hub import EventHub
from events.payloads import Resync
from resolvers import global_id
from resolvers.context import RequestContext
from resolvers.token_cache import TOKENS, TokenCache
from resolvers.tokens import end_sessions, hash_token, issue_token
from tests.daemon.live import eventually
from tests.harness import (
    GraphQLClient,
    counted_queries,
    new_person,
    redis_or_skip,
)

VIEWER = "{ viewer { user { id username } } }"
TOKEN_SELECT = "token_hash = $1"


def _token_checks(sent: list[str]) -> list[str]:
    return [q for q in sent if TOKEN_SELECT in q]


async def test_a_warm_token_costs_no_statement_and_a_cold_one_exactly_one(
    gql: GraphQLClient,
) -> None:
    person = await new_person("warm")
    TOKENS.clear()
    with counted_queries() as cold:
        first = await gql.ok(VIEWER, token=person.token)
    with counted_queries() as warm:
        again = await gql.ok(VIEWER, token=person.token)
    assert first == again
    assert again["viewer"]["user"]["username"] == person.user.username
    assert len(_token_checks(cold)) == 1
    assert warm == []  # `viewer` is answered from the verified token alone


async def test_a_revoked_api_token_is_refused_on_the_very_next_request(
    gql: GraphQLClient,
) -> None:
    person = await new_person("revoker")
    created = await gql.ok(
        'mutation { createApiToken(input: {name: "ci"}) { secret token { id } } }',
        token=person.token,
    )
    secret = created["createApiToken"]["secret"]
    assert (await gql.ok(VIEWER, token=secret))["viewer"]["user"]  # now cached
    token_id = created["createApiToken"]["token"]["id"]
    revoke = "mutation($id: ID!) { revokeApiToken(input: {id: $id}) { token { id } } }"
    await gql.ok(revoke, {"id": token_id}, token=person.token)
    error = await gql.error(VIEWER, token=secret)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in error["message"]


async def test_logging_out_ends_the_cached_session_at_once(gql: GraphQLClient) -> None:
    person = await new_person("leaver")
    assert (await gql.ok(VIEWER, token=person.token))["viewer"]["user"]
    assert (await gql.ok("mutation { logout }", token=person.token))["logout"] is True
    error = await gql.error(VIEWER, token=person.token)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def _admin_token() -> str:
    admin = await new_person("admin")
    await User.filter(id=admin.user.id).update(role=UserRole.ADMIN)  # before its first request
    return admin.token


async def test_disabling_a_user_ends_their_cached_sessions(gql: GraphQLClient) -> None:
    admin_token = await _admin_token()
    person = await new_person("disabled")
    assert (await gql.ok(VIEWER, token=person.token))["viewer"]["user"]
    disable = """mutation($id: ID!) {
      setUserDisabled(input: {userId: $id, disabled: true}) { user { disabled } } }"""
    await gql.ok(disable, {"id": global_id.encode("User", person.user.id)}, token=admin_token)
    error = await gql.error(VIEWER, token=person.token)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_role_change_is_seen_by_the_next_request(gql: GraphQLClient) -> None:
    admin_token = await _admin_token()
    person = await new_person("promoted")
    role = "{ viewer { user { role } } }"
    assert (await gql.ok(role, token=person.token))["viewer"]["user"]["role"] == "MEMBER"
    promote = """mutation($id: ID!) {
      setUserRole(input: {userId: $id, role: ADMIN}) { user { role } } }"""
    await gql.ok(promote, {"id": global_id.encode("User", person.user.id)}, token=admin_token)
    assert (await gql.ok(role, token=person.token))["viewer"]["user"]["role"] == "ADMIN"


async def test_a_gateway_token_stays_refused_by_graphql_after_the_gateway_cached_it(
    gql: GraphQLClient,
) -> None:
    from resolvers.tokens import authenticate

    person = await new_person("gatewayed")
    issued = await issue_token(person.user, TokenKind.API, "claude", None, TokenScope.GATEWAY)
    user, _ = await authenticate(issued.secret, gateway=True)  # cached for the gateway
    assert user.id == person.user.id
    assert TOKENS.get(hash_token(issued.secret)) is not None
    error = await gql.error(VIEWER, token=issued.secret)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "AI gateway" in error["message"]


# -- the cache on its own -----------------------------------------------------------------


async def _row(expires_at: datetime | None = None) -> tuple[str, User, ApiToken]:
    person = await new_person("row")
    token = await ApiToken.get(user_id=person.user.id)
    token.expires_at = expires_at
    return hash_token(person.token), person.user, token


@pytest.fixture
async def memory_hub() -> AsyncIterator[EventHub]:
    hub = EventHub("memory://")
    await hub.connect()
    try:
        yield hub
    finally:
        await hub.disconnect()


async def test_nothing_is_served_until_a_hub_is_heard(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache()
    key, user, token = await _row()
    cache.put(key, user, token, cache.generation)
    assert cache.get(key) is None
    assert len(cache) == 0
    await cache.attach(memory_hub)
    try:
        cache.put(key, user, token, cache.generation)
        assert cache.get(key) == (user, token)
    finally:
        await cache.detach(memory_hub)
    assert len(cache) == 0
    assert not cache.serving


async def test_a_zero_ttl_checks_every_request(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache(ttl_s=0)  # AGENTGQL_TOKEN_CACHE_S=0
    await cache.attach(memory_hub)
    try:
        key, user, token = await _row()
        cache.put(key, user, token, cache.generation)
        assert cache.get(key) is None
        assert len(cache) == 0
    finally:
        await cache.detach(memory_hub)


def test_the_ttl_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.settings import Settings

    monkeypatch.setenv("AGENTGQL_TOKEN_CACHE_S", "0")
    assert Settings().token_cache_s == 0
    monkeypatch.setenv("AGENTGQL_TOKEN_CACHE_S", "61")
    with pytest.raises(ValueError, match="60"):
        Settings()


async def test_an_expired_token_is_never_served(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache()
    await cache.attach(memory_hub)
    try:
        key, user, token = await _row(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        cache.put(key, user, token, cache.generation)
        assert cache.get(key) is None
    finally:
        await cache.detach(memory_hub)


async def test_a_read_that_raced_an_eviction_is_not_stored(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache()
    await cache.attach(memory_hub)
    try:
        key, user, token = await _row()
        started = cache.generation  # a request begins its database check...
        cache.evict(user.id)  # ...the session ends meanwhile...
        cache.put(key, user, token, started)  # ...and its (stale) answer arrives
        assert cache.get(key) is None
    finally:
        await cache.detach(memory_hub)


async def test_the_entries_are_bounded(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache(max_entries=3)
    await cache.attach(memory_hub)
    try:
        rows = [await _row() for _ in range(5)]
        for key, user, token in rows:
            cache.put(key, user, token, cache.generation)
        assert len(cache) == 3
        assert cache.get(rows[0][0]) is None
        assert cache.get(rows[-1][0]) is not None
    finally:
        await cache.detach(memory_hub)


async def _until(condition: Any) -> None:
    async def check() -> bool:
        return bool(condition())

    await eventually(check, timeout=5.0)


async def test_a_resync_empties_the_cache(memory_hub: EventHub, gql: Any) -> None:
    cache = TokenCache()
    await cache.attach(memory_hub)
    try:
        key, user, token = await _row()
        cache.put(key, user, token, cache.generation)
        await memory_hub.publish(SESSIONS_CHANNEL, Resync("test"))
        await _until(lambda: len(cache) == 0)
        assert cache.get(key) is None
    finally:
        await cache.detach(memory_hub)


async def test_a_session_ended_on_one_replica_is_evicted_on_another(gql: Any) -> None:
    """Two processes' caches, each on its own hub over the same Redis: the replica
    that revokes announces it, and the other forgets the token."""
    here, there = EventHub(redis_or_skip()), EventHub(redis_or_skip())
    await here.connect()
    await there.connect()
    other = TokenCache()
    await other.attach(there)
    try:
        key, user, token = await _row()
        kept_key, kept_user, kept_token = await _row()
        other.put(key, user, token, other.generation)
        other.put(kept_key, kept_user, kept_token, other.generation)
        ctx = RequestContext(request_id=str(uuid.uuid4()))
        from events.announcer import ChatAnnouncer

        ctx.events = ChatAnnouncer(here)
        await end_sessions(ctx, user.id, token_id=token.id)
        await _until(lambda: other.get(key) is None)
        assert other.get(kept_key) is not None  # another user's session is untouched
    finally:
        await other.detach(there)
        await there.disconnect()
        await here.disconnect()
