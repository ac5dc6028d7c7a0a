"""Stored parts and other output columns: NUL and lone surrogates never fail a write.

``storable`` replaces them one character for one, so pieces cleaned apart join
to the whole cleaned; the save hook (``db.models.stored_output``) applies it to
every row written, whoever writes it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from db.models import Chat, ChatMessage, User
from db.parts import Part, TextPart, ToolResultPart, parts_from_json, parts_to_json
from db.raw_sql import fetch
from db.text_rules import storable, storable_text
from db.vocabulary import MessageRole

NOW = datetime(2030, 1, 1, tzinfo=UTC)
R = "\ufffd"


def test_nul_and_lone_surrogates_become_the_replacement_character() -> None:
    assert storable_text("a\x00b\ud800c\udfffd") == f"a{R}b{R}c{R}d"
    # A pair split across two pieces is two lone surrogates: each is replaced.
    assert storable_text("\ud83d\ude00") == R + R


def test_other_text_is_kept_as_it_is() -> None:
    text = "tab\tnew\nline \x01 bell\x07 café 😀 \u202e"
    assert storable_text(text) == text
    assert storable_text("plain") == "plain"


def test_cleaning_pieces_then_joining_equals_cleaning_the_whole() -> None:
    whole = "x\x00y\ud800z\udc00\x00"
    pieces = [whole[i : i + 2] for i in range(0, len(whole), 2)]
    assert "".join(storable_text(p) for p in pieces) == storable_text(whole)


def test_json_values_are_cleaned_at_every_depth_keys_included() -> None:
    value = {"out\x00": ["a\x00", {"b": ("c\ud800",)}], "n": 1, "ok": True, "none": None}
    assert storable(value) == {
        f"out{R}": [f"a{R}", {"b": [f"c{R}"]}],
        "n": 1,
        "ok": True,
        "none": None,
    }


async def _chat() -> Chat:
    owner = await User.create(username=f"p{uuid.uuid4().hex[:8]}", password_hash="x")
    chat_id = uuid.uuid4()
    return await Chat.create(id=chat_id, owner=owner, root_id=chat_id, title="t", updated_at=NOW)


async def test_a_message_with_nul_in_its_parts_is_stored_with_the_replacement(app) -> None:
    chat = await _chat()
    parts: list[Part] = [
        TextPart("say a\x00b"),
        ToolResultPart("call_1", "execute", {"stdout": "x\x00y\udc80", "k\x00": 1}),
    ]
    message = await ChatMessage.create(chat=chat, role=MessageRole.TOOL, parts=parts_to_json(parts))

    stored = parts_from_json((await ChatMessage.get(id=message.id)).parts)
    assert stored == [
        TextPart(f"say a{R}b"),
        ToolResultPart("call_1", "execute", {"stdout": f"x{R}y{R}", f"k{R}": 1}),
    ]
    assert parts_from_json(message.parts) == stored  # the saved instance is the stored row
    (row,) = await fetch("SELECT parts::text AS raw FROM chat_messages WHERE id = $1", message.id)
    assert "\\u0000" not in row["raw"]


async def test_a_last_error_with_nul_is_saved_with_the_replacement(app) -> None:
    chat = await _chat()
    chat.last_error = {"kind": "generic", "message": "bad\x00body", "detail": "\ud800"}
    chat.title = "a\x00title"
    await chat.save(update_fields=["last_error", "title"])

    stored = await Chat.get(id=chat.id)
    assert stored.last_error == {"kind": "generic", "message": f"bad{R}body", "detail": R}
    assert stored.title == f"a{R}title"
