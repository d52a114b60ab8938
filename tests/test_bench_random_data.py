"""The random_data_generation baseline's rows (policystrata.bench.random_data) and the baseline
itself: seeded random rows for any schema shape, loaded into a real PostgreSQL, visible to each
tenant under row security; run with --db none it is reported as not run, never as clean."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, Phase, given, settings

import policystrata.bench.random_data
from policystrata.bench.baselines import Baselines, baseline_cases, baseline_report, score
from policystrata.bench.random_data import random_rows_sql
from policystrata.db.server import Server
from policystrata.db.vet import vet_sql
from policystrata.model import load_domain
from tests.conftest import seeded_copy
from tests.domain_shapes import Shape, shapes, write_domain

PROFILE = dict(
    max_examples=8 if os.environ.get("HYPOTHESIS_PROFILE") != "thorough" else 40,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
)  # fmt: skip


@pytest.mark.parametrize("name", ["support_saas", "finance_saas", "analytics_clickhouse"])
def test_rows_are_seeded_typed_sql_and_reach_every_tenant(name: str) -> None:
    domain = load_domain(name)
    sql = random_rows_sql(domain, seed=3)
    assert sql == random_rows_sql(domain, seed=3)  # deterministic
    assert sql != random_rows_sql(domain, seed=4)
    stmts = sqlglot.parse(sql, read=domain.dialect)
    assert stmts and all(isinstance(s, sqlglot.exp.Insert) for s in stmts)
    tenants = {t for p in domain.policy.principals.values() for t in p.tenant_ids}
    assert all(f"'{t}'" in sql for t in tenants)  # every tenant owns rows


@pytest.fixture(scope="module")
def run_dir(seeded_no_minimize_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """support_saas's seeded run without minimization (built once for the test run)."""
    return seeded_copy(seeded_no_minimize_run, tmp_path_factory, "seeded_rdg")


def test_without_a_database_it_is_not_run(run_dir: Path) -> None:
    rep = baseline_report(run_dir, load_domain("support_saas"), None)
    assert "random_data_generation" not in rep["baselines"]
    assert "needs a database" in rep["not_run"]["random_data_generation"]


@pytest.mark.postgres
def test_it_runs_on_random_rows_and_sees_sql_faults_only(run_dir: Path, pg_server: Server) -> None:
    from policystrata.db.domain import domain_databases

    domain = load_domain("support_saas")
    with domain_databases(pg_server.dsn("postgres"), domain) as dbs:
        b = Baselines(domain, dbs, seed=0)
        rep = score(b, baseline_cases(run_dir))["random_data_generation"]
        b.close()
    ops = rep["per_operator"]
    assert rep["false_positives"] == 0 and rep["controls"] > 0
    # a different aggregate gives a different number on random rows
    assert ops["gross_net_metric_drift"]["caught"] >= 1
    assert ops["fanout_join_drift"]["caught"] >= 1
    # what it cannot see: faults that leave the SQL and DDL alone (a grammar accepting what
    # the validator still denies); a manifest fault only when it removes the SQL altogether
    assert ops["grammar_permits_forbidden_dimension"]["caught"] == 0
    assert "manifest_omits_allowed_metric" in rep["missed_operators"]
    # row security masks a dropped tenant predicate on the rows the app role reads
    assert ops["compiler_drops_tenant_predicate"]["caught"] == 0


@pytest.mark.postgres
def test_rows_that_do_not_load_make_it_not_run(
    run_dir: Path, pg_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policystrata.db.domain import domain_databases

    domain = load_domain("support_saas")
    monkeypatch.setattr(
        policystrata.bench.random_data, "random_rows_sql", lambda *_a, **_k: "insert into nope;"
    )
    with domain_databases(pg_server.dsn("postgres"), domain) as dbs:
        rep = baseline_report(run_dir, domain, dbs)
    assert "random_data_generation" not in rep["baselines"]
    assert "did not load" in rep["not_run"]["random_data_generation"]
    assert rep["baselines"]["final_answer_only"]["total_failures"] > 0  # the others still ran


@pytest.mark.postgres
@settings(**PROFILE)  # type: ignore[arg-type]
@given(shape=shapes())
def test_rows_of_any_shape_load_and_each_tenant_sees_its_root_rows(
    shape: Shape, make_db: Callable[..., object]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        domain = load_domain(write_domain(shape, Path(tmp) / "d"))
        sql = random_rows_sql(domain, seed=11)
        schema = domain.sources["schema"].read_text(encoding="utf-8")
        db = make_db(schema, sql, (shape.setting,))
        if shape.qualified:  # loaded (app.<table>); the execution allow-list reads public only
            return
        root = shape.root.name
        vetted = vet_sql(f"select count(*) from {root}", relations=frozenset({root}))
        for tenant in shape.tenants():
            rows = db.run_app(vetted, tenant, []).rows  # type: ignore[attr-defined]
            assert rows[0][0] > 0, (tenant, sql)
