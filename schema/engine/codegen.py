"""Python source from query plans, so a response is built without generic machinery.

One function per selection set builds its response dict in a single
expression: attribute reads inlined, leaves already in wire form passed
through, lists as comprehensions, union members picked by a per-class table.
Every generated name says what it serves: ``Query_chat__Chat_3`` builds a Chat
reached through ``Query.chat``, ``complete_Chat_messages_7`` completes that
resolver's value, ``leaf_Message_createdAt_16`` serializes a leaf (tracebacks
and ``agentgql explain-query`` read as the document does).
A resolver that raises leaves None and a recorded failure, located and
nulled once the run is over (``schema.engine.field_errors``). A null in a non-null
position or an unresolvable abstract type raises ``Fallback``.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from inspect import isawaitable
from operator import attrgetter
from typing import Any

from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, is_abstract_type, is_leaf_type

from schema.engine.plan import Completer, Fallback, FieldPlan
from schema.engine.run import Run
from schema.engine.strawberry_compat import DEFINITION, isoformat

_PLAIN = {"String": str, "ID": str, "Int": int, "Boolean": bool, "Float": float}


def _null() -> Any:
    raise Fallback("null in non-null field")


def _leaf(out_type: Any, non_null: bool) -> Completer:
    """Leaves skip ``serialize`` when the value already is the wire type."""
    serialize = out_type.serialize
    plain = _PLAIN.get(out_type.name)
    if isinstance(out_type, GraphQLEnumType):
        names = {v.value: name for name, v in out_type.values.items()}

        def enum(run: Run, value: Any) -> Any:
            if value is None:
                if non_null:
                    raise Fallback("null in non-null field")
                return None
            name = names.get(value)
            return name if name is not None else serialize(value)

        return enum

    def leaf(run: Run, value: Any) -> Any:
        if type(value) is plain:
            return value
        if value is None:
            if non_null:
                raise Fallback("null in non-null field")
            return None
        return serialize(value)

    return leaf


class Codegen:
    """Python source for a tree of plans: one function per selection set."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_null": _null, "isawaitable": isawaitable}
        self.functions: list[str] = []
        self.finders: list[tuple[str, dict[type, Any], list[tuple[Any, str]]]] = []
        self.completers: list[tuple[FieldPlan, str]] = []
        self.count = 0
        self.source = ""

    def fresh(self, prefix: str, plan: FieldPlan | None = None) -> str:
        """A new name of the generated module: ``prefix``, the field it serves
        (``Type_field``) and a number."""
        self.count += 1
        field = f"_{_field_label(plan)}" if plan is not None else ""
        return f"{prefix}{field}_{self.count}"

    def name(self, prefix: str, value: Any, plan: FieldPlan | None = None) -> str:
        """A fresh global name of the generated module, bound to ``value``."""
        name = self.fresh(prefix, plan)
        self.namespace[name] = value
        return name

    def build(self, plans: list[FieldPlan], type_name: str) -> Callable[[Run, Any], Any]:
        """The root function; resolver plans get their generated completers."""
        root = self.object(plans, type_name)
        source = self.source = "\n\n".join(self.functions)
        exec(compile(source, "<compiled query>", "exec"), self.namespace)
        for find, by_class, choices in self.finders:
            members = [(check, self.namespace[fn]) for check, fn in choices]
            self.namespace[find] = _finder(by_class, members)
        for plan, completer in self.completers:
            plan.complete = self.namespace[completer]
        return self.namespace[root]  # type: ignore[no-any-return]

    def object(self, plans: list[FieldPlan], type_name: str, via: FieldPlan | None = None) -> str:
        """``def Type(run, v)``: the response dict of object ``v`` for ``plans``
        (``via``: the field whose value it is, in the name)."""
        name = self.fresh(f"{_field_label(via)}__{type_name}" if via is not None else type_name)
        if all(plan.definition is None or plan.getter is not None for plan in plans):
            items = ", ".join(f"{plan.key!r}: {self.read(plan, type_name)}" for plan in plans)
            self.functions.append(f"def {name}(run, v):\n    return {{{items}}}")
            return name
        lines = [f"def {name}(run, v):", "    out = {}"]
        for plan in plans:
            key = repr(plan.key)
            if plan.definition is None or plan.getter is not None:
                lines.append(f"    out[{key}] = {self.read(plan, type_name)}")
                continue
            completer = self.completer(plan)
            held = self.name("plan", plan, plan)
            lines += [
                "    try:",
                f"        r = {self.call(plan)}",
                "    except Exception as e:",
                f"        out[{key}] = None",
                f"        run.fail(e, out, {held})",
                "    else:",
                "        if isawaitable(r):",
                f"            out[{key}] = None",
                f"            run.pending.append((out, {held}, r))",
                "        else:",
                f"            out[{key}] = {completer}(run, r)",
            ]
        lines.append("    return out")
        self.functions.append("\n".join(lines))
        return name

    def read(self, plan: FieldPlan, type_name: str) -> str:
        """The completed value of a field read without a resolver call."""
        if plan.definition is None:
            return repr(type_name)
        assert plan.getter is not None
        kind, target = plan.getter
        if kind == "attr" and target.isidentifier() and not keyword.iskeyword(target):
            value = f"v.{target}"
        elif kind == "attr":
            value = f"{self.name('get', attrgetter(target), plan)}(v)"
        else:
            fn = self.name("get", target, plan)
            value = f"{fn}(v)" if kind == "root" else f"{fn}(v, v)"
        return self.complete(plan.out_type, plan, "x", f"(x := {value})", 0)

    def completer(self, plan: FieldPlan) -> str:
        """``def c(run, x)``: completes a resolver's value (also once awaited)."""
        name = self.fresh("complete", plan)
        body = self.complete(plan.out_type, plan, "x", "x", 0)
        self.functions.append(f"def {name}(run, x):\n    return {body}")
        self.completers.append((plan, name))
        return name

    def call(self, plan: FieldPlan) -> str:
        """The resolver call for ``plan`` on the object ``v``."""
        if plan.constant_args is None:
            args = [f"**run.args({self.name('plan', plan, plan)})"]
        elif plan.constant_args:
            args = [f"**{self.name('args', plan.constant_args, plan)}"]
        else:
            args = []
        direct = plan.direct
        if direct is None:
            resolve = self.name("resolve", plan.definition.resolve, plan)
            return f"{resolve}({', '.join(['v', 'run.info', *args])})"
        params = ["v"] if direct.pass_self else []
        params += [f"{root}=v" for root in direct.root_names]
        if direct.info_name is not None:
            info = self.name("info_class", direct.info_class)
            strawberry_field = self.name("field", direct.strawberry_field, plan)
            params.append(
                f"{direct.info_name}={info}(_raw_info=run.info, _field={strawberry_field})"
            )
        return f"{self.name('resolve', direct.fn, plan)}({', '.join(params + args)})"

    def complete(self, out_type: Any, plan: FieldPlan, value: str, first: str, depth: int) -> str:
        """An expression completing ``value`` of ``out_type``; ``first`` is what
        its first use evaluates (``(x := <read>)`` binds it)."""
        non_null = isinstance(out_type, GraphQLNonNull)
        inner = out_type.of_type if non_null else out_type
        if is_leaf_type(inner):
            return self.leaf(inner, non_null, value, first, plan)
        if isinstance(inner, GraphQLList):
            item = f"y{depth}"
            each = self.complete(inner.of_type, plan, item, item, depth + 1)
            body = f"[{each} for {item} in {value}]"
        elif is_abstract_type(inner) or len(plan.possible) > 1:
            table, find = self.dispatcher(plan)
            body = f"({table}.get(type({value})) or {find}({value}))(run, {value})"
        else:
            body = f"{self.object(plan.children[inner.name], inner.name, plan)}(run, {value})"
        missing = "_null()" if non_null else "None"
        return f"({missing} if {first} is None else {body})"

    def leaf(self, leaf_type: Any, non_null: bool, value: str, first: str, plan: FieldPlan) -> str:
        """Values already in wire form pass; the rest go through ``serialize``."""
        closure = self.name("leaf", _leaf(leaf_type, non_null), plan)
        if isinstance(leaf_type, GraphQLEnumType):
            names = {v.value: name for name, v in leaf_type.values.items()}
            table = self.name("enum", names, plan)
            return f"({table}.get({first}) or {closure}(run, {value}))"
        plain = _PLAIN.get(leaf_type.name)
        if plain is not None:
            return f"({value} if type({first}) is {plain.__name__} else {closure}(run, {value}))"
        scalar = (leaf_type.extensions or {}).get(DEFINITION)
        origin = getattr(scalar, "origin", None)
        if leaf_type.serialize is isoformat and isinstance(origin, type):
            # Dates and times: ``serialize`` is ``value.isoformat()`` for the exact type.
            exact = self.name("type", origin, plan)
            return f"({value}.isoformat() if type({first}) is {exact} else {closure}(run, {value}))"
        return f"{closure}(run, {first})"

    def dispatcher(self, plan: FieldPlan) -> tuple[str, str]:
        """A class → object-function table for a union or interface position,
        and the function that fills it on a class's first appearance."""
        by_class: dict[type, Any] = {}
        table = self.name("members", by_class, plan)
        find = self.name("find", None, plan)
        choices = [
            (t.is_type_of, self.object(plan.children[t.name], t.name, plan)) for t in plan.possible
        ]
        self.finders.append((find, by_class, choices))
        return table, find


def _field_label(plan: FieldPlan) -> str:
    """``Type_field`` of a plan (``Type___typename`` for the type name)."""
    owner = plan.parent_type.name if plan.parent_type is not None else "Query"
    return f"{owner}_{plan.node.name.value}"


def _finder(
    by_class: dict[type, Any], choices: list[tuple[Any, Callable[..., Any]]]
) -> Callable[[Any], Any]:
    """Our is_type_of checks are isinstance checks: decide once per Python class."""

    def find(value: Any) -> Any:
        for check, fn in choices:
            if check is not None and check(value, None):
                by_class[type(value)] = fn
                return fn
        raise Fallback("unresolved abstract type")

    return find
