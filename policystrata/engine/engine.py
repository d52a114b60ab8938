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
from collections.abc import Iterable, Iterator
from typing import Any

from policystrata.engine.ast import Program
from policystrata.engine.backend import Backend, prev_name
from policystrata.engine.proofcheck import FactLookup
from policystrata.errors import InputError
from policystrata.facts import Const, Fact, FactSet, Provenance

_TYPES = {"string": str, "int": int, "float": float, "bool": bool}


def tkey(args: tuple[Const, ...]) -> tuple[Any, ...]:
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


class Engine:
    """Evaluate a checked :class:`Program` over policy facts (loaded once) and per-case facts.

    ``timeout`` (seconds, ``None`` for no limit) bounds each :meth:`evaluate`; on expiry
    :class:`EvaluationTimeout` is raised and the case's facts are already retracted.
    """

    def __init__(self, program: Program, policy_facts: FactSet, timeout: float | None = 10.0):
        if not program.checked:
            from policystrata.engine.checker import check_program

            check_program(program)
        self.program = program
        self.policy_facts = policy_facts
        self.timeout = timeout
        self._idb = [(p, program.arity(p) or 0) for p in program.idb_predicates()]
        self._arity = {p: program.arity(p) for p in {*program.decls, *dict(self._idb)}}
        self._policy = _Index()
        self.backend = Backend()
        with self.backend.active():
            self._recursive = self.backend.add_program(program)
            for fact in policy_facts:
                self._validate(fact)
                if self._policy.add(fact.pred, fact.args):
                    self.backend.add_fact(fact.pred, fact.args)

    def _validate(self, fact: Fact) -> None:
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

    def fact_count(self) -> int:
        """Stored clauses in the backend (rules + facts); flat across evaluations."""
        return self.backend.fact_count()

    def evaluate(self, case_facts: FactSet | None = None) -> Result:
        """Assert the case's facts, materialize every derived predicate, retract the facts."""
        case_facts = case_facts if case_facts is not None else FactSet()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        derived: dict[str, list[tuple[Const, ...]]] = {}
        case_index = _Index()
        added = []
        backend = self.backend
        with backend.active():
            try:
                for fact in case_facts:
                    self._validate(fact)
                    if not self._policy.has(fact.pred, fact.args) and case_index.add(
                        fact.pred, fact.args
                    ):
                        added.append(backend.add_fact(fact.pred, fact.args))
                known: dict[str, _Index] = {}
                for comp in self._recursive:  # our fixpoint: pyDatalog never sees recursion
                    seen = _Index()
                    while True:
                        new = [
                            (p, row)
                            for p, arity in comp
                            for row in backend.query_all(p, arity, deadline=deadline)
                            if seen.add(p, row)
                        ]
                        if not new:
                            break
                        for p, row in new:
                            added.append(backend.add_fact(prev_name(p), row))
                    for p, _arity in comp:
                        known[p] = seen
                subgoals: dict = {}
                for pred, arity in self._idb:
                    if pred in known:
                        derived[pred] = known[pred].rows.get(pred, [])
                    else:
                        derived[pred] = backend.query_all(
                            pred, arity, deadline=deadline, subgoals=subgoals
                        )
            finally:
                for clause in added:
                    backend.remove_fact(clause)
        return Result(self, case_facts, case_index, derived)

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
        self._derived_keys: dict[str, set[tuple[Any, ...]]] | None = None
        self._sorted: dict[str, list[tuple[Const, ...]]] = {}
        self._prover: Any = None

    # ---- membership -------------------------------------------------------------------------

    def _dkeys(self) -> dict[str, set[tuple[Any, ...]]]:
        if self._derived_keys is None:
            self._derived_keys = {
                p: {tkey(r) for r in rows} for p, rows in self._derived_rows.items()
            }
        return self._derived_keys

    def is_base(self, fact: Fact) -> bool:
        """A given fact (policy or case)."""
        return self.engine._policy.has(fact.pred, fact.args) or self._case.has(fact.pred, fact.args)

    def __contains__(self, fact: object) -> bool:
        if not isinstance(fact, Fact):
            return False
        if self.is_base(fact):
            return True
        keys = self._dkeys().get(fact.pred)
        return keys is not None and tkey(fact.args) in keys

    def holds(self, fact: Fact) -> bool:
        """Membership in the model, for any atom (EDB or IDB)."""
        return fact in self

    def provenance(self, fact: Fact) -> list[Provenance]:
        return self.case_facts.provenance(fact) or self.engine.policy_facts.provenance(fact)

    # ---- listing ------------------------------------------------------------------------------

    def atoms(self, pred: str) -> list[tuple[Const, ...]]:
        """All atoms of ``pred`` in the model (derived and given), sorted deterministically."""
        cached = self._sorted.get(pred)
        if cached is None:
            rows: dict[tuple[Any, ...], tuple[Const, ...]] = {}
            for source in (
                self.engine._policy.rows.get(pred, ()),
                self._case.rows.get(pred, ()),
                self._derived_rows.get(pred, ()),
            ):
                for r in source:
                    rows.setdefault(tkey(r), r)
            cached = sorted(rows.values(), key=sort_key)
            self._sorted[pred] = cached
        return list(cached)

    def facts(self, pred: str) -> list[Fact]:
        return [Fact(pred, a) for a in self.atoms(pred)]

    def derived_predicates(self) -> list[str]:
        return list(self._derived_rows)

    # ---- proofs -------------------------------------------------------------------------------

    def prove(self, fact: Fact) -> Any:
        """A minimal-height proof tree (:class:`~policystrata.engine.proof.ProofNode`)."""
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
        """The given facts (policy + case) for :func:`check_proof` (it derives the rest)."""
        facts = [Fact(p, r) for p, rows in self.engine._policy.rows.items() for r in rows]
        facts += [Fact(p, r) for p, rows in self._case.rows.items() for r in rows]
        return FactLookup(facts)
