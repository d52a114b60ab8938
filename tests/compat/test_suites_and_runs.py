"""COMPAT.md §3 and §6: task suites with every published key (tasks/ and suites/, matrix
variants, catalogue defaults, reserved generated names) run, and a run's outputs carry the
published keys with their meaning beside ours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.bench.suites import CATALOGUE, RESERVED, available_suites, resolve_suite
from policystrata.cli import main
from policystrata.model import load_domain, load_suite
from policystrata.model.suite import suite_files
from policystrata.stack.faults import OPERATORS, OTHER_DOMAIN_OPERATORS
from tests.compat.conftest import FIXTURES, domain_copy

SUITE = FIXTURES / "suites" / "published_keys.yaml"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_every_suite_key_with_its_published_default() -> None:
    suite = load_suite(SUITE)
    assert suite.suite == "published_keys"  # named after its file; `suite:` is ignored
    assert suite.policy_version == "v7"
    md = suite.suite_metadata
    assert (md.provenance, md.evidence_level, md.detector_frozen) == (
        "externally_authored",
        "blinded_suite",
        True,
    )
    assert md.detector_freeze_id == "psf-0123456789abcdef0123"
    assert md.authored_after_detector_freeze and md.notes
    tasks = suite.all_tasks()
    ids = [t.id for t in tasks]
    assert ids[:3] == [
        "control_ticket_count",
        "dropped_tenant_predicate",
        "sensitive_dimension_in_grammar",
    ]
    assert ids[3:] == [
        "gross_net_metric_drift_01",
        "gross_net_metric_drift_02",
        "gross_net_metric_drift_03",
        "compiler_removes_distinct_01",
        "compiler_removes_distinct_02",  # the second entry continues the numbering
        "compiler_removes_distinct_03",
        "timezone_bucket_drift_01",
    ]
    by_id = {t.id: t for t in tasks}
    q = {k: t.semantic_query.to_text() for k, t in by_id.items() if t.semantic_query}
    # the mapping form's defaults: last_month, grain month, limit 100
    assert q["dropped_tenant_predicate"] == "net_revenue during last_month grain month limit 100"
    # variants change the keys they name for that task number
    assert q["gross_net_metric_drift_01"].startswith("net_revenue by plan during last_month")
    assert "during last_fiscal_month" in q["gross_net_metric_drift_02"]
    assert q["gross_net_metric_drift_03"].startswith("net_revenue by region during last_month")
    assert q["gross_net_metric_drift_03"].endswith("limit 50")
    assert by_id["gross_net_metric_drift_02"].request == "Revenue by plan, variant 2."
    # matrix defaults: count 1, principal acme_analyst
    assert by_id["compiler_removes_distinct_01"].principal == "acme_analyst"
    assert by_id["control_ticket_count"].domain == "support_saas"
    # keys the published format drops are warnings with their lines, never errors
    warned = {w.key for w in suite.warnings}
    assert "tasks[2].semantic_query.ignored_by_published" in warned
    assert "matrix[2].an_unknown_matrix_key" in warned


def test_matrix_expected_labels_default_to_the_catalogue() -> None:
    src = resolve_suite(load_domain("support_saas"), None, suite_file=SUITE)
    cases = {c.task_id: c for c in src.cases()}
    c = cases["gross_net_metric_drift_01"]
    assert (c.expected_class, c.expected_surface, c.expected_containment) == (
        "semantic_drift",
        "compiler",
        None,
    )
    assert cases["timezone_bucket_drift_01"].expected_class == "semantic_drift"
    # explicit task labels are kept as written (a null containment stays null)
    assert cases["control_ticket_count"].expected_surface is None
    assert cases["dropped_tenant_predicate"].expected_containment == "database"


def test_catalogue_covers_every_published_operator() -> None:
    published = {*OTHER_DOMAIN_OPERATORS, "none"} | {
        op for op in OPERATORS if not OPERATORS[op].new
    }
    assert published <= set(CATALOGUE)
    assert {c for c, (_s, _k, cont) in CATALOGUE.items() if cont == "database"} == {
        "compiler_drops_tenant_predicate",
        "compiler_uses_old_tenant_key",
        "compiler_swaps_tenant_account_id",
    }


def test_tasks_and_suites_directories_are_both_read(tmp_path: Path) -> None:
    d = domain_copy(tmp_path)
    (d / "tasks").mkdir()
    shutil.copy(SUITE, d / "tasks" / "published_keys.yaml")
    names = [p.stem for p in suite_files(d)]
    assert "published_keys" in names and "seeded" in names
    assert "published_keys" in available_suites(load_domain(d))
    src = resolve_suite(load_domain(d), "published_keys")
    assert src.total == 10


@pytest.mark.parametrize(("name", "spec"), sorted(RESERVED.items()))
def test_reserved_generated_suites_have_their_published_count_and_seed(
    name: str, spec: tuple[str, int, int]
) -> None:
    _stream, count, seed = spec
    src = resolve_suite(load_domain("support_saas"), name)
    # clean-control suites run the domain's own clean_controls.yaml first, then top up
    assert src.total is not None and src.total >= (
        count if "clean" not in name else min(count, src.total)
    )
    if "clean" not in name:
        assert src.total == count
    assert src.meta["seed"] == seed


def test_run_outputs_carry_the_published_keys(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run(
        "run",
        "--suite-file",
        str(SUITE),
        "--out",
        str(out),
        "--db",
        "none",
        "--release-candidate",
        "rc-7",
        "--commit-sha",
        "0123abc",
        "--environment",
        "ci",
        "--project-id",
        "proj",
        "--organization-id",
        "org",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    trace_keys = {
        "task_id",
        "domain",
        "request",
        "principal",
        "mutation",
        "semantic_ir",
        "policy_version",
        "surface_versions",
        "canonical_decision",
        "surface_decisions",
        "surface_contracts",
        "contract_decisions",
        "transition_obligations",
        "compiled_sql",
        "db_result",
        "release_decision",
        "witness_class",
        "expected_witness_class",
        "localized_surface",
        "expected_localized_surface",
        "containment_layer",
        "expected_containment_layer",
        "accounting_status",
        "accounting_reason",
        "semantic_difference",
        "witness_path",
        "latency_ms",
        "cost",
        "reasons",
    }
    for r in records:
        assert trace_keys <= set(r), trace_keys - set(r)
        assert {"task", "case", "status"} <= set(r)  # ours stay alongside
    by = {r["task_id"]: r for r in records}
    assert by["control_ticket_count"]["accounting_status"] == "clean_control"
    assert by["control_ticket_count"]["canonical_decision"] == {"allowed": True, "reasons": []}
    drop = by["dropped_tenant_predicate"]
    assert drop["accounting_status"] == "killed" and drop["witness_class"] == "lowering_violation"
    assert drop["localized_surface"] == "compiler" and drop["containment_layer"] == "database"
    assert drop["contract_decisions"]["compiler"]["held"] is False
    assert drop["semantic_difference"] is True and drop["compiled_sql"]
    assert drop["semantic_ir"]["filters"] == {} and drop["semantic_ir"]["limit"] == 100
    assert by["timezone_bucket_drift_01"]["accounting_status"] == "invalid"
    grammar = by["sensitive_dimension_in_grammar"]
    assert grammar["canonical_decision"]["allowed"] is False
    assert grammar["canonical_decision"]["reasons"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == 10 and summary["killed"] == 8 and summary["invalid"] == 1
    assert summary["clean_controls"] == 1 and summary["false_positives"] == 0
    assert summary["mutant_kill_rate"] == 1.0 and summary["expected_class_accuracy"] == 1.0
    assert summary["minimized_witness_count"] == 8
    assert {
        f"{c}_rate"
        for c in (
            "over_permissive",
            "over_restrictive",
            "lowering_violation",
            "semantic_drift",
            "unsafe_release",
        )
    } <= set(summary)
    assert "counts" in summary  # ours
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["suite"] == "published_keys" and meta["trace_count"] == 10
    assert meta["suite_provenance"] == "externally_authored" and meta["detector_frozen"] is True
    assert meta["detector_freeze_id"] == "psf-0123456789abcdef0123"
    assert meta["authored_after_detector_freeze"] is True
    assert (meta["release_candidate"], meta["commit_sha"], meta["environment"]) == (
        "rc-7",
        "0123abc",
        "ci",
    )
    assert (meta["project_id"], meta["organization_id"]) == ("proj", "org")
    assert meta["policy_version"] == "v7" and meta["generated_count"] is None
    assert set(meta["mutation_operator_ids"]) == set(OPERATORS)
    witness = json.loads((out / drop["witness_path"]).read_text())
    assert {
        "task_id",
        "witness_class",
        "localized_surface",
        "containment_layer",
        "principal",
        "request",
        "semantic_ir",
        "surface_versions",
        "surface_responsibilities",
        "contract_decisions",
        "transition_obligations",
        "compiled_sql",
        "db_result",
        "release_allowed",
        "reasons",
    } <= set(witness)
    assert witness["witnesses"][0]["check"] == "tenant_scope_missing"
    # strata explain re-verifies the run's witness file
    explained = run("explain", str(out / drop["witness_path"]))
    assert explained.exit_code == 0, explained.output


def test_generated_run_metadata_records_count_and_seed(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = run(
        "run",
        "--suite",
        "held_out",
        "--count",
        "4",
        "--out",
        str(out),
        "--db",
        "none",
        "--no-minimize",
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert (meta["generated_count"], meta["generated_seed"]) == (4, 8675309)
    assert meta["suite_provenance"] == "generated"
