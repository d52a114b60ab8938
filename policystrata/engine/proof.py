"""Proof trees for derived atoms: minimal height, deterministic, JSON round-trip.

Node kinds:

* ``rule`` — a rule step: rule id, file:line, rendered ``@message``, bindings, premises (one per
  body literal, in source order);
* ``fact`` — a given fact with its provenance (``policy.yaml:23``, a SQL span, ...);
* ``absent`` — a negated premise, true by the closed world, with a one-level ``why_not``;
* ``builtin`` — a comparison, with its values.

The proof of an atom has minimal height (leaves have height 0) and is the first such proof with
rules in file order and candidate tuples in sorted order (iterative deepening with memoized
exact heights).

>>> from policystrata.engine import Engine, parse_program
>>> from policystrata.facts import Fact, FactSet, Provenance
>>> prog = parse_program('''
... .decl edge(a, b)
... @message "{X} reaches {Y}"
... reach(X, Y) :- edge(X, Y).
... reach(X, Y) :- reach(X, Z), edge(Z, Y), !blocked(Y).
... blocked(X) :- edge(X, X).
... ''', source="demo.dl")
>>> facts = FactSet()
>>> _ = facts.add("edge", "a", "b", prov=Provenance("graph.yaml", line=3))
>>> _ = facts.add("edge", "b", "c", prov=Provenance("graph.yaml", line=4))
>>> proof = Engine(prog, facts).evaluate(FactSet()).prove(Fact("reach", ("a", "c")))
>>> [n.kind for n in proof.walk()]
['rule', 'rule', 'fact', 'fact', 'absent']
>>> proof.premises[0].message
'a reaches b'
>>> sorted(str(f) for f in proof.supporting_facts())
['edge("a", "b")', 'edge("b", "c")']
>>> ProofNode.from_json(proof.to_json()) == proof
True
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Rule, Var
from policystrata.engine.backend import compare
from policystrata.engine.checker import compile_order
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


def _args_key(args: tuple[Arg, ...]) -> tuple[Any, ...]:
    return tuple(("_", None) if a is WILDCARD else (type(a).__name__, a) for a in args)


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


_UNBOUND = object()


class Prover:
    """Builds proofs over one :class:`~policystrata.engine.engine.Result`."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.program = result.program
        self.exact: dict[Fact, int] = {}
        self.lower: dict[Fact, int] = {}
        self.built: dict[Fact, ProofNode] = {}
        if len(self.program.proof_order) != len(self.program.rules):
            self.program.proof_order = {r.index: compile_order(r, {}) for r in self.program.rules}
        self.order = self.program.proof_order
        self.limit = sum(len(v) for v in result._derived_rows.values()) + 1
        self._index: dict[tuple[str, int], dict[tuple[type, Any], list[tuple[Const, ...]]]] = {}

    # ---- matching -----------------------------------------------------------------------------

    def _value(self, t: Var | ConstTerm, env: dict[Var, Const]) -> Any:
        if isinstance(t, ConstTerm):
            return t.value
        return env.get(t, _UNBOUND)

    def _head_env(self, rule: Rule, args: tuple[Arg, ...]) -> dict[Var, Const] | None:
        env: dict[Var, Const] = {}
        for t, a in zip(rule.head.args, args, strict=True):
            if a is WILDCARD:
                continue
            if isinstance(t, ConstTerm):
                if not _same(t.value, a):
                    return None
            elif t in env:
                if not _same(env[t], a):
                    return None
            else:
                env[t] = a  # type: ignore[assignment]
        return env

    def _solve(
        self, rule: Rule, order: tuple[int, ...], k: int, env: dict[Var, Const], d: int | None
    ) -> Iterator[dict[Var, Const]]:
        """Bindings satisfying body literals order[k:], premises of height <= d-1 (if d)."""
        if k == len(order):
            yield env
            return
        lit = rule.body[order[k]]
        if isinstance(lit, Positive):
            pattern = [self._value(t, env) for t in lit.atom.args]
            for row in self._candidates(lit.atom.pred, pattern):
                new = self._match(lit.atom.args, pattern, row, env)
                if new is None:
                    continue
                if d is not None and self.min_height(Fact(lit.atom.pred, row), d - 1) is None:
                    continue
                yield from self._solve(rule, order, k + 1, new, d)
        elif isinstance(lit, Negative):
            if not self._exists(lit, env):
                yield from self._solve(rule, order, k + 1, env, d)
        else:
            left, right = self._value(lit.left, env), self._value(lit.right, env)
            if lit.op == "=" and (left is _UNBOUND) != (right is _UNBOUND):
                var = lit.left if left is _UNBOUND else lit.right
                assert isinstance(var, Var)
                yield from self._solve(
                    rule, order, k + 1, {**env, var: right if left is _UNBOUND else left}, d
                )
            elif left is not _UNBOUND and right is not _UNBOUND and compare(left, lit.op, right):
                yield from self._solve(rule, order, k + 1, env, d)

    def _candidates(self, pred: str, pattern: list[Any]) -> list[tuple[Const, ...]]:
        """The atoms of ``pred`` (sorted) that can match ``pattern``: those with the value of
        its first bound position there (same relative order as in the full sorted list)."""
        for pos, p in enumerate(pattern):
            if p is not _UNBOUND:
                index = self._index.get((pred, pos))
                if index is None:
                    index = {}
                    for row in self.result._atoms_view(pred):
                        index.setdefault((type(row[pos]), row[pos]), []).append(row)
                    self._index[(pred, pos)] = index
                return index.get((type(p), p), [])
        return self.result._atoms_view(pred)

    @staticmethod
    def _match(
        terms: tuple[Var | ConstTerm, ...],
        pattern: list[Any],
        row: tuple[Const, ...],
        env: dict[Var, Const],
    ) -> dict[Var, Const] | None:
        new: dict[Var, Const] | None = None
        for t, p, v in zip(terms, pattern, row, strict=True):
            if p is _UNBOUND:
                assert isinstance(t, Var)
                cur = new if new is not None else env
                if t in cur:
                    if not _same(cur[t], v):
                        return None
                    continue
                if new is None:
                    new = dict(env)
                new[t] = v
            elif not _same(p, v):
                return None
        return new if new is not None else env

    def _exists(self, lit: Negative, env: dict[Var, Const]) -> bool:
        args = tuple(
            WILDCARD if (isinstance(t, Var) and t not in env) else self._value(t, env)
            for t in lit.atom.args
        )
        return self._any_match(lit.atom.pred, args)

    def _any_match(self, pred: str, args: tuple[Arg, ...]) -> bool:
        if all(a is not WILDCARD for a in args):
            return Fact(pred, args) in self.result  # type: ignore[arg-type]
        return any(
            all(a is WILDCARD or _same(a, v) for a, v in zip(args, row, strict=True))
            for row in self.result._atoms_view(pred)
        )

    # ---- heights ------------------------------------------------------------------------------

    def min_height(self, fact: Fact, limit: int) -> int | None:
        """The exact minimal proof height of ``fact`` if it is <= limit, else None."""
        if self.result.is_base(fact):
            return 0
        h = self.exact.get(fact)
        if h is not None:
            return h if h <= limit else None
        if fact not in self.result:
            return None
        for d in range(self.lower.get(fact, 1), limit + 1):
            if self._instance(fact, d) is not None:
                self.exact[fact] = d
                return d
            self.lower[fact] = d + 1
        return None

    def _instance(self, fact: Fact, d: int) -> tuple[Rule, dict[Var, Const]] | None:
        for rule in self.program.rules_for(fact.pred):
            env = self._head_env(rule, fact.args)
            if env is None:
                continue
            for sol in self._solve(rule, self.order[rule.index], 0, env, d):
                return rule, sol
        return None

    # ---- building -----------------------------------------------------------------------------

    def prove(self, fact: Fact) -> ProofNode:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 20000))
        try:
            if fact not in self.result:
                raise KeyError(f"{fact} is not in the model; nothing to prove")
            if self.min_height(fact, self.limit) is None:  # pragma: no cover - model says it holds
                raise KeyError(f"{fact} holds but no proof was found")
            return self._build(fact)
        finally:
            sys.setrecursionlimit(old)

    def _build(self, fact: Fact) -> ProofNode:
        done = self.built.get(fact)
        if done is not None:
            return done
        if self.result.is_base(fact):
            node = ProofNode(
                "fact", pred=fact.pred, args=fact.args, provenance=self.result.provenance(fact)
            )
            self.built[fact] = node
            return node
        h = self.exact[fact]
        found = self._instance(fact, h)
        assert found is not None
        rule, env = found
        premises: list[ProofNode] = []
        for lit in rule.body:
            if isinstance(lit, Positive):
                row = tuple(self._value(t, env) for t in lit.atom.args)
                premises.append(self._build(Fact(lit.atom.pred, row)))
            elif isinstance(lit, Negative):
                args = tuple(
                    WILDCARD if (isinstance(t, Var) and t not in env) else self._value(t, env)
                    for t in lit.atom.args
                )
                premises.append(
                    ProofNode(
                        "absent",
                        pred=lit.atom.pred,
                        args=args,
                        why_not=self.why_not(lit.atom.pred, args),
                    )
                )
            else:
                assert isinstance(lit, Comparison)
                premises.append(
                    ProofNode(
                        "builtin",
                        op=lit.op,
                        left=self._value(lit.left, env),
                        right=self._value(lit.right, env),
                    )
                )
        bindings = {v.name: env[v] for v in rule.variables() if not v.anon and v in env}
        node = ProofNode(
            "rule",
            pred=fact.pred,
            args=fact.args,
            rule=rule.id,
            file=rule.file,
            line=rule.line,
            message=render_message(rule.message, bindings) if rule.message else None,
            bindings=bindings,
            premises=premises,
        )
        self.built[fact] = node
        return node

    # ---- why not ------------------------------------------------------------------------------

    def why_not(self, pred: str, args: tuple[Arg, ...]) -> list[dict[str, Any]]:
        """For an IDB predicate: per rule, the first body literal that fails (deepest attempt);
        for an EDB predicate: no matching fact."""
        rules = self.program.rules_for(pred)
        if not rules:
            return [{"reason": "no matching fact"}]
        out: list[dict[str, Any]] = []
        for rule in rules:
            entry: dict[str, Any] = {"rule": rule.id, "file": rule.file, "line": rule.line}
            env = self._head_env(rule, args)
            if env is None:
                entry["failed"] = f"head {rule.head} does not match"
                out.append(entry)
                continue
            order = self.order[rule.index]
            best: list[Any] = [-1, env]
            self._deepest(rule, order, 0, env, best)
            k: int = best[0]
            benv: dict[Var, Const] = best[1]
            if k >= len(order):  # pragma: no cover - would mean the atom is derivable
                entry["failed"] = "none (the rule applies)"
            else:
                entry["failed"] = _render_lit(rule.body[order[k]], benv)
                entry["literal"] = order[k]
            out.append(entry)
        return out

    def _deepest(
        self, rule: Rule, order: tuple[int, ...], k: int, env: dict[Var, Const], best: list[Any]
    ) -> None:
        if k > best[0]:
            best[0], best[1] = k, env
        if k == len(order) or best[0] >= len(order):
            return
        for sol in self._solve(rule, (order[k],), 0, env, None):
            self._deepest(rule, order, k + 1, sol, best)
            if best[0] >= len(order):
                return


def _render_lit(lit: Positive | Negative | Comparison, env: dict[Var, Const]) -> str:
    def term(t: Var | ConstTerm) -> str:
        if isinstance(t, Var):
            return render_const(env[t]) if t in env else str(t)
        return str(t)

    if isinstance(lit, Comparison):
        return f"{term(lit.left)} {lit.op} {term(lit.right)}"
    text = f"{lit.atom.pred}({', '.join(term(t) for t in lit.atom.args)})"
    return f"!{text}" if isinstance(lit, Negative) else text
