"""The engine: policy facts asserted once, each case asserted, queried, retracted.

>>> from policystrata.engine.parser import parse_program
>>> from policystrata.facts import FactSet
>>> prog = parse_program('''
... .decl edge(case, a, b)
... path(C, X, Y) :- edge(C, X, Y).
... path(C, X, Y) :- edge(C, X, Z), path(C, Z, Y).
... ''', source="demo.dl")
>>> engine = Engine(prog, FactSet())
>>> case = FactSet()
>>> for a, b in [("a", "b"), ("b", "c"), ("c", "a")]:
...     _ = case.add("edge", "k1", a, b)
>>> result = engine.evaluate(case)
>>> len(result.atoms("path"))
9
>>> from policystrata.facts import Fact
>>> result.prove(Fact("path", ("k1", "a", "c"))).height()
2
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from policystrata import profile
from policystrata.engine.ast import Comparison, ConstTerm, Negative, Positive, Program, Rule, Var
from policystrata.engine.backend import (
    ORDER_WATCH,
    Backend,
    delta_name,
    derived_strata,
    rec_name,
    recursive_heads,
    stored_name,
)
from policystrata.engine.proofcheck import FactLookup, SharedFacts
from policystrata.errors import InputError
from policystrata.facts import Const, Fact, FactSet, Provenance

_TYPES = {"string": str, "int": int, "float": float, "bool": bool}


def tkey(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Type-exact hashable key of an argument tuple (``(1,)``, ``(1.0,)``, ``(True,)`` differ)."""
    return tuple(zip(map(type, args), args, strict=True))


def sort_key(args: tuple[Const, ...]) -> tuple[Any, ...]:
    """Deterministic order over mixed typed tuples: bools, numbers, strings; ties by type."""
    out: list[tuple[int, Any, int]] = []
    for a in args:
        t = type(a)
        if t is bool:
            out.append((0, int(a), 0))
        elif t is int:
            out.append((1, a, 0))
        elif t is float:
            out.append((1, a, 1))
        else:
            out.append((2, a, 0))
    return tuple(out)


def sorted_rows(rows: Iterable[tuple[Const, ...]]) -> list[tuple[Const, ...]]:
    """``rows`` in :func:`sort_key` order; rows of strings only compare as they are (the same
    order, without a key per row).

    >>> sorted_rows([("b", 1), ("a", True), ("a", 2)])
    [('a', True), ('a', 2), ('b', 1)]
    >>> sorted_rows([("b", "x"), ("a", "y")])
    [('a', 'y'), ('b', 'x')]
    """
    rows = list(rows)
    if all(type(a) is str for r in rows for a in r):
        rows.sort()
        return rows
    rows.sort(key=sort_key)
    return rows


class _Index:
    """pred -> tuples (for listing) and type-exact key sets (for membership)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Const, ...]]] = {}
        self.keys: dict[str, set[tuple[Any, ...]]] = {}

    def add(self, pred: str, args: tuple[Const, ...]) -> bool:
        keys = self.keys.setdefault(pred, set())
        k = tkey(args)
        if k in keys:
            return False
        keys.add(k)
        self.rows.setdefault(pred, []).append(args)
        return True

    def has(self, pred: str, args: tuple[Const, ...]) -> bool:
        keys = self.keys.get(pred)
        return keys is not None and tkey(args) in keys


_MEMO_SIZE = 256  # remembered input signatures per stratum
#: Whole evaluations remembered by their case facts up to the case id (a scan's records and a
#: run's minimization steps repeat). Each holds the derived tuples of one case.
WHOLE_MEMO_SIZE = 512


def _order_free(rows: dict[str, list[tuple[Const, ...]]], cid: str) -> bool:
    """Does no position of any predicate hold the case id in some tuples and another string in
    others? Then sorting tuples never compares the case id with another constant, and whatever
    is built from sorted tuples (proofs, witnesses) is the same for any case id, renamed."""
    for tuples in rows.values():
        if not tuples:
            continue
        width = len(tuples[0])
        for pos in range(width):
            has = other = False
            for r in tuples:
                v = r[pos]
                if type(v) is str:
                    if v == cid:
                        has = True
                    else:
                        other = True
                    if has and other:
                        return False
    return True


class _Whole:
    """A whole evaluation remembered by its case facts up to the case id: the derived tuples as
    found (with their own case id ``cid``), renamed when another case recalls them; whether
    they are order-free (see ``_order_free``) is found on first need (most evaluations, e.g. a
    fuzz mutant's or a minimization step's, are never recalled nor asked)."""

    __slots__ = ("cid", "derived", "free")

    def __init__(self, cid: str, derived: dict[str, list[tuple[Const, ...]]], free: bool) -> None:
        self.cid = cid
        self.derived = derived
        self.free: bool | None = None if free else False  # the case facts' part, known now

    def order_free(self) -> bool:
        if self.free is None:
            cid = self.cid
            self.free = all(_order_free({p: rows}, cid) for p, rows in self.derived.items())
        return self.free

    def rows_for(self, cid: str) -> dict[str, list[tuple[Const, ...]]]:
        """The derived tuples with ``cid`` for this entry's case id."""
        old = self.cid
        return {
            p: [tuple(cid if type(a) is str and a == old else a for a in r) for r in rows]
            for p, rows in self.derived.items()
        }


class _CaseMemo:
    """One evaluation's view for remembering strata: the case id, its facts, what is derived
    so far, and the input signatures computed so far."""

    def __init__(
        self,
        cid: str,
        case_rows: dict[str, list[tuple[Const, ...]]],
        derived: dict[str, list[tuple[Const, ...]]],
    ) -> None:
        self.cid = cid
        self.case_rows = case_rows
        self.derived = derived
        self.inputs: dict[str, frozenset[tuple[Any, ...]]] = {}


Memo = OrderedDict[Any, list[tuple[Const, ...]]]
#: A recursive component's remembered fixpoint: pred -> its tuples without the case id.
CompMemo = OrderedDict[Any, dict[str, list[tuple[Const, ...]]]]


class _Lazy:
    """What of one evaluation is asserted in the backend so far. Case facts and the stored
    tuples of lower strata reach pyDatalog only when a component that is queried (not
    remembered, not skipped as empty) reads them; every clause asserted is noted in ``added``
    (retracted after the evaluation)."""

    __slots__ = ("add", "added", "case_rows", "derived", "done_case", "done_stored")

    def __init__(
        self,
        backend: Backend,
        case_rows: dict[str, list[tuple[Const, ...]]],
        derived: dict[str, list[tuple[Const, ...]]],
        added: list[Any],
        stored: Iterable[str],
    ) -> None:
        self.add = backend.add_fact
        self.case_rows = case_rows
        self.derived = derived
        self.added = added
        self.done_case: set[str] = set()
        self.done_stored: set[str] = set(stored)  # already in the backend for good

    def need(self, reads: Iterable[str], own: Iterable[str]) -> None:
        """Before querying a component: the case facts of the predicates it reads and of its
        own (a case may give facts of a derived predicate), and the stored tuples of the
        (complete) lower strata it reads."""
        add, added, derived = self.add, self.added, self.derived
        for q in (*reads, *own):
            if q not in self.done_case:
                self.done_case.add(q)
                for row in self.case_rows.get(q, ()):
                    added.append(add(q, row))
        for q in reads:
            if q not in self.done_stored and q in derived:
                self.done_stored.add(q)
                store = stored_name(q)
                for row in derived[q]:
                    added.append(add(store, row))


def _recall(table: Memo | None, key: Any, case: _CaseMemo | None) -> list[tuple[Const, ...]] | None:
    """The remembered tuples for ``key``, with this case's id (None when not remembered)."""
    if table is None or key is None or case is None:
        return None
    hit = table.get(key)
    if hit is None:
        return None
    table.move_to_end(key)
    return [(case.cid, *rest) for rest in hit]


def _remember(
    table: Memo | None, key: Any, case: _CaseMemo | None, rows: list[tuple[Const, ...]]
) -> None:
    """Remember ``rows`` without their case id (only when every row starts with it)."""
    if table is None or key is None or case is None:
        return
    if all(r and r[0] == case.cid for r in rows):
        table[key] = [r[1:] for r in rows]
        if len(table) > _MEMO_SIZE:
            table.popitem(last=False)


class Engine:
    """Evaluate a checked :class:`Program` over policy facts (loaded once) and per-case facts.

    ``timeout`` (seconds, ``None`` for no limit) bounds each :meth:`evaluate`; on expiry
    :class:`EvaluationTimeout` is raised and the case's facts are already retracted.

    Derived predicates whose inputs are all policy facts are materialized once, here; the
    other rules are partially evaluated against what is thus fixed (a ground literal of a
    policy-only predicate that holds is dropped from the body, a rule with one that fails is
    not asserted). ``fixed`` names input predicates the caller knows no case brings facts of
    (policy, schema, vocabulary): one with no policy fact holds nothing, so a rule with a
    positive literal of it (or of an empty policy-only predicate) is not asserted either, and
    the rules reading it are case-local (remembered, see :meth:`_case_local`). A case that
    brings facts of a predicate assumed fixed is evaluated on a second backend holding the
    program as written (built on first need).
    """

    def __init__(
        self,
        program: Program,
        policy_facts: FactSet,
        timeout: float | None = 10.0,
        fixed: Iterable[str] = (),
    ):
        if not program.checked:
            from policystrata.engine.checker import check_program

            check_program(program)
        self.program = program
        self.policy_facts = policy_facts
        self.timeout = timeout
        self._given_fixed = frozenset(fixed)
        self._idb = [(p, program.arity(p) or 0) for p in program.idb_predicates()]
        self._arity = {p: program.arity(p) for p in {*program.decls, *dict(self._idb)}}
        self._valid: set[tuple[str, tuple[type, ...]]] = set()  # fact shapes found valid
        self._policy = _Index()
        for fact in policy_facts:
            self._validate(fact)
            self._policy.add(fact.pred, fact.args)
        self._deps: dict[str, set[str]] = {}
        for rule in program.rules:
            self._deps.setdefault(rule.head.pred, set()).update(
                lit.atom.pred for lit in rule.body if isinstance(lit, Positive | Negative)
            )
        self._read = set().union(*self._deps.values()) if self._deps else set()
        self._strata = derived_strata(program)
        self._with_rec = recursive_heads(program)
        self._recursive = [any(p in self._with_rec for p, _a in c) for c in self._strata]
        self._static, self._fixed = self._policy_only()
        self._comp_reads, self._comp_guards = self._component_reads()
        self._static_rows: dict[str, list[tuple[Const, ...]]] = {}
        self._shared: SharedFacts | None = None
        self._full: Backend | None = None
        self._split: dict[str, list[tuple[Rule, list[str]]]] = {}  # see _split_recursive
        self.backend = Backend()
        with self.backend.active():
            self._add_policy_facts(self.backend)
            self.backend.add_program(program, heads=self._static)
            deadline = None if timeout is None else time.monotonic() + timeout
            kept: list[Any] = []  # the policy-only tuples stay stored for good
            self._run_strata(self.backend, self._static, self._static_rows, kept, deadline)
            folded: set[str] = set()
            self.backend.add_program(
                program,
                heads={p for p, _a in self._idb} - self._static,
                fold=lambda rule, order: self._fold(rule, order, folded),
            )
        # every predicate given policy facts is taken as fixed too (a case bringing facts of
        # one is evaluated on the full backend), so remembered strata may read them
        self._fixed |= folded | {p for p in self._policy.rows if p not in self._deps}
        self._fixed |= {p for p in program.decls if self._declared_fixed(p)}
        self._memo_inputs = self._case_local_strata()
        self._memo: dict[str, Memo] = {p: OrderedDict() for p in self._memo_inputs}
        self._constants: set[tuple[Any, ...]] | None = None
        with self.backend.active():
            self._split_recursive()
        self._whole: OrderedDict[frozenset[tuple[str, Any]], _Whole] = OrderedDict()
        self._rule_memo: dict[int, Memo] = {
            rule.index: OrderedDict() for rules in self._split.values() for rule, _i in rules
        }
        self._comp_inputs = self._case_local_components()
        self._comp_memo: dict[int, CompMemo] = {i: OrderedDict() for i in self._comp_inputs}

    def _add_policy_facts(self, backend: Backend) -> None:
        for pred, rows in self._policy.rows.items():
            for row in rows:
                backend.add_fact(pred, row)

    # ---- what is the same for every case ----------------------------------------------------

    def _closure(self, preds: Iterable[str]) -> set[str]:
        seen, todo = set(preds), list(preds)
        while todo:
            for dep in self._deps.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def _policy_only(self) -> tuple[set[str], set[str]]:
        """Derived predicates whose every input predicate holds policy facts (or none at all is
        read): their tuples are the same for every case. Returns (those predicates, every
        predicate they read)."""
        static: set[str] = set()
        for comp in self._strata:
            preds = [p for p, _a in comp]
            inputs = set().union(*(self._deps.get(p, set()) for p in preds)) - set(preds)
            if all(q in static or (q not in self._deps and q in self._policy.rows) for q in inputs):
                static.update(preds)
        return static, self._closure(static)

    def _fold(self, rule: Rule, order: tuple[int, ...], folded: set[str]) -> tuple[int, ...] | None:
        """``order`` without the ground literals of policy-only predicates (materialized
        derived ones, or given policy facts) that hold; None when one of them fails."""
        out = []
        for i in order:
            lit = rule.body[i]
            if isinstance(lit, Positive) and self._empty_fixed(lit.atom.pred):
                folded.add(lit.atom.pred)
                return None  # reads a fixed predicate with no tuple at all
            if isinstance(lit, Positive | Negative) and all(
                isinstance(t, ConstTerm) for t in lit.atom.args
            ):
                pred = lit.atom.pred
                args = tuple(t.value for t in lit.atom.args)  # type: ignore[union-attr]
                if pred in self._static:
                    holds = tkey(args) in {tkey(r) for r in self._static_rows.get(pred, ())}
                elif pred not in self._deps and pred in self._policy.rows:
                    holds = self._policy.has(pred, args)
                else:
                    out.append(i)
                    continue
                folded.add(pred)
                if holds != isinstance(lit, Positive):
                    return None
                continue
            out.append(i)
        return tuple(out)

    def _declared_fixed(self, pred: str) -> bool:
        """One of the predicates the caller says no case brings facts of (``fixed``), and no
        rule derives: the same for every case, so with no policy fact it holds nothing."""
        return pred in self._given_fixed and pred not in self._deps

    def _empty_fixed(self, pred: str) -> bool:
        """A predicate the same for every case that holds no tuple."""
        if pred in self._static:
            return not self._static_rows.get(pred)
        return pred not in self._policy.rows and self._declared_fixed(pred)

    def _case_local_strata(self) -> dict[str, list[str]]:
        """Non-recursive case-dependent predicates whose every rule is *case-local*: the head's
        first argument is a variable C that occurs nowhere else but as the first argument of
        every literal of a case-dependent predicate (and in no literal of a fixed one, nor in a
        comparison). Such a stratum's tuples are a function of its case-dependent inputs' tuples
        without their first argument (the case id renamed consistently), so they can be
        remembered by those (see :meth:`_signature`). Returns pred -> its case-dependent inputs.
        """
        out: dict[str, list[str]] = {}
        for comp, recursive in zip(self._strata, self._recursive, strict=True):
            pred = comp[0][0]
            if recursive or pred in self._static:
                continue
            inputs = sorted(q for q in self._deps.get(pred, ()) if q not in self._fixed)
            if all(self._case_local(rule) for rule in self.program.rules_for(pred)):
                out[pred] = inputs
        return out

    def _component_reads(self) -> tuple[list[tuple[str, ...]], list[list[frozenset[str]] | None]]:
        """Per component (of ``_strata``): the predicates its rules read outside it, and its
        *guards*: for each rule that does not read the component, the predicates of its
        positive body literals (None when such a rule has none: it may derive with every
        input empty). A component whose every guard holds an empty predicate, and none of
        whose predicates is given facts (policy or case), derives nothing: its first round
        (its rules that read it cannot apply while it is empty) finds no tuple."""
        reads: list[tuple[str, ...]] = []
        guards: list[list[frozenset[str]] | None] = []
        for comp in self._strata:
            here = {p for p, _a in comp}
            outside: set[str] = set()
            rule_guards: list[frozenset[str]] | None = []
            for pred in here:
                outside |= self._deps.get(pred, set()) - here
                for rule in self.program.rules_for(pred):
                    pos = {lit.atom.pred for lit in rule.body if isinstance(lit, Positive)}
                    if pos & here:
                        continue  # needs a tuple of the component first
                    if not pos:
                        rule_guards = None
                    elif rule_guards is not None:
                        rule_guards.append(frozenset(pos))
            reads.append(tuple(sorted(outside)))
            guards.append(rule_guards)
        return reads, guards

    def _case_local_components(self) -> dict[int, list[str]]:
        """Recursive components (not policy-only) whose every rule is case-local (see
        :meth:`_case_local_strata`): the whole fixpoint is a function of the component's
        case-dependent inputs without the case id, remembered by them. Returns the component's
        index -> those inputs."""
        out: dict[int, list[str]] = {}
        for i, (comp, recursive) in enumerate(zip(self._strata, self._recursive, strict=True)):
            if not recursive or comp[0][0] in self._static:
                continue
            if all(self._case_local(r) for p, _a in comp for r in self.program.rules_for(p)):
                out[i] = [q for q in self._comp_reads[i] if q not in self._fixed]
        return out

    def _split_recursive(self) -> None:
        """In a recursive component's first round, a case-local rule that does not read the
        component derives a function of its (complete) inputs, like a remembered stratum: each
        such rule is asserted under ``<pred>#r<index>`` and remembered on its own; the
        predicate's other rules under ``<pred>#rest``."""
        rename = {p: stored_name(p) for p, _a in self._idb}
        for comp, recursive in zip(self._strata, self._recursive, strict=True):
            if not recursive or comp[0][0] in self._static:
                continue
            here = {p for p, _a in comp}
            for pred, arity in comp:
                alone, rest = [], []
                for rule in self.program.rules_for(pred):
                    order = self._fold(rule, self.program.compiled_order[rule.index], set())
                    if order is None:
                        continue  # cannot apply (it is not asserted for pred either)
                    reads = {
                        lit.atom.pred for lit in rule.body if isinstance(lit, Positive | Negative)
                    }
                    if self._case_local(rule) and not reads & here:
                        name = f"{pred}#r{rule.index}"
                        inputs = sorted(q for q in reads if q not in self._fixed)
                        alone.append((rule, inputs))
                    else:
                        name = f"{pred}#rest"
                        rest.append(rule)
                    self.backend.add_rule(rule, order, rename, head_name=name)
                    self.backend.register(name, arity)
                if alone:
                    self.backend.register(f"{pred}#rest", arity)
                    self._split[pred] = alone

    def _case_local(self, rule: Rule) -> bool:
        head = rule.head.args
        if not head or not isinstance(head[0], Var) or head[0].anon:
            return False
        c = head[0]
        if c in head[1:]:
            return False
        for lit in rule.body:
            if isinstance(lit, Comparison):
                if c in (lit.left, lit.right):
                    return False
                continue
            args = lit.atom.args
            if lit.atom.pred in self._fixed:
                if c in args:
                    return False
            elif not args or args[0] != c or c in args[1:]:
                return False
        return True

    def _all_constants(self) -> set[tuple[Any, ...]]:
        """Type-exact keys of every constant in the rules, the policy facts and the policy-only
        tuples (a case id equal to one of them is never renamed)."""
        if self._constants is None:
            consts: set[tuple[Any, ...]] = set()
            for rule in self.program.rules:
                terms = list(rule.head.args)
                for lit in rule.body:
                    if isinstance(lit, Comparison):
                        terms += [lit.left, lit.right]
                    else:
                        terms += lit.atom.args
                consts.update(tkey(tuple(t.value for t in terms if isinstance(t, ConstTerm))))
            for rows in [*self._policy.rows.values(), *self._static_rows.values()]:
                for row in rows:
                    consts.update(tkey(row))
            self._constants = consts
        return self._constants

    def _signature(self, pred: str, memo: _CaseMemo, inputs: list[str] | None = None) -> Any:
        """The key of ``pred``'s stratum (or of a rule reading ``inputs``) for this case: its
        case-dependent inputs' tuples without the case id (None when an input tuple does not
        start with the case id)."""
        parts = []
        for q in self._memo_inputs[pred] if inputs is None else inputs:
            part = memo.inputs.get(q)
            if part is None:
                rows = memo.derived[q] if q in memo.derived else memo.case_rows.get(q, ())
                if any(type(r[0]) is not str or r[0] != memo.cid for r in rows):
                    return None
                part = frozenset(tkey(r[1:]) for r in rows)
                memo.inputs[q] = part
            parts.append(part)
        return tuple(parts)

    def _full_backend(self) -> Backend:
        """The program as written over the policy facts, for a case that changes what the fast
        backend assumes fixed."""
        if self._full is None:
            full = Backend()
            with full.active():
                self._add_policy_facts(full)
                full.add_program(self.program)
            self._full = full
        return self._full

    def _run_strata(
        self,
        backend: Backend,
        wanted: set[str],
        derived: dict[str, list[tuple[Const, ...]]],
        added: list[Any],
        deadline: float | None,
        case: _CaseMemo | None = None,
        lazy: _Lazy | None = None,
    ) -> None:
        """Materialize the strata of ``wanted`` in dependency order: query each predicate (one
        flat join over given and stored facts), store its tuples for the strata above; a
        recursive component is iterated in rounds until nothing is new.

        A component that derives nothing for lack of input (see :meth:`_component_reads`) is
        not queried; one remembered by its inputs (``case``) is recalled. With ``lazy``, what a
        component reads is asserted just before it is queried (else every stored tuple that a
        rule reads is asserted as soon as it is derived).

        The queries of non-recursive strata share one tabling memo (a subgoal such as
        ``case_role(C, R)`` is answered once): whatever they read is complete (and asserted)
        before they run. Each round of a recursive component has a memo of its own (``#mat``
        grows between rounds)."""
        memo: dict = {}
        case_rows = lazy.case_rows if lazy is not None else {}
        policy = self._policy.rows
        for i, (comp, recursive) in enumerate(zip(self._strata, self._recursive, strict=True)):
            if comp[0][0] not in wanted:
                continue
            guards = self._comp_guards[i]
            if (
                guards is not None
                and not any(case_rows.get(p) or policy.get(p) for p, _a in comp)
                and all(
                    any(not (derived.get(q) or case_rows.get(q) or policy.get(q)) for q in g)
                    for g in guards
                )
            ):  # some input of every rule is empty: nothing to derive, nothing to ask
                for p, _a in comp:
                    derived[p] = []
                continue
            if not recursive:
                (pred, arity) = comp[0]
                key = None
                if case is not None and pred in self._memo_inputs and pred not in case.case_rows:
                    key = self._signature(pred, case)
                table = self._memo.get(pred) if case is not None else None
                hit = _recall(table, key, case)
                if hit is not None:  # same inputs up to the case id: the same tuples
                    rows = hit
                else:
                    if lazy is not None:
                        lazy.need(self._comp_reads[i], (pred,))
                    rows = backend.query_all(pred, arity, deadline=deadline, subgoals=memo)
                    _remember(table, key, case, rows)
                derived[pred] = rows
                if lazy is None and pred in self._read:
                    store = stored_name(pred)
                    added.extend(backend.add_fact(store, row) for row in rows)
                continue
            ckey = None
            ctable = self._comp_memo.get(i) if case is not None else None
            if ctable is not None and case is not None:
                if not any(p in case.case_rows for p, _a in comp):
                    ckey = self._signature(comp[0][0], case, self._comp_inputs[i])
                got = ctable.get(ckey) if ckey is not None else None
                if got is not None:  # the same inputs up to the case id: the same fixpoint
                    ctable.move_to_end(ckey)
                    cid = case.cid
                    for p, _a in comp:
                        derived[p] = [(cid, *rest) for rest in got[p]]
                    continue
            if lazy is not None:
                lazy.need(self._comp_reads[i], [p for p, _a in comp])
            seen = _Index()
            first = True
            delta: list[Any] = []  # the last round's new tuples, as asserted under #delta
            try:
                while True:  # our fixpoint, semi-naive: pyDatalog never sees recursion
                    round_memo: dict = {}
                    new = []
                    for p, arity in comp:
                        if first and p in self._split and backend is self.backend:
                            rows = self._first_round(p, arity, case, deadline, round_memo)
                            # facts given for p itself (asserted under p, which is not asked)
                            rows += [*policy.get(p, ()), *case_rows.get(p, ())]
                        elif first or p in self._with_rec:
                            name = p if first else rec_name(p)
                            rows = backend.query_all(
                                name, arity, deadline=deadline, subgoals=round_memo
                            )
                        else:
                            continue
                        new += [(p, row) for row in rows if seen.add(p, row)]
                    first = False
                    for clause in delta:
                        backend.remove_fact(clause)
                    delta = []
                    if not new:
                        break
                    for p, row in new:
                        added.append(backend.add_fact(stored_name(p), row))
                        delta.append(backend.add_fact(delta_name(p), row))
            finally:  # a timeout mid-round: this round's delta retracted too
                for clause in delta:
                    backend.remove_fact(clause)
            for p, _arity in comp:
                derived[p] = seen.rows.get(p, [])
            if lazy is not None:
                lazy.done_stored.update(p for p, _a in comp)  # stored round by round
            if ckey is not None and ctable is not None and case is not None:
                cid = case.cid
                if all(r and r[0] == cid for p, _a in comp for r in derived[p]):
                    ctable[ckey] = {p: [r[1:] for r in derived[p]] for p, _a in comp}
                    if len(ctable) > _MEMO_SIZE:
                        ctable.popitem(last=False)

    def _first_round(
        self,
        pred: str,
        arity: int,
        case: _CaseMemo | None,
        deadline: float | None,
        round_memo: dict,
    ) -> list[tuple[Const, ...]]:
        """``pred``'s first-round tuples: each rule of :meth:`_split_recursive` remembered or
        queried alone, then the other rules (one query)."""
        backend = self.backend
        rows: list[tuple[Const, ...]] = []
        for rule, inputs in self._split[pred]:
            table = self._rule_memo[rule.index]
            key = self._signature(pred, case, inputs) if case is not None else None
            got = _recall(table, key, case)
            if got is None:
                got = backend.query_all(
                    f"{pred}#r{rule.index}", arity, deadline=deadline, subgoals=round_memo
                )
                _remember(table, key, case, got)
            rows += got
        rows += backend.query_all(f"{pred}#rest", arity, deadline=deadline, subgoals=round_memo)
        return rows

    def _validate(self, fact: Fact) -> None:
        """Arity and argument types against the declaration (each shape checked once)."""
        shape = (fact.pred, tuple(map(type, fact.args)))
        if shape in self._valid:
            return
        self._check_fact(fact)
        self._valid.add(shape)

    def _check_fact(self, fact: Fact) -> None:
        arity = self._arity.get(fact.pred)
        if arity is not None and arity != len(fact.args):
            raise InputError(
                f"fact {fact} has {len(fact.args)} argument(s) but {fact.pred} has {arity}"
            )
        decl = self.program.decls.get(fact.pred)
        if decl is not None:
            for i, (a, typ) in enumerate(zip(fact.args, decl.arg_types, strict=True)):
                want = _TYPES.get(typ)
                if want is not None and type(a) is not want:
                    raise InputError(
                        f"fact {fact}: argument {i + 1} ({decl.arg_names[i]}) must be {typ}"
                    )

    def shared_facts(self) -> SharedFacts:
        """The policy facts as the proof checker's :class:`SharedFacts` (built once)."""
        if self._shared is None:
            self._shared = SharedFacts(
                Fact(p, r) for p, rows in self._policy.rows.items() for r in rows
            )
        return self._shared

    def fact_count(self) -> int:
        """Stored clauses in the backend (rules + facts); flat across evaluations."""
        return self.backend.fact_count()

    def evaluate(
        self, case_facts: FactSet | None = None, predicates: Iterable[str] | None = None
    ) -> Result:
        """Assert the case's facts, materialize every derived predicate (or only ``predicates``
        and what they depend on), retract the facts."""
        with profile.stage("engine"):
            return self._evaluate(case_facts, predicates)

    def _evaluate(
        self, case_facts: FactSet | None = None, predicates: Iterable[str] | None = None
    ) -> Result:
        case_facts = case_facts if case_facts is not None else FactSet()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        derived: dict[str, list[tuple[Const, ...]]] = {}
        case_index = _Index()
        wanted = (
            {p for p, _a in self._idb}
            if predicates is None
            else self._closure(predicates) & set(dict(self._idb))
        )
        to_assert = []
        dirty = False
        for fact in case_facts:
            self._validate(fact)
            if (
                not self._policy.has(fact.pred, fact.args)
                and case_index.add(fact.pred, fact.args)
                and (fact.pred in self._read or fact.pred in self._deps)
            ):  # a fact no rule reads is in the model but need not reach pyDatalog
                to_assert.append(fact)
                dirty = dirty or fact.pred in self._fixed
        case: _CaseMemo | None = None
        if dirty:  # the case changes what the fast backend assumes fixed
            backend = self._full_backend()
        else:
            case = self._case_memo(to_assert, case_index, derived)
            backend = self.backend
            for p in wanted & self._static:
                derived[p] = self._static_rows[p]
            wanted = wanted - self._static
        whole = None
        if case is not None and predicates is None:
            # the same facts up to the case id: the same model up to the case id
            whole = frozenset((f.pred, tkey(f.args[1:])) for f in to_assert)
            hit = self._whole.get(whole)
            if hit is not None:
                self._whole.move_to_end(whole)
                cid = case.cid
                derived.update(hit.rows_for(cid))
                ordered = {p: derived[p] for p, _a in self._idb if p in derived}
                res = Result(self, case_facts, case_index, ordered)
                res._memo = (cid, whole, hit)
                return res
        added: list[Any] = []
        watch = ORDER_WATCH
        saved = watch.cid, watch.seen
        watch.cid, watch.seen = (
            (case.cid if whole is not None and case is not None else None),
            False,
        )
        lazy = _Lazy(
            backend,
            case_index.rows,
            derived,
            added,
            self._static if backend is self.backend else (),
        )
        with backend.active():
            try:
                self._run_strata(backend, wanted, derived, added, deadline, case, lazy)
            finally:
                for clause in added:
                    backend.remove_fact(clause)
                ordered_cid = watch.seen
                watch.cid, watch.seen = saved
        entry = None
        if whole is not None and case is not None and not ordered_cid:
            cid = case.cid
            own = {p: rows for p, rows in derived.items() if p not in self._static}
            entry = self._whole[whole] = _Whole(cid, own, _order_free(case_index.rows, cid))
            if len(self._whole) > WHOLE_MEMO_SIZE:
                self._whole.popitem(last=False)
        ordered = {p: derived[p] for p, _a in self._idb if p in derived}
        res = Result(self, case_facts, case_index, ordered)
        if entry is not None and whole is not None and case is not None:
            res._memo = (case.cid, whole, entry)
        return res

    def _case_memo(
        self,
        facts: list[Fact],
        case_index: _Index,
        derived: dict[str, list[tuple[Const, ...]]],
    ) -> _CaseMemo | None:
        """The case id, when every asserted case fact starts with one same string that occurs
        nowhere else (not in another argument, nor among the program's and policy's
        constants): then strata can be remembered across cases (else None)."""
        if not facts or not self._memo_inputs:
            return None
        cid = facts[0].args[0] if facts[0].args else None
        if type(cid) is not str:
            return None
        for f in facts:
            if not f.args or type(f.args[0]) is not str or f.args[0] != cid or cid in f.args[1:]:
                return None
        if (str, cid) in self._all_constants():
            return None
        return _CaseMemo(cid, case_index.rows, derived)

    def evaluate_many(self, cases: Iterable[FactSet]) -> Iterator[Result]:
        """Evaluate cases one after another (lazily); the fastest way to run a batch."""
        for case in cases:
            yield self.evaluate(case)


class Result:
    """The model of one evaluation: base facts (policy + case) and derived atoms."""

    def __init__(
        self,
        engine: Engine,
        case_facts: FactSet,
        case_index: _Index,
        derived: dict[str, list[tuple[Const, ...]]],
    ) -> None:
        self.engine = engine
        self.program = engine.program
        self.case_facts = case_facts
        self._case = case_index
        self._derived_rows = derived
        self._derived_keys: dict[str, set[tuple[Any, ...]]] = {}  # built per predicate
        self._sorted: dict[str, list[tuple[Const, ...]]] = {}
        self._prover: Any = None
        self._memo: tuple[str, Any, _Whole] | None = None  # (case id, key, remembered entry)

    @property
    def memo_key(self) -> tuple[str, Any] | None:
        """(case id, key): the case's facts up to its id, when everything built from this model
        is the same for another case with the same key, renamed (see ``_order_free``)."""
        if self._memo is None or not self._memo[2].order_free():
            return None
        return self._memo[0], self._memo[1]

    # ---- membership -------------------------------------------------------------------------

    def _dkeys(self, pred: str) -> set[tuple[Any, ...]] | None:
        """The type-exact keys of ``pred``'s derived tuples (None when it is not derived),
        built on first need: a proof touches a few predicates of a model of ~200."""
        keys = self._derived_keys.get(pred)
        if keys is None:
            rows = self._derived_rows.get(pred)
            if rows is None:
                return None
            keys = self._derived_keys[pred] = {tkey(r) for r in rows}
        return keys

    def is_base(self, fact: Fact) -> bool:
        """A given fact (policy or case)."""
        return self.engine._policy.has(fact.pred, fact.args) or self._case.has(fact.pred, fact.args)

    def __contains__(self, fact: object) -> bool:
        if not isinstance(fact, Fact):
            return False
        if self.is_base(fact):
            return True
        keys = self._dkeys(fact.pred)
        return keys is not None and tkey(fact.args) in keys

    def holds(self, fact: Fact) -> bool:
        """Membership in the model, for any atom (EDB or IDB)."""
        return fact in self

    def provenance(self, fact: Fact) -> list[Provenance]:
        return self.case_facts.provenance(fact) or self.engine.policy_facts.provenance(fact)

    # ---- listing ------------------------------------------------------------------------------

    def atoms(self, pred: str) -> list[tuple[Const, ...]]:
        """All atoms of ``pred`` in the model (derived and given), sorted deterministically."""
        return list(self._atoms_view(pred))

    def _atoms_view(self, pred: str) -> list[tuple[Const, ...]]:
        """:meth:`atoms` without the copy (callers must not change it)."""
        cached = self._sorted.get(pred)
        if cached is None:
            if pred not in self._derived_rows and self.program.is_idb(pred):
                raise ValueError(f"{pred} was not materialized (evaluate(predicates=...))")
            sources = [
                src
                for src in (
                    self.engine._policy.rows.get(pred, ()),
                    self._case.rows.get(pred, ()),
                    self._derived_rows.get(pred, ()),
                )
                if src
            ]
            if len(sources) == 1 and len(set(sources[0])) == len(sources[0]):
                found: Iterable[tuple[Const, ...]] = sources[0]  # no two rows even ==
            else:
                rows: dict[tuple[Any, ...], tuple[Const, ...]] = {}
                for source in sources:
                    for r in source:
                        rows.setdefault(tkey(r), r)
                found = rows.values()
            cached = sorted_rows(found)
            self._sorted[pred] = cached
        return cached

    def facts(self, pred: str) -> list[Fact]:
        return [Fact(pred, a) for a in self.atoms(pred)]

    def derived_predicates(self) -> list[str]:
        return list(self._derived_rows)

    # ---- proofs -------------------------------------------------------------------------------

    def prove(self, fact: Fact) -> Any:
        """A minimal-height proof tree (:class:`~policystrata.engine.proof.ProofNode`)."""
        with profile.stage("proofs"):
            if self._prover is None:
                from policystrata.engine.proof import Prover

                self._prover = Prover(self)
            return self._prover.prove(fact)

    def why_not(self, fact: Fact) -> list[dict[str, Any]]:
        """One-level explanation of why an atom is not in the model."""
        if self._prover is None:
            from policystrata.engine.proof import Prover

            self._prover = Prover(self)
        return self._prover.why_not(fact.pred, fact.args)

    @property
    def fact_lookup(self) -> FactLookup:
        """The given facts (policy + case) for :func:`check_proof` (it derives the rest). The
        policy facts are indexed once per engine, and so is the checker's own model of the
        strata that read only them."""
        facts = [Fact(p, r) for p, rows in self._case.rows.items() for r in rows]
        return FactLookup(facts, shared=self.engine.shared_facts())
