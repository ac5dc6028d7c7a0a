"""``ask_user_question``: put choices in front of the user and end the turn.

The questions are the tool's result (clients render them as choices); the
user's answer arrives as their next message, which starts the next turn.
"""

from __future__ import annotations

from typing import Any

from daemon.providers import ToolSpec
from daemon.tool_registry import Tool, ToolError
from daemon.tools.turn_context import ToolTurn

QUESTIONS_MAX = 10
OPTIONS_MIN, OPTIONS_MAX = 2, 4
TEXT_MAX = 1000

SPEC = ToolSpec(
    name="ask_user_question",
    description=(
        "Ask the user one or more multiple-choice questions when a decision is theirs. "
        "Each question has 2-4 options. Your turn ends here; their answer arrives as "
        "their next message."
    ),
    parameters={
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "minItems": 1,
                "maxItems": QUESTIONS_MAX,
                "items": {
                    "type": "object",
                    "properties": {
                        "header": {"type": "string", "description": "A short label."},
                        "question": {"type": "string"},
                        "options": {
                            "type": "array",
                            "minItems": OPTIONS_MIN,
                            "maxItems": OPTIONS_MAX,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "label": {"type": "string"},
                                    "description": {"type": "string"},
                                },
                                "required": ["label"],
                            },
                        },
                    },
                    "required": ["question", "options"],
                },
            }
        },
        "required": ["questions"],
        "additionalProperties": False,
    },
)


def _text(value: Any, where: str, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ToolError(f"{where} must be a non-empty string")
    if len(value) > TEXT_MAX:
        raise ToolError(f"{where} is longer than {TEXT_MAX} characters")
    return value.strip()


def _question(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ToolError(f"{where} must be an object with question and options")
    options = raw.get("options")
    if not isinstance(options, list) or not OPTIONS_MIN <= len(options) <= OPTIONS_MAX:
        raise ToolError(f"{where}.options must hold {OPTIONS_MIN} to {OPTIONS_MAX} choices")
    parsed = []
    for n, option in enumerate(options):
        spot = f"{where}.options[{n}]"
        if not isinstance(option, dict):
            raise ToolError(f"{spot} must be an object with a label")
        parsed.append(
            {
                "label": _text(option.get("label"), f"{spot}.label"),
                "description": _text(option.get("description"), f"{spot}.description", False),
            }
        )
    return {
        "header": _text(raw.get("header"), f"{where}.header", False),
        "question": _text(raw.get("question"), f"{where}.question"),
        "options": parsed,
    }


async def ask_user_question(args: dict[str, Any], turn: ToolTurn) -> dict[str, Any]:
    questions = args.get("questions")
    if not isinstance(questions, list) or not questions:
        raise ToolError("questions must be a non-empty array")
    if len(questions) > QUESTIONS_MAX:
        raise ToolError(f"at most {QUESTIONS_MAX} questions at once")
    return {"questions": [_question(q, f"questions[{n}]") for n, q in enumerate(questions)]}


TOOL = Tool(spec=SPEC, run=ask_user_question, timeout_s=5.0)
