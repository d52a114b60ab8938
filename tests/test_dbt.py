"""dbt Semantic Layer import and `strata check-integration dbt-semantic`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.cli import main
from policystrata.integrations.dbt import compare, load_semantic_file, lower_semantic_model
from policystrata.model import load_domain
from policystrata.scan.scaffold import TEMPLATES

MODEL = TEMPLATES / "postgres_dbt" / "dbt" / "semantic_models.yml"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_shipped_model_agrees_with_the_policy() -> None:
    result = run(
        "check-integration", "dbt-semantic", "--domain", "support_saas", "--path", str(MODEL)
    )
    assert result.exit_code == 0, result.output
    assert "0 issue(s)" in result.stdout


def test_model_lowers_to_facts_with_lines() -> None:
    model = load_semantic_file(MODEL)
    facts = lower_semantic_model(model)
    metric = next(f for f in facts if f.pred == "dbt_metric" and f.args[0] == "net_revenue")
    assert str(facts.provenance(metric)[0]).startswith("semantic_models.yml:")
    assert any(f.pred == "dbt_dimension_sensitive" for f in facts)


def _drift(tmp_path: Path) -> Path:
    text = MODEL.read_text()
    text = text.replace(
        "{name: net_amount, agg: sum, expr: net_amount_cents}",
        "{name: net_amount, agg: count, expr: net_amount_cents}",
    )
    text = text.replace(
        "{name: gross_amount, agg: sum, expr: gross_amount_cents}",
        "{name: gross_amount, agg: sum, expr: net_amount_cents}",
    )
    text = text.replace("config: {meta: {sensitive: true}}", "config: {meta: {}}")
    text = text.replace(
        "{name: plan, type: categorical}",
        "{name: plan, type: categorical}\n      - {name: coupon_code, type: categorical}",
    )
    dropped = "average_resolution_hours, type: simple, type_params: {measure: resolution_hours}}"
    text = text.replace(f"  - {{name: {dropped}\n", "")
    text += "  - {name: bookings, type: simple, type_params: {measure: gross_amount}}\n"
    text += "  - {name: churn_rate, type: simple, type_params: {measure: tickets}}\n"
    path = tmp_path / "semantic_models.yml"
    path.write_text(text)
    return path


def test_drift_is_reported(tmp_path: Path) -> None:
    issues = compare(load_domain("support_saas"), load_semantic_file(_drift(tmp_path)))
    got = sorted((i.kind, i.subject) for i in issues)
    assert got == sorted(
        [
            ("aggregation_mismatch", "net_revenue"),  # agg: sum -> count
            ("expression_mismatch", "gross_revenue"),  # reads net_amount_cents
            ("expression_mismatch", "bookings"),  # alias of gross_revenue, same measure
            ("stale_metric_alias", "bookings"),
            ("sensitive_column_without_metadata", "customer_email"),
            ("sensitive_column_without_metadata", "tenant_id"),  # sensitive in the published policy
            ("dimension_missing_from_policy", "coupon_code"),
            ("metric_missing_from_policy", "churn_rate"),
            ("metric_missing_from_dbt", "average_resolution_hours"),
        ]
    )
    agg = next(i for i in issues if i.kind == "aggregation_mismatch")
    assert "agg: count" in agg.message and "sum(invoices.net_amount_cents)" in agg.message
    assert agg.line is not None and agg.policy_line is not None


def test_cli_reports_and_exits_1(tmp_path: Path) -> None:
    path = _drift(tmp_path)
    result = run(
        "check-integration",
        "dbt-semantic",
        "--domain",
        "support_saas",
        "--path",
        str(path),
        "--format",
        "json",
    )
    assert result.exit_code == 1
    kinds = {i["kind"] for i in json.loads(result.stdout)}
    assert "aggregation_mismatch" in kinds


def test_dbt_in_scan_config_yields_findings(tmp_path: Path) -> None:
    path = _drift(tmp_path)
    (tmp_path / "t.jsonl").write_text("")
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n"
        f"dbt: {{files: [{path.name}]}}\n"
    )
    result = run("scan", "--config", str(tmp_path / "policystrata.yaml"), "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert {f["kind"] for f in findings} == {"integration"}
    assert all(f["location"]["file"] == path.name for f in findings)


def test_malformed_model_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("semantic_models:\n  - model: ref('x')\n")
    result = run(
        "check-integration", "dbt-semantic", "--domain", "support_saas", "--path", str(bad)
    )
    assert result.exit_code == 2
    assert "bad.yml:2" in result.stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "semantic_models:\n  - name: x\n    dimensions: 5\n",
            "bad.yml:3: semantic_models[0].dimensions",
        ),
        (
            "semantic_models:\n  - name: x\n    measures: {a: 1}\n",
            "bad.yml:3: semantic_models[0].measures",
        ),
        ("metrics:\n  - name: m\n    type_params: [a]\n", "bad.yml:3: metrics[0].type_params"),
        (
            "metrics: [{name: m, type_params: {measure: [1]}}]\n",
            "bad.yml:1: metrics[0].type_params",
        ),
        (
            "semantic_models:\n  - name: x\n    measures:\n"
            "      - {name: a, agg: sum, expr: [1]}\n",
            "bad.yml:4: semantic_models[0].measures[0].expr",
        ),
    ],
)
def test_a_wrongly_typed_model_is_one_line_at_its_key(
    text: str, where: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    result = run("check-integration", "dbt-semantic", "--path", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {where}")
    assert len(result.stderr.splitlines()) == 1


def test_cli_table_is_readable_at_80_columns_and_points_at_the_policy_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    text = MODEL.read_text().replace("      - {name: plan, type: categorical}\n", "")
    path = tmp_path / "m.yml"
    path.write_text(text)
    result = run("check-integration", "dbt-semantic", "--path", str(path))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and all(x == x.rstrip() for x in lines)
    line = load_domain("support_saas").line("policy", "dimensions", "plan")
    assert any(x.startswith(f"policy.yaml:{line} ") for x in lines)
    assert "dimension_missing_from_dbt" in result.stdout


def test_a_policy_entry_missing_from_dbt_points_at_its_policy_line_in_the_repo(
    tmp_path: Path,
) -> None:
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    model = out / "dbt" / "semantic_models.yml"
    model.write_text(model.read_text().replace("      - {name: plan, type: categorical}\n", ""))
    result = run(
        "scan", "--config", str(out / "policystrata.yaml"), "--db", "none", "--format", "sarif"
    )
    results = json.loads(result.stdout)["runs"][0]["results"]
    (missing,) = [r for r in results if r["ruleId"] == "dbt.dimension_missing_from_dbt"]
    where = missing["locations"][0]["physicalLocation"]
    policy = (out / "domain" / "policy.yaml").read_text().splitlines()
    assert where["artifactLocation"]["uri"] == "domain/policy.yaml"
    assert policy[where["region"]["startLine"] - 1].startswith("  plan:")
