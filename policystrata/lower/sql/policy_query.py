"""A row security policy's USING expression, lowered as the query it filters.

PostgreSQL applies ``USING (expr)`` of a policy on table T as ``select ... from T where expr``.
That query is lowered with the same passes as any SQL (:func:`policystrata.lower.sql.lower_sql`),
so a policy that scopes T through its parents (``EXISTS (SELECT 1 FROM accounts a WHERE a.id =
t.account_id AND a.tenant_id = current_setting('app.tenant_id', true))``, a join inside the
subquery, ``account_id IN (SELECT id FROM accounts WHERE ...)``) becomes facts the database
rules follow along foreign keys, exactly as the compiler rules follow a query's joins:

- ``rls_query_reads(T, P, Scope, Alias, Table)``: a scope of the policy query reads a table
  (scope ``s0`` reads T itself under alias T);
- ``rls_query_pred(T, P, Scope, Alias, Column, Op, VKind, Value, Strength)``;
- ``rls_query_eq(T, P, Scope, Alias1, Column1, Alias2, Column2)``: a guaranteed equality of two
  columns in that scope, both orientations (Alias2 may be an enclosing scope's alias: a
  correlated subquery);
- ``rls_query_exists(T, P, Scope, Child)``: a guaranteed, not negated EXISTS (Child) in Scope;
- ``rls_query_output_column(T, P, Scope, Name, Alias, Column)``: what an IN subquery returns.

>>> from policystrata.facts import Provenance
>>> fs = policy_query_facts("subscriptions", "iso", "EXISTS (SELECT 1 FROM accounts a "
...     "WHERE a.id = subscriptions.account_id AND a.tenant_id = current_setting('app.tenant_id'))",
...     {"accounts": {"id": "integer", "tenant_id": "text"},
...      "subscriptions": {"id": "integer", "account_id": "integer"}}, Provenance("schema.sql"))
>>> for f in fs.sorted(): print(f.render().replace('"subscriptions", "iso", ', ""))
rls_query_eq("s1", "a", "id", "subscriptions", "account_id")
rls_query_eq("s1", "subscriptions", "account_id", "a", "id")
rls_query_exists("s0", "s1")
rls_query_pred("s1", "a", "id", "=", "column", "subscriptions.account_id", "guaranteed")
rls_query_pred("s1", "a", "tenant_id", "=", "setting", "app.tenant_id", "guaranteed")
rls_query_reads("s0", "subscriptions", "subscriptions")
rls_query_reads("s1", "a", "accounts")
"""

from __future__ import annotations

from collections.abc import Mapping

from policystrata.facts import FactSet, Provenance

#: Policy-query predicates (schema level, no case) and their per-case copies (the DDL in force).
RLS_QUERY_FACTS = {
    "rls_query_reads": "db_policy_query_reads",
    "rls_query_pred": "db_policy_query_pred",
    "rls_query_eq": "db_policy_query_eq",
    "rls_query_exists": "db_policy_query_exists",
    "rls_query_output_column": "db_policy_query_output_column",
}


def policy_query_facts(
    table: str,
    policy: str,
    using: str,
    columns: Mapping[str, Mapping[str, str]] | None,
    prov: Provenance,
) -> FactSet:
    """The ``rls_query_*`` facts of policy ``policy`` on ``table`` with USING text ``using``.
    A USING expression the lowering cannot read yields no facts (the policy then guards only
    through what ``rls_policy_pred`` says)."""
    from policystrata.lower.sql import lower_sql

    q = f"select 1 from {_quote(table)} where {using}"
    schema = {t: dict(c) for t, c in (columns or {}).items()}
    lowered = lower_sql("policy", q, schema=schema or None)
    out = FactSet()
    for f in lowered.facts:
        args = f.args[1:]
        if f.pred == "sql_reads":
            out.add("rls_query_reads", table, policy, *args, prov=prov)
        elif f.pred == "sql_pred":
            out.add("rls_query_pred", table, policy, *args, prov=prov)
        elif f.pred == "sql_col_eq" and args[-1] == "guaranteed":
            s, a, ca, b, cb = args[:5]
            out.add("rls_query_eq", table, policy, s, a, ca, b, cb, prov=prov)
            out.add("rls_query_eq", table, policy, s, b, cb, a, ca, prov=prov)
        elif f.pred == "sql_exists" and args[2] is False and args[4] == "guaranteed":
            out.add("rls_query_exists", table, policy, args[0], args[1], prov=prov)
        elif f.pred == "sql_output_column":
            out.add("rls_query_output_column", table, policy, *args, prov=prov)
    return out


def _quote(name: str) -> str:
    return (
        name
        if name.isidentifier() and name == name.lower()
        else '"' + name.replace('"', '""') + '"'
    )
