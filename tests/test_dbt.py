"""The dbt Semantic Layer: read and validated with dbt-semantic-interfaces, lowered to ``dbt_*``
facts, compared with the policy by ``rules/dbt.dl``, through the one check pipeline (used by
``strata check-integration dbt-semantic`` and the scan's dbt stage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.case import Case, SourceText
from policystrata.check import Checker, load_rules
from policystrata.cli import main
from policystrata.engine import FactLookup, check_proof
from policystrata.errors import InputErrors
from policystrata.facts import Fact
from policystrata.integrations.dbt import (
    check_semantic_layer,
    finding_location,
    semantic_layer_case,
)
from policystrata.lower.dbt import lower_semantic_layer
from policystrata.model import load_domain
from policystrata.paths import domains_dir
from policystrata.scan.scaffold import TEMPLATES

MODEL = TEMPLATES / "postgres_dbt" / "dbt" / "semantic_models.yml"
#: The shipped model without its plan dimension (the only dimension of subscriptions).
PLAN = "    dimensions:\n      - {name: plan, type: categorical}\n"
SHOP = Path(__file__).parent / "fixtures" / "dbt" / "shop"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def program():  # type: ignore[no-untyped-def]
    return load_rules()


@pytest.fixture(scope="module")
def checker(program):  # type: ignore[no-untyped-def]
    return Checker(load_domain("support_saas"), program=program)


def judge(checker: Checker, *texts: tuple[str, str], tmp: Path) -> Any:
    files = []
    for name, text in texts:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append((path, name))
    return check_semantic_layer(checker, semantic_layer_case(files))


def reverify(w: Any, program: Any) -> None:
    """Re-verify a witness's proof from the witness alone (as `strata explain` does): every rule
    step against the rules, every leaf against the facts the witness cites."""
    node = w.proof
    leaves = [n.fact for n in node.walk() if n.kind == "fact"]
    derived = [n.fact for n in node.walk() if n.kind == "rule"]
    check_proof(node, program, FactLookup(leaves, derived=derived))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# ---------------------------------------------------------------------------- the shipped model


def test_shipped_model_agrees_with_the_policy() -> None:
    result = run(
        "check-integration", "dbt-semantic", "--domain", "support_saas", "--path", str(MODEL)
    )
    assert result.exit_code == 0, result.output
    assert "0 finding(s)" in result.stdout
    assert "note:" not in result.stderr


def test_the_semantic_layer_lowers_to_facts_with_file_lines() -> None:
    text = MODEL.read_text()
    facts = lower_semantic_layer("c", (SourceText("semantic_models.yml", text),))

    def where(pred: str, *args: Any) -> str:
        fact = Fact(pred, ("c", *args))
        assert fact in facts, fact
        return str(facts.provenance(fact)[0])

    sm = line_of(text, "- name: invoices")
    assert where("dbt_semantic_model", "invoices", "invoices") == f"semantic_models.yml:{sm}"
    measure = line_of(text, "{name: net_amount,")
    assert where("dbt_measure", "invoices", "net_amount", "sum") == f"semantic_models.yml:{measure}"
    assert where("dbt_measure_agg", "net_amount", "sum", False, "invoices", "net_amount_cents")
    metric = line_of(text, "{name: net_revenue,")
    assert where("dbt_metric", "net_revenue", "simple") == f"semantic_models.yml:{metric}"
    email = line_of(text, "- name: customer_email")
    assert where("dbt_dimension_sensitive", "accounts", "customer_email").endswith(f":{email}")
    assert where("dbt_dimension_column", "accounts", "region", "accounts", "region")
    # count_distinct of CASE WHEN escalated THEN id END: count(distinct id) where escalated
    assert where("dbt_measure_agg", "escalated_ticket_ids", "count", True, "support_tickets", "id")
    assert where(
        "dbt_measure_filter",
        "escalated_ticket_ids",
        "support_tickets",
        "escalated",
        "=",
        "literal",
        True,
    )


# ---------------------------------------------------------------------------- each drift kind

#: (edit of the shipped model, expected (kind, subject), layer, class)
DRIFTS = [
    (
        ("", "  - {name: churn_rate, type: simple, type_params: {measure: tickets}}\n"),
        ("metric_missing_from_policy", "churn_rate"),
        "manifest",
        "over_permissive",
    ),
    (
        ("{name: ticket_count,", "{name: tickets,"),  # the published alias of ticket_count
        ("stale_metric_alias", "tickets"),
        "manifest",
        "semantic_drift",
    ),
    (
        (
            "  - {name: average_resolution_hours, type: simple, "
            "type_params: {measure: resolution_hours}}\n",
            "",
        ),
        ("metric_missing_from_dbt", "average_resolution_hours"),
        "compiler",
        "over_restrictive",
    ),
    (
        (
            "      - {name: plan, type: categorical}\n",
            "      - {name: plan, type: categorical}\n"
            "      - {name: coupon_code, type: categorical}\n",
        ),
        ("dimension_missing_from_policy", "coupon_code"),
        "manifest",
        "over_permissive",
    ),
    (
        (PLAN, ""),
        ("dimension_missing_from_dbt", "plan"),
        "compiler",
        "over_restrictive",
    ),
    (
        (
            "      - name: customer_email\n        type: categorical\n"
            "        config: {meta: {sensitive: true}}\n",
            "      - name: customer_email\n        type: categorical\n",
        ),
        ("sensitive_column_without_metadata", "customer_email"),
        "validator",
        "over_permissive",
    ),
    (
        ("{name: net_amount, agg: sum,", "{name: net_amount, agg: max,"),
        ("aggregation_mismatch", "net_revenue"),
        "compiler",
        "semantic_drift",
    ),
    (
        ("{name: tickets, agg: count_distinct,", "{name: tickets, agg: count,"),
        ("aggregation_mismatch", "ticket_count"),
        "compiler",
        "semantic_drift",
    ),
    (
        ("agg: sum, expr: gross_amount_cents}", "agg: sum, expr: net_amount_cents}"),
        ("expression_mismatch", "gross_revenue"),
        "compiler",
        "semantic_drift",
    ),
    (
        ('expr: "case when escalated then id end"', "expr: id"),
        ("filter_mismatch", "escalated_tickets"),
        "compiler",
        "semantic_drift",
    ),
    (
        (
            "type_params: {measure: tickets}}",
            "type_params: {measure: tickets}, "
            "filter: \"{{ Dimension('account__region') }} = 'emea'\"}",
        ),
        ("filter_mismatch", "ticket_count"),
        "compiler",
        "semantic_drift",
    ),
]


def _edit(text: str, edit: tuple[str, str]) -> str:
    old, new = edit
    if not old:
        return text + new
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("edit", "expected", "layer", "wclass"), DRIFTS)
def test_each_drift_is_one_witness_with_a_proof(
    edit: tuple[str, str],
    expected: tuple[str, str],
    layer: str,
    wclass: str,
    checker: Checker,
    program: Any,
    tmp_path: Path,
) -> None:
    checked = judge(checker, ("semantic_models.yml", _edit(MODEL.read_text(), edit)), tmp=tmp_path)
    witnesses = checked.result.witnesses
    assert [(w.check, w.key) for w in witnesses] == [expected]
    (w,) = witnesses
    assert (w.localized_surface, w.witness_class, w.rule_id) == (layer, wclass, f"dbt.{w.check}")
    assert w.message and w.fix and w.containment_layer is None
    assert w.atom.startswith("violation(")
    reverify(w, program)


def test_a_missing_metric_proof_says_what_is_missing(checker: Checker, tmp_path: Path) -> None:
    text = (
        MODEL.read_text()
        + "  - {name: churn_rate, type: simple, type_params: {measure: tickets}}\n"
    )
    (w,) = judge(checker, ("m.yml", text), tmp=tmp_path).result.witnesses
    absent = {s.atom for s in w.supporting_facts if s.kind == "absent"}
    assert absent == {'metric("churn_rate")', 'metric_alias("churn_rate", _)'}
    assert finding_location(w, ["m.yml"]) == ("m.yml", line_of(text, "churn_rate"))


def test_a_policy_entry_the_layer_lacks_points_at_policy_yaml(
    checker: Checker, tmp_path: Path
) -> None:
    text = MODEL.read_text().replace(PLAN, "")
    (w,) = judge(checker, ("m.yml", text), tmp=tmp_path).result.witnesses
    line = load_domain("support_saas").line("policy", "dimensions", "plan")
    assert finding_location(w, ["m.yml"]) == ("policy.yaml", line)
    assert {s.atom for s in w.supporting_facts if s.kind == "absent"} == {
        'dbt_defines_dimension("semantic_layer", "plan")'
    }


def test_a_dbt_model_that_is_not_a_table_is_compared_by_column(
    checker: Checker, program: Any, tmp_path: Path
) -> None:
    """fct_invoices is no table of schema.sql: its columns are compared by name, and a difference
    found that way has medium confidence (a model may rename what it selects)."""
    text = MODEL.read_text().replace("model: ref('invoices')", "model: ref('fct_invoices')")
    assert judge(checker, ("m.yml", text), tmp=tmp_path).result.witnesses == []
    text = text.replace("agg: sum, expr: gross_amount_cents}", "agg: sum, expr: net_amount_cents}")
    (w,) = judge(checker, ("m.yml", text), tmp=tmp_path).result.witnesses
    assert (w.check, w.key, w.severity, w.confidence) == (
        "expression_mismatch",
        "gross_revenue",
        "medium",
        "medium",
    )
    assert "fct_invoices.net_amount_cents" in w.message
    reverify(w, program)


def _drift(tmp_path: Path) -> Path:
    """Several drifts at once (the scan and CLI tests)."""
    text = MODEL.read_text()
    for old, new in [
        ("{name: net_amount, agg: sum,", "{name: net_amount, agg: count,"),
        ("agg: sum, expr: gross_amount_cents}", "agg: sum, expr: net_amount_cents}"),
        ("config: {meta: {sensitive: true}}", "config: {meta: {}}"),
        (
            "{name: plan, type: categorical}",
            "{name: plan, type: categorical}\n      - {name: coupon_code, type: categorical}",
        ),
        (
            "  - {name: average_resolution_hours, type: simple, "
            "type_params: {measure: resolution_hours}}\n",
            "",
        ),
    ]:
        assert old in text
        text = text.replace(old, new)
    text += "  - {name: bookings, type: simple, type_params: {measure: gross_amount}}\n"
    text += "  - {name: churn_rate, type: simple, type_params: {measure: tickets}}\n"
    path = tmp_path / "semantic_models.yml"
    path.write_text(text)
    return path


DRIFT_FINDINGS = [
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


def test_several_drifts_at_once(checker: Checker, program: Any, tmp_path: Path) -> None:
    path = _drift(tmp_path)
    checked = check_semantic_layer(checker, semantic_layer_case([(path, path.name)]))
    got = sorted((w.check, w.key) for w in checked.result.witnesses)
    assert got == sorted(DRIFT_FINDINGS)
    for w in checked.result.witnesses:
        reverify(w, program)
    agg = next(w for w in checked.result.witnesses if w.check == "aggregation_mismatch")
    assert "count" in agg.message and "sum" in agg.message
    text = path.read_text()
    assert finding_location(agg, [path.name]) == (path.name, line_of(text, "{name: net_amount,"))


# ------------------------------------------------------------------ what dbt rejects: exit 2

REJECTED = [
    (  # DSI's schema: an agg it does not know, at the agg key
        "semantic_models:\n  - name: orders\n    model: ref('orders')\n    measures:\n"
        "      - name: revenue\n        agg: summ\n",
        6,
        "'summ' is not one of",
    ),
    (  # an unknown key, at that key
        "semantic_models:\n  - name: orders\n    model: ref('orders')\n    dimensions:\n"
        "      - name: status\n        type: categorical\n        colour: red\n",
        7,
        "Additional properties are not allowed ('colour' was unexpected)",
    ),
    (  # a time dimension needs type_params
        "semantic_models:\n  - name: orders\n    model: ref('orders')\n    dimensions:\n"
        "      - {name: ordered_at, type: time}\n",
        5,
        "'type_params' is a required property",
    ),
    ("metrics:\n  - name: revenue\n    type: simple\n", 2, "'type_params' is a required property"),
    (  # the manifest validation: a metric over a measure no semantic model defines
        "metrics:\n  - name: revenue\n    type: simple\n    type_params: {measure: nope}\n",
        2,
        "Measure nope referenced in metric revenue is not defined in the model",
    ),
    (  # the manifest validation: dimensions without a primary entity
        "semantic_models:\n  - name: orders\n    model: ref('orders')\n    dimensions:\n"
        "      - {name: status, type: categorical}\n",
        2,
        "does not define a primary entity",
    ),
    ("semantic_models:\n  - name: orders\n    entities: []\n", 2, "needs model: ref('<model>')"),
    (
        "semantic_models:\n  - name: orders\n    model: ref('orders'\n",
        3,
        "cannot read \"ref('orders'\"",
    ),
    (  # the model is read, never executed
        "semantic_models:\n  - name: orders\n"
        "    model: \"ref('a') }}{% for i in range(9) %}{{ i }}{% endfor %}{{ ''\"\n",
        3,
        "expected ref('<model>') or source('<source>', '<table>')",
    ),
    ("semantic_models:\n  - name: [\n", 3, "malformed YAML"),
    ("models:\n  - name: orders\n", 1, "no semantic_models or metrics in this file"),
]


@pytest.mark.parametrize(("text", "line", "message"), REJECTED)
def test_what_dbt_rejects_is_an_input_error_at_its_line(
    text: str, line: int, message: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    result = run("check-integration", "dbt-semantic", "--path", str(bad))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert all(x.startswith(f"error: {bad}:") for x in lines), lines
    hit = [x for x in lines if message in x]
    assert hit and hit[0].startswith(f"error: {bad}:{line}:"), lines


def test_a_near_miss_agg_gets_a_suggestion(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(REJECTED[0][0])
    result = run("check-integration", "dbt-semantic", "--path", str(bad))
    assert "(did you mean 'sum'?)" in result.stderr


# ------------------------------------------------------------- a realistic MetricFlow project


def test_a_realistic_dbt_project_loads_and_compares(program: Any) -> None:
    checker = Checker(load_domain(SHOP / "domain"), program=program)
    files = sorted((SHOP / "models").rglob("*.yml"))
    case = semantic_layer_case([(p, p.relative_to(SHOP).as_posix()) for p in files])
    checked = check_semantic_layer(checker, case)
    # the ratio and the derived metric are metrics the policy does not govern; the rest agrees:
    # Jinja filters, an input measure's filter, sum_boolean, count_distinct, a semi-additive
    # measure, sensitivity from a dimension's meta, dimensions matched by column
    assert sorted((w.check, w.key) for w in checked.result.witnesses) == [
        ("metric_missing_from_policy", "refund_rate"),
        ("metric_missing_from_policy", "revenue_per_customer"),
    ]
    for w in checked.result.witnesses:
        reverify(w, program)
    assert len(checked.unchecked) == 1
    assert "dbt metric revenue_mtd: window not compared" in checked.unchecked[0]
    assert checked.unchecked[0].startswith("models/metrics.yml:11: ")
    facts = checker.artifact_facts(case)
    revenue = Fact(
        "dbt_metric_filter",
        ("semantic_layer", "revenue", "orders", "status", "=", "literal", "completed"),
    )
    assert revenue in facts
    text = (SHOP / "models" / "metrics.yml").read_text()
    assert str(facts.provenance(revenue)[0]) == f"models/metrics.yml:{line_of(text, 'filter: |')}"
    assert Fact("dbt_dimension_sensitive", ("semantic_layer", "customers", "email")) in facts
    assert (
        Fact("dbt_measure_agg", ("semantic_layer", "refunds", "count", False, "orders", "*"))
        in facts
    )


def test_the_project_fails_when_its_policy_drifts(program: Any, tmp_path: Path) -> None:
    domain = tmp_path / "domain"
    domain.mkdir()
    for name in ("schema.sql", "surfaces.yaml"):
        (domain / name).write_text((SHOP / "domain" / name).read_text())
    policy = (SHOP / "domain" / "policy.yaml").read_text()
    policy = policy.replace(
        "count(distinct orders.id) filter (where orders.status = 'completed')",
        "count(distinct orders.id) filter (where orders.status = 'shipped')",
    )
    (domain / "policy.yaml").write_text(policy)
    checker = Checker(load_domain(domain), program=program)
    files = sorted((SHOP / "models").rglob("*.yml"))
    checked = check_semantic_layer(checker, semantic_layer_case([(p, p.name) for p in files]))
    got = {(w.check, w.key) for w in checked.result.witnesses}
    assert ("filter_mismatch", "completed_orders") in got
    (w,) = [w for w in checked.result.witnesses if w.check == "filter_mismatch"]
    reverify(w, program)
    steps = [n for n in w.proof.walk() if n.pred == "dbt_filter_differs"]
    assert {str(n.args[3]) for n in steps} <= {"policy.yaml", "the dbt metric"}


def test_the_jaffle_shop_example_of_dbts_docs_reads_and_lowers() -> None:
    path = SHOP.parent / "jaffle_orders.yml"
    facts = lower_semantic_layer("c", (SourceText("orders.yml", path.read_text()),))
    metrics = {f.args[1]: f.args[2] for f in facts.by_pred("dbt_metric")}
    assert metrics["order_cost"] == "simple"  # create_metric: true
    assert metrics["food_ratio"] == "ratio" and metrics["revenue_growth_mom"] == "derived"
    assert Fact("dbt_measure_agg", ("c", "order_count", "count", False, "orders", "*")) in facts
    assert (
        Fact(
            "dbt_metric_filter", ("c", "large_order", "orders", "order_total", ">=", "literal", 20)
        )
        in facts
    )
    assert (
        Fact(
            "dbt_metric_filter",
            ("c", "food_orders", "orders", "is_food_order", "=", "literal", True),
        )
        in facts
    )
    unlowered = {(f.args[1], f.args[2]) for f in facts.by_pred("dbt_metric_unlowered")}
    assert unlowered == {
        ("order_gross_profit", "expression"),
        ("revenue_growth_mom", "expression"),
        ("food_ratio", "expression"),
        ("cumulative_order_amount_mtd", "window"),
    }


FILTER_BASE = """
semantic_models:
  - name: orders
    model: ref('orders')
    defaults: {agg_time_dimension: ordered_at}
    entities:
      - {name: order, type: primary, expr: id}
      - {name: customer, type: foreign, expr: customer_id}
    dimensions:
      - {name: status, type: categorical}
      - {name: ordered_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: order_total, agg: sum, expr: amount_cents}
  - name: customers
    model: ref('customers')
    entities: [{name: customer, type: primary, expr: id}]
    dimensions: [{name: country, type: categorical}]
metrics:
  - name: revenue
    type: simple
    type_params: {measure: order_total}
"""


@pytest.mark.parametrize(
    ("filter_yaml", "preds", "unlowered"),
    [
        (
            "filter: \"{{ Dimension('order__status') }} = 'completed'\"",
            [("orders", "status", "=", "completed")],
            None,
        ),
        (  # a list of filters is their conjunction; a dimension through another entity
            "filter:\n      - \"{{ Dimension('order__status') }} in ('completed', 'paid')\"\n"
            "      - \"{{ Dimension('customer__country') }} = 'NO'\"",
            [
                ("customers", "country", "=", "NO"),
                ("orders", "status", "in", "completed"),
                ("orders", "status", "in", "paid"),
            ],
            None,
        ),
        (  # metric_time is the measure's aggregation time dimension
            "filter: \"{{ TimeDimension('metric_time', 'day') }} >= '2026-01-01'\"",
            [("orders", "ordered_at", ">=", "2026-01-01")],
            None,
        ),
        (
            "filter: \"{{ Entity('customer') }} = 'c1'\"",
            [("orders", "customer_id", "=", "c1")],
            None,
        ),
        (
            "filter: \"{{ Dimension('order__colour') }} = 'red'\"",
            [],
            "order__colour is not an item of the semantic layer",
        ),
        (
            "filter: \"{{ Metric('revenue', group_by=['customer']) }} > 10\"",
            [],
            "revenue is not an item of the semantic layer",
        ),
    ],
)
def test_jinja_filters_resolve_to_columns(
    filter_yaml: str, preds: list[tuple[str, ...]], unlowered: str | None
) -> None:
    text = FILTER_BASE.rstrip("\n") + "\n    " + filter_yaml + "\n"
    facts = lower_semantic_layer("c", (SourceText("f.yml", text),))
    got = sorted(
        (f.args[2], f.args[3], f.args[4], f.args[6]) for f in facts.by_pred("dbt_metric_filter")
    )
    assert got == sorted(preds)
    notes = [str(f.args[3]) for f in facts.by_pred("dbt_metric_unlowered")]
    if unlowered is None:
        assert notes == []
    else:
        assert len(notes) == 1 and unlowered in notes[0]


def test_semantic_model_meta_is_inherited_and_disabled_items_are_dropped() -> None:
    text = """
semantic_models:
  - name: customers
    model: ref('customers')
    config: {meta: {sensitive: true}}
    defaults: {agg_time_dimension: signed_up_at}
    entities: [{name: customer, type: primary, expr: id}]
    dimensions:
      - {name: email, type: categorical}
      - {name: country, type: categorical, config: {meta: {sensitive: false}}}
      - {name: signed_up_at, type: time, type_params: {time_granularity: day}}
    measures:
      - {name: customer_count, agg: count_distinct, expr: id}
metrics:
  - name: customers
    type: simple
    type_params: {measure: customer_count}
  - name: old_metric
    type: simple
    type_params: {measure: nope}
    config: {enabled: false}
"""
    facts = lower_semantic_layer("c", (SourceText("s.yml", text),))
    sensitive = {f.args[2] for f in facts.by_pred("dbt_dimension_sensitive")}
    assert sensitive == {"email", "signed_up_at"}
    assert [f.args[1] for f in facts.by_pred("dbt_metric")] == ["customers"]


def test_a_measure_with_create_metric_is_a_metric() -> None:
    text = FILTER_BASE.replace(
        "{name: order_total, agg: sum, expr: amount_cents}",
        "{name: order_total, agg: sum, expr: amount_cents, create_metric: true}",
    )
    facts = lower_semantic_layer("c", (SourceText("s.yml", text),))
    assert Fact("dbt_metric", ("c", "order_total", "simple")) in facts
    assert Fact("dbt_metric_measure", ("c", "order_total", "order_total")) in facts


# ----------------------------------------------------------------- files, directories, strict


def test_files_of_one_layer_are_checked_together(tmp_path: Path) -> None:
    """A metric may use a measure of another file: alone, dbt rejects the metrics file."""
    models = tmp_path / "models"
    (models / "staging").mkdir(parents=True)
    text = MODEL.read_text()
    head, metrics = text.split("\nmetrics:\n")
    (models / "semantic_models.yml").write_text(head)
    (models / "metrics.yml").write_text("metrics:\n" + metrics)
    (models / "staging" / "schema.yml").write_text("version: 2\nmodels:\n  - name: stg_orders\n")
    (models / ".hidden").mkdir()
    (models / ".hidden" / "x.yml").write_text("metrics: 5\n")
    result = run("check-integration", "dbt-semantic", "--path", str(models))
    assert result.exit_code == 0, result.output
    assert "0 finding(s) in 2 files" in result.stdout
    alone = run("check-integration", "dbt-semantic", "--path", str(models / "metrics.yml"))
    assert alone.exit_code == 2
    assert "Measure tickets referenced in metric ticket_count is not defined" in alone.stderr


def test_strict_fails_on_what_was_not_compared(tmp_path: Path) -> None:
    text = MODEL.read_text().replace(
        "{name: resolution_hours, agg: average, expr: resolution_hours}",
        "{name: resolution_hours, agg: average, expr: resolution_hours / 24.0}",
    )
    path = tmp_path / "m.yml"
    path.write_text(text)
    args = ("check-integration", "dbt-semantic", "--path", str(path))
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "dbt metric average_resolution_hours: expression not compared" in result.stderr
    assert run(*args, "--strict").exit_code == 1
    assert run(*args, "--fail-on-warning").exit_code == 1


# ------------------------------------------------------------------------------- the CLI


def test_cli_reports_witnesses_as_json_that_explain_reverifies(tmp_path: Path) -> None:
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
    report = json.loads(result.stdout)
    (case,) = report["results"]
    assert sorted((w["check"], w["key"]) for w in case["witnesses"]) == sorted(DRIFT_FINDINGS)
    saved = tmp_path / "dbt.json"
    saved.write_text(result.stdout)
    explained = run("explain", str(saved))
    assert explained.exit_code == 0, explained.output
    assert "dbt.aggregation_mismatch" in explained.stdout


def test_cli_table_is_readable_at_80_columns_and_points_at_the_policy_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    text = MODEL.read_text().replace(PLAN, "")
    path = tmp_path / "m.yml"
    path.write_text(text)
    result = run("check-integration", "dbt-semantic", "--path", str(path))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and all(x == x.rstrip() for x in lines)
    line = load_domain("support_saas").line("policy", "dimensions", "plan")
    assert any(x.startswith(f"policy.yaml:{line} ") for x in lines)
    assert "dimension_missing_from_dbt" in result.stdout


# ------------------------------------------------------------------------------- the scan


def test_dbt_in_scan_config_yields_witness_findings(tmp_path: Path) -> None:
    path = _drift(tmp_path)
    (tmp_path / "t.jsonl").write_text("")
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n"
        f"dbt: {{files: [{path.name}]}}\n"
    )
    out = tmp_path / "out"
    result = run(
        "scan",
        "--config",
        str(tmp_path / "policystrata.yaml"),
        "--format",
        "json",
        "--out",
        str(out),
    )
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert sorted((f["check"], f["key"]) for f in findings) == sorted(DRIFT_FINDINGS)
    assert {f["kind"] for f in findings} == {"witness"}
    assert all(f["witness"]["proof"] for f in findings)
    by = {(f["check"], f["key"]): f for f in findings}
    # severity and confidence come from the rules' annotations
    assert {k: (f["severity"], f["confidence"]) for k, f in by.items()} == {
        ("aggregation_mismatch", "net_revenue"): ("medium", "high"),
        ("expression_mismatch", "gross_revenue"): ("medium", "high"),
        ("expression_mismatch", "bookings"): ("medium", "high"),
        ("stale_metric_alias", "bookings"): ("low", "high"),
        ("sensitive_column_without_metadata", "customer_email"): ("high", "high"),
        ("sensitive_column_without_metadata", "tenant_id"): ("high", "high"),
        ("dimension_missing_from_policy", "coupon_code"): ("medium", "high"),
        ("metric_missing_from_policy", "churn_rate"): ("high", "high"),
        ("metric_missing_from_dbt", "average_resolution_hours"): ("low", "high"),
    }
    agg = by[("aggregation_mismatch", "net_revenue")]
    assert agg["location"] == {
        "file": path.name,
        "line": line_of(path.read_text(), "{name: net_amount,"),
    }
    assert agg["id"] == f"dbt.aggregation_mismatch/{path.name}#semantic_layer/net_revenue"
    assert agg["recheck"] == (
        f"strata check-integration dbt-semantic --domain support_saas --path {path.name}"
    )
    assert agg["owner"] == "dbt semantic layer" and "repro" not in agg
    missing = by[("metric_missing_from_dbt", "average_resolution_hours")]
    assert missing["location"]["file"] == "policy.yaml"
    explained = run("explain", str(out / "scan.json"))
    assert explained.exit_code == 0, explained.output


def test_a_scan_with_a_dbt_file_dbt_rejects_exits_2(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("")
    (tmp_path / "sl.yml").write_text(REJECTED[0][0])
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\ndbt: {files: [sl.yml]}\n"
    )
    result = run("scan", "--config", str(tmp_path / "policystrata.yaml"), "--db", "none")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: sl.yml:6: semantic_models[0].measures[0].agg: ")


def test_a_policy_entry_missing_from_dbt_points_at_its_policy_line_in_the_repo(
    tmp_path: Path,
) -> None:
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    model = out / "dbt" / "semantic_models.yml"
    model.write_text(model.read_text().replace(PLAN, ""))
    result = run(
        "scan", "--config", str(out / "policystrata.yaml"), "--db", "none", "--format", "sarif"
    )
    results = json.loads(result.stdout)["runs"][0]["results"]
    (missing,) = [r for r in results if r["ruleId"] == "dbt.dimension_missing_from_dbt"]
    where = missing["locations"][0]["physicalLocation"]
    policy = (out / "domain" / "policy.yaml").read_text().splitlines()
    assert where["artifactLocation"]["uri"] == "domain/policy.yaml"
    assert policy[where["region"]["startLine"] - 1].startswith("  plan:")
    flow = missing["codeFlows"][0]["threadFlows"][0]["locations"]
    uris = {s["location"]["physicalLocation"]["artifactLocation"]["uri"] for s in flow}
    assert {"dbt/semantic_models.yml", "domain/policy.yaml"} <= uris


def test_the_scaffolded_clean_scan_reports_no_dbt_finding(tmp_path: Path) -> None:
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    result = run(
        "scan",
        "--config",
        str(out / "policystrata.clean.yaml"),
        "--db",
        "none",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)["findings"]
    # the fuzz stage's survivors (low, never gating; tests/test_fuzz.py) are no dbt finding
    assert [f for f in findings if f.get("mutation") is None] == []
    assert all(f["advisory"] and not f["gating"] for f in findings)


# ---------------------------------------------------- any domain shape: a property of the rules

WORD = st.from_regex(r"[a-z]{3,7}", fullmatch=True)
AGGS = {
    ("sum", False): "sum",
    ("count", True): "count_distinct",
    ("count", False): "count",
    ("avg", False): "average",
    ("min", False): "min",
    ("max", False): "max",
}
MUTATIONS = (
    "none",
    "metric_missing_from_dbt",
    "metric_missing_from_policy",
    "stale_metric_alias",
    "aggregation_mismatch",
    "expression_mismatch",
    "filter_mismatch",
    "sensitive_column_without_metadata",
    "dimension_missing_from_policy",
    "dimension_missing_from_dbt",
)


@st.composite
def shapes(draw: Any) -> dict[str, Any]:
    """A random domain (tables, columns, metrics, dimensions) and a mutation of its dbt layer."""
    words = draw(st.lists(WORD, min_size=24, max_size=24, unique=True))
    tables = []
    for t in range(draw(st.integers(1, 3))):
        w = words[t * 6 : t * 6 + 6]
        tables.append(
            {
                "name": f"t_{w[0]}",
                "numbers": [f"n_{w[1]}", f"n_{w[2]}"],
                "texts": [f"x_{w[3]}", f"x_{w[4]}", f"x_{w[5]}"],
                "flag": f"b_{w[0]}",
            }
        )
    metrics = []
    for i in range(draw(st.integers(1, 4))):
        t = draw(st.sampled_from(tables))
        func, distinct = draw(st.sampled_from(sorted(AGGS)))
        col = "id" if func == "count" else draw(st.sampled_from(t["numbers"]))
        filt = draw(st.sampled_from([None, "flag", "text"]))
        metrics.append(
            {
                "name": f"m_{words[18 + i]}",
                "table": t,
                "func": func,
                "distinct": distinct,
                "col": col,
                "filter": filt,
                "alias": f"a_{words[18 + i]}",
            }
        )
    dims = []
    for t in tables:
        for col in t["texts"][: draw(st.integers(1, 2))]:
            dims.append(
                {
                    "name": f"d_{col[2:]}",
                    "table": t,
                    "col": col,
                    "sensitive": draw(st.booleans()),
                    "by_column": draw(st.booleans()),
                }
            )  # dbt names it like its column
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == "metric_missing_from_dbt" and len(metrics) < 2:
        mutation = "none"
    if mutation == "sensitive_column_without_metadata" and not any(d["sensitive"] for d in dims):
        mutation = "none"
    pick = draw(st.integers(0, 99))
    return {"tables": tables, "metrics": metrics, "dims": dims, "mutation": mutation, "pick": pick}


def _write_domain(shape: dict[str, Any], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    ddl = []
    for t in shape["tables"]:
        cols = ["id text PRIMARY KEY", "created_at date NOT NULL", f"{t['flag']} boolean NOT NULL"]
        cols += [f"{c} integer NOT NULL" for c in t["numbers"]]
        cols += [f"{c} text NOT NULL" for c in t["texts"]]
        ddl.append(f"CREATE TABLE {t['name']} (\n    " + ",\n    ".join(cols) + "\n);\n")
    (root / "schema.sql").write_text("\n".join(ddl))
    (root / "surfaces.yaml").write_text(
        (domains_dir() / "support_saas" / "surfaces.yaml").read_text()
    )
    metrics = {}
    for m in shape["metrics"]:
        t = m["table"]["name"]
        arg = f"{'distinct ' if m['distinct'] else ''}{t}.{m['col']}"
        expr = f"{m['func']}({arg})"
        if m["filter"] == "flag":
            expr += f" filter (where {t}.{m['table']['flag']})"
        elif m["filter"] == "text":
            expr += f" filter (where {t}.{m['table']['texts'][2]} = 'on')"
        metrics[m["name"]] = {
            "expression": expr,
            "table": t,
            "allowed_roles": ["r"],
            "aliases": [m["alias"]],
        }
    dims = {
        d["name"]: {
            "column": f"{d['table']['name']}.{d['col']}",
            "allowed_roles": ["r"],
            "sensitive": d["sensitive"],
        }
        for d in shape["dims"]
    }
    policy = {
        "version": "v1",
        "principals": {"p": {"id": "p", "role": "r", "tenant_ids": ["t1"]}},
        "roles": {
            "r": {
                "allowed_metrics": list(metrics),
                "allowed_dimensions": list(dims),
                "allowed_time_ranges": ["last_month"],
                "max_rows": 100,
                "max_cost": 100000,
            }
        },
        "metrics": metrics,
        "dimensions": dims,
    }
    (root / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))


def _semantic_layer(shape: dict[str, Any]) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The dbt layer that agrees with the shape's policy, mutated; the findings it must give."""
    mutation, pick = shape["mutation"], shape["pick"]
    models: dict[str, dict[str, Any]] = {}
    for t in shape["tables"]:
        models[t["name"]] = {
            "name": t["name"],
            "model": f"ref('{t['name']}')",
            "defaults": {"agg_time_dimension": "created_at"},
            "entities": [{"name": f"e_{t['name']}", "type": "primary", "expr": "id"}],
            "dimensions": [
                {"name": "created_at", "type": "time", "type_params": {"time_granularity": "day"}}
            ],
            "measures": [],
        }
    for d in shape["dims"]:
        dim: dict[str, Any] = {
            "name": d["col"] if d["by_column"] else d["name"],
            "type": "categorical",
        }
        if not d["by_column"]:
            dim["expr"] = d["col"]
        if d["sensitive"]:
            dim["config"] = {"meta": {"sensitive": True}}
        models[d["table"]["name"]]["dimensions"].append(dim)
    metrics = []
    for m in shape["metrics"]:
        t = m["table"]
        expr = m["col"]
        if m["filter"] == "flag":
            expr = f"case when {t['flag']} then {m['col']} end"
        elif m["filter"] == "text":
            expr = f"case when {t['texts'][2]} = 'on' then {m['col']} end"
        models[t["name"]]["measures"].append(
            {"name": f"s_{m['name']}", "agg": AGGS[(m["func"], m["distinct"])], "expr": expr}
        )
        metrics.append(
            {"name": m["name"], "type": "simple", "type_params": {"measure": f"s_{m['name']}"}}
        )
    expected: set[tuple[str, str]] = set()
    m = shape["metrics"][pick % len(shape["metrics"])]
    measure = next(
        x for sm in models.values() for x in sm["measures"] if x["name"] == f"s_{m['name']}"
    )
    metric = next(x for x in metrics if x["name"] == m["name"])
    if mutation == "metric_missing_from_dbt":
        metrics.remove(metric)
        expected.add((mutation, m["name"]))
    elif mutation == "metric_missing_from_policy":
        metrics.append(
            {"name": "z_unknown", "type": "simple", "type_params": {"measure": measure["name"]}}
        )
        expected.add((mutation, "z_unknown"))
    elif mutation == "stale_metric_alias":
        metric["name"] = m["alias"]
        expected.add((mutation, m["alias"]))
    elif mutation == "aggregation_mismatch":
        others = [a for a in ("sum", "min", "max", "average") if a != measure["agg"]]
        measure["agg"] = others[pick % len(others)]
        expected.add((mutation, m["name"]))
    elif mutation == "expression_mismatch":
        t = m["table"]
        other = next(c for c in [*t["numbers"], "id"] if c != m["col"])
        measure["expr"] = measure["expr"].replace(f"then {m['col']} end", f"then {other} end")
        if measure["expr"] == m["col"]:
            measure["expr"] = other
        expected.add((mutation, m["name"]))
    elif mutation == "filter_mismatch":
        t = m["table"]
        measure["expr"] = m["col"] if m["filter"] else f"case when {t['flag']} then {m['col']} end"
        expected.add((mutation, m["name"]))
    elif mutation == "sensitive_column_without_metadata":
        d = [d for d in shape["dims"] if d["sensitive"]][
            pick % sum(d["sensitive"] for d in shape["dims"])
        ]
        dim = next(
            x
            for x in models[d["table"]["name"]]["dimensions"]
            if x.get("expr", x["name"]) == d["col"]
        )
        del dim["config"]
        expected.add((mutation, d["name"]))
    elif mutation == "dimension_missing_from_policy":
        t = shape["tables"][pick % len(shape["tables"])]
        models[t["name"]]["dimensions"].append(
            {"name": f"q_{t['name'][2:]}", "type": "categorical", "expr": t["numbers"][0]}
        )
        expected.add((mutation, f"q_{t['name'][2:]}"))
    elif mutation == "dimension_missing_from_dbt":
        d = shape["dims"][pick % len(shape["dims"])]
        sm = models[d["table"]["name"]]
        sm["dimensions"] = [x for x in sm["dimensions"] if x.get("expr", x["name"]) != d["col"]]
        expected.add((mutation, d["name"]))
    layer = {"semantic_models": list(models.values()), "metrics": metrics}
    return layer, expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(shape=shapes())
def test_any_domain_shape_agrees_and_each_drift_is_found(
    shape: dict[str, Any], program: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A dbt layer written from any policy agrees with it; one drift of any kind gives exactly
    that finding, with a proof that checks (the rules reason from the facts, not from names)."""
    root = tmp_path_factory.mktemp("shape")
    _write_domain(shape, root / "domain")
    checker = Checker(load_domain(root / "domain"), program=program)
    layer, expected = _semantic_layer(shape)
    text = yaml.safe_dump(layer, sort_keys=False)
    case = Case(id="semantic_layer", semantic_layer=(SourceText("sl.yml", text),))
    try:
        checked = check_semantic_layer(checker, case)
    except InputErrors as exc:  # pragma: no cover - a generator bug, shown with the file
        raise AssertionError(f"{exc}\n{text}") from None
    got = {(w.check, str(w.key)) for w in checked.result.witnesses}
    assert got == expected, text
    assert checked.unchecked == []
    for w in checked.result.witnesses:
        reverify(w, program)
