"""Fault operators: each changes how ONE layer of the reference stack produces its artifact.

An operator has a stable id (FORMATS.md), the layer it breaks, the labels a suite author would
expect (used only to score, after detection), a mutation-point test (``applies``: the case has
something for the fault to act on) and ``knobs`` (the faulty layer's configuration for the case).
Whether a fault changed any artifact is not decided here: the runner compares the faulted run's
artifact digests with the fault-free run's (equal digests = an equivalent mutant).

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> from policystrata.stack.pipeline import Request, run_stack
>>> d = load_domain("support_saas")
>>> req = Request("acme_analyst", parse_ir("ticket_count by region during last_month limit 100"))
>>> op = OPERATORS["compiler_uses_old_tenant_key"]
>>> op.applies(d, req, run_stack(d, req))
True
>>> "accounts.legacy_tenant_id = 'acme'" in (run_stack(d, req, op.knobs(d, req)).sql or "")
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from policystrata.model import Domain, split_column
from policystrata.stack.compiler import (
    CompileError,
    CompilerKnobs,
    plan_joins,
    planned_tables,
    tenant_roots,
)
from policystrata.stack.database import DatabaseKnobs
from policystrata.stack.grammar import GrammarKnobs
from policystrata.stack.manifest import ManifestKnobs, role_dimensions, role_metrics
from policystrata.stack.pipeline import Knobs, Request, StackRun, combine_knobs
from policystrata.stack.release import ReleaseKnobs
from policystrata.stack.validator import ValidatorKnobs, authorize

Applies = Callable[[Domain, Request, StackRun], bool]
MakeKnobs = Callable[[Domain, Request], Knobs]


@dataclass(frozen=True)
class Operator:
    id: str
    surface: str
    witness_class: str
    containment: str | None
    description: str
    applies: Applies
    knobs: MakeKnobs
    new: bool = False  # not in the published 0.1-1.x line
    # Generated suites draw only cases where the fault can change the layer's decision (the
    # mutation point is live); hand-written suites may still inject it anywhere it applies, and
    # a case where it changed no artifact is reported as an equivalent mutant.
    live: Applies | None = None
    # The domain has what the fault acts on at all (ClickHouse row policies, a release policy,
    # a materialized view...): generated suites draw only operators that can apply there.
    feature: Callable[[Domain], bool] | None = None

    def fits(self, domain: Domain) -> bool:
        return self.feature is None or self.feature(domain)

    def live_at(self, domain: Domain, req: Request, canonical: StackRun) -> bool:
        if not self.applies(domain, req, canonical):
            return False
        return self.live is None or self.live(domain, req, canonical)


# ---- helpers -----------------------------------------------------------------------------------


def _role(domain: Domain, principal: str) -> str | None:
    p = domain.policy.principals.get(principal)
    return p.role if p is not None and p.role in domain.policy.roles else None


def _metric(domain: Domain, req: Request) -> str | None:
    return domain.policy.resolve_metric(req.query.metric)


def _compiled(run: StackRun) -> bool:
    return run.sql is not None


def _tables_read(domain: Domain, req: Request) -> list[str]:
    """The tables the canonical compiler reads for the request (none when it cannot compile)."""
    if _metric(domain, req) is None:
        return []
    try:
        return planned_tables(domain, req.query, req.style)
    except CompileError:
        return []


def _legacy_column(domain: Domain, table: str) -> tuple[str, str] | None:
    """(tenant column, old ownership column) of a table that keeps a pre-migration ownership
    field next to its tenant column (``legacy_tenant_id`` beside ``tenant_id``)."""
    tc = domain.tenant_columns().get(table)
    info = domain.schema.tables.get(table)
    if tc is None or info is None or table in tenant_roots(domain):
        return None
    for col in info.columns:
        if col != tc and col.startswith(("legacy_", "old_")) and col.endswith(tc):
            return tc, col
    return None


def _legacy_table(domain: Domain, req: Request | None = None) -> str | None:
    """A table with an old ownership column, preferring one the request reads."""
    read = _tables_read(domain, req) if req is not None else []
    tables = [t for t in domain.schema.tables if _legacy_column(domain, t) is not None]
    return next((t for t in tables if t in read), tables[0] if tables else None)


def _stale_alias(domain: Domain, req: Request) -> tuple[str, str] | None:
    """(retired alias, its metric) the manifest keeps offering: an alias of a metric the
    principal's role may NOT use (the published fault: the stale alias reopens a denied
    metric), the requested metric's first when it is such a metric."""
    role = _role(domain, req.principal)
    if role is None:
        return None
    allowed = set(role_metrics(domain, role))
    target = _metric(domain, req)
    denied = [m for m in sorted(domain.policy.metrics) if m not in allowed]
    order = ([target] if target in denied else []) + [m for m in denied if m != target]
    for name in order:
        aliases = sorted(domain.policy.metrics[name].aliases)
        if aliases:
            return aliases[0], name
    return None


def _omitted_metric(domain: Domain, req: Request) -> str | None:
    role = _role(domain, req.principal)
    if role is None:
        return None
    metrics = role_metrics(domain, role)
    target = _metric(domain, req)
    if target in metrics:
        return target
    return metrics[0] if metrics else None


def _forbidden_dimensions(domain: Domain, req: Request) -> tuple[str, ...]:
    role = _role(domain, req.principal)
    pol = domain.policy
    exposed = set(role_dimensions(domain, role)) if role is not None else set()
    outside = [d for d in pol.dimensions if d not in exposed]
    asked = [d for d in req.query.dimensions if d in outside]
    if asked:
        return tuple(asked)
    outside.sort(key=lambda d: (not pol.dimensions[d].sensitive, d))
    return tuple(outside[:1])


def _uses_sensitive(domain: Domain, req: Request) -> bool:
    """The query names a sensitive dimension (whether the role may use it or not: when it may,
    ignoring sensitivity changes nothing and the mutant is equivalent)."""
    dims = domain.policy.dimensions
    used = [*req.query.dimensions, *(f.dimension for f in req.query.filters)]
    return any(d in dims and dims[d].sensitive for d in used)


def _denied_only_for_sensitivity(domain: Domain, req: Request) -> bool:
    """The fault-free validator denies the query only because it names sensitive dimensions the
    principal's role may not use: exactly where a validator that ignores sensitivity decides
    differently (anywhere else the mutant is equivalent)."""
    dims = domain.policy.dimensions
    reasons = authorize(domain, req.principal, req.query).reasons
    sensitive = {d for d, spec in dims.items() if spec.sensitive}
    ours = {
        f"{kind}: {d}"
        for d in sensitive
        for kind in ("dimension_not_allowed", "filter_not_allowed")
    }
    return bool(reasons) and set(reasons) <= ours


def _filters_tenant_column(domain: Domain, req: Request) -> bool:
    """The query filters a dimension that is a tenant column: that filter (intersected with the
    principal's tenants) still scopes the SQL when the compiler drops its own tenant predicate."""
    tenant_cols = {(t, c) for t, c in domain.tenant_columns().items()}
    dims = domain.policy.dimensions
    for flt in req.query.filters:
        spec = dims.get(flt.dimension)
        if spec is not None and split_column(spec.column) in tenant_cols:
            return True
    return False


def _allowed(run: StackRun) -> bool:
    return run.validator.get("decision") == "allow"


def _allowed_dimension(domain: Domain, req: Request) -> str | None:
    role = _role(domain, req.principal)
    if role is None:
        return None
    allowed = set(role_dimensions(domain, role))
    return next((d for d in req.query.dimensions if d in allowed), None)


def _swap_metric_column(domain: Domain, req: Request) -> str | None:
    """gross <-> net: another amount column of the metric's table in place of its own (the
    gross/net sibling when there is one: ``net_x`` / ``gross_x``, or ``x`` / ``gross_x``; else a
    column another metric aggregates, else another numeric column of the same type)."""
    metric = _metric(domain, req)
    if metric is None:
        return None
    agg = domain.aggs.get(metric)
    info = domain.schema.tables.get(agg.table) if agg is not None else None
    if agg is None or info is None or agg.column == "*" or agg.func not in ("sum", "avg"):
        return None
    cols = info.columns
    for a, b in (("net_", "gross_"), ("gross_", "net_")):
        if agg.column.startswith(a) and b + agg.column[len(a) :] in cols:
            return f"{agg.table}.{b + agg.column[len(a) :]}"
    # an unprefixed amount is the net one when a gross_ twin exists (amount_cents and
    # gross_amount_cents), and a gross_ amount's net twin may be unprefixed
    if "gross_" + agg.column in cols:
        return f"{agg.table}.gross_{agg.column}"
    if agg.column.startswith("gross_") and agg.column[len("gross_") :] in cols:
        return f"{agg.table}.{agg.column[len('gross_') :]}"
    others = [
        m.column
        for n, m in sorted(domain.aggs.items())
        if n != metric and m.table == agg.table and m.column not in ("*", agg.column)
    ]
    keys = set(info.primary_key) | {fk.column for fk in info.foreign_keys}
    typ = cols.get(agg.column)
    others += [c for c, t in cols.items() if t == typ and c != agg.column and c not in keys]
    return f"{agg.table}.{others[0]}" if others else None


def _fanout_table(domain: Domain, req: Request) -> str | None:
    """A one-to-many table the query does not read, hanging below a table it does (reachable
    from the metric's table along many-to-one steps): joining it repeats the metric's rows.
    A table that holds another metric's facts first (it fans out the most visibly)."""
    metric = _metric(domain, req)
    read = _tables_read(domain, req)
    if metric is None or not read:
        return None
    base = domain.policy.metrics[metric].table
    roots = tenant_roots(domain)
    facts = {m.table for m in domain.policy.metrics.values()}
    candidates = []
    for name, info in domain.schema.tables.items():
        if name in read or name in roots:
            continue
        if not any(fk.ref_table in read and fk.ref_table not in roots for fk in info.foreign_keys):
            continue
        try:
            plan_joins(domain, base, [name], CompilerKnobs(inner_join_all=True))
        except CompileError:
            continue
        candidates.append(name)
    candidates.sort(key=lambda t: (t not in facts, t))
    return candidates[0] if candidates else None


def _is_fiscal(domain: Domain, req: Request) -> bool:
    tr = req.query.time_range
    return tr is not None and domain.time_ranges().get(tr, ("", "", ""))[2] == "fiscal"


def _has_left_join(run: StackRun) -> bool:
    return "left join" in (run.sql or "")


def _legacy_knobs(domain: Domain, req: Request) -> Knobs:
    table = _legacy_table(domain, req) or ""
    cols = _legacy_column(domain, table) or ("", "")
    return replace(K, compiler=CompilerKnobs(legacy_tenant_key=(table, cols[1])))


def _ownership_knobs(domain: Domain, req: Request) -> Knobs:
    table = _legacy_table(domain, req) or ""
    cols = _legacy_column(domain, table) or ("", "")
    return replace(K, database=DatabaseKnobs(ownership_column=(table, cols[0], cols[1])))


def _ownership_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    table = _legacy_table(domain, req)
    return (
        _compiled(canonical)
        and table is not None
        and table in _tables_read(domain, req)
        and table in domain.schema.rls_enabled
    )


def _missing_policy_knobs(domain: Domain, req: Request) -> Knobs:
    table = domain.policy.metrics[_metric(domain, req) or ""].table
    return replace(K, database=DatabaseKnobs(drop_policy_table=table))


def _missing_policy_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    metric = _metric(domain, req)
    return (
        _compiled(canonical)
        and metric is not None
        and domain.policy.metrics[metric].table in domain.schema.rls_enabled
    )


def _swap_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    """The SQL scopes some table by a tenant column that is not its own key: binding the scope
    to the key (accounts.id) instead is a real change."""
    if not _compiled(canonical):
        return False
    tenant_cols = domain.tenant_columns()
    for table in _tables_read(domain, req):
        tc = tenant_cols.get(table)
        key = domain.schema.tables[table].primary_key
        if tc is not None and len(key) == 1 and key[0] != tc:
            return True
    return False


def _distinct_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    agg = domain.aggs.get(_metric(domain, req) or "")
    return _compiled(canonical) and agg is not None and agg.distinct


def _has_swappable_key(domain: Domain) -> bool:
    """Some tenant-column table has a single-column key that is not its tenant column."""
    for table, col in domain.tenant_columns().items():
        info = domain.schema.tables.get(table)
        if info is not None and len(info.primary_key) == 1 and info.primary_key[0] != col:
            return True
    return False


def _has_foreign_keys(domain: Domain) -> bool:
    """schema.sql declares foreign keys (join paths below the metric's table can exist)."""
    return any(info.foreign_keys for info in domain.schema.tables.values())


def _has_amount_metric(domain: Domain) -> bool:
    return any(agg.func in ("sum", "avg") for agg in domain.aggs.values())


def _has_fiscal_label(domain: Domain) -> bool:
    return any(cal == "fiscal" for _s, _e, cal in domain.time_ranges().values())


# ---- the operators -----------------------------------------------------------------------------


def _op(
    id: str,
    surface: str,
    wclass: str,
    containment: str | None,
    description: str,
    applies: Applies,
    knobs: MakeKnobs,
    new: bool = False,
    live: Applies | None = None,
    feature: Callable[[Domain], bool] | None = None,
) -> Operator:
    return Operator(
        id, surface, wclass, containment, description, applies, knobs, new, live, feature
    )


K = Knobs()

_OPERATORS: list[Operator] = [
    _op(
        "stale_metric_alias_manifest",
        "manifest",
        "over_permissive",
        None,
        "the manifest still offers a retired alias of a metric the role may not use",
        lambda d, r, c: _stale_alias(d, r) is not None,
        lambda d, r: replace(K, manifest=ManifestKnobs(stale_alias=_stale_alias(d, r))),
    ),
    _op(
        "manifest_omits_allowed_metric",
        "manifest",
        "over_restrictive",
        None,
        "the manifest leaves out a metric the role may use (underclaim)",
        lambda d, r, c: _omitted_metric(d, r) is not None,
        lambda d, r: replace(K, manifest=ManifestKnobs(omit_metric=_omitted_metric(d, r))),
        new=True,
    ),
    _op(
        "grammar_permits_forbidden_dimension",
        "grammar",
        "over_permissive",
        None,
        "the generated grammar admits a dimension the manifest does not expose",
        lambda d, r, c: bool(_forbidden_dimensions(d, r)),
        lambda d, r: replace(K, grammar=GrammarKnobs(extra_dimensions=_forbidden_dimensions(d, r))),
    ),
    _op(
        "validator_omits_sensitive_column",
        "validator",
        "over_permissive",
        None,
        "the validator treats sensitive columns as ungoverned (no role check)",
        lambda d, r, c: _uses_sensitive(d, r),
        lambda d, r: replace(K, validator=ValidatorKnobs(ignore_sensitive=True)),
        live=lambda d, r, c: _denied_only_for_sensitivity(d, r),
    ),
    _op(
        "validator_denies_allowed_dimension",
        "validator",
        "over_restrictive",
        None,
        "the validator denies a query grouped by a dimension the role may use (false denial)",
        lambda d, r, c: _allowed_dimension(d, r) is not None,
        lambda d, r: replace(K, validator=ValidatorKnobs(deny_dimension=_allowed_dimension(d, r))),
        new=True,
        live=lambda d, r, c: _allowed(c),
    ),
    _op(
        "compiler_drops_tenant_predicate",
        "compiler",
        "lowering_violation",
        "database",
        "the compiler emits no tenant predicate",
        lambda d, r, c: _compiled(c),
        lambda d, r: replace(K, compiler=CompilerKnobs(drop_tenant_predicates=True)),
        live=lambda d, r, c: not _filters_tenant_column(d, r),
    ),
    _op(
        "compiler_uses_old_tenant_key",
        "compiler",
        "lowering_violation",
        "database",
        "the compiler scopes the tenant through the pre-2025 ownership column",
        lambda d, r, c: _compiled(c) and _legacy_table(d, r) is not None,
        _legacy_knobs,
    ),
    _op(
        "compiler_swaps_tenant_account_id",
        "compiler",
        "lowering_violation",
        "database",
        "the compiler binds the tenant scope to the tenant table's key (accounts.id) instead of "
        "its tenant column",
        _swap_applies,
        lambda d, r: replace(K, compiler=CompilerKnobs(swap_tenant_key=True)),
        feature=_has_swappable_key,
    ),
    _op(
        "db_rls_old_ownership_field",
        "database",
        "over_permissive",
        None,
        "the row security policy compares the old ownership column with the session tenant",
        _ownership_applies,
        _ownership_knobs,
    ),
    _op(
        "app_deny_missing_db_policy",
        "database",
        "over_permissive",
        None,
        "the metric's table has no row security in force: only the application stands between "
        "the query and other tenants' rows",
        _missing_policy_applies,
        _missing_policy_knobs,
    ),
    _op(
        "gross_net_metric_drift",
        "compiler",
        "semantic_drift",
        None,
        "the compiler aggregates the gross amount for net revenue (or the net for gross)",
        lambda d, r, c: _compiled(c) and _swap_metric_column(d, r) is not None,
        lambda d, r: replace(K, compiler=CompilerKnobs(metric_column=_swap_metric_column(d, r))),
        feature=_has_amount_metric,
    ),
    _op(
        "fanout_join_drift",
        "compiler",
        "semantic_drift",
        None,
        "the compiler joins a one-to-many table nothing needs, multiplying the metric's rows",
        lambda d, r, c: _compiled(c) and _fanout_table(d, r) is not None,
        lambda d, r: replace(K, compiler=CompilerKnobs(fanout_table=_fanout_table(d, r))),
        feature=_has_foreign_keys,
    ),
    _op(
        "compiler_removes_distinct",
        "compiler",
        "semantic_drift",
        None,
        "the compiler drops DISTINCT from a distinct-count metric",
        _distinct_applies,
        lambda d, r: replace(K, compiler=CompilerKnobs(drop_distinct=True)),
    ),
    _op(
        "compiler_inner_join_drops_rows",
        "compiler",
        "semantic_drift",
        None,
        "the compiler inner-joins an optional (one-to-many) dimension table, dropping metric rows",
        lambda d, r, c: _compiled(c) and _has_left_join(c),
        lambda d, r: replace(K, compiler=CompilerKnobs(inner_join_all=True)),
        feature=_has_foreign_keys,
    ),
    _op(
        "fiscal_calendar_mismatch",
        "compiler",
        "semantic_drift",
        None,
        "the compiler bounds a fiscal time range by calendar months",
        lambda d, r, c: _compiled(c) and _is_fiscal(d, r),
        lambda d, r: replace(K, compiler=CompilerKnobs(calendar_for_fiscal=True)),
        feature=_has_fiscal_label,
    ),
    _op(
        "cost_estimate_ignores_expansion",
        "compiler",
        "over_permissive",
        None,
        "the compiler's cost estimate leaves out the dimensions' (group-by expansion) cost",
        lambda d, r, c: _compiled(c) and bool(r.query.dimensions),
        lambda d, r: replace(K, compiler=CompilerKnobs(cost_ignores_dimensions=True)),
    ),
]

# ---- ClickHouse controls (COMPAT.md section 3: the published ClickHouse-only operators) ----------


def _facts(domain: Domain, pred: str) -> list[tuple[str, ...]]:
    from policystrata.lower.schema import schema_facts

    return [tuple(str(a) for a in f.args) for f in schema_facts(domain.schema).by_pred(pred)]


def _row_policy_tables(domain: Domain) -> set[str]:
    """Tables guarded by ClickHouse row policies (a table with an ENGINE and a row policy)."""
    engines = {t for t, _e in _facts(domain, "table_engine")}
    return {p.table for p in domain.schema.policies if p.table in engines}


def _metric_table(domain: Domain, req: Request) -> str | None:
    metric = _metric(domain, req)
    return domain.policy.metrics[metric].table if metric is not None else None


def _policy_on_metric_table(domain: Domain, req: Request, canonical: StackRun) -> bool:
    return _compiled(canonical) and _metric_table(domain, req) in _row_policy_tables(domain)


def _distributed_front(domain: Domain, req: Request) -> str | None:
    """A Distributed table over the metric's table, guarded by a row policy."""
    table = _metric_table(domain, req)
    guarded = _row_policy_tables(domain)
    fronts = sorted(d for d, local in _facts(domain, "distributed_table") if local == table)
    return next((d for d in fronts if d in guarded), None)


def _releases_aggregate(domain: Domain, req: Request, canonical: StackRun) -> bool:
    return (
        _compiled(canonical)
        and canonical.release == "release"
        and domain.policy.release is not None
        and domain.policy.release.min_cohort_size is not None
    )


def _sampled(domain: Domain, req: Request, canonical: StackRun) -> bool:
    metric = _metric(domain, req)
    rel = domain.policy.release
    return (
        _compiled(canonical)
        and canonical.release == "release"
        and metric is not None
        and domain.policy.metrics[metric].sample is not None
        and rel is not None
        and rel.sampling_disclosure
    )


def _view_for(domain: Domain, req: Request) -> str | None:
    """A materialized view built from the metric's table that has a column for every dimension
    and filter of the request (and a day bucket for its time range): where a compiler may
    rewrite the query onto the view."""
    from policystrata.stack.compiler import dimension_target, materialized_views, view_columns

    metric = _metric(domain, req)
    if metric is None or metric not in domain.aggs or domain.aggs[metric].column != "*":
        return None
    for view in materialized_views(domain, domain.policy.metrics[metric].table):
        cols = view_columns(domain, view)
        dims = [*req.query.dimensions, *(f.dimension for f in req.query.filters)]
        try:
            reads = [dimension_target(domain, d, metric, None).column for d in dims]
        except (KeyError, ValueError):
            return None
        bounded = req.query.time_range in domain.time_ranges()
        if all(c in cols for c in reads) and (not bounded or "@day" in cols.values()):
            return view
    return None


def _zoned(domain: Domain, req: Request, canonical: StackRun) -> bool:
    """The request has a time dimension bucketed in a declared zone, or a window local to a
    zone other than UTC (what a UTC-bucketing ClickHouse compiler gets wrong)."""
    if not _compiled(canonical) or domain.dialect != "clickhouse":
        return False
    from policystrata.stack.compiler import dimension_target

    metric = _metric(domain, req)
    for dim in req.query.dimensions:
        if dimension_target(domain, dim, metric, req.query.grain).zone is not None:
            return True
    zone = domain.time_range_timezone(req.query.time_range or "")
    return zone is not None and zone != "UTC" and req.query.time_range in domain.time_ranges()


def _uniq(domain: Domain, req: Request, canonical: StackRun) -> bool:
    return domain.dialect == "clickhouse" and _distinct_applies(domain, req, canonical)


def _clickhouse(domain: Domain) -> bool:
    return domain.dialect == "clickhouse"


_OPERATORS += [
    _op(
        "clickhouse_row_policy_missing_project_filter",
        "database",
        "over_permissive",
        None,
        "the row policy on the metric's table keeps no project filter (USING 1)",
        _policy_on_metric_table,
        lambda d, r: replace(
            K, database=DatabaseKnobs(unfiltered_policy_table=_metric_table(d, r))
        ),
        feature=lambda d: bool(_row_policy_tables(d)),
    ),
    _op(
        "clickhouse_row_policy_readonly_assumption_violation",
        "database",
        "over_permissive",
        None,
        "the row policy's role may also write the table (INSERT, ALTER): the policy's read-only "
        "assumption no longer holds",
        _policy_on_metric_table,
        lambda d, r: replace(K, database=DatabaseKnobs(writable_policy_table=_metric_table(d, r))),
        feature=lambda d: bool(_row_policy_tables(d)),
    ),
    _op(
        "distributed_table_policy_gap",
        "database",
        "over_permissive",
        None,
        "the Distributed table over the metric's table has no row policy: reads through it skip "
        "the local table's policy",
        lambda d, r, c: _compiled(c) and _distributed_front(d, r) is not None,
        lambda d, r: replace(K, database=DatabaseKnobs(drop_policy_table=_distributed_front(d, r))),
        feature=lambda d: bool(_facts(d, "distributed_table")),
    ),
    _op(
        "aggregate_small_cohort_release",
        "release",
        "unsafe_release",
        None,
        "the release layer releases every group, small cohorts included (no minimum cohort size)",
        _releases_aggregate,
        lambda d, r: replace(K, release=ReleaseKnobs(min_cohort=1)),
        feature=lambda d: d.policy.release is not None,
    ),
    _op(
        "sample_clause_release_drift",
        "release",
        "unsafe_release",
        None,
        "the release layer releases the result of a SAMPLE query without the sampling disclosure",
        _sampled,
        lambda d, r: replace(K, release=ReleaseKnobs(hide_sampling=True)),
        feature=lambda d: any(m.sample is not None for m in d.policy.metrics.values()),
    ),
    _op(
        "materialized_view_lineage_drop",
        "compiler",
        "semantic_drift",
        None,
        "the compiler rewrites the query onto a materialized view and counts the view's rows "
        "instead of merging its state (the view's lineage to its table is lost)",
        lambda d, r, c: _compiled(c) and _view_for(d, r) is not None,
        lambda d, r: replace(K, compiler=CompilerKnobs(view_rewrite=_view_for(d, r))),
        feature=lambda d: bool(_facts(d, "view_source")),
    ),
    _op(
        "timezone_bucket_drift",
        "compiler",
        "semantic_drift",
        None,
        "the compiler buckets days and bounds windows in UTC instead of the project's zone",
        _zoned,
        lambda d, r: replace(K, compiler=CompilerKnobs(utc_time=True)),
        feature=_clickhouse,
    ),
    _op(
        "uniq_to_count_drift",
        "compiler",
        "semantic_drift",
        None,
        "the compiler lowers uniqExact (distinct users / sessions) to count() (events)",
        _uniq,
        lambda d, r: replace(K, compiler=CompilerKnobs(count_for_uniq=True)),
        feature=_clickhouse,
    ),
]

#: Operator id -> operator, in pipeline order of the layer they break.
OPERATORS: dict[str, Operator] = {op.id: op for op in _OPERATORS}

#: Published operator ids without an operator here (none left: the ClickHouse ones are above).
OTHER_DOMAIN_OPERATORS: tuple[str, ...] = ()


def operator(op_id: str) -> Operator | None:
    return OPERATORS.get(op_id)


def fault_knobs(op_ids: Sequence[str], domain: Domain, req: Request) -> Knobs:
    """The stack's knobs with several faults applied at once (:func:`policystrata.stack.
    pipeline.combine_knobs` of each operator's knobs; an unknown id is a ``KeyError``, two
    faults on one knob a ``KnobConflict``).

    >>> from policystrata.model import load_domain
    >>> from policystrata.ir import parse_ir
    >>> d = load_domain("support_saas")
    >>> req = Request("acme_analyst", parse_ir("ticket_count by region during last_month"))
    >>> k = fault_knobs(["compiler_drops_tenant_predicate", "db_rls_old_ownership_field"], d, req)
    >>> k.compiler.drop_tenant_predicates, k.database.ownership_column is not None
    (True, True)
    """
    return combine_knobs(*(OPERATORS[o].knobs(domain, req) for o in op_ids))
