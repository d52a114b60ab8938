"""COMPAT.md §4 and §5: scan configs with every published key and default, imported traces with
every field and alias, tenancy as facts the rules use (the published cube and WrenAI
regressions), gate.required_inputs as a rule, and the published finding keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policystrata.cli import main
from policystrata.errors import InputErrors
from policystrata.scan.config import load_scan_config
from policystrata.scan.run import run_scan
from policystrata.traces import read_traces
from tests.compat.conftest import FIXTURES


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    out = tmp_path / "shop"
    shutil.copytree(FIXTURES / "shop", out)
    return out


@pytest.fixture
def tpch(tmp_path: Path) -> Path:
    out = tmp_path / "tpch"
    shutil.copytree(FIXTURES / "tpch", out)
    return out


def scan_json(config: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    """The scan's report; the fuzz stage's survivors (low, never gating; tests/test_fuzz.py)
    are left out of ``findings`` so each test sees the verdicts on its records."""
    result = run("scan", "--config", str(config), "--db", "none", "--format", "json", *extra)
    report = json.loads(result.stdout)
    report["findings"] = [f for f in report["findings"] if f.get("mutation") is None]
    return result.exit_code, report, result.stderr


# ---- every key loads, with its published default ----


def test_every_published_key_loads(shop: Path) -> None:
    cfg = load_scan_config(shop / "policystrata.yaml")
    m = cfg.model
    assert m.output == "out" and m.sarif is True and m.fuzz.max_cases_per_trace == 8
    assert m.database is not None and m.database.startup_timeout_seconds == 45.5
    assert m.database.state_assertions[0].allowed_values == {
        "status": ["completed", "refunded", None]
    }
    assert m.gate.required_inputs == ["sql_traces", "dbt"]
    code, report, stderr = scan_json(shop / "policystrata.yaml")
    assert code == 1  # the cube regression in the traces (below), never exit 2
    flat = " ".join(stderr.split())
    assert "there is no Docker here" in flat
    assert "read by `strata doctor` only" in flat
    assert "traces/not_exported_yet.jsonl does not exist (not required: skipped)" in flat
    assert report["fuzz"]["ran"] is True and report["fuzz"]["seed"] == 1729
    assert report["inputs"] == {
        "dbt": True,
        "sql_traces": True,
        "database": True,
        "state_assertions": True,
    }
    assert (shop / "out" / "scan.json").is_file() and (shop / "out" / "scan.sarif").is_file()


def test_published_defaults(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("")
    cfg_path = tmp_path / "policystrata.yaml"
    cfg_path.write_text("version: 1\nsql_traces: {files: [t.jsonl, later.jsonl]}\n")
    cfg = load_scan_config(cfg_path)
    m = cfg.model
    assert m.domain == "support_saas" and m.domain_path is None
    assert m.sarif is False and m.output is None
    assert m.sql_traces.required is False
    assert m.fuzz.enabled and m.fuzz.seed == 1729 and m.fuzz.max_cases_per_trace == 8
    assert m.gate.fail_on_high_confidence and m.gate.required_inputs == []
    assert [p.name for p in cfg.trace_paths()] == ["t.jsonl"]  # a missing file is skipped
    assert cfg.output_dir() == tmp_path.resolve() / "scan-out"
    result = run("scan", "--config", str(cfg_path))
    assert result.exit_code == 0, result.output
    out = tmp_path / "scan-out"
    assert (out / "scan.json").is_file() and not (out / "scan.sarif").exists()  # sarif false


def test_database_keys_and_schema_path_alias(tmp_path: Path) -> None:
    cfg_path = tmp_path / "policystrata.yaml"
    (tmp_path / "ddl.sql").write_text("CREATE TABLE t (id int);\n")
    cfg_path.write_text(
        "version: 1\ndatabase:\n  schema_path: ddl.sql\n  start_docker: false\n"
        "  compose_file: null\n  compose_service: db\n  startup_timeout_seconds: 5\n"
    )
    db = load_scan_config(cfg_path).model.database
    assert db is not None and db.schema_ == "ddl.sql" and db.compose_service == "db"
    assert db.admin_url is None and db.execute_imported_sql and not db.required


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("fuzz: {max_cases_per_trace: 51}", "policystrata.yaml:2", "less than or equal to 50"),
        ("database: {startup_timeout_seconds: 0}", "policystrata.yaml:2", "greater than 0"),
        ("gate: {required_inputs: [sql_trace]}", "policystrata.yaml:2", "sql_traces"),
        (
            "database:\n  rls_checks:\n    - {id: a, sql: select 1}",
            "policystrata.yaml:4",
            "give expected_rows or expected_tenant_ids",
        ),
        (
            "database:\n  state_assertions:\n    - {id: a, sql: select 1, tenant_id: acme}",
            "policystrata.yaml:4",
            "give at least one condition",
        ),
        (
            "database:\n  rls_checks:\n    - {id: 'a b', sql: select 1, expected_rows: 1}",
            "policystrata.yaml:4",
            "must start with a letter or digit",
        ),
        (
            "database:\n  state_assertions:\n    - {id: a, sql: select 1, expect_empty: true, "
            "regression_case: pass_2_pass}",
            "policystrata.yaml:4",
            "pass_to_pass",
        ),
        ("fuzzz: {}", "policystrata.yaml:2", "did you mean 'fuzz'"),
    ],
)
def test_validation_rules_name_file_and_line(
    tmp_path: Path, text: str, where: str, needle: str
) -> None:
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\n" + text + "\n")
    with pytest.raises(InputErrors) as e:
        load_scan_config(cfg)
    msg = str(e.value)
    assert msg.startswith(where) and needle in msg, msg
    result = run("scan", "--config", str(cfg))
    assert result.exit_code == 2


def test_state_assertion_conditions() -> None:
    """Each published condition of a state assertion, judged by rules/db_checks.dl over the
    facts of the check and of its rows (NULL included)."""
    from policystrata.case import DbCheck
    from policystrata.check import Checker
    from policystrata.lower.dbcheck import db_check_rows_facts, lower_db_check

    checker = Checker.open("support_saas")
    rows = [["acme", "completed"], ["acme", None]]
    cols = ["tenant_id", "status"]

    def ok(**kw: Any) -> bool:
        for key in ("allowed_values", "forbidden_values"):
            if isinstance(kw.get(key), dict):
                kw[key] = tuple((c, tuple(v)) for c, v in kw[key].items())
        check = DbCheck("state_assertion", "a", "select 1", "acme", **kw)
        facts = lower_db_check("c", check)
        facts.update(db_check_rows_facts("c", check, cols, rows))
        return not checker.engine.evaluate(facts).atoms("violation")

    assert ok(require_columns=("tenant_id",)) and not ok(require_columns=("email",))
    assert ok(forbidden_columns=("email",)) and not ok(forbidden_columns=("status",))
    assert ok(allowed_values={"status": ["completed", None]})
    assert not ok(allowed_values={"status": ["open"]})
    assert not ok(allowed_values={"status": ["completed"]})  # NULL is not among them
    assert ok(forbidden_values={"tenant_id": ["beta"]})
    assert not ok(forbidden_values={"status": [None]})
    assert not ok(forbidden_values={"*": ["acme"]})  # our bare-list form: any column
    assert ok(expected_rows=2) and not ok(expected_rows=3) and not ok(expect_empty=True)


# ---- imported traces: every field and alias ----


def test_trace_aliases_and_pass_through_fields(shop: Path) -> None:
    items = list(read_traces(shop / "traces" / "orders.jsonl"))
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Case", "Case", "Case", "Skipped"]
    node = items[2]
    assert node.id == "node-7f3a"  # trace_id -> id
    assert node.sql is not None and node.sql.startswith("select sum(orders.amount)")  # query.sql
    assert node.tenant_ids is None and node.meta["hashed_tenant_ids"] == 1  # hashed: ignored
    assert node.meta["record_type"] == "sql_trace"
    first = items[0]
    assert first.meta["evidence_level"] == "imported_trace"
    assert first.meta["expected_policy"] == {"allowed": True}
    assert first.meta["timestamp"] == "2026-06-20T10:00:00Z"


def test_hashed_tenant_ids_are_never_a_foreign_binding(tmp_path: Path) -> None:
    rec = {
        "id": "h",
        "principal": "acme_analyst",
        "tenant_ids": ["acme", "sha256:5f0c4e7d9a2b", "hmac-sha256:0a1b2c3d4e5f6a7b8c9d0e1f"],
        "sql": "select count(*) from accounts where accounts.tenant_id = 'acme' limit 1",
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(rec) + "\n")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\nsql_traces: {files: [t.jsonl]}\n")
    code, report, _ = scan_json(cfg)
    assert code == 0 and report["findings"] == []


# ---- tenancy as facts: the published regressions ----


def test_cube_regression_a_dropped_canonical_predicate_is_reported(shop: Path) -> None:
    code, report, _ = scan_json(shop / "policystrata.yaml")
    findings = [f for f in report["findings"] if f["kind"] == "witness"]
    assert [(f["record_id"], f["check"], f["key"]) for f in findings] == [
        ("orders_status_dropped", "canonical_predicate_missing", "orders.status = 'completed'")
    ]
    f = findings[0]
    assert f["severity"] == "critical" and f["gating"] and code == 1
    proof = json.dumps(f["witness"]["proof"])
    assert "canonical_predicate" in proof and "policystrata.yaml" in proof  # the config's line


def test_wrenai_regression_a_dropped_tenant_placeholder_predicate_is_reported(
    tpch: Path,
) -> None:
    code, report, _ = scan_json(tpch / "policystrata.yaml")
    got = {(f["record_id"], f["check"]) for f in report["findings"]}
    assert ("orders_customer_key_dropped", "tenant_scope_missing") in got
    assert ("other_customer", "cross_tenant_literal") in got
    assert not any(r == "orders_of_customer" for r, _ in got)  # keeps c_custkey = the tenant
    f = next(f for f in report["findings"] if f["record_id"] == "orders_customer_key_dropped")
    # the tenant column comes from the config's canonical predicate: provenance says so
    assert "policystrata.yaml" in json.dumps(f["witness"]["proof"])
    assert code == 1


def test_plural_placeholder_and_table_tenant_columns(tmp_path: Path) -> None:
    recs = [
        {
            "id": "ok",
            "principal": "acme_analyst",
            "sql": "select count(*) from accounts a where a.tenant_id in ('acme') limit 5",
        },
        {
            "id": "legacy",
            "principal": "acme_analyst",
            "sql": "select count(*) from accounts a where a.legacy_tenant_id = 'acme' limit 5",
        },
    ]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(
        "version: 1\nsql_traces: {files: [t.jsonl]}\ntenancy:\n"
        "  canonical_predicates: ['accounts.tenant_id in (:principal.tenant_ids)']\n"
    )
    _code, report, _ = scan_json(cfg)
    assert [(f["record_id"], f["check"]) for f in report["findings"]] == [
        ("legacy", "wrong_tenant_column")
    ]
    # table_tenant_columns wins over the built-in column: legacy_tenant_id is the scope now
    cfg.write_text(
        "version: 1\nsql_traces: {files: [t.jsonl]}\ntenancy:\n"
        "  table_tenant_columns: {accounts: [legacy_tenant_id]}\n"
    )
    _code, report, _ = scan_json(cfg)
    compiler = [
        (f["record_id"], f["check"]) for f in report["findings"] if f["surface"] == "compiler"
    ]
    assert compiler == [("ok", "wrong_tenant_column")]
    # ... and the database's RLS (on tenant_id) no longer contains the configured scope
    assert {f["check"] for f in report["findings"] if f["surface"] == "database"} == {
        "tenant_rows_not_contained"
    }


def test_canonical_predicates_that_cannot_be_required_are_noted(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(
        "version: 1\nsql_traces: {files: [t.jsonl]}\ntenancy:\n"
        "  canonical_predicates:\n    - accounts.region = accounts.name\n"
        "    - 'accounts.x = ('\n"
    )
    code, _report, stderr = scan_json(cfg)
    flat = " ".join(stderr.split())
    assert code == 0
    assert "policystrata.yaml:5: canonical predicate part" in flat
    assert "policystrata.yaml:6: canonical predicate not read" in flat


# ---- gate.required_inputs: a rule, a critical finding with a proof ----


def test_missing_required_input_is_a_critical_finding(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(
        "version: 1\nsql_traces: {files: [t.jsonl]}\n"
        "gate:\n  required_inputs: [sql_traces, dbt, database, state_assertions]\n"
    )
    report = run_scan(load_scan_config(cfg), db_spec="none")
    missing = {f.key: f for f in report.findings if f.check == "missing_required_input"}
    assert set(missing) == {"dbt", "database", "state_assertions"}
    f = missing["dbt"]
    assert f.severity == "critical" and f.confidence == "high" and f.gating
    assert f.location.line == 4 and f.rule_id == "gate.missing_required_input"
    assert f.details["published_id"] == "missing_required_dbt"
    assert f.details["proof"]["rule"] == "gate.missing_required_input"
    assert report.gate.exit_code == 1


# ---- the published finding keys ----


def test_findings_carry_the_published_keys(shop: Path) -> None:
    _code, report, _ = scan_json(shop / "policystrata.yaml")
    f = next(f for f in report["findings"] if f["kind"] == "witness")
    published = {
        "id",
        "title",
        "severity",
        "confidence",
        "surface",
        "witness_class",
        "evidence_level",
        "reasons",
        "principal",
        "sql",
        "source",
        "regression_case",
        "reproducible_command",
        "metadata",
        "what_changed",
        "owner",
        "probable_fix",
        "minimal_repro_trace",
        "ci_gate_command",
        "published_severity",
    }
    assert published <= set(f), published - set(f)
    assert f["published_severity"] == "critical" and f["regression_case"] == "fail_to_pass"
    assert f["source"] == "imported_trace"  # the published default
    assert f["ci_gate_command"] == "strata scan --config policystrata.yaml"
    assert f["minimal_repro_trace"]["id"] == "orders_status_dropped"
    line = (shop / "out" / "findings.jsonl").read_text().splitlines()[0]
    assert "published_severity" in json.loads(line)
