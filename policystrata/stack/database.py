"""Database layer: the DDL in force (schema.sql as written, or as a fault rewrote it).

The rewrites act on the DDL text, so the detector sees exactly the statements a database built
from it would hold.

>>> ddl = ("ALTER TABLE a ENABLE ROW LEVEL SECURITY;\\n"
...        "CREATE POLICY p ON a\\n    USING (tenant_id = x);\\n")
>>> print(use_ownership_column(ddl, "a", "tenant_id", "legacy_tenant_id"), end="")
ALTER TABLE a ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON a
    USING (legacy_tenant_id = x);
>>> drop_row_security(ddl, "a")
''
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATEMENT = re.compile(r"[^;]*;[ \t]*\n?", re.S)


@dataclass(frozen=True)
class DatabaseKnobs:
    """How a (possibly faulty) database layer's DDL deviates from schema.sql."""

    ownership_column: tuple[str, str, str] | None = None  # (table, tenant column, old column)
    drop_policy_table: str | None = None  # row security missing on this table
    unfiltered_policy_table: str | None = None  # its row policies keep no filter (USING 1)
    writable_policy_table: str | None = None  # the role of its row policies may also write it


def _on_table(stmt: str, table: str) -> bool:
    s = " ".join(stmt.split()).lower()
    return bool(
        re.search(rf"^alter table (only )?{re.escape(table)} (enable|force) row level security", s)
        or re.search(rf"^create (row )?policy (if not exists )?\w+ on {re.escape(table)}\b", s)
    )


def _statements(ddl: str) -> list[str]:
    out, pos = [], 0
    for m in _STATEMENT.finditer(ddl):
        out.append(m.group(0))
        pos = m.end()
    if pos < len(ddl):
        out.append(ddl[pos:])
    return out


def _body(stmt: str) -> str:
    """The statement without leading comment lines."""
    lines = [ln for ln in stmt.splitlines() if not ln.strip().startswith("--")]
    return "\n".join(lines).strip()


def use_ownership_column(ddl: str, table: str, column: str, old: str) -> str:
    """Rewrite the table's policies to compare ``old`` instead of ``column``."""
    out = []
    for stmt in _statements(ddl):
        body = _body(stmt)
        if body.lower().startswith(("create policy", "create row policy")) and _on_table(
            body, table
        ):
            stmt = re.sub(rf"\b{re.escape(column)}\b(?=\s*=)", old, stmt)
        out.append(stmt)
    return "".join(out)


def drop_row_security(ddl: str, table: str) -> str:
    """Remove ENABLE/FORCE ROW LEVEL SECURITY and every policy of ``table``."""
    return "".join(s for s in _statements(ddl) if not _on_table(_body(s), table))


def unfilter_row_policies(ddl: str, table: str) -> str:
    """Rewrite the table's ClickHouse row policies to keep every row (``USING 1``): the
    policy still exists, its project filter is gone.

    >>> print(unfilter_row_policies(
    ...     "CREATE ROW POLICY p ON e USING project_id = currentUser() TO r;\\n", "e"), end="")
    CREATE ROW POLICY p ON e USING 1 TO r;
    """
    out = []
    for stmt in _statements(ddl):
        body = _body(stmt)
        if body.lower().startswith("create row policy") and _on_table(body, table):
            stmt = re.sub(r"(?is)(\busing\s+)(.*?)(\s+to\s)", r"\g<1>1\g<3>", stmt, count=1)
        out.append(stmt)
    return "".join(out)


def grant_writes(ddl: str, table: str) -> str:
    """Grant the roles of the table's row policies INSERT and ALTER on it too (after the
    policy): the read-only assumption of a ClickHouse row policy no longer holds.

    >>> ddl = "CREATE ROW POLICY p ON e USING a = currentUser() TO r;\\n"
    >>> print(grant_writes(ddl, "e"), end="")
    CREATE ROW POLICY p ON e USING a = currentUser() TO r;
    GRANT INSERT, ALTER ON e TO r;
    """
    out = []
    for stmt in _statements(ddl):
        out.append(stmt)
        body = _body(stmt)
        if body.lower().startswith("create row policy") and _on_table(body, table):
            m = re.search(r"(?is)\bto\s+([\w, ]+?)\s*;", stmt)
            if m:
                roles = [r.strip() for r in m.group(1).split(",") if r.strip()]
                grant = f"GRANT INSERT, ALTER ON {table} TO {', '.join(roles)};"
                out.append(grant + "\n")
    return "".join(out)


def ddl_in_force(schema_sql: str, knobs: DatabaseKnobs | None = None) -> str:
    knobs = knobs or DatabaseKnobs()
    ddl = schema_sql
    if knobs.unfiltered_policy_table is not None:
        ddl = unfilter_row_policies(ddl, knobs.unfiltered_policy_table)
    if knobs.writable_policy_table is not None:
        ddl = grant_writes(ddl, knobs.writable_policy_table)
    if knobs.ownership_column is not None:
        ddl = use_ownership_column(ddl, *knobs.ownership_column)
    if knobs.drop_policy_table is not None:
        ddl = drop_row_security(ddl, knobs.drop_policy_table)
    return ddl
