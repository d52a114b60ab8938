"""Pass ``functions``: every function called anywhere in the statement.

``sql_function(C, Name)`` with the lowercase name (aggregates included; operators, CASE and
casts are not calls). The read-only guard's deny list acts on the same names.

>>> from policystrata.lower.sql import lower_sql
>>> r = lower_sql("q", "select upper(name), count(*) from accounts group by 1")
>>> sorted(str(f.args[1]) for f in r.facts.by_pred("sql_function"))
['count', 'upper']
"""

from __future__ import annotations

from policystrata.lower.sql.context import Ctx
from policystrata.sql.adapter import function_name, is_call


def functions(ctx: Ctx) -> None:
    """Emit ``sql_function`` for each distinct function name."""
    assert ctx.tree is not None
    seen: set[str] = set()
    for node in ctx.tree.walk():
        if is_call(node):
            name = function_name(node)
            if name not in seen:
                seen.add(name)
                ctx.emit("sql_function", name, node=node)
