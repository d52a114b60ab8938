"""A schema's DDL model -> facts: tables, columns, keys, foreign keys, row-level security,
policies and grants (``rules/decl_policy.dl``), each with provenance ``source:line``.

The script is read into a :class:`~policystrata.sql.ddl.SchemaInfo` by
:func:`policystrata.sql.ddl.read_ddl`; here the ``USING`` / ``WITH CHECK`` expressions of each
policy are lowered by the same predicate extractor that lowers ``WHERE`` clauses, and each
``USING`` also as the query it filters (:mod:`policystrata.lower.sql.policy_query`:
``rls_query_*``), so a policy that scopes a table through its parents by ``EXISTS`` is followed
along foreign keys. A table the script only refers to is ``table_partial``.

>>> info = parse_schema('''
... CREATE TABLE accounts (id int PRIMARY KEY, tenant_id text NOT NULL);
... ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
... CREATE POLICY iso ON accounts USING (tenant_id = current_setting('app.tenant_id', true));
... ''')
>>> sorted({f.pred for f in info.facts})[:4]
['column_not_null', 'primary_key', 'rls_enabled', 'rls_policy']
"""

from __future__ import annotations

from policystrata.facts import FactSet, Provenance
from policystrata.lower.sql.policy_query import policy_query_facts
from policystrata.lower.sql.predicate_extract import extract_predicates, is_always_true
from policystrata.sql.adapter import ident_name
from policystrata.sql.ddl import SchemaInfo, read_ddl

__all__ = ["parse_schema", "schema_facts"]


def parse_schema(text: str, source: str = "schema.sql") -> SchemaInfo:
    """Read a schema script (:func:`~policystrata.sql.ddl.read_ddl`) and lower its facts into
    ``SchemaInfo.facts``."""
    info = read_ddl(text, source)
    info.facts = schema_facts(info)
    return info


def schema_facts(info: SchemaInfo) -> FactSet:
    """The facts of a schema's DDL model (a schema-less domain's model, read from the policy,
    keeps the facts it was built with)."""
    if not info.known:
        return info.facts
    facts = FactSet()
    src = info.source

    def prov(line: int) -> Provenance:
        return Provenance(src, line=line)

    for table, fk, line in info.foreign_keys:
        facts.add("fk", table, fk.column, fk.ref_table, fk.ref_column, prov=prov(line))
    for tinfo in info.tables.values():
        facts.add("table", tinfo.name, prov=prov(tinfo.line))
        if tinfo.partial:
            facts.add("table_partial", tinfo.name, prov=prov(tinfo.line))
        for col, typ in tinfo.columns.items():
            facts.add("table_column", tinfo.name, col, typ, prov=prov(tinfo.line))
        for col in tinfo.primary_key:
            facts.add("primary_key", tinfo.name, col, prov=prov(tinfo.line))
        for i, key in enumerate(tinfo.unique_keys, start=1):
            for col in key:
                facts.add("unique_key", tinfo.name, f"unique{i}", col, prov=prov(tinfo.line))
        for col in tinfo.columns:
            if col in tinfo.not_null or col in tinfo.primary_key:
                facts.add("column_not_null", tinfo.name, col, prov=prov(tinfo.line))
    for t, line in info.rls_enabled.items():
        facts.add("rls_enabled", t, prov=prov(line))
    for t, line in info.rls_forced.items():
        facts.add("rls_forced", t, prov=prov(line))
    for pol in info.policies:
        p = prov(pol.line)
        facts.add("rls_policy", pol.table, pol.name, pol.command, pol.permissive, prov=p)
        for role in pol.roles or ["public"]:
            facts.add("rls_policy_role", pol.table, pol.name, role, prov=p)
        always_true = False
        for clause, text in (("using", pol.using), ("with_check", pol.with_check)):
            expr = pol.exprs.get(clause)
            if text is None or expr is None:
                continue
            if is_always_true(expr) and (clause == "using" or pol.using is None):
                always_true = True
            for pred in extract_predicates(expr):
                facts.add(
                    "rls_policy_pred",
                    pol.table,
                    pol.name,
                    clause,
                    ident_name(pred.column.this),
                    pred.op,
                    pred.vkind,
                    _as_str(pred.value),
                    pred.strength,
                    prov=Provenance(src, line=pol.line, snippet=text.strip()),
                )
        if always_true:
            facts.add("rls_policy_always_true", pol.table, pol.name, prov=p)
        if pol.using is not None:
            columns = {t.name: t.columns for t in info.tables.values() if not t.partial}
            at = Provenance(src, line=pol.line, snippet=pol.using.strip())
            facts.update(policy_query_facts(pol.table, pol.name, pol.using, columns, at))
    for (t, r, priv), line in info.grants.items():
        facts.add("table_grant", t, r, priv, prov=prov(line))
    return facts


def _as_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
