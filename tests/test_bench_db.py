"""Benchmark runs with real-row evidence: every DDL variant in its own database, the canonical
and the faulty SQL executed under the same tenant, evidence level ``real_db`` recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policystrata.cli.bench import execute_run
from policystrata.db.server import Server

pytestmark = pytest.mark.postgres

OPERATORS = {
    "fanout_join_drift",
    "compiler_uses_old_tenant_key",
    "db_rls_old_ownership_field",
    "app_deny_missing_db_policy",
}


@pytest.fixture(scope="module")
def db_run(pg_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``strata run --suite seeded --db <dsn> --no-minimize``, as the command runs it."""
    out = tmp_path_factory.mktemp("seeded-db")
    execute_run(
        "support_saas", None, "seeded", None, out, None, None, False, db=pg_server.dsn("postgres")
    )
    return out


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]


def _witnesses(out: Path, rec: dict) -> list[dict]:
    """The witnesses of a run's witnesses/<task_id>.json (published keys + ``witnesses``)."""
    return json.loads((out / rec["witness"]).read_text())["witnesses"]


def _first_witness(out: Path, rec: dict) -> dict:
    return _witnesses(out, rec)[0]


def test_run_metadata_names_the_evidence_it_had(db_run: Path) -> None:
    meta = json.loads((db_run / "metadata.json").read_text())
    assert meta["evidence_level"] == "real_db"


def test_every_killed_sql_or_ddl_fault_carries_real_rows(db_run: Path) -> None:
    killed = [r for r in _records(db_run) if r["status"] == "killed" and r["mutation"] in OPERATORS]
    assert {r["mutation"] for r in killed} == OPERATORS
    for rec in killed:
        for w in _witnesses(db_run, rec):
            assert w["evidence"]["level"] == "real_db", (rec["task"], w["check"])


def test_fan_out_fault_really_multiplies_the_sum(db_run: Path) -> None:
    sums = [
        r
        for r in _records(db_run)
        if r["mutation"] == "fanout_join_drift" and r["ir"].startswith("net_revenue")
    ]
    assert sums
    for rec in sums:
        details = _first_witness(db_run, rec)["evidence"]["details"]
        canonical = sum(float(row[-1]) for row in details["canonical"]["rows"])
        layer = sum(float(row[-1]) for row in details["layer"]["rows"])
        assert layer > canonical > 0, rec["task"]
        assert details["values_match"] is False


def test_canonical_sql_runs_with_its_own_parameters(db_run: Path) -> None:
    """The parameterised compiler style binds $n in the canonical SQL too: it must run."""
    param_cases = [r for r in _records(db_run) if r["style"] == "params" and r.get("witness")]
    assert param_cases
    for rec in param_cases:
        details = _first_witness(db_run, rec)["evidence"]["details"]
        assert "error" not in details["canonical"], (rec["task"], details["canonical"])
        assert details["canonical"]["row_count"] > 0, rec["task"]


def test_rewritten_rls_shows_foreign_rows_to_the_app_role(db_run: Path) -> None:
    rec = next(r for r in _records(db_run) if r["mutation"] == "db_rls_old_ownership_field")
    witnesses = _witnesses(db_run, rec)
    probes = [p for w in witnesses for p in w["evidence"]["details"]["probes"].values()]
    assert any(p["foreign_visible"] for p in probes), probes
