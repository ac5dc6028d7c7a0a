"""Which log format a server writes when none is configured."""

from __future__ import annotations

import io
import os
import pty

import pytest

from server.logs import log_format_for


def test_auto_is_json_for_a_pipe_or_file() -> None:
    assert log_format_for("auto", io.StringIO()) == "json"


def test_auto_is_text_at_a_terminal() -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert log_format_for("auto", terminal) == "text"
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize("chosen", ["json", "text"])
def test_an_explicit_format_wins(chosen: str) -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert log_format_for(chosen, terminal) == chosen
    finally:
        os.close(leader)
        os.close(follower)
