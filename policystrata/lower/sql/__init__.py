"""SQL text -> ``sql_*`` case facts (``rules/decl_sql.dl``), behind a fail-closed read-only guard.

The lowering is a visible tuple of passes over one shared context, like sqlglot's optimizer:
each pass is one module with one concern and a runnable example. A failing pass records a
finding (``unparseable_sql``, ``unanalysable_sql``, ``not_read_only``) and stops the pipeline;
it never raises, so one bad record never aborts the others.

>>> r = lower_sql("t1", "select count(*) from accounts a where a.tenant_id = 'acme' limit 10")
>>> r.read_only, r.findings
(True, [])
>>> [f.render() for f in r.facts.by_pred("sql_pred")]
['sql_pred("t1", "s0", "a", "tenant_id", "=", "literal", "acme", "guaranteed")']
>>> bad = lower_sql("t2", "with d as (delete from accounts returning *) select * from d")
>>> bad.read_only, [f.kind for f in bad.findings]
(False, ['not_read_only'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from policystrata.facts import Provenance
from policystrata.lower.sql.aggregates import aggregates
from policystrata.lower.sql.columns import columns
from policystrata.lower.sql.context import Ctx, Halt, SqlFinding, SqlLowering
from policystrata.lower.sql.functions import functions
from policystrata.lower.sql.guard import DENIED_FUNCTIONS, DENIED_PREFIXES, guard_read_only
from policystrata.lower.sql.joins import joins
from policystrata.lower.sql.outputs import outputs
from policystrata.lower.sql.parse import parse_sql
from policystrata.lower.sql.predicates import predicates
from policystrata.lower.sql.scopes import build_scopes
from policystrata.lower.sql.shape import shape
from policystrata.lower.sql.subqueries import subqueries
from policystrata.lower.sql.tables import tables
from policystrata.lower.sql.time_bounds import time_bounds

if TYPE_CHECKING:
    from policystrata.sql.ddl import SchemaInfo

__all__ = [
    "DENIED_FUNCTIONS",
    "DENIED_PREFIXES",
    "PASSES",
    "SqlFinding",
    "SqlLowering",
    "lower_sql",
]

Pass = Callable[[Ctx], None]

PASSES: tuple[Pass, ...] = (
    parse_sql,  # one statement, parsed (unparseable_sql / not_read_only)
    guard_read_only,  # fail-closed: only a side-effect-free SELECT goes on
    build_scopes,  # scopes (root, cte, derived, subquery, union_branch), parameter names
    tables,  # sql_reads, sql_source, sql_table_function, sql_sample
    columns,  # sql_column_ref (and correlation of subqueries)
    joins,  # sql_join, ON / USING predicates
    predicates,  # sql_pred, sql_col_eq from WHERE / HAVING
    subqueries,  # sql_exists, sql_uncorrelated_exists, sql_correlated
    outputs,  # sql_output lineage, sql_scope_output, sql_aggregated
    aggregates,  # sql_agg, sql_group_by, sql_distinct
    shape,  # sql_limit, sql_offset, sql_order_by
    time_bounds,  # sql_time_bound, sql_time_relative
    functions,  # sql_function
)


def lower_sql(
    case_id: str,
    sql_text: str,
    dialect: str = "postgres",
    source: Provenance | None = None,
    *,
    schema: SchemaInfo | Mapping[str, Mapping[str, str]] | None = None,
) -> SqlLowering:
    """Lower one SQL statement to facts. Never raises for bad SQL: problems are findings.

    ``source`` (e.g. ``Provenance("traces.jsonl", line=5)``) becomes the provenance of every fact,
    with the SQL span and snippet added; without it provenance is ``Provenance("sql", span=…)``.
    ``schema`` (a :class:`SchemaInfo` or ``{table: {column: type}}``) lets unqualified columns
    resolve in multi-table queries, expands ``*`` and types time columns.
    """
    ctx = Ctx(case_id, sql_text, dialect=dialect, source=source, schema_columns=_columns(schema))
    for p in PASSES:
        try:
            p(ctx)
        except Halt:
            break
        except RecursionError:
            ctx.finding("unanalysable_sql", f"{p.__name__}: statement nested too deeply", ctx.tree)
            break
        except Exception as e:  # an analysis bug or a parser corner case: a finding, not a crash
            reason = f"{p.__name__} failed: {type(e).__name__}: {e}"
            ctx.finding("unanalysable_sql", reason, ctx.tree)
            break
    read_only = ctx.read_only and not any(f.kind != "unanalysable_sql" for f in ctx.findings)
    return SqlLowering(case_id, ctx.facts, ctx.findings, read_only)


def _columns(
    schema: SchemaInfo | Mapping[str, Mapping[str, str]] | None,
) -> dict[str, dict[str, str]] | None:
    if schema is None:
        return None
    tables = getattr(schema, "tables", None)
    if tables is not None:
        return {name: dict(t.columns) for name, t in tables.items()}
    assert isinstance(schema, Mapping)
    return {str(t): dict(cols) for t, cols in schema.items()}
