"""Pass ``predicates``: WHERE and HAVING predicates per scope (ON predicates come from the
``joins`` pass through the same :func:`emit_condition`).

``sql_pred(C, S, Alias, Column, Op, VKind, Value, Strength)``: Alias is the source alias in
scope S the column belongs to (``?`` when it cannot be resolved); Op is ``= != < <= > >= in
not_in like not_like ilike not_ilike is_null is_not_null``; VKind is ``literal`` (typed value),
``param`` (the parameter name: ``$1``, ``tenant`` for ``:tenant`` / ``%(tenant)s``, ``$n`` for
the n-th anonymous ``?`` / ``%s``), ``setting`` (``current_setting('x')`` -> ``x``), ``column``
(``Alias.Column``), ``subquery`` (the subquery's scope id), ``null`` or ``expr`` (SQL text);
Strength is ``guaranteed`` or ``possible`` (see ``predicate_extract``).
``sql_col_eq(C, S, A1, Col1, A2, Col2, Strength)`` for each equality between two columns.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select 1 from accounts a where a.tenant_id = $1 or a.region in ('eu')")
>>> for f in r.facts.by_pred("sql_pred"): print(f.render())
sql_pred("q", "s0", "a", "tenant_id", "=", "param", "$1", "possible")
sql_pred("q", "s0", "a", "region", "in", "literal", "eu", "possible")
"""

from __future__ import annotations

from collections.abc import Callable

from policystrata.lower.sql.adapter import exp, ident_name
from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import POSSIBLE, extract_predicates
from policystrata.lower.sql.scopes import param_name, resolve


def predicates(ctx: Ctx) -> None:
    """Emit the WHERE and HAVING predicates of every SELECT scope."""
    for info in ctx.scopes:
        node = info.scope.expression
        if not isinstance(node, exp.Select):
            continue
        where = node.args.get("where")
        if where is not None:
            emit_condition(ctx, info, where.this)
        having = node.args.get("having")
        if having is not None:
            emit_condition(ctx, info, having.this)


def emit_condition(
    ctx: Ctx,
    info: ScopeInfo,
    cond: exp.Expr,
    weaken: Callable[[str], bool] | None = None,
) -> list[tuple[str, str, str, str, str]]:
    """Lower one boolean condition of scope ``info``; ``weaken(alias)`` says whether
    predicates on that alias are only possible (e.g. the preserved side of an outer join's ON).
    Returns the column equalities found as ``(alias1, col1, alias2, col2, strength)``, with the
    strength they have in ``cond`` itself (before weakening)."""
    equalities: list[tuple[str, str, str, str, str]] = []
    for p in extract_predicates(cond, param_name=lambda n: param_name(ctx, n), dialect=ctx.dialect):
        hit = resolve(ctx, info, p.column)
        alias = hit[0] if hit else "?"
        column = ident_name(p.column.this)
        strength = POSSIBLE if weaken is not None and weaken(alias) else p.strength
        value = p.value
        if p.vkind == "column" and isinstance(p.value_node, exp.Column):
            other = resolve(ctx, info, p.value_node)
            other_alias = other[0] if other else "?"
            value = f"{other_alias}.{ident_name(p.value_node.this)}"
            if weaken is not None and weaken(other_alias):
                strength = POSSIBLE
            if p.op == "=":
                ctx.emit(
                    "sql_col_eq",
                    info.id,
                    alias,
                    column,
                    other_alias,
                    ident_name(p.value_node.this),
                    strength,
                    node=p.node,
                )
                other_col = ident_name(p.value_node.this)
                equalities.append((alias, column, other_alias, other_col, p.strength))
        elif p.vkind == "subquery" and p.value_node is not None:
            value = _scope_id_of(ctx, p.value_node)
        ctx.emit("sql_pred", info.id, alias, column, p.op, p.vkind, value, strength, node=p.node)
    return equalities


def _scope_id_of(ctx: Ctx, node: exp.Expr) -> str:
    target = node.this if isinstance(node, exp.Subquery) else node
    for s in ctx.scopes:
        if s.scope.expression is target or s.scope.expression is node:
            return s.id
    return "?"
