"""``Chat.diff`` and ``Chat.diffStatus`` from the git caches, seeded with the ORM.

Each source (the pull request's diff, the workspace's snapshot, nothing with a
reason), the per-file summary, the pull-request fields, and a chat page that
selects both costs no more queries for 20 chats than for one.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from db.models import Chat, ChatDiffStatus, User, Workspace, WorkspaceGitSnapshot
from db.vocabulary import PullRequestState, WorkspaceStatus
from resolvers import global_id
from resolvers.accounts import create_user
from resolvers.chat_diffs import STALE_AFTER_S
from tests.conftest import login_token
from tests.harness import PASSWORD, GraphQLClient, counted_queries

REPO_A = """diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 title
-old line
+new line
+another line
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.txt
@@ -0,0 +1,3 @@
+one
+two
+three
"""
REPO_B = """diff --git a/old.py b/old.py
deleted file mode 100644
index 4444444..0000000
--- a/old.py
+++ /dev/null
@@ -1,2 +0,0 @@
-x = 1
-y = 2
diff --git a/x.py b/y.py
similarity index 90%
rename from x.py
rename to y.py
index 5555555..6666666 100644
--- a/x.py
+++ b/y.py
@@ -1,2 +1,2 @@
 a = 1
-b = 2
+b = 3
"""
REMOTE = """diff --git a/app.py b/app.py
index 7777777..8888888 100644
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-print("draft")
+print("merged")
"""

DIFF = """query($id: ID!) {
  chat(id: $id) {
    diff {
      source reason unifiedDiff additions deletions repositories scannedAt
      files { path oldPath status additions deletions }
    }
  }
}"""
STATUS = """query($id: ID!) {
  chat(id: $id) {
    diffStatus {
      url pullRequestState pullRequestTitle prNumber baseBranch headBranch authorLogin
      commits approved reviewerCount changesRequested additions deletions changedFiles
      refreshedAt
    }
  }
}"""
PAGE = """query($n: Int) {
  chats(first: $n) {
    edges { node { id
      diff { source reason unifiedDiff files { path status additions deletions } }
      diffStatus { url prNumber pullRequestState }
    } }
  }
}"""

_names = itertools.count()


async def new_member(gql: GraphQLClient) -> tuple[User, str]:
    name = f"differ{next(_names)}_{uuid.uuid4().hex[:6]}"
    user = await create_user(name, PASSWORD)
    return user, await login_token(gql, name)


def repo(root: str, diff: str, **extra: Any) -> dict[str, Any]:
    return {
        "root": root,
        "branch": "main",
        "remoteOrigin": f"https://git.example/{root.rsplit('/', 1)[-1]}.git",
        "unifiedDiff": diff,
        "removed": False,
        "additions": 0,
        "deletions": 0,
        "changedFiles": 0,
        **extra,
    }


async def new_workspace(
    owner: User, status: WorkspaceStatus = WorkspaceStatus.RUNNING
) -> Workspace:
    return await Workspace.create(
        owner=owner,
        name=f"ws-{uuid.uuid4().hex[:6]}",
        directory=uuid.uuid4().hex,
        status=status,
        last_active_at=datetime.now(UTC),
    )


async def new_chat(owner: User, workspace_id: uuid.UUID | None = None, title: str = "c") -> Chat:
    chat_id = uuid.uuid4()
    return await Chat.create(
        id=chat_id,
        owner=owner,
        root_id=chat_id,
        title=title,
        workspace_id=workspace_id,
        updated_at=datetime.now(UTC),
    )


async def snapshot(
    workspace: Workspace, repos: list[dict[str, Any]], age_s: float = 0
) -> WorkspaceGitSnapshot:
    return await WorkspaceGitSnapshot.create(
        workspace_id=workspace.id,
        repositories=repos,
        scanned_at=datetime.now(UTC) - timedelta(seconds=age_s),
    )


def file(
    path: str, status: str, additions: int, deletions: int, old_path: str | None = None
) -> dict[str, Any]:
    return {
        "path": path,
        "oldPath": old_path,
        "status": status,
        "additions": additions,
        "deletions": deletions,
    }


def gid(chat: Chat) -> str:
    return global_id.encode("Chat", chat.id)


async def read_diff(gql: GraphQLClient, token: str, chat: Chat) -> dict[str, Any]:
    data = await gql.ok(DIFF, {"id": gid(chat)}, token=token)
    return dict(data["chat"]["diff"])


async def test_local_diff_joins_present_repositories_in_root_order(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    scanned = await snapshot(
        workspace,
        [
            repo("/workspace/b", REPO_B.rstrip("\n")),  # a diff without its last newline
            repo("/workspace/gone", REPO_A, removed=True),
            repo("/workspace/a", REPO_A),
            repo("/workspace/clean", ""),
        ],
    )
    chat = await new_chat(user, workspace.id)

    diff = await read_diff(gql, token, chat)

    assert diff["source"] == "LOCAL"
    assert diff["reason"] is None
    assert diff["unifiedDiff"] == REPO_A + REPO_B
    assert diff["repositories"] == 3
    assert datetime.fromisoformat(diff["scannedAt"]) == scanned.scanned_at
    assert diff["files"] == [
        file("README.md", "modified", 2, 1),
        file("new.txt", "added", 3, 0),
        file("old.py", "deleted", 0, 2),
        file("y.py", "renamed", 1, 1, old_path="x.py"),
    ]
    assert (diff["additions"], diff["deletions"]) == (6, 4)


async def test_a_clean_working_tree_is_an_empty_local_diff(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    await snapshot(workspace, [repo("/workspace/a", "")])
    diff = await read_diff(gql, token, await new_chat(user, workspace.id))
    assert (diff["source"], diff["reason"], diff["unifiedDiff"]) == ("LOCAL", None, "")
    assert diff["files"] == []


async def test_the_pull_requests_diff_wins_over_the_working_tree(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)])
    chat = await new_chat(user, workspace.id)
    refreshed = datetime.now(UTC).replace(microsecond=0)
    await ChatDiffStatus.create(
        chat_id=chat.id, git_branch="feature", remote_diff=REMOTE, refreshed_at=refreshed
    )

    diff = await read_diff(gql, token, chat)

    assert diff["source"] == "REMOTE"
    assert diff["reason"] is None
    assert diff["unifiedDiff"] == REMOTE
    assert diff["files"] == [file("app.py", "modified", 1, 1)]
    assert datetime.fromisoformat(diff["scannedAt"]) == refreshed


async def test_a_status_row_without_a_remote_diff_falls_back_to_local(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)])
    chat = await new_chat(user, workspace.id)
    await ChatDiffStatus.create(chat_id=chat.id, git_branch="feature", url="https://pr/1")
    diff = await read_diff(gql, token, chat)
    assert (diff["source"], diff["unifiedDiff"]) == ("LOCAL", REPO_A)


async def _no_workspace(user: User) -> Chat:
    return await new_chat(user)


async def _workspace_gone(user: User) -> Chat:
    return await new_chat(user, uuid.uuid4())


async def _someone_elses_workspace(user: User) -> Chat:
    other = await create_user(f"other_{uuid.uuid4().hex[:8]}", PASSWORD)
    workspace = await new_workspace(other)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)])
    return await new_chat(user, workspace.id)


async def _stopped(user: User) -> Chat:
    workspace = await new_workspace(user, WorkspaceStatus.STOPPED)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)])
    return await new_chat(user, workspace.id)


async def _never_scanned(user: User) -> Chat:
    return await new_chat(user, (await new_workspace(user)).id)


async def _stale(user: User) -> Chat:
    workspace = await new_workspace(user)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)], age_s=STALE_AFTER_S + 5)
    return await new_chat(user, workspace.id)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_no_workspace, "no workspace"),
        (_workspace_gone, "no workspace"),
        (_someone_elses_workspace, "no workspace"),
        (_stopped, "workspace stopped"),
        (_never_scanned, "watcher not running"),
        (_stale, "timed out"),
    ],
    ids=["none", "gone", "not-the-owners", "stopped", "never-scanned", "stale"],
)
async def test_an_empty_diff_says_why(
    app: Starlette, gql: GraphQLClient, make: Any, reason: str
) -> None:
    user, token = await new_member(gql)
    chat = await make(user)
    diff = await read_diff(gql, token, chat)
    assert diff["source"] == "NONE"
    assert diff["reason"] == reason
    assert diff["unifiedDiff"] == ""
    assert diff["files"] == []
    assert (diff["additions"], diff["deletions"], diff["repositories"]) == (0, 0, 0)
    if reason == "timed out":
        assert diff["scannedAt"] is not None  # when the watcher was last heard from


async def test_a_fresh_snapshot_is_not_timed_out(app: Starlette, gql: GraphQLClient) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    await snapshot(workspace, [repo("/workspace/a", REPO_A)], age_s=STALE_AFTER_S - 10)
    diff = await read_diff(gql, token, await new_chat(user, workspace.id))
    assert diff["source"] == "LOCAL"


async def read_status(gql: GraphQLClient, token: str, chat: Chat) -> Any:
    data = await gql.ok(STATUS, {"id": gid(chat)}, token=token)
    return data["chat"]["diffStatus"]


async def test_diff_status_is_null_until_the_provider_reported(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    chat = await new_chat(user)
    assert await read_status(gql, token, chat) is None
    # The watcher saw the branch; the worker has not asked the provider yet.
    await ChatDiffStatus.create(
        chat_id=chat.id,
        git_branch="feature",
        git_remote_origin="https://github.com/o/r.git",
        stale_at=datetime.now(UTC),
    )
    assert await read_status(gql, token, chat) is None


async def test_diff_status_carries_the_pull_requests_fields(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    chat = await new_chat(user)
    refreshed = datetime.now(UTC).replace(microsecond=0)
    await ChatDiffStatus.create(
        chat_id=chat.id,
        git_branch="feature",
        url="https://github.com/o/r/pull/7",
        pull_request_state=PullRequestState.DRAFT,
        pull_request_title="Add the thing",
        pr_number=7,
        base_branch="main",
        head_branch="feature",
        author_login="octocat",
        commits=3,
        approved=False,
        reviewer_count=2,
        changes_requested=True,
        additions=10,
        deletions=4,
        changed_files=2,
        refreshed_at=refreshed,
    )
    status = await read_status(gql, token, chat)
    assert datetime.fromisoformat(status.pop("refreshedAt")) == refreshed
    assert status == {
        "url": "https://github.com/o/r/pull/7",
        "pullRequestState": "draft",
        "pullRequestTitle": "Add the thing",
        "prNumber": 7,
        "baseBranch": "main",
        "headBranch": "feature",
        "authorLogin": "octocat",
        "commits": 3,
        "approved": False,
        "reviewerCount": 2,
        "changesRequested": True,
        "additions": 10,
        "deletions": 4,
        "changedFiles": 2,
    }


async def test_a_chat_page_with_diffs_costs_the_same_queries_for_20_chats_as_for_1(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    for i in range(20):
        workspace = await new_workspace(user)
        await snapshot(workspace, [repo("/workspace/a", REPO_A), repo("/workspace/b", REPO_B)])
        chat = await new_chat(user, workspace.id, title=f"chat {i}")
        if i % 2:
            await ChatDiffStatus.create(chat_id=chat.id, url=f"https://pr/{i}", pr_number=i)
    await gql("{ viewer { user { id } } }", token=token)  # its once-a-minute lastUsedAt write

    counts = {}
    for n in (1, 20):
        with counted_queries() as sent:
            data = await gql.ok(PAGE, {"n": n}, token=token)
        edges = data["chats"]["edges"]
        assert len(edges) == n
        assert all(e["node"]["diff"]["source"] == "LOCAL" for e in edges)
        assert all(len(e["node"]["diff"]["files"]) == 4 for e in edges)
        counts[n] = len(sent)
    assert counts[20] == counts[1]
    # chats page, diff statuses, workspaces with their snapshots (the token is cached)
    assert counts[1] == 3


async def test_a_stored_host_path_root_is_left_out_of_the_diff(
    app: Starlette, gql: GraphQLClient
) -> None:
    user, token = await new_member(gql)
    workspace = await new_workspace(user)
    # Written before roots were in-sandbox paths; the watcher's next scan replaces it.
    legacy = repo("/srv/agentgql/workspaces/0123/app", REPO_A)
    await snapshot(workspace, [legacy, repo("/workspace/b", REPO_B)])
    chat = await new_chat(user, workspace.id)

    diff = await read_diff(gql, token, chat)

    assert (diff["source"], diff["repositories"]) == ("LOCAL", 1)
    assert diff["unifiedDiff"] == REPO_B
