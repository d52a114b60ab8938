"""COMPAT.md §1: every published responsibility, mode and obligation name loads and means the
same duties (rule guards) as ours; unknown names are still errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from policystrata.bench.runner import Runner
from policystrata.bench.suites import resolve_suite
from policystrata.case import Case
from policystrata.check import Checker, load_rules
from policystrata.contracts import contract_names
from policystrata.errors import InputErrors
from policystrata.facts import FactSet
from tests.compat.conftest import FIXTURES, domain_copy

PUBLISHED_RESPONSIBILITIES = [
    "expose_model_visible_metrics_and_dimensions",
    "omit_retired_aliases_and_forbidden_capabilities",
    "expose_model_visible_finance_metrics_and_dimensions",
    "omit_restricted_household_fields_and_retired_aliases",
    "expose_project_scoped_analytics_metrics",
    "omit_raw_event_and_sensitive_identifier_capabilities",
    "parse_declared_query_intents",
    "parse_declared_finance_analytics_intents",
    "parse_declared_analytics_intents",
    "preserve_untrusted_intent_for_validation",
    "avoid_advertising_capabilities_outside_manifest_scope",
    "avoid_advertising_raw_event_capabilities_to_aggregate_roles",
    "authorize_metric_dimension_time_and_budget",
    "bind_principal_tenant_scope",
    "bind_principal_firm_scope",
    "bind_principal_project_scope",
    "produce_canonical_semantic_obligations",
    "deny_sensitive_household_identifiers_for_advisors",
    "enforce_aggregate_only_roles",
    "require_cohort_threshold_metadata",
    "preserve_authorized_metric_semantics",
    "preserve_tenant_scope_predicates",
    "preserve_firm_scope_predicates",
    "preserve_project_scope_predicates",
    "preserve_time_semantics",
    "preserve_fiscal_time_semantics",
    "preserve_timezone_window_semantics",
    "preserve_row_budget",
    "preserve_distinct_user_and_session_grain",
    "preserve_materialized_view_lineage",
    "enforce_tenant_isolation_rls",
    "enforce_firm_isolation_rls",
    "contain_cross_tenant_row_access",
    "contain_cross_firm_row_access",
    "contain_cross_project_row_access",
    "enforce_clickhouse_row_policy_for_read_only_users",
    "document_row_policy_read_only_assumption",
    "enforce_release_decision",
    "withhold_contained_or_unauthorized_results",
    "withhold_small_cohort_aggregates",
    "disclose_sampling_and_preserve_result_lineage",
]
PUBLISHED_OBLIGATIONS = [
    "capability_scope",
    "syntactic_intent",
    "authorization_decision",
    "metric_semantics",
    "tenant_scope",
    "row_budget",
    "release_threshold",
    "sql_semantics",
    "database_containment_request",
    "row_access_result",
    "lineage",
]
OUR_DUTIES = [
    "expose_only_role_capabilities",
    "exclude_retired_aliases",
    "admit_only_manifest_capabilities",
    "authorize_semantic_query",
    "enforce_query_budgets",
    "bind_tenant_obligations",
    "preserve_tenant_scope_predicates",
    "preserve_metric_semantics",
    "preserve_time_semantics",
    "preserve_row_budget",
    "preserve_join_grain",
    "exclude_unauthorized_columns",
    "estimate_cost_faithfully",
    "contain_tenant_rows",
    "withhold_unauthorized_results",
    "withhold_contained_results",
    "enforce_release_thresholds",
]


def test_every_published_name_is_known_and_ours_stay() -> None:
    responsibilities, obligations = contract_names(load_rules())
    assert set(PUBLISHED_RESPONSIBILITIES) <= set(responsibilities)
    assert set(OUR_DUTIES) <= set(responsibilities)
    assert set(PUBLISHED_OBLIGATIONS) <= set(obligations)


def _derived(checker: Checker) -> dict[str, set[tuple[object, ...]]]:
    result = checker.engine.evaluate(FactSet())
    return {
        p: set(result.atoms(p)) for p in ("responsible", "accepts_obligation", "emits_obligation")
    }


@pytest.mark.parametrize("name", ["saas", "finance", "analytics"])
def test_published_contracts_load_and_derive_our_duties(tmp_path: Path, name: str) -> None:
    d = domain_copy(tmp_path, surfaces_yaml=FIXTURES / "surfaces" / f"{name}.yaml")
    derived = _derived(Checker.open(d))
    # every surface is responsible for at least one of our duties, through the vocabulary
    ours = {s for s, duty in derived["responsible"] if duty in OUR_DUTIES}
    assert ours == {"manifest", "grammar", "validator", "compiler", "database", "release"}
    # the guards our rules read that published contracts leave implicit
    assert ("database", "tenant_scope") in derived["accepts_obligation"]
    assert ("database", "contained_result") in derived["emits_obligation"]
    assert ("release", "release_decision") in derived["emits_obligation"]
    assert ("validator", "cost_budget") in derived["emits_obligation"]


def test_published_saas_contract_gives_our_verdicts_on_the_seeded_suite(tmp_path: Path) -> None:
    ours = Checker.open("support_saas")
    published = Checker.open(
        domain_copy(tmp_path, surfaces_yaml=FIXTURES / "surfaces" / "saas.yaml")
    )
    assert _derived(published)["responsible"] >= {
        (s, d) for s, d in _derived(ours)["responsible"] if s != "release"
    }

    def checks(checker: Checker) -> dict[str, list[str]]:
        runner = Runner(checker, minimize=False)
        src = resolve_suite(checker.domain, "seeded")
        return {c.task_id: runner.evaluate(c).record.get("checks", []) for c in src.cases()}

    a, b = checks(ours), checks(published)
    assert a == b
    assert sum(1 for v in a.values() if v) >= 50


def test_proof_shows_the_vocabulary_step(tmp_path: Path) -> None:
    checker = Checker.open(
        domain_copy(tmp_path, surfaces_yaml=FIXTURES / "surfaces" / "finance.yaml")
    )
    case = Case(
        id="c",
        principal="acme_analyst",
        sql="select count(*) from accounts limit 10",
    )
    [w] = [w for w in checker.check(case).witnesses if w.check == "tenant_scope_missing"]
    text = str(w.proof)
    assert "vocabulary.responsible.1" in text
    assert "preserve_firm_scope_predicates" in text


@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("bind_principal_firm_scop", "bind_principal_firm_scope"),
        ("preserve_tenant_scope_predicate", "preserve_tenant_scope_predicates"),
    ],
)
def test_unknown_name_is_an_error_with_did_you_mean(tmp_path: Path, bad: str, hint: str) -> None:
    text = (FIXTURES / "surfaces" / "finance.yaml").read_text()
    text = text.replace("preserve_firm_scope_predicates", bad).replace(
        "bind_principal_firm_scope", bad
    )
    d = domain_copy(tmp_path, surfaces_yaml=text)
    with pytest.raises(InputErrors) as e:
        Checker.open(d)
    assert f"unknown responsibility '{bad}'" in str(e.value)
    assert "did you mean" in str(e.value)
    assert "surfaces.yaml:" in str(e.value)


def test_unknown_obligation_is_an_error(tmp_path: Path) -> None:
    text = (
        (FIXTURES / "surfaces" / "saas.yaml")
        .read_text()
        .replace("[row_access_result]", "[row_acces_result]")
    )
    with pytest.raises(InputErrors, match=r"unknown obligation 'row_acces_result'.*did you mean"):
        Checker.open(domain_copy(tmp_path, surfaces_yaml=text))
