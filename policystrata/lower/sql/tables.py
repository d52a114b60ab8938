"""Pass ``tables``: what each scope reads.

``sql_reads(C, S, Alias, Table)`` for base tables (the alias is the table name when none is
given), ``sql_source(C, S, Alias, ChildScope)`` for CTE / derived-table sources,
``sql_table_function(C, S, Alias, Function)`` for table-valued functions and
``sql_sample(C, S, Alias, Method)`` for TABLESAMPLE.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "with c as (select * from accounts a) select * from c, invoices i")
>>> for f in r.facts.sorted():
...     if f.pred in ("sql_reads", "sql_source"): print(f.render())
sql_reads("q", "s0", "i", "invoices")
sql_reads("q", "s1", "a", "accounts")
sql_source("q", "s0", "c", "s1")
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx
from policystrata.lower.sql.scopes import inner_query_scope
from policystrata.sql.adapter import Scope, exp, function_name, table_name


def tables(ctx: Ctx) -> None:
    """Emit the sources of every scope."""
    for info in ctx.scopes:
        for alias, (node, src) in info.scope.selected_sources.items():
            if isinstance(src, Scope):
                child = ctx.info(src)
                inner = inner_query_scope(ctx, child) if child.kind == "udtf" else None
                if inner is not None:
                    ctx.emit("sql_source", info.id, alias, inner.id, node=node)
                elif child.kind == "udtf":
                    fn = src.expression
                    ctx.emit("sql_table_function", info.id, alias, function_name(fn), node=node)
                else:
                    ctx.emit("sql_source", info.id, alias, child.id, node=node)
            elif isinstance(src, exp.Table) and isinstance(src.this, exp.Identifier):
                ctx.emit("sql_reads", info.id, alias, table_name(src), node=src)
                sample = src.args.get("sample")
                if sample is not None:
                    method = sample.args.get("method")
                    ctx.emit(
                        "sql_sample",
                        info.id,
                        alias,
                        method.name.lower() if method is not None else "system",
                        node=sample,
                    )
            elif isinstance(src, exp.Table) and isinstance(src.this, exp.Func):
                ctx.emit("sql_table_function", info.id, alias, function_name(src.this), node=src)
            elif isinstance(src, exp.Func):
                ctx.emit("sql_table_function", info.id, alias, function_name(src), node=src)
