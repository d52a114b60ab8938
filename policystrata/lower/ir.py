"""SemanticQuery -> ``ir_*`` case facts (``rules/decl_case.dl``).

Names are lowered as written (an alias stays an alias, an unknown name stays unknown): the
rules decide what they mean. ``ir_cost`` is the canonical cost of the query: metric cost +
dimension costs + ``max(1, limit // 100)`` (no limit counts as 1), where an alias costs what its
metric costs and an unknown name costs 0. An ``in`` filter yields one ``ir_filter`` per value.
The ``case`` fact itself is the caller's (the case identity pass).

>>> from policystrata.ir import parse_ir
>>> from policystrata.model import load_domain
>>> q = parse_ir("ticket_count by region during last_month where plan in ('pro', 'x') limit 300")
>>> print(lower_ir("c1", q, load_domain("support_saas")).to_lines(), end="")
ir_cost("c1", 45)
ir_dimension("c1", "region")
ir_filter("c1", "plan", "in", "pro")
ir_filter("c1", "plan", "in", "x")
ir_limit("c1", 300)
ir_metric("c1", "ticket_count")
ir_present("c1")
ir_time_range("c1", "last_month")
"""

from __future__ import annotations

from policystrata.facts import FactSet, Provenance
from policystrata.ir.query import SemanticQuery
from policystrata.model.domain import Domain


def ir_cost(query: SemanticQuery, domain: Domain) -> int:
    """metric cost + dimension costs + max(1, limit // 100); unknown names cost 0.

    >>> from policystrata.ir import parse_ir
    >>> from policystrata.model import load_domain
    >>> ir_cost(parse_ir("bookings by region, plan, month limit 1000"), load_domain("support_saas"))
    102
    """
    return domain.policy.query_cost(query.metric, list(query.dimensions), query.limit)


def lower_ir(
    case_id: str, query: SemanticQuery, domain: Domain, prov: Provenance | None = None
) -> FactSet:
    """The ``ir_*`` facts of one case; every fact carries ``prov`` (default: the IR text)."""
    p = prov if prov is not None else Provenance("ir", snippet=query.to_text())
    fs = FactSet()
    fs.add("ir_present", case_id, prov=p)
    fs.add("ir_metric", case_id, query.metric, prov=p)
    for dim in query.dimensions:
        fs.add("ir_dimension", case_id, dim, prov=p)
    for f in query.filters:
        for value in f.values:
            fs.add("ir_filter", case_id, f.dimension, f.op, value, prov=p)
    if query.time_range is not None:
        fs.add("ir_time_range", case_id, query.time_range, prov=p)
    if query.grain is not None:
        fs.add("ir_grain", case_id, query.grain, prov=p)
    if query.limit is not None:
        fs.add("ir_limit", case_id, query.limit, prov=p)
    fs.add("ir_cost", case_id, ir_cost(query, domain), prov=p)
    return fs


__all__ = ["ir_cost", "lower_ir"]
