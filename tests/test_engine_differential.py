"""Differential testing: the pyDatalog engine against a naive reference evaluator, on random
safe stratified programs (negation, comparisons, recursion incl. right recursion over cyclic
graphs). Every derived atom's proof must pass the independent checker and have minimal height."""

from __future__ import annotations

from engine_refeval import evaluate, heights, key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.engine import Engine, check_proof, parse_program
from policystrata.facts import Fact, FactSet

EDB = {"e": 2, "f": 1, "g": 2}
VARS = ["X", "Y", "Z", "W"]
CONSTS = [0, 1, 2, 3, 4]


@st.composite
def programs(draw):
    n_idb = draw(st.integers(1, 4))
    idb = {f"p{i}": draw(st.integers(1, 2)) for i in range(n_idb)}
    lines = [".decl e(a: int, b: int)", ".decl f(a: int)", ".decl g(a: int, b: int)"]
    # always exercise right recursion (rewritten) and left recursion
    lines += [
        "tc(X, Y) :- e(X, Y).",
        "tc(X, Y) :- e(X, Z), tc(Z, Y).",
        "lc(X, Y) :- g(X, Y).",
        "lc(X, Y) :- lc(X, Z), g(Z, Y).",
    ]
    preds = {**EDB, "tc": 2, "lc": 2}
    # declared so that an IDB predicate without any generated rule is still defined (empty)
    lines += [f".decl {p}({', '.join(f'a{i}: any' for i in range(a))})" for p, a in idb.items()]
    for i, (p, arity) in enumerate(idb.items()):
        allowed_pos = {**preds, **{q: a for q, a in list(idb.items())[: i + 1]}}
        allowed_neg = {**preds, **{q: a for q, a in list(idb.items())[:i]}}
        for _ in range(draw(st.integers(1, 3))):
            body = []
            bound: list[str] = []
            for _ in range(draw(st.integers(1, 3))):
                q = draw(st.sampled_from(sorted(allowed_pos)))
                args = []
                for _ in range(allowed_pos[q]):
                    if draw(st.integers(0, 5)) == 0:
                        args.append(str(draw(st.sampled_from(CONSTS))))
                    else:
                        v = draw(st.sampled_from(VARS))
                        args.append(v)
                        bound.append(v)
                body.append(f"{q}({', '.join(args)})")
            if not bound:
                continue
            if draw(st.booleans()):
                q = draw(st.sampled_from(sorted(allowed_neg)))
                args = [draw(st.sampled_from([*bound, "_", "1"])) for _ in range(allowed_neg[q])]
                body.append(f"!{q}({', '.join(args)})")
            if draw(st.booleans()):
                op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
                rhs = draw(st.sampled_from([*bound, "2", "2.5"]))
                body.append(f"{draw(st.sampled_from(bound))} {op} {rhs}")
            if draw(st.booleans()):
                body.append(f"V = {draw(st.sampled_from(CONSTS))}")
                bound.append("V")
            head = [draw(st.sampled_from(bound)) for _ in range(arity)]
            lines.append(f"{p}({', '.join(head)}) :- {', '.join(body)}.")
    return "\n".join(lines) + "\n"


facts_st = st.tuples(
    st.sets(st.tuples(st.sampled_from(CONSTS), st.sampled_from(CONSTS)), max_size=10),
    st.sets(st.sampled_from(CONSTS), max_size=4),
    st.sets(st.tuples(st.sampled_from(CONSTS), st.sampled_from(CONSTS)), max_size=8),
)


def drawn_facts(data):
    """A draw of ``facts_st`` as the engine takes it (policy ``g``, case ``e`` and ``f``) and
    as the reference evaluator does (one list, in that order)."""
    e, f, g = data
    policy, case, facts = FactSet(), FactSet(), []
    for a, b in sorted(g):
        policy.add("g", a, b)
        facts.append(("g", (a, b)))
    for a, b in sorted(e):
        case.add("e", a, b)
        facts.append(("e", (a, b)))
    for a in sorted(f):
        case.add("f", a)
        facts.append(("f", (a,)))
    return policy, case, facts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), data=facts_st)
def test_engine_matches_reference(text, data):
    program = parse_program(text, source="gen.dl")
    policy, case, facts = drawn_facts(data)
    engine = Engine(program, policy, timeout=30)
    result = engine.evaluate(case)
    ref = evaluate(program, facts)
    ref_h = heights(program, facts, ref)
    lookup = result.fact_lookup
    for pred in program.idb_predicates():
        got = {key(row) for row in result.atoms(pred)}
        assert got == ref.get(pred, set()), f"{pred} differs for\n{text}"
        for row in result.atoms(pred):
            proof = result.prove(Fact(pred, row))
            check_proof(proof, program, lookup)
            assert proof.height() == ref_h[(pred, key(row))], (pred, row, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), data=facts_st)
def test_proof_checker_model_matches_reference(text, data):
    """The independent proof checker's own (semi-naive) model, against the reference."""
    from policystrata.engine.proofcheck import FactLookup, _rkey

    program = parse_program(text, source="gen.dl")
    e, f, g = data
    facts = [("g", (a, b)) for a, b in sorted(g)]
    facts += [("e", (a, b)) for a, b in sorted(e)] + [("f", (a,)) for a in sorted(f)]
    lookup = FactLookup([Fact(p, args) for p, args in facts])
    model = lookup.model(program)
    ref = evaluate(program, facts)
    for pred in program.idb_predicates():
        got = model.get(pred, set())
        want = {_rkey(v for _t, v in row) for row in ref.get(pred, set())}
        assert got == want, f"{pred} differs for\n{text}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), data=facts_st, probes=st.data())
def test_goal_directed_checker_matches_reference(text, data, probes):
    """The proof checker's goal-directed evaluation (absent leaves): for every derived
    predicate, patterns with bound, unbound and constrained positions answer exactly the
    reference model's matching tuples, and ground atoms are derivable exactly when in it."""
    from policystrata.engine.proofcheck import _OPEN, FactLookup, _Goals, _rkey, holds

    program = parse_program(text, source="gen.dl")
    e, f, g = data
    policy = [Fact("g", (a, b)) for a, b in sorted(g)]
    own = [Fact("e", (a, b)) for a, b in sorted(e)] + [Fact("f", (a,)) for a in sorted(f)]
    ref = evaluate(program, [(x.pred, x.args) for x in [*policy, *own]])
    # the way check_proof uses it: shared (policy) facts below a case's own facts
    from policystrata.engine.proofcheck import SharedFacts

    lookup = FactLookup(own, shared=SharedFacts(policy))
    goals = None
    for pred in program.idb_predicates():
        want = {tuple(v for _t, v in row) for row in ref.get(pred, set())}
        arity = program.arity(pred) or 0
        for _ in range(3):
            pattern = []
            cons = []
            for _i in range(arity):
                kind = probes.draw(st.sampled_from(["open", "bound", "cons"]))
                if kind == "bound":
                    pattern.append(probes.draw(st.sampled_from(CONSTS)))
                    cons.append(())
                else:
                    pattern.append(_OPEN)
                    if kind == "cons":
                        op = probes.draw(st.sampled_from(["<", "<=", ">", ">=", "!="]))
                        cons.append(((op, probes.draw(st.sampled_from([1, 2, 2.5, 3]))),))
                    else:
                        cons.append(())
            # a fresh evaluator per probe, and the lookup's (tables shared across probes)
            fresh = _Goals(program, lookup._rows, lookup._facts)
            expected = {
                row
                for row in want
                if all(
                    (p is _OPEN or (type(p) is type(v) and p == v))
                    and all(holds(v, op, k) for op, k in c)
                    for p, c, v in zip(pattern, cons, row, strict=True)
                )
            }
            got = fresh.answers(pred, tuple(pattern), tuple(cons))
            assert {_rkey(r) for r in got} == {_rkey(r) for r in expected}, (pred, pattern, text)
            ground = [None if p is _OPEN else p for p in pattern]
            assert lookup.derivable(program, pred, ground) == bool(
                [
                    r
                    for r in want
                    if all(
                        p is None or (type(p) is type(v) and p == v)
                        for p, v in zip(ground, r, strict=True)
                    )
                ]
            ), (pred, ground, text)
            goals = fresh
    assert goals is None or not goals.stack
