"""``agentgql explain-query FILE``: a document's compiled plan and generated Python,
with functions named after the type and field they serve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.cli import main

PAGE = """query Page($id: ID!) {
  chat(id: $id) { title messages(last: 2) { nodes { id parts { ... on TextPart { text } } } } }
}"""


def test_the_plan_and_the_source_are_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "page.graphql"
    document.write_text(PAGE)
    assert main(["explain-query", str(document)]) == 0
    out = capsys.readouterr().out
    plan, source = out.split("# generated source\n")
    assert plan.startswith("# plan of query Page\n")
    assert "chat: Chat — resolver Query.chat called directly, arguments from variables" in plan
    assert "messages: MessageConnection! — resolver Chat.messages" in plan
    assert "... on TextPart" in plan
    assert "def Query_1(run, v):" in source
    assert "def Query_chat__Chat_" in source
    assert "def complete_Chat_messages_" in source
    assert not re.search(r"\b[oLcRPAGN]\d+\b", source), "anonymous generated names"
    compile(source, "<explained>", "exec")  # what runs is valid Python as printed


def test_a_mutation_is_said_to_be_left_to_graphql_core(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = tmp_path / "logout.graphql"
    document.write_text("mutation { logout }")
    assert main(["explain-query", str(document)]) == 0
    assert capsys.readouterr().out == "not compiled, left to graphql-core: not a single query\n"


def test_an_invalid_document_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "bad.graphql"
    document.write_text("{ nope }")
    assert main(["explain-query", str(document)]) == 1
    assert "invalid: Cannot query field 'nope' on type 'Query'." in capsys.readouterr().err
