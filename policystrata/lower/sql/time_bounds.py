"""Pass ``time_bounds``: guaranteed bounds on date / timestamp columns, normalised to a
half-open range ``[start, end)``.

``sql_time_bound(C, S, Table, Column, Op, ISODate)`` with Op ``>=``, ``<`` (or ``>`` / ``<=``
on timestamps, where a day cannot be rounded): ``d >= '2026-05-01'`` -> ``>= 2026-05-01``;
``d <= '2026-05-31'`` on a date column -> ``< 2026-06-01``; ``BETWEEN a AND b`` likewise;
``d = '2026-05-03'`` on a date -> ``>=`` that day and ``<`` the next;
``date_trunc('month', d) = '2026-05-01'`` -> ``>= 2026-05-01`` and ``< 2026-06-01``.
``sql_time_relative(C, S, Table, Column, Op, Expr)`` for a guaranteed bound computed from the
clock (``now() - interval '30 days'``, ``current_date``): not a declared range.
Only guaranteed predicates count (a bound under OR is no bound). A column is a time column if the
schema says date / timestamp, or (without a schema) if the literal is an ISO date.

>>> from policystrata.lower.sql import lower_sql
>>> q = "select 1 from invoices i where i.invoice_date between '2026-05-01' and '2026-05-31'"
>>> for f in lower_sql("q", q).facts.by_pred("sql_time_bound"): print(f.render())
sql_time_bound("q", "s0", "invoices", "invoice_date", ">=", "2026-05-01")
sql_time_bound("q", "s0", "invoices", "invoice_date", "<", "2026-06-01")
"""

from __future__ import annotations

import datetime as dt

from policystrata.lower.sql.context import Ctx, ScopeInfo
from policystrata.lower.sql.predicate_extract import (
    GUARANTEED,
    conjunct_atoms,
    literal_value,
    unwrap,
)
from policystrata.lower.sql.scopes import base_columns
from policystrata.sql.adapter import exp, function_name, ident_name

_CMP: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.GTE: ">=",
    exp.GT: ">",
    exp.LT: "<",
    exp.LTE: "<=",
}
_FLIP = {"=": "=", ">=": "<=", ">": "<", "<": ">", "<=": ">="}
_NEG = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}
_CLOCK = (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime)
_TIME_TYPES = ("date", "timestamp", "timestamptz", "datetime")


def parse_time(value: object) -> dt.date | dt.datetime | None:
    """An ISO date or timestamp literal, else ``None``.

    >>> parse_time("2026-05-01"), parse_time("2026-05-01 10:00:00")
    (datetime.date(2026, 5, 1), datetime.datetime(2026, 5, 1, 10, 0))
    """
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        t = dt.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    if t.time() == dt.time(0) and t.tzinfo is None:
        return t.date()
    return t


_INTERVAL_UNITS = {
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "hour": "hours",
    "hours": "hours",
    "minute": "minutes",
    "minutes": "minutes",
    "second": "seconds",
    "seconds": "seconds",
    "month": "months",
    "months": "months",
    "mon": "months",
    "mons": "months",
    "year": "years",
    "years": "years",
}


def constant_time(node: exp.Expr) -> dt.date | dt.datetime | None:
    """A date / timestamp the expression always evaluates to: an ISO literal (cast or not),
    ``make_date(y, m, d)``, or such a constant plus / minus an interval literal or a number of
    days. ``None`` for anything else (columns, the clock).

    >>> from policystrata.sql.adapter import parse_expression
    >>> constant_time(parse_expression("date '2026-05-01' + interval '1 month'"))
    datetime.date(2026, 6, 1)
    >>> constant_time(parse_expression("'2026-06-01'::date - 1"))
    datetime.date(2026, 5, 31)
    """
    node = unwrap(node)
    lit = literal_value(node)
    if lit is not None:
        return parse_time(lit[1])
    if _zoned(node) is not None:
        return parse_time(literal_value(node.expressions[0])[1])  # type: ignore[index]
    if isinstance(node, exp.Anonymous) and function_name(node) == "make_date":
        parts = [literal_value(a) for a in node.expressions]
        if len(parts) == 3 and all(p is not None and isinstance(p[1], int) for p in parts):
            try:
                return dt.date(*(int(p[1]) for p in parts if p is not None))
            except ValueError:
                return None
        return None
    if isinstance(node, exp.Add | exp.Sub):
        sign = 1 if isinstance(node, exp.Add) else -1
        base, delta = node.this, node.expression
        if isinstance(node, exp.Add) and constant_time(base) is None:
            base, delta = delta, base
        start = constant_time(base)
        if start is None:
            return None
        return _shift(start, unwrap(delta), sign)
    return None


#: ClickHouse constructors of a time from text, optionally in a zone: toDateTime('...', 'UTC').
_ZONED = ("todatetime", "todate", "todatetime64")


def _zoned(node: exp.Expr) -> str | None:
    """The zone of ``toDateTime('2026-06-17 00:00:00'[, 'America/Los_Angeles'])`` (``""`` when
    it names none), else ``None``.

    >>> from policystrata.sql.adapter import parse_expression
    >>> _zoned(parse_expression("toDateTime('2026-06-17 00:00:00', 'Asia/Tokyo')", "clickhouse"))
    'Asia/Tokyo'
    """
    if not isinstance(node, exp.Anonymous) or function_name(node) not in _ZONED:
        return None
    args = [unwrap(a) for a in node.expressions]
    if not args or literal_value(args[0]) is None or parse_time(literal_value(args[0])[1]) is None:  # type: ignore[index]
        return None
    zone = args[-1] if len(args) > 1 and function_name(node) != "todatetime64" else None
    if len(args) == 3:  # toDateTime64(text, precision, zone)
        zone = args[2]
    if zone is None:
        return ""
    lit = literal_value(zone)
    return str(lit[1]) if lit is not None and isinstance(lit[1], str) else None


def _shift(
    start: dt.date | dt.datetime, delta: exp.Expr, sign: int
) -> dt.date | dt.datetime | None:
    lit = literal_value(delta)
    if lit is not None and isinstance(lit[1], int) and not isinstance(lit[1], bool):
        if isinstance(start, dt.datetime):
            return None  # timestamp + integer is not PostgreSQL
        return start + dt.timedelta(days=sign * lit[1])
    if not isinstance(delta, exp.Interval):
        return None
    amount = literal_value(delta.this)
    unit_node = delta.args.get("unit")
    unit = _INTERVAL_UNITS.get(unit_node.name.lower()) if unit_node is not None else None
    if amount is None or unit is None:
        return None
    try:
        n = int(str(amount[1]))
    except ValueError:
        return None
    if unit in ("months", "years"):
        months = n * (12 if unit == "years" else 1) * sign
        m = start.month - 1 + months
        try:
            return start.replace(year=start.year + m // 12, month=m % 12 + 1)
        except ValueError:
            return None  # 31 January + 1 month: PostgreSQL clamps; not a declared bound anyway
    if unit in ("hours", "minutes", "seconds") and not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time(0))
    out = start + dt.timedelta(**{unit: sign * n})
    if isinstance(out, dt.datetime) and out.time() == dt.time(0) and out.tzinfo is None:
        return out.date()  # midnight: the same instant as the date (as parse_time reads it)
    return out


def _iso(v: dt.date | dt.datetime) -> str:
    return v.isoformat()


def _add(v: dt.date | dt.datetime, unit: str) -> dt.date | dt.datetime | None:
    if isinstance(v, dt.datetime):
        return None
    unit = unit.lower()
    if unit == "day":
        return v + dt.timedelta(days=1)
    if unit == "week":
        return v + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}.get(unit)
    if months is None:
        return None
    m = v.month - 1 + months
    return dt.date(v.year + m // 12, m % 12 + 1, 1) if v.day == 1 else None


def time_bounds(ctx: Ctx) -> None:
    """Emit normalised time bounds for every scope's WHERE and inner-join ON conditions."""
    for info in ctx.scopes:
        node = info.scope.expression
        if not isinstance(node, exp.Select):
            continue
        conds = []
        if node.args.get("where") is not None:
            conds.append(node.args["where"].this)
        for j in node.args.get("joins") or []:
            if j.args.get("on") is not None and not j.side:
                conds.append(j.args["on"])
        for cond in conds:
            for atom, negated, strength in conjunct_atoms(cond):
                if strength == GUARANTEED:
                    _atom(ctx, info, atom, negated)


def _atom(ctx: Ctx, info: ScopeInfo, atom: exp.Expr, negated: bool) -> None:
    if isinstance(atom, exp.Between) and not negated:
        _bound(ctx, info, atom.this, ">=", atom.args["low"], atom)
        _bound(ctx, info, atom.this, "<=", atom.args["high"], atom)
        return
    op = _CMP.get(type(atom))
    if op is None:
        return
    if negated:
        if op == "=":
            return
        op = _NEG[op]
    left, right = atom.this, atom.expression
    if _time_target(left) is None and _time_target(right) is not None:
        left, right, op = right, left, _FLIP[op]
    _bound(ctx, info, left, op, right, atom)


def _time_target(node: exp.Expr) -> tuple[exp.Column, str | None] | None:
    """``col`` -> (col, None); ``date_trunc('unit', col)`` -> (col, unit)."""
    node = unwrap(node)
    if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
        return node, None
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        col = unwrap(node.this)
        unit = node.args.get("unit")
        if isinstance(col, exp.Column) and unit is not None:
            return col, unit.name.lower()
    if isinstance(node, exp.Anonymous) and function_name(node) == "date_trunc":
        args = node.expressions
        if len(args) == 2 and isinstance(unwrap(args[1]), exp.Column):
            lit = literal_value(args[0])
            col = unwrap(args[1])
            if lit is not None and isinstance(col, exp.Column):
                return col, str(lit[1]).lower()
    return None


def _bound(
    ctx: Ctx, info: ScopeInfo, target: exp.Expr, op: str, value: exp.Expr, atom: exp.Expr
) -> None:
    hit = _time_target(target)
    if hit is None:
        return
    col, unit = hit
    bases = sorted(base_columns(ctx, info, col))
    if not bases:
        return
    when = constant_time(value)
    if when is None:
        inner = unwrap(value)
        clock = any(isinstance(n, _CLOCK) for n in inner.walk()) or (
            isinstance(inner, exp.Func) and function_name(inner) in ("now", "current_date")
        )
        if clock:
            text = value.sql(dialect=ctx.dialect)
            for t, c in bases:
                if _is_time_column(ctx, t, c, None):
                    ctx.emit("sql_time_relative", info.id, t, c, op, text, node=atom)
        return
    for t, c in bases:
        if not _is_time_column(ctx, t, c, when):
            continue
        is_date = isinstance(when, dt.date) and not isinstance(when, dt.datetime)
        col_type = ctx.column_type(t, c)
        date_col = col_type == "date" or (col_type is None and is_date)
        out: list[tuple[str, dt.date | dt.datetime]] = []
        if unit is not None:
            nxt = _add(when, unit)
            if op == "=" and nxt is not None:
                out = [(">=", when), ("<", nxt)]
            elif op == ">=":
                out = [(">=", when)]
            elif op == "<":
                out = [("<", when)]
            elif op == "<=" and nxt is not None:
                out = [("<", nxt)]
            elif op == ">" and nxt is not None:
                out = [(">=", nxt)]
        elif date_col and is_date:
            nxt = when + dt.timedelta(days=1)
            out = {
                "=": [(">=", when), ("<", nxt)],
                ">=": [(">=", when)],
                ">": [(">=", nxt)],
                "<": [("<", when)],
                "<=": [("<", nxt)],
            }.get(op, [])
        else:
            out = [(op, when)] if op != "=" else [(">=", when), ("<=", when)]
        zone = _zoned(unwrap(value))
        for o, v in out:
            ctx.emit("sql_time_bound", info.id, t, c, o, _iso(v), node=atom)
            if zone:
                ctx.emit("sql_time_bound_zone", info.id, t, c, o, zone, node=atom)


def _is_time_column(ctx: Ctx, table: str, column: str, when: object) -> bool:
    typ = ctx.column_type(table, column)
    if typ is not None:
        return typ in _TIME_TYPES
    return when is not None or ident_name(column).endswith(("_at", "_on", "_date", "date", "time"))
