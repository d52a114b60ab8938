"""Metric and dimension expressions as users write them (COMPAT.md §2), read with the SQL parser.

Published policies write a metric's ``expression`` in many forms: plain aggregates
(``count(distinct t.id) filter (where t.escalated)``), a leading ``SELECT`` or comma
(``SELECT SUM(booking_value)``, ``, COALESCE(SUM(1), 0)``), pseudo-functions of semantic layers
(``count_distinct``, ``average``, ``median``, ``percentile``), ClickHouse aggregates
(``count()``, ``uniqExact``, ``countIf``, ``uniqExactIf``), arithmetic and ratios over
aggregates or other metrics (``booking_value / NULLIF(views, 0)``), text folded over two lines.
A dimension's ``column`` may be ``table.column`` or an expression over columns
(``date_trunc('month', invoices.invoice_date)``, ``toDate(events.event_time,
projects.timezone)``), or a semantic-layer token ``query_token.<name>`` that names no table.

:func:`read_metric` and :func:`read_dimension` parse the text (through
:mod:`policystrata.sql.adapter`, the one module that talks to sqlglot), rewrite the
pseudo-functions and ClickHouse aggregates to their SQL meaning, and return the canonical SQL,
the columns it reads and what was rewritten. Text that still does not parse is *not understood*:
the caller warns (file:line) and the metric's semantic checks have nothing to compare with
(``metric_expression_unknown``); it is never a load error.

>>> read_metric("uniqExactIf(events.user_id, events.event_name = 'return')").sql
"COUNT(DISTINCT events.user_id) FILTER(WHERE events.event_name = 'return')"
>>> read_metric(", COALESCE(SUM(1), 0)").sql
'COALESCE(SUM(1), 0)'
>>> m = read_metric("SELECT SUM(booking_value) * 0.05 / COUNT(DISTINCT guest_id)")
>>> m.sql, m.aggregates
('SUM(booking_value) * 0.05 / COUNT(DISTINCT guest_id)', 2)
>>> m.columns
((None, 'booking_value'), (None, 'guest_id'))
>>> read_metric("sum(amount) *").problem[:40]
'cannot parse it as SQL: Required keyword'
>>> read_metric("{{ metric('revenue') }}").problem
'a template or struct literal, not SQL'
>>> d = read_dimension("date_trunc('month', invoices.invoice_date)")
>>> d.plain, d.columns, d.sql
(False, (('invoices', 'invoice_date'),), "DATE_TRUNC('MONTH', invoices.invoice_date)")
>>> read_dimension("query_token.listing__country_latest").token
'listing__country_latest'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from policystrata.sql.adapter import (
    SqlglotError,
    exp,
    ident_name,
    parse_expression,
    parse_one,
    tokenize,
)

#: The pseudo-table of semantic-layer tokens (MetricFlow ``query_token.<name>``): no table.
TOKEN_TABLE = "query_token"


@dataclass(frozen=True)
class ExprInfo:
    """What an expression means: its canonical SQL (PostgreSQL), the columns it reads
    (``(table or None, column)`` in order of appearance), the number of aggregate calls, what
    was rewritten to read it, and why it is not understood (``problem``; then ``sql`` is None).
    For a dimension, ``plain`` is a bare ``table.column`` and ``token`` a ``query_token`` name."""

    source: str
    sql: str | None = None
    columns: tuple[tuple[str | None, str], ...] = ()
    aggregates: int = 0
    rewrites: tuple[str, ...] = ()
    problem: str | None = None
    plain: bool = False
    token: str | None = None
    outside: tuple[tuple[str | None, str], ...] = field(default=(), repr=False)
    """Columns read outside every aggregate call: in a metric, a name there that is another
    metric's name refers to that metric (a derived metric, ``bookings * 1.0 / views``)."""

    @property
    def understood(self) -> bool:
        return self.problem is None


def _strip_lead(text: str) -> tuple[str, list[str]]:
    """Drop a leading comma or ``SELECT`` keyword (a fragment of a select list), found with the
    tokenizer; fold whitespace (two-line folded expressions)."""
    rewrites: list[str] = []
    text = " ".join(text.split())
    while True:
        toks = tokenize(text)
        if not toks:
            return text, rewrites
        first = toks[0]
        if first.type == "COMMA":
            rewrites.append("leading comma dropped")
        elif first.type == "SELECT":
            rewrites.append("leading SELECT dropped")
        else:
            return text, rewrites
        text = text[first.end :].strip()


def _parse(text: str) -> exp.Expr:
    """Parse an expression (a trailing alias or ``FROM`` clause of a whole SELECT is dropped)."""
    try:
        tree = parse_expression(text)
    except SqlglotError:
        stmt = parse_one(f"SELECT {text}")
        if not isinstance(stmt, exp.Select) or len(stmt.expressions) != 1:
            raise
        tree = stmt.expressions[0]
    if isinstance(tree, exp.Select):
        if len(tree.expressions) != 1:
            raise ValueError(f"expected one expression, got {len(tree.expressions)}")
        tree = tree.expressions[0]
    if isinstance(tree, exp.Alias):
        tree = tree.this
    if tree.find(exp.Struct) is not None:  # {{ jinja }} parses as a struct literal
        raise _NotSql("a template or struct literal, not SQL")
    return tree


class _NotSql(ValueError):
    """Text that parses, but is not an expression over columns."""


def _fname(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        this = node.this
        return ident_name(this) if isinstance(this, exp.Identifier) else str(this).lower()
    return ""


def _args(node: exp.Expr) -> list[exp.Expr]:
    return [a for a in node.expressions if a is not None]


def _count_distinct(args: list[exp.Expr]) -> exp.Expr:
    return exp.Count(this=exp.Distinct(expressions=[args[0].copy()]))


def _filtered(agg: exp.Expr, cond: exp.Expr) -> exp.Expr:
    return exp.Filter(this=agg, expression=exp.Where(this=cond.copy()))


def _percentile(args: list[exp.Expr]) -> exp.Expr:
    fraction = args[1].copy() if len(args) > 1 else exp.Null()
    order = exp.Order(expressions=[exp.Ordered(this=args[0].copy(), nulls_first=False)])
    return exp.WithinGroup(this=exp.PercentileCont(this=fraction), expression=order)


#: name -> (argument counts accepted, rewrite to the SQL meaning, what it means)
_PSEUDO: dict[str, tuple[tuple[int, ...], Callable[[list[exp.Expr]], exp.Expr], str]] = {
    "count_distinct": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "average": ((1,), lambda a: exp.Avg(this=a[0].copy()), "AVG(x)"),
    "percentile": ((1, 2), _percentile, "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x)"),
    "uniqexact": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "uniq": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "uniqcombined": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "uniqcombined64": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "uniqhll12": ((1,), _count_distinct, "COUNT(DISTINCT x)"),
    "uniqexactif": (
        (2,),
        lambda a: _filtered(_count_distinct(a), a[1]),
        "COUNT(DISTINCT x) FILTER (WHERE c)",
    ),
    "uniqif": (
        (2,),
        lambda a: _filtered(_count_distinct(a), a[1]),
        "COUNT(DISTINCT x) FILTER (WHERE c)",
    ),
    "countif": (
        (1, 2),
        lambda a: _filtered(exp.Count(this=exp.Star() if len(a) == 1 else a[0].copy()), a[-1]),
        "COUNT(*) FILTER (WHERE c)",
    ),
    "sumif": (
        (2,),
        lambda a: _filtered(exp.Sum(this=a[0].copy()), a[1]),
        "SUM(x) FILTER (WHERE c)",
    ),
    "avgif": (
        (2,),
        lambda a: _filtered(exp.Avg(this=a[0].copy()), a[1]),
        "AVG(x) FILTER (WHERE c)",
    ),
    "minif": (
        (2,),
        lambda a: _filtered(exp.Min(this=a[0].copy()), a[1]),
        "MIN(x) FILTER (WHERE c)",
    ),
    "maxif": (
        (2,),
        lambda a: _filtered(exp.Max(this=a[0].copy()), a[1]),
        "MAX(x) FILTER (WHERE c)",
    ),
}


def _canonical(tree: exp.Expr, rewrites: list[str]) -> exp.Expr:
    """Rewrite pseudo-functions and ClickHouse aggregates to their SQL meaning."""

    def visit(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.CountIf):  # sqlglot's own reading of countIf(c)
            rewrites.append("countIf(c) read as COUNT(*) FILTER (WHERE c)")
            return _filtered(exp.Count(this=exp.Star()), node.this)
        if isinstance(node, exp.Count) and node.this is None and not node.expressions:
            rewrites.append("count() read as COUNT(*)")
            return exp.Count(this=exp.Star())
        name = _fname(node)
        spec = _PSEUDO.get(name)
        if spec is not None and len(_args(node)) in spec[0]:
            rewrites.append(f"{name}(...) read as {spec[2]}")
            return spec[1](_args(node))
        return node

    return tree.transform(visit, copy=True)


def canonical_aggregates(tree: exp.Expr) -> exp.Expr:
    """A copy of a parsed expression or query with the pseudo-functions and ClickHouse
    aggregates rewritten to their SQL meaning (what :func:`read_metric` applies): for a SQL
    lowering that should read ``uniqExact(x)`` in a query as the metric side does.

    >>> from policystrata.sql.adapter import parse_one
    >>> canonical_aggregates(parse_one("select uniqExact(e.u) from e")).sql()
    'SELECT COUNT(DISTINCT e.u) FROM e'
    """
    return _canonical(tree, [])


@lru_cache(maxsize=4096)
def read_metric(text: str) -> ExprInfo:
    """A metric expression: canonical SQL, columns, aggregate count (see the module doc)."""
    return _read(text, metric=True)


@lru_cache(maxsize=4096)
def read_dimension(text: str) -> ExprInfo:
    """A dimension column: ``table.column`` (``plain``), an expression, or a token."""
    return _read(text, metric=False)


def _read(text: str, *, metric: bool) -> ExprInfo:
    if not isinstance(text, str) or not text.strip():
        return ExprInfo(source=str(text), problem="the expression is empty")
    try:
        body, rewrites = _strip_lead(text)
        if not body:
            return ExprInfo(source=text, problem="the expression is empty")
        tree = _parse(body)
        tree = _canonical(tree, rewrites) if metric else tree
        sql = tree.sql(dialect="postgres")
    except _NotSql as exc:
        return ExprInfo(source=text, problem=str(exc))
    except (SqlglotError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return ExprInfo(source=text, problem=f"cannot parse it as SQL: {reason}")
    columns: list[tuple[str | None, str]] = []
    outside: list[tuple[str | None, str]] = []
    for col in tree.find_all(exp.Column):
        if isinstance(col.this, exp.Star):
            continue
        qual = col.args.get("table")
        ref = (ident_name(qual) if qual is not None else None, ident_name(col.this))
        if ref not in columns:
            columns.append(ref)
        if col.find_ancestor(exp.AggFunc) is None and ref not in outside:
            outside.append(ref)
    plain = isinstance(tree, exp.Column) and columns and columns[0][0] is not None
    token = None
    if plain and columns[0][0] == TOKEN_TABLE:
        token, plain = columns[0][1], False
    return ExprInfo(
        source=text,
        sql=sql,
        columns=tuple(c for c in columns if c[0] != TOKEN_TABLE),
        aggregates=sum(1 for _ in tree.find_all(exp.AggFunc)),
        rewrites=tuple(dict.fromkeys(rewrites)),
        plain=bool(plain),
        token=token,
        outside=tuple(outside),
    )


__all__ = ["TOKEN_TABLE", "ExprInfo", "canonical_aggregates", "read_dimension", "read_metric"]
