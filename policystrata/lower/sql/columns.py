"""Pass ``columns``: every column reference, resolved to the base-table columns it reads.

``sql_column_ref(C, S, Table, Column)`` for each base column a scope references anywhere
(projection, WHERE, JOIN, GROUP BY, ORDER BY...), also through CTE and derived-table columns.
``sql_unresolved_column(C, S, Column)`` when a reference cannot be resolved (ambiguous without
a schema). Resolving also finds which subqueries are correlated.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "with c as (select customer_email e from accounts) select e from c")
>>> for f in r.facts.by_pred("sql_column_ref"): print(f.render())
sql_column_ref("q", "s0", "accounts", "customer_email")
sql_column_ref("q", "s1", "accounts", "customer_email")
"""

from __future__ import annotations

from policystrata.lower.sql.adapter import exp, ident_name
from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.scopes import base_columns, expr_lineage, projection_for, resolve


def columns(ctx: Ctx) -> None:
    """Emit ``sql_column_ref`` / ``sql_unresolved_column`` for every scope."""
    for info in ctx.scopes:
        for col in info.scope.columns:
            if isinstance(col.this, exp.Star):
                continue
            bases = base_columns(ctx, info, col)
            if not bases and not col.args.get("table"):
                proj = projection_for(info, ident_name(col.this))
                if proj is not None and proj is not col:  # ORDER BY / GROUP BY an output alias
                    bases = expr_lineage(ctx, info, proj)
                    if bases or not proj.find(exp.Column):
                        for t, c in sorted(bases):
                            ctx.emit("sql_column_ref", info.id, t, c, node=col)
                        continue
            if not bases and resolve(ctx, info, col) is None:
                # no source owns it; a column of a computed output (count(*) n) resolves but
                # has no base lineage, and that is not "unresolved"
                ctx.emit("sql_unresolved_column", info.id, ident_name(col.this), node=col)
            for t, c in sorted(bases):
                ctx.emit("sql_column_ref", info.id, t, c, node=col)
        node = info.scope.expression
        if isinstance(node, exp.Select):
            for proj in node.expressions:
                if proj.find(exp.Star) is not None:
                    for t, c in sorted(expr_lineage(ctx, info, proj)):
                        ctx.emit("sql_column_ref", info.id, t, c, node=proj)
