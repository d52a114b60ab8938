"""Pass ``joins``: join edges and their ON / USING conditions.

``sql_join(C, S, LeftAlias, RightAlias, Kind)`` with Kind ``inner``, ``left``, ``right``,
``full``, ``cross`` (also comma joins), ``lateral`` (``left_lateral`` for LEFT JOIN LATERAL).
LeftAlias is the alias the ON condition ties the joined source to (the first FROM source when
the condition names none). ON predicates become ``sql_pred`` / ``sql_col_eq`` facts of the
scope; for an outer join, predicates on the preserved side only hold where matched, so they are
``possible``. USING (c) is ``sql_col_eq`` on c.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select 1 from accounts a left join invoices i on i.account_id = a.id")
>>> [f.render() for f in r.facts.by_pred("sql_join")]
['sql_join("q", "s0", "a", "i", "left")']
"""

from __future__ import annotations

from policystrata.lower.sql.adapter import exp, ident_name
from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.predicate_extract import GUARANTEED, POSSIBLE
from policystrata.lower.sql.predicates import emit_condition


def _alias(node: exp.Expr) -> str:
    alias = node.args.get("alias")
    if alias is not None and alias.this is not None:
        return ident_name(alias.this)
    if isinstance(node, exp.Table):
        return ident_name(node.this) if isinstance(node.this, exp.Identifier) else ""
    return ""


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
        for join in node.args.get("joins") or []:
            right = _alias(join.this)
            kind = join_kind(join)
            left = seen[0]
            preserved: set[str] = set()
            if kind in ("left", "left_lateral"):
                preserved = set(seen)
            elif kind == "right":
                preserved = {right}
            on = join.args.get("on")
            if on is not None:
                full = kind == "full"

                def weaken(alias: str, p: set[str] = preserved, full: bool = full) -> bool:
                    return full or alias in p

                eqs = emit_condition(ctx, info, on, weaken=weaken)
                for a1, _c1, a2, _c2, _s in eqs:
                    if a1 == right and a2 in seen:
                        left = a2
                        break
                    if a2 == right and a1 in seen:
                        left = a1
                        break
            for ident in join.args.get("using") or []:
                col = ident_name(ident.this if isinstance(ident, exp.Column) else ident)
                strength = POSSIBLE if kind == "full" else GUARANTEED
                ctx.emit("sql_col_eq", info.id, left, col, right, col, strength, node=join)
            ctx.emit("sql_join", info.id, left, right, kind, node=join)
            seen.append(right)
