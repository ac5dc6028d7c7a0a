"""``gitChanges`` over a real WebSocket, and ``refreshGitChanges``.

The watcher's side is mostly played by the test: it writes the snapshot row and
announces changed and removed roots on the app's hub, as the daemon does. The
roots tests run the daemon's real git watchers on real repositories.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from daemon.git_watchers import GitWatchers
from daemon.workspace_backend import LocalWorkspaceBackend
from db.models import User, WorkspaceGitSnapshot
from events.announcer import ChatAnnouncer
from events.channels import WORK_CHANNEL, git_channel
from events.payloads import GitRefreshRequested, Resync
from tests.daemon.live import WAIT_S, GraphQLSocket, Subscription
from tests.daemon.test_git_scan import make_repo
from tests.harness import GraphQLClient, listening
from tests.resolvers.test_chat_diffs import (
    REPO_A,
    REPO_B,
    gid,
    new_chat,
    new_member,
    new_workspace,
    read_diff,
    repo,
    snapshot,
)

GIT_CHANGES = """subscription($id: ID!) {
  gitChanges(chatId: $id) {
    chatId scannedAt
    repositories {
      root branch remoteOrigin unifiedDiff removed additions deletions changedFiles
    }
  }
}"""
REFRESH = "mutation($id: ID!) { refreshGitChanges(chatId: $id) }"
REPO_B_2 = """diff --git a/later.txt b/later.txt
new file mode 100644
index 0000000..9999999
--- /dev/null
+++ b/later.txt
@@ -0,0 +1 @@
+later
"""


def roots(frame: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(r["root"], r["removed"]) for r in frame["repositories"]]


async def store(workspace_id: uuid.UUID, repos: list[dict[str, Any]]) -> str:
    """Write the snapshot as the watcher would; its scan time, as sent on the hub."""
    scanned_at = datetime.now(UTC)
    await WorkspaceGitSnapshot.filter(workspace_id=workspace_id).update(
        repositories=repos, scanned_at=scanned_at
    )
    return scanned_at.isoformat()


async def end_of(sub: Subscription) -> dict[str, Any]:
    """The next raw frame for this subscription (an error or ``complete``)."""
    return await asyncio.wait_for(sub.queue.get(), WAIT_S)


async def watched_chat(user: User, repos: list[dict[str, Any]] | None) -> tuple[Any, Any]:
    workspace = await new_workspace(user)
    if repos is not None:
        await snapshot(workspace, repos)
    return workspace, await new_chat(user, workspace.id)


async def test_a_full_frame_first_then_only_what_changed(
    app: Starlette, gql: GraphQLClient, live_server: str
) -> None:
    user, token = await new_member(gql)
    a = repo("/workspace/a", REPO_A, additions=5, deletions=1, changedFiles=2)
    b = repo("/workspace/b", REPO_B, additions=1, deletions=3, changedFiles=2)
    workspace, chat = await watched_chat(user, [b, repo("/workspace/old", "", removed=True), a])
    events: ChatAnnouncer = app.state.announcer

    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        first = await sub.next()
        assert first["chatId"] == gid(chat)
        assert roots(first) == [("/workspace/a", False), ("/workspace/b", False)]
        assert first["repositories"][0] == {
            "root": "/workspace/a",
            "branch": "main",
            "remoteOrigin": "https://git.example/a.git",
            "unifiedDiff": REPO_A,
            "removed": False,
            "additions": 5,
            "deletions": 1,
            "changedFiles": 2,
        }
        row = await WorkspaceGitSnapshot.get(workspace_id=workspace.id)
        assert datetime.fromisoformat(first["scannedAt"]) == row.scanned_at

        b2 = repo("/workspace/b", REPO_B_2, additions=1, deletions=0, changedFiles=1)
        scanned = await store(workspace.id, [a, b2])
        await events.git_changed(
            workspace.id, ["/workspace/b"], [], datetime.fromisoformat(scanned)
        )
        changed = await sub.next()
        assert roots(changed) == [("/workspace/b", False)]
        assert changed["repositories"][0]["unifiedDiff"] == REPO_B_2
        assert changed["repositories"][0]["changedFiles"] == 1
        assert datetime.fromisoformat(changed["scannedAt"]) == datetime.fromisoformat(scanned)

        scanned = await store(workspace.id, [b2])
        await events.git_changed(
            workspace.id, [], ["/workspace/a"], datetime.fromisoformat(scanned)
        )
        removed = await sub.next()
        assert removed["repositories"] == [
            {
                "root": "/workspace/a",
                "branch": None,
                "remoteOrigin": None,
                "unifiedDiff": "",
                "removed": True,
                "additions": 0,
                "deletions": 0,
                "changedFiles": 0,
            }
        ]
        await sub.stop()


async def test_after_a_resync_the_whole_snapshot_again_with_what_disappeared(
    app: Starlette, gql: GraphQLClient, live_server: str
) -> None:
    user, token = await new_member(gql)
    a, b = repo("/workspace/a", REPO_A), repo("/workspace/b", REPO_B)
    workspace, chat = await watched_chat(user, [a, b])

    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        assert roots(await sub.next()) == [("/workspace/a", False), ("/workspace/b", False)]
        # Announcements were lost: /workspace/a went away and /workspace/c appeared meanwhile.
        await store(workspace.id, [b, repo("/workspace/c", REPO_B_2)])
        await app.state.event_hub.publish(git_channel(workspace.id), Resync("overflow"))
        full = await sub.next()
        assert roots(full) == [
            ("/workspace/b", False),
            ("/workspace/c", False),
            ("/workspace/a", True),
        ]
        assert full["repositories"][1]["unifiedDiff"] == REPO_B_2
        await sub.stop()


async def test_before_the_first_scan_an_empty_frame_then_the_scans(
    app: Starlette, gql: GraphQLClient, live_server: str
) -> None:
    user, token = await new_member(gql)
    workspace, chat = await watched_chat(user, None)
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        assert (await sub.next())["repositories"] == []
        await snapshot(workspace, [repo("/workspace/a", REPO_A)])
        await app.state.announcer.git_changed(workspace.id, ["/workspace/a"], [], datetime.now(UTC))
        assert roots(await sub.next()) == [("/workspace/a", False)]
        await sub.stop()


async def test_a_chat_without_a_workspace_gets_one_empty_frame(
    gql: GraphQLClient, live_server: str
) -> None:
    user, token = await new_member(gql)
    chat = await new_chat(user)
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        frame = await sub.next()
        assert frame["chatId"] == gid(chat)
        assert frame["repositories"] == []
        assert frame["scannedAt"]
        assert (await end_of(sub))["type"] == "complete"


async def test_someone_elses_chat_is_not_found(gql: GraphQLClient, live_server: str) -> None:
    owner, _ = await new_member(gql)
    _, stranger = await new_member(gql)
    _, chat = await watched_chat(owner, [repo("/workspace/secret", REPO_A)])
    async with GraphQLSocket.open(live_server, stranger) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        frame = await end_of(sub)
    errors = frame["payload"]["errors"] if frame["type"] == "next" else frame["payload"]
    assert errors[0]["extensions"]["code"] == "NOT_FOUND", frame
    assert "/workspace/secret" not in str(socket.frames)


async def test_refresh_asks_the_watcher_for_a_rescan(app: Starlette, gql: GraphQLClient) -> None:
    user, token = await new_member(gql)
    workspace, chat = await watched_chat(user, [])
    async with listening(app, WORK_CHANNEL) as work:
        data = await gql.ok(REFRESH, {"id": gid(chat)}, token=token)
        assert data == {"refreshGitChanges": True}
        event = await work.get(timeout=WAIT_S)
        while not isinstance(event, GitRefreshRequested):  # other work may share the channel
            event = await work.get(timeout=WAIT_S)
    assert event == GitRefreshRequested(workspace.id)


async def test_refresh_needs_your_chat_and_a_workspace(gql: GraphQLClient) -> None:
    owner, owner_token = await new_member(gql)
    _, stranger = await new_member(gql)
    _, chat = await watched_chat(owner, [])
    error = await gql.error(REFRESH, {"id": gid(chat)}, token=stranger)
    assert error["extensions"]["code"] == "NOT_FOUND"
    bare = await new_chat(owner)
    error = await gql.error(REFRESH, {"id": gid(bare)}, token=owner_token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "chatId"


# -- roots as clients see them: in-sandbox paths, never the host's ---------------------


async def test_a_real_scan_shows_roots_under_workspace_never_the_host_directory(
    app: Starlette, gql: GraphQLClient, live_server: str, tmp_path: Path
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    backend = LocalWorkspaceBackend(tmp_path / "workspaces")
    directory = backend.path(workspace)
    make_repo(directory, {"README.md": "top\n"})
    make_repo(directory / "app", {"main.py": "print()\n"})
    (directory / "app" / "main.py").write_text("print('changed')\n")
    chat = await new_chat(user, workspace.id)
    watchers = GitWatchers(backend, app.state.announcer, cooldown_s=0.05, poll_s=30.0)
    try:
        async with GraphQLSocket.open(live_server, token) as socket:
            sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
            assert (await sub.next())["repositories"] == []  # not scanned yet
            await watchers.sync()
            scanned = await sub.next()
            assert roots(scanned) == [("/workspace", False), ("/workspace/app", False)]
            app_repo = scanned["repositories"][1]
            assert "print('changed')" in app_repo["unifiedDiff"]

            assert await watchers.refresh(workspace.id)  # what refreshGitChanges leads to
            assert roots(await sub.next()) == [("/workspace", False), ("/workspace/app", False)]

            shutil.rmtree(directory / "app")
            assert await watchers.refresh(workspace.id)
            gone = await sub.next()
            assert ("/workspace/app", True) in roots(gone)
            await sub.stop()
        diff = await read_diff(gql, token, chat)
    finally:
        await watchers.close()
    assert diff["source"] == "LOCAL"
    hosts = {str(tmp_path), str(directory.resolve(strict=False))}
    for host in hosts:
        assert host not in "".join(socket.frames)
        assert host not in str(diff)
    stored = await WorkspaceGitSnapshot.get(workspace_id=workspace.id)
    assert [r["root"] for r in stored.repositories] == ["/workspace"]


async def test_a_stored_host_path_root_is_never_served(
    app: Starlette, gql: GraphQLClient, live_server: str
) -> None:
    user, token = await new_member(gql)
    # A row written before roots were mapped: the next scan rewrites it.
    legacy = repo("/srv/agentgql/workspaces/0123/app", REPO_A)
    workspace, chat = await watched_chat(user, [legacy, repo("/workspace/b", REPO_B)])
    async with GraphQLSocket.open(live_server, token) as socket:
        sub = await socket.subscribe(GIT_CHANGES, {"id": gid(chat)}, field="gitChanges")
        assert roots(await sub.next()) == [("/workspace/b", False)]
        scanned = await store(workspace.id, [legacy, repo("/workspace/b", REPO_B_2)])
        await app.state.announcer.git_changed(
            workspace.id, [legacy["root"], "/workspace/b"], [], datetime.fromisoformat(scanned)
        )
        assert roots(await sub.next()) == [("/workspace/b", False)]
        await sub.stop()
    assert "/srv/agentgql" not in "".join(socket.frames)
