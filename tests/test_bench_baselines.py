"""Baselines re-run over a run's stored artifacts, never over the detector's verdict fields:
poisoning or deleting those fields changes no baseline's answer, and no baseline module reads
them (a static check)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import policystrata.bench.artifacts
import policystrata.bench.baselines
from policystrata.bench.baselines import (
    ALL,
    DEFENCE_UNION,
    NEEDS_DATABASE,
    Baselines,
    baseline_cases,
    score,
)
from policystrata.cli import main
from policystrata.db.server import Server
from policystrata.model import load_domain
from tests.conftest import seeded_copy

VERDICT_FIELDS = (
    "witness_class",
    "localized_surface",
    "classes",
    "verdict",
    "accounting_status",
    # and every other field the detector or the scoring wrote
    "accounting_reason",
    "status",
    "reason",
    "checks",
    "localized",
    "containment",
    "containment_layer",
    "witness",
    "witness_path",
    "reasons",
    "contract_decisions",
    "db_result",
    "minimized",
    "semantic_difference",
    "changed",
)


@pytest.fixture(scope="module")
def run_dir(seeded_no_minimize_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """support_saas's seeded run without minimization (built once for the test run)."""
    return seeded_copy(seeded_no_minimize_run, tmp_path_factory, "seeded")


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict:
    return score(Baselines(load_domain("support_saas")), baseline_cases(run_dir))


def _rewrite(run_dir: Path, dest: Path, change) -> Path:  # type: ignore[no-untyped-def]
    shutil.copytree(run_dir, dest)
    lines = (run_dir / "traces.jsonl").read_text().splitlines()
    recs = [change(json.loads(line)) for line in lines]
    (dest / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return dest


def test_deleted_or_poisoned_verdict_fields_change_nothing(
    run_dir: Path, report: dict, tmp_path: Path
) -> None:
    def delete(rec: dict) -> dict:
        return {k: v for k, v in rec.items() if k not in VERDICT_FIELDS}

    def poison(rec: dict) -> dict:
        bad = {
            "witness_class": "unsafe_release",
            "localized_surface": "release",
            "classes": ["over_restrictive"],
            "verdict": "violation" if rec.get("verdict") == "pass" else "pass",
            "accounting_status": "survived",
            "status": "clean",
            "checks": ["release.poisoned"],
            "localized": "manifest",
            "contract_decisions": {},
        }
        return {**rec, **bad}

    for name, change in (("deleted", delete), ("poisoned", poison)):
        other = _rewrite(run_dir, tmp_path / name, change)
        again = score(Baselines(load_domain("support_saas")), baseline_cases(other))
        assert json.dumps(again, sort_keys=True) == json.dumps(report, sort_keys=True), name


def test_no_baseline_module_names_a_verdict_field_or_imports_the_detector() -> None:
    forbidden_imports = (
        "policystrata.check",
        "policystrata.engine",
        "policystrata.witness",
        "policystrata.bench.runner",
        "policystrata.bench.score",
        "policystrata.bench.published",
    )
    for module in (policystrata.bench.baselines, policystrata.bench.artifacts):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in VERDICT_FIELDS, (module.__name__, node.value)
            if isinstance(node, ast.Attribute):
                assert node.attr not in VERDICT_FIELDS, (module.__name__, node.attr)
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(forbidden_imports), node.module
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(forbidden_imports), alias.name


def test_baselines_catch_some_operators_and_miss_others(report: dict) -> None:
    assert set(report) == {n for n in ALL if n not in NEEDS_DATABASE}
    total = {s["total_failures"] for s in report.values()}
    assert len(total) == 1 and total.pop() >= 50  # every baseline judged the same failures
    # the tenant-scope AST rule catches every dropped tenant predicate, the snapshot every drift
    ast_ops = report["sql_ast_policy_checker"]["per_operator"]
    assert (
        ast_ops["compiler_drops_tenant_predicate"]["caught"]
        == (ast_ops["compiler_drops_tenant_predicate"]["failures"])
    )
    assert "gross_net_metric_drift" not in report["sql_snapshot"]["missed_operators"]
    # and none sees everything: a manifest fault is invisible to the SQL checkers
    for name in ("sql_snapshot", "sql_ast_policy_checker", "lineage_only"):
        assert "stale_metric_alias_manifest" in report[name]["missed_operators"], name
    assert all(report[n]["missed_operators"] for n in report)
    union = report["defense_in_depth_stack"]
    assert union["caught"] >= max(report[n]["caught"] for n in DEFENCE_UNION)
    assert report["sql_snapshot"]["false_positives"] == 0


def test_cli_baselines_json_and_errors(run_dir: Path, report: dict, tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "b.json"
    res = cli.invoke(
        main, ["baselines", str(run_dir), "--db", "none", "--format", "json", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["combined"] == json.loads(json.dumps(report))
    assert set(NEEDS_DATABASE) <= set(data["not_run"])
    res = cli.invoke(main, ["baselines", str(run_dir), "--db", "none"])
    assert res.exit_code == 0 and "sql_snapshot" in res.output and "misses:" in res.output
    res = cli.invoke(main, ["baselines", str(tmp_path)])
    assert res.exit_code == 2 and "not a run directory" in res.output
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    shutil.rmtree(broken / "artifacts" / "sql")
    res = cli.invoke(main, ["baselines", str(broken), "--db", "none"])
    assert res.exit_code == 2 and "missing artifact" in res.output


@pytest.mark.postgres
def test_database_baselines_run_on_real_rows(run_dir: Path, pg_server: Server) -> None:
    from policystrata.db.domain import domain_databases

    domain = load_domain("support_saas")
    with domain_databases(pg_server.dsn("postgres"), domain) as dbs:
        assert dbs is not None
        rep = score(Baselines(domain, dbs), baseline_cases(run_dir))
    rls = rep["db_rls_only"]["per_operator"]
    # a row policy on the old ownership column leaks rows: probed per table and tenant
    assert (
        rls["db_rls_old_ownership_field"]["caught"] == rls["db_rls_old_ownership_field"]["failures"]
    )
    assert rls["compiler_drops_tenant_predicate"]["caught"] == 0  # the DDL is unchanged
    answers = rep["final_answer_only"]["per_operator"]
    assert answers["gross_net_metric_drift"]["caught"] >= 1  # a different number on real rows
    assert rep["final_answer_only"]["false_positives"] == 0
    assert "manifest_omits_allowed_metric" in rep["final_answer_only"]["missed_operators"]
    assert rep["defense_in_depth_stack"]["caught"] >= rep["db_rls_only"]["caught"]
