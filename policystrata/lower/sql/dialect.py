"""Pass ``dialect_forms``: a dialect's own aggregate forms read as their SQL meaning.

ClickHouse writes ``uniqExact(x)`` for ``count(distinct x)``, ``countIf(c)`` for
``count(*) filter (where c)``, ``uniqExactIf(x, c)`` for ``count(distinct x) filter (where
c)`` and ``count()`` for ``count(*)``. The statement of a ClickHouse domain is read with
sqlglot's ClickHouse reader (the ``parse`` pass), then its aggregates are rewritten here the way
:func:`policystrata.model.expressions.read_metric` reads a metric's expression, so the SQL and
the policy compare in one vocabulary. Everything else (tables, joins, predicates, ``SAMPLE``,
``toDate(t, tz)``) stays as written. A PostgreSQL statement is left untouched.

>>> from policystrata.lower.sql import lower_sql
>>> q = "select uniqExact(e.user_id) as value from events as e where e.project_id = 'p1'"
>>> [f.render() for f in lower_sql("q", q, dialect="clickhouse").facts.by_pred("sql_agg")]
['sql_agg("q", "s0", "s0.a1", "count", true, "events", "user_id")']
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx


def dialect_forms(ctx: Ctx) -> None:
    """Rewrite the dialect's aggregate forms of ``ctx.tree`` (ClickHouse only)."""
    if ctx.dialect != "clickhouse" or ctx.tree is None:
        return
    from policystrata.model.expressions import canonical_aggregates  # model imports lower.sql

    ctx.tree = canonical_aggregates(ctx.tree)
