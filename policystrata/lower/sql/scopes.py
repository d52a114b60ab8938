"""Pass ``build_scopes``: the query's scopes, plus column resolution and base-column lineage
used by every later pass.

Scopes come from sqlglot's scope analysis; ids are ``s0`` for the root, then ``s1``, ``s2``…
in the order the scopes start in the text. Kinds: ``root``, ``cte``, ``derived`` (a subquery
in FROM/JOIN, also LATERAL), ``subquery`` (in WHERE/SELECT/HAVING: EXISTS, IN, scalar),
``union_branch`` (each branch of UNION / INTERSECT / EXCEPT), ``udtf``.

>>> from policystrata.lower.sql import lower_sql
>>> q = "with c as (select * from accounts) select c.id from c where exists (select 1 from t)"
>>> facts = lower_sql("q", q).facts
>>> for f in facts.sorted():
...     if f.pred.startswith("sql_scope") and f.pred != "sql_scope_output": print(f.render())
sql_scope("q", "s0", "root")
sql_scope("q", "s1", "cte")
sql_scope("q", "s2", "subquery")
sql_scope_name("q", "s1", "c")
sql_scope_parent("q", "s1", "s0")
sql_scope_parent("q", "s2", "s0")
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx, Halt, ScopeInfo
from policystrata.sql.adapter import (
    Scope,
    ScopeType,
    anonymous_placeholders,
    branch_scopes,
    build_scope,
    exp,
    ident_name,
    table_name,
)

_KIND = {
    ScopeType.ROOT: "root",
    ScopeType.CTE: "cte",
    ScopeType.DERIVED_TABLE: "derived",
    ScopeType.SUBQUERY: "subquery",
    ScopeType.SET_OPERATION: "union_branch",
    ScopeType.UDTF: "udtf",
}

Base = tuple[str, str]  # (table, column)


def build_scopes(ctx: Ctx) -> None:
    """Build the scope tree, number the scopes and emit ``sql_scope``, ``sql_scope_parent``,
    ``sql_scope_name``. Scope analysis that raises is an ``unanalysable_sql`` finding."""
    assert ctx.tree is not None
    try:
        root = build_scope(ctx.tree)
        if root is None:
            raise ValueError("no query scope")
        scopes = list(root.traverse())
    except Exception as e:  # sqlglot raises many types here; all mean "cannot analyse"
        ctx.finding("unanalysable_sql", f"scope analysis failed: {e}", ctx.tree)
        raise Halt from None

    def order(s: Scope) -> tuple[int, int]:
        if s is root:
            return (-1, 0)
        span = ctx.span(s.expression) or (len(ctx.text), len(ctx.text))
        return (span[0], -span[1])

    scopes.sort(key=order)
    for n, s in enumerate(scopes):
        kind = "root" if s is root else _KIND.get(s.scope_type, str(s.scope_type).lower())
        info = ScopeInfo(f"s{n}", kind, None, s, _scope_name(s))
        ctx.scopes.append(info)
        ctx.scope_of[id(s)] = info
    for info in ctx.scopes:
        parent = info.scope.parent
        if parent is not None and id(parent) in ctx.scope_of:
            info.parent = ctx.scope_of[id(parent)].id
    for info in ctx.scopes:
        node = info.scope.expression
        ctx.emit("sql_scope", info.id, info.kind, node=node)
        if info.parent is not None:
            ctx.emit("sql_scope_parent", info.id, info.parent, node=node)
        if info.name:
            ctx.emit("sql_scope_name", info.id, info.name, node=node)
    _number_params(ctx)


def _scope_name(s: Scope) -> str:
    parent = s.expression.parent
    if isinstance(parent, exp.CTE | exp.Subquery):
        return ident_name(parent.args["alias"].this) if parent.args.get("alias") else ""
    return ""


def _number_params(ctx: Ctx) -> None:
    """Name every parameter: ``$n`` stays ``$n``; ``:name`` and ``%(name)s`` are ``name``;
    anonymous ``?`` / ``%s`` are ``$1``, ``$2``… by position (as the driver binds them)."""
    assert ctx.tree is not None
    for n in ctx.tree.walk():
        if isinstance(n, exp.Parameter):
            ctx.params[id(n)] = "$" + n.name
        elif isinstance(n, exp.Placeholder) and n.name and n.name != "?":
            ctx.params[id(n)] = n.name
    for pos, n in enumerate(anonymous_placeholders(ctx.tree, ctx.dialect), start=1):
        ctx.params[id(n)] = f"${pos}"


def param_name(ctx: Ctx, node: exp.Expr) -> str:
    known = ctx.params.get(id(node))
    if known:
        return known
    return "$" + node.name if isinstance(node, exp.Parameter) else node.name


# ---- resolution ---------------------------------------------------------------------------


def scope_chain(ctx: Ctx, info: ScopeInfo) -> list[ScopeInfo]:
    """The scope and its ancestors, innermost first."""
    out = [info]
    s = info.scope.parent
    while s is not None and id(s) in ctx.scope_of:
        out.append(ctx.scope_of[id(s)])
        s = s.parent
    return out


def source_of(info: ScopeInfo, alias: str) -> exp.Table | Scope | None:
    entry = info.scope.selected_sources.get(alias)
    if entry is None:
        return None
    return entry[1]


def has_column(ctx: Ctx, source: exp.Table | Scope, column: str) -> bool | None:
    """Does the source have the column? ``None`` when unknown (no schema, star)."""
    if isinstance(source, exp.Table):
        if ctx.schema_columns is None:
            return None
        cols = ctx.schema_columns.get(table_name(source))
        return None if cols is None else column in cols
    names = output_names(ctx, ctx.info(source))
    if column in names:
        return True
    return None if "*" in names else False


def resolve(ctx: Ctx, info: ScopeInfo, col: exp.Column) -> tuple[str, ScopeInfo] | None:
    """The alias (and the scope that owns it) a column reference belongs to, or ``None``
    when ambiguous / unknown."""
    qualifier = ident_name(col.args.get("table")) if col.args.get("table") else ""
    name = ident_name(col.this)
    for s in scope_chain(ctx, info):
        if qualifier:
            if qualifier in s.scope.selected_sources:
                _mark_correlated(ctx, info, s)
                return qualifier, s
            continue
        sources = s.scope.selected_sources
        if not sources:
            continue
        if len(sources) == 1 and s is info:
            alias, (_, src) = next(iter(sources.items()))
            if has_column(ctx, src, name) is not False:
                return alias, s
            continue  # not a column of the one source (the schema says so): an outer scope's
        yes = [a for a, (_, src) in sources.items() if has_column(ctx, src, name) is True]
        maybe = [a for a, (_, src) in sources.items() if has_column(ctx, src, name) is None]
        if len(yes) == 1 and not maybe:
            _mark_correlated(ctx, info, s)
            return yes[0], s
        if len(yes) + len(maybe) == 1:
            alias = (yes or maybe)[0]
            _mark_correlated(ctx, info, s)
            return alias, s
        if yes or maybe:
            return None  # ambiguous
    return None


def _mark_correlated(ctx: Ctx, inner: ScopeInfo, owner: ScopeInfo) -> None:
    if owner is inner:
        return
    for s in scope_chain(ctx, inner):
        if s is owner:
            break
        ctx.correlated.add(s.id)


def base_columns(ctx: Ctx, info: ScopeInfo, col: exp.Column) -> set[Base]:
    """Base-table columns a column reference stands for (through CTEs, derived tables)."""
    hit = resolve(ctx, info, col)
    if hit is None:
        return set()
    alias, owner = hit
    return alias_lineage(ctx, owner, alias, ident_name(col.this))


def alias_lineage(ctx: Ctx, owner: ScopeInfo, alias: str, column: str) -> set[Base]:
    src = source_of(owner, alias)
    if src is None:
        return set()
    if isinstance(src, exp.Table):
        if isinstance(src.this, exp.Identifier):
            return {(table_name(src), column)}
        return set()  # table function
    return lineage(ctx, ctx.info(src), column)


def output_names(ctx: Ctx, info: ScopeInfo) -> list[str]:
    """Output column names of a scope (``*`` when a star cannot be expanded)."""
    node = info.scope.expression
    if isinstance(node, exp.SetOperation):
        branches = branch_scopes(info.scope)
        return output_names(ctx, ctx.info(branches[0])) if branches else []
    if not isinstance(node, exp.Select):
        inner = inner_query_scope(ctx, info)
        return output_names(ctx, inner) if inner is not None else []
    out: list[str] = []
    for proj in node.expressions:
        if isinstance(proj, exp.Star) or (
            isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)
        ):
            qual = ident_name(proj.args.get("table")) if isinstance(proj, exp.Column) else ""
            for alias, (_, src) in info.scope.selected_sources.items():
                if qual and alias != qual:
                    continue
                out.extend(source_names(ctx, src))
        else:
            out.append(projection_name(proj))
    return out


def projection_name(proj: exp.Expr) -> str:
    """PostgreSQL's name for a select-list item: its alias, its column, its function, or
    ``?column?``."""
    if isinstance(proj, exp.Alias | exp.Column):
        return ident_name(proj.alias_or_name)
    if isinstance(proj, exp.Func) and not isinstance(proj, exp.Binary | exp.Connector):
        from policystrata.sql.adapter import function_name

        return function_name(proj)
    return "?column?"


def inner_query_scope(ctx: Ctx, info: ScopeInfo) -> ScopeInfo | None:
    """For a scope whose node is not a query (a LATERAL wrapper), the query scope inside it."""
    for s in ctx.scopes:
        if s.parent == info.id and isinstance(s.scope.expression, exp.Select | exp.SetOperation):
            return s
    return None


def source_names(ctx: Ctx, src: exp.Table | Scope) -> list[str]:
    if isinstance(src, exp.Table):
        cols = (ctx.schema_columns or {}).get(table_name(src))
        return list(cols) if cols else ["*"]
    return output_names(ctx, ctx.info(src))


def projection_for(info: ScopeInfo, name: str) -> exp.Expr | None:
    node = info.scope.expression
    if not isinstance(node, exp.Select):
        return None
    for proj in node.expressions:
        if projection_name(proj) == name:
            return proj
    return None


def star_qualifier(node: exp.Expr) -> str | None:
    """``""`` for ``*``, the alias for ``alias.*``, ``None`` for anything else."""
    if isinstance(node, exp.Star):
        return ""
    if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
        return ident_name(node.args.get("table"))
    return None


def star_sources(info: ScopeInfo) -> dict[str, tuple[exp.Expr, exp.Table | Scope]]:
    """The sources the select list's stars expand (all sources for ``*``, one for ``a.*``)."""
    node = info.scope.expression
    sources = info.scope.selected_sources
    if not isinstance(node, exp.Select):
        return {}
    quals = {q for p in node.expressions if (q := star_qualifier(p)) is not None}
    if "" in quals:
        return dict(sources)
    return {a: v for a, v in sources.items() if a in quals}


def whole_row(ctx: Ctx, info: ScopeInfo, col: exp.Column) -> tuple[str, ScopeInfo] | None:
    """A whole-row reference: an unqualified name that is a source alias and not a column of
    any source in reach (``select a from accounts a``, ``row_to_json(a)``); ``(alias, owner)``."""
    if col.args.get("table") or isinstance(col.this, exp.Star):
        return None
    name = ident_name(col.this)
    for s in scope_chain(ctx, info):
        sources = s.scope.selected_sources
        if any(has_column(ctx, src, name) is True for _, src in sources.values()):
            return None
        known = ctx.schema_columns is not None or len(sources) > 1
        if known and name in sources and has_column(ctx, sources[name][1], name) is not True:
            return name, s
    return None


def lineage(ctx: Ctx, info: ScopeInfo, name: str, _seen: frozenset[str] = frozenset()) -> set[Base]:
    """Base columns that output column ``name`` of a scope is computed from."""
    key = f"{info.id}.{name}"
    if key in _seen:
        return set()
    seen = _seen | {key}
    node = info.scope.expression
    if isinstance(node, exp.SetOperation):
        out: set[Base] = set()
        branches = branch_scopes(info.scope)
        first = output_names(ctx, ctx.info(branches[0])) if branches else []
        pos = first.index(name) if name in first else -1
        for b in branch_scopes(info.scope):
            bi = ctx.info(b)
            names = output_names(ctx, bi)
            if 0 <= pos < len(names) and names[pos] != "*":
                out |= lineage(ctx, bi, names[pos], seen)
            else:
                out |= lineage(ctx, bi, name, seen)
        return out
    if not isinstance(node, exp.Select):
        inner = inner_query_scope(ctx, info)
        return lineage(ctx, inner, name, seen) if inner is not None else set()
    proj = projection_for(info, name)
    if proj is not None:
        return expr_lineage(ctx, info, proj, seen)
    # through a star (``*`` or ``alias.*``): the sources the stars expand
    result: set[Base] = set()
    for _alias, (_, src) in star_sources(info).items():
        has = has_column(ctx, src, name)
        if has is False:
            continue
        if isinstance(src, exp.Table):
            if isinstance(src.this, exp.Identifier):
                result.add((table_name(src), name))
        else:
            result |= lineage(ctx, ctx.info(src), name, seen)
    return result


def expr_lineage(
    ctx: Ctx, info: ScopeInfo, node: exp.Expr, _seen: frozenset[str] = frozenset()
) -> set[Base]:
    """Base columns an expression reads (scalar subqueries included)."""
    out: set[Base] = set()
    for n in node.walk():
        row = whole_row(ctx, info, n) if isinstance(n, exp.Column) else None
        if row is not None or (isinstance(n, exp.Column) and isinstance(n.this, exp.Star)):
            if isinstance(n.parent, exp.Count):
                continue  # count(a.*) / count(a): counts rows, reads no value
            if row is not None:
                out |= _all_columns(ctx, row[1], row[0], _seen)
            else:
                qual = ident_name(n.args.get("table"))
                for alias in info.scope.selected_sources:
                    if alias == qual:
                        out |= _all_columns(ctx, info, alias, _seen)
        elif isinstance(n, exp.Column):
            hit = resolve(ctx, info, n)
            if hit is not None:
                alias, owner = hit
                src = source_of(owner, alias)
                if isinstance(src, exp.Table):
                    if isinstance(src.this, exp.Identifier):
                        out.add((table_name(src), ident_name(n.this)))
                elif src is not None:
                    out |= lineage(ctx, ctx.info(src), ident_name(n.this), _seen)
        elif isinstance(n, exp.Star):
            if isinstance(n.parent, exp.Func | exp.Column):
                continue  # count(*) counts rows; the star of a.* was handled with its column
            for alias in info.scope.selected_sources:
                out |= _all_columns(ctx, info, alias, _seen)
    for sub in info.scope.subquery_scopes:
        if _is_inside(sub.expression, node):
            si = ctx.info(sub)
            for n2 in output_names(ctx, si)[:1]:
                out |= lineage(ctx, si, n2, _seen)
    return out


def _all_columns(ctx: Ctx, owner: ScopeInfo, alias: str, seen: frozenset[str]) -> set[Base]:
    """Base columns of every column of a source (``(table, "*")`` when they are unknown)."""
    src = source_of(owner, alias)
    out: set[Base] = set()
    if src is None:
        return out
    for cname in source_names(ctx, src):
        if cname == "*" and isinstance(src, exp.Table):
            if isinstance(src.this, exp.Identifier):
                out.add((table_name(src), "*"))
        elif isinstance(src, exp.Table):
            out |= alias_lineage(ctx, owner, alias, cname)
        else:
            out |= lineage(ctx, ctx.info(src), cname, seen)
    return out


def _is_inside(inner: exp.Expr, outer: exp.Expr) -> bool:
    p: exp.Expr | None = inner
    while p is not None:
        if p is outer:
            return True
        p = p.parent
    return False


def local_nodes(info: ScopeInfo, node: exp.Expr | None) -> list[exp.Expr]:
    """Nodes of ``node``'s subtree that belong to this scope (not to nested queries)."""
    if node is None:
        return []
    out: list[exp.Expr] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        for child in n.iter_expressions():
            if isinstance(child, exp.Query) and child is not info.scope.expression:
                continue
            stack.append(child)
    return out
