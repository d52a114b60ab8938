"""Pass ``outputs``: output columns and their lineage to base columns.

``sql_output_name(C, Position, Name)`` for each root output column (1-based);
``sql_output(C, Name, Table, Column)`` for each base column a root output is computed from, also
through aliases, CTEs, derived tables, scalar subqueries and UNION branches (``*`` when a star
cannot be expanded without a schema); ``sql_scope_output(C, S, Name, Table, Column)`` the same
for every scope; ``sql_aggregated(C, S)`` when a scope aggregates (GROUP BY or an aggregate in
its select list).

>>> from policystrata.lower.sql import lower_sql
>>> q = "select x.e as mail from (select a.customer_email e from accounts a) x"
>>> [f.render() for f in lower_sql("q", q).facts.by_pred("sql_output")]
['sql_output("q", "mail", "accounts", "customer_email")']
"""

from __future__ import annotations

from policystrata.lower.sql.adapter import exp
from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.scopes import lineage, output_names, projection_for


def outputs(ctx: Ctx) -> None:
    """Emit output names and lineage for the root and every scope."""
    for info in ctx.scopes:
        names = output_names(ctx, info)
        for pos, name in enumerate(names, start=1):
            proj = projection_for(info, name)
            bases = sorted(lineage(ctx, info, name)) if name != "*" else []
            if info.kind == "root":
                ctx.emit("sql_output_name", pos, name, node=proj)
                for t, c in bases:
                    ctx.emit("sql_output", name, t, c, node=proj)
            for t, c in bases:
                ctx.emit("sql_scope_output", info.id, name, t, c, node=proj)
        node = info.scope.expression
        if isinstance(node, exp.Select) and (
            node.args.get("group") is not None
            or any(
                a.find_ancestor(exp.Query) is node
                for p in node.expressions
                for a in p.find_all(exp.AggFunc)
            )
        ):
            ctx.emit("sql_aggregated", info.id, node=node)
