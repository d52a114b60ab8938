"""Remembered strata: a case-local stratum (or, in a recursive component's first round, a
case-local rule) whose inputs (up to the case id) were seen before gets the remembered tuples,
and every derived predicate equals a fresh evaluation's."""

from __future__ import annotations

from policystrata.bench.runner import Runner
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.engine import Engine, parse_program
from policystrata.engine import engine as engine_mod
from policystrata.facts import Fact, FactSet, Provenance


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
    # never remembers a stratum, a rule or a recursive component
    fresh._memo_inputs, fresh._split, fresh._comp_memo = {}, {}, {}
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
    assert any(table for table in checker.engine._comp_memo.values())


REC = """
.decl edge(c, a, b)
.decl start(c, a)
.decl bad(c, a)
.decl blocked(a)
reach(C, X) :- start(C, X).
reach(C, Y) :- reach(C, X), edge(C, X, Y), !blocked(Y).
@message "{X} is reached and bad"
alarm(C, X) :- reach(C, X), bad(C, X).
"""


def _graph(cid: str, edges, start="a", bad=("d",)) -> FactSet:
    fs = FactSet()
    for a, b in edges:
        fs.add("edge", cid, a, b, prov=Provenance(f"{cid}.yaml", line=len(fs) + 1))
    fs.add("start", cid, start, prov=Provenance(f"{cid}.yaml", line=99))
    for b in bad:
        fs.add("bad", cid, b)
    return fs


def _rec_component(engine: Engine) -> int:
    (index,) = (i for i, comp in enumerate(engine._strata) if comp[0][0] == "reach")
    return index


def _count_queries(monkeypatch) -> list[str]:
    """Every predicate the engine asks pyDatalog for, in order, from now on."""
    from policystrata.engine import backend as backend_mod

    asked: list[str] = []
    real = backend_mod.Backend.query_all

    def counting(self, pred, *args, **kwargs):
        asked.append(pred)
        return real(self, pred, *args, **kwargs)

    monkeypatch.setattr(backend_mod.Backend, "query_all", counting)
    return asked


def test_a_recursive_component_is_remembered_whole_by_its_inputs(monkeypatch):
    """A case-local recursive component whose inputs (up to the case id) were seen before gets
    its whole fixpoint recalled without a query; the model and the proofs over it (fact leaves'
    provenance from the new case's own facts) equal a fresh engine's."""
    from policystrata.engine import check_proof

    policy = _facts(("blocked", "z"))
    engine = Engine(parse_program(REC, source="r.dl"), policy)
    fresh = Engine(parse_program(REC, source="r.dl"), policy)
    fresh._comp_memo = {}
    comp = _rec_component(engine)
    assert set(engine._comp_inputs) == {comp}
    assert engine._comp_inputs[comp] == ["edge", "start"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("c", "z"), ("z", "e")]
    asked = _count_queries(monkeypatch)
    # the whole-evaluation memo would answer the second case before any component
    monkeypatch.setattr(engine_mod, "WHOLE_MEMO_SIZE", -1)
    first = engine.evaluate(_graph("k1", edges))
    assert any(p.startswith("reach") for p in asked) and len(engine._comp_memo[comp]) == 1
    asked.clear()
    # the same edges and start under another case id, another bad node: a hit
    second = engine.evaluate(_graph("k2", edges, bad=("c",)))
    assert not any(p.startswith("reach") for p in asked), asked
    assert len(engine._comp_memo[comp]) == 1
    want = fresh.evaluate(_graph("k2", edges, bad=("c",)))
    for pred in ("reach", "alarm"):
        assert second.atoms(pred) == want.atoms(pred)
    assert second.atoms("reach") == [(c, *r[1:]) for r in first.atoms("reach") for c in ["k2"]]
    assert second.atoms("alarm") == [("k2", "c")]
    got = second.prove(Fact("alarm", ("k2", "c")))
    assert got == want.prove(Fact("alarm", ("k2", "c")))
    assert got.to_json() == want.prove(Fact("alarm", ("k2", "c"))).to_json()
    leaves = [n for n in got.walk() if n.kind == "fact"]
    assert leaves and all(str(p).startswith("k2.yaml") for n in leaves for p in n.provenance)
    check_proof(got, engine.program, second.fact_lookup)
    # other inputs: a miss, remembered beside the first
    asked.clear()
    third = engine.evaluate(_graph("k3", edges[:2]))
    assert any(p.startswith("reach") for p in asked) and len(engine._comp_memo[comp]) == 2
    assert third.atoms("reach") == fresh.evaluate(_graph("k3", edges[:2])).atoms("reach")


def test_a_component_with_an_empty_input_is_not_queried(monkeypatch):
    """A component some positive input of whose every rule is empty for the case derives
    nothing and is never asked; what depends on it is still right."""

    engine = Engine(parse_program(REC, source="r.dl"), _facts(("blocked", "z")))
    asked = _count_queries(monkeypatch)
    fs = FactSet()
    fs.add("edge", "k1", "a", "b")
    fs.add("bad", "k1", "b")  # no start: reach is empty, and so is alarm
    r = engine.evaluate(fs)
    assert r.atoms("reach") == [] and r.atoms("alarm") == []
    assert asked == []
    fs.add("start", "k1", "a")
    r = engine.evaluate(fs)
    assert r.atoms("alarm") == [("k1", "b")] and "alarm" in asked


def test_case_facts_reach_the_backend_only_when_a_component_asks(monkeypatch):
    """Case facts are asserted only for components that are queried (none when every one is
    recalled or empty), every clause asserted is retracted, and facts given for a derived
    predicate stay in its tuples (and keep its component from being recalled)."""
    from policystrata.engine import backend as backend_mod

    engine = Engine(parse_program(REC, source="r.dl"), _facts(("blocked", "z")))
    monkeypatch.setattr(engine_mod, "WHOLE_MEMO_SIZE", -1)
    before = engine.fact_count()
    asserted: list[str] = []
    real = backend_mod.Backend.add_fact

    def counting(self, pred, args):
        asserted.append(pred)
        return real(self, pred, args)

    monkeypatch.setattr(backend_mod.Backend, "add_fact", counting)
    edges = [("a", "b"), ("b", "c")]
    engine.evaluate(_graph("k1", edges, bad=()))
    assert "edge" in asserted and "bad" not in asserted  # alarm: no bad node, never asked
    assert engine.fact_count() == before
    asserted.clear()
    r = engine.evaluate(_graph("k2", edges, bad=()))  # reach recalled, alarm empty
    assert asserted == [] and r.atoms("reach") == [("k2", "a"), ("k2", "b"), ("k2", "c")]
    given = _graph("k3", edges, bad=("x",))
    given.add("reach", "k3", "x")
    r = engine.evaluate(given)
    assert r.atoms("reach") == [("k3", "a"), ("k3", "b"), ("k3", "c"), ("k3", "x")]
    assert r.atoms("alarm") == [("k3", "x")]
    assert engine.fact_count() == before


def test_no_case_of_a_built_in_domain_brings_facts_of_a_predicate_assumed_fixed():
    """The checker tells the engine which shipped input predicates are the same for every case
    (``check.case_free``: declared with a first argument other than ``case``). A case bringing
    facts of one is judged on the slower full backend: none of a run's cases, nor of a scan's
    fuzz mutants, may do so (a shipped per-case predicate must name its first argument case)."""
    from policystrata.scan.fuzz import FuzzContext, fuzz_record

    for domain in ("support_saas", "finance_saas", "analytics_clickhouse"):
        checker = Checker.open(domain)
        fixed = checker.engine._given_fixed
        assert fixed and "fuzz_mutant" not in fixed
        runner = Runner(checker, minimize=True)
        ctx = FuzzContext(checker.domain)
        judged = 0
        for suite in ("generated", "clean_controls"):
            for case in resolve_suite(checker.domain, suite, None, 12, None).cases():
                ev = runner.evaluate(case)
                if ev.run is None or ev.witnesses:
                    continue
                detector_case = runner._case(case, ev.run, case.query, f"k{case.index}")
                fuzzed = fuzz_record(checker, ctx, detector_case, 1729, 8)
                judged += len(fuzzed.judged)
        assert judged, domain
        assert checker.engine._full is None, domain
