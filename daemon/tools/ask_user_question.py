"""``ask_user_question``: put choices in front of the user and end the turn.

The questions are the tool's result (clients render them as choices); the
user's answer arrives as their next message, which starts the next turn.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from daemon.tool_registry import Tool, ToolArgs
from daemon.tools.turn_context import ToolTurn

QUESTIONS_MAX = 10
OPTIONS_MIN, OPTIONS_MAX = 2, 4
TEXT_MAX = 1000

DESCRIPTION = (
    "Ask the user one or more multiple-choice questions when a decision is theirs. "
    "Each question has 2-4 options. Your turn ends here; their answer arrives as "
    "their next message."
)

# What clients show: trimmed, bounded, and (where required) not blank.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TEXT_MAX)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=TEXT_MAX)]


class Option(ToolArgs):
    label: Text
    description: OptionalText = ""


class Question(ToolArgs):
    header: OptionalText = Field("", description="A short label.")
    question: Text
    options: list[Option] = Field(min_length=OPTIONS_MIN, max_length=OPTIONS_MAX)


class AskUserQuestionArgs(ToolArgs):
    questions: list[Question] = Field(min_length=1, max_length=QUESTIONS_MAX)


async def ask_user_question(args: AskUserQuestionArgs, turn: ToolTurn) -> dict[str, Any]:
    return args.model_dump(mode="json")


TOOL = Tool.declare(
    "ask_user_question", DESCRIPTION, AskUserQuestionArgs, ask_user_question, timeout_s=5.0
)
