"""Domain model: YAML with line numbers, pydantic validation, referential integrity, suites."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from policystrata.errors import InputError, InputErrors
from policystrata.model import Policy, Suite, Surfaces, load_domain, load_suite, load_suites
from policystrata.model.calendar import default_time_ranges
from policystrata.model.yamlsrc import load_yaml_text, validate

FIX = Path(__file__).parent / "fixtures" / "model"
MINI = FIX / "mini"


def mini(tmp_path: Path, **edits: list[tuple[str, str]]) -> Path:
    """A copy of the mini domain with textual edits: ``policy=[(old, new)]``."""
    dst = tmp_path / "mini"
    shutil.copytree(MINI, dst)
    for stem, pairs in edits.items():
        name = {"policy": "policy.yaml", "surfaces": "surfaces.yaml", "schema": "schema.sql"}[stem]
        text = (dst / name).read_text()
        for old, new in pairs:
            assert old in text, old
            text = text.replace(old, new, 1)
        (dst / name).write_text(text)
    return dst


def errors_of(path: Path, **kw: object) -> list[str]:
    with pytest.raises(InputErrors) as info:
        load_domain(path, **kw)  # type: ignore[arg-type]
    return [str(e) for e in info.value.errors]


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth - 1]


# ---- the built-in domain ----


def test_builtin_domain_loads() -> None:
    d = load_domain("support_saas")
    assert d.name == "support_saas"
    assert set(d.policy.principals) == {"acme_analyst", "beta_analyst", "acme_finance_admin"}
    analyst = d.policy.roles["analyst"]
    assert (analyst.max_rows, analyst.max_cost, analyst.aggregate_only) == (1000, 80, True)
    assert "gross_revenue" not in analyst.allowed_metrics
    assert "customer_email" not in analyst.allowed_dimensions
    assert d.policy.resolve_metric("bookings") == "gross_revenue"
    assert d.policy.resolve_metric("recognized_revenue") == "net_revenue"
    assert d.metric_agg("net_revenue") == ("sum", False, "invoices", "net_amount_cents")
    assert d.metric_agg("ticket_count") == ("count", True, "support_tickets", "id")
    assert d.time_ranges()["last_month"] == ("2026-05-01", "2026-06-01", "calendar")
    assert d.time_ranges()["last_fiscal_month"] == ("2026-04-27", "2026-05-25", "fiscal")
    assert "legacy_tenant_id" in d.schema.tables["accounts"].columns
    # the published shape: only accounts and agents carry tenant_id, the rest are FK-scoped
    assert d.tenant_columns() == {"tenants": "id", "accounts": "tenant_id", "agents": "tenant_id"}
    assert set(d.surfaces.contracts) == {
        "manifest", "grammar", "validator", "compiler", "database", "release"
    }  # fmt: skip


def test_builtin_domain_by_path_and_unknown_name(tmp_path: Path) -> None:
    from policystrata.paths import domains_dir

    assert load_domain(domains_dir() / "support_saas").name == "support_saas"
    with pytest.raises(
        InputError, match=r"unknown domain 'support_sas' \(did you mean 'support_saas'"
    ):
        load_domain("support_sas")


def test_builtin_costs_fit_typical_queries_only() -> None:
    from policystrata.ir import parse_ir
    from policystrata.lower.ir import ir_cost

    d = load_domain("support_saas")
    fits = [
        "ticket_count by region during last_month limit 100",
        "escalated_tickets by severity during last_month limit 100",
        "net_revenue by region, plan during last_fiscal_month limit 100",
        "ticket_count by month during fiscal_ytd limit 1000",
    ]
    too_costly = [
        "ticket_count by severity, month, region during last_month limit 1000",
        "average_resolution_hours by severity during last_month limit 100",
    ]
    for text in fits:
        assert ir_cost(parse_ir(text), d) <= 80, text
    for text in too_costly:
        assert ir_cost(parse_ir(text), d) > 80, text


def test_surface_names_known_to_rules_are_checked() -> None:
    d = load_domain("support_saas")
    names = {r for c in d.surfaces.contracts.values() for r in c.responsibilities}
    obligations = {o for c in d.surfaces.contracts.values() for o in c.accepts_obligations}
    obligations |= {o for c in d.surfaces.contracts.values() for o in c.emits_obligations}
    obligations |= set(d.surfaces.transition_obligations)
    load_domain("support_saas", known_responsibilities=names, known_obligations=lambda: obligations)
    path = d.path / "surfaces.yaml"
    errs = errors_of(
        d.path,
        known_responsibilities=names - {"preserve_time_semantics"},
        known_obligations=obligations - {"row_budget"},
    )
    line = line_of(path, "- preserve_time_semantics")
    assert any(
        e.startswith(f"surfaces.yaml:{line}: contracts.compiler.responsibilities") for e in errs
    )
    assert "unknown responsibility 'preserve_time_semantics'" in "\n".join(errs)
    assert any("unknown obligation 'row_budget'" in e for e in errs)
    assert any(e.startswith(f"surfaces.yaml:{line_of(path, '- row_budget')}:") for e in errs)


# ---- FORMATS.md examples load unchanged ----


def test_formats_policy_snippet_validates_unchanged() -> None:
    doc = load_yaml_text((FIX / "formats" / "policy.yaml").read_text(), "policy.yaml")
    policy = validate(Policy, doc)
    assert policy.metrics["net_revenue"].aliases == ["recognized_revenue"]
    assert policy.dimensions["customer_email"].sensitive is True
    assert policy.as_of == dt.date(2026, 6, 1)


def test_formats_new_sections_validate_unchanged() -> None:
    doc = load_yaml_text((FIX / "formats" / "new_sections.yaml").read_text(), "policy.yaml")
    policy = validate(Policy, doc)
    assert policy.tenancy == {"accounts": "tenant_id"}
    assert policy.time_ranges["last_fiscal_month"].calendar == "fiscal"
    assert policy.time_ranges["last_month"].start == dt.date(2026, 5, 1)


def test_formats_surfaces_snippet_validates_unchanged() -> None:
    doc = load_yaml_text((FIX / "formats" / "surfaces.yaml").read_text(), "surfaces.yaml")
    surfaces = validate(Surfaces, doc)
    assert surfaces.contracts["compiler"].mode == "sql_lowering"
    assert surfaces.versions["release"] == "v7"


def test_formats_suite_snippet_loads_unchanged() -> None:
    suite = load_suite(FIX / "formats" / "suite.yaml")
    tasks = suite.all_tasks()
    assert [t.id for t in tasks] == ["t1"] + [
        f"compiler_drops_tenant_predicate_{i:02d}" for i in range(1, 6)
    ]
    assert tasks[0].semantic_query is not None
    assert tasks[0].semantic_query.to_text() == (
        "escalated_tickets by severity during last_month grain month limit 100"
    )
    assert tasks[3].request == "Show ticket count by region, variant 3."
    assert tasks[3].surface_versions == {"compiler": "v5"}
    assert tasks[3].mutation == "compiler_drops_tenant_predicate"
    assert tasks[0].expected_containment_layer == "database"


def test_mini_domain_built_on_the_formats_snippet_loads() -> None:
    d = load_domain(MINI)
    assert d.metric_time_column("ticket_count") == ("tickets", "opened_at")  # default: first date
    assert d.policy.release is not None and d.policy.release.min_cohort_size == 3
    assert [s.suite for s in load_suites(MINI)] == ["seeded"]  # older tasks/ layout


# ---- load errors: one line, file:line: key: message ----


def test_malformed_yaml_reports_yaml_mark(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("roles:\n", "roles: [unclosed\n")])
    errs = errors_of(path)
    assert len(errs) == 1
    assert errs[0].startswith("policy.yaml:")
    assert "malformed YAML" in errs[0]
    assert "\n" not in errs[0]


def test_tab_indentation_is_a_yaml_error() -> None:
    with pytest.raises(InputError, match=r"^x\.yaml:2:1: malformed YAML"):
        load_yaml_text("a: 1\n\tb: 2\n", "x.yaml")


def test_list_where_mapping_expected(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("principals:\n  acme_analyst: {", "principals:\n  - {")])
    errs = errors_of(path)
    assert errs == ["policy.yaml:2: principals: expected a mapping, got a list"]


def test_top_level_list_is_an_error(tmp_path: Path) -> None:
    path = mini(tmp_path)
    (path / "surfaces.yaml").write_text("- a\n- b\n")
    assert errors_of(path) == ["surfaces.yaml:1: expected a mapping at the top level, got a list"]


def test_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = mini(
        tmp_path, policy=[("    aggregate_only: true", "    aggregate_only: true\n    max_rowz: 5")]
    )
    errs = errors_of(path)
    line = line_of(path / "policy.yaml", "max_rowz")
    assert errs == [
        f"policy.yaml:{line}: roles.analyst.max_rowz: unknown key (did you mean 'max_rows'?)"
    ]


def test_unknown_key_in_flow_mapping(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("sensitive: true, cost: 8}", "sensitive: true, costs: 8}")])
    assert errors_of(path) == [
        f"policy.yaml:{line_of(path / 'policy.yaml', 'costs: 8')}: "
        "dimensions.customer_email.costs: "
        "unknown key (did you mean 'cost'?)"
    ]


def test_pydantic_type_error_maps_to_line(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("max_cost: 80 ", "max_cost: lots ")])
    (err,) = errors_of(path)
    assert err.startswith(
        f"policy.yaml:{line_of(path / 'policy.yaml', 'max_cost')}: roles.analyst.max_cost: "
    )
    assert "integer" in err and "'lots'" in err


def test_missing_required_key_points_at_parent(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("    table: invoices\n", "")])
    (err,) = errors_of(path)
    line = line_of(path / "policy.yaml", "  net_revenue:")
    assert err == f"policy.yaml:{line}: metrics.net_revenue.table: required key is missing"


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("    cost: 18", "    cost: 18\n    cost: 19")])
    (err,) = errors_of(path)
    assert "duplicate key 'cost'" in err and err.startswith("policy.yaml:")


def test_bad_surface_mode_and_name(tmp_path: Path) -> None:
    path = mini(tmp_path, surfaces=[("mode: sql_lowering", "mode: sql_compiling")])
    (err,) = errors_of(path)
    assert err.startswith("surfaces.yaml:4: contracts.compiler.mode: ")
    path2 = mini(tmp_path / "b", surfaces=[("contracts:\n  compiler:", "contracts:\n  compilr:")])
    (err2,) = errors_of(path2)
    assert err2.startswith("surfaces.yaml:3: contracts.compilr")


def test_time_range_end_before_start(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("end: 2026-05-25", "end: 2026-04-01")])
    (err,) = errors_of(path)
    assert err.startswith(f"policy.yaml:{line_of(path / 'policy.yaml', 'end: 2026-04-01')}: ")
    assert "must be after start" in err


# ---- referential integrity: every broken reference, all at once ----


def test_role_unknown_metric_dimension_time_range(tmp_path: Path) -> None:
    path = mini(
        tmp_path,
        policy=[
            (
                "allowed_metrics: [ticket_count, net_revenue]",
                "allowed_metrics: [ticket_cnt, net_revenue]",
            ),
            ("allowed_dimensions: [region, plan,", "allowed_dimensions: [regoin, plan,"),
            (
                "allowed_time_ranges: [last_month, last_fiscal_month]",
                "allowed_time_ranges: [last_mnth]",
            ),
        ],
    )
    p = path / "policy.yaml"
    assert errors_of(path) == [
        f"policy.yaml:{line_of(p, 'ticket_cnt')}: roles.analyst.allowed_metrics[0]: "
        "unknown metric 'ticket_cnt' (did you mean 'ticket_count'?)",
        f"policy.yaml:{line_of(p, 'regoin')}: roles.analyst.allowed_dimensions[0]: "
        "unknown dimension 'regoin' (did you mean 'region'?)",
        f"policy.yaml:{line_of(p, 'last_mnth')}: roles.analyst.allowed_time_ranges[0]: "
        "unknown time range 'last_mnth' (did you mean 'last_month'?)",
    ]


def test_role_listing_an_alias_gets_a_hint(tmp_path: Path) -> None:
    path = mini(
        tmp_path, policy=[("[ticket_count, net_revenue]", "[ticket_count, recognized_revenue]")]
    )
    (err,) = errors_of(path)
    assert "'recognized_revenue' is an alias of 'net_revenue'" in err


def test_metric_allowed_roles_unknown_role(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("[analyst, finance_admin]   #", "[analyst, finance_admn]   #")])
    line = line_of(path / "policy.yaml", "finance_admn")
    assert errors_of(path) == [
        f"policy.yaml:{line}: metrics.net_revenue.allowed_roles[1]: "
        "unknown role 'finance_admn' (did you mean 'finance_admin'?)"
    ]


def test_principal_key_and_id_differ_and_unknown_role(tmp_path: Path) -> None:
    path = mini(
        tmp_path, policy=[("{id: acme_analyst, role: analyst", "{id: acme_analyst2, role: analyts")]
    )
    assert errors_of(path) == [
        "policy.yaml:3: principals.acme_analyst.role: unknown role 'analyts' "
        "(did you mean 'analyst'?)",
    ]


def test_principal_key_and_id_differ_is_a_warning(tmp_path: Path) -> None:
    """The published format never checks the id (lookups use the key): a warning, not an error."""
    path = mini(tmp_path, policy=[("{id: acme_analyst, role", "{id: acme_analyst2, role")])
    d = load_domain(path)
    assert [str(w) for w in d.warnings] == [
        "policy.yaml:3: principals.acme_analyst.id: principal key 'acme_analyst' and id "
        "'acme_analyst2' differ (lookups use the key)"
    ]


def test_columns_missing_from_schema(tmp_path: Path) -> None:
    path = mini(
        tmp_path,
        policy=[
            ("columns: [invoices.net_amount_cents]", "columns: [invoices.net_amount]"),
            ("{column: accounts.region,", "{column: acounts.region,"),
            ("    table: tickets\n", "    table: ticket\n"),
        ],
    )
    p = path / "policy.yaml"
    errs = errors_of(path)
    assert (
        f"policy.yaml:{line_of(p, 'table: ticket')}: metrics.ticket_count.table: table 'ticket' is "
        "not in schema.sql (did you mean 'tickets'?)"
    ) in errs
    assert (
        f"policy.yaml:{line_of(p, 'invoices.net_amount]')}: metrics.net_revenue.columns[0]: column "
        "'net_amount' is not a column of table 'invoices' in schema.sql "
        "(did you mean 'net_amount_cents'?)"
    ) in errs
    assert (
        f"policy.yaml:{line_of(p, 'acounts.region')}: dimensions.region.column: table 'acounts' is "
        "not in schema.sql (did you mean 'accounts'?)"
    ) in errs


def test_metric_expression_column_checked(tmp_path: Path) -> None:
    path = mini(
        tmp_path, policy=[("sum(invoices.net_amount_cents)", "sum(invoices.gross_amount_cents)")]
    )
    (err,) = errors_of(path)
    assert "metrics.net_revenue.expression" in err and "'gross_amount_cents'" in err


def test_metric_expression_without_aggregate_is_a_warning(tmp_path: Path) -> None:
    """Published policies hold every form of COMPAT.md §2; one that gives the semantic checks
    nothing to compare with is a warning at its line that lowers those checks, never an error."""
    path = mini(
        tmp_path, policy=[("sum(invoices.net_amount_cents)", "invoices.net_amount_cents + 1")]
    )
    d = load_domain(path)
    line = line_of(path / "policy.yaml", "invoices.net_amount_cents + 1")
    assert [str(w) for w in d.warnings] == [
        f"policy.yaml:{line}: metrics.net_revenue.expression: metric expression not understood "
        "(it has no aggregate and names no other metric): the checks of net_revenue's semantics "
        "have nothing to compare the SQL with"
    ]


def test_alias_colliding_with_metric_name(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("aliases: [recognized_revenue]", "aliases: [ticket_count]")])
    line = line_of(path / "policy.yaml", "aliases: [ticket_count]")
    assert errors_of(path) == [
        f"policy.yaml:{line}: metrics.net_revenue.aliases[0]: alias 'ticket_count' collides with "
        "metric 'ticket_count'"
    ]


def test_tenancy_and_joins_checked(tmp_path: Path) -> None:
    path = mini(
        tmp_path,
        policy=[
            ("accounts: tenant_id", "accounts: tenant"),
            ("to: accounts.id", "to: accounts.uid"),
        ],
    )
    errs = errors_of(path)
    assert any("tenancy.accounts: column 'tenant' is not a column" in e for e in errs)
    assert any("joins[0].to: column 'uid'" in e for e in errs)


def test_all_errors_are_collected_in_file_order(tmp_path: Path) -> None:
    path = mini(
        tmp_path,
        policy=[
            ("role: analyst", "role: nobody"),
            ("aliases: [recognized_revenue]", "aliases: [net_revenue]"),
            ("{column: tickets.severity", "{column: tickets.sev"),
        ],
    )
    errs = errors_of(path)
    assert len(errs) == 3
    lines = [int(e.split(":")[1]) for e in errs]
    assert lines == sorted(lines)


def test_schema_error_is_reported_with_its_file(tmp_path: Path) -> None:
    path = mini(tmp_path, schema=[("CREATE TABLE tickets (", "CREATE TABLE tickets ((")])
    (err,) = errors_of(path)
    assert err.startswith("schema.sql:")


def test_missing_file(tmp_path: Path) -> None:
    path = mini(tmp_path)
    (path / "surfaces.yaml").unlink()
    with pytest.raises(InputError, match=r"missing surfaces\.yaml"):
        load_domain(path)


def test_provenance_map() -> None:
    d = load_domain(MINI)
    assert str(d.where("policy", "metrics", "net_revenue", "cost")) == (
        f"policy.yaml:{line_of(MINI / 'policy.yaml', 'cost: 18')}"
    )
    assert str(d.where("surfaces", "contracts", "compiler", "mode")) == "surfaces.yaml:4"


# ---- YAML line tracking ----


def test_line_tracking_for_keys_and_items() -> None:
    doc = load_yaml_text("a:\n  b: [x,\n     y]\n  c:\n    - 1\n    - 2\n", "f.yaml")
    assert doc.line(("a",)) == 1
    assert doc.line(("a", "b", 1)) == 3
    assert doc.line(("a", "c", 1)) == 6
    assert doc.line(("a", "zzz")) == 1


def test_empty_file_is_not_a_mapping() -> None:
    doc = load_yaml_text("", "e.yaml")
    with pytest.raises(InputErrors, match="expected a mapping at the top level, got nothing"):
        validate(Policy, doc)


def test_loader_uses_yaml_safe_constructors() -> None:
    doc = load_yaml_text("d: 2026-05-01\nb: yes\n", "f.yaml")
    assert doc.data == yaml.safe_load("d: 2026-05-01\nb: yes\n")


# ---- suites ----


def test_matrix_expansion_width_and_index(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: big\nmatrix:\n  - mutation: fanout_join_drift\n    count: 120\n"
        "    principal: acme_analyst\n    request: 'n={index}'\n"
        "    semantic_query: 'net_revenue by plan during last_month limit {index}0'\n"
    )
    with pytest.raises(
        InputErrors, match=r"s\.yaml:7: matrix\[0\]\.semantic_query: invalid IR text"
    ):
        load_suite(path)
    path.write_text(path.read_text().replace(" limit {index}0", " limit 10"))
    tasks = load_suite(path).all_tasks()
    assert len(tasks) == 120
    # the published ids: two digits at least (<mutation>_01 .. _99, _100 ..)
    assert tasks[0].id == "fanout_join_drift_01" and tasks[-1].id == "fanout_join_drift_120"
    assert tasks[41].request == "n=42"


def test_suite_errors_have_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\ntasks:\n  - id: a\n    principal: p\n"
        "    semantic_query: {metric: m, dims: [x]}\n"
        "  - id: a\n    principal: p\n    expected_witness_class: bad\n"
    )
    with pytest.raises(InputErrors) as info:
        load_suite(path)
    msgs = [str(e) for e in info.value.errors]
    assert msgs == [
        f"{path}:8: tasks[1].expected_witness_class: unknown witness class 'bad' (expected one of "
        "clean, over_permissive, over_restrictive, lowering_violation, semantic_drift, "
        "unsafe_release)"
    ]
    # a key the published format drops (semantic_query is lenient) is a warning at its line
    path.write_text(
        path.read_text()
        .replace("bad", "clean")
        .replace("  - id: a\n    principal: p\n    exp", "  - id: b\n    principal: p\n    exp")
    )
    [w] = load_suite(path).warnings
    assert str(w) == f"{path}:5: tasks[0].semantic_query.dims: unknown key, ignored"


def test_suite_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("suite: s\ntasks:\n  - {id: a, principal: p}\n  - {id: a, principal: p}\n")
    with pytest.raises(InputErrors, match=r"s\.yaml:4: tasks\[1\]\.id: duplicate task id 'a'"):
        load_suite(path)


def test_suite_semantic_query_forms_agree(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "suite: s\ntasks:\n"
        "  - id: a\n    principal: p\n"
        "    semantic_query: {metric: m, dimensions: [d], filters: {plan: pro}, limit: 5}\n"
        "  - id: b\n    principal: p\n"
        "    semantic_query: \"m by d during last_month grain month where plan = 'pro' limit 5\"\n"
        "  - id: c\n    principal: p\n"
        "    semantic_query: {metric: m}\n"
    )
    a, b, c = load_suite(path).all_tasks()
    # the mapping form has the published defaults: last_month, grain month, limit 100
    assert a.semantic_query == b.semantic_query
    assert c.semantic_query is not None
    assert c.semantic_query.to_text() == "m during last_month grain month limit 100"


def test_suite_unknown_top_level_key_is_a_warning_and_task_keys_are_strict(
    tmp_path: Path,
) -> None:
    """The published loader is lenient at the top level (a typo is a warning with its line and
    "did you mean") and strict in a task (an error)."""
    path = tmp_path / "s.yaml"
    path.write_text("suite: s\ntaks: []\n")
    [w] = load_suite(path).warnings
    assert str(w) == f"{path}:2: taks: unknown key, ignored (did you mean 'tasks'?)"
    with pytest.raises(ValueError, match="extra"):
        Suite.model_validate({"suite": "s", "tasks": [{"id": "a", "principal": "p", "x": 1}]})


# ---- the default calendar ----


@pytest.mark.parametrize(
    ("as_of", "label", "bounds"),
    [
        ("2026-06-01", "last_month", ("2026-05-01", "2026-06-01", "calendar")),
        ("2026-06-15", "last_month", ("2026-05-01", "2026-06-01", "calendar")),
        ("2026-01-10", "last_month", ("2025-12-01", "2026-01-01", "calendar")),
        ("2026-06-01", "last_fiscal_month", ("2026-04-27", "2026-05-25", "fiscal")),
        ("2026-05-25", "last_fiscal_month", ("2026-04-27", "2026-05-25", "fiscal")),
        ("2026-01-05", "last_fiscal_month", ("2025-12-08", "2026-01-05", "fiscal")),
        ("2026-06-01", "fiscal_ytd", ("2026-01-05", "2026-06-01", "fiscal")),
        ("2026-01-02", "fiscal_ytd", ("2025-01-06", "2026-01-02", "fiscal")),
        ("2026-06-01", "quarter_to_date", ("2026-04-01", "2026-06-01", "calendar")),
        ("2026-06-01", "last_7_days", ("2026-05-25", "2026-06-01", "calendar")),
    ],
)
def test_default_calendar(as_of: str, label: str, bounds: tuple[str, str, str]) -> None:
    assert default_time_ranges(dt.date.fromisoformat(as_of))[label] == bounds


def test_as_of_moves_default_labels_only(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("version: v7\n", "version: v7\nas_of: 2026-09-01\n")])
    d = load_domain(path)
    assert d.time_ranges()["last_month"] == ("2026-05-01", "2026-06-01", "calendar")  # explicit
    assert d.time_ranges()["quarter_to_date"] == ("2026-07-01", "2026-09-01", "calendar")


def test_unterminated_flow_collection_names_the_line_it_starts_on(tmp_path: Path) -> None:
    path = mini(tmp_path, policy=[("max_rows: 1000", "max_rows: [1000")])
    (err,) = errors_of(path)
    start = line_of(path / "policy.yaml", "max_rows: [1000")
    assert f"while parsing a flow sequence that starts at line {start}:" in err
    with pytest.raises(
        InputError,
        match=r"x\.yaml:2:1: .*mapping that starts at line 1: .*"
        r"but got the end of the file",
    ):
        load_yaml_text("a: {b: 1\n", "x.yaml")


def test_a_bad_enum_value_or_mapping_key_lists_the_choices_and_the_closest(
    tmp_path: Path,
) -> None:
    path = mini(tmp_path, surfaces=[("mode: sql_lowering", "mode: sql_lower")])
    (err,) = errors_of(path)
    assert err.endswith(
        "contracts.compiler.mode: value 'sql_lower' is not one of capability_exposure, "
        "intent_space, semantic_validation, sql_lowering, database_containment, output_release "
        "(did you mean 'sql_lowering'?)"
    )
    path2 = mini(tmp_path / "b", surfaces=[("contracts:\n  compiler:", "contracts:\n  compilr:")])
    (err2,) = errors_of(path2)
    assert "[key]" not in err2
    assert err2.startswith("surfaces.yaml:3: contracts.compilr: key 'compilr' is not one of")
    assert err2.endswith("(did you mean 'compiler'?)")


def test_a_domain_file_that_is_not_utf8_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = mini(tmp_path)
    with (path / "policy.yaml").open("ab") as f:
        f.write(b"# caf\xe9\n")
    line = len((path / "policy.yaml").read_bytes().splitlines())
    assert errors_of(path) == [f"policy.yaml:{line}:6: not UTF-8 text: byte 0xe9"]
    path2 = mini(tmp_path / "b")
    with (path2 / "schema.sql").open("ab") as f:
        f.write(b"-- \xff\n")
    assert errors_of(path2)[0].startswith("schema.sql:") and "not UTF-8" in errors_of(path2)[0]
