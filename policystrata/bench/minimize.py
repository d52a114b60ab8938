"""Witness minimization: delta-debug a case's request while the violation survives.

Reductions, each re-derived with the rules (stack re-run with the same fault, then the engine):
drop dimensions, drop filters, lower the limit, shorten the time range, swap to a simpler
(cheaper) metric. All reductions are tried at once first (most violations survive that), then one
at a time, greedily, until none applies. The minimized case's witness keeps only the proof's
supporting facts; the reduction is reported as case facts before -> supporting facts after.

>>> from policystrata.ir import parse_ir
>>> q = parse_ir("ticket_count by region, plan during fiscal_ytd where plan = 'pro' limit 500")
>>> spans = {"last_7_days": 7, "fiscal_ytd": 147}
>>> for r in reductions(q, ["ticket_count", "net_revenue"], spans):
...     print(r.label)
drop dimension region
drop dimension plan
drop filter plan
limit 10
during last_7_days
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from policystrata.ir import SemanticQuery
from policystrata.model import Domain

Signature = tuple[str, str, str]  # (surface, class, check)


@dataclass(frozen=True)
class Reduction:
    label: str
    apply: Callable[[SemanticQuery], SemanticQuery]


@dataclass
class Minimized:
    ir_before: str
    ir_after: str
    steps: list[str]
    evaluations: int


def _without_dim(dim: str) -> Callable[[SemanticQuery], SemanticQuery]:
    return lambda q: q.model_copy(update={"dimensions": tuple(d for d in q.dimensions if d != dim)})


def _without_filter(i: int) -> Callable[[SemanticQuery], SemanticQuery]:
    return lambda q: q.model_copy(update={"filters": q.filters[:i] + q.filters[i + 1 :]})


def _with_time_range(label: str) -> Callable[[SemanticQuery], SemanticQuery]:
    return lambda q: q.model_copy(update={"time_range": label})


def _with_metric(metric: str) -> Callable[[SemanticQuery], SemanticQuery]:
    return lambda q: q.model_copy(update={"metric": metric})


def reductions(
    query: SemanticQuery, metrics_by_cost: list[str], spans: dict[str, int]
) -> list[Reduction]:
    """The single-step reductions that apply to ``query`` (in the order they are tried)."""
    out = [Reduction(f"drop dimension {d}", _without_dim(d)) for d in query.dimensions]
    out += [
        Reduction(f"drop filter {f.dimension}", _without_filter(i))
        for i, f in enumerate(query.filters)
    ]
    if query.limit is None or query.limit > 10:
        out.append(Reduction("limit 10", lambda q: q.model_copy(update={"limit": 10})))
    current = spans.get(query.time_range or "")
    if current is not None:
        shorter = sorted((s, label) for label, s in spans.items() if s < current)
        if shorter:
            label = shorter[0][1]
            out.append(Reduction(f"during {label}", _with_time_range(label)))
    if query.metric in metrics_by_cost:
        cheaper = metrics_by_cost[: metrics_by_cost.index(query.metric)]
    else:
        cheaper = metrics_by_cost[:1]
    if cheaper:
        out.append(Reduction(f"metric {cheaper[0]}", _with_metric(cheaper[0])))
    return out


def domain_orders(domain: Domain, principal: str | None = None) -> tuple[list[str], dict[str, int]]:
    """Metrics by (cost, name) and each time range's span in days; with a principal, only what
    its role may use (a reduction to a forbidden name would change the case's verdict anyway)."""
    pol = domain.policy
    p = pol.principals.get(principal or "")
    role = pol.roles.get(p.role) if p is not None else None
    metrics = sorted(pol.metrics, key=lambda m: (pol.metrics[m].cost, m))
    spans = {
        label: (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days
        for label, (start, end, _cal) in domain.time_ranges().items()
    }
    if role is not None:
        metrics = [m for m in metrics if m in role.allowed_metrics] or metrics
        spans = {k: v for k, v in spans.items() if k in role.allowed_time_ranges} or spans
    return metrics, spans


def minimize_query(
    domain: Domain,
    query: SemanticQuery,
    survives: Callable[[SemanticQuery], bool],
    budget: int = 24,
    principal: str | None = None,
    orders: tuple[list[str], dict[str, int]] | None = None,
) -> Minimized:
    """Delta debugging of ``query`` under ``survives`` (the violation still derives): all
    reductions at once, then all but the metric swap, then all but the metric and time range
    changes (the structural ones), then one at a time, greedily. ``orders`` is
    :func:`domain_orders` for ``principal``, when the caller already has it."""
    metrics, spans = orders if orders is not None else domain_orders(domain, principal)
    current = query
    steps: list[str] = []
    evaluations = 0
    options = reductions(current, metrics, spans)
    tiers = [
        options,
        [r for r in options if not r.label.startswith("metric ")],
        [r for r in options if not r.label.startswith(("metric ", "during "))],
    ]
    tried: list[list[str]] = []
    for tier in tiers:
        labels = [r.label for r in tier]
        if len(tier) < 2 or labels in tried:
            continue
        tried.append(labels)
        candidate = current
        for r in tier:
            candidate = r.apply(candidate)
        evaluations += 1
        if survives(candidate):
            current, steps = candidate, labels
            break
    changed = True
    while changed and evaluations < budget:
        changed = False
        for r in reductions(current, metrics, spans):
            if evaluations >= budget:
                break
            candidate = r.apply(current)
            if candidate == current:
                continue
            evaluations += 1
            if survives(candidate):
                current, changed = candidate, True
                steps.append(r.label)
                break
    return Minimized(query.to_text(), current.to_text(), steps, evaluations)
