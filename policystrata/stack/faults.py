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
>>> "accounts.legacy_tenant_id = 'acme'" in run_stack(d, req, op.knobs(d, req)).sql
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from policystrata.model import Domain, split_column
from policystrata.stack.compiler import CompilerKnobs, plan_joins
from policystrata.stack.database import DatabaseKnobs
from policystrata.stack.grammar import GrammarKnobs
from policystrata.stack.manifest import ManifestKnobs, role_dimensions, role_metrics
from policystrata.stack.pipeline import Knobs, Request, StackRun
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
    metric = _metric(domain, req)
    if metric is None:
        return []
    base = domain.policy.metrics[metric].table
    needed = []
    for dim in [*req.query.dimensions, *(f.dimension for f in req.query.filters)]:
        d = domain.policy.dimensions.get(dim)
        if d is None:
            continue
        table = base if dim == "month" else split_column(d.column)[0]
        needed.append(table)
    return [base, *(j.table for j in plan_joins(domain, base, needed, CompilerKnobs()))]


def _legacy_column(domain: Domain, table: str) -> tuple[str, str] | None:
    tc = domain.tenant_columns().get(table)
    info = domain.schema.tables.get(table)
    if tc is None or info is None:
        return None
    for col in info.columns:
        if col.startswith("legacy_") and col.endswith(tc):
            return tc, col
    return None


def _legacy_table(domain: Domain) -> str | None:
    for table in domain.schema.tables:
        if _legacy_column(domain, table) is not None:
            return table
    return None


def _stale_alias(domain: Domain, req: Request) -> tuple[str, str] | None:
    """(retired alias, its metric) the manifest keeps exposing: an alias of the requested metric
    when it has one, else of another metric the role may use."""
    role = _role(domain, req.principal)
    if role is None:
        return None
    metrics = role_metrics(domain, role)
    target = _metric(domain, req)
    order = ([target] if target in metrics else []) + [m for m in metrics if m != target]
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
    """gross <-> net: the sibling amount column of the metric's aggregate column."""
    metric = _metric(domain, req)
    if metric is None:
        return None
    agg = domain.aggs.get(metric)
    if agg is None:
        return None
    cols = domain.schema.tables[agg.table].columns
    for a, b in (("net_", "gross_"), ("gross_", "net_")):
        if agg.column.startswith(a):
            other = b + agg.column[len(a) :]
            if other in cols:
                return f"{agg.table}.{other}"
    return None


def _fanout_table(domain: Domain, req: Request) -> str | None:
    """A one-to-many sibling of the metric's table (another child of a parent it joins)."""
    metric = _metric(domain, req)
    if metric is None:
        return None
    base = domain.policy.metrics[metric].table
    parents = {fk.ref_table for fk in domain.schema.tables[base].foreign_keys} - {"tenants"}
    for name, info in domain.schema.tables.items():
        if name == base:
            continue
        sibling = any(fk.ref_table in parents for fk in info.foreign_keys)
        # a table that holds another metric's facts fans out the most visibly
        if sibling and any(m.table == name for m in domain.policy.metrics.values()):
            return name
    return None


def _is_fiscal(domain: Domain, req: Request) -> bool:
    tr = req.query.time_range
    return tr is not None and domain.time_ranges().get(tr, ("", "", ""))[2] == "fiscal"


def _has_left_join(run: StackRun) -> bool:
    return "left join" in (run.sql or "")


def _legacy_knobs(domain: Domain, req: Request) -> Knobs:
    table = _legacy_table(domain) or ""
    cols = _legacy_column(domain, table) or ("", "")
    return replace(K, compiler=CompilerKnobs(legacy_tenant_key=cols[1]))


def _ownership_knobs(domain: Domain, req: Request) -> Knobs:
    table = _legacy_table(domain) or ""
    cols = _legacy_column(domain, table) or ("", "")
    return replace(K, database=DatabaseKnobs(ownership_column=(table, cols[0], cols[1])))


def _ownership_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    table = _legacy_table(domain)
    return _compiled(canonical) and table is not None and table in _tables_read(domain, req)


def _missing_policy_knobs(domain: Domain, req: Request) -> Knobs:
    table = domain.policy.metrics[_metric(domain, req) or ""].table
    return replace(K, database=DatabaseKnobs(drop_policy_table=table))


def _swap_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    metric = _metric(domain, req)
    if not _compiled(canonical) or metric is None:
        return False
    return "account_id" in domain.schema.tables[domain.policy.metrics[metric].table].columns


def _distinct_applies(domain: Domain, req: Request, canonical: StackRun) -> bool:
    agg = domain.aggs.get(_metric(domain, req) or "")
    return _compiled(canonical) and agg is not None and agg.distinct


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
) -> Operator:
    return Operator(id, surface, wclass, containment, description, applies, knobs, new, live)


K = Knobs()

_OPERATORS: list[Operator] = [
    _op(
        "stale_metric_alias_manifest",
        "manifest",
        "semantic_drift",
        None,
        "the manifest still exposes a retired metric alias",
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
        lambda d, r, c: _compiled(c) and _legacy_table(d) is not None,
        _legacy_knobs,
    ),
    _op(
        "compiler_swaps_tenant_account_id",
        "compiler",
        "lowering_violation",
        "database",
        "the compiler compares the metric table's account_id with the tenant id",
        _swap_applies,
        lambda d, r: replace(K, compiler=CompilerKnobs(swap_tenant_account=True)),
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
        lambda d, r, c: _compiled(c),
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
    ),
    _op(
        "fanout_join_drift",
        "compiler",
        "semantic_drift",
        None,
        "the compiler joins a one-to-many table nothing needs, multiplying the metric's rows",
        lambda d, r, c: _compiled(c) and _fanout_table(d, r) is not None,
        lambda d, r: replace(K, compiler=CompilerKnobs(fanout_table=_fanout_table(d, r))),
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
    ),
    _op(
        "fiscal_calendar_mismatch",
        "compiler",
        "semantic_drift",
        None,
        "the compiler bounds a fiscal time range by calendar months",
        lambda d, r, c: _compiled(c) and _is_fiscal(d, r),
        lambda d, r: replace(K, compiler=CompilerKnobs(calendar_for_fiscal=True)),
    ),
    _op(
        "cost_estimate_ignores_expansion",
        "compiler",
        "lowering_violation",
        None,
        "the compiler's cost estimate leaves out the dimensions' (group-by expansion) cost",
        lambda d, r, c: _compiled(c) and bool(r.query.dimensions),
        lambda d, r: replace(K, compiler=CompilerKnobs(cost_ignores_dimensions=True)),
    ),
]

#: Operator id -> operator, in pipeline order of the layer they break.
OPERATORS: dict[str, Operator] = {op.id: op for op in _OPERATORS}

#: FORMATS.md operator ids that target another domain's features (ClickHouse-style analytics).
OTHER_DOMAIN_OPERATORS = (
    "clickhouse_row_policy_missing_project_filter",
    "clickhouse_row_policy_readonly_assumption_violation",
    "distributed_table_policy_gap",
    "aggregate_small_cohort_release",
    "sample_clause_release_drift",
    "materialized_view_lineage_drop",
    "timezone_bucket_drift",
    "uniq_to_count_drift",
)


def operator(op_id: str) -> Operator | None:
    return OPERATORS.get(op_id)
