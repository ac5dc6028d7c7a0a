"""Randomised spend histories for the cost tests, and what they should add up to.

A history is charges recorded through ``db.spend.settle`` (the one spend path)
at chosen instants around UTC period boundaries — a turn straddling midnight
into the 1st of a month, Sunday into Monday — in a family of chats with
sub-agents (and calls that belong to no chat, like gateway requests). The
expected figures are plain Python sums over the same charges.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st
from tortoise.transactions import in_transaction

from db import spend
from db.cost_rollups import DayRange, UsageSums
from db.costing import ModelPrices, Usage
from db.models import Chat, ChatMessage, User
from db.vocabulary import MessageRole
from resolvers.accounts import hash_password
from tests.harness import PASSWORD

BASE = datetime(2026, 2, 26, tzinfo=UTC)  # a Thursday; the window runs to Friday 6 March
WINDOW = timedelta(days=9)
MIDNIGHT_INTO_THE_1ST = datetime(2026, 3, 1, tzinfo=UTC)
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
TICK = timedelta(microseconds=1)
INSTANTS = (
    MIDNIGHT_INTO_THE_1ST - TICK,
    MIDNIGHT_INTO_THE_1ST,
    MONDAY - timedelta(seconds=1),
    MONDAY,
    MONDAY + timedelta(hours=12),
)

# Chat slots: a root with a sub-agent that has its own sub-agent, a second root
# with one sub-agent, and no chat at all.
ROOT_A, SUB_A, SUB_SUB_A, ROOT_B, SUB_B, NO_CHAT = range(6)
PARENT = {SUB_A: ROOT_A, SUB_SUB_A: SUB_A, SUB_B: ROOT_B}
CHAT_SLOTS = (ROOT_A, SUB_A, SUB_SUB_A, ROOT_B, SUB_B)


def root_of(slot: int) -> int:
    while slot in PARENT:
        slot = PARENT[slot]
    return slot


def subtree(slot: int) -> set[int]:
    found = {slot}
    for child, parent in PARENT.items():
        if parent == slot:
            found |= subtree(child)
    return found


@dataclass(frozen=True)
class Model:
    config_id: uuid.UUID | None  # None: a call made without a model config
    provider: str
    name: str
    prices: ModelPrices


def models(config_ids: list[uuid.UUID]) -> list[Model]:
    """Four models on the given three config ids: two priced (one with cache
    prices), one unpriced, and a priced call without any config."""
    return [
        Model(config_ids[0], "openai", "gpt-a", ModelPrices(1_250_000, 10_000_000)),
        Model(
            config_ids[1],
            "anthropic",
            "claude-b",
            ModelPrices(3_000_000, 15_000_000, 300_000, 3_750_000),
        ),
        Model(config_ids[2], "openai", "unpriced-c", ModelPrices()),
        Model(None, "openai", "gateway-d", ModelPrices(500_000, 1_500_000)),
    ]


@dataclass(frozen=True)
class Spent:
    slot: int
    model: int
    at: datetime
    usage: Usage


tokens = st.integers(0, 40_000)
usages = st.builds(Usage, tokens, tokens, st.integers(0, 5_000), tokens, tokens)
instants = st.one_of(
    st.sampled_from(INSTANTS),
    st.integers(0, int(WINDOW.total_seconds()) - 1).map(lambda s: BASE + timedelta(seconds=s)),
)


def histories(slots: Iterable[int] = (*CHAT_SLOTS, NO_CHAT)) -> st.SearchStrategy[list[Spent]]:
    """Random charges, always after one turn that straddles midnight into the 1st
    in a sub-agent (its two steps settle on different days and months)."""
    straddle = [
        Spent(SUB_A, 0, MIDNIGHT_INTO_THE_1ST - TICK, Usage(1000, 200, 50, 300, 0)),
        Spent(SUB_A, 1, MIDNIGHT_INTO_THE_1ST, Usage(800, 100, 0, 0, 1200)),
    ]
    one = st.builds(Spent, st.sampled_from(tuple(slots)), st.integers(0, 3), instants, usages)
    return st.lists(one, max_size=25).map(lambda rest: straddle + rest)


ranges = st.tuples(
    st.integers(0, 8 * 24).map(lambda h: BASE + timedelta(hours=h)),
    st.integers(1, 10 * 24).map(lambda h: timedelta(hours=h)),
).map(lambda pair: (pair[0], pair[0] + pair[1]))


@dataclass
class Family:
    user: User
    chats: dict[int, uuid.UUID]

    def chat_id(self, slot: int) -> uuid.UUID | None:
        return self.chats.get(slot)


_password_hash: list[str] = []


async def new_family(prefix: str = "spender") -> Family:
    if not _password_hash:
        _password_hash.append(await hash_password(PASSWORD))
    user = await User.create(
        username=f"{prefix}{uuid.uuid4().hex[:10]}", password_hash=_password_hash[0]
    )
    chats: dict[int, uuid.UUID] = {}
    now = datetime.now(UTC)
    for slot in CHAT_SLOTS:  # parents before children
        chat_id = uuid.uuid4()
        root = chats.get(root_of(slot), chat_id)
        await Chat.create(
            id=chat_id,
            owner=user,
            parent_id=chats.get(PARENT[slot]) if slot in PARENT else None,
            root_id=root,
            title=f"chat {slot}",
            updated_at=now,
        )
        chats[slot] = chat_id
    return Family(user, chats)


def charge_of(family: Family, spent: Spent, table: list[Model]) -> spend.Charge:
    model = table[spent.model]
    root = family.chat_id(root_of(spent.slot))
    return spend.Charge(
        user_id=family.user.id,
        usage=spent.usage,
        prices=model.prices,
        model_config_id=model.config_id,
        provider=model.provider,
        model=model.name,
        chat_id=family.chat_id(spent.slot),
        root_chat_id=root,
        at=spent.at,
    )


async def record(
    family: Family, history: list[Spent], table: list[Model], *, messages: bool = False
) -> None:
    """Settle each charge as the daemon does; with ``messages`` also write the
    assistant message it belongs to, in the same transaction."""
    for spent in history:
        charge = charge_of(family, spent, table)
        async with in_transaction() as conn:
            await spend.settle(conn, None, charge)
            if messages and charge.chat_id is not None:
                await ChatMessage.create(
                    chat_id=charge.chat_id,
                    role=MessageRole.ASSISTANT,
                    parts=[],
                    created_at=spent.at,
                    model_config_id=charge.model_config_id,
                    using_db=conn,
                    **charge.columns(),
                )


def add(sums: UsageSums, charge: spend.Charge) -> UsageSums:
    cost = charge.cost_micros
    usage = charge.usage
    return UsageSums(
        cost_micros=sums.cost_micros + (cost or 0),
        priced_count=sums.priced_count + (cost is not None),
        unpriced_count=sums.unpriced_count + (cost is None),
        input_tokens=sums.input_tokens + usage.input_tokens,
        output_tokens=sums.output_tokens + usage.output_tokens,
        reasoning_tokens=sums.reasoning_tokens + usage.reasoning_tokens,
        cache_read_tokens=sums.cache_read_tokens + usage.cache_read_tokens,
        cache_write_tokens=sums.cache_write_tokens + usage.cache_write_tokens,
    )


@dataclass
class Expected:
    """The figures a summary over ``days`` must show."""

    totals: UsageSums
    by_model: dict[uuid.UUID | None, UsageSums]
    by_root: dict[uuid.UUID, UsageSums]
    by_day: dict[date, int]


def expected(family: Family, history: list[Spent], table: list[Model], days: DayRange) -> Expected:
    totals = UsageSums()
    by_model: dict[uuid.UUID | None, UsageSums] = defaultdict(UsageSums)
    by_root: dict[uuid.UUID, UsageSums] = defaultdict(UsageSums)
    by_day = dict.fromkeys(days.days(), 0)
    for spent in history:
        day = spent.at.astimezone(UTC).date()
        if not days.first <= day < days.end:
            continue
        charge = charge_of(family, spent, table)
        totals = add(totals, charge)
        by_model[charge.model_config_id] = add(by_model[charge.model_config_id], charge)
        if charge.root_chat_id is not None:
            by_root[charge.root_chat_id] = add(by_root[charge.root_chat_id], charge)
        by_day[day] += charge.cost_micros or 0
    return Expected(totals, dict(by_model), dict(by_root), by_day)


def all_time(
    family: Family, history: list[Spent], table: list[Model], slots: set[int]
) -> UsageSums:
    """What a chat covering ``slots`` has cost, ever."""
    sums = UsageSums()
    for spent in history:
        if spent.slot in slots:
            sums = add(sums, charge_of(family, spent, table))
    return sums
