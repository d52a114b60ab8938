"""The scan's fuzz stage: each published operator on a record where it applies (and stillborn
where it does not), equivalent mutants, determinism, and a survivor reported as a non-gating
finding whose proof re-verifies. The domain is a small shop written for these tests
(tests/fixtures/fuzz), so they do not depend on a built-in domain's shape."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.engine import check_proof
from policystrata.facts import Fact
from policystrata.ir import parse_ir
from policystrata.scan.fuzz import (
    OPERATORS,
    FuzzContext,
    Mutant,
    judge,
    normalise,
    plan,
)
from policystrata.sql.adapter import exp, parse_one

FIXTURE = Path(__file__).parent / "fixtures" / "fuzz"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open(FIXTURE / "domain")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "shop")
    return tmp_path / "shop"


def record(sql: str, ir: str | None = "revenue during last_month limit 100", **kw: Any) -> Case:
    return Case(
        id=kw.pop("id", "r"),
        principal=kw.pop("principal", "acme_analyst"),
        ir=parse_ir(ir) if ir else None,
        sql=sql,
        tenant_ids=("acme",),
        release_decision=kw.pop("release_decision", "release"),
        **kw,
    )


REVENUE = record(
    "select sum(o.amount_cents) as value from orders o where o.tenant_id = 'acme' and "
    "o.placed_at >= '2026-05-01' and o.placed_at < '2026-06-01' limit 100"
)
BY_REGION = record(
    "select s.region, count(distinct o.id) as value from orders o join shops s on s.id = "
    "o.shop_id and s.tenant_id = 'acme' where o.tenant_id = 'acme' and o.placed_at >= "
    "'2026-05-01' and o.placed_at < '2026-06-01' group by s.region limit 100",
    "order_count by region during last_month limit 100",
)
MARGIN = record(REVENUE.sql or "", "margin during last_month limit 100", principal="acme_admin")


def judged(checker: Checker, case: Case) -> dict[str, list[tuple[str, str, list[str]]]]:
    """operator -> [(point, status, killed_by)] for every mutant of the record."""
    assert not checker.check(case).witnesses, "the record itself must be clean"
    drawn = plan(case, FuzzContext(checker.domain), seed=1729, max_cases=50)
    out: dict[str, list[tuple[str, str, list[str]]]] = {op: [] for op in drawn.stillborn}
    original = normalise(case)
    for m in drawn.mutants:
        j = judge(checker, m, original, 1729)
        out.setdefault(m.operator, []).append((m.point, j.status, j.killed_by))
    return out


def test_each_operator_where_it_applies(checker: Checker) -> None:
    got = judged(checker, REVENUE)
    assert got["tenant_predicate_removed"] == [
        ("o.tenant_id = 'acme'", "killed", ["compiler.tenant_scope_missing"])
    ]
    assert got["join_path_fanout"] == [
        ("orders <- order_lines.order_id", "killed", ["compiler.fanout_join"])
    ]
    assert got["time_bounds_shifted"] == [
        ("o.placed_at", "killed", ["compiler.time_bounds_mismatch"])
    ]
    # a scalar aggregate is one row: a larger LIMIT bounds nothing (stillborn, by the rules)
    assert got["limit_expanded"] == [("100 -> 1001", "stillborn", [])]
    # policy.yaml resolves the alias to the same metric and the SQL is unchanged: equivalent
    assert got["metric_alias_replaced"] == [("sales", "equivalent", [])]
    by_region = judged(checker, BY_REGION)
    # both tenant predicates of the scope go: the compiler no longer scopes the query
    assert by_region["tenant_predicate_removed"][0][0] == (
        "o.tenant_id = 'acme' and s.tenant_id = 'acme'"
    )
    assert by_region["tenant_predicate_removed"][0][1] == "killed"
    assert by_region["limit_expanded"] == [
        ("100 -> 1001", "killed", ["compiler.row_budget_exceeded"])
    ]
    ((point, status, killed_by),) = by_region["sensitive_dimension_added"]
    assert (point, status) == ("owner_email", "killed")
    assert "compiler.sensitive_column_output" in killed_by
    margin = judged(checker, MARGIN)
    ((point, status, killed_by),) = margin["release_unauthorized_result"]
    assert (point, status) == ("principal acme_analyst", "killed")
    assert killed_by and killed_by[0].startswith("validator.")


def test_stillborn_where_an_operator_has_no_mutation_point(checker: Checker) -> None:
    drawn = plan(BY_REGION, FuzzContext(checker.domain), seed=1, max_cases=50)
    assert drawn.stillborn["join_path_fanout"].startswith("no duplicate-sensitive aggregate")
    assert drawn.stillborn["metric_alias_replaced"] == "metric order_count has no retired alias"
    no_ir = record("select count(*) as value from orders o where o.tenant_id = 'acme'", None)
    drawn = plan(no_ir, FuzzContext(checker.domain), seed=1, max_cases=50)
    assert drawn.stillborn["limit_expanded"] == "the SQL has no LIMIT"
    assert drawn.stillborn["time_bounds_shifted"] == "no column is compared with a date literal"
    assert drawn.stillborn["metric_alias_replaced"] == "the record has no semantic IR"
    assert drawn.stillborn["sensitive_dimension_added"].startswith("no sensitive dimension")
    assert drawn.stillborn["release_unauthorized_result"].startswith("the record has no semantic")
    param = replace(REVENUE, sql=(REVENUE.sql or "").replace("limit 100", "limit $1"))
    drawn = plan(param, FuzzContext(checker.domain), seed=1, max_cases=50)
    assert drawn.stillborn["limit_expanded"].startswith("the LIMIT is not a number")
    unparsed = replace(REVENUE, sql="select from where")
    drawn = plan(unparsed, FuzzContext(checker.domain), seed=1, max_cases=50)
    assert drawn.stillborn["tenant_predicate_removed"] == "the SQL does not parse"
    # a release mutant whose request policy allows is stillborn by the rules' verdict
    assert judged(checker, REVENUE)["release_unauthorized_result"] == [
        ("principal acme_admin", "stillborn", [])
    ]


def exists_scoped(copies: int) -> Case:
    """REVENUE whose orders are scoped through ``copies`` identical correlated EXISTS on shops."""
    scope = "exists (select 1 from shops s where s.id = o.shop_id and s.tenant_id = 'acme')"
    return record(
        "select sum(o.amount_cents) as value from orders o where "
        + " and ".join([scope] * copies)
        + " and o.placed_at >= '2026-05-01' and o.placed_at < '2026-06-01' limit 100"
    )


def test_a_redundant_tenant_predicate_is_not_a_live_point(checker: Checker) -> None:
    """Two identical EXISTS scopes: the two mutation points have one key, so one mutant; it
    drops one scope, the other still confines every tenant-owned table the mutant reads, and
    rules/fuzz.dl says so from the mutant's own tenancy facts (stillborn, with a proof)."""
    twice = exists_scoped(2)
    drawn = plan(twice, FuzzContext(checker.domain), seed=1729, max_cases=50)
    keys = [(m.operator, m.point) for m in drawn.mutants]
    assert len(keys) == len(set(keys))  # one mutant per distinct mutation point
    (m,) = [m for m in drawn.mutants if m.operator == "tenant_predicate_removed"]
    assert m.point == "s.tenant_id = 'acme'" and (m.case.sql or "").count("tenant_id") == 1
    j = judge(checker, m, normalise(twice, checker.domain.policy), 1729)
    assert (j.status, j.why) == ("stillborn", "every_tenant_owned_read_is_still_scoped")
    facts = checker.artifact_facts(m.case)
    from policystrata.scan.fuzz import fuzz_facts

    facts.update(fuzz_facts(m, j.changed, 1729))
    result = checker.engine.evaluate(facts)
    atom = Fact("fuzz_stillborn", (m.case.id, "every_tenant_owned_read_is_still_scoped"))
    proof = result.prove(atom)
    check_proof(proof, checker.program, result.fact_lookup)
    assert proof.rule == "fuzz.tenant_point_not_live"
    # one scope: dropping it leaves orders unconfined, the tenancy rule kills the mutant
    assert judged(checker, exists_scoped(1))["tenant_predicate_removed"] == [
        ("s.tenant_id = 'acme'", "killed", ["compiler.tenant_scope_missing"])
    ]


SCOPES = {
    "exists": "exists (select 1 from shops s where s.id = o.shop_id and s.tenant_id = 'acme')",
    "in": "o.shop_id in (select s.id from shops s where s.tenant_id = 'acme')",
    "direct": "o.tenant_id = 'acme'",
}


@settings(max_examples=20, deadline=None)
@given(
    forms=st.lists(st.sampled_from(sorted(SCOPES)), min_size=1, max_size=3),
    grouped=st.booleans(),
)
def test_tenant_mutants_are_live_exactly_when_no_other_scope_remains(
    checker: Checker, forms: list[str], grouped: bool
) -> None:
    """Shapes of scoping (EXISTS, IN subquery, a direct predicate; repeated or mixed): a
    tenant_predicate_removed mutant is stillborn exactly when another scope of the outer query
    survives it, and killed by the tenancy rule otherwise."""
    select = "s2.region, count(distinct o.id)" if grouped else "count(distinct o.id)"
    join = " join shops s2 on s2.id = o.shop_id" if grouped else ""
    group = " group by s2.region" if grouped else ""
    conds = " and ".join(SCOPES[f] for f in forms)
    if grouped:  # the joined shops is scoped through orders' tenant or its own predicate
        conds += " and s2.tenant_id = 'acme'"
    case = record(
        f"select {select} as value from orders o{join} where {conds}{group} limit 100",
        "order_count limit 100" if not grouped else "order_count by region limit 100",
    )
    assert not checker.check(case).witnesses  # every shape is a clean, scoped record
    drawn = plan(case, FuzzContext(checker.domain), seed=1729, max_cases=50)
    keys = [(m.operator, m.point) for m in drawn.mutants]
    assert len(keys) == len(set(keys))
    for m in drawn.mutants:
        if m.operator != "tenant_predicate_removed":
            continue
        j = judge(checker, m, normalise(case, checker.domain.policy), 1729)
        scopes = [SCOPES[f] for f in forms] + (["s2.tenant_id = 'acme'"] if grouped else [])
        if _outer_conjuncts(m.case.sql or "") & {_condition_tree(c) for c in scopes}:
            assert j.status == "stillborn", (m.case.sql, j)
            assert j.why == "every_tenant_owned_read_is_still_scoped"
        else:
            assert (j.status, "compiler.tenant_scope_missing" in j.killed_by) == ("killed", True)


def _condition_tree(condition: str) -> Any:
    return parse_one(f"select 1 where {condition}", "postgres").args["where"].this


def _outer_conjuncts(sql: str) -> set[Any]:
    """The conjuncts of the outer WHERE of ``sql``, as sqlglot trees (compared structurally)."""
    where = parse_one(sql, "postgres").args.get("where")
    out, todo = set(), [where.this] if where is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, exp.And):
            todo += [node.this, node.expression]
        else:
            out.add(node)
    return out


def test_an_alias_is_equivalent_only_when_policy_maps_it_to_the_metric(checker: Checker) -> None:
    """The published oracle resolves a metric by name or alias: an IR naming an alias of the
    same metric, SQL unchanged, is equivalent; one naming another metric is a live change."""
    policy = checker.domain.policy
    alias = replace(REVENUE, id="r#a", ir=parse_ir("sales during last_month limit 100"))
    j = judge(
        checker, Mutant("metric_alias_replaced", "sales", alias), normalise(REVENUE, policy), 1
    )
    assert (j.status, j.changed) == ("equivalent", [])
    assert j.why == "policy.yaml resolves sales to revenue: the request is unchanged"
    other = replace(REVENUE, id="r#b", ir=parse_ir("margin during last_month limit 100"))
    j = judge(checker, Mutant("metric_alias_replaced", "x", other), normalise(REVENUE, policy), 1)
    assert j.status in ("killed", "survived") and j.changed == ["semantic_ir"]


def test_an_unchanged_artifact_is_an_equivalent_mutant(checker: Checker) -> None:
    same = replace(
        REVENUE,
        id="r#fuzz.x.1",
        sql="SELECT SUM(O.AMOUNT_CENTS) AS VALUE FROM ORDERS O WHERE O.TENANT_ID = 'acme' AND "
        "O.TENANT_ID = 'acme' AND o.placed_at >= '2026-05-01' AND o.placed_at < '2026-06-01' "
        "LIMIT 100",
    )
    j = judge(checker, Mutant("tenant_predicate_removed", "x", same), normalise(REVENUE), 1)
    assert j.status == "equivalent" and j.changed == []
    other = replace(same, sql=(same.sql or "").replace("LIMIT 100", "LIMIT 99"))
    j = judge(checker, Mutant("time_bounds_shifted", "x", other), normalise(REVENUE), 1)
    assert j.status == "survived" and j.changed == ["sql"]  # LIMIT 99: fewer rows, no fault


def test_mutants_are_real_sql_transforms(checker: Checker) -> None:
    """Every SQL mutant parses, and differs from its record only where its operator acts."""
    from policystrata.lower.sql import lower_sql

    for case in (REVENUE, BY_REGION, MARGIN):
        for m in plan(case, FuzzContext(checker.domain), seed=3, max_cases=50).mutants:
            assert lower_sql(m.case.id, m.case.sql or "").read_only, m
            if m.operator in ("metric_alias_replaced", "release_unauthorized_result"):
                assert m.case.sql == case.sql  # a record-level operator leaves the SQL as is
            else:
                assert normalise(m.case)["sql"] != normalise(case)["sql"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), cap=st.integers(1, 5))
def test_drawing_is_deterministic_and_round_robin(checker: Checker, seed: int, cap: int) -> None:
    ctx = FuzzContext(checker.domain)
    a = [(m.operator, m.point) for m in plan(REVENUE, ctx, seed=seed, max_cases=cap).mutants]
    b = [(m.operator, m.point) for m in plan(REVENUE, ctx, seed=seed, max_cases=cap).mutants]
    assert a == b and len(a) == cap
    assert len({op for op, _ in a}) == cap  # each operator once before any twice
    order = [op.id for op in OPERATORS]
    assert a == sorted(a, key=lambda p: order.index(p[0]))


def scan(config: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    out = config.parent / "out"
    result = run("scan", "--config", str(config), "--db", "none", "--out", str(out), *extra)
    return result, json.loads((out / "scan.json").read_text())


def test_the_scan_reports_the_stage_and_a_survivor(shop: Path) -> None:
    result, report = scan(shop / "policystrata.yaml")
    assert result.exit_code == 0  # the unscoped record is contained by RLS: a warning
    fuzz = report["fuzz"]
    assert fuzz["ran"] is True and fuzz["seed"] == 1729 and fuzz["max_cases_per_trace"] == 8
    assert fuzz["records_fuzzed"] == 4 and fuzz["records_not_fuzzed"] == 1  # failing: not fuzzed
    assert [r["record"] for r in fuzz["records"]] == [
        "revenue",
        "orders_by_region",
        "admin_margin",
        "sql_only",
    ]
    totals = fuzz["totals"]
    assert sum(c["killed"] for c in fuzz["operators"].values()) == totals["killed"]
    assert totals["survived"] >= 1 and totals["killed"] >= 10
    survivors = [f for f in report["findings"] if f["rule_id"] == "fuzz.survived"]
    # a trace without the request (no semantic IR): nothing says which window was asked, so a
    # window shifted by a day passes the gate; the alias mutant of "revenue" is equivalent
    assert [(f["record_id"], f["mutation"], f["key"]) for f in survivors] == [
        ("sql_only", "time_bounds_shifted", "orders.placed_at")
    ]
    alias = fuzz["records"][0]["mutants"]
    assert {
        "id": "revenue#fuzz.metric_alias_replaced.1",
        "operator": "metric_alias_replaced",
        "point": "sales",
        "status": "equivalent",
        "why": "policy.yaml resolves sales to revenue: the request is unchanged",
    } in alias
    f = survivors[0]
    assert f["severity"] == "low" and f["gating"] is False and f["advisory"] is True
    assert f["mutant_status"] == "survived" and f["location"] == {"file": "traces.jsonl", "line": 4}
    assert "semantic_ir" not in f["repro"] and "'2026-04-30'" in f["repro"]["sql"]
    assert f["witness"]["proof"]["rule"] == "fuzz.survived"
    leaves = {s["atom"].split("(")[0]: s["kind"] for s in f["witness"]["supporting_facts"]}
    assert leaves == {
        "fuzz_mutant": "fact",
        "fuzz_changed": "fact",
        "fuzz_stillborn": "absent",
        "case_flagged": "absent",
    }
    # the proof re-verifies, and the re-check command judges the mutant clean
    explained = run("explain", str(shop / "out" / "scan.json"))
    assert explained.exit_code == 0 and "fuzz.survived" in explained.stdout
    recheck = shlex.split(f["recheck"])
    assert recheck[:2] == ["strata", "check"]
    args = [a if a != "domain" else str(shop / "domain") for a in recheck[2:]]
    assert run("check", *args, "--db", "none").exit_code == 0
    summary = json.loads((shop / "out" / "summary.json").read_text())
    assert summary["fuzz"]["totals"] == totals and "records" not in summary["fuzz"]
    sarif = json.loads((shop / "out" / "scan.sarif").read_text())
    schema = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]].count("fuzz.survived") == 1
    md = (shop / "out" / "report.md").read_text()
    assert "| `time_bounds_shifted` | 3 | 1 | 0 |" in md


def test_survivors_never_gate(shop: Path) -> None:
    cfg = shop / "policystrata.yaml"
    cfg.write_text(cfg.read_text() + "gate: {fail_on_severity: low, fail_on_confidence: low}\n")
    traces = shop / "traces.jsonl"
    traces.write_text("".join(line for line in traces.read_text().splitlines(True)[:4]))
    result, report = scan(cfg)
    assert result.exit_code == 0, result.output
    assert report["gate"]["gating"] == 0 and report["findings"]


def test_off_switches(shop: Path) -> None:
    _result, report = scan(shop / "policystrata.yaml", "--no-fuzz")
    assert report["fuzz"] == {
        "enabled": True,
        "seed": 1729,
        "max_cases_per_trace": 8,
        "ran": False,
        "reason": "--no-fuzz",
    }
    assert not [f for f in report["findings"] if f.get("mutation")]
    cfg = shop / "policystrata.yaml"
    cfg.write_text(cfg.read_text().replace("enabled: true", "enabled: false"))
    _, report = scan(cfg)
    assert report["fuzz"]["ran"] is False and report["fuzz"]["reason"] == "fuzz.enabled: false"
    cfg.write_text(
        cfg.read_text()
        .replace("enabled: false", "enabled: true")
        .replace("max_cases_per_trace: 8", "max_cases_per_trace: 0")
    )
    _, report = scan(cfg)
    assert report["fuzz"]["reason"] == "fuzz.max_cases_per_trace: 0"


def test_same_seed_same_bytes_other_seed_other_draw(shop: Path) -> None:
    cfg = shop / "policystrata.yaml"
    cfg.write_text(cfg.read_text().replace("max_cases_per_trace: 8", "max_cases_per_trace: 2"))
    outs = []
    for name in ("a", "b"):
        run("scan", "--config", str(cfg), "--db", "none", "--out", str(shop / name))
        outs.append({p.name: p.read_bytes() for p in sorted((shop / name).iterdir())})
    assert outs[0] == outs[1]
    draws = set()
    for seed in range(6):
        cfg.write_text(
            "version: 1\ndomain_path: domain\nsql_traces: {files: [traces.jsonl]}\n"
            f"fuzz: {{seed: {seed}, max_cases_per_trace: 2}}\n"
        )
        _, report = scan(cfg)
        draws.add(tuple(m["id"] for r in report["fuzz"]["records"] for m in r.get("mutants", [])))
    assert len(draws) > 1  # the seed picks the mutants
