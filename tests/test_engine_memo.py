"""Remembered strata: a case-local stratum (or, in a recursive component's first round, a
case-local rule) whose inputs (up to the case id) were seen before gets the remembered tuples,
and every derived predicate equals a fresh evaluation's."""

from __future__ import annotations

from policystrata.bench.runner import Runner
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.engine import Engine, parse_program
from policystrata.facts import FactSet


def _facts(*facts: tuple) -> FactSet:
    fs = FactSet()
    for pred, *args in facts:
        fs.add(pred, *args)
    return fs


PROG = """
.decl role_of(p, r)
.decl grant(r, m)
.decl asks(c, p, m)
.decl shows(c, m)
may(P, M) :- role_of(P, R), grant(R, M).
denied(C, M) :- asks(C, P, M), !may(P, M).
shown_denied(C, M) :- denied(C, M), shows(C, M).
odd(C, X) :- asks(C, X, _), asks(X, _, _).
"""


def test_case_local_strata_are_remembered_by_their_inputs():
    policy = _facts(("role_of", "ann", "analyst"), ("grant", "analyst", "m1"))
    engine = Engine(parse_program(PROG, source="m.dl"), policy)
    assert set(engine._memo_inputs) == {"denied", "shown_denied"}  # odd reads X as a case
    r1 = engine.evaluate(_facts(("asks", "c1", "ann", "m2"), ("shows", "c1", "m2")))
    assert r1.atoms("shown_denied") == [("c1", "m2")]
    assert len(engine._memo["denied"]) == 1
    r2 = engine.evaluate(_facts(("asks", "c2", "ann", "m2"), ("shows", "c2", "m3")))
    assert r2.atoms("denied") == [("c2", "m2")] and r2.atoms("shown_denied") == []
    assert len(engine._memo["denied"]) == 1  # same input up to the case id: remembered
    assert len(engine._memo["shown_denied"]) == 2


def test_nothing_is_remembered_when_the_case_id_is_not_a_fresh_name():
    policy = _facts(("role_of", "ann", "analyst"), ("grant", "analyst", "m1"))
    engine = Engine(parse_program(PROG, source="m.dl"), policy)
    # the case id is also a constant of the policy facts
    r = engine.evaluate(_facts(("asks", "ann", "ann", "m2")))
    assert r.atoms("denied") == [("ann", "m2")] and not engine._memo["denied"]
    # facts of two cases at once
    r = engine.evaluate(_facts(("asks", "c1", "ann", "m2"), ("asks", "c2", "ann", "m1")))
    assert r.atoms("denied") == [("c1", "m2")] and not engine._memo["denied"]
    # the case id elsewhere in a fact
    r = engine.evaluate(_facts(("asks", "c1", "c1", "m2")))
    assert r.atoms("denied") == [("c1", "m2")] and not engine._memo["denied"]


def test_remembered_strata_match_fresh_evaluations_on_the_detector_rules():
    checker = Checker.open("support_saas")
    fresh = Engine(checker.program, checker.policy_facts)
    fresh._memo_inputs, fresh._split = {}, {}  # never remembers a stratum or a rule
    runner = Runner(checker, minimize=False)
    seen = 0
    for name, count in (("seeded", None), ("generated", 60), ("clean_controls", 40)):
        source = resolve_suite(checker.domain, name, None, count, None)
        for case in source.cases():
            if case.query is None or case.invalid is not None:
                continue
            _canonical, run = runner.stack_runs(case, case.query)
            if isinstance(run, str):
                continue
            facts = checker.artifact_facts(runner._case(case, run, case.query, f"k{case.index}"))
            got, want = checker.engine.evaluate(facts), fresh.evaluate(facts)
            for pred in checker.program.idb_predicates():
                assert got.atoms(pred) == want.atoms(pred), (name, case.index, pred)
            seen += 1
    assert seen > 100
    assert any(table for table in checker.engine._memo.values())
    assert any(table for table in checker.engine._rule_memo.values())
