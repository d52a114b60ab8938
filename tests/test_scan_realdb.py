"""`strata scan` against a real PostgreSQL: imported SQL beside the reference compiler's SQL
under RLS through the one check pipeline, row differences and failed rls_checks /
state_assertions as rule findings with proofs that `strata explain` re-verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.cli import main

pytestmark = pytest.mark.postgres


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def pg_demo(tmp_path: Path) -> Path:
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    return out


def test_failing_example_with_real_rows(pg_demo: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "scan",
        "--config",
        str(pg_demo / "policystrata.yaml"),
        "--db",
        pg_server.dsn(),
        "--out",
        str(pg_demo / "out"),
    )
    assert result.exit_code == 1, result.output
    report = json.loads((pg_demo / "out" / "scan.json").read_text())
    # exactly what the README lists, beside the fuzz stage's survivors of the clean records
    # (low, never gating, judged statically; tests/test_fuzz.py)
    survivors = [f for f in report["findings"] if f.get("mutation") is not None]
    assert all(f["advisory"] and not f["gating"] for f in survivors)
    report["findings"] = [f for f in report["findings"] if f.get("mutation") is None]
    assert len(report["findings"]) == 3
    db = report["database"]
    # every record's SQL ran (the unauthorized one too: evidence, read-only, under its tenant)
    assert db["ran"] and (db["executed"], db["refused"], db["failed"]) == (5, 0, 0)
    assert db["rls_checks"] == {"ran": 2, "passed": 2, "failed": 0, "not_run": 0}
    assert db["state_assertions"] == {"ran": 2, "passed": 2, "failed": 0, "not_run": 0}
    scope = next(f for f in report["findings"] if f["check"] == "tenant_scope_missing")
    assert scope["evidence_level"] == "real_db"
    ev = scope["witness"]["evidence"]["details"]
    assert ev["values_match"] is True  # RLS contained it: same rows as the canonical SQL
    assert ev["containment"]["contained"] is True  # ... and removed other tenants' rows
    summary = json.loads((pg_demo / "out" / "summary.json").read_text())
    checks = summary["evidence_exercised"]["checks"]
    assert checks["rls_checks.acme_sees_only_acme_accounts"] == {"ran": 1, "passed": 1}
    assert checks["real_db.result_mismatch"] == {"ran": 5, "passed": 5}
    explained = run("explain", str(pg_demo / "out" / "scan.json"))
    assert explained.exit_code == 0, explained.output


def test_row_differences_and_failing_assertions_are_findings(pg_demo: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    cfg = pg_demo / "policystrata.clean.yaml"
    text = cfg.read_text().replace("expected_tenant_ids: [acme]", "expected_tenant_ids: [beta]")
    cfg.write_text(text)
    traces = pg_demo / "traces" / "clean.jsonl"
    lines = traces.read_text().splitlines()
    # the app's SQL drops the time filter: statically fine for an IR without time bounds check?
    # no - we change the value instead: the metric is summed twice (a row difference).
    lines[1] = lines[1].replace(
        "select sum(invoices.net_amount_cents) as value",
        "select sum(invoices.net_amount_cents) * 2 as value",
    )
    traces.write_text("\n".join(lines) + "\n")
    result = run("scan", "--config", str(cfg), "--db", pg_server.dsn(), "--format", "json")
    assert result.stdout, result.stderr
    data = json.loads(result.stdout)
    kinds = sorted((f["rule_id"], f["check"], str(f["key"])) for f in data["findings"])
    assert ("database.rls_check", "rls_check_failed", "acme_sees_only_acme_accounts") in kinds
    assert ("real_db.result_mismatch", "result_mismatch", "reference") in kinds
    assert all(f["kind"] == "witness" and f["witness"]["proof"] for f in data["findings"])
    assert result.exit_code == 1
    (pg_demo / "scan.json").write_text(result.stdout)
    explained = run("explain", str(pg_demo / "scan.json"))
    assert explained.exit_code == 0, explained.output
    sarif_ok = run("scan", "--config", str(cfg), "--db", pg_server.dsn(), "--format", "sarif")
    assert json.loads(sarif_ok.stdout)["runs"][0]["results"]


def test_a_check_that_cannot_run_is_reported_not_run_never_passed(  # type: ignore[no-untyped-def]
    pg_demo: Path, pg_server
) -> None:
    cfg = pg_demo / "policystrata.clean.yaml"
    text = cfg.read_text()
    anchor = "    - {id: no_tenant_context_no_rows,"
    assert anchor in text
    text = text.replace(
        anchor,
        '    - {id: typo_sql, sql: "select frm accounts", tenant_id: acme, expected_rows: 1}\n'
        + anchor,
    )
    cfg.write_text(text)
    result = run("scan", "--config", str(cfg), "--db", pg_server.dsn(), "--format", "json")
    data = json.loads(result.stdout)
    (f,) = [f for f in data["findings"] if f["key"] == "typo_sql"]
    assert (f["rule_id"], f["check"]) == ("database.check_not_run_optional", "check_not_run")
    assert f["severity"] == "low" and not f["gating"]  # not required: a warning, never a pass
    assert "did not run" in f["message"] and "policystrata.clean.yaml:" in f["probable_fix"]
    # the other checks still ran
    assert data["database"]["state_assertions"] == {
        "ran": 2,
        "passed": 2,
        "failed": 0,
        "not_run": 1,
    }
