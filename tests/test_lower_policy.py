"""Domain -> policy facts (compile_domain) and IR -> case facts (lower_ir)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from policystrata.facts import Fact
from policystrata.ir import parse_ir
from policystrata.lower.ir import ir_cost, lower_ir
from policystrata.lower.policy import compile_domain
from policystrata.model import load_domain, parse_metric_agg

SNAPSHOT = Path(__file__).parent / "snapshots" / "support_saas_policy_facts.txt"
DECL = Path(__file__).parent.parent / "rules" / "decl_policy.dl"
DECL_RLS = Path(__file__).parent.parent / "rules" / "decl_rls.dl"  # policy queries (rls_query_*)
MINI = Path(__file__).parent / "fixtures" / "model" / "mini"


def declared(path: Path) -> dict[str, int]:
    out = {}
    for m in re.finditer(r"^\.decl (\w+)\(([^)]*)\)", path.read_text(), re.M):
        out[m.group(1)] = len(m.group(2).split(","))
    return out


def test_snapshot_of_support_saas_policy_facts() -> None:
    text = compile_domain(load_domain("support_saas")).to_lines()
    if os.environ.get("STRATA_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text)
    assert SNAPSHOT.exists(), "run with STRATA_UPDATE_SNAPSHOTS=1 to create the snapshot"
    assert text == SNAPSHOT.read_text()


def test_every_declared_policy_predicate_is_produced_with_its_arity() -> None:
    facts = compile_domain(load_domain(MINI))
    decls = declared(DECL)
    decls.update({k: v for k, v in declared(DECL_RLS).items() if k.startswith("rls_")})
    produced = {f.pred for f in facts}
    assert produced <= set(decls), produced - set(decls)
    # what only published-style domains produce (tests/compat): a migration schema's partial
    # tables, expression dimensions, metric expressions the checks cannot compare with
    published_only = {
        "table_partial",
        "dimension_expression",
        "metric_expression_unknown",
        "metric_uses_metric",
        "canonical_predicate",  # from a scan config's tenancy only
    }
    assert set(decls) - produced <= {
        "metric_filter",  # no mini metric has a FILTER (support_saas's escalated_tickets does)
        "rls_forced",  # the mini schema only ENABLEs RLS
        "rls_policy_always_true",
        "table_grant",
        "unique_key",  # no UNIQUE constraint in either schema
        "rls_query_eq",  # mini's policies compare columns directly (no EXISTS through parents)
        "rls_query_exists",
        "rls_query_output_column",  # no policy scopes through IN (subquery)
        *published_only,
    }
    for f in facts:
        assert len(f.args) == decls[f.pred], f
    builtin = {f.pred for f in compile_domain(load_domain("support_saas"))}
    assert set(decls) - builtin <= {
        "rls_policy_always_true",
        "release_min_cohort",
        "unique_key",
        "rls_query_output_column",
        "time_range_timezone",  # support_saas sets as_of: no published calendar
        *published_only,
    }


def test_facts_carry_provenance_lines() -> None:
    d = load_domain("support_saas")
    facts = compile_domain(d)
    policy = (d.path / "policy.yaml").read_text().splitlines()
    surfaces = (d.path / "surfaces.yaml").read_text().splitlines()
    for fact in facts:
        provs = facts.provenance(fact)
        assert provs, fact
        p = provs[0]
        if p.source == "policy.yaml" and p.line is not None:
            words = [str(a).lower() for a in fact.args] + [fact.pred.split("_", 1)[-1]]
            line = policy[p.line - 1]
            assert any(w in line for w in words) or fact.pred.startswith("time_range"), (fact, p)
        if p.source == "surfaces.yaml":
            assert p.line is not None
            line = surfaces[p.line - 1]
            assert any(str(a) in line for a in fact.args) or fact.pred == "surface", (fact, line)
    prov = facts.provenance(Fact("role_max_cost", ("analyst", 80)))[0]
    assert policy[prov.line - 1].strip().startswith("max_cost: 80")  # type: ignore[operator]


def test_layer_rank_order() -> None:
    facts = compile_domain(load_domain("support_saas"))
    ranks = sorted((f.args[1], f.args[0]) for f in facts.by_pred("layer_rank"))
    assert [s for _, s in ranks] == [
        "manifest", "grammar", "validator", "compiler", "database", "release"
    ]  # fmt: skip


def test_time_ranges_from_policy_and_default_calendar() -> None:
    facts = compile_domain(load_domain("support_saas"))
    bounds = {f.args[0]: f.args[1:] for f in facts.by_pred("time_range_bounds")}
    assert bounds["last_month"] == ("2026-05-01", "2026-06-01")
    assert bounds["last_fiscal_month"] == ("2026-04-27", "2026-05-25")
    assert bounds["last_7_days"] == ("2026-05-25", "2026-06-01")
    assert Fact("time_range_calendar", ("last_fiscal_month", "fiscal")) in facts


def test_mini_domain_new_sections() -> None:
    facts = compile_domain(load_domain(MINI))
    assert Fact("release_min_cohort", (3,)) in facts
    assert Fact("fk", ("tickets", "account_id", "accounts", "id")) in facts  # joins override
    assert Fact("tenant_column", ("accounts", "tenant_id")) in facts
    assert Fact("tenant_column", ("tickets", "tenant_id")) in facts  # default column name
    assert Fact("metric_time_column", ("ticket_count", "tickets", "opened_at")) in facts
    # a metric / dimension without allowed_roles admits every role
    assert Fact("metric_role", ("ticket_count", "analyst")) in facts
    assert Fact("dimension_role", ("region", "finance_admin")) in facts
    # columns default to the aggregate's argument
    assert Fact("metric_column", ("ticket_count", "tickets", "id")) in facts


@pytest.mark.parametrize(
    ("expr", "agg"),
    [
        ("sum(invoices.net_amount_cents)", ("sum", False, "invoices", "net_amount_cents")),
        ("count(distinct support_tickets.id)", ("count", True, "support_tickets", "id")),
        ("COUNT(DISTINCT support_tickets.id)", ("count", True, "support_tickets", "id")),
        ("avg(resolution_hours)", ("avg", False, "t", "resolution_hours")),
        ("count(*)", ("count", False, "t", "*")),
        ("max(t2.x)", ("max", False, "t2", "x")),
        ("uniq(events.user_id)", ("count", True, "events", "user_id")),  # ClickHouse: distinct
        ("count(distinct t.id) filter (where t.escalated)", ("count", True, "t", "id")),
    ],
)
def test_metric_agg_parsing(expr: str, agg: tuple[str, bool, str, str]) -> None:
    assert parse_metric_agg(expr, "t").as_tuple() == agg


def test_lower_ir_facts_and_cost() -> None:
    d = load_domain("support_saas")
    q = parse_ir(
        "recognized_revenue by region, nope during last_month grain month "
        "where plan in ('pro', 'starter') and severity = 'high' limit 250"
    )
    facts = lower_ir("c1", q, d)
    assert facts.to_lines() == (
        'ir_cost("c1", 54)\n'  # net_revenue 30 + region 22 + nope 0 + 250 // 100
        'ir_dimension("c1", "nope")\n'
        'ir_dimension("c1", "region")\n'
        'ir_filter("c1", "plan", "in", "pro")\n'
        'ir_filter("c1", "plan", "in", "starter")\n'
        'ir_filter("c1", "severity", "=", "high")\n'
        'ir_grain("c1", "month")\n'
        'ir_limit("c1", 250)\n'
        'ir_metric("c1", "recognized_revenue")\n'
        'ir_present("c1")\n'
        'ir_time_range("c1", "last_month")\n'
    )
    assert str(facts.provenance(Fact("ir_present", ("c1",)))[0]).startswith("ir `recognized")
    decls = declared(DECL.parent / "decl_case.dl")
    for f in facts:
        assert len(f.args) == decls[f.pred]


def test_ir_cost_edge_cases() -> None:
    d = load_domain("support_saas")
    assert ir_cost(parse_ir("unknown_metric"), d) == 1  # no limit counts as 1
    assert ir_cost(parse_ir("ticket_count limit 99"), d) == 21
    assert ir_cost(parse_ir("ticket_count limit 1000"), d) == 30
    assert ir_cost(parse_ir("bookings by customer_email limit 100"), d) == 61
