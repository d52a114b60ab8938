"""Proof trees: minimal height, determinism, JSON round trip, schema, tamper detection."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from policystrata.engine import (
    Engine,
    FactLookup,
    ProofError,
    ProofNode,
    check_proof,
    parse_program,
    proof_node_schema,
)
from policystrata.facts import Fact, FactSet, Provenance

RULES = """
.decl edge(a, b)
.decl blocked(a)
.decl weight(a, w: float)
@id graph.reach
@message "{X} reaches {Y}"
reach(X, Y) :- edge(X, Y).
reach(X, Y) :- reach(X, Z), edge(Z, Y), !blocked(Y).
heavy(X) :- weight(X, W), W >= 1.5.
@id graph.violation
@message "{X} reaches {Y} and {Y} is heavy"
violation(X, Y) :- reach(X, Y), heavy(Y), !shielded(X).
shielded(X) :- edge(X, X).
"""


def setup():
    prog = parse_program(RULES, source="rules/graph.dl")
    policy = FactSet()
    for i, (a, b) in enumerate([("a", "b"), ("b", "c"), ("c", "d"), ("a", "c"), ("d", "a")]):
        policy.add("edge", a, b, prov=Provenance("graph.yaml", line=i + 1))
    case = FactSet()
    case.add("weight", "d", 2.0, prov=Provenance("sql", span=(3, 9), snippet="w = 2.0"))
    case.add("blocked", "b")
    engine = Engine(prog, policy)
    return prog, engine, engine.evaluate(case)


def test_minimal_height_and_shape():
    prog, _engine, result = setup()
    proof = result.prove(Fact("violation", ("a", "d")))
    # a->c->d (height 3 for reach(a,d)) is shorter than a->b->c->d
    assert proof.height() == 3
    reach = proof.premises[0]
    assert reach.rule == "graph.reach.2" and reach.bindings == {"X": "a", "Y": "d", "Z": "c"}
    assert reach.premises[0].message == "a reaches c"
    assert proof.message == "a reaches d and d is heavy"
    assert [n.kind for n in proof.premises] == ["rule", "rule", "absent"]
    heavy = proof.premises[1]
    assert heavy.premises[1].kind == "builtin" and heavy.premises[1].left == 2.0
    assert proof.premises[2].why_not[0]["failed"] == 'edge("a", "a")'
    facts = [str(f) for f in proof.supporting_facts()]
    assert facts == ['edge("a", "c")', 'edge("c", "d")', 'weight("d", 2.0)']
    leaf = next(n for n in proof.walk() if n.kind == "fact" and n.pred == "weight")
    assert str(leaf.provenance[0]) == "sql[3:9] `w = 2.0`"
    check_proof(proof, prog, result.fact_lookup)


def test_proofs_are_deterministic():
    dumps = set()
    for _ in range(3):
        _prog, _engine, result = setup()
        dumps.add(result.prove(Fact("violation", ("a", "d"))).dumps())
    assert len(dumps) == 1


def test_json_round_trip_keeps_types_and_validates():
    prog, _engine, result = setup()
    proof = result.prove(Fact("violation", ("a", "d")))
    data = json.loads(proof.dumps())
    jsonschema.Draft202012Validator(proof_node_schema()).validate(data)
    back = ProofNode.from_json(data)
    assert back == proof
    builtin = back.premises[1].premises[1]
    assert type(builtin.left) is float and type(builtin.right) is float
    check_proof(back, prog, result.fact_lookup)
    assert list(data) == [
        "kind",
        "atom",
        "text",
        "rule",
        "file",
        "line",
        "message",
        "bindings",
        "premises",
    ]


def test_absent_leaf_with_wildcard():
    prog = parse_program(".decl e(a, b)\nlonely(X) :- e(X, _), !e(_, X).\n", source="t.dl")
    fs = FactSet()
    fs.add("e", "a", "b")
    result = Engine(prog, fs).evaluate()
    proof = result.prove(Fact("lonely", ("a",)))
    absent = proof.premises[1]
    assert absent.to_json()["atom"]["args"] == [{"var": "_"}, "a"]
    assert absent.why_not == [{"reason": "no matching fact"}]
    check_proof(ProofNode.from_json(proof.to_json()), prog, result.fact_lookup)


def test_prove_rejects_non_derived_atom():
    _prog, _engine, result = setup()
    with pytest.raises(KeyError):
        result.prove(Fact("violation", ("b", "a")))
    why = result.why_not(Fact("reach", ("a", "zz")))
    assert [w["rule"] for w in why] == ["graph.reach", "graph.reach.2"]
    assert why[0]["failed"] == 'edge("a", "zz")' and why[0]["file"] == "rules/graph.dl"


def tampered(proof: ProofNode):
    return copy.deepcopy(proof.to_json())


def test_checker_rejects_wrong_binding():
    prog, _engine, result = setup()
    data = tampered(result.prove(Fact("violation", ("a", "d"))))
    data["premises"][0]["bindings"]["Z"] = "b"
    with pytest.raises(ProofError, match="does not instantiate"):
        check_proof(data, prog, result.fact_lookup)


def test_checker_rejects_missing_fact():
    prog, _engine, result = setup()
    proof = result.prove(Fact("violation", ("a", "d")))
    given = [Fact(p, r) for p, rows in result.fact_lookup._rows.items() for r in rows]
    lookup = FactLookup([f for f in given if f != Fact("edge", ("c", "d"))])
    with pytest.raises(ProofError, match=r'fact leaf edge\("c", "d"\) is not a given fact'):
        check_proof(proof, prog, lookup)


def test_checker_rejects_present_absent_leaf():
    prog, _engine, result = setup()
    data = tampered(result.prove(Fact("violation", ("a", "d"))))
    given = [Fact(p, r) for p, rows in result.fact_lookup._rows.items() for r in rows]
    lookup = FactLookup([*given, Fact("edge", ("a", "a"))])
    with pytest.raises(ProofError, match="but it is derivable"):
        check_proof(data, prog, lookup)
    lookup = FactLookup([*given, Fact("blocked", ("d",))])
    with pytest.raises(ProofError, match="a given fact matches it"):
        check_proof(data, prog, lookup)


def test_checker_rejects_false_comparison_and_unknown_rule():
    prog, _engine, result = setup()
    data = tampered(result.prove(Fact("violation", ("a", "d"))))
    heavy = data["premises"][1]
    heavy["bindings"]["W"] = 1.0
    heavy["premises"][0]["atom"]["args"][1] = 1.0
    heavy["premises"][1]["left"] = 1.0
    with pytest.raises(ProofError):
        check_proof(data, prog, result.fact_lookup)
    data = tampered(result.prove(Fact("violation", ("a", "d"))))
    data["rule"] = "graph.nope"
    with pytest.raises(ProofError, match="unknown rule"):
        check_proof(data, prog, result.fact_lookup)
    data = tampered(result.prove(Fact("violation", ("a", "d"))))
    data["premises"][1]["premises"][1]["kind"] = "absent"
    with pytest.raises(ProofError, match="must be a builtin"):
        check_proof(data, prog, result.fact_lookup)


HEADS = """
.decl seen(c, k, v: any)
.decl off(k)
.decl flag(c, t: any, k)
@message "{K} is one"
flag(C, 1, K) :- seen(C, K, 1).
flag(C, true, K) :- seen(C, K, true).
@message "{K} is blue"
flag(C, "blue", K) :- seen(C, K, 2), !off(K).
flag(C, T, K) :- seen(C, K, T), T = "green".
flag(C, 1.0, K) :- seen(C, K, 1.0).
flag(C, 1, K) :- seen(C, K, 3).
"""


def test_rules_indexed_by_head_constants_prove_as_a_scan_of_every_rule(monkeypatch):
    """The prover's index of rules by their head constants (type-exact: 1, 1.0 and true
    differ) yields the very proofs and why-not explanations of trying every rule in order."""
    from policystrata.engine.proof import WILDCARD, Prover

    program = parse_program(HEADS, source="h.dl")
    facts = FactSet()
    for k, v in (("a", 1), ("b", True), ("c", 2), ("d", "green"), ("e", 1.0), ("f", 3)):
        facts.add("seen", "k1", k, v)
    facts.add("off", "x")
    result = Engine(program, FactSet()).evaluate(facts)
    atoms = result.atoms("flag")
    assert sorted(map(repr, atoms)) == sorted(
        map(
            repr,
            [
                ("k1", 1, "a"),
                ("k1", True, "b"),
                ("k1", "blue", "c"),
                ("k1", "green", "d"),
                ("k1", 1.0, "e"),
                ("k1", 1, "f"),
            ],
        )
    )
    probes = [("k1", "blue", "x"), ("k1", 1, "e"), ("k1", WILDCARD, "z"), ("k1", True, "a")]

    def run() -> tuple[list, list]:
        prover = Prover(result)
        proofs = [prover.prove(Fact("flag", a)).to_json() for a in atoms]
        return proofs, [prover.why_not("flag", p) for p in probes]

    indexed = run()
    monkeypatch.setattr(Prover, "_head_rules", lambda self, pred, args: program.rules_for(pred))
    assert run() == indexed
    by_atom = dict(zip(map(repr, atoms), indexed[0], strict=True))
    assert by_atom[repr(("k1", 1.0, "e"))]["rule"] == program.rules[4].id  # the float rule
    assert by_atom[repr(("k1", 1, "f"))]["rule"] == program.rules[5].id


def test_facts_hash_once_and_never_carry_it_across_processes():
    import pickle

    f = Fact("p", ("a", 1))
    assert hash(f) == hash(Fact("p", ("a", 1))) and "_hash" in f.__dict__
    assert "_hash" not in pickle.loads(pickle.dumps(f)).__dict__
    assert Fact("p", ("a", 1)) != Fact("p", ("a", True)) != Fact("p", ("a", 1.0))
    fs = FactSet()
    assert fs.add_fact(f) is f and fs.add_fact(Fact("p", ("a", 1))) is not f and len(fs) == 1
    with pytest.raises(TypeError):
        fs.add_fact(Fact("p", (None,)))  # type: ignore[arg-type]


def test_derived_keys_are_built_per_predicate_on_demand():
    program = parse_program(RULES, source="g.dl")
    facts = FactSet()
    facts.add("edge", "a", "b")
    facts.add("weight", "a", 2.0)
    result = Engine(program, FactSet()).evaluate(facts)
    assert result._derived_keys == {}
    assert Fact("reach", ("a", "b")) in result and Fact("reach", ("b", "a")) not in result
    assert set(result._derived_keys) == {"reach"}


def test_checker_rule_table_is_built_once_per_program():
    import gc

    from policystrata.engine import proofcheck

    program = parse_program(RULES, source="g.dl")
    table = proofcheck._rule_table(program)
    assert proofcheck._rule_table(program) is table
    assert table == {r.id: r for r in program.rules}
    key = id(program)
    del program, table
    gc.collect()
    assert key not in proofcheck._RULE_TABLES
