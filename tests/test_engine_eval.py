"""Engine evaluation: typed constants, exact floats, isolation, flat memory, timeout, batches."""

from __future__ import annotations

import pytest

from policystrata.engine import Engine, EvaluationTimeout, parse_program
from policystrata.errors import InputError
from policystrata.facts import Fact, FactSet

TYPED = """
.decl val(case, v: any)
same(C, V) :- val(C, V), V = 1.
as_float(C, V) :- val(C, V), V = 1.0.
as_bool(C, V) :- val(C, V), V = true.
as_str(C, V) :- val(C, V), V = "1".
small(C, V) :- val(C, V), V < 1.5.
exact(C, V) :- val(C, V), V = 0.1234567890123.
"""


def case_of(*facts: tuple) -> FactSet:
    fs = FactSet()
    for pred, *args in facts:
        fs.add(pred, *args)
    return fs


def test_typed_constants_stay_distinct_and_floats_exact():
    engine = Engine(parse_program(TYPED, source="t.dl"), FactSet())
    values = [1, 1.0, True, "1", 0.1234567890123, 0.12345678901]
    result = engine.evaluate(case_of(*[("val", "c", v) for v in values]))
    assert result.atoms("same") == [("c", 1)] and type(result.atoms("same")[0][1]) is int
    assert [type(v) for _c, v in result.atoms("as_float")] == [float]
    assert result.atoms("as_bool") == [("c", True)]
    assert result.atoms("as_str") == [("c", "1")]
    assert result.atoms("exact") == [("c", 0.1234567890123)]  # not rounded to 8 digits
    small = result.atoms("small")  # numbers compare numerically; bool and str are unordered
    assert {(type(v), v) for _c, v in small} == {
        (int, 1),
        (float, 1.0),
        (float, 0.1234567890123),
        (float, 0.12345678901),
    }
    assert len(result.atoms("val")) == 6
    assert Fact("val", ("c", True)) in result and Fact("val", ("c", 2)) not in result


def test_two_engines_do_not_share_state():
    p1 = parse_program(".decl e(a)\nout(X) :- e(X).\n", source="one.dl")
    p2 = parse_program(
        '.decl e(a)\nout(X) :- e(X), X != "b".\nother(X) :- e(X).\n', source="two.dl"
    )
    e1 = Engine(p1, case_of(("e", "a")))
    e2 = Engine(p2, case_of(("e", "b")))
    assert e1.evaluate().atoms("out") == [("a",)]
    assert e2.evaluate().atoms("out") == []
    assert e2.evaluate().atoms("other") == [("b",)]
    r1 = e1.evaluate(case_of(("e", "z")))
    assert r1.atoms("out") == [("a",), ("z",)]
    assert e2.evaluate().atoms("other") == [("b",)]


def test_evaluate_retracts_case_facts():
    prog = parse_program(
        ".decl edge(c, a, b)\npath(C, X, Y) :- edge(C, X, Y).\n"
        "path(C, X, Y) :- path(C, X, Z), edge(C, Z, Y).\n",
        source="p.dl",
    )
    engine = Engine(prog, FactSet())
    baseline = engine.fact_count()
    for i in range(200):
        case = case_of(*[("edge", f"c{i}", f"n{j}", f"n{(j + 1) % 5}") for j in range(5)])
        result = engine.evaluate(case)
        assert len(result.atoms("path")) == 25
    assert engine.fact_count() == baseline
    assert engine.evaluate().atoms("path") == []


def test_case_fact_equal_to_policy_fact_is_not_retracted():
    prog = parse_program(".decl e(a)\nout(X) :- e(X).\n", source="t.dl")
    engine = Engine(prog, case_of(("e", "a")))
    engine.evaluate(case_of(("e", "a")))
    assert engine.evaluate().atoms("out") == [("a",)]


def test_timeout_fires_and_engine_stays_usable():
    prog = parse_program(
        ".decl n(x: int)\nbig(A, B, C, D) :- n(A), n(B), n(C), n(D).\nsmall(A) :- n(A).\n",
        source="slow.dl",
    )
    engine = Engine(prog, FactSet(), timeout=0.2)
    baseline = engine.fact_count()
    with pytest.raises(EvaluationTimeout, match="time limit"):
        engine.evaluate(case_of(*[("n", i) for i in range(80)]))
    assert engine.fact_count() == baseline
    engine.timeout = 5
    assert engine.evaluate(case_of(("n", 1))).atoms("small") == [(1,)]


def test_evaluate_many_and_fact_validation():
    prog = parse_program(".decl rows(t, n: int)\nbig(T) :- rows(T, N), N > 10.\n", source="t.dl")
    engine = Engine(prog, FactSet())
    results = list(engine.evaluate_many(case_of(("rows", "t", n)) for n in (5, 50)))
    assert [r.atoms("big") for r in results] == [[], [("t",)]]
    with pytest.raises(InputError, match="must be int"):
        engine.evaluate(case_of(("rows", "t", "50")))
    with pytest.raises(InputError, match="argument"):
        engine.evaluate(case_of(("rows", "t")))


def test_right_recursion_terminates_on_cycles():
    prog = parse_program(
        ".decl e(a: int, b: int)\nr(X, Y) :- e(X, Y).\nr(X, Y) :- e(X, Z), r(Z, Y).\n",
        source="t.dl",
    )
    engine = Engine(prog, case_of(*[("e", i, (i + 1) % 4) for i in range(4)]), timeout=5)
    assert len(engine.evaluate().atoms("r")) == 16


def test_zero_arity_predicates():
    prog = parse_program(".decl flag()\nalarm() :- flag().\nquiet() :- !flag().\n", source="z.dl")
    engine = Engine(prog, FactSet())
    r = engine.evaluate(case_of(("flag",)))
    assert r.atoms("alarm") == [()] and r.atoms("quiet") == []
    r = engine.evaluate()
    assert r.atoms("alarm") == [] and r.atoms("quiet") == [()]


POLICY_ONLY = """
.decl role_of(p, r)
.decl grant(r, m)
.decl asks(c, p, m)
may(P, M) :- role_of(P, R), grant(R, M).
reach(X, Y) :- grant(X, Y).
reach(X, Z) :- reach(X, Y), grant(Y, Z).
denied(C, M) :- asks(C, P, M), !may(P, M).
"""


def test_policy_only_strata_are_computed_once_and_recomputed_when_a_case_touches_them():
    policy = case_of(("role_of", "ann", "analyst"), ("grant", "analyst", "m1"))
    engine = Engine(parse_program(POLICY_ONLY, source="p.dl"), policy)
    assert engine._static == {"may", "reach"}
    baseline = engine.fact_count()
    r = engine.evaluate(case_of(("asks", "c1", "ann", "m1"), ("asks", "c1", "ann", "m2")))
    assert r.atoms("denied") == [("c1", "m2")] and r.atoms("may") == [("ann", "m1")]
    # a case bringing facts of a policy-only stratum's input: that stratum is recomputed
    r = engine.evaluate(case_of(("asks", "c2", "ann", "m2"), ("grant", "analyst", "m2")))
    assert r.atoms("denied") == [] and r.atoms("may") == [("ann", "m1"), ("ann", "m2")]
    assert r.atoms("reach") == [("analyst", "m1"), ("analyst", "m2")]
    assert engine.fact_count() == baseline
    # ... and afterwards the kept tuples are back
    r = engine.evaluate(case_of(("asks", "c3", "ann", "m2")))
    assert r.atoms("denied") == [("c3", "m2")] and r.atoms("may") == [("ann", "m1")]


def test_evaluate_only_the_predicates_asked_for():
    policy = case_of(("role_of", "ann", "analyst"), ("grant", "analyst", "m1"))
    engine = Engine(parse_program(POLICY_ONLY, source="p.dl"), policy)
    full = engine.evaluate(case_of(("asks", "c1", "ann", "m2")))
    part = engine.evaluate(case_of(("asks", "c1", "ann", "m2")), predicates=["denied"])
    assert part.atoms("denied") == full.atoms("denied") == [("c1", "m2")]
    assert "reach" not in part.derived_predicates()
    with pytest.raises(ValueError, match="not materialized"):
        part.atoms("reach")


def test_semi_naive_rounds_reach_the_same_fixpoint_for_non_linear_and_mutual_recursion():
    """After the first round a recursive rule is asked once per component literal in its body,
    that literal reading only the last round's new tuples (#delta): non-linear recursion
    (two such literals) and mutual recursion still reach the whole fixpoint."""
    prog = parse_program(
        ".decl e(c, a: int, b: int)\n"
        "tc(C, X, Y) :- e(C, X, Y).\n"
        "tc(C, X, Y) :- tc(C, X, Z), tc(C, Z, Y).\n"
        "odd(C, X, Y) :- e(C, X, Y).\n"
        "odd(C, X, Y) :- even(C, X, Z), e(C, Z, Y).\n"
        "even(C, X, Y) :- odd(C, X, Z), e(C, Z, Y).\n",
        source="t.dl",
    )
    engine = Engine(prog, FactSet())
    baseline = engine.fact_count()
    n = 12  # a chain 0 -> 1 -> ... -> 11: log2 rounds for tc, n rounds for odd/even
    result = engine.evaluate(case_of(*[("e", "k", i, i + 1) for i in range(n - 1)]))
    assert sorted(result.atoms("tc")) == [("k", i, j) for i in range(n) for j in range(i + 1, n)]
    assert sorted(result.atoms("odd")) == [
        ("k", i, j) for i in range(n) for j in range(i + 1, n) if (j - i) % 2 == 1
    ]
    assert sorted(result.atoms("even")) == [
        ("k", i, j) for i in range(n) for j in range(i + 1, n) if (j - i) % 2 == 0
    ]
    assert engine.fact_count() == baseline  # stored and #delta tuples retracted


def test_timeout_inside_a_recursive_component_retracts_its_last_round():
    prog = parse_program(
        ".decl e(c, a: int, b: int)\n"
        "tc(C, X, Y) :- e(C, X, Y).\n"
        "tc(C, X, Y) :- tc(C, X, Z), tc(C, Z, Y).\n",
        source="t.dl",
    )
    engine = Engine(prog, FactSet(), timeout=0.3)
    baseline = engine.fact_count()
    with pytest.raises(EvaluationTimeout, match="time limit"):
        engine.evaluate(case_of(*[("e", "k", i, i + 1) for i in range(400)]))
    assert engine.fact_count() == baseline
    engine.timeout = 5
    assert len(engine.evaluate(case_of(("e", "k", 1, 2), ("e", "k", 2, 3))).atoms("tc")) == 3


def test_an_empty_fixed_predicate_folds_its_rules_and_a_case_bringing_facts_is_still_right():
    prog = parse_program(
        ".decl asks(case, m)\n.decl retired(m)\n.decl granted(m)\n"
        "ok(C, M) :- asks(C, M), granted(M).\n"
        "stale(C, M) :- asks(C, M), retired(M).\n",
        source="t.dl",
    )
    engine = Engine(prog, case_of(("granted", "m1")), fixed=["retired", "granted"])
    assert engine._full is None
    r = engine.evaluate(case_of(("asks", "c1", "m1"), ("asks", "c1", "m2")))
    assert r.atoms("ok") == [("c1", "m1")] and r.atoms("stale") == []
    assert engine._full is None  # judged on the fast backend, stale's rule not asserted there
    # a case that does bring facts of a predicate assumed fixed: the full program, same answer
    r = engine.evaluate(case_of(("asks", "c2", "m2"), ("retired", "m2")))
    assert r.atoms("stale") == [("c2", "m2")] and r.atoms("ok") == []
    assert engine._full is not None
