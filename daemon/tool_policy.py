"""Which tools a chat may use, by its kind and mode (Part B §4.9).

One table instead of checks scattered over the tools: root or sub-agent,
explore or not, plan mode or not. Tools not offered to the model are also
refused if it calls them anyway, with a reason it can read.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_ONLY = frozenset({"read_file", "execute", "process_output"})
FILE_WRITES = frozenset({"write_file", "edit_files"})
TEMPLATES = frozenset({"list_templates", "read_template", "create_workspace"})
PLANNING = frozenset({"propose_plan", "ask_user_question"})
SPAWN = frozenset({"spawn_agent", "spawn_explore_agent"})
ROOT_ONLY = TEMPLATES | PLANNING | SPAWN

# Plan mode: exploration, writing the plan, asking, exploring through sub-agents.
PLAN_MODE_ROOT = READ_ONLY | FILE_WRITES | TEMPLATES | PLANNING | {"spawn_explore_agent"}
# After these the turn ends and the chat waits for the user (plan mode, root).
STOP_AFTER_IN_PLAN_MODE = frozenset({"propose_plan", "ask_user_question"})
# ask_user_question always ends the turn: the answer is the user's next message.
STOP_AFTER = frozenset({"ask_user_question"})


@dataclass(frozen=True)
class ToolPolicy:
    is_root: bool
    explore: bool
    plan_mode: bool

    def allows(self, name: str) -> bool:
        return self.refusal(name) is None

    def refusal(self, name: str) -> str | None:
        """Why the chat may not call ``name``, or None when it may."""
        if self.explore:
            if name in READ_ONLY:
                return None
            return f"{name} is not available to an explore sub-agent: it is read-only"
        if not self.is_root and name in ROOT_ONLY:
            return f"{name} is only available in the root chat, not to sub-agents"
        if self.plan_mode:
            allowed = PLAN_MODE_ROOT if self.is_root else READ_ONLY | FILE_WRITES
            if name not in allowed:
                return (
                    f"{name} is not available in plan mode: explore, write the plan file "
                    "and call propose_plan; implementation starts after plan mode is off"
                )
        return None

    def stops_turn(self, name: str) -> bool:
        """Whether a successful call of ``name`` ends the turn."""
        if name in STOP_AFTER:
            return True
        return self.plan_mode and self.is_root and name in STOP_AFTER_IN_PLAN_MODE
