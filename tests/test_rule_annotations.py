"""Severity and confidence are rule annotations: every shipped rule that makes a witness says
how severe its finding is (the scan's gate reads it; no Python table keyed by rule ids)."""

from __future__ import annotations

from policystrata.check import WITNESS_PREDICATES, grade, load_rules
from policystrata.prooftree import ProofNode


def test_every_shipped_check_rule_states_its_severity() -> None:
    program = load_rules()
    missing = [
        f"{r.file}:{r.line} {r.id}"
        for r in program.rules
        if r.head.pred in ("layer_fault", "violation")
        and r.body
        and r.id != "localize.first_failing_layer"  # localizes: the fault step's rule grades
        and "severity" not in r.annotations
    ]
    assert missing == []
    assert set(WITNESS_PREDICATES) >= {"layer_fault", "violation"}


def test_containment_caps_severity_and_the_weakest_step_sets_confidence() -> None:
    program = load_rules()
    scope = program.rule("compiler.tenant_scope_missing")
    assert scope.annotations["severity"] == "critical"
    step = ProofNode("rule", pred="layer_fault", args=("c",), rule=scope.id)
    top = ProofNode(
        "rule", pred="violation", args=("c",), rule="localize.first_failing_layer", premises=[step]
    )
    assert grade(program, top, contained=False) == ("critical", "high")
    assert grade(program, top, contained=True) == ("medium", "high")
    drift = program.rule("real_db.result_mismatch")
    lone = ProofNode("rule", pred="layer_fault", args=("c",), rule=drift.id)
    assert grade(program, lone, contained=False) == ("medium", "medium")


def test_every_derived_predicate_feeds_a_verdict() -> None:
    """No dead rules: every predicate a rule derives is used, through some chain of rules, by a
    witness, containment, an input fault, a gate decision or a fuzz survivor (what the product
    reports)."""
    from policystrata.engine.ast import Negative, Positive

    program = load_rules()
    uses: dict[str, set[str]] = {}
    for rule in program.rules:
        for lit in rule.body:
            if isinstance(lit, (Positive, Negative)):
                uses.setdefault(rule.head.pred, set()).add(lit.atom.pred)
    # fuzz_survived: the scan's fuzz stage reads it (policystrata/scan/fuzz.py), a finding each
    roots = {
        *WITNESS_PREDICATES,
        "input_fault",
        "deny_reason",
        "dbt_unchecked",
        "path",
        "fuzz_survived",
    }
    reached: set[str] = set()
    todo = list(roots)
    while todo:
        pred = todo.pop()
        if pred not in reached:
            reached.add(pred)
            todo.extend(uses.get(pred, ()))
    derived = {r.head.pred for r in program.rules if r.body}
    # the published transition obligations are mapped onto ours (vocabulary.dl) and copied into
    # run outputs; no check reads them yet (the published line evaluates them only in a baseline)
    assert sorted(derived - reached) == ["transition_obligation"]
