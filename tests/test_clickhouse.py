"""The analytics_clickhouse domain: ClickHouse DDL and SQL lowered with sqlglot's ClickHouse
dialect, row-policy facts, the eight ClickHouse fault operators killed at their own layer, the
ClickHouse execution allow-list against a hostile corpus, real rows from chdb, determinism.

chdb tests run wherever chdb is installed (``uv run pytest`` installs it: the ``clickhouse``
dependency group); without it they skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.check import Checker
from policystrata.facts import Fact
from policystrata.ir import parse_ir
from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.lower.sql.allowlist import execution_refusals
from policystrata.stack.compiler import compile_query, styles_for
from policystrata.stack.faults import OPERATORS
from policystrata.stack.pipeline import Request, changed_artifacts, run_stack

DOMAIN = "analytics_clickhouse"
CH_OPERATORS = (
    "clickhouse_row_policy_missing_project_filter",
    "clickhouse_row_policy_readonly_assumption_violation",
    "distributed_table_policy_gap",
    "aggregate_small_cohort_release",
    "sample_clause_release_drift",
    "materialized_view_lineage_drop",
    "timezone_bucket_drift",
    "uniq_to_count_drift",
)
EXPECTED = {
    "clickhouse_row_policy_missing_project_filter": ("database", "over_permissive"),
    "clickhouse_row_policy_readonly_assumption_violation": ("database", "over_permissive"),
    "distributed_table_policy_gap": ("database", "over_permissive"),
    "aggregate_small_cohort_release": ("release", "unsafe_release"),
    "sample_clause_release_drift": ("release", "unsafe_release"),
    "materialized_view_lineage_drop": ("compiler", "semantic_drift"),
    "timezone_bucket_drift": ("compiler", "semantic_drift"),
    "uniq_to_count_drift": ("compiler", "semantic_drift"),
}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open(DOMAIN)


def _chdb_or_skip() -> None:
    from policystrata.db.clickhouse import chdb_available

    if not chdb_available():
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail("CI=true and chdb is not installed", pytrace=False)
        pytest.skip("chdb is not installed (pip install 'policystrata[clickhouse]')")


# ---- the domain and its DDL --------------------------------------------------------------


def test_domain_loads_in_the_published_shape(checker: Checker) -> None:
    d = checker.domain
    assert d.dialect == "clickhouse" and not d.warnings
    assert sorted(d.policy.principals) == [
        "acme_growth_admin",
        "acme_product_viewer",
        "beta_product_viewer",
    ]
    assert d.policy.metrics["active_users"].expression == "uniqExact(events.user_id)"
    assert d.policy.dimensions["day"].column == "toDate(events.event_time, projects.timezone)"
    assert d.metric_agg("retention") == ("count", True, "events", "user_id")
    assert d.metric_agg("conversions") == ("count", False, "events", "*")
    facts = checker.policy_facts
    assert Fact("dimension_timezone", ("day", "column", "projects.timezone")) in facts
    assert Fact("dimension_time_unit", ("day", "day")) in facts
    assert Fact("release_min_cohort", (10,)) in facts
    assert Fact("metric_sample", ("sampled_events", 0.1)) in facts


def test_row_policy_facts() -> None:
    ddl = """
    CREATE TABLE events (project_id String, kind LowCardinality(String), at Nullable(DateTime))
      ENGINE = MergeTree ORDER BY project_id;
    CREATE TABLE events_all AS events ENGINE = Distributed(c, currentDatabase(), events, rand());
    CREATE ROLE reader;
    GRANT SELECT, INSERT ON events TO reader;
    CREATE ROW POLICY scoped ON events AS RESTRICTIVE FOR SELECT
      USING project_id = currentUser() AND kind != 'internal' TO reader, analyst;
    CREATE ROW POLICY open ON events_all USING 1 TO ALL;
    """
    info = parse_schema(ddl, dialect="clickhouse")
    lines = set(info.facts.to_lines().splitlines())
    assert 'rls_policy("events", "scoped", "select", false)' in lines
    assert 'rls_policy_role("events", "scoped", "analyst")' in lines
    assert (
        'rls_policy_pred("events", "scoped", "using", "project_id", "=", "setting", '
        '"currentUser()", "guaranteed")' in lines
    )
    assert 'rls_policy_always_true("events_all", "open")' in lines
    assert 'rls_policy_role("events_all", "open", "public")' in lines
    assert 'table_grant("events", "reader", "insert")' in lines
    assert 'distributed_table("events_all", "events")' in lines
    assert sorted(info.rls_enabled) == ["events", "events_all"]
    assert info.tables["events_all"].columns == info.tables["events"].columns
    assert info.tables["events"].not_null == {"project_id", "kind"}  # Nullable(...) is not
    assert info.tables["events"].columns["at"] == "timestamp"


def test_materialized_view_lineage_facts(checker: Checker) -> None:
    lines = set(checker.policy_facts.to_lines().splitlines())
    assert 'view_state("events_mv", "users_state", "count", true, "events", "user_id")' in lines
    assert 'view_state("events_mv", "events_state", "count", false, "events", "*")' in lines
    assert 'view_bucket("events_mv", "day", "day", "events", "event_time")' in lines
    assert 'view_column("events_sampled", "country", "events", "country")' in lines
    assert 'table_sample_key("events_sampled")' in lines


# ---- the ClickHouse lowering (hypothesis over generated queries) ----------------------------

AGGS = {
    "uniqExact(e.user_id)": ("count", True, "events", "user_id"),
    "count()": ("count", False, "*", "*"),
    "countIf(e.event_name = 'purchase')": ("count", False, "*", "*"),
    "uniqExactIf(e.user_id, e.event_name = 'return')": ("count", True, "events", "user_id"),
    "uniq(e.session_id)": ("count", True, "events", "session_id"),
    "sum(e.amount)": ("sum", False, "events", "amount"),
}
ZONES = {
    "": ("default", ""),
    ", 'UTC'": ("literal", "UTC"),
    ", 'Asia/Tokyo'": ("literal", "Asia/Tokyo"),
    ", p.timezone": ("column", "projects.timezone"),
    ", (select projects.timezone from projects where projects.id = 'p1')": (
        "column",
        "projects.timezone",
    ),
}
BUCKETS = {"toDate": "day", "toStartOfMonth": "month", "toMonday": "week"}
SCHEMA = {
    "events": {
        "project_id": "text",
        "user_id": "text",
        "session_id": "text",
        "event_name": "text",
        "amount": "integer",
        "event_time": "timestamp",
    },
    "projects": {"id": "text", "timezone": "text"},
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agg=st.sampled_from(sorted(AGGS)),
    bucket=st.sampled_from(sorted(BUCKETS)),
    zone=st.sampled_from(sorted(ZONES)),
    sample=st.sampled_from(["", " sample 0.1", " sample 1/10"]),
    window_zone=st.sampled_from(["", ", 'America/Los_Angeles'", ", 'UTC'"]),
    join=st.booleans(),
)
def test_clickhouse_lowering_reads_generated_queries(
    agg: str, bucket: str, zone: str, sample: str, window_zone: str, join: bool
) -> None:
    """Every generated ClickHouse query is read-only and lowered without findings: its
    aggregate as the metric vocabulary reads it, its bucket's unit and zone, its sample and
    its zoned window bounds."""
    joined = " left join projects as p on p.id = e.project_id" if join else ""
    if "p.timezone" in zone and not join:
        zone = ", 'UTC'"
    sql = (
        f"select {bucket}(e.event_time{zone}) as b, {agg} as value from events as e{sample}"
        f"{joined} where e.project_id = 'p1'"
        f" and e.event_time >= toDateTime('2026-06-17 00:00:00'{window_zone})"
        f" and e.event_time < toDateTime('2026-06-24 00:00:00'{window_zone})"
        " group by b limit 100"
    )
    r = lower_sql("q", sql, "clickhouse", schema=SCHEMA)
    assert r.read_only and not r.findings, r.findings
    lines = set(r.facts.to_lines().splitlines())
    func, distinct, table, column = AGGS[agg]
    assert (
        f'sql_agg("q", "s0", "s0.a1", "{func}", {str(distinct).lower()}, "{table}", "{column}")'
        in lines
    )
    assert f'sql_group_bucket("q", "s0", "{BUCKETS[bucket]}", "events", "event_time")' in lines
    kind, value = ZONES[zone]
    assert f'sql_bucket_zone("q", "s0", "events", "event_time", "{kind}", "{value}")' in lines
    assert ('sql_sample("q", "s0", "e", "system")' in lines) == bool(sample)
    assert 'sql_time_bound("q", "s0", "events", "event_time", ">=", "2026-06-17")' in lines
    if window_zone:
        zone_name = window_zone.strip(", '")
        assert (
            f'sql_time_bound_zone("q", "s0", "events", "event_time", ">=", "{zone_name}")' in lines
        )
    if agg.startswith("countIf"):
        assert any(line.startswith('sql_agg_filter_pred("q"') for line in lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reference_compiler_is_clean_in_every_style(checker: Checker, data: st.DataObject) -> None:
    """The reference compiler's ClickHouse SQL for any allowed request, in every legitimate
    style, lowers cleanly and gives no witness."""
    d = checker.domain
    principal = data.draw(st.sampled_from(sorted(d.policy.principals)))
    role = d.policy.roles[d.policy.principals[principal].role]
    metric = data.draw(st.sampled_from(role.allowed_metrics))
    dims = data.draw(st.lists(st.sampled_from(role.allowed_dimensions), max_size=2, unique=True))
    label = data.draw(st.sampled_from(role.allowed_time_ranges))
    style = data.draw(st.sampled_from(styles_for(d)))
    by = f" by {', '.join(dims)}" if dims else ""
    req = Request(principal, parse_ir(f"{metric}{by} during {label} limit 100"), style)
    run = run_stack(d, req)
    assert run.sql is not None
    lowered = lower_sql("q", run.sql, "clickhouse", schema=d.schema)
    assert lowered.read_only and not lowered.findings
    result = checker.check(run.to_case("c", principal, req.query, None))
    assert result.witnesses == [], [(w.check, w.key) for w in result.witnesses]


# ---- the eight ClickHouse operators, killed and localized ---------------------------------

CASES = {
    "clickhouse_row_policy_missing_project_filter": (
        "acme_product_viewer",
        "events by country during last_month limit 100",
    ),
    "clickhouse_row_policy_readonly_assumption_violation": (
        "beta_product_viewer",
        "sessions by platform during last_7_days limit 100",
    ),
    "distributed_table_policy_gap": (
        "acme_growth_admin",
        "conversions by day during last_month limit 100",
    ),
    "aggregate_small_cohort_release": (
        "acme_product_viewer",
        "active_users by country during last_month limit 100",
    ),
    "sample_clause_release_drift": (
        "acme_growth_admin",
        "sampled_events by country during last_month limit 100",
    ),
    "materialized_view_lineage_drop": (
        "beta_product_viewer",
        "events by event_name, day during last_7_days limit 100",
    ),
    "timezone_bucket_drift": ("acme_product_viewer", "events by day during last_7_days limit 100"),
    "uniq_to_count_drift": (
        "acme_growth_admin",
        "retention by event_name during quarter_to_date limit 10",
    ),
}


@pytest.mark.parametrize("op_id", CH_OPERATORS)
def test_each_clickhouse_operator_is_killed_at_its_layer(checker: Checker, op_id: str) -> None:
    d = checker.domain
    principal, ir = CASES[op_id]
    req = Request(principal, parse_ir(ir))
    canonical = run_stack(d, req)
    assert checker.check(canonical.to_case("c", principal, req.query, None)).witnesses == []
    op = OPERATORS[op_id]
    assert op.applies(d, req, canonical)
    faulted = run_stack(d, req, op.knobs(d, req))
    changed = changed_artifacts(canonical, faulted)
    layer_artifact = {"database": "ddl", "release": "release", "compiler": "sql"}[op.surface]
    assert changed == [layer_artifact]  # only the faulty layer's artifact changed
    witnesses = checker.check(faulted.to_case("c", principal, req.query, None)).witnesses
    assert _first_layer(witnesses) == EXPECTED[op_id]


def _first_layer(witnesses: list[Any]) -> tuple[str, str]:
    """The (layer, class) of the witness at the earliest layer: where the run localizes."""
    assert witnesses
    first = min(
        witnesses,
        key=lambda w: (
            ["manifest", "grammar", "validator", "compiler", "database", "release"].index(
                w.localized_surface
            ),
            w.witness_class,
        ),
    )
    return first.localized_surface, first.witness_class


#: Names a user's ClickHouse schema may give the same shape: (the domain's word, choices).
RENAMES = (
    ("projects", ("workspaces", "orgs", "tenant_set")),
    ("project_id", ("workspace_id", "org_key", "owner_ref")),
    ("events", ("hits", "activity", "log_rows")),
    ("sessions", ("trips", "visit_log", "sess")),
    ("event_time", ("hit_at", "occurred_at", "ts_utc")),
    ("timezone", ("tz_name", "zone_name", "tzid")),
    ("user_id", ("member_id", "actor_id", "uid")),
)


def _renamed(mapping: dict[str, str], text: str) -> str:
    import re

    pattern = re.compile(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b")
    return pattern.sub(lambda m: mapping[m.group(1)], text)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.tuples(*(st.sampled_from(choices) for _word, choices in RENAMES)))
def test_clickhouse_operators_are_killed_on_a_renamed_shape(picks: tuple[str, ...]) -> None:
    """The ClickHouse rules reason from the schema (row policies, engines, view lineage, the
    dimension's zone column, the release section), not from this domain's names: the same
    shape with its tables and columns renamed (the metrics named after tables too) still has
    every ClickHouse operator killed at its own layer, and its canonical runs are clean."""
    import tempfile

    from policystrata.paths import domains_dir

    mapping = {word: pick for (word, _choices), pick in zip(RENAMES, picks, strict=True)}
    src = domains_dir() / DOMAIN
    with tempfile.TemporaryDirectory() as tmp:
        dom = Path(tmp) / "renamed_ch"
        for path in sorted(src.rglob("*")):
            if path.is_file() and path.suffix in (".sql", ".yaml"):
                target = dom / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_renamed(mapping, path.read_text(encoding="utf-8")))
        checker = Checker.open(str(dom))
        d = checker.domain
        assert mapping["events"] in d.schema.tables and "events" not in d.schema.tables
        for op_id in CH_OPERATORS:
            principal, ir = CASES[op_id]
            req = Request(principal, parse_ir(_renamed(mapping, ir)))
            canonical = run_stack(d, req)
            case = canonical.to_case("c", principal, req.query, None)
            assert checker.check(case).witnesses == [], op_id
            op = OPERATORS[op_id]
            assert op.fits(d) and op.applies(d, req, canonical), op_id
            faulted = run_stack(d, req, op.knobs(d, req))
            witnesses = checker.check(faulted.to_case("c", principal, req.query, None)).witnesses
            assert _first_layer(witnesses) == EXPECTED[op_id], op_id


def test_operators_change_the_artifact_as_published(checker: Checker) -> None:
    """The faults are real transforms: the policy loses its filter, the compiler buckets in UTC,
    uniqExact becomes count(), the release record drops the threshold and the disclosure."""
    d = checker.domain

    def faulted(op_id: str):  # type: ignore[no-untyped-def]
        principal, ir = CASES[op_id]
        req = Request(principal, parse_ir(ir))
        return run_stack(d, req, OPERATORS[op_id].knobs(d, req))

    assert "ON events USING 1 TO" in faulted("clickhouse_row_policy_missing_project_filter").ddl
    assert (
        "GRANT INSERT, ALTER ON events TO policystrata_readonly"
        in faulted("clickhouse_row_policy_readonly_assumption_violation").ddl
    )
    assert "project_scope_events_distributed" not in faulted("distributed_table_policy_gap").ddl
    tz = faulted("timezone_bucket_drift").sql or ""
    assert "toDate(events.event_time, 'UTC')" in tz and "'America/Los_Angeles'" not in tz
    counted = (faulted("uniq_to_count_drift").sql or "").lower()  # uniqExactIf(u, c) -> countIf(c)
    assert "uniqexact" not in counted and "countif(events.event_name = 'return')" in counted
    assert "from events_mv" in (faulted("materialized_view_lineage_drop").sql or "")
    assert faulted("aggregate_small_cohort_release").release_record["min_cohort_size"] == 1
    assert faulted("sample_clause_release_drift").release_record["disclosures"] == []


def test_clickhouse_operators_fit_only_clickhouse_shapes() -> None:
    from policystrata.model import load_domain

    support = load_domain("support_saas")
    for op_id in CH_OPERATORS:
        assert not OPERATORS[op_id].fits(support), op_id
    ch = load_domain(DOMAIN)
    assert all(OPERATORS[op_id].fits(ch) for op_id in CH_OPERATORS)


# ---- the ClickHouse execution allow-list ---------------------------------------------------

RELATIONS = {"events", "projects", "sessions", "events_sampled", "events_mv"}
HOSTILE = [
    "select * from url('http://169.254.169.254/latest/meta-data', CSV, 'a String')",
    "select * from file('/etc/passwd', 'LineAsString')",
    "select * from s3('http://bucket/key', 'CSV')",
    "select * from remote('other-host', default.events)",
    "select * from remoteSecure('other-host', default.events)",
    "select * from cluster('analytics', default.events)",
    "select * from executable('cat /etc/passwd', TSV, 'a String')",
    "select * from input('a String')",
    "select * from mysql('h:3306', 'db', 't', 'u', 'p')",
    "select * from postgresql('h:5432', 'db', 't', 'u', 'p')",
    "select * from jdbc('jdbc:x', 't')",
    "select * from hdfs('hdfs://h/f', 'CSV', 'a String')",
    "select * from numbers(1000000000)",
    "select * from system.users",
    "select name from system.tables",
    "select * from default.events",
    "select dictGet('secrets', 'value', toUInt64(1))",
    "select sleepEachRow(3) from events",
    "select sleep(3)",
    "select throwIf(1)",
    "select count() from events settings readonly = 0",
    "select count() from events settings max_execution_time = 100000",
    "select count() from events format JSONEachRow",
    "select * from events union all select * from url('http://x', CSV, 'a String')",
    "with (select 1 from file('/etc/passwd', 'LineAsString')) as x select x",
    "insert into events select * from events",
    "insert into function file('/tmp/x', 'CSV') select * from events",
    "select 1; drop table events",
    "system shutdown",
    "system drop dns cache",
    "alter table events delete where 1",
    "truncate table events",
    "create table x engine = Memory as select * from events",
    "optimize table events final",
    "set readonly = 0",
    "kill query where 1",
    "grant all on *.* to default",
    "select currentUser() from remote('h', system.one)",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_clickhouse_sql_is_never_executed(sql: str) -> None:
    from policystrata.db.vet import UnvettedSQL, vet_sql

    with pytest.raises(UnvettedSQL):
        vet_sql(sql, relations=RELATIONS, dialect="clickhouse")


def test_allow_list_admits_the_reference_compilers_sql(checker: Checker) -> None:
    d = checker.domain
    for principal, ir in CASES.values():
        for style in styles_for(d):
            sql = compile_query(
                d, list(d.policy.principals[principal].tenant_ids), parse_ir(ir), style=style
            ).sql
            assert (
                execution_refusals(sql, relations=set(d.schema.tables), dialect="clickhouse") == []
            )
    refusals = execution_refusals(
        "select count() from events settings readonly=0", relations=RELATIONS, dialect="clickhouse"
    )
    assert [r.construct for r in refusals] == ["SETTINGS"]


# ---- real rows from chdb -------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb_checker() -> Checker:
    _chdb_or_skip()
    from policystrata.db.clickhouse import ClickHouseDatabases

    ch = Checker.open(DOMAIN)
    dbs = ClickHouseDatabases(ch.domain)
    ch.attach_databases(dbs)  # type: ignore[arg-type]
    yield ch
    dbs.close()


def _real(checker: Checker, op_id: str | None, principal: str, ir: str):  # type: ignore[no-untyped-def]
    d = checker.domain
    req = Request(principal, parse_ir(ir))
    canonical = run_stack(d, req)
    run = canonical if op_id is None else run_stack(d, req, OPERATORS[op_id].knobs(d, req))
    case = run.to_case("c", principal, req.query, None)
    case.reference_sql = canonical.sql
    return checker.check(case)


def test_chdb_evidence_utc_buckets_shift_daily_counts(chdb_checker: Checker) -> None:
    res = _real(
        chdb_checker,
        "timezone_bucket_drift",
        "acme_product_viewer",
        "events by day during last_7_days limit 100",
    )
    assert res.evidence is not None and res.evidence.level == "real_db"
    ev = res.evidence.details
    assert ev["layer"]["rows"] != ev["canonical"]["rows"]  # shifted daily counts
    assert sum(r[1] for r in ev["canonical"]["rows"]) > 0
    checks = {w.check for w in res.witnesses}
    assert {"timezone_bucket_drift", "result_mismatch"} <= checks


def test_chdb_evidence_small_cohort_and_foreign_rows(chdb_checker: Checker) -> None:
    res = _real(
        chdb_checker,
        "aggregate_small_cohort_release",
        "acme_product_viewer",
        "active_users by country during last_month limit 100",
    )
    assert ["IS", 3] in res.evidence.details["cohorts"]["rows"]
    assert "small_cohort_released" in {w.check for w in res.witnesses}
    clean = _real(
        chdb_checker,
        None,
        "acme_product_viewer",
        "active_users by country during last_month limit 100",
    )
    assert clean.witnesses == [] and clean.evidence.details["cohorts"]["released_min"] >= 10
    leak = _real(
        chdb_checker,
        "clickhouse_row_policy_missing_project_filter",
        "beta_product_viewer",
        "events by country during last_month limit 100",
    )
    probe = leak.evidence.details["probes"]["events"]
    assert probe["foreign_visible"] == ["project_acme_mobile", "project_gamma_api"]
    assert "foreign_rows_visible" in {w.check for w in leak.witnesses}


def test_chdb_row_policies_contain_a_dropped_tenant_predicate(chdb_checker: Checker) -> None:
    res = _real(
        chdb_checker,
        "compiler_drops_tenant_predicate",
        "acme_product_viewer",
        "events by platform during last_month limit 100",
    )
    assert res.evidence.details["containment"]["contained"] is True
    assert res.witnesses[0].containment_layer == "database"
    assert res.evidence.details["layer"]["rows"] == res.evidence.details["canonical"]["rows"]


def test_chdb_query_bounds_and_refusals(chdb_checker: Checker) -> None:
    from policystrata.db.clickhouse import ClickHouseQueryFailed
    from policystrata.db.vet import UnvettedSQL

    db = chdb_checker.context.databases.for_ddl(None)  # type: ignore[union-attr]
    with pytest.raises(UnvettedSQL):
        db.vet("select * from url('http://x', CSV, 'a String')")
    rows = db.run_app(db.vet("select count() as n from events"), "project_beta_web").rows
    assert rows == [[480]]
    assert db.run_bypass(db.vet("select count() as n from events"), None).rows == [[1560]]
    with pytest.raises(ClickHouseQueryFailed) as exc:  # result bound: max_result_rows
        db.run_bypass(
            db.vet("select e.event_id, s.session_id from events as e cross join sessions as s"),
            None,
        )
    assert exc.value.kind in ("limit", "timeout")
    assert "SETTINGS readonly = 1" in db._bounded("select 1", None)


# ---- determinism ---------------------------------------------------------------------------


def _run(tmp: Path, name: str, db: str) -> dict[str, bytes]:
    from policystrata.cli.bench import execute_run

    out = tmp / name
    execute_run(DOMAIN, None, "seeded", None, out, None, None, True, db=db, quiet=True)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_two_static_runs_are_byte_identical(tmp_path: Path) -> None:
    a, b = _run(tmp_path, "a", "none"), _run(tmp_path, "b", "none")
    assert a == b
    summary = json.loads(a["summary.json"])
    c = summary["counts"]
    assert c["survived"] == 0 and c["false_positive"] == 0 and c["killed"] >= 40
    assert c["localization_accuracy"] == 1.0


def test_two_chdb_runs_are_byte_identical(tmp_path: Path) -> None:
    _chdb_or_skip()
    a, b = _run(tmp_path, "a", "auto"), _run(tmp_path, "b", "auto")
    assert a == b
    assert json.loads(a["metadata.json"])["evidence_level"] == "real_db"
    witness = json.loads(a["witnesses/c11_utc_buckets.json"])
    assert witness["witnesses"][0]["evidence"]["level"] == "real_db"


# ---- scaffolds ------------------------------------------------------------------------------


def test_init_scan_from_the_clickhouse_domain_scans_clean(tmp_path: Path) -> None:
    """`strata init-scan --source-domain analytics_clickhouse` writes example traces compiled
    from the domain (ClickHouse SQL), and the scan passes, statically and with chdb's real
    rows."""
    from click.testing import CliRunner

    from policystrata.cli import main

    out = tmp_path / "scan"
    runner = CliRunner()
    res = runner.invoke(main, ["init-scan", "--source-domain", DOMAIN, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "uniqExact" in (out / "traces.jsonl").read_text()
    assert not (out / "domain" / "traces.jsonl").exists()
    config = str(out / "policystrata.yaml")
    res = runner.invoke(main, ["scan", "--config", config, "--out", str(tmp_path / "o1")])
    assert res.exit_code == 0, res.output
    _chdb_or_skip()
    res = runner.invoke(
        main, ["scan", "--config", config, "--out", str(tmp_path / "o2"), "--db", "auto"]
    )
    assert res.exit_code == 0, res.output


def test_init_domain_copies_the_clickhouse_domain(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policystrata.cli import main
    from policystrata.model import load_domain

    res = CliRunner().invoke(main, ["init-domain", DOMAIN, "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    copy = load_domain(tmp_path / "d")
    assert copy.dialect == "clickhouse" and "events_mv" in copy.schema.tables


def test_a_role_without_a_row_policy_is_a_database_fault(checker: Checker) -> None:
    """A role granted SELECT on a table under row policies that no policy binds reads every
    project's rows (ClickHouse's users_without_row_policies_can_read_rows)."""
    d = checker.domain
    req = Request("acme_product_viewer", parse_ir("events by country during last_month limit 100"))
    run = run_stack(d, req)
    case = run.to_case("c", "acme_product_viewer", req.query, None)
    case.ddl = run.ddl + "GRANT SELECT ON events TO analyst_adhoc;\n"
    witnesses = checker.check(case).witnesses
    assert [(w.localized_surface, w.check, w.key) for w in witnesses] == [
        ("database", "role_without_row_policy", "events")
    ]
    case.ddl = run.ddl + "CREATE ROW POLICY all_rows ON events USING 1 TO ALL;\n"
    checks = {w.check for w in checker.check(case).witnesses}
    assert "tenant_rows_not_contained" in checks  # TO ALL binds every role, and opens the table
