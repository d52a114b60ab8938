"""Pass ``joins``: join edges and their ON / USING conditions.

``sql_join(C, S, LeftAlias, RightAlias, Kind)`` with Kind ``inner``, ``left``, ``right``,
``full``, ``cross`` (also comma joins), ``lateral`` (``left_lateral`` for LEFT JOIN LATERAL).
A LEFT JOIN whose joined source a guaranteed WHERE predicate rejects NULLs for (``where
a.tenant_id = 'acme'``) keeps no unmatched row, so its ON predicates hold for every row (they
are ``guaranteed``, as for an inner join; PostgreSQL's planner reduces such a join the same
way); the join's kind stays ``left``, since rows the WHERE removes are the filter's doing.
LeftAlias is the alias the ON condition ties the joined source to (the first FROM source when
the condition names none). ON predicates become ``sql_pred`` / ``sql_col_eq`` facts of the
scope; for an outer join, predicates on the preserved side only hold where matched, so they are
``possible``. USING (c) is ``sql_col_eq`` on c. ``sql_join_eq(C, S, Alias, Column, RightAlias,
RightColumn)`` for each equality in the conjunction of a join's ON (or USING) that ties the
joined source to an earlier one, for every join kind: it is the join's matching condition
(what fan-out depends on), even where an outer join does not make it hold for every row.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select 1 from accounts a left join invoices i on i.account_id = a.id")
>>> [f.render() for f in r.facts.by_pred("sql_join")]
['sql_join("q", "s0", "a", "i", "left")']
>>> [f.render() for f in r.facts.by_pred("sql_join_eq")]
['sql_join_eq("q", "s0", "a", "id", "i", "account_id")']
"""

from __future__ import annotations

from policystrata.facts import Fact
from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import GUARANTEED, POSSIBLE, extract_predicates
from policystrata.lower.sql.predicates import emit_condition
from policystrata.lower.sql.scopes import has_column, param_name, resolve
from policystrata.sql.adapter import exp, ident_name


def _alias(node: exp.Expr) -> str:
    alias = node.args.get("alias")
    if alias is not None and alias.this is not None:
        return ident_name(alias.this)
    if isinstance(node, exp.Table):
        return ident_name(node.this) if isinstance(node.this, exp.Identifier) else ""
    return ""


def _using_owner(ctx: Ctx, info: ScopeInfo, seen: list[str], column: str) -> str:
    """The earlier source a ``USING (column)`` refers to: the one that has the column (the
    first source when that is unknown)."""
    sources = info.scope.selected_sources
    having = [a for a in seen if a in sources and has_column(ctx, sources[a][1], column)]
    return having[0] if len(having) == 1 else seen[0]


def _null_rejected(ctx: Ctx, info: ScopeInfo, node: exp.Select) -> set[str]:
    """Aliases a guaranteed WHERE predicate rejects NULLs for (any comparison but IS NULL):
    a LEFT JOIN of such an alias keeps no unmatched row."""
    where = node.args.get("where")
    if where is None:
        return set()
    out: set[str] = set()
    for p in extract_predicates(where.this, lambda n: param_name(ctx, n), ctx.dialect):
        if p.strength != GUARANTEED or p.op == "is_null":
            continue
        for col in (p.column, p.value_node):
            if isinstance(col, exp.Column):
                hit = resolve(ctx, info, col)
                if hit is not None and hit[1] is info:
                    out.add(hit[0])
    return out


def join_kind(join: exp.Join) -> str:
    side = (join.side or "").lower()
    kind = (join.kind or "").lower()
    if isinstance(join.this, exp.Lateral) or kind == "lateral":
        return "left_lateral" if side == "left" else "lateral"
    if side in ("left", "right", "full"):
        return side
    if kind == "cross":
        return "cross"
    if join.args.get("on") is None and not join.args.get("using"):
        return "cross"
    return "inner"


def joins(ctx: Ctx) -> None:
    """Emit join edges and ON / USING predicates of every SELECT scope."""
    for info in ctx.scopes:
        node = info.scope.expression
        if not isinstance(node, exp.Select):
            continue
        from_ = node.args.get("from_")
        if from_ is None:
            continue
        seen: list[str] = [_alias(from_.this)]
        rejected = _null_rejected(ctx, info, node)
        for join in node.args.get("joins") or []:
            right = _alias(join.this)
            kind = join_kind(join)
            left = seen[0]
            preserved: set[str] = set()
            if kind in ("left", "left_lateral") and right not in rejected:
                preserved = set(seen)
            elif kind == "right":
                preserved = {right}
            on = join.args.get("on")
            matched: list[tuple[str, str, str]] = []  # (other alias, its column, right column)
            if on is not None:
                full = kind == "full"

                def weaken(alias: str, p: set[str] = preserved, full: bool = full) -> bool:
                    return full or alias in p

                eqs = emit_condition(ctx, info, on, weaken=weaken)
                for a1, c1, a2, c2, s in eqs:
                    if s != GUARANTEED:
                        continue
                    if a1 == right and a2 in seen:
                        matched.append((a2, c2, c1))
                    elif a2 == right and a1 in seen:
                        matched.append((a1, c1, c2))
                if matched:
                    left = matched[0][0]
                else:
                    for a1, _c1, a2, _c2, _s in eqs:
                        if a1 == right and a2 in seen:
                            left = a2
                            break
                        if a2 == right and a1 in seen:
                            left = a1
                            break
            for ident in join.args.get("using") or []:
                col = ident_name(ident.this if isinstance(ident, exp.Column) else ident)
                owner = _using_owner(ctx, info, seen, col)
                strength = POSSIBLE if kind == "full" else GUARANTEED
                ctx.emit("sql_col_eq", info.id, owner, col, right, col, strength, node=join)
                for alias in (owner, right):  # USING names columns that are no Column nodes
                    if (
                        Fact("sql_alias_column", (ctx.case_id, info.id, alias, col))
                        not in ctx.facts
                    ):
                        ctx.emit("sql_alias_column", info.id, alias, col, node=join)
                matched.append((owner, col, col))
                left = owner if len(matched) == 1 else left
            for other, ocol, rcol in dict.fromkeys(matched):
                ctx.emit("sql_join_eq", info.id, other, ocol, right, rcol, node=join)
            ctx.emit("sql_join", info.id, left, right, kind, node=join)
            seen.append(right)
