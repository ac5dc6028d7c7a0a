"""Login throttling and the username oracle.

Failed logins back off per username and per client address, through the
database every replica shares; a block is checked before any password work; and
an unknown username costs and answers exactly what a wrong password does.
Time is pinned (``resolvers.login_throttle.clock``) instead of slept through.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette

from db.models import User
from resolvers import login_throttle
from server.app import create_app
from tests.conftest import make_settings
from tests.harness import LOGIN, PASSWORD, SIGN_UP, GraphQLClient, new_person

WRONG = "not-the-password-1"


class PinnedClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> PinnedClock:
    pinned = PinnedClock()
    monkeypatch.setattr(login_throttle, "clock", pinned)
    return pinned


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 verification the server runs (the hash it checked against)."""
    calls: list[str] = []
    lock = threading.Lock()
    real: Callable[..., Any] = PasswordHasher.verify

    def counted(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        with lock:
            calls.append(str(hash))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return calls


@asynccontextmanager
async def client_at(app: Starlette, address: str) -> AsyncIterator[GraphQLClient]:
    """A GraphQL client whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http)


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def _login(gql: GraphQLClient, username: str, password: str) -> dict[str, Any]:
    """The whole response, errors and all."""
    return await gql(LOGIN, {"u": username, "p": password})


def _code(result: dict[str, Any]) -> str:
    return "OK" if "errors" not in result else str(result["errors"][0]["extensions"]["code"])


def _retry_after(result: dict[str, Any]) -> int:
    error = result["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    return int(error["extensions"]["retryAfterSeconds"])


async def _fail(gql: GraphQLClient, username: str, times: int) -> None:
    for _ in range(times):
        result = await _login(gql, username, WRONG)
        assert _code(result) == "UNAUTHENTICATED", result


# --- per username -------------------------------------------------------------


async def test_after_five_failures_even_the_right_password_waits_until_the_block_ends(
    app: Starlette, admin_token: str, clock: PinnedClock, verifications: list[str]
) -> None:
    person = await new_person("thr")
    name = person.user.username
    async with client_at(app, "10.1.0.1") as gql:
        await _fail(gql, name, 5)
        verified = len(verifications)
        refused = await _login(gql, name, PASSWORD)
        assert _retry_after(refused) == 1
        assert refused["errors"][0]["message"] == (
            "too many failed sign-in attempts; try again later"
        )
        assert refused["data"] is None
        clock.advance(0.5)
        assert _retry_after(await _login(gql, name, PASSWORD)) == 1
        # A refused attempt costs no argon2 work.
        assert len(verifications) == verified
        # Once the block ends a guess is judged again, and failing doubles the wait.
        clock.advance(0.6)
        assert _code(await _login(gql, name, WRONG)) == "UNAUTHENTICATED"
        assert _retry_after(await _login(gql, name, PASSWORD)) == 2
        clock.advance(2)
        ok = await _login(gql, name, PASSWORD)
        assert ok["data"]["login"]["user"]["username"] == name


async def test_the_wait_doubles_up_to_fifteen_minutes(
    app: Starlette, admin_token: str, clock: PinnedClock
) -> None:
    name = _unique("nobody")
    async with client_at(app, "10.2.0.1") as gql:
        await _fail(gql, name, 4)
        waits = []
        for _ in range(13):
            assert _code(await _login(gql, name, WRONG)) == "UNAUTHENTICATED"
            wait = _retry_after(await _login(gql, name, WRONG))
            waits.append(wait)
            clock.advance(wait)
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


async def test_a_successful_login_clears_the_username_count(
    app: Starlette, admin_token: str, clock: PinnedClock
) -> None:
    person = await new_person("clr")
    name = person.user.username
    async with client_at(app, "10.3.0.1") as gql:
        await _fail(gql, name, 4)
        assert _code(await _login(gql, name, PASSWORD)) == "OK"
        await _fail(gql, name, 4)
        assert _code(await _login(gql, name, PASSWORD)) == "OK"


async def test_a_username_blocked_from_one_address_is_blocked_from_every_address(
    app: Starlette, admin_token: str, clock: PinnedClock
) -> None:
    person = await new_person("spread")
    name = person.user.username
    for i in range(5):
        async with client_at(app, f"10.4.{i}.1") as gql:
            await _fail(gql, name.upper(), 1)
    async with client_at(app, "10.4.9.1") as gql:
        assert _retry_after(await _login(gql, f"  {name} ", PASSWORD)) == 1


async def test_a_burst_of_concurrent_guesses_gets_no_more_than_the_allowance(
    app: Starlette, admin_token: str, clock: PinnedClock, verifications: list[str]
) -> None:
    person = await new_person("burst")
    before = len(verifications)
    async with client_at(app, "10.11.0.1") as gql:
        results = await asyncio.gather(
            *(_login(gql, person.user.username, WRONG) for _ in range(12))
        )
    assert sorted(_code(r) for r in results) == ["RATE_LIMITED"] * 7 + ["UNAUTHENTICATED"] * 5
    assert len(verifications) - before == 5


# --- per address --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spraying", "elsewhere"),
    [
        (["10.5.0.1"], "10.5.0.2"),
        # One IPv6 host owns its /64: hopping within it does not reset the count.
        (["2001:db8:5:1::1", "2001:db8:5:1::2", "2001:db8:5:1:ab::9"], "2001:db8:5:2::1"),
    ],
    ids=["ipv4", "ipv6-64"],
)
async def test_an_address_spraying_many_usernames_is_blocked(
    app: Starlette,
    admin_token: str,
    clock: PinnedClock,
    spraying: list[str],
    elsewhere: str,
) -> None:
    person = await new_person("victim")
    for i in range(19):
        async with client_at(app, spraying[i % len(spraying)]) as gql:
            await _fail(gql, _unique("spray"), 1)
    async with client_at(app, spraying[0]) as gql:
        # A right password costs the address nothing: the 20th failure is still free.
        assert _code(await _login(gql, person.user.username, PASSWORD)) == "OK"
        await _fail(gql, _unique("spray"), 1)
        assert _retry_after(await _login(gql, person.user.username, PASSWORD)) == 1
    # The same account from another address is not affected.
    async with client_at(app, elsewhere) as gql:
        assert _code(await _login(gql, person.user.username, PASSWORD)) == "OK"


# --- replicas -----------------------------------------------------------------


async def test_two_app_instances_share_the_count(
    app: Starlette,
    admin_token: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    clock: PinnedClock,
) -> None:
    """A second app over the same database (Tortoise's connection is per process
    and already open, so its lifespan is not run)."""
    other = create_app(make_settings(database_url, tmp_path_factory))
    person = await new_person("replica")
    name = person.user.username
    async with client_at(app, "10.6.0.1") as first:
        await _fail(first, name, 3)
    async with client_at(other, "10.6.0.2") as second:
        await _fail(second, name, 2)
        assert _retry_after(await _login(second, name, PASSWORD)) == 1
    async with client_at(app, "10.6.0.1") as first:
        assert _retry_after(await _login(first, name, PASSWORD)) == 1


# --- the username oracle ------------------------------------------------------


async def test_every_refused_login_costs_one_password_verification(
    app: Starlette, admin_token: str, clock: PinnedClock, verifications: list[str]
) -> None:
    known = await new_person("cost")
    dormant = await new_person("dormant")
    await User.filter(id=dormant.user.id).update(disabled=True)
    attempts = {
        "known user, wrong password": (known.user.username, WRONG),
        "unknown user": (_unique("ghost"), WRONG),
        "unknown user, a real password": (_unique("ghost"), PASSWORD),
        "disabled user, wrong password": (dormant.user.username, WRONG),
        "malformed username": ("no such user!", WRONG),
        "empty username": ("", WRONG),
    }
    counts = {}
    for i, (label, (username, password)) in enumerate(attempts.items()):
        async with client_at(app, f"10.7.{i}.1") as gql:
            before = len(verifications)
            result = await _login(gql, username, password)
            assert _code(result) == "UNAUTHENTICATED", (label, result)
            counts[label] = len(verifications) - before
    assert counts == dict.fromkeys(attempts, 1)


async def test_wrong_username_and_wrong_password_answer_identically_throughout(
    app: Starlette, admin_token: str, clock: PinnedClock
) -> None:
    known = await new_person("same")
    answers: dict[str, list[Any]] = {}
    for label, username, address in [
        ("wrong password", known.user.username, "10.8.0.1"),
        ("unknown user", _unique("ghost"), "10.8.0.2"),
    ]:
        async with client_at(app, address) as gql:
            answers[label] = [
                (await gql.post(LOGIN, {"u": username, "p": WRONG})).json() for _ in range(6)
            ]
    assert answers["wrong password"] == answers["unknown user"]
    assert [_code(a) for a in answers["unknown user"]] == ["UNAUTHENTICATED"] * 5 + ["RATE_LIMITED"]
    assert {a["errors"][0]["message"] for a in answers["unknown user"][:5]} == {
        "invalid username or password"
    }


# --- sign-up ------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_app(
    app: Starlette, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Starlette:
    return create_app(make_settings(database_url, tmp_path_factory, allow_signup=True))


async def test_sign_up_is_throttled_per_address(
    open_app: Starlette, admin_token: str, clock: PinnedClock
) -> None:
    async with client_at(open_app, "10.9.0.1") as gql:
        # Refused input costs no hash and counts for nothing.
        for _ in range(12):
            error = await gql.error(SIGN_UP, {"u": "bad name!", "p": PASSWORD})
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
        for _ in range(10):
            await gql.ok(SIGN_UP, {"u": _unique("joiner"), "p": PASSWORD})
        late = _unique("joiner")
        error = await gql.error(SIGN_UP, {"u": late, "p": PASSWORD})
        assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfterSeconds": 1}
        assert not await User.filter(username=late).exists()
    async with client_at(open_app, "10.9.0.2") as gql:
        await gql.ok(SIGN_UP, {"u": late, "p": PASSWORD})


# --- the table ----------------------------------------------------------------


@pytest.fixture
async def rows(database_url: str) -> AsyncIterator[Callable[[], Any]]:
    conn = await asyncpg.connect(database_url)

    async def keys() -> set[tuple[str, str]]:
        found = await conn.fetch("SELECT kind, key FROM login_throttles")
        return {(r["kind"], r["key"]) for r in found}

    try:
        yield keys
    finally:
        await conn.close()


async def test_quiet_keys_are_forgotten_and_purged(
    app: Starlette, admin_token: str, clock: PinnedClock, rows: Callable[[], Any]
) -> None:
    old = _unique("old")
    async with client_at(app, "10.10.0.1") as gql:
        await _fail(gql, old, 5)
        assert _code(await _login(gql, old, WRONG)) == "RATE_LIMITED"
        assert ("username", old) in await rows()
        clock.advance(3601)
        # Forgotten: five fresh failures before the next block.
        await _fail(gql, old, 5)
        assert _code(await _login(gql, old, WRONG)) == "RATE_LIMITED"
    clock.advance(3601)
    async with client_at(app, "10.10.0.2") as gql:
        await _fail(gql, _unique("new"), 2)
    remaining = await rows()
    assert ("username", old) not in remaining
    assert ("address", "10.10.0.1") not in remaining
    assert ("address", "10.10.0.2") in remaining
