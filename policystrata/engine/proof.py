"""Building proof trees for derived atoms: minimal height, deterministic.

The tree itself (:class:`~policystrata.prooftree.ProofNode`, its kinds and JSON form) lives in
:mod:`policystrata.prooftree`, low enough for the witness model and every renderer.

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

import sys
import weakref
from collections.abc import Iterator
from typing import Any

from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Rule, Var
from policystrata.engine.backend import compare
from policystrata.engine.checker import compile_order, strongly_connected
from policystrata.engine.engine import tkey
from policystrata.facts import Const, Fact, render_const
from policystrata.prooftree import (
    PROOF_NODE_SCHEMA,
    WILDCARD,
    Arg,
    ProofNode,
    proof_node_schema,
    render_message,
)

__all__ = ["PROOF_NODE_SCHEMA", "WILDCARD", "ProofNode", "Prover", "proof_node_schema"]


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


_UNBOUND = object()


#: id(program) -> (the program, its rule list's stamp, the indexes of the rules on a cycle):
#: computed once per program, not per prover (one prover per case).
_RECURSIVE: dict[int, tuple[Any, tuple[int, int, int], frozenset[int]]] = {}


def _unify(a: Var | ConstTerm, b: Var | ConstTerm) -> bool:
    """Can the two argument terms match the same constant?"""
    if isinstance(a, ConstTerm) and isinstance(b, ConstTerm):
        return _same(a.value, b.value)
    return True


def recursive_rules(program: Any) -> frozenset[int]:
    """The indexes of the rules on a cycle of the graph "a positive body literal of rule r can
    match the head of rule s" (by predicate and head constants; an over-approximation). A
    derived atom none of whose rules is on a cycle can never be a premise of its own proof:
    every atom its proofs rest on comes from rules that cannot reach back to it."""
    rules = program.rules
    stamp = (id(rules), len(rules), id(rules[-1]) if rules else 0)
    got = _RECURSIVE.get(id(program))
    if got is not None and got[0] is program and got[1] == stamp:
        return got[2]
    heads: dict[str, list[Rule]] = {}
    for rule in rules:
        heads.setdefault(rule.head.pred, []).append(rule)
    edges: dict[int, list[int]] = {}
    for rule in rules:
        out: list[int] = []
        for lit in rule.body:
            if isinstance(lit, Positive):
                for other in heads.get(lit.atom.pred, ()):
                    if all(
                        _unify(a, b) for a, b in zip(lit.atom.args, other.head.args, strict=False)
                    ):
                        out.append(other.index)
        edges[rule.index] = out
    cyclic: set[int] = set()
    for comp in strongly_connected(edges, lambda v: edges.get(v, [])):
        if len(comp) > 1 or comp[0] in edges.get(comp[0], ()):
            cyclic.update(comp)
    if len(_RECURSIVE) > 16:
        _RECURSIVE.clear()
    result = frozenset(cyclic)
    _RECURSIVE[id(program)] = (program, stamp, result)
    return result


class Prover:
    """Builds proofs over one :class:`~policystrata.engine.engine.Result`."""

    def __init__(self, result: Any) -> None:
        # a weak reference: the result holds its prover, so a strong one would be a reference
        # cycle keeping every case's model alive until the cyclic GC runs
        self.result: Any = weakref.proxy(result)
        self.program = result.program
        # keyed by (pred, type-exact args): cheaper to build and hash than a Fact
        self.exact: dict[tuple[str, Any], int] = {}
        self.lower: dict[tuple[str, Any], int] = {}
        self.built: dict[tuple[str, Any], ProofNode] = {}
        # the first instance (file order, sorted candidates) of minimal height, when the
        # height was computed directly (see _direct)
        self.first: dict[tuple[str, Any], tuple[Rule, dict[Var, Const]]] = {}
        self.cyclic = recursive_rules(self.program)
        # predicates with no rule on a cycle: every atom's height is computed directly
        self._acyclic: dict[str, bool] = {}
        self._named: dict[int, list[Var]] = {}  # rule index -> its named variables
        self._why: dict[tuple[str, tuple[Any, ...]], list[dict[str, Any]]] = {}
        if len(self.program.proof_order) != len(self.program.rules):
            self.program.proof_order = {r.index: compile_order(r, {}) for r in self.program.rules}
        self.order = self.program.proof_order
        self.limit = sum(map(len, result._derived_rows.values())) + 1
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
            for row, new in self._matching(lit, env):
                if d is not None and self._height(lit.atom.pred, row, d - 1) is None:
                    continue
                yield from self._solve(rule, order, k + 1, new, d)
        else:
            after = self._through(lit, env)
            if after is not None:
                yield from self._solve(rule, order, k + 1, after, d)

    def _matching(
        self, lit: Positive, env: dict[Var, Const]
    ) -> Iterator[tuple[tuple[Const, ...], dict[Var, Const]]]:
        """Each atom of the model (sorted) matching the positive literal under ``env``, with
        the binding it extends ``env`` to."""
        pattern = [self._value(t, env) for t in lit.atom.args]
        for row in self._candidates(lit.atom.pred, pattern):
            new = self._match(lit.atom.args, pattern, row, env)
            if new is not None:
                yield row, new

    def _through(
        self, lit: Negative | Comparison, env: dict[Var, Const]
    ) -> dict[Var, Const] | None:
        """The binding after a negated literal or a comparison (None: it fails there); an
        ``=`` with one side unbound binds that side."""
        if isinstance(lit, Negative):
            return None if self._exists(lit, env) else env
        left, right = self._value(lit.left, env), self._value(lit.right, env)
        if lit.op == "=" and (left is _UNBOUND) != (right is _UNBOUND):
            var = lit.left if left is _UNBOUND else lit.right
            assert isinstance(var, Var)
            return {**env, var: right if left is _UNBOUND else left}
        if left is not _UNBOUND and right is not _UNBOUND and compare(left, lit.op, right):
            return env
        return None

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
        return self._height(fact.pred, fact.args, limit)

    def _height(self, pred: str, args: tuple[Const, ...], limit: int) -> int | None:
        key = (pred, tkey(args))
        h = self.exact.get(key)
        if h is not None:
            return h if h <= limit else None
        fact = Fact(pred, args)
        if self.result.is_base(fact):
            self.exact[key] = 0
            return 0
        if fact not in self.result:
            return None
        acyclic = self._acyclic.get(pred)
        if acyclic is None:
            acyclic = self._acyclic[pred] = not any(
                r.index in self.cyclic for r in self.program.rules_for(pred)
            )
        if acyclic or not any(r.index in self.cyclic for r in self._head_rules(pred, args)):
            return self._direct(fact, key, limit)
        for d in range(self.lower.get(key, 1), limit + 1):
            if self._instance(fact, d) is not None:
                self.exact[key] = d
                return d
            self.lower[key] = d + 1
        return None

    def _direct(self, fact: Fact, key: tuple[str, Any], limit: int) -> int | None:
        """:meth:`min_height` of an atom of a predicate outside every positive cycle: its
        premises' heights do not depend on its own, so its height is 1 + the least, over its
        rule instances, of the greatest premise height; searched once, branch and bound (an
        instance is dropped as soon as a premise is as high as the best found), never looking
        for premises above ``limit - 1``. The instance that set the final best is the first one
        of that height in file and candidate order, the one :meth:`_instance` finds."""
        low = self.lower.get(key, 1)
        if low > limit:
            return None
        box: list[Any] = [limit, None]  # [greatest premise height to beat, its instance]
        for rule in self._head_rules(fact.pred, fact.args):
            env = self._head_env(rule, fact.args)
            if env is None:
                continue
            self._best(rule, self.order[rule.index], 0, env, 0, box)
            if box[0] < low:  # no instance can have lower premises than that
                break
        if box[1] is None:
            self.lower[key] = limit + 1
            return None
        h = box[0] + 1
        self.exact[key] = h
        self.first[key] = box[1]
        return h

    def _best(
        self,
        rule: Rule,
        order: tuple[int, ...],
        k: int,
        env: dict[Var, Const],
        high: int,
        box: list[Any],
    ) -> None:
        """Instances of body literals order[k:] whose premises are all below box[0] (``high``:
        the greatest premise height so far, below box[0]); each lowers box[0]."""
        if k == len(order):
            box[0], box[1] = high, (rule, env)
            return
        lit = rule.body[order[k]]
        if isinstance(lit, Positive):
            for row, new in self._matching(lit, env):
                h = self._height(lit.atom.pred, row, box[0] - 1)
                if h is None:
                    continue
                self._best(rule, order, k + 1, new, h if h > high else high, box)
                if box[0] <= high:  # nothing under this prefix can beat it any more
                    return
        else:
            after = self._through(lit, env)
            if after is not None:
                self._best(rule, order, k + 1, after, high, box)

    def _head_rules(self, pred: str, args: tuple[Arg, ...]) -> list[Rule]:
        """The rules of ``pred`` (file order) whose head constants can match ``args``: the
        others fail in :meth:`_head_env` anyway. A predicate's rules are grouped by the
        positions of their head constants, each group indexed by those constants (type-exact);
        a WILDCARD at such a position keeps the whole group."""
        index = self.program.proof_heads.get(pred)
        rules = self.program.rules_for(pred)
        if index is None or index[0] != len(rules):
            groups: dict[tuple[int, ...], dict[tuple[Any, ...], list[int]]] = {}
            for i, rule in enumerate(rules):
                pos = tuple(j for j, t in enumerate(rule.head.args) if isinstance(t, ConstTerm))
                vals = tuple((type(v), v) for v in (rule.head.args[j].value for j in pos))
                groups.setdefault(pos, {}).setdefault(vals, []).append(i)
            index = (len(rules), list(groups.items()))
            self.program.proof_heads[pred] = index
        groups_list = index[1]
        if len(groups_list) == 1 and not groups_list[0][0]:
            return rules  # no head constants at all
        picked: list[int] = []
        for pos, by_vals in groups_list:
            if any(args[j] is WILDCARD for j in pos):
                for ids in by_vals.values():
                    picked += ids
                continue
            ids = by_vals.get(tuple((type(args[j]), args[j]) for j in pos))
            if ids:
                picked += ids
        picked.sort()  # file order across groups (and values, under a WILDCARD)
        return [rules[i] for i in picked]

    def _instance(self, fact: Fact, d: int) -> tuple[Rule, dict[Var, Const]] | None:
        for rule in self._head_rules(fact.pred, fact.args):
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
        key = (fact.pred, tkey(fact.args))
        done = self.built.get(key)
        if done is not None:
            return done
        if self.result.is_base(fact):
            node = ProofNode(
                "fact", pred=fact.pred, args=fact.args, provenance=self.result.provenance(fact)
            )
            self.built[key] = node
            return node
        found = self.first.get(key)
        if found is None:
            found = self._instance(fact, self.exact[key])
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
        named = self._named.get(rule.index)
        if named is None:
            named = self._named[rule.index] = [v for v in rule.variables() if not v.anon]
        bindings = {v.name: env[v] for v in named if v in env}
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
        self.built[key] = node
        return node

    # ---- why not ------------------------------------------------------------------------------

    def why_not(self, pred: str, args: tuple[Arg, ...]) -> list[dict[str, Any]]:
        """For an IDB predicate: per rule, the first body literal that fails (deepest attempt);
        for an EDB predicate: no matching fact. Computed once per (pred, args) per prover (each
        caller gets its own copies of the entries)."""
        key = (pred, tkey(args))
        got = self._why.get(key)
        if got is None:
            got = self._why[key] = self._why_not(pred, args)
        return [dict(e) for e in got]

    def _why_not(self, pred: str, args: tuple[Arg, ...]) -> list[dict[str, Any]]:
        rules = self.program.rules_for(pred)
        if not rules:
            return [{"reason": "no matching fact"}]
        out: list[dict[str, Any]] = []
        heads = {id(r) for r in self._head_rules(pred, args)}
        # no atom of the model matches: no rule applies, so once some instantiation gets to a
        # rule's last literal nothing deeper can be found (and the first one there is kept)
        absent = not self._any_match(pred, args)
        for rule in rules:
            entry: dict[str, Any] = {"rule": rule.id, "file": rule.file, "line": rule.line}
            env = self._head_env(rule, args) if id(rule) in heads else None
            if env is None:
                entry["failed"] = f"head {rule.head} does not match"
                out.append(entry)
                continue
            order = self.order[rule.index]
            best: list[Any] = [-1, env]
            self._deepest(rule, order, 0, env, best, len(order) - 1 if absent else len(order))
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
        self,
        rule: Rule,
        order: tuple[int, ...],
        k: int,
        env: dict[Var, Const],
        best: list[Any],
        cap: int,
    ) -> None:
        """The first deepest instantiation of order[:k'] (k' up to ``cap``, the deepest there
        can be) into ``best``."""
        if k > best[0]:
            best[0], best[1] = k, env
        if k == len(order) or best[0] >= cap:
            return
        for sol in self._solve(rule, (order[k],), 0, env, None):
            self._deepest(rule, order, k + 1, sol, best, cap)
            if best[0] >= cap:
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


def renamed_proof(
    node: ProofNode,
    old: str,
    new: str,
    result: Any,
    program: Any,
    done: dict[int, ProofNode] | None = None,
) -> ProofNode:
    """``node`` with the case id ``old`` renamed to ``new``: in atoms, bindings and builtin
    operands; messages rendered again from the renamed bindings; "why not" literals re-rendered
    (the quoted constant replaced); each fact leaf's provenance read from ``result`` (the
    renamed case's own facts, so it names that case's file and line). Shared subtrees stay
    shared (``done``).

    >>> from policystrata.engine import Engine, parse_program
    >>> from policystrata.facts import FactSet, Provenance
    >>> prog = parse_program('''
    ... .decl e(c, x)
    ... .decl f(c)
    ... @message "{C} has {X}"
    ... p(C, X) :- e(C, X), !f(C).
    ... ''', source="r.dl")
    >>> engine = Engine(prog, FactSet())
    >>> def case(cid, line):
    ...     facts = FactSet(); _ = facts.add("e", cid, "x", prov=Provenance("t.jsonl", line=line))
    ...     return engine.evaluate(facts)
    >>> one, two = case("k1", 1), case("k2", 2)
    >>> proof = renamed_proof(one.prove(Fact("p", ("k1", "x"))), "k1", "k2", two, prog)
    >>> proof.to_json() == two.prove(Fact("p", ("k2", "x"))).to_json()
    True
    >>> proof.message, str(proof.premises[0].provenance[0])
    ('k2 has x', 't.jsonl:2')
    """
    done = {} if done is None else done
    got = done.get(id(node))
    if got is not None:
        return got

    def ren(v: Any) -> Any:
        return new if type(v) is str and v == old else v

    quoted_old, quoted_new = render_const(old), render_const(new)
    args = tuple(ren(a) for a in node.args)
    bindings = {k: ren(v) for k, v in node.bindings.items()}
    message = node.message
    if node.kind == "rule" and node.rule and message is not None:
        template = program.rule(node.rule).message
        message = render_message(template, bindings) if template else message
    provenance = node.provenance
    if node.kind == "fact":
        provenance = result.provenance(Fact(node.pred, args))
    why_not = [
        {
            k: (v.replace(quoted_old, quoted_new) if k == "failed" and isinstance(v, str) else v)
            for k, v in entry.items()
        }
        for entry in node.why_not
    ]
    premises = [renamed_proof(p, old, new, result, program, done) for p in node.premises]
    if (
        args == node.args
        and all(type(a) is type(b) for a, b in zip(args, node.args, strict=True))
        and bindings == node.bindings
        and message == node.message
        and provenance == node.provenance
        and why_not == node.why_not
        and all(p is q for p, q in zip(premises, node.premises, strict=True))
        and ren(node.left) is node.left
        and ren(node.right) is node.right
    ):
        done[id(node)] = node  # nothing of the case in it (e.g. a policy subtree): shared
        return node
    out = ProofNode(
        node.kind,
        pred=node.pred,
        args=args,
        rule=node.rule,
        file=node.file,
        line=node.line,
        message=message,
        bindings=bindings,
        premises=premises,
        provenance=list(provenance),
        why_not=why_not,
        op=node.op,
        left=ren(node.left),
        right=ren(node.right),
    )
    done[id(node)] = out
    return out
