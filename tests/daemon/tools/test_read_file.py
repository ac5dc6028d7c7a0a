"""read_file: a line window of a text file, capped, refusing binaries and escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.tool_registry import ToolError, ToolRegistry
from daemon.tools import read_file as read_file_module
from daemon.tools.read_file import MAX_TEXT_BYTES, TOOL
from tests.daemon.tools.workspace_turn import FakeTurn

read_file = TOOL.run


async def test_reads_the_whole_file_by_default(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "a.txt").write_text("one\ntwo\nthree")

    result = await read_file({"path": "a.txt"}, turn)

    assert result == {
        "path": "a.txt",
        "content": "one\ntwo\nthree",
        "startLine": 1,
        "endLine": 3,
        "totalLines": 3,
        "truncated": False,
    }


async def test_offset_and_limit_select_lines(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))

    result = await read_file({"path": "n.txt", "offset": 4, "limit": 3}, turn)

    assert result["content"] == "line 4\nline 5\nline 6\n"
    assert (result["startLine"], result["endLine"], result["totalLines"]) == (4, 6, 10)
    assert result["truncated"] is False


async def test_limit_past_the_end_stops_at_the_last_line(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "n.txt").write_text("a\nb\nc\n")
    result = await read_file({"path": "n.txt", "offset": 2, "limit": 100}, turn)
    assert (result["content"], result["endLine"]) == ("b\nc\n", 3)


async def test_offset_past_the_end_is_an_error(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "n.txt").write_text("a\nb\n")
    with pytest.raises(ToolError, match=r"offset 5 is past the end of n\.txt, which has 2 lines"):
        await read_file({"path": "n.txt", "offset": 5}, turn)


async def test_empty_file_reads_as_empty(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "empty.txt").write_text("")
    result = await read_file({"path": "empty.txt"}, turn)
    assert (result["content"], result["totalLines"], result["endLine"]) == ("", 0, 0)


async def test_output_is_capped_at_a_line_boundary(workspace: Path, turn: FakeTurn) -> None:
    line = "x" * 99 + "\n"
    count = MAX_TEXT_BYTES // len(line) + 500
    (workspace / "big.txt").write_text(line * count)

    result = await read_file({"path": "big.txt", "limit": count}, turn)

    assert result["truncated"] is True
    assert len(result["content"]) <= MAX_TEXT_BYTES
    assert result["content"].endswith("\n")
    assert result["endLine"] == len(result["content"]) // len(line) < count
    assert result["totalLines"] == count


async def test_one_huge_line_shows_its_start(
    workspace: Path, turn: FakeTurn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_file_module, "MAX_TEXT_BYTES", 1000)
    (workspace / "min.js").write_text("y" * 5000 + "\nsecond\n")

    result = await read_file({"path": "min.js"}, turn)

    assert result["content"] == "y" * 1000
    assert (result["endLine"], result["totalLines"], result["truncated"]) == (1, 2, True)


async def test_binary_files_are_refused(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ToolError, match=r"logo.png is a binary file \(image/png\)"):
        await read_file({"path": "logo.png"}, turn)


async def test_invalid_utf8_text_is_still_readable(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "latin.txt").write_bytes(b"caf\xe9\n")
    result = await read_file({"path": "latin.txt"}, turn)
    assert result["content"] == "caf\ufffd\n"


async def test_missing_file_and_directory_are_errors(workspace: Path, turn: FakeTurn) -> None:
    (workspace / "dir").mkdir()
    with pytest.raises(ToolError, match=r"nope\.txt does not exist"):
        await read_file({"path": "nope.txt"}, turn)
    with pytest.raises(ToolError, match="dir is a directory"):
        await read_file({"path": "dir"}, turn)


@pytest.mark.parametrize("raw", ["../outside/secret.txt", "link.txt", "linkdir/secret.txt"])
async def test_escapes_are_refused(
    workspace: Path, outside: Path, turn: FakeTurn, raw: str
) -> None:
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    (workspace / "linkdir").symlink_to(outside)
    with pytest.raises(ToolError, match="path escapes the workspace"):
        await read_file({"path": raw}, turn)


async def test_bad_arguments_are_explained(workspace: Path, turn: FakeTurn) -> None:
    with pytest.raises(ToolError, match="'path' is required"):
        await read_file({}, turn)
    with pytest.raises(ToolError, match="'offset' must be at least 1; got 0"):
        await read_file({"path": "a.txt", "offset": 0}, turn)
    with pytest.raises(ToolError, match=r"'limit' must be an integer, not the number 2\.5"):
        await read_file({"path": "a.txt", "limit": 2.5}, turn)


async def test_the_model_reads_refusals_as_tool_errors(turn: FakeTurn) -> None:
    result, is_error = await ToolRegistry([TOOL]).run("read_file", {"path": "/etc/passwd"}, turn)
    assert is_error is True
    assert result["error"].startswith("path escapes the workspace: '/etc/passwd'")
