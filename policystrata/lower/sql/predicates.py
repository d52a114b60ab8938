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
``sql_literal_text(C, Value, Text)`` for a literal whose value compares equal to a text key
under the column's type: an integer literal and its decimal text (``c_custkey = 4821`` matches
tenant ``'4821'`` on an integer column), a UUID literal on a uuid column and its canonical
lower-case text.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select 1 from accounts a where a.tenant_id = $1 or a.region in ('eu')")
>>> for f in r.facts.by_pred("sql_pred"): print(f.render())
sql_pred("q", "s0", "a", "tenant_id", "=", "param", "$1", "possible")
sql_pred("q", "s0", "a", "region", "in", "literal", "eu", "possible")
"""

from __future__ import annotations

import re
from collections.abc import Callable

from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import POSSIBLE, extract_predicates
from policystrata.lower.sql.scopes import base_columns, param_name, resolve
from policystrata.sql.adapter import exp, ident_name


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
        elif p.vkind == "literal":
            text = literal_text(value)
            if text is not None and (isinstance(value, int) or _uuid_column(ctx, info, p.column)):
                ctx.emit("sql_literal_text", value, text, node=p.node)
        ctx.emit("sql_pred", info.id, alias, column, p.op, p.vkind, value, strength, node=p.node)
    return equalities


_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def _uuid_column(ctx: Ctx, info: ScopeInfo, column: exp.Column) -> bool:
    """The column is of type uuid per the schema (a UUID literal then compares case-blind)."""
    types = {
        (ctx.schema_columns or {}).get(t, {}).get(c, "") for t, c in base_columns(ctx, info, column)
    }
    return types == {"uuid"}


def literal_text(value: object) -> str | None:
    """The text key a typed literal equals when compared with a key column of its type: an
    integer's decimal text, a UUID's canonical lower-case form (``None`` when it is its own
    text already).

    >>> literal_text(4821), literal_text("4A7C07F8-1B1E-4F3E-9A8B-0C2D3E4F5A6B"), literal_text("x")
    ('4821', '4a7c07f8-1b1e-4f3e-9a8b-0c2d3e4f5a6b', None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _UUID.match(value):
        hexes = value.replace("-", "").lower()
        canon = f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
        return canon if canon != value else None
    return None


def _scope_id_of(ctx: Ctx, node: exp.Expr) -> str:
    target = node.this if isinstance(node, exp.Subquery) else node
    for s in ctx.scopes:
        if s.scope.expression is target or s.scope.expression is node:
            return s.id
    return "?"
