"""Group membership and the permissions it grants, inside the caller's transaction.

``users.granted_permissions`` caches what a user's groups grant, so a request's
permission check needs no query. Every write that can change it (a group's
permissions, its members, its deletion) recomputes it for the affected users in
the same transaction, in this order:

1. lock the group row (``lock_group``): writes to one group run one at a time,
   so "who is a member" and "what it grants" are read after the other's commit;
2. lock the affected users (``lock_users``, by id: no deadlock between two
   groups that share members);
3. write, then ``recompute_grants`` in a new statement — under READ COMMITTED it
   sees every transaction that held those user locks before us, so two groups
   changed at once never leave a member with a stale grant.
"""

from __future__ import annotations

import uuid
from typing import Any

from db.vocabulary import GRANTABLE_PERMISSIONS

_GRANTABLE = sorted(p.value for p in GRANTABLE_PERMISSIONS)

_LOCK_GROUP = "SELECT id FROM groups WHERE id = $1 FOR UPDATE"
_LOCK_USERS = "SELECT id FROM users WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
_MEMBER_IDS = "SELECT user_id FROM group_members WHERE group_id = $1"
_ADD = (
    "INSERT INTO group_members (group_id, user_id, created_at)"
    " SELECT $1, unnest($2::uuid[]), now()"
    " ON CONFLICT (group_id, user_id) DO NOTHING RETURNING user_id"
)
_REMOVE = (
    "DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::uuid[]) RETURNING user_id"
)
_DELETE_GROUP = "DELETE FROM groups WHERE id = $1"
# One statement for any number of users; only rows whose grants change are
# written (and returned), sorted so equal sets compare equal.
_RECOMPUTE = """
WITH fresh AS (
  SELECT u.id, COALESCE((
    SELECT jsonb_agg(DISTINCT p.value ORDER BY p.value)
    FROM group_members m
    JOIN groups g ON g.id = m.group_id
    CROSS JOIN LATERAL jsonb_array_elements_text(g.permissions) AS p(value)
    WHERE m.user_id = u.id AND p.value = ANY($2::text[])
  ), '[]'::jsonb) AS granted
  FROM users u WHERE u.id = ANY($1::uuid[])
)
UPDATE users u SET granted_permissions = fresh.granted
FROM fresh
WHERE u.id = fresh.id AND u.granted_permissions IS DISTINCT FROM fresh.granted
RETURNING u.id
"""


async def _rows(conn: Any, sql: str, args: list[Any]) -> list[Any]:
    # ``execute_query`` drops the RETURNING rows of INSERT/UPDATE/DELETE.
    return list(await conn.execute_query_dict(sql, args))


async def lock_group(conn: Any, group_id: uuid.UUID) -> bool:
    """Lock a group row; False when there is no such group."""
    return bool(await _rows(conn, _LOCK_GROUP, [group_id]))


async def lock_users(conn: Any, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Lock the users' rows (they cannot be deleted under us); the ids that exist."""
    if not user_ids:
        return set()
    return {row["id"] for row in await _rows(conn, _LOCK_USERS, [user_ids])}


async def member_ids(conn: Any, group_id: uuid.UUID) -> list[uuid.UUID]:
    return [row["user_id"] for row in await _rows(conn, _MEMBER_IDS, [group_id])]


async def add_members(conn: Any, group_id: uuid.UUID, user_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Add users (existing members are no-ops); the ids that were not members."""
    if not user_ids:
        return []
    return [row["user_id"] for row in await _rows(conn, _ADD, [group_id, user_ids])]


async def remove_members(
    conn: Any, group_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Remove users (non-members are no-ops); the ids that were members."""
    if not user_ids:
        return []
    return [row["user_id"] for row in await _rows(conn, _REMOVE, [group_id, user_ids])]


async def delete_group(conn: Any, group_id: uuid.UUID) -> None:
    """Delete a group; its memberships go with it (ON DELETE CASCADE)."""
    await _rows(conn, _DELETE_GROUP, [group_id])


async def recompute_grants(conn: Any, user_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Set each user's ``granted_permissions`` to what their groups grant now; the
    users whose grants changed. The caller holds their row locks (``lock_users``)."""
    if not user_ids:
        return []
    return [row["id"] for row in await _rows(conn, _RECOMPUTE, [user_ids, _GRANTABLE])]
