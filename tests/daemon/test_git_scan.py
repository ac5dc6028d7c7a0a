"""Scanning real repositories: what changed, branch, origin, nesting, the cap,
and that nothing a repository's configuration names runs on the host."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest

from daemon import git_scan
from daemon.git_scan import MAX_DIFF_BYTES, GitScanner, GitScanUnavailable, find_repos
from daemon.sandbox import Sandbox, SandboxSettings
from db.diff_files import DiffFile, diff_files, diff_totals
from db.git_snapshots import RepoSnapshot
from tests.daemon.tools.sandboxed import host_pids, needs_bwrap, sleep_marker, started

pytestmark = needs_bwrap

WAIT_S = 30.0
MARKER = re.compile(r"^# diff too large: (\d+) bytes omitted$", re.MULTILINE)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.email=a@b", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    if files:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial")
    return path


def by_path(files: list[DiffFile]) -> dict[str, DiffFile]:
    return {f.path: f for f in files}


@pytest.fixture(scope="module")
def scanner() -> GitScanner:
    """Git in the sandbox the shell tool uses: what the daemon runs."""
    return GitScanner(Sandbox())


async def scan_repo(repo: Path, workspace: Path | None = None) -> RepoSnapshot:
    """The repository at ``repo``, in a workspace that is its parent directory."""
    return await GitScanner(Sandbox()).scan_repo(repo, workspace or repo.parent)


async def scan_workspace(workspace: Path) -> list[RepoSnapshot]:
    return await GitScanner(Sandbox()).scan_workspace(workspace)


async def test_working_tree_changes_against_head(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\n",
            "a.txt": "one\ntwo\nthree\n",
            "b.txt": "gone\nsoon\n",
            "c.txt": "moving\nfile\nwith\nlines\n",
        },
    )
    (repo / "a.txt").write_text("one\nTWO\nthree\nfour\n")
    (repo / "b.txt").unlink()
    git(repo, "mv", "c.txt", "d.txt")
    (repo / "new.txt").write_text("fresh\nfile\n")
    (repo / "debug.log").write_text("ignored\n")

    snapshot = await scan_repo(repo)

    files = by_path(diff_files(snapshot.unified_diff))
    assert files == {
        "a.txt": DiffFile("a.txt", None, "modified", 2, 1),
        "b.txt": DiffFile("b.txt", None, "deleted", 0, 2),
        "d.txt": DiffFile("d.txt", "c.txt", "renamed", 0, 0),
        "new.txt": DiffFile("new.txt", None, "added", 2, 0),
    }
    assert "+fresh" in snapshot.unified_diff
    assert "debug.log" not in snapshot.unified_diff
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (4, 3, 4)
    assert diff_totals(files.values()) == (4, 3, 4)
    assert snapshot.root == "/workspace/repo"
    assert snapshot.removed is False
    assert MARKER.search(snapshot.unified_diff) is None


async def test_clean_repo_has_an_empty_diff(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    snapshot = await scan_repo(repo / ".", tmp_path)
    assert snapshot.unified_diff == ""
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (0, 0, 0)


async def test_untracked_binary_symlink_and_odd_names(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (repo / "blob.bin").write_bytes(b"\x00\x01\x02")
    (repo / "no newline.txt").write_text("x\ny")
    (repo / "tab\there.txt").write_text("t\n")
    (repo / "link").symlink_to("a.txt")
    (repo / os.fsdecode(b"latin\xe9.txt")).write_text("l\n")

    snapshot = await scan_repo(repo)

    assert by_path(diff_files(snapshot.unified_diff)) == {
        "blob.bin": DiffFile("blob.bin", None, "added", 0, 0),
        "link": DiffFile("link", None, "added", 1, 0),
        "no newline.txt": DiffFile("no newline.txt", None, "added", 2, 0),
        "tab\there.txt": DiffFile("tab\there.txt", None, "added", 1, 0),
        "latin\ufffd.txt": DiffFile("latin\ufffd.txt", None, "added", 1, 0),
    }
    assert (snapshot.additions, snapshot.changed_files) == (5, 5)


async def test_branch_detached_head_and_origin(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    first = await scan_repo(repo)
    assert (first.branch, first.remote_origin) == ("main", None)

    git(repo, "checkout", "-q", "-b", "feature/x")
    git(repo, "remote", "add", "origin", "https://example.com/acme/repo.git")
    second = await scan_repo(repo)
    assert (second.branch, second.remote_origin) == (
        "feature/x",
        "https://example.com/acme/repo.git",
    )

    git(repo, "checkout", "-q", "--detach")
    assert (await scan_repo(repo)).branch is None


async def test_repo_without_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "staged.txt").write_text("s1\ns2\n")
    git(repo, "add", "staged.txt")
    (repo / "loose.txt").write_text("l\n")

    snapshot = await scan_repo(repo)

    assert snapshot.branch == "main"
    assert by_path(diff_files(snapshot.unified_diff)) == {
        "staged.txt": DiffFile("staged.txt", None, "added", 2, 0),
        "loose.txt": DiffFile("loose.txt", None, "added", 1, 0),
    }
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (3, 0, 2)


async def test_finds_nested_repos_and_skips_the_rest(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    outer = make_repo(workspace / "app", {"main.py": "print()\n"})
    inner = make_repo(outer / "vendor" / "lib", {"lib.py": "x = 1\n"})
    (inner / "lib.py").write_text("x = 2\n")
    make_repo(workspace / "node_modules" / "pkg", {"i.js": "1\n"})
    make_repo(workspace / "a" / "b" / "c" / "too-deep", {"f": "1\n"})
    (workspace / "plain").mkdir()

    snapshots = await scan_workspace(workspace)

    roots = [s.root for s in snapshots]
    assert roots == ["/workspace/app", "/workspace/app/vendor/lib"]
    app, lib = snapshots
    # The nested repository's change is its own, not the outer one's.
    assert app.unified_diff == ""
    assert [f.path for f in diff_files(lib.unified_diff)] == ["lib.py"]
    deeper = find_repos(workspace, max_depth=4)
    assert workspace / "a" / "b" / "c" / "too-deep" in deeper
    assert not any("node_modules" in p.parts for p in deeper)


async def test_the_workspace_itself_can_be_the_repo(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.txt": "a\n"})
    assert [s.root for s in await scan_workspace(repo)] == ["/workspace"]
    assert await scan_workspace(tmp_path / "missing") == []


async def test_a_broken_repo_does_not_hide_the_others(tmp_path: Path) -> None:
    make_repo(tmp_path / "good", {"a.txt": "a\n"})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / ".git").write_text("gitdir: /nonexistent/elsewhere\n")

    snapshots = await scan_workspace(tmp_path)

    assert [s.root for s in snapshots] == ["/workspace/good"]


async def test_repositories_reaching_outside_the_workspace_are_left_out(tmp_path: Path) -> None:
    host = make_repo(tmp_path / "host", {"secret.txt": "host secret\n"})
    (host / "secret.txt").write_text("host secret, edited\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    workspace = host / "ws"  # the server's directories may themselves be a repository
    make_repo(workspace / "good", {"a.txt": "a\n"})
    (workspace / "hollow" / ".git").mkdir(parents=True)  # git would look further up
    moved = make_repo(workspace / "moved", {"m.txt": "m\n"})
    git(moved, "config", "core.worktree", str(outside))
    pointer = workspace / "pointer"
    pointer.mkdir()
    (pointer / ".git").write_text(f"gitdir: {host / '.git'}\n")

    snapshots = await scan_workspace(workspace)

    assert [s.root for s in snapshots] == ["/workspace/good"]
    assert "secret" not in snapshots[0].unified_diff
    assert "passwd" not in snapshots[0].unified_diff


# -- what a repository's configuration names never runs on the host ---------------------


def planted(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """(workspace, app, lib, host): ``app`` records the repository ``lib`` inside
    it and shows it inline (``diff.submodule=diff``: diffing ``app`` runs git in
    ``lib`` with lib's own configuration); both have a changed file. ``host`` is
    an empty directory outside the workspace for commands to leave markers in.
    App's files use the filter and diff drivers ``x``, lib's ``y``."""
    host = tmp_path / "host"
    host.mkdir()
    workspace = tmp_path / "ws"
    app = make_repo(
        workspace / "app", {"a.txt": "a\n", ".gitattributes": "a.txt filter=x diff=x\n"}
    )
    lib = make_repo(app / "lib", {"b.txt": "b\n", ".gitattributes": "b.txt filter=y diff=y\n"})
    git(app, "add", "lib")
    git(app, "commit", "-q", "-m", "record lib")
    git(app, "config", "diff.submodule", "diff")
    (app / "a.txt").write_text("changed a\n")
    (lib / "b.txt").write_text("changed b\n")
    return workspace, app, lib, host


DRIVERS = {"app": "x", "lib": "y"}


def plant(repo: Path, key: str, command: str) -> None:
    git(repo, "config", key, command)


def markers(host: Path, workspace: Path) -> list[str]:
    """What the planted commands left: anything in ``host``, or a ``ran-*`` file
    in the workspace (mounted read-only for git, so not even there)."""
    left = sorted(os.listdir(host))
    return left + sorted(str(p.relative_to(workspace)) for p in workspace.rglob("ran-*"))


def assert_still_scanned(snapshots: list[RepoSnapshot]) -> None:
    roots = {s.root: s for s in snapshots}
    assert set(roots) == {"/workspace/app", "/workspace/app/lib"}
    assert "+changed b" in roots["/workspace/app/lib"].unified_diff


async def test_fsmonitor_commands_do_not_run_on_the_host(
    tmp_path: Path, scanner: GitScanner
) -> None:
    workspace, app, lib, host = planted(tmp_path)
    for repo in (app, lib):
        plant(repo, "core.fsmonitor", f"touch {host}/fsmonitor-{repo.name} ran-fsmonitor; false")

    snapshots = await scanner.scan_workspace(workspace)

    assert markers(host, workspace) == []
    assert_still_scanned(snapshots)


async def test_filter_commands_do_not_run_on_the_host(tmp_path: Path, scanner: GitScanner) -> None:
    workspace, app, lib, host = planted(tmp_path)
    for repo in (app, lib):
        driver = DRIVERS[repo.name]
        plant(repo, f"filter.{driver}.clean", f"touch {host}/clean-{repo.name} ran-clean; cat")
        plant(repo, f"filter.{driver}.required", "true")

    snapshots = await scanner.scan_workspace(workspace)

    assert markers(host, workspace) == []
    assert_still_scanned(snapshots)
    assert "+changed a" in snapshots[0].unified_diff


async def test_external_diff_and_textconv_commands_do_not_run_on_the_host(
    tmp_path: Path, scanner: GitScanner
) -> None:
    workspace, app, lib, host = planted(tmp_path)
    for repo in (app, lib):
        plant(repo, "diff.external", f"touch {host}/external-{repo.name} ran-external; false")
        driver = DRIVERS[repo.name]
        plant(repo, f"diff.{driver}.command", f"touch {host}/driver-{repo.name} ran-driver; false")
        plant(
            repo, f"diff.{driver}.textconv", f"touch {host}/textconv-{repo.name} ran-textconv; cat"
        )

    snapshots = await scanner.scan_workspace(workspace)

    assert markers(host, workspace) == []
    assert_still_scanned(snapshots)


async def test_without_a_usable_sandbox_git_does_not_run_at_all(tmp_path: Path) -> None:
    workspace, app, lib, host = planted(tmp_path)
    plant(lib, "filter.y.clean", f"touch {host}/clean; cat")
    unusable = GitScanner(Sandbox(bwrap=str(tmp_path / "no-such-bwrap")))

    assert "bubblewrap" in (await unusable.unavailable() or "")
    with pytest.raises(GitScanUnavailable, match="only in the sandbox"):
        await unusable.scan_workspace(workspace)
    with pytest.raises(GitScanUnavailable):
        await unusable.scan_repo(app, workspace)
    assert markers(host, workspace) == []


async def test_sandbox_none_scans_on_the_host(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    repo = make_repo(workspace / "app", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("on the host\n")
    (repo / "new.txt").write_text("new\n")
    unsandboxed = GitScanner(Sandbox(SandboxSettings(mode="none")))

    [snapshot] = await unsandboxed.scan_workspace(workspace)

    assert snapshot.root == "/workspace/app"
    assert [f.path for f in diff_files(snapshot.unified_diff)] == ["a.txt", "new.txt"]
    assert "+on the host" in snapshot.unified_diff


async def test_a_git_that_hangs_is_killed_and_its_repository_left_out(tmp_path: Path) -> None:
    marker = sleep_marker()
    workspace = tmp_path / "ws"
    make_repo(workspace / "good", {"g.txt": "g\n"})
    stuck = make_repo(workspace / "stuck", {"a.txt": "a\n", ".gitattributes": "a.txt filter=x\n"})
    plant(stuck, "filter.x.clean", f"sleep {marker}")
    (stuck / "a.txt").write_text("changed\n")
    impatient = GitScanner(Sandbox(), timeout_s=1.0)

    scan = asyncio.create_task(impatient.scan_workspace(workspace))
    await started(marker)
    snapshots = await asyncio.wait_for(scan, WAIT_S)

    assert [s.root for s in snapshots] == ["/workspace/good"]
    for _ in range(int(WAIT_S / 0.02)):  # the sandbox died with the killed scan
        if not host_pids(marker):
            break
        await asyncio.sleep(0.02)
    assert host_pids(marker) == []


async def test_huge_diff_is_cut_at_a_file_boundary_with_full_counts(tmp_path: Path) -> None:
    lines = 40_000
    repo = make_repo(tmp_path / "repo", {"one.txt": "old\n", "two.txt": "old\n"})
    body = "".join(f"line {i:06d} of a large generated file, padded\n" for i in range(lines))
    (repo / "one.txt").write_text(body)
    (repo / "two.txt").write_text(body)
    (repo / "untracked.txt").write_text("u\n" * 10)
    assert 2 * len(body) > MAX_DIFF_BYTES > len(body)

    snapshot = await scan_repo(repo)

    encoded = snapshot.unified_diff.encode()
    marker = MARKER.search(snapshot.unified_diff)
    assert marker is not None
    assert snapshot.unified_diff.endswith(marker.group(0) + "\n")
    assert len(encoded) - len(marker.group(0)) - 1 <= MAX_DIFF_BYTES
    assert int(marker.group(1)) > len(body)
    # Cut before the second file: only whole files remain.
    assert diff_files(snapshot.unified_diff) == [
        DiffFile("one.txt", None, "modified", lines, 1),
    ]
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (
        2 * lines + 10,
        2,
        3,
    )


async def test_huge_untracked_file_is_counted_but_left_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("b\n")
    (repo / "big.txt").write_text("x" * 99 + "\n" * 1 + ("y" * 99 + "\n") * 40_000)

    snapshot = await scan_repo(repo)

    marker = MARKER.search(snapshot.unified_diff)
    assert marker is not None
    assert [f.path for f in diff_files(snapshot.unified_diff)] == ["a.txt"]
    assert (snapshot.additions, snapshot.deletions, snapshot.changed_files) == (40_002, 1, 2)


async def test_single_oversized_file_is_cut_at_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_scan, "MAX_DIFF_BYTES", 2_000)
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    (repo / "a.txt").write_text("".join(f"row {i}\n" for i in range(1_000)))

    snapshot = await scan_repo(repo)

    assert MARKER.search(snapshot.unified_diff) is not None
    [only] = diff_files(snapshot.unified_diff)
    assert only.path == "a.txt"
    assert 0 < only.additions < 1_000
    assert (snapshot.additions, snapshot.deletions) == (1_000, 1)
