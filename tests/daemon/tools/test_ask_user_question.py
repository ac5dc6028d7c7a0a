"""``ask_user_question``: one or more questions of 2-4 options each, normalised."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.tool_registry import ToolError
from daemon.tools.ask_user_question import QUESTIONS_MAX, TEXT_MAX, TOOL
from tests.daemon.tools.workspace_turn import FakeTurn


def options(count: int) -> list[dict[str, Any]]:
    return [{"label": f"Option {n}"} for n in range(1, count + 1)]


def question(**fields: Any) -> dict[str, Any]:
    return {"question": "Which database?", "options": options(2), **fields}


ask_user_question = TOOL.run


async def ask(turn: FakeTurn, *questions: Any) -> dict[str, Any]:
    result: dict[str, Any] = await ask_user_question({"questions": list(questions)}, turn)
    return result


async def test_questions_come_back_normalised(turn: FakeTurn) -> None:
    result = await ask(
        turn,
        {
            "header": " Storage ",
            "question": "  Which database?  ",
            "options": [
                {"label": " PostgreSQL ", "description": "What we run today."},
                {"label": "SQLite"},
            ],
        },
        question(question="Ship it?", options=options(4)),
    )
    assert result == {
        "questions": [
            {
                "header": "Storage",
                "question": "Which database?",
                "options": [
                    {"label": "PostgreSQL", "description": "What we run today."},
                    {"label": "SQLite", "description": ""},
                ],
            },
            {
                "header": "",
                "question": "Ship it?",
                "options": [{"label": f"Option {n}", "description": ""} for n in range(1, 5)],
            },
        ]
    }


@pytest.mark.parametrize("count", [2, 3, 4])
async def test_two_to_four_options_are_accepted(turn: FakeTurn, count: int) -> None:
    result = await ask(turn, question(options=options(count)))
    assert len(result["questions"][0]["options"]) == count


@pytest.mark.parametrize("count", [0, 1, 5])
async def test_fewer_than_two_or_more_than_four_options_are_refused(
    turn: FakeTurn, count: int
) -> None:
    with pytest.raises(ToolError, match=r"'questions\[0\]\.options' must hold 2 to 4 items"):
        await ask(turn, question(options=options(count)))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({}, "argument 'questions' is required"),
        ({"questions": []}, "argument 'questions' must hold 1 to 10 items, not 0"),
        ({"questions": "Which one?"}, "argument 'questions' must be an array, not a string"),
        (
            {"questions": [question()] * (QUESTIONS_MAX + 1)},
            f"'questions' must hold 1 to {QUESTIONS_MAX} items, not {QUESTIONS_MAX + 1}",
        ),
        ({"questions": ["Which one?"]}, r"'questions\[0\]' must be an object, not a string"),
        ({"questions": [question(options="a, b")]}, r"'questions\[0\]\.options' must be an array"),
        ({"questions": [question(question="  ")]}, r"'questions\[0\]\.question' must not be empty"),
        ({"questions": [question(question=None)]}, r"'questions\[0\]\.question' is required"),
        ({"questions": [question(header=7)]}, r"'questions\[0\]\.header' must be a string"),
        (
            {"questions": [question(), question(options=["a", "b"])]},
            r"'questions\[1\]\.options\[0\]' must be an object, not a string",
        ),
        (
            {"questions": [question(options=[{"label": "a"}, {"label": ""}])]},
            r"'questions\[0\]\.options\[1\]\.label' must not be empty",
        ),
        (
            {"questions": [question(options=[{"label": "a"}, {"description": "b"}])]},
            r"'questions\[0\]\.options\[1\]\.label' is required",
        ),
        (
            {"questions": [question(question="?" * (TEXT_MAX + 1))]},
            f"'questions\\[0\\]\\.question' is longer than {TEXT_MAX} characters",
        ),
        (
            {"questions": [question(options=[{"label": "a", "value": 1}, {"label": "b"}])]},
            r"unknown argument 'questions\[0\]\.options\[0\]\.value' "
            r"\(allowed here: label, description\)",
        ),
    ],
    ids=[
        "missing",
        "empty",
        "not-a-list",
        "too-many",
        "question-not-object",
        "options-not-list",
        "blank-question",
        "no-question",
        "header-not-text",
        "option-not-object",
        "blank-label",
        "no-label",
        "too-long",
        "unknown-field",
    ],
)
async def test_malformed_questions_are_refused(
    turn: FakeTurn, args: dict[str, Any], error: str
) -> None:
    with pytest.raises(ToolError, match=error):
        await ask_user_question(args, turn)


def test_the_schema_states_the_limits() -> None:
    items = TOOL.spec.parameters["properties"]["questions"]
    assert (items["minItems"], items["maxItems"]) == (1, QUESTIONS_MAX)
    option_list = items["items"]["properties"]["options"]
    assert (option_list["minItems"], option_list["maxItems"]) == (2, 4)
