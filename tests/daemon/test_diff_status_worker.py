"""Stale diff statuses are refreshed once each, whoever races for them; results
are published only when what chat lists show changed; failures retry later."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from daemon.diff_status_worker import DiffStatusWorker, mark_stale
from daemon.git_providers import GitProviderError, PullRequest
from db.models import Chat, ChatDiffStatus, User
from db.vocabulary import PullRequestState

ORIGIN = "git@github.com:acme/widgets.git"

PR = PullRequest(
    url="https://github.com/acme/widgets/pull/1",
    number=1,
    state=PullRequestState.OPEN,
    title="Spin",
    base_branch="main",
    head_branch="spin",
    author_login="octocat",
    commits=1,
    approved=False,
    reviewer_count=0,
    changes_requested=False,
    additions=1,
    deletions=1,
    changed_files=1,
)


class FakeProvider:
    """Pull requests by branch; ``gate`` (when set) holds lookups until opened."""

    def __init__(self) -> None:
        self.pulls: dict[str, PullRequest] = {}
        self.failing: set[str] = set()
        self.lookups: Counter[str] = Counter()
        self.gate: asyncio.Event | None = None
        self.waiting = 0
        self.arrived = asyncio.Condition()

    def handles(self, remote_origin: str) -> bool:
        return "github.com" in remote_origin

    async def find_pull_request(self, remote_origin: str, branch: str) -> PullRequest | None:
        self.lookups[branch] += 1
        if self.gate is not None:
            async with self.arrived:
                self.waiting += 1
                self.arrived.notify_all()
            await self.gate.wait()
        if branch in self.failing:
            raise GitProviderError("GitHub: HTTP 502")
        return self.pulls.get(branch)

    async def pull_request_diff(self, remote_origin: str, number: int) -> str:
        return f"diff of #{number}"


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.any = asyncio.Event()

    async def __call__(self, owner_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        self.events.append((owner_id, chat_id))
        self.any.set()


@pytest.fixture
async def owner(app) -> User:
    await ChatDiffStatus.all().delete()  # each test claims from the whole table
    return await User.create(username=f"d{uuid.uuid4().hex[:8]}", password_hash="x")


async def new_chat(owner: User) -> uuid.UUID:
    chat_id = uuid.uuid4()
    await Chat.create(
        id=chat_id, owner=owner, root_id=chat_id, title="t", updated_at=datetime.now(UTC)
    )
    return chat_id


async def test_refresh_stores_the_pull_request_and_publishes_only_changes(owner: User) -> None:
    provider, published = FakeProvider(), Published()
    worker = DiffStatusWorker(provider, published)
    chat_id = await new_chat(owner)
    provider.pulls["spin"] = PR

    await worker.mark_stale(chat_id, "spin", ORIGIN)
    assert await worker.run_once() == 1
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.url, row.pr_number, row.pull_request_state, row.remote_diff) == (
        PR.url,
        1,
        PullRequestState.OPEN,
        "diff of #1",
    )
    assert (row.stale_at, row.lease_until) == (None, None)
    assert row.refreshed_at is not None
    assert published.events == [(owner.id, chat_id)]
    assert await worker.run_once() == 0  # nothing stale

    await worker.mark_stale(chat_id, "spin", ORIGIN)  # seen again, nothing new
    assert await worker.run_once() == 1
    assert len(published.events) == 1

    provider.pulls["spin"] = replace(PR, approved=True, reviewer_count=1)
    await worker.mark_stale(chat_id, "spin", ORIGIN)
    assert await worker.run_once() == 1
    assert len(published.events) == 2
    assert (await ChatDiffStatus.get(chat_id=chat_id)).approved is True


async def test_foreign_origins_and_missing_branches_clear_the_pull_request(owner: User) -> None:
    provider, published = FakeProvider(), Published()
    worker = DiffStatusWorker(provider, published)
    chat_id = await new_chat(owner)
    provider.pulls["spin"] = PR
    await worker.mark_stale(chat_id, "spin", ORIGIN)
    await worker.run_once()

    await worker.mark_stale(chat_id, "spin", "git@gitlab.com:acme/widgets.git")
    assert await worker.run_once() == 1
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.url, row.pr_number, row.remote_diff, row.stale_at) == (None, None, None, None)
    assert row.git_remote_origin == "git@gitlab.com:acme/widgets.git"
    assert len(published.events) == 2

    await worker.mark_stale(chat_id, None, ORIGIN)
    assert await worker.run_once() == 1
    assert len(published.events) == 2  # already empty: no change to announce
    assert sum(provider.lookups.values()) == 1


async def test_a_provider_error_releases_the_row_for_a_later_retry(owner: User) -> None:
    provider, published = FakeProvider(), Published()
    chat_id = await new_chat(owner)
    provider.failing.add("spin")
    await mark_stale(chat_id, "spin", ORIGIN)

    patient = DiffStatusWorker(provider, published, retry_s=3600)
    assert await patient.run_once() == 1
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert row.lease_until is None
    assert row.stale_at is not None
    assert row.stale_at > datetime.now(UTC) + timedelta(minutes=30)  # not due yet
    assert await patient.run_once() == 0

    await ChatDiffStatus.filter(chat_id=chat_id).update(stale_at=datetime.now(UTC))
    provider.failing.clear()
    provider.pulls["spin"] = PR
    assert await patient.run_once() == 1
    assert (await ChatDiffStatus.get(chat_id=chat_id)).pr_number == 1
    assert published.events == [(owner.id, chat_id)]


async def test_an_expired_lease_can_be_claimed_again(owner: User) -> None:
    worker = DiffStatusWorker(FakeProvider(), Published())
    held, expired = await new_chat(owner), await new_chat(owner)
    for chat_id in (held, expired):
        await mark_stale(chat_id, "spin", ORIGIN)
    now = datetime.now(UTC)
    await ChatDiffStatus.filter(chat_id=held).update(lease_until=now + timedelta(minutes=5))
    await ChatDiffStatus.filter(chat_id=expired).update(lease_until=now - timedelta(seconds=1))
    assert await worker.run_once() == 1
    assert (await ChatDiffStatus.get(chat_id=expired)).stale_at is None
    assert (await ChatDiffStatus.get(chat_id=held)).stale_at is not None


async def test_archived_chats_are_not_refreshed(owner: User) -> None:
    worker = DiffStatusWorker(FakeProvider(), Published())
    chat_id = await new_chat(owner)
    await Chat.filter(id=chat_id).update(archived=True)
    await mark_stale(chat_id, "spin", ORIGIN)
    assert await worker.run_once() == 0


async def test_two_workers_racing_refresh_each_row_exactly_once(owner: User) -> None:
    provider, published = FakeProvider(), Published()
    provider.gate = asyncio.Event()
    chats = [await new_chat(owner) for _ in range(6)]
    for i, chat_id in enumerate(chats):
        provider.pulls[f"b{i}"] = replace(PR, number=i + 1, head_branch=f"b{i}")
        await mark_stale(chat_id, f"b{i}", ORIGIN)
    first, second = (DiffStatusWorker(provider, published, batch=3) for _ in range(2))

    runs = [asyncio.create_task(first.run_once()), asyncio.create_task(second.run_once())]
    async with asyncio.timeout(5), provider.arrived:
        # Both workers are inside a lookup: both hold their claims at once.
        await provider.arrived.wait_for(lambda: provider.waiting >= 2)
    provider.gate.set()
    assert sorted(await asyncio.gather(*runs)) == [3, 3]

    assert provider.lookups == Counter({f"b{i}": 1 for i in range(6)})
    assert sorted(chat for _, chat in published.events) == sorted(chats)
    rows = await ChatDiffStatus.filter(chat_id__in=chats)
    assert sorted(r.pr_number or 0 for r in rows) == [1, 2, 3, 4, 5, 6]
    assert await first.run_once() == await second.run_once() == 0


async def test_a_branch_change_during_a_refresh_is_not_lost(owner: User) -> None:
    provider = FakeProvider()
    provider.gate = asyncio.Event()
    worker = DiffStatusWorker(provider, Published())
    chat_id = await new_chat(owner)
    provider.pulls["new"] = PR
    await mark_stale(chat_id, "old", ORIGIN)

    run = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(5), provider.arrived:
        await provider.arrived.wait_for(lambda: provider.waiting >= 1)
    await worker.mark_stale(chat_id, "new", ORIGIN)  # the watcher saw a checkout
    provider.gate.set()
    assert await run == 1
    assert (await ChatDiffStatus.get(chat_id=chat_id)).stale_at is not None  # still due
    assert await worker.run_once() == 1
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.git_branch, row.pr_number, row.stale_at) == ("new", 1, None)


async def test_the_loop_wakes_on_mark_stale(owner: User) -> None:
    provider, published = FakeProvider(), Published()
    provider.pulls["spin"] = PR
    worker = DiffStatusWorker(provider, published, interval_s=60)
    chat_id = await new_chat(owner)
    await worker.start()
    try:
        await worker.mark_stale(chat_id, "spin", ORIGIN)
        async with asyncio.timeout(5):  # well before the 60 s poll
            await published.any.wait()
    finally:
        await worker.stop()
    assert published.events == [(owner.id, chat_id)]


async def test_a_pull_request_with_nul_in_its_title_or_diff_is_stored_with_the_replacement(
    owner: User,
) -> None:
    class BinaryDiffs(FakeProvider):
        async def pull_request_diff(self, remote_origin: str, number: int) -> str:
            return "+late\x00nul\n"  # past git's binary sniff: a text diff holding NUL

    provider, published = BinaryDiffs(), Published()
    worker = DiffStatusWorker(provider, published)
    chat_id = await new_chat(owner)
    provider.pulls["spin"] = replace(PR, title="Spin\x00\ud800")

    await worker.mark_stale(chat_id, "spin", ORIGIN)
    assert await worker.run_once() == 1
    row = await ChatDiffStatus.get(chat_id=chat_id)
    assert (row.pull_request_title, row.remote_diff) == ("Spin\ufffd\ufffd", "+late\ufffdnul\n")
    assert row.stale_at is None
    assert len(published.events) == 1

    await worker.mark_stale(chat_id, "spin", ORIGIN)  # the same again: nothing to announce
    assert await worker.run_once() == 1
    assert len(published.events) == 1
