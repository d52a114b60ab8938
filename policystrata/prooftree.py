"""Proof trees: the typed proof a witness carries, and its JSON form.

A proof is a tree of :class:`ProofNode`. Node kinds:

* ``rule`` — a rule step: rule id, file:line, rendered ``@message``, bindings, premises (one per
  body literal, in source order);
* ``fact`` — a given fact with its provenance (``policy.yaml:23``, a SQL span, ...);
* ``absent`` — a negated premise, true by the closed world, with a one-level ``why_not``;
* ``builtin`` — a comparison, with its values.

The engine builds proofs (:mod:`policystrata.engine.proof`); witnesses, findings and every
renderer read them through the methods here, never by walking the JSON by hand.

>>> leaf = ProofNode("fact", pred="sql_reads", args=("c1", "accounts"),
...                  provenance=[Provenance("sql", span=(14, 22))])
>>> step = ProofNode("rule", pred="layer_fault", args=("c1", "accounts"), rule="compiler.x",
...                  premises=[leaf, ProofNode("absent", pred="scoped", args=("c1", WILDCARD))])
>>> top = ProofNode("rule", pred="violation", args=("c1", "accounts"), rule="localize.v",
...                 premises=[step])
>>> top.fault_step().rule, [n.atom_text() for n in top.leaves()]
('compiler.x', ['sql_reads("c1", "accounts")', '!scoped("c1", _)'])
>>> sorted(top.rule_ids()), top.sql_spans()
(['compiler.x', 'localize.v'], [(14, 22)])
>>> ProofNode.from_json(top.to_json()) == top
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from policystrata.facts import Const, Fact, Provenance, render_const


class _Wildcard:
    """An unconstrained argument of an absent atom (from ``_`` in ``!p(X, _)``)."""

    _inst: _Wildcard | None = None

    def __new__(cls) -> _Wildcard:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "_"

    def __str__(self) -> str:
        return "_"


WILDCARD = _Wildcard()
Arg = Const | _Wildcard


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def render_atom(pred: str, args: tuple[Arg, ...]) -> str:
    return f"{pred}({', '.join('_' if a is WILDCARD else render_const(a) for a in args)})"  # type: ignore[arg-type]


def render_message(template: str, bindings: dict[str, Const]) -> str:
    """Fill ``{Var}`` placeholders: strings as written, other constants rendered.

    >>> render_message("{T} has {N} rows", {"T": "accounts", "N": 3})
    'accounts has 3 rows'
    """

    def sub(m: re.Match[str]) -> str:
        v = bindings.get(m.group(1))
        if v is None:
            return m.group(0)
        return v if isinstance(v, str) else render_const(v)

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, template)


def _arg_json(a: Arg) -> Any:
    return {"var": "_"} if a is WILDCARD else a


def _arg_from_json(v: Any) -> Arg:
    if isinstance(v, dict):
        return WILDCARD
    if not isinstance(v, str | int | float | bool):
        raise ValueError(f"not a constant in proof JSON: {v!r}")
    return v


@dataclass(eq=False)
class ProofNode:
    """One node of a proof tree (see the module docstring for the kinds)."""

    kind: str
    pred: str = ""
    args: tuple[Arg, ...] = ()
    rule: str | None = None
    file: str | None = None
    line: int | None = None
    message: str | None = None
    bindings: dict[str, Const] = field(default_factory=dict)
    premises: list[ProofNode] = field(default_factory=list)
    provenance: list[Provenance] = field(default_factory=list)
    why_not: list[dict[str, Any]] = field(default_factory=list)
    op: str | None = None
    left: Const | None = None
    right: Const | None = None

    @property
    def fact(self) -> Fact:
        """The atom of a rule/fact node as a :class:`Fact`."""
        return Fact(self.pred, tuple(self.args))  # type: ignore[arg-type]

    def atom_text(self) -> str:
        if self.kind == "builtin":
            return f"{render_const(self.left)} {self.op} {render_const(self.right)}"  # type: ignore[arg-type]
        text = render_atom(self.pred, self.args)
        return f"!{text}" if self.kind == "absent" else text

    def height(self) -> int:
        return 0 if not self.premises else 1 + max(p.height() for p in self.premises)

    def walk(self) -> Iterator[ProofNode]:
        """Pre-order traversal (node, then premises left to right)."""
        yield self
        for p in self.premises:
            yield from p.walk()

    def leaves(self) -> list[ProofNode]:
        """Nodes without premises: facts, absent and builtin leaves, ground-fact rule steps."""
        return [n for n in self.walk() if not n.premises]

    def supporting_facts(self) -> list[Fact]:
        """The given facts the proof rests on (its fact leaves), deduplicated, sorted."""
        seen = {n.fact for n in self.walk() if n.kind == "fact"}
        return sorted(seen, key=Fact.sort_key)

    def nodes(self, kind: str, pred: str | None = None) -> list[ProofNode]:
        """Every node of ``kind`` (and predicate ``pred``), in pre-order."""
        return [n for n in self.walk() if n.kind == kind and (pred is None or n.pred == pred)]

    def rule_ids(self) -> set[str]:
        """The ids of every rule the proof applies."""
        return {n.rule for n in self.walk() if n.kind == "rule" and n.rule}

    def fault_step(self) -> ProofNode:
        """The ``layer_fault`` step of a ``violation`` proof (the check's own rule), else the
        node itself."""
        if self.pred == "layer_fault":
            return self
        for p in self.premises:
            if p.kind == "rule" and p.pred == "layer_fault":
                return p
        return self

    def sql_spans(self, pred: str | None = None) -> list[tuple[int, int]]:
        """Sorted, distinct SQL spans of the proof's fact leaves (of ``pred`` only, if given)."""
        spans = {
            prov.span
            for n in self.nodes("fact", pred)
            for prov in n.provenance
            if prov.span is not None and (pred is not None or prov.source == "sql")
        }
        return sorted(spans)

    # ---- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Stable JSON form (fixed key order; typed constants kept: 1, 1.0, true, "1")."""
        if self.kind == "builtin":
            return {
                "kind": "builtin",
                "op": self.op,
                "left": self.left,
                "right": self.right,
                "text": self.atom_text(),
            }
        out: dict[str, Any] = {
            "kind": self.kind,
            "atom": {"pred": self.pred, "args": [_arg_json(a) for a in self.args]},
            "text": self.atom_text(),
        }
        if self.kind == "rule":
            out["rule"] = self.rule
            out["file"] = self.file
            out["line"] = self.line
            if self.message is not None:
                out["message"] = self.message
            out["bindings"] = {k: self.bindings[k] for k in sorted(self.bindings)}
            out["premises"] = [p.to_json() for p in self.premises]
        elif self.kind == "fact":
            out["provenance"] = [p.to_json() for p in self.provenance]
        elif self.kind == "absent":
            out["why_not"] = [dict(w) for w in self.why_not]
        return out

    def dumps(self, indent: int | None = None) -> str:
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProofNode:
        kind = data["kind"]
        if kind == "builtin":
            return cls(kind, op=data["op"], left=data["left"], right=data["right"])
        atom = data["atom"]
        node = cls(kind, pred=atom["pred"], args=tuple(_arg_from_json(a) for a in atom["args"]))
        if kind == "rule":
            node.rule = data["rule"]
            node.file = data.get("file")
            node.line = data.get("line")
            node.message = data.get("message")
            node.bindings = dict(data.get("bindings", {}))
            node.premises = [cls.from_json(p) for p in data.get("premises", [])]
        elif kind == "fact":
            node.provenance = [Provenance.from_json(p) for p in data.get("provenance", [])]
        elif kind == "absent":
            node.why_not = [dict(w) for w in data.get("why_not", [])]
        else:
            raise ValueError(f"unknown proof node kind {kind!r}")
        return node

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProofNode) and self.dumps() == other.dumps()

    def __hash__(self) -> int:
        return hash(self.dumps())


_CONST_SCHEMA: dict[str, Any] = {"type": ["string", "integer", "number", "boolean"]}

PROOF_NODE_SCHEMA: dict[str, Any] = {
    "$anchor": "proof_node",
    "title": "ProofNode",
    "type": "object",
    "required": ["kind"],
    "properties": {
        "kind": {"enum": ["rule", "fact", "absent", "builtin"]},
        "atom": {
            "type": "object",
            "required": ["pred", "args"],
            "properties": {
                "pred": {"type": "string"},
                "args": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            _CONST_SCHEMA,
                            {
                                "type": "object",
                                "properties": {"var": {"const": "_"}},
                                "required": ["var"],
                            },
                        ]
                    },
                },
            },
        },
        "text": {"type": "string"},
        "rule": {"type": "string"},
        "file": {"type": ["string", "null"]},
        "line": {"type": ["integer", "null"]},
        "message": {"type": "string"},
        "bindings": {"type": "object", "additionalProperties": _CONST_SCHEMA},
        "premises": {"type": "array", "items": {"$ref": "#proof_node"}},
        "provenance": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["source"],
                "properties": {
                    "source": {"type": "string"},
                    "line": {"type": "integer"},
                    "column": {"type": "integer"},
                    "span": {"type": "array", "items": {"type": "integer"}},
                    "snippet": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
        },
        "why_not": {"type": "array", "items": {"type": "object"}},
        "op": {"enum": ["=", "!=", "<", "<=", ">", ">="]},
        "left": _CONST_SCHEMA,
        "right": _CONST_SCHEMA,
    },
}
"""JSON Schema fragment for one proof node (recursive through ``premises``)."""


def proof_node_schema() -> dict[str, Any]:
    """A copy of :data:`PROOF_NODE_SCHEMA` for embedding into a larger schema."""
    return json.loads(json.dumps(PROOF_NODE_SCHEMA))
