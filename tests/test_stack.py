"""The reference stack: fault-free behaviour is clean under the rules, faults change exactly one
layer's artifact, and the detector is blind to fault ids, labels and surface versions."""

from __future__ import annotations

import dataclasses
import json

import pytest

from policystrata.bench.cases import BenchCase
from policystrata.bench.generate import generate
from policystrata.bench.runner import Runner
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.facts import Provenance
from policystrata.stack.faults import OPERATORS
from policystrata.stack.pipeline import LAYER_ARTIFACTS, Request, changed_artifacts, run_stack


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open("support_saas")


def _fault_free_cases(checker: Checker) -> list[BenchCase]:
    d = checker.domain
    cases = list(resolve_suite(d, "clean_controls", count=80).cases())
    # every task of every built-in suite, run without its fault
    cases += [dataclasses.replace(c, mutation="none") for c in resolve_suite(d, "seeded").cases()]
    cases += [dataclasses.replace(c, mutation="none") for c in generate(d, "generated", 60, 5)]
    return [c for c in cases if c.query is not None]


def test_every_fault_free_case_is_clean(checker: Checker) -> None:
    d = checker.domain
    found = []
    for case in _fault_free_cases(checker):
        run = run_stack(d, Request(case.principal, case.query, case.style))  # type: ignore[arg-type]
        result = checker.check(run.to_case("c", case.principal, case.query, Provenance("t")))  # type: ignore[arg-type]
        if result.witnesses:
            found.append((case.task_id, [w.check for w in result.witnesses]))
    assert found == []


def test_a_fault_changes_only_its_own_layers_artifacts(checker: Checker) -> None:
    d = checker.domain
    for case in resolve_suite(d, "seeded").cases():
        op = OPERATORS.get(case.mutation)
        if op is None or case.query is None:
            continue
        req = Request(case.principal, case.query, case.style)
        canonical = run_stack(d, req)
        if not op.applies(d, req, canonical):
            continue
        changed = changed_artifacts(canonical, run_stack(d, req, op.knobs(d, req)))
        own = set(LAYER_ARTIFACTS[op.surface])
        # downstream artifacts may follow (no SQL after a false denial), upstream ones never
        upstream = {
            a
            for s, arts in LAYER_ARTIFACTS.items()
            for a in arts
            if list(LAYER_ARTIFACTS).index(s) < list(LAYER_ARTIFACTS).index(op.surface)
        }
        assert not (set(changed) & upstream), (case.task_id, changed)
        assert not changed or set(changed) & own or op.surface == "manifest", (
            case.task_id,
            changed,
        )


def _labels_scrambled(case: BenchCase) -> BenchCase:
    return dataclasses.replace(
        case,
        task_id="renamed_" + case.task_id[::-1],
        expected_class="unsafe_release",
        expected_surface="release",
        expected_containment=None,
        surface_versions={"compiler": "v999", "manifest": "v0"},
    )


def test_detection_is_blind_to_labels_and_versions(checker: Checker) -> None:
    runner = Runner(checker, minimize=False)
    for case in resolve_suite(checker.domain, "seeded").cases():
        a = runner.evaluate(case)
        b = runner.evaluate(_labels_scrambled(case))
        assert [w.model_dump() for w in a.witnesses] == [w.model_dump() for w in b.witnesses]
        assert a.record.get("artifacts") == b.record.get("artifacts")


def test_no_fact_carries_a_fault_id_label_or_version(checker: Checker) -> None:
    runner = Runner(checker, minimize=False)
    secrets = set(OPERATORS) | {
        "semantic_drift",
        "over_permissive",
        "over_restrictive",
        "lowering_violation",
        "unsafe_release",
    }
    for case in resolve_suite(checker.domain, "seeded").cases():
        if case.query is None:
            continue
        _canonical, outcome = runner.stack_runs(case, case.query)
        if isinstance(outcome, str):
            continue
        c = runner._case(case, outcome, case.query, f"case_{case.index:05d}")
        facts = checker.case_facts(c)
        words = secrets | {case.task_id, *case.surface_versions.values()}
        for fact in facts:
            texts = [str(a) for a in fact.args]
            texts += [json.dumps(p.to_json()) for p in facts.provenance(fact)]
            for text in texts:
                for word in words:
                    assert word not in text, (case.task_id, fact.render(), word)
        assert not c.meta


def test_a_case_the_stack_cannot_build_is_invalid_and_the_run_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A dimension with no join path from the metric's table: the compiler cannot build the SQL,
    the case is `invalid` with the reason, every other case is still judged, and the run exits
    0 (never 1 for a crash)."""
    import shutil

    from click.testing import CliRunner

    from policystrata.cli import main
    from policystrata.paths import domains_dir

    dom = tmp_path / "d"
    shutil.copytree(domains_dir() / "support_saas", dom)
    policy = (dom / "policy.yaml").read_text()
    policy = policy.replace(
        "allowed_dimensions: [region, plan, month, severity]",
        "allowed_dimensions: [region, plan, month, severity, agent]",
    ).replace(
        "dimensions:\n",
        "dimensions:\n  agent: {column: agents.name, allowed_roles: [analyst], cost: 1}\n",
        1,
    )
    (dom / "policy.yaml").write_text(policy)
    (tmp_path / "s.yaml").write_text(
        "suite: s\ntasks:\n"
        "  - {id: unbuildable, principal: acme_analyst, mutation: none,\n"
        "     semantic_query: 'net_revenue by agent during last_month limit 10'}\n"
        "  - {id: fine, principal: acme_analyst, mutation: compiler_drops_tenant_predicate,\n"
        "     semantic_query: 'net_revenue by region during last_month limit 10'}\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["run", "--domain-path", str(dom), "--suite-file", str(tmp_path / "s.yaml"),
         "--out", str(out), "--db", "none", "--no-minimize"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    status = {r["task"]: (r["status"], r.get("reason", "")) for r in records}
    assert status["unbuildable"][0] == "invalid"
    assert "no join path from invoices to agents" in status["unbuildable"][1]
    assert status["fine"][0] == "killed"
