"""Pass ``outputs``: output columns, their lineage to base columns, and what makes a scope's
rows unique.

``sql_output_name(C, Position, Name)`` for each root output column (1-based);
``sql_output(C, Name, Table, Column)`` for each base column a root output is computed from, also
through aliases, CTEs, derived tables, scalar subqueries and UNION branches (``*`` when a star
cannot be expanded without a schema); ``sql_scope_output(C, S, Name, Table, Column)`` the same
for every scope; ``sql_output_column(C, S, Name, Alias, Column)`` when output Name of a SELECT
scope is a source column passed through unchanged (a bare column, renamed or not, or a star
expansion); ``sql_unique_output(C, S, Name)`` when no two rows of the scope share output Name
(it is the only GROUP BY / DISTINCT ON key, the only column of a SELECT DISTINCT, or the scope
returns at most one row); ``sql_group_key(C, S, Name)`` for each output of a grouping (or
DISTINCT ON) whose every key is an output column (the rows are unique on them together);
``sql_single_row(C, S)`` when the scope returns at most one row (an
aggregate without GROUP BY, or LIMIT 1); ``sql_set_returning(C, S)`` when its select list
calls a set-returning function; ``sql_aggregated(C, S)`` when a scope aggregates
(GROUP BY or an aggregate in its select list; window functions do not aggregate);
``sql_window(C, S)`` when it computes a window function (a value over other rows).

>>> from policystrata.lower.sql import lower_sql
>>> q = "select x.e as mail from (select a.customer_email e from accounts a) x"
>>> [f.render() for f in lower_sql("q", q).facts.by_pred("sql_output")]
['sql_output("q", "mail", "accounts", "customer_email")']
>>> q = "select l.account_id, l.plan from (select distinct on (s.account_id) s.account_id, s.plan "
>>> q += "from subscriptions s order by s.account_id, s.started_on desc) l"
>>> for f in lower_sql("q", q).facts.sorted():
...     if f.pred in ("sql_output_column", "sql_unique_output", "sql_group_key"):
...         print(f.render())
sql_group_key("q", "s1", "account_id")
sql_output_column("q", "s0", "account_id", "l", "account_id")
sql_output_column("q", "s0", "plan", "l", "plan")
sql_output_column("q", "s1", "account_id", "s", "account_id")
sql_output_column("q", "s1", "plan", "s", "plan")
sql_unique_output("q", "s1", "account_id")
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import literal_value
from policystrata.lower.sql.scopes import (
    lineage,
    output_names,
    projection_for,
    projection_name,
    resolve,
    source_names,
)
from policystrata.sql.adapter import exp, function_name, ident_name, is_call

#: Functions that return a set of rows: in a select list they repeat the scope's rows, so the
#: scope's rows are not unique on anything.
SET_RETURNING: frozenset[str] = frozenset(
    {
        "generate_series",
        "generate_subscripts",
        "unnest",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "json_each",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_object_keys",
        "jsonb_object_keys",
        "regexp_matches",
        "regexp_split_to_table",
        "string_to_table",
        "explode",
    }
)


def outputs(ctx: Ctx) -> None:
    """Emit output names, lineage, pass-through columns and uniqueness for every scope."""
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
        if not isinstance(node, exp.Select):
            continue
        if is_aggregated(node):
            ctx.emit("sql_aggregated", info.id, node=node)
        window = next(
            (w for w in node.find_all(exp.Window) if w.find_ancestor(exp.Query) is node), None
        )
        if window is not None:
            ctx.emit("sql_window", info.id, node=window)
        columns = _output_columns(ctx, info, node)
        for name, alias, col, at in columns:
            ctx.emit("sql_output_column", info.id, name, alias, col, node=at)
        _uniqueness(ctx, info, node, [n for n in names if n != "*"])


def is_aggregated(node: exp.Select) -> bool:
    """GROUP BY, or an aggregate of this SELECT in its select list (not inside a window
    function or a nested query)."""
    if node.args.get("group") is not None:
        return True
    for p in node.expressions:
        for a in p.find_all(exp.AggFunc):
            if a.find_ancestor(exp.Query) is node and a.find_ancestor(exp.Window) is None:
                return True
    return False


def _bare_column(node: exp.Expr) -> exp.Column | None:
    """The column a select-list item passes through unchanged (aliases and parentheses aside)."""
    if isinstance(node, exp.Alias):
        node = node.this
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return node
    return None


def _output_columns(
    ctx: Ctx, info: ScopeInfo, node: exp.Select
) -> list[tuple[str, str, str, exp.Expr]]:
    """(output name, source alias, source column, node) for each pass-through output."""
    out: list[tuple[str, str, str, exp.Expr]] = []
    sources = info.scope.selected_sources
    for proj in node.expressions:
        star: exp.Expr | None = proj if isinstance(proj, exp.Star) else None
        if isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star):
            star = proj
        if star is not None:
            qual = ident_name(star.args.get("table")) if isinstance(star, exp.Column) else ""
            for alias, (_, src) in sources.items():
                if qual and alias != qual:
                    continue
                for cname in source_names(ctx, src):
                    if cname != "*":
                        out.append((cname, alias, cname, proj))
            continue
        col = _bare_column(proj)
        if col is None:
            continue
        hit = resolve(ctx, info, col)
        if hit is None or hit[1] is not info:
            continue  # unresolved, or a correlated reference to an enclosing scope
        out.append((projection_name(proj), hit[0], ident_name(col.this), proj))
    return out


def _is_single_row(node: exp.Select) -> bool:
    limit = node.args.get("limit")
    if limit is not None:
        value = limit.args.get("count") if isinstance(limit, exp.Fetch) else limit.expression
        lit = literal_value(value) if value is not None else None
        count = lit[1] if lit is not None else None
        if isinstance(count, int) and not isinstance(count, bool) and count <= 1:
            return True
    return node.args.get("group") is None and is_aggregated(node)


def _uniqueness(ctx: Ctx, info: ScopeInfo, node: exp.Select, names: list[str]) -> None:
    for p in node.expressions:
        for call in p.walk():
            if is_call(call) and function_name(call) in SET_RETURNING:
                ctx.emit("sql_set_returning", info.id, node=call)
                return  # a set-returning function repeats rows: nothing is unique
    if _is_single_row(node):
        ctx.emit("sql_single_row", info.id, node=node)
        for name in dict.fromkeys(names):
            ctx.emit("sql_unique_output", info.id, name, node=projection_for(info, name))
        return
    keys: list[exp.Expr] = []
    group = node.args.get("group")
    distinct = node.args.get("distinct")
    if group is not None:
        if len(group.expressions) == 1 and not any(
            group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "totals")
        ):
            keys = list(group.expressions)
    elif distinct is not None:
        on = distinct.args.get("on")
        if on is None:
            if len(node.expressions) == 1 and len(names) == 1:
                proj = node.expressions[0]
                if not isinstance(proj, exp.Star) and proj.find(exp.Star) is None:
                    ctx.emit("sql_unique_output", info.id, names[0], node=proj)
            return
        keys = list(on.expressions) if isinstance(on, exp.Tuple) else [on]
    all_keys: list[exp.Expr] = keys
    if group is not None:
        all_keys = list(group.expressions)
    _group_keys(ctx, info, node, all_keys, group)
    if len(keys) != 1 or isinstance(keys[0], exp.Rollup | exp.Cube | exp.GroupingSets):
        return
    key = keys[0]
    for pos, proj in enumerate(node.expressions, start=1):
        if _same_key(ctx, info, node, key, proj, pos):
            ctx.emit("sql_unique_output", info.id, projection_name(proj), node=proj)


def _group_keys(
    ctx: Ctx, info: ScopeInfo, node: exp.Select, keys: list[exp.Expr], group: exp.Expr | None
) -> None:
    """``sql_group_key`` for each output of a grouping (or DISTINCT ON) whose every key is an
    output column: the scope's rows are unique on those outputs together."""
    if not keys or (
        group is not None
        and any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "totals"))
    ):
        return
    names: list[str] = []
    for key in keys:
        hit = next(
            (
                projection_name(proj)
                for pos, proj in enumerate(node.expressions, start=1)
                if _same_key(ctx, info, node, key, proj, pos)
            ),
            None,
        )
        if hit is None:
            return
        names.append(hit)
    for name in dict.fromkeys(names):
        ctx.emit("sql_group_key", info.id, name, node=projection_for(info, name))


def _same_key(
    ctx: Ctx, info: ScopeInfo, node: exp.Select, key: exp.Expr, proj: exp.Expr, pos: int
) -> bool:
    """Is select-list item ``proj`` (at ``pos``) the grouping / DISTINCT ON key ``key``?"""
    if isinstance(key, exp.Literal) and not key.is_string:
        return str(key.this) == str(pos)
    inner = proj.this if isinstance(proj, exp.Alias) else proj
    if (
        isinstance(key, exp.Column)
        and not key.args.get("table")
        and isinstance(proj, exp.Alias)
        and ident_name(proj.args.get("alias")) == ident_name(key.this)
        and resolve(ctx, info, key) is None
    ):
        return True  # GROUP BY an output alias (PostgreSQL prefers an input column of that name)
    a, b = _bare_column(key), _bare_column(inner)
    if a is not None and b is not None:
        ra, rb = resolve(ctx, info, a), resolve(ctx, info, b)
        return (
            ra is not None
            and rb is not None
            and ra[0] == rb[0]
            and ra[1] is rb[1]
            and ident_name(a.this) == ident_name(b.this)
        )
    return inner == key
