"""Model and command output in stored columns: cleaned as each row is saved.

What a model streams, a command prints, a file holds, a git diff shows or a
provider's error says may contain NUL or lone surrogates, which PostgreSQL
refuses in ``jsonb`` and ``text``. Every save of these columns passes here,
whoever wrote the row, so no such output can fail a write: the characters
become U+FFFD (``db.text_rules.storable``). API input never gets this far with
them: it is refused first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tortoise.models import Model
from tortoise.signals import Signals

from db.models.chat import Chat, ChatMessage
from db.models.workspace import WorkspaceGitSnapshot
from db.text_rules import storable

# The columns each model fills from output rather than from validated input.
OUTPUT_COLUMNS: dict[type[Model], tuple[str, ...]] = {
    ChatMessage: ("parts",),
    Chat: ("last_error", "title"),
    WorkspaceGitSnapshot: ("repositories",),
}


async def _clean_output(
    sender: type[Model], instance: Model, using_db: Any, update_fields: Iterable[str] | None
) -> None:
    written = None if update_fields is None else set(update_fields)
    for name in OUTPUT_COLUMNS[sender]:
        if written is None or name in written:
            setattr(instance, name, storable(getattr(instance, name)))


for _model in OUTPUT_COLUMNS:
    _model.register_listener(Signals.pre_save, _clean_output)
