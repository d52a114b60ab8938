"""Independent proof checker: a separate, small code path that re-verifies a proof (also one
loaded back from JSON) against the program and the given facts. It uses neither the proof
builder nor the pyDatalog backend: it reads the proof's JSON form, instantiates rules itself, and
— only when a proof claims that a *derived* atom is absent — decides that atom goal-directed
(:class:`_Goals`: top-down, tabled, evaluating only the rules and facts the atom can reach), not by
computing a whole model. Its own naive stratified bottom-up evaluator (:meth:`FactLookup.model`)
stays as a second, differential reference.

Checks: every rule step names a rule of the program at its file:line, the head and every body
literal instantiate exactly under the bindings (``_`` positions are free), premises line up with
the body literals; comparisons hold; fact leaves are given facts; absent leaves are really
absent (no given fact, and for derived predicates no atom of the model, matches).

>>> from policystrata.engine import Engine, parse_program
>>> from policystrata.facts import Fact, FactSet
>>> prog = parse_program(".decl p(n: int)\\nq(X) :- p(X), X > 1.", source="d.dl")
>>> facts = FactSet(); _ = facts.add("p", 2)
>>> result = Engine(prog, facts).evaluate()
>>> proof = result.prove(Fact("q", (2,)))
>>> check_proof(proof, prog, result.fact_lookup)
>>> bad = proof.to_json(); bad["bindings"]["X"] = 3
>>> try:
...     check_proof(bad, prog, result.fact_lookup)
... except ProofError as exc:
...     print(exc)
proof step q(2) by rule d.q.1 (d.dl:2): head q(3) under the bindings does not equal the atom q(2)
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from policystrata import profile
from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Program, Rule, Var
from policystrata.engine.errors import ProofError
from policystrata.facts import Const, Fact, FactSet

Row = tuple[Const, ...]
Key = tuple[Any, ...]  # a row as a key (see _rkey)


#: The constant types whose values compare equal to another type's (``True == 1 == 1.0``):
#: their keys carry the type. Strings and integers are their own keys.
_TAGGED = frozenset({bool, float})


def _k(v: Any) -> Any:
    """A constant as a key: equal keys for equal constants of the same type only."""
    return (type(v).__name__, v) if type(v) in _TAGGED else v


def _rkey(row: Iterable[Any]) -> Key:
    """A row as a key (:func:`_k` of each value)."""
    row = tuple(row)
    if _TAGGED.isdisjoint(map(type, row)):
        return row
    return tuple(_k(v) for v in row)


def _show(v: Any) -> str:
    if isinstance(v, dict):
        return "_"
    return json.dumps(v) if not isinstance(v, float) else repr(v)


def _atom_text(pred: str, args: Iterable[Any]) -> str:
    return f"{pred}({', '.join(_show(a) for a in args)})"


class FactLookup:
    """The given facts a proof may rest on, plus (optionally) the derived model.

    When ``derived`` is omitted, the model is computed here, independently, on first need.
    With ``shared`` (a :class:`SharedFacts` holding facts common to many lookups, e.g. the
    policy facts), ``facts`` are the lookup's own facts on top of the shared ones, and strata
    that read none of the own facts' predicates are taken from the shared facts' model
    (computed once, by the same evaluator).
    """

    def __init__(
        self,
        facts: FactSet | Iterable[Fact],
        derived: Iterable[Fact] | None = None,
        shared: SharedFacts | None = None,
    ):
        self._shared = shared
        if shared is not None:
            self._facts = dict(shared.keys)
            self._rows = dict(shared.rows)
        else:
            self._facts = {}
            self._rows = {}
        own: set[str] = set()
        for f in facts:
            k = _rkey(f.args)
            keys = self._facts.get(f.pred)
            if keys is not None and k in keys:
                continue
            if f.pred not in own:  # copy-on-write of a shared predicate's keys and rows
                own.add(f.pred)
                self._facts[f.pred] = set(self._facts.get(f.pred, ()))
                self._rows[f.pred] = list(self._rows.get(f.pred, ()))
            self._facts[f.pred].add(k)
            self._rows[f.pred].append(f.args)
        self._own = own
        self._model: dict[str, set[Key]] | None = None
        self._naive: _NaiveModel | None = None
        self._goals: _Goals | None = None
        if derived is not None:
            self._model = {p: set(s) for p, s in self._facts.items()}
            for f in derived:
                self._model.setdefault(f.pred, set()).add(_rkey(f.args))

    def is_fact(self, pred: str, args: Iterable[Any]) -> bool:
        return _rkey(args) in self._facts.get(pred, set())

    def derivable(self, program: Program, pred: str, pattern: list[Any]) -> bool:
        """Does a tuple of the derived predicate ``pred`` matching ``pattern`` (``None``: any
        value) hold? Decided goal-directed (:class:`_Goals`): only the rules and facts the
        pattern can reach are evaluated, each subgoal once per lookup."""
        if self._model is not None and self._naive is None:  # a trusted model was given
            keys = self._model.get(pred, set())
            return any(
                all(p is None or _k(p) == kv for p, kv in zip(pattern, key, strict=True))
                for key in keys
            )
        if self._goals is None or self._goals.info.program is not program:
            shared = self._shared.goals(program) if self._shared is not None else None
            self._goals = _Goals(program, self._rows, self._facts, shared, self._own)
        return self._goals.exists(pred, pattern)

    def model(self, program: Program, pred: str | None = None) -> dict[str, set[Key]]:
        """The derived model, computed here on first need, independently of the backend. With
        ``pred``, only the strata ``pred`` depends on are evaluated (the rest on later asks)."""
        if self._model is not None and self._naive is None:
            return self._model  # a trusted model was given
        if self._naive is None:
            shared = self._shared.model(program) if self._shared is not None else None
            self._naive = _NaiveModel(program, self._rows, shared, self._own, self._facts)
        self._model = self._naive.keys
        self._naive.ensure(None if pred is None else {pred})
        return self._model


class SharedFacts:
    """Given facts common to many :class:`FactLookup` s (a domain's policy facts), indexed once;
    the naive model of the strata that read only them is computed once, on first need."""

    def __init__(self, facts: FactSet | Iterable[Fact]) -> None:
        self.keys: dict[str, set[Key]] = {}
        self.rows: dict[str, list[Row]] = {}
        for f in facts:
            k = _rkey(f.args)
            keys = self.keys.setdefault(f.pred, set())
            if k not in keys:
                keys.add(k)
                self.rows.setdefault(f.pred, []).append(f.args)
        self._models: dict[int, tuple[Program, _NaiveModel]] = {}
        self._goals: dict[int, tuple[Program, _Goals]] = {}

    def goals(self, program: Program) -> _Goals:
        """Goal-directed evaluation over these facts alone (subgoals tabled across lookups)."""
        entry = self._goals.get(id(program))
        if entry is None or entry[0] is not program:
            entry = (program, _Goals(program, self.rows, self.keys))
            self._goals[id(program)] = entry
        return entry[1]

    def model(self, program: Program) -> _NaiveModel:
        entry = self._models.get(id(program))
        if entry is None or entry[0] is not program:
            entry = (program, _NaiveModel(program, self.rows, keys=self.keys))
            self._models[id(program)] = entry
        return entry[1]


# ---- a naive stratified evaluator (independent of the backend) --------------------------------


class _NaiveModel:
    """Naive stratified bottom-up evaluation, stratum by stratum, only as far as asked.

    With ``shared`` (the model over a subset of the base facts), a stratum none of whose
    inputs, transitively, is a predicate in ``own`` (the predicates of the facts beyond that
    subset) has the same tuples in both models and is taken from ``shared``."""

    def __init__(
        self,
        program: Program,
        base: dict[str, list[Row]],
        shared: _NaiveModel | None = None,
        own: set[str] | None = None,
        keys: dict[str, set[Key]] | None = None,
    ) -> None:
        self.program = program
        # rows and keys of a predicate no rule derives are only read here: given ``keys`` (the
        # base's own key sets), they are shared, not copied; derived ones get their own copies
        idb = set(program.idb_predicates())
        self.rows: dict[str, list[Row]] = {
            p: list(r) if keys is None or p in idb else r for p, r in base.items()
        }
        self.keys = {
            p: {_rkey(r) for r in rs} if keys is None else (set(keys[p]) if p in idb else keys[p])
            for p, rs in base.items()
        }
        self.strata = program.strata or [[p] for p in program.idb_predicates()]
        self.done: set[int] = set()
        self.index = _Index(self.rows)
        self.deps: dict[str, set[str]] = {}
        self.rules: dict[int, list[Rule]] = {}
        of = {p: i for i, comp in enumerate(self.strata) for p in comp}
        for rule in program.rules:
            body = {lit.atom.pred for lit in rule.body if isinstance(lit, Positive | Negative)}
            self.deps.setdefault(rule.head.pred, set()).update(body)
            self.rules.setdefault(of.get(rule.head.pred, -1), []).append(rule)
        self.shared = shared
        self.own = own or set()
        self._closures: list[set[str]] | None = None

    def _closure(self, preds: set[str]) -> set[str]:
        seen, todo = set(preds), list(preds)
        while todo:
            for dep in self.deps.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def ensure(self, preds: set[str] | None) -> None:
        """Evaluate (in stratum order) every stratum the given predicates depend on."""
        wanted = None if preds is None else self._closure(preds)
        shared = self.shared
        for i, comp in enumerate(self.strata):
            if i in self.done or (wanted is not None and not wanted.intersection(comp)):
                continue
            if shared is not None and not shared.closure_of(i) & self.own:
                # the stratum reads none of our own facts: the shared model's tuples are ours
                # (its inputs are earlier strata, already taken from the shared model too)
                if i not in shared.done:
                    shared._stratum(i, comp)
                    shared.done.add(i)
                for p in comp:
                    if p in shared.rows:
                        self.rows[p] = shared.rows[p]  # never appended to here: not our stratum
                        self.keys[p] = shared.keys[p]
            else:
                self._stratum(i, comp)
            self.done.add(i)

    def closure_of(self, i: int) -> set[str]:
        """Every predicate stratum ``i`` reads, transitively (and its own), computed once."""
        if self._closures is None:
            self._closures = [self._closure(set(comp)) for comp in self.strata]
        return self._closures[i]

    def _stratum(self, i: int, comp: list[str]) -> None:
        """Semi-naive: a first pass of every rule, then, round by round, only derivations that
        use at least one tuple of the stratum derived in the previous round (the rest were
        all made before)."""
        rows = self.rows
        rules = self.rules.get(i, [])
        own = set(comp)
        recursive = []
        for rule in rules:
            positives = [lit for lit in rule.body if isinstance(lit, Positive)]
            at = [j for j, lit in enumerate(positives) if lit.atom.pred in own]
            if at:
                recursive.append((rule, positives, at))
        start = {p: len(rows.get(p, ())) for p in comp}
        for rule in rules:
            self._derive(rule, None)
        while recursive:
            end = {p: len(rows.get(p, ())) for p in comp}
            delta = {p: rows.get(p, [])[start[p] : end[p]] for p in comp}
            if not any(delta.values()):
                break
            start = end
            for rule, positives, at in recursive:
                for j in at:
                    new = delta[positives[j].atom.pred]
                    if new:
                        self._derive(rule, (j, new))

    def _derive(self, rule: Rule, delta: tuple[int, list[Row]] | None) -> None:
        rows, keys = self.rows, self.keys
        for env in list(_bindings(rule, rows, keys, self.index, delta)):
            head = tuple(t.value if isinstance(t, ConstTerm) else env[t] for t in rule.head.args)
            hk = _rkey(head)
            if hk not in keys.setdefault(rule.head.pred, set()):
                keys[rule.head.pred].add(hk)
                rows.setdefault(rule.head.pred, []).append(head)


class _Index:
    """Rows of each predicate hashed by one argument position, extended as rows are added
    (rows are only ever appended while a model is computed)."""

    def __init__(self, rows: dict[str, list[Row]]) -> None:
        self.rows = rows
        self.idx: dict[tuple[str, int], tuple[int, dict[Any, list[Row]]]] = {}

    def lookup(self, pred: str, pos: int, value: Any) -> list[Row]:
        rs = self.rows.get(pred, [])
        n, table = self.idx.get((pred, pos), (0, {}))
        for r in rs[n:]:
            table.setdefault(_k(r[pos]), []).append(r)
        self.idx[(pred, pos)] = (len(rs), table)
        return table.get(_k(value), [])


def _bindings(
    rule: Rule,
    rows: dict[str, list[Row]],
    keys: dict[str, set[Any]],
    index: _Index | None = None,
    delta: tuple[int, list[Row]] | None = None,
) -> Iterator[dict[Var, Const]]:
    """Every binding of the rule's body; with ``delta`` = (j, rows), positive literal j ranges
    over those rows only."""
    positives = [lit for lit in rule.body if isinstance(lit, Positive)]
    filters = [lit for lit in rule.body if not isinstance(lit, Positive)]

    def candidates(atom: Any, env: dict[Var, Const]) -> list[Row]:
        """The rows matching the bound position that matches fewest (all rows if none)."""
        best = None
        if index is not None:
            for pos, t in enumerate(atom.args):
                if isinstance(t, ConstTerm):
                    found = index.lookup(atom.pred, pos, t.value)
                elif isinstance(t, Var) and not t.anon and t in env:
                    found = index.lookup(atom.pred, pos, env[t])
                else:
                    continue
                if best is None or len(found) < len(best):
                    best = found
                    if not best:
                        break
        return best if best is not None else rows.get(atom.pred, [])

    def join(i: int, env: dict[Var, Const]) -> Iterator[dict[Var, Const]]:
        if i == len(positives):
            yield from _filters(filters, env, keys, rows)
            return
        atom = positives[i].atom
        source = delta[1] if delta is not None and delta[0] == i else candidates(atom, env)
        for row in source:
            new = dict(env)
            ok = True
            for t, v in zip(atom.args, row, strict=True):
                if isinstance(t, ConstTerm):
                    ok = _k(t.value) == _k(v)
                elif t in new:
                    ok = _k(new[t]) == _k(v)
                else:
                    new[t] = v
                if not ok:
                    break
            if ok:
                yield from join(i + 1, new)

    yield from join(0, {})


def _filters(
    filters: list[Any], env: dict[Var, Const], keys: dict[str, set[Any]], rows: dict[str, list[Row]]
) -> Iterator[dict[Var, Const]]:
    env = dict(env)
    todo = list(filters)
    while todo:
        progressed = False
        for lit in list(todo):
            if isinstance(lit, Comparison):
                lv, rv = _val(lit.left, env), _val(lit.right, env)
                if lv is _FREE and rv is _FREE:
                    continue
                if lit.op == "=" and (lv is _FREE) != (rv is _FREE):
                    var = lit.left if lv is _FREE else lit.right
                    env[var] = rv if lv is _FREE else lv  # type: ignore[index]
                elif lv is _FREE or rv is _FREE:
                    continue
                elif not holds(lv, lit.op, rv):
                    return
            else:
                if any(isinstance(t, Var) and not t.anon and t not in env for t in lit.atom.args):
                    continue
                pattern = [
                    None if isinstance(t, Var) and t.anon else _val(t, env) for t in lit.atom.args
                ]
                if _matches_any(lit.atom.pred, pattern, keys, rows):
                    return
            todo.remove(lit)
            progressed = True
        if not progressed:
            return  # unsafe leftovers: no binding (the static checker prevents this)
    yield env


_FREE = object()


def _val(t: Var | ConstTerm, env: dict[Var, Const]) -> Any:
    if isinstance(t, ConstTerm):
        return t.value
    return env.get(t, _FREE)


def _matches_any(
    pred: str, pattern: list[Any], keys: dict[str, set[Any]], rows: dict[str, list[Row]]
) -> bool:
    if all(p is not None for p in pattern):
        return _rkey(pattern) in keys.get(pred, set())
    return any(
        all(p is None or _k(p) == _k(v) for p, v in zip(pattern, row, strict=True))
        for row in rows.get(pred, [])
    )


def holds(left: Any, op: str, right: Any) -> bool:
    """The comparison semantics of the rule language, written out independently."""
    same_type = type(left) is type(right)
    if op == "=":
        return same_type and left == right
    if op == "!=":
        return not (same_type and left == right)
    numeric = {int, float}
    if type(left) in numeric and type(right) in numeric:
        pass
    elif not same_type or type(left) not in (str, bool):
        return False
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


# ---- goal-directed evaluation of one atom (independent of the backend) ------------------------


class _Unbound:
    """An unbound position of a subgoal's pattern."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "?"


_OPEN = _Unbound()
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!=", "=": "="}

Cons = tuple[tuple[str, Any], ...]  # constraints on one position: ((op, value), ...)


def _same_v(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _satisfies(value: Any, cons: Cons | list[tuple[str, Any]]) -> bool:
    return all(holds(value, op, k) for op, k in cons)


class _Table:
    """The answers of one subgoal, and where its evaluation stands."""

    __slots__ = ("complete", "depth", "epoch", "keys", "rows")

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.keys: set[Key] = set()
        self.complete = False
        self.depth = -1  # index on the evaluation stack while being evaluated
        self.epoch = -1  # round of the enclosing recursive component it was last evaluated in


class _Frame:
    __slots__ = ("low", "mark", "recursive")

    def __init__(self, low: int, mark: int) -> None:
        self.low = low  # the lowest stack index a call under this frame reached (recursion)
        self.mark = mark  # position in _Goals.touched when the frame started
        self.recursive = False


class _ProgramInfo:
    """What goal-directed evaluation needs of a program, computed once per program."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.idb = set(program.idb_predicates())
        self.rules: dict[str, list[Rule]] = {p: program.rules_for(p) for p in self.idb}
        self.deps: dict[str, set[str]] = {}
        for rule in program.rules:
            self.deps.setdefault(rule.head.pred, set()).update(
                lit.atom.pred for lit in rule.body if isinstance(lit, Positive | Negative)
            )
        self._closure: dict[str, frozenset[str]] = {}
        # (rule index, head-bound variables, head-constrained variables) -> the rule's body
        # compiled for that head shape (_Goals._compile)
        self.compiled: dict[Any, Any] = {}
        self._heads: dict[str, list[tuple[Rule, tuple[tuple[int, Any], ...]]]] = {
            p: [
                (
                    r,
                    tuple(
                        (i, t.value) for i, t in enumerate(r.head.args) if isinstance(t, ConstTerm)
                    ),
                )
                for r in rules
            ]
            for p, rules in self.rules.items()
        }

    def rules_matching(self, pred: str, pattern: tuple[Any, ...]) -> list[Rule]:
        """The rules of ``pred`` whose head constants agree with ``pattern``'s bound values."""
        out = []
        for rule, consts in self._heads.get(pred, ()):
            for i, value in consts:
                p = pattern[i]
                if p is not _OPEN and not (type(p) is type(value) and p == value):
                    break
            else:
                out.append(rule)
        return out

    def closure(self, pred: str) -> frozenset[str]:
        """Every predicate ``pred`` depends on, transitively (and itself)."""
        got = self._closure.get(pred)
        if got is None:
            seen, todo = {pred}, [pred]
            while todo:
                for dep in self.deps.get(todo.pop(), ()):
                    if dep not in seen:
                        seen.add(dep)
                        todo.append(dep)
            got = self._closure[pred] = frozenset(seen)
        return got


_INFO: dict[int, tuple[Program, _ProgramInfo]] = {}


def _info(program: Program) -> _ProgramInfo:
    entry = _INFO.get(id(program))
    if entry is None or entry[0] is not program:
        if len(_INFO) > 16:
            _INFO.clear()
        entry = (program, _ProgramInfo(program))
        _INFO[id(program)] = entry
    return entry[1]


_NONE: list[Row] = []
_NOKEYS: set[Key] = set()


class _Goals:
    """Goal-directed, tabled evaluation (top-down, query/subquery style): the tuples of a
    derived predicate that match a pattern (bound values, unbound positions, and comparison
    constraints on unbound ones), computing only what the pattern's rules need.

    Each rule body is solved literal by literal, the next literal chosen by what is bound:
    comparisons and negations as soon as they are ground, then given facts, then derived
    predicates; a comparison ``X < N`` with ``N`` bound travels with a call on ``X`` as a
    constraint (``fault_rank(C, M), M < 4`` asks only for ranks below 4). Subgoals are tabled;
    a recursive component is iterated to its fixpoint at its leader (the lowest subgoal on the
    stack that a call reached back to); negation only ever reads lower strata, complete when
    read. ``shared`` answers the subgoals whose predicates read none of ``own``.

    >>> from policystrata.engine.parser import parse_program
    >>> prog = parse_program(
    ...     ".decl e(a: int, b: int)\\nr(X, Y) :- e(X, Y).\\nr(X, Y) :- r(X, Z), e(Z, Y).",
    ...     source="g.dl")
    >>> edges = [(1, 2), (2, 3), (3, 1), (4, 4)]
    >>> g = _Goals(prog, {"e": edges}, {"e": {_rkey(r) for r in edges}})
    >>> sorted(g.answers("r", (1, _OPEN), ((), ())))
    [(1, 1), (1, 2), (1, 3)]
    >>> g.exists("r", [1, None]), g.exists("r", [1, 4]), g.exists("r", [5, None])
    (True, False, False)
    """

    def __init__(
        self,
        program: Program,
        rows: dict[str, list[Row]],
        keys: dict[str, set[Key]],
        shared: _Goals | None = None,
        own: set[str] | None = None,
    ) -> None:
        self.info = _info(program)
        self.rows = rows
        self.keys = keys
        # given rows never change here: each (pred, position) is hashed once, on first need
        self.index: dict[tuple[str, int], dict[tuple[str, Any], list[Row]]] = {}
        self.tables: dict[Any, _Table] = {}
        self.stack: list[_Frame] = []
        self.touched: list[_Table] = []
        self.grew = 0
        self.epoch = 0
        self.shared = shared
        self.own = own or set()
        self._reads_own: dict[str, bool] = {}

    # ---- entry points -------------------------------------------------------------------------

    def exists(self, pred: str, pattern: list[Any]) -> bool:
        """Does some tuple of ``pred`` match ``pattern`` (``None``: any value)?"""
        pat = tuple(_OPEN if p is None else p for p in pattern)
        return bool(self.answers(pred, pat, tuple(() for _ in pat)))

    def answers(self, pred: str, pattern: tuple[Any, ...], cons: tuple[Cons, ...]) -> list[Row]:
        """Every tuple of ``pred`` matching ``pattern`` and the constraints ``cons``."""
        if pred not in self.info.idb:
            if all(p is not _OPEN and type(p) is not float for p in pattern) and not any(cons):
                # a ground atom of given facts (no float: NaN is no value of itself)
                return [pattern] if _rkey(pattern) in self.keys.get(pred, _NOKEYS) else _NONE
            return self._given(pred, pattern, cons)
        if self.shared is not None and not self._local(pred):
            return self.shared.answers(pred, pattern, cons)
        key = (
            pred,
            tuple(None if p is _OPEN else _k(p) for p in pattern),
            tuple(tuple((op, _k(v)) for op, v in c) for c in cons) if any(cons) else cons,
        )
        table = self.tables.get(key)
        if table is None:
            table = self.tables[key] = _Table()
        elif table.complete:
            return table.rows
        if table.depth >= 0:  # a call back into a subgoal being evaluated: recursion
            self._recursion(table.depth)
            return list(table.rows)
        if table.epoch == self.epoch:  # evaluated in this round of its component already
            return list(table.rows)
        return self._evaluate(pred, pattern, cons, table)

    # ---- internals ----------------------------------------------------------------------------

    def _local(self, pred: str) -> bool:
        got = self._reads_own.get(pred)
        if got is None:
            got = self._reads_own[pred] = not self.own.isdisjoint(self.info.closure(pred))
        return got

    def _given(self, pred: str, pattern: tuple[Any, ...], cons: tuple[Cons, ...]) -> list[Row]:
        if self.shared is not None and pred not in self.own:  # the shared facts, indexed once
            return self.shared._given(pred, pattern, cons)
        rows = None
        bound = 0
        for pos, p in enumerate(pattern):
            if p is not _OPEN:
                bound += 1 if type(p) is not float else 2  # NaN: the index is not the test
                table = self.index.get((pred, pos))
                if table is None:
                    table = self.index[(pred, pos)] = {}
                    for r in self.rows.get(pred, ()):
                        if len(r) > pos:
                            table.setdefault(_k(r[pos]), []).append(r)
                found = table.get(_k(p), _NONE)
                if rows is None or len(found) < len(rows):
                    rows = found
                    if not rows:
                        return []
        if rows is None:
            rows = self.rows.get(pred, [])
        n = len(pattern)
        if not any(cons):
            if bound <= 1:  # the index (if any) matched the one bound position already
                return [r for r in rows if len(r) == n]
            return [
                r
                for r in rows
                if len(r) == n
                and all(p is _OPEN or _same_v(p, v) for p, v in zip(pattern, r, strict=True))
            ]
        return [
            r
            for r in rows
            if len(r) == n
            and all(
                (p is _OPEN or _same_v(p, v)) and (not c or _satisfies(v, c))
                for p, c, v in zip(pattern, cons, r, strict=True)
            )
        ]

    def _recursion(self, depth: int) -> None:
        for frame in self.stack[depth:]:
            frame.recursive = True
        for frame in self.stack[depth + 1 :]:
            frame.low = min(frame.low, depth)

    def _evaluate(
        self, pred: str, pattern: tuple[Any, ...], cons: tuple[Cons, ...], table: _Table
    ) -> list[Row]:
        depth = len(self.stack)
        frame = _Frame(depth, len(self.touched))
        self.stack.append(frame)
        self.touched.append(table)
        table.depth = depth
        try:
            while True:
                before = self.grew
                table.epoch = self.epoch
                for rule in self.info.rules_matching(pred, pattern):
                    for row in self._rule(rule, pattern, cons):
                        k = _rkey(row)
                        if k not in table.keys:
                            table.keys.add(k)
                            table.rows.append(row)
                            self.grew += 1
                if frame.low < depth:  # inside an enclosing recursive component: it iterates
                    break
                if not frame.recursive or self.grew == before:  # a fixpoint: all complete
                    for t in self.touched[frame.mark :]:
                        t.complete = True
                    del self.touched[frame.mark :]
                    break
                self.epoch += 1  # another round of the component this subgoal leads
        finally:
            self.stack.pop()
            table.depth = -1
            if self.stack and frame.low < self.stack[-1].low:
                self.stack[-1].low = frame.low
        return table.rows

    def _rule(self, rule: Rule, pattern: tuple[Any, ...], cons: tuple[Cons, ...]) -> list[Row]:
        env: dict[Var, Any] = {}
        vcons: dict[Var, list[tuple[str, Any]]] = {}
        for t, p, c in zip(rule.head.args, pattern, cons, strict=True):
            if isinstance(t, ConstTerm):
                if p is not _OPEN and not _same_v(t.value, p):
                    return _NONE
                if c and not _satisfies(t.value, c):
                    return _NONE
            elif p is not _OPEN:
                if t in env:
                    if not _same_v(env[t], p):
                        return _NONE
                else:
                    env[t] = p
            elif c:
                vcons.setdefault(t, []).extend(c)
        for v, cs in vcons.items():
            if v in env and not _satisfies(env[v], cs):
                return _NONE
        shape = (rule.index, frozenset(env), frozenset(vcons))
        compiled = self.info.compiled.get(shape)
        if compiled is None:
            compiled = self.info.compiled[shape] = self._compile(rule, env, vcons)
        steps, head, slots, width = compiled
        vals: list[Any] = [_OPEN] * width
        for v, value in env.items():
            vals[slots[v]] = value
        vc: list[Any] = [None] * width
        for v, cs in vcons.items():
            vc[slots[v]] = cs
        out: list[Row] = []
        for sol in self._solutions(steps, vals, vc):
            row = tuple(x if kind == 0 else sol[x] for kind, x in head)
            if _OPEN not in row:  # range restriction (static checker) binds every head var
                out.append(row)
        return out

    @staticmethod
    def _bound(t: Var | ConstTerm, env: Any) -> bool:
        return isinstance(t, ConstTerm) or t in env

    def _score(self, lit: Any, bound: set[Var], constrained: set[Var]) -> int:
        """Which body literal to solve next (lowest first; 99: not yet safe)."""
        if isinstance(lit, Comparison):
            lb, rb = self._bound(lit.left, bound), self._bound(lit.right, bound)
            if lb and rb:
                return 0
            if lit.op == "=" and (lb or rb):
                return 0
            return 99
        args = lit.atom.args
        if isinstance(lit, Negative):
            if all(isinstance(t, ConstTerm) or t.anon or t in bound for t in args):
                return 1
            return 99
        nb = nc = 0
        for t in args:
            if isinstance(t, ConstTerm) or t in bound:
                nb += 1
            elif not t.anon and t in constrained:
                nc += 1
        if nb == len(args):
            return 1
        given = lit.atom.pred not in self.info.idb
        if nb or nc:
            return 2 if given else 3
        return 5 if given else 6

    def _plan(self, rule: Rule, env: dict[Var, Any], vcons: dict[Var, Any]) -> tuple[int, ...]:
        """The order to solve ``rule``'s body in, given which variables the head binds and
        constrains. Stops early where no remaining literal is safe (the static checker prevents
        that)."""
        bound, constrained = set(env), set(vcons)
        todo = list(range(len(rule.body)))
        order: list[int] = []
        while todo:
            best, best_score = -1, 99
            for i in todo:
                score = self._score(rule.body[i], bound, constrained)
                if score < best_score:
                    best, best_score = i, score
                    if score == 0:
                        break
            if best < 0:
                order.append(-1)  # unsafe leftovers: no binding
                break
            todo.remove(best)
            order.append(best)
            lit = rule.body[best]
            if isinstance(lit, Comparison):
                bound.update(t for t in (lit.left, lit.right) if isinstance(t, Var))
            elif isinstance(lit, Positive):
                bound.update(t for t in lit.atom.args if isinstance(t, Var) and not t.anon)
        return tuple(order)

    def _compile(
        self, rule: Rule, env: dict[Var, Any], vcons: dict[Var, Any]
    ) -> tuple[tuple[Any, ...], tuple[tuple[int, Any], ...], dict[Var, int], int]:
        """``rule``'s body as steps in the order of :meth:`_plan`, for a head that binds the
        variables of ``env`` and constrains those of ``vcons`` (once per rule and head shape).
        Which variables are bound before each step is known here, so each argument is compiled
        to a constant, a bound slot, a slot the step binds, or an anonymous position.
        Returns (steps, the head as (0, constant) / (1, slot), variable -> slot, slots)."""
        slots: dict[Var, int] = {}
        for t in [*rule.head.args, *(t for lit in rule.body for t in _terms(lit))]:
            if isinstance(t, Var) and not t.anon and t not in slots:
                slots[t] = len(slots)

        def side(t: Var | ConstTerm) -> tuple[int, Any]:
            return (0, t.value) if isinstance(t, ConstTerm) else (1, slots[t])

        plan = self._plan(rule, env, vcons)
        bound = set(env)
        steps: list[tuple[Any, ...]] = []
        for k, at in enumerate(plan):
            if at < 0:
                steps.append((_STOP,))
                break
            lit = rule.body[at]
            if isinstance(lit, Comparison):
                steps.append((_CMP, lit.op, *side(lit.left), *side(lit.right)))
                bound.update(t for t in (lit.left, lit.right) if isinstance(t, Var))
                continue
            atom = lit.atom
            if isinstance(lit, Negative):
                args = tuple(
                    (2, None) if isinstance(t, Var) and t.anon else side(t) for t in atom.args
                )
                steps.append((_NEG, atom.pred, args, tuple(() for _ in args)))
                continue
            template: list[tuple[int, Any, Any]] = []
            binds: list[tuple[int, int]] = []
            repeats: list[tuple[int, int]] = []
            fresh: set[Var] = set()
            for pos, t in enumerate(atom.args):
                if isinstance(t, ConstTerm):
                    template.append((0, t.value, ()))
                elif t.anon:
                    template.append((2, None, ()))
                elif t in bound:
                    template.append((1, slots[t], ()))
                else:
                    template.append((3, slots[t], self._later(t, rule, plan, k, bound, slots)))
                    (repeats if t in fresh else binds).append((pos, slots[t]))
                    fresh.add(t)
            steps.append((_POS, atom.pred, tuple(template), tuple(binds), tuple(repeats)))
            bound |= fresh
        head = tuple(side(t) for t in rule.head.args)
        return tuple(steps), head, slots, len(slots)

    @staticmethod
    def _later(
        var: Var, rule: Rule, plan: tuple[int, ...], k: int, bound: set[Var], slots: dict[Var, int]
    ) -> tuple[tuple[str, int, Any], ...]:
        """The comparisons after step ``k`` of ``var`` with a constant or a variable bound
        before it: constraints known before ``var`` is bound, as (op, 0, constant) or
        (op, 1, slot)."""
        found: list[tuple[str, int, Any]] = []
        for i in plan[k + 1 :]:
            if i < 0:
                continue
            lit = rule.body[i]
            if not isinstance(lit, Comparison) or lit.op == "=":
                continue
            if lit.left == var:
                op, other = lit.op, lit.right
            elif lit.right == var:
                op, other = _FLIP[lit.op], lit.left
            else:
                continue
            if isinstance(other, ConstTerm):
                found.append((op, 0, other.value))
            elif other in bound:
                found.append((op, 1, slots[other]))
        return tuple(found)

    def _solutions(
        self, steps: tuple[Any, ...], vals: list[Any], vc: list[Any]
    ) -> Iterator[list[Any]]:
        """Every binding of the slots that satisfies the compiled steps, depth first."""
        n = len(steps)
        if n == 0:
            yield vals
            return
        stack = [iter(self._step(steps[0], vals, vc))]
        while stack:
            got = next(stack[-1], None)
            if got is None:
                stack.pop()
            elif len(stack) == n:
                yield got
            else:
                stack.append(iter(self._step(steps[len(stack)], got, vc)))

    def _step(self, step: tuple[Any, ...], vals: list[Any], vc: list[Any]) -> list[list[Any]]:
        """The bindings extending ``vals`` through one compiled body literal."""
        kind = step[0]
        if kind == _POS:
            _kind, pred, template, binds, repeats = step
            pattern: list[Any] = []
            cons: list[Cons] = []
            for k, x, later in template:
                if k == 0:
                    pattern.append(x)
                    cons.append(())
                elif k == 1:
                    pattern.append(vals[x])
                    cons.append(())
                else:
                    pattern.append(_OPEN)
                    cons.append(() if k == 2 else self._cons(x, later, vals, vc))
            rows = self.answers(pred, tuple(pattern), tuple(cons))
            if not binds:
                return [vals] if rows else _NO
            out = []
            for row in rows:
                new = vals.copy()
                for pos, x in binds:
                    new[x] = row[pos]
                if repeats and not all(_same_v(new[x], row[pos]) for pos, x in repeats):
                    continue
                out.append(new)
            return out
        if kind == _NEG:
            _kind, pred, args, nocons = step
            pat = tuple(x if k == 0 else (vals[x] if k == 1 else _OPEN) for k, x in args)
            return _NO if self.answers(pred, pat, nocons) else [vals]
        if kind == _CMP:
            _kind, op, lk, lx, rk, rx = step
            lv = lx if lk == 0 else vals[lx]
            rv = rx if rk == 0 else vals[rx]
            if lv is _OPEN or rv is _OPEN:  # "=" binding its unbound side
                slot, value = (lx, rv) if lv is _OPEN else (rx, lv)
                own = vc[slot]
                if own and not _satisfies(value, own):
                    return _NO
                new = vals.copy()
                new[slot] = value
                return [new]
            return [vals] if holds(lv, op, rv) else _NO
        return _NO  # _STOP: unsafe leftovers bind nothing

    @staticmethod
    def _cons(
        slot: int, later: tuple[tuple[str, int, Any], ...], vals: list[Any], vc: list[Any]
    ) -> Cons:
        """Constraints on a slot known before it is bound: its own (from the head), and every
        later comparison of it with a constant or a bound value."""
        own = vc[slot]
        if not later and not own:
            return ()
        out = list(own or ())
        for op, k, x in later:
            out.append((op, x if k == 0 else vals[x]))
        # each once (patterns stay finite), in a fixed order (by type name, then value)
        unique = {(op, type(v).__name__, v): (op, v) for op, v in out}
        return tuple(unique[k] for k in sorted(unique))


_POS, _NEG, _CMP, _STOP = 0, 1, 2, 3
_NO: list[list[Any]] = []  # no binding (never appended to)


def _terms(lit: Any) -> tuple[Any, ...]:
    if isinstance(lit, Comparison):
        return (lit.left, lit.right)
    return tuple(lit.atom.args)


# ---- the checker ------------------------------------------------------------------------------


def check_proof(proof: Any, program: Program, lookup: FactLookup) -> None:
    """Re-verify ``proof`` (a ProofNode or its JSON dict); raise :class:`ProofError` if wrong."""
    with profile.stage("proof_check"):
        data = proof if isinstance(proof, dict) else proof.to_json()
        if data.get("kind") not in ("rule", "fact"):
            raise ProofError(
                f"a proof must be rooted at a rule step or a fact, not {data.get('kind')!r}"
            )
        _Checker(program, lookup).node(data)


#: id(program) -> (a weak reference to it, its rule list's stamp, rule id -> rule): the
#: checker's own table, built once per program (not per check), dropped with the program.
_RULE_TABLES: dict[int, tuple[weakref.ref[Program], tuple[int, int, int], dict[str, Rule]]] = {}


def _rule_table(program: Program) -> dict[str, Rule]:
    """Rule id -> rule (the last rule of an id, as ever), rebuilt when the rule list changed."""
    rules = program.rules
    stamp = (id(rules), len(rules), id(rules[-1]) if rules else 0)
    key = id(program)
    got = _RULE_TABLES.get(key)
    if got is not None and got[0]() is program and got[1] == stamp:
        return got[2]
    table = {r.id: r for r in rules}
    ref = weakref.ref(program, functools.partial(_forget_table, key))
    _RULE_TABLES[key] = (ref, stamp, table)
    return table


def _forget_table(key: int, ref: weakref.ref[Program]) -> None:
    got = _RULE_TABLES.get(key)
    if got is not None and got[0] is ref:
        del _RULE_TABLES[key]


class _Checker:
    def __init__(self, program: Program, lookup: FactLookup) -> None:
        self.program = program
        self.lookup = lookup
        self.rules = _rule_table(program)

    def node(self, data: dict[str, Any]) -> None:
        kind = data.get("kind")
        atom = data.get("atom") or {}
        pred, args = atom.get("pred"), list(atom.get("args", []))
        if kind == "fact":
            if not self.lookup.is_fact(str(pred), args):
                raise ProofError(f"fact leaf {_atom_text(str(pred), args)} is not a given fact")
            return
        if kind != "rule":
            text = _atom_text(str(pred), args)
            raise ProofError(f"{text}: a {kind!r} node cannot prove a positive premise")
        rule = self.rules.get(str(data.get("rule")))
        if rule is None:
            text = _atom_text(str(pred), args)
            raise ProofError(f"proof step {text}: unknown rule {data.get('rule')!r}")

        def where() -> str:  # only rendered for an error
            text = _atom_text(str(pred), args)
            return f"proof step {text} by rule {rule.id} ({rule.file}:{rule.line})"

        if data.get("file") != rule.file or data.get("line") != rule.line:
            raise ProofError(f"{where()}: location {data.get('file')}:{data.get('line')} is wrong")
        bindings = data.get("bindings") or {}
        env: dict[str, Any] = dict(bindings)

        def inst(t: Var | ConstTerm, allow_anon: bool = False) -> Any:
            if isinstance(t, ConstTerm):
                return t.value
            if t.anon:
                if allow_anon:
                    return None
                raise ProofError(f"{where()}: anonymous variable where a value is needed")
            if t.name not in env:
                raise ProofError(f"{where()}: variable {t.name} has no binding")
            return env[t.name]

        for name, value in env.items():
            if isinstance(value, dict | list) or value is None:
                raise ProofError(f"{where()}: binding {name} is not a constant")
        head = [inst(t) for t in rule.head.args]
        if pred != rule.head.pred or _rkey(head) != _rkey(args):
            raise ProofError(
                f"{where()}: head {_atom_text(rule.head.pred, head)} under the bindings does not"
                f" equal the atom {_atom_text(str(pred), args)}"
            )
        premises = list(data.get("premises") or [])
        if len(premises) != len(rule.body):
            raise ProofError(
                f"{where()}: {len(premises)} premise(s) for {len(rule.body)} body literal(s)"
            )
        for lit, prem in zip(rule.body, premises, strict=True):
            if isinstance(lit, Positive):
                want = [inst(t, allow_anon=True) for t in lit.atom.args]
                patom = prem.get("atom") or {}
                got = list(patom.get("args", []))
                if (
                    patom.get("pred") != lit.atom.pred
                    or len(got) != len(want)
                    or any(
                        w is not None and _k(w) != _k(g)
                        for w, g, t in zip(want, got, lit.atom.args, strict=True)
                        if not (isinstance(t, Var) and t.anon)
                    )
                ):
                    raise ProofError(
                        f"{where()}: premise {_atom_text(str(patom.get('pred')), got)} does not"
                        f" instantiate {lit}"
                    )
                self.node(prem)
            elif isinstance(lit, Negative):
                if prem.get("kind") != "absent":
                    raise ProofError(f"{where()}: premise for {lit} must be an absent leaf")
                want = [inst(t, allow_anon=True) for t in lit.atom.args]
                patom = prem.get("atom") or {}
                got = list(patom.get("args", []))
                norm = [None if isinstance(g, dict) else g for g in got]
                if (
                    patom.get("pred") != lit.atom.pred
                    or len(norm) != len(want)
                    or any(
                        (w is None) != (g is None) or (w is not None and _k(w) != _k(g))
                        for w, g in zip(want, norm, strict=True)
                    )
                ):
                    raise ProofError(
                        f"{where()}: absent leaf {_atom_text(str(patom.get('pred')), got)} does"
                        f" not instantiate {lit}"
                    )
                self.absent(lit.atom.pred, want, where)
            else:
                assert isinstance(lit, Comparison)
                if prem.get("kind") != "builtin" or prem.get("op") != lit.op:
                    raise ProofError(
                        f"{where()}: premise for {lit} must be a builtin {lit.op} leaf"
                    )
                lv, rv = inst(lit.left), inst(lit.right)
                if _k(prem.get("left")) != _k(lv) or _k(prem.get("right")) != _k(rv):
                    raise ProofError(
                        f"{where()}: builtin leaf {_show(prem.get('left'))} {lit.op}"
                        f" {_show(prem.get('right'))} does not instantiate {lit}"
                    )
                if not holds(lv, lit.op, rv):
                    raise ProofError(
                        f"{where()}: comparison {_show(lv)} {lit.op} {_show(rv)} does not hold"
                    )

    def absent(self, pred: str, pattern: list[Any], where: Callable[[], str]) -> None:
        rows = self.lookup._rows
        if _matches_any(pred, pattern, self.lookup._facts, rows):
            text = _atom_text(pred, ["_" if p is None else p for p in pattern])
            raise ProofError(f"{where()}: absent leaf !{text} but a given fact matches it")
        if self.program.is_idb(pred) and self.lookup.derivable(self.program, pred, pattern):
            text = _atom_text(pred, ["_" if p is None else p for p in pattern])
            raise ProofError(f"{where()}: absent leaf !{text} but it is derivable")
