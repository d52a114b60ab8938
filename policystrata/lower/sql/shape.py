"""Pass ``shape``: row count and order of the result.

``sql_limit(C, N)`` for a literal LIMIT / FETCH FIRST on the root query,
``sql_limit_param(C, Param)`` when it is a parameter, ``sql_limit_expr(C, Text)`` for anything
else; ``sql_offset(C, N)``; ``sql_scope_limit(C, S, N)`` for the literal LIMIT of every scope;
``sql_order_by(C, S, Position, Expr, Direction)`` (asc / desc).

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select id from accounts order by id desc fetch first 5 rows only")
>>> sorted(f.render() for f in r.facts if f.pred in ("sql_limit", "sql_order_by"))
['sql_limit("q", 5)', 'sql_order_by("q", "s0", 1, "id", "desc")']
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.predicate_extract import literal_value
from policystrata.lower.sql.scopes import param_name
from policystrata.sql.adapter import exp


def shape(ctx: Ctx) -> None:
    """Emit LIMIT / OFFSET of the root and ORDER BY of every scope."""
    root = ctx.scopes[0].scope.expression
    limit = root.args.get("limit")
    if limit is not None:
        value = limit.args.get("count") if isinstance(limit, exp.Fetch) else limit.expression
        _emit_count(ctx, "sql_limit", value, limit)
    offset = root.args.get("offset")
    if offset is not None:
        _emit_count(ctx, "sql_offset", offset.expression, offset)
    for info in ctx.scopes:
        limit = info.scope.expression.args.get("limit")
        if limit is not None:
            value = limit.args.get("count") if isinstance(limit, exp.Fetch) else limit.expression
            lit = literal_value(value) if value is not None else None
            if lit is not None and isinstance(lit[1], int) and not isinstance(lit[1], bool):
                ctx.emit("sql_scope_limit", info.id, lit[1], node=limit)
        order = info.scope.expression.args.get("order")
        if order is None:
            continue
        for pos, o in enumerate(order.expressions, start=1):
            expr = o.this if isinstance(o, exp.Ordered) else o
            direction = "desc" if isinstance(o, exp.Ordered) and o.args.get("desc") else "asc"
            ctx.emit("sql_order_by", info.id, pos, expr.sql(dialect=ctx.dialect), direction, node=o)


def _emit_count(ctx: Ctx, pred: str, value: exp.Expr | None, node: exp.Expr) -> None:
    if value is None:
        if pred == "sql_limit":
            ctx.emit("sql_limit_expr", "", node=node)
        return
    lit = literal_value(value)
    if lit is not None and isinstance(lit[1], int) and not isinstance(lit[1], bool):
        ctx.emit(pred, lit[1], node=node)
    elif isinstance(value, exp.Parameter | exp.Placeholder) and pred == "sql_limit":
        ctx.emit("sql_limit_param", param_name(ctx, value), node=node)
    elif pred == "sql_limit":
        ctx.emit("sql_limit_expr", value.sql(dialect=ctx.dialect), node=node)
