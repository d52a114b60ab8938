"""Pass ``subqueries``: EXISTS and correlation.

``sql_exists(C, S, Child, Negated, Correlated, Strength)`` for each ``[NOT] EXISTS`` in scope
S; ``sql_uncorrelated_exists(C, S, Child)`` when the subquery references nothing of the outer
query (its filters then say nothing about the outer rows); ``sql_correlated(C, Child)`` for
every scope that references an enclosing scope's columns.

>>> from policystrata.lower.sql import lower_sql
>>> q = "select 1 from accounts a where exists (select 1 from tenants t where t.id = 'acme')"
>>> [f.render() for f in lower_sql("q", q).facts.by_pred("sql_uncorrelated_exists")]
['sql_uncorrelated_exists("q", "s0", "s1")']
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.predicate_extract import POSSIBLE, position_strength
from policystrata.sql.adapter import exp


def subqueries(ctx: Ctx) -> None:
    """Emit EXISTS and correlation facts (run after ``columns``, which resolves references)."""
    for sid in sorted(ctx.correlated, key=lambda s: int(s[1:])):
        ctx.emit("sql_correlated", sid)
    for info in ctx.scopes:
        for sub in info.scope.subquery_scopes:
            child = ctx.info(sub)
            node = sub.expression
            parent = node.parent
            if isinstance(parent, exp.Subquery):
                parent = parent.parent
            if not isinstance(parent, exp.Exists):
                continue
            negated, strength = False, POSSIBLE
            owner = info.scope.expression
            for clause in ("where", "having"):
                c = owner.args.get(clause) if isinstance(owner, exp.Select) else None
                if c is not None and _inside(parent, c.this):
                    negated, strength = position_strength(c.this, parent)
            correlated = child.id in ctx.correlated
            ctx.emit("sql_exists", info.id, child.id, negated, correlated, strength, node=parent)
            if not correlated:
                ctx.emit("sql_uncorrelated_exists", info.id, child.id, node=parent)


def _inside(node: exp.Expr, root: exp.Expr) -> bool:
    p: exp.Expr | None = node
    while p is not None:
        if p is root:
            return True
        p = p.parent
    return False
