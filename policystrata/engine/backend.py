"""The pyDatalog backend, driven only through ``pyEngine`` objects (``Pred``, ``Literal``,
``Clause``, ``assert_``, ``retract``) — never ``pyDatalog.load`` nor ``exec``/``eval`` of text.

Design points (measured on pyDatalog 0.22.4, see docs/rules.md):

* **Typed constants.** pyDatalog merges ``1``, ``1.0`` and ``True`` (Python ``==``) and rounds
  floats. Strings and ints are passed as-is; floats and bools are wrapped in :class:`_F` /
  :class:`_B` whose equality is type-exact, so the four constants stay distinct and floats exact.
  Comparisons ``< <= > >= !=`` are our own primitives over the decoded values.
* **Isolation.** Every backend owns one ``pyDatalog.Logic`` (predicate registry + fact storage)
  and makes it current only while it works (:meth:`Backend.active`), so two engines never see
  each other's rules or facts.
* **Timeout.** The resolution loop of ``Literal.ask`` is re-implemented here (same steps) so the
  deadline is checked every 512 steps; :class:`EvaluationTimeout` is raised from the evaluating
  thread itself (no watchdog thread, nothing to kill).
* **GC.** The cyclic GC is paused during evaluation (it costs ~60% of query time on 3.11).

>>> b = Backend()
>>> with b.active():
...     for v in (1, 1.0, True, "1"):
...         _ = b.add_fact("n", (v,))
>>> with b.active():
...     sorted(map(repr, b.query_all("n", 1, deadline=None)))
["('1',)", '(1,)', '(1.0,)', '(True,)']
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyDatalog import pyEngine
from pyDatalog.Logic import Logic

from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Program, Rule, Var
from policystrata.engine.errors import EvaluationTimeout
from policystrata.facts import Const

_CHUNK = range(512)
_LOCK = threading.RLock()  # pyDatalog's "current logic" is per thread; keep one user at a time


class _F:
    """A float constant with type-exact identity (``_F(1.0) != 1`` and ``!= True``)."""

    __slots__ = ("v",)

    def __init__(self, v: float) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return type(other) is _F and other.v == self.v

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(("f", self.v))

    def __repr__(self) -> str:
        return f"_F({self.v!r})"


class _B:
    """The two bool constants (singletons; identity equality)."""

    __slots__ = ("v",)

    def __init__(self, v: bool) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"_B({self.v!r})"


_TRUE, _FALSE = _B(True), _B(False)
_UNIT = _B(False)  # the hidden argument of 0-ary predicates (pyDatalog cannot run them)


def encode(value: Const) -> Any:
    t = type(value)
    if t is str or t is int:
        return value
    if t is float:
        return _F(value)  # type: ignore[arg-type]
    if t is bool:
        return _TRUE if value else _FALSE
    raise TypeError(f"not a fact constant: {value!r}")


def decode(value: Any) -> Const:
    t = type(value)
    if t is str or t is int:
        return value
    if t is _F or t is _B:
        return value.v
    raise TypeError(f"unexpected backend constant {value!r}")


def compare(left: Const, op: str, right: Const) -> bool:
    """Typed comparison: ``=``/``!=`` are type-exact identity; ordering compares numbers (int
    and float) numerically, strings with strings, bools with bools; mixed kinds are unordered
    (every ordering comparison is false).

    >>> compare(1, "=", 1.0), compare(1, "<", 1.5), compare("a", "<", 1), compare(1, "!=", True)
    (False, True, False, True)
    """
    lt, rt = type(left), type(right)
    if op == "=":
        return lt is rt and left == right
    if op == "!=":
        return not (lt is rt and left == right)
    if (lt is bool or rt is bool or lt is str or rt is str) and lt is not rt:
        return False
    watched = ORDER_WATCH.cid
    if watched is not None and lt is str and (left == watched or right == watched):
        ORDER_WATCH.seen = True  # a model that orders the case id is not the same renamed
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    if op == ">=":
        return left >= right  # type: ignore[operator]
    raise ValueError(op)


class _OrderWatch:
    """A case id whose use in an ordering comparison (``< <= > >=``) is noted: a model (or a
    proof) that ordered it against another string may differ for another case id, so it is not
    remembered up to the case id."""

    __slots__ = ("cid", "seen")

    def __init__(self) -> None:
        self.cid: str | None = None
        self.seen = False


ORDER_WATCH = _OrderWatch()


_CMP_PRED = {"!=": "_ps_ne", "<": "_ps_lt", "<=": "_ps_le", ">": "_ps_gt", ">=": "_ps_ge"}


def _make_prim(op: str) -> Any:
    def prim(literal: Any, subgoal: Any) -> None:
        x, y = literal.terms
        if x.is_const() and y.is_const() and compare(decode(x.id), op, decode(y.id)):
            subgoal.fact(True)

    return prim


class Backend:
    """One isolated pyDatalog logic: rules, policy facts, per-case facts."""

    def __init__(self) -> None:
        with _LOCK:
            previous = getattr(Logic.tl, "logic", None)
            self.logic = Logic()  # a fresh, empty logic, made current by the constructor
            for op, name in _CMP_PRED.items():
                pyEngine.insert(pyEngine.Pred(name, 2)).prim = _make_prim(op)
            self._restore(previous)
        self.steps = 0

    @staticmethod
    def _restore(previous: Any) -> None:
        if previous is None:
            if hasattr(Logic.tl, "logic"):
                del Logic.tl.logic
        else:
            Logic.tl.logic = previous

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make this backend's logic current (and pause the cyclic GC) for the block."""
        with _LOCK:
            previous = getattr(Logic.tl, "logic", None)
            Logic.tl.logic = self.logic
            if not hasattr(pyEngine.Fresh_var.tl, "counter"):
                pyEngine.Fresh_var.tl.counter = 0
            gc_was = gc.isenabled()
            gc.disable()
            try:
                yield
            finally:
                if gc_was:
                    gc.enable()
                self._restore(previous)

    # ---- building ---------------------------------------------------------------------------

    def _term(self, t: Var | ConstTerm) -> Any:
        if isinstance(t, Var):
            return pyEngine.Var(t.name)
        return pyEngine.Const(encode(t.value))

    def _terms(self, args: tuple[Var | ConstTerm, ...]) -> list[Any]:
        if not args:
            return [pyEngine.Const(_UNIT)]
        return [self._term(t) for t in args]

    def add_rule(
        self,
        rule: Rule,
        order: tuple[int, ...],
        rename: dict[str, str] | None = None,
        head_name: str | None = None,
        delta_at: int | None = None,
    ) -> None:
        """Assert a rule with its body in ``order``; body predicates in ``rename`` (positive and
        negated) are read from their renamed storage (see :meth:`add_program`); ``head_name``
        asserts it under another head. With ``delta_at`` (a body index), that positive literal
        reads its predicate's last-round tuples (:func:`delta_name`) and comes first."""
        rename = rename or {}
        head = pyEngine.Literal(head_name or rule.head.pred, self._terms(rule.head.args))
        body = []
        if delta_at is not None:
            order = (delta_at, *(i for i in order if i != delta_at))
        for i in order:
            lit = rule.body[i]
            if i == delta_at:
                assert isinstance(lit, Positive)
                body.append(pyEngine.Literal(delta_name(lit.atom.pred), self._terms(lit.atom.args)))
            elif isinstance(lit, Positive):
                name = rename.get(lit.atom.pred, lit.atom.pred)
                body.append(pyEngine.Literal(name, self._terms(lit.atom.args)))
            elif isinstance(lit, Negative):
                name = rename.get(lit.atom.pred, lit.atom.pred)
                body.append(pyEngine.Literal("~" + name, self._terms(lit.atom.args)))
            else:
                assert isinstance(lit, Comparison)
                name = "==" if lit.op == "=" else _CMP_PRED[lit.op]
                body.append(pyEngine.Literal(name, [self._term(lit.left), self._term(lit.right)]))
        if not body:
            pyEngine.assert_(pyEngine.Clause(head, []))
        else:
            pyEngine.assert_(pyEngine.Clause(head, body))

    def add_program(
        self,
        program: Program,
        heads: set[str] | None = None,
        fold: Callable[[Rule, tuple[int, ...]], tuple[int, ...] | None] | None = None,
    ) -> None:
        """Assert the program's rules (only those whose head is in ``heads``, when given).

        Every body literal of a derived predicate reads ``<pred>#mat``: the tuples the engine
        stored for it (an earlier stratum's result, or an earlier round of the same recursive
        component). So pyDatalog never runs a recursive rule and never re-derives a lower
        stratum: each query is one flat join over given and stored facts. The rules of a
        recursive component that read the component are also asserted under ``<pred>#rec``:
        after the first round only they can derive anything new (:func:`recursive_heads`), and
        only from a tuple the last round found. So each is asserted there once per literal of
        the component in its body, that literal reading ``<pred>#delta`` (the last round's new
        tuples) and placed first, the others the stored tuples (semi-naive evaluation: a round
        joins from what is new, not from everything again).

        ``fold(rule, body order)`` may shorten the body order (literals known to hold) or
        return None (the rule cannot apply): see ``Engine``'s partial evaluation.
        """
        idb = set(program.idb_predicates())
        rename = {p: stored_name(p) for p in idb}
        strata = derived_strata(program)
        comp_of = {p: i for i, comp in enumerate(strata) for p, _a in comp}
        for rule in program.rules:
            if heads is not None and rule.head.pred not in heads:
                continue
            order = program.compiled_order.get(rule.index, tuple(range(len(rule.body))))
            if fold is not None:
                folded = fold(rule, order)
                if folded is None:
                    continue
                order = folded
            self.add_rule(rule, order, rename)
            here = comp_of.get(rule.head.pred)
            for i in order:
                lit = rule.body[i]
                if (
                    here is not None
                    and isinstance(lit, Positive)
                    and comp_of.get(lit.atom.pred) == here
                ):
                    self.add_rule(
                        rule, order, rename, head_name=rec_name(rule.head.pred), delta_at=i
                    )
        # make every known predicate resolvable (an empty EDB predicate answers "no facts", a
        # derived one whose every rule was folded away answers nothing)
        for name, decl in program.decls.items():
            pyEngine.insert(pyEngine.Pred(name, decl.arity or 1))
        for comp in strata:
            for p, arity in comp:
                for name in (p, stored_name(p), rec_name(p), delta_name(p)):
                    pyEngine.insert(pyEngine.Pred(name, arity or 1))

    def register(self, name: str, arity: int) -> None:
        """Make a predicate resolvable (inside :meth:`active`): with no clause it answers
        nothing."""
        pyEngine.insert(pyEngine.Pred(name, arity or 1))

    def _clause(self, pred: str, args: tuple[Const, ...]) -> Any:
        terms = [pyEngine.Const(encode(a)) for a in args] if args else [pyEngine.Const(_UNIT)]
        return pyEngine.Clause(pyEngine.Literal(pred, terms), [])

    def add_fact(self, pred: str, args: tuple[Const, ...]) -> Any:
        clause = self._clause(pred, args)
        pyEngine.assert_(clause)
        return clause

    def remove_fact(self, clause: Any) -> None:
        pyEngine.retract(clause)

    def fact_count(self) -> int:
        """Number of stored clauses (facts + rules) over all predicates (for leak tests)."""
        with self.active():
            return sum(len(p.db) for p in self.logic.Db.values())

    # ---- querying ---------------------------------------------------------------------------

    def query_all(
        self, pred: str, arity: int, *, deadline: float | None, subgoals: dict | None = None
    ) -> list[tuple[Const, ...]]:
        """All tuples of ``pred`` (must be called inside :meth:`active`).

        ``subgoals`` (the tabling memo) may be shared between queries of one evaluation.
        """
        lit = pyEngine.Literal(pred, [pyEngine.Var(f"V{i}") for i in range(max(arity, 1))])
        raw = self._ask(lit, {} if subgoals is None else subgoals, deadline)
        if arity == 0 or raw is True:
            return [()] if raw else []
        return [tuple(decode(v) for v in row) for row in raw]

    def _ask(self, lit: Any, subgoals: dict, deadline: float | None) -> Any:
        # The loop of pyEngine.Literal.ask, with a deadline check every 512 steps.
        ts = Logic.tl.logic
        saved = ts.Tasks, ts.Recursive_Tasks, ts.Recursive, ts.Subgoals, ts.Goal
        ts.Tasks, ts.Recursive_Tasks, ts.Subgoals = (
            pyEngine.TaskList(),
            pyEngine.TaskDeque(),
            subgoals,
        )
        ts.Goal = pyEngine.Subgoal(lit)
        ts.gc_uncollected, ts.Recursive = True, False
        todo: Any = pyEngine.SEARCH
        arg: Any = (ts.Goal,)
        steps = 0
        try:
            while todo is not None:  # in chunks of 512 steps, the deadline checked in between
                for i in _CHUNK:
                    res = todo(*arg)
                    if res is None:
                        todo = None
                        break
                    todo, arg = res
                    if todo is None:
                        i += 1
                        break
                else:
                    steps += len(_CHUNK)
                    if deadline is not None and time.monotonic() > deadline:
                        raise EvaluationTimeout(
                            f"evaluation exceeded its time limit ({pred_of(lit)})"
                        )
                    continue
                steps += i
            facts = ts.Goal.facts
            if facts is True:
                return True
            if isinstance(facts, dict):
                return [tuple(t.id for t in f.terms) for f in facts.values()]
            return []
        finally:
            self.steps += steps
            ts.Tasks, ts.Recursive_Tasks, ts.Recursive, ts.Subgoals, ts.Goal = saved


def stored_name(pred: str) -> str:
    """Storage of a derived predicate's materialized tuples (``#`` cannot occur in rule names)."""
    return f"{pred}#mat"


def delta_name(pred: str) -> str:
    """A recursive component's tuples found by the last round (semi-naive evaluation)."""
    return f"{pred}#delta"


def rec_name(pred: str) -> str:
    """The rules of ``pred`` that read its own recursive component, under a head of their own."""
    return f"{pred}#rec"


def _reads_own_component(rule: Rule, comp_of: dict[str, int]) -> bool:
    here = comp_of.get(rule.head.pred)
    return any(
        isinstance(lit, Positive) and comp_of.get(lit.atom.pred) == here for lit in rule.body
    )


def recursive_heads(program: Program) -> set[str]:
    """Derived predicates with a rule that reads their own component (recursion)."""
    comp_of = {p: i for i, comp in enumerate(derived_strata(program)) for p, _a in comp}
    return {r.head.pred for r in program.rules if _reads_own_component(r, comp_of)}


def derived_strata(program: Program) -> list[list[tuple[str, int]]]:
    """The strata of derived predicates (SCCs of the dependency graph, dependencies first), as
    (pred, arity); a component is recursive when one of its rules reads the component itself
    (see :func:`recursive_heads`)."""
    comps = program.strata or [[p] for p in program.idb_predicates()]
    return [
        [(p, program.arity(p) or 0) for p in comp if program.is_idb(p)]
        for comp in comps
        if any(program.is_idb(p) for p in comp)
    ]


def pred_of(lit: Any) -> str:
    return str(lit.pred.name)
