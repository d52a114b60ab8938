"""The prover's heights: computed directly (branch and bound) for atoms no rule cycle can reach
back to, by iterative deepening for the rest. Both must give the very proofs of iterative
deepening everywhere, on random programs with recursion, head constants and negation, and the
heights of the naive reference; and why-not explanations cut short for atoms that nothing
matches must be those of the full search."""

from __future__ import annotations

import itertools

from engine_refeval import evaluate, heights, key
from hypothesis import HealthCheck, given, settings
from test_engine_differential import drawn_facts, facts_st, programs

from policystrata.engine import Engine, parse_program
from policystrata.engine.proof import WILDCARD, Prover, recursive_rules
from policystrata.facts import Fact

# head constants: hc(_, 2) rests on hc(_, 1) only (no cycle), hc(_, 3) on itself (a cycle)
HEADS = """
hc(X, 1) :- e(X, Y).
hc(X, 2) :- hc(X, 1), e(X, X).
hc(Y, 3) :- hc(X, 3), e(X, Y).
hc(X, 3) :- f(X).
hc(X, 4) :- hc(X, 2), !f(X), X < 3.
"""


def test_rule_cycles_see_head_constants():
    program = parse_program(".decl e(a: int, b: int)\n.decl f(a: int)\n" + HEADS, source="h.dl")
    cyclic = recursive_rules(program)
    assert [r.index in cyclic for r in program.rules] == [False, False, True, False, False]
    assert recursive_rules(program) is cyclic  # once per program


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=programs(), data=facts_st)
def test_direct_heights_prove_as_iterative_deepening(text, data):
    text += HEADS
    program = parse_program(text, source="gen.dl")
    policy, case, facts = drawn_facts(data)
    result = Engine(program, policy, timeout=30).evaluate(case)
    ref_h = heights(program, facts, evaluate(program, facts))
    atoms = [Fact(p, row) for p in program.idb_predicates() for row in result.atoms(p)]
    probes = [(p, (WILDCARD,) * (program.arity(p) or 0)) for p in program.idb_predicates()]
    probes += [("hc", (c, 3)) for c in range(5)] + [("hc", (WILDCARD, 2))]
    probes += [
        (p, args)
        for p in program.idb_predicates()
        for args in itertools.product((0, 3, WILDCARD), repeat=program.arity(p) or 0)
    ]

    def run(everywhere: bool) -> tuple[list, list, list]:
        prover = Prover(result)
        if everywhere:  # iterative deepening for every atom (as before direct heights)
            prover.cyclic = frozenset(r.index for r in program.rules)
            prover._matches_nothing = lambda pred, args: False  # type: ignore[method-assign]
        proofs = [prover.prove(a) for a in atoms]
        return (
            [p.to_json() for p in proofs],
            [p.height() for p in proofs],
            [prover.why_not(p, args) for p, args in probes],
        )

    direct, deepening = run(False), run(True)
    assert direct == deepening, text
    assert direct[1] == [ref_h[(a.pred, key(a.args))] for a in atoms], text
