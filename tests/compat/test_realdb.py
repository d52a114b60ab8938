"""COMPAT.md §4 on a real PostgreSQL: rls_checks and state_assertions with every published key
(tenant_id optional, require/forbidden columns, allowed/forbidden values per column), and a
run's db_result from real rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.cli import main

pytestmark = pytest.mark.postgres


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


CONFIG = """version: 1
domain: support_saas
sql_traces: {files: [t.jsonl]}
database:
  mode: postgres
  required: true
  start_docker: false
  rls_checks:
    - {id: acme_accounts, sql: "select tenant_id from accounts", tenant_id: acme,
       expected_tenant_ids: [acme], tenant_column: tenant_id, required: true}
    - {id: no_session_no_rows, sql: "select tenant_id from accounts", expected_rows: 0}
  state_assertions:
    - id: acme_invoice_shape
      sql: "select a.tenant_id, i.net_amount_cents from invoices i
            join subscriptions s on s.id = i.subscription_id join accounts a on a.id = s.account_id"
      tenant_id: acme
      require_columns: [tenant_id]
      forbidden_columns: [customer_email]
      allowed_values: {tenant_id: [acme]}
      forbidden_values: {tenant_id: [beta, null]}
      regression_case: pass_to_pass
    - id: {bad_id}
      sql: "select tenant_id, customer_email from accounts"
      tenant_id: acme
      forbidden_columns: [customer_email]
"""


def test_rls_checks_and_state_assertions_with_every_key(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "t.jsonl").write_text("")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(CONFIG.replace("{bad_id}", "emails_not_exposed"))
    result = run("scan", "--config", str(cfg), "--db", pg_server.dsn(), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    db = report["database"]
    assert db["rls_checks"] == {"ran": 2, "passed": 2, "failed": 0, "not_run": 0}
    assert db["state_assertions"] == {"ran": 2, "passed": 1, "failed": 1, "not_run": 0}
    [failed] = [f for f in report["findings"] if f["rule_id"] == "database.state_assertion"]
    assert failed["key"] == "emails_not_exposed"
    assert "forbidden_column_present (customer_email)" in failed["message"]


def test_run_db_result_comes_from_real_rows(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "tasks:\n"
        "  - {id: drop, principal: acme_analyst, mutation: compiler_drops_tenant_predicate,\n"
        "     semantic_query: {metric: ticket_count, dimensions: [region]}}\n"
    )
    out = tmp_path / "run"
    result = run(
        "run",
        "--suite-file",
        str(suite),
        "--out",
        str(out),
        "--db",
        pg_server.dsn(),
        "--no-minimize",
    )
    assert result.exit_code == 0, result.output
    [rec] = [json.loads(x) for x in (out / "traces.jsonl").read_text().splitlines()]
    db = rec["db_result"]
    assert db["actual_value"] is not None and db["intended_value"] is not None
    assert db["rows"] == len(db["actual_value"])
    assert db["blocked_by_database"] is True  # RLS removed the other tenants' rows
