"""Validator layer: an application-style authorizer (its own code, not the rules).

It decides allow/deny for a principal's semantic query and, on allow, emits the obligations its
contract lists for the later layers: the tenant scope and the row and cost budgets. The artifact
is ``{"decision": ..., "obligations": [...]}``; the reasons of a denial are kept apart (they are
the layer's log, not its output).

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> d = load_domain("support_saas")
>>> v = authorize(d, "acme_analyst", parse_ir("ticket_count by region during last_month limit 100"))
>>> v.decision, v.artifact()["obligations"][0]
('allow', {'obligation': 'cost_budget', 'value': 80})
>>> authorize(d, "acme_analyst", parse_ir("gross_revenue during last_month")).reasons
['metric_not_allowed: gross_revenue']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policystrata.facts import Const
from policystrata.ir import SemanticQuery
from policystrata.model import Domain


@dataclass(frozen=True)
class ValidatorKnobs:
    """How a (possibly faulty) validator deviates from the canonical one."""

    ignore_sensitive: bool = False  # treats sensitive columns as ungoverned (no role check)
    deny_dimension: str | None = None  # falsely denies any query grouped by this dimension


@dataclass
class Verdict:
    decision: str
    obligations: list[tuple[str, Const]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def artifact(self) -> dict[str, Any]:
        obligations = [
            {"obligation": o, "value": v} for o, v in sorted(set(self.obligations), key=str)
        ]
        return {"decision": self.decision, "obligations": obligations}


def query_cost(domain: Domain, query: SemanticQuery) -> int:
    """The policy's cost of the request (the validator's budget check reads it)."""
    return domain.policy.query_cost(query.metric, list(query.dimensions), query.limit)


def authorize(
    domain: Domain, principal: str, query: SemanticQuery, knobs: ValidatorKnobs | None = None
) -> Verdict:
    """Allow or deny ``query`` for ``principal``; obligations on allow."""
    knobs = knobs or ValidatorKnobs()
    pol = domain.policy
    reasons: list[str] = []
    p = pol.principals.get(principal)
    role = pol.roles.get(p.role) if p is not None else None
    if p is None or role is None:
        return Verdict("deny", reasons=[f"unknown_principal: {principal}"])
    role_name = p.role

    metric = pol.resolve_metric(query.metric)
    if metric is None:
        reasons.append(f"unknown_metric: {query.metric}")
    else:
        m = pol.metrics[metric]
        admits = m.allowed_roles is None or role_name in m.allowed_roles
        if metric not in role.allowed_metrics or not admits:
            reasons.append(f"metric_not_allowed: {metric}")

    def governed(dim: str) -> bool:
        d = pol.dimensions.get(dim)
        return not (knobs.ignore_sensitive and d is not None and d.sensitive)

    def dimension_ok(dim: str) -> bool:
        d = pol.dimensions.get(dim)
        if d is None:
            return False
        admits = d.allowed_roles is None or role_name in d.allowed_roles
        return dim in role.allowed_dimensions and admits

    for dim in query.dimensions:
        if dim not in pol.dimensions:
            reasons.append(f"unknown_dimension: {dim}")
        elif (governed(dim) and not dimension_ok(dim)) or dim == knobs.deny_dimension:
            reasons.append(f"dimension_not_allowed: {dim}")
    for flt in query.filters:
        if governed(flt.dimension) and not dimension_ok(flt.dimension):
            reasons.append(f"filter_not_allowed: {flt.dimension}")

    labels = domain.time_range_labels()
    if query.time_range is not None:
        if query.time_range not in labels:
            reasons.append(f"unknown_time_range: {query.time_range}")
        elif query.time_range not in role.allowed_time_ranges:
            reasons.append(f"time_range_not_allowed: {query.time_range}")
    if role.max_rows is not None and query.limit is not None and query.limit > role.max_rows:
        reasons.append(f"row_budget_exceeded: {query.limit}")
    cost = query_cost(domain, query)
    if role.max_cost is not None and cost > role.max_cost:
        reasons.append(f"cost_budget_exceeded: {cost}")
    if reasons:
        return Verdict("deny", reasons=reasons)

    obligations: list[tuple[str, Const]] = [(("tenant_scope"), t) for t in p.tenant_ids]
    if role.max_rows is not None:
        obligations.append(("row_budget", role.max_rows))
    if role.max_cost is not None:
        obligations.append(("cost_budget", role.max_cost))
    return Verdict("allow", obligations=obligations)
