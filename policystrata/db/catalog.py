"""RLS facts from the live catalog, and the containment gaps a live database shows.

:func:`live_rls_facts` reads ``pg_class`` (``relrowsecurity``, ``relforcerowsecurity``),
``pg_policy`` (command, permissive, roles, ``pg_get_expr`` of USING / WITH CHECK) and the table
ACLs, and yields the same predicates the static ``schema.sql`` parse
(:func:`policystrata.lower.schema.parse_schema`) produces: ``rls_enabled``, ``rls_forced``,
``rls_policy``, ``rls_policy_role``, ``rls_policy_pred``, ``rls_policy_always_true``,
``table_grant``. Policy expressions go through the same predicate extractor as the static parse,
so ``tenant_id = current_setting('app.tenant_id', true)`` written in schema.sql and its deparsed
form ``(tenant_id = current_setting('app.tenant_id'::text, true))`` give the same facts.

:func:`containment_gaps` reports what undermines RLS in the live database: tenant-owned tables
without RLS or without any policy, always-true policies, policies that scope by a column other
than the tenant key, views without ``security_invoker``, and an app role that is superuser,
BYPASSRLS, or owns a table whose RLS is not forced.

>>> facts = live_rls_facts(conn)                                   # doctest: +SKIP
>>> print(facts.to_lines())                                        # doctest: +SKIP
rls_enabled("accounts")
rls_forced("accounts")
rls_policy("accounts", "accounts_tenant_isolation", "all", true)
...
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from policystrata.facts import Fact, FactSet, Provenance

RLS_PREDICATES = (
    "rls_enabled",
    "rls_forced",
    "rls_policy",
    "rls_policy_role",
    "rls_policy_pred",
    "rls_policy_always_true",
    "table_grant",
)
"""The predicates both the static and the live path produce (rules/decl_policy.dl)."""

CASE_PREDICATES = {
    "rls_enabled": "db_rls_enabled",
    "rls_forced": "db_rls_forced",
    "rls_policy": "db_policy",
    "rls_policy_role": "db_policy_role",
    "rls_policy_pred": "db_policy_pred",
    "rls_policy_always_true": "db_policy_always_true",
    "table_grant": "db_grant",
    # a policy's USING lowered as a query (policystrata.lower.sql.policy_query)
    "rls_query_reads": "db_policy_query_reads",
    "rls_query_pred": "db_policy_query_pred",
    "rls_query_eq": "db_policy_query_eq",
    "rls_query_exists": "db_policy_query_exists",
    "rls_query_output_column": "db_policy_query_output_column",
}
"""rls_* / table_grant -> the per-case db_* facts of rules/decl_db.dl."""

_COMMANDS = {"*": "all", "r": "select", "a": "insert", "w": "update", "d": "delete"}


def _as_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _prov(table: str, what: str | None = None, snippet: str | None = None) -> Provenance:
    return Provenance("catalog", snippet=snippet, note=f"{table}{'.' + what if what else ''}")


def policy_expression_facts(
    facts: FactSet, table: str, policy: str, using: str | None, with_check: str | None
) -> None:
    """Lower a policy's USING / WITH CHECK text into ``rls_policy_pred`` and
    ``rls_policy_always_true`` exactly as :mod:`policystrata.lower.schema` does."""
    from policystrata.lower.sql.predicate_extract import extract_predicates, is_always_true
    from policystrata.sql.adapter import ident_name, parse_expression

    always_true = False
    for clause, text in (("using", using), ("with_check", with_check)):
        if text is None:
            continue
        expr = parse_expression(text)
        if is_always_true(expr) and (clause == "using" or using is None):
            always_true = True
        for pred in extract_predicates(expr):
            facts.add(
                "rls_policy_pred",
                table,
                policy,
                clause,
                ident_name(pred.column.this),
                pred.op,
                pred.vkind,
                _as_str(pred.value),
                pred.strength,
                prov=_prov(table, policy, text),
            )
    if always_true:
        facts.add("rls_policy_always_true", table, policy, prov=_prov(table, policy))
    if using is not None:
        from policystrata.lower.sql.policy_query import policy_query_facts

        facts.update(policy_query_facts(table, policy, using, None, _prov(table, policy, using)))


_TABLES_SQL = """
SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
ORDER BY c.relname
"""

_POLICIES_SQL = """
SELECT c.relname, p.polname, p.polcmd::text, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END
             FROM unnest(p.polroles) AS r ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s)
ORDER BY c.relname, p.polname
"""

# Explicit grants from the ACL; the owner's implicit privileges are not grants schema.sql wrote.
_GRANTS_SQL = """
SELECT c.relname,
       CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_get_userbyid(a.grantee) END,
       lower(a.privilege_type)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     LATERAL aclexplode(c.relacl) a
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) AND a.grantee <> c.relowner
ORDER BY 1, 2, 3
"""


def live_rls_facts(
    conn: psycopg.Connection[Any],
    schemas: Sequence[str] = ("public",),
    own_roles: Sequence[str] = ("strata_bypass",),
) -> FactSet:
    """The rls_* and table_grant facts of the live database ``conn`` is connected to. Grants
    to ``own_roles`` (PolicyStrata's RLS-bypass comparison role, given SELECT after loading)
    are PolicyStrata's, not the domain's, and are left out."""
    facts = FactSet()
    schemas_list = list(schemas)
    with conn.cursor(binary=False) as cur:
        cur.execute(_sql(cur, _TABLES_SQL), (schemas_list,))
        for _oid, name, enabled, forced, _owner in cur.fetchall():
            if enabled:
                facts.add("rls_enabled", name, prov=_prov(name, "relrowsecurity"))
            if forced:
                facts.add("rls_forced", name, prov=_prov(name, "relforcerowsecurity"))
        cur.execute(_sql(cur, _POLICIES_SQL), (schemas_list,))
        for table, policy, cmd, permissive, roles, qual, check in cur.fetchall():
            facts.add(
                "rls_policy",
                table,
                policy,
                _COMMANDS.get(cmd, cmd),
                bool(permissive),
                prov=_prov(table, policy, qual),
            )
            for role in roles or ["public"]:
                facts.add("rls_policy_role", table, policy, role, prov=_prov(table, policy))
            policy_expression_facts(facts, table, policy, qual, check)
        cur.execute(_sql(cur, _GRANTS_SQL), (schemas_list,))
        for table, grantee, privilege in cur.fetchall():
            if grantee in own_roles:
                continue
            facts.add("table_grant", table, grantee, privilege, prov=_prov(table, "relacl"))
    return facts


def _is_raw(cur: Any) -> bool:
    return isinstance(cur, psycopg.RawCursor)


def _sql(cur: Any, text: str) -> str:
    return text.replace("%s", "$1") if _is_raw(cur) else text


def rls_subset(facts: Iterable[Fact]) -> FactSet:
    """Only the predicates both paths produce (for a static vs live comparison)."""
    return FactSet.of(f for f in facts if f.pred in RLS_PREDICATES)


def compare_rls(static: FactSet, live: FactSet) -> dict[str, list[str]]:
    """``{"only_static": [...], "only_live": [...]}``: rendered facts present on one side only."""
    s, v = rls_subset(static), rls_subset(live)
    return {
        "only_static": [f.render() for f in s.sorted() if f not in v],
        "only_live": [f.render() for f in v.sorted() if f not in s],
    }


def as_case_facts(case: str, facts: FactSet) -> FactSet:
    """rls_* / table_grant facts -> db_* facts for ``case`` (rules/decl_db.dl)."""
    out = FactSet()
    for f in facts:
        pred = CASE_PREDICATES.get(f.pred)
        if pred is None:
            continue
        provs = facts.provenance(f)
        fact = out.add(pred, case, *f.args)
        for p in provs:
            out.add_fact(fact, p)
    return out


# --------------------------------------------------------------------------- gaps


@dataclass(frozen=True, order=True)
class Gap:
    """A containment gap in the live database. ``kind`` is a stable identifier."""

    kind: str
    table: str
    policy: str = ""
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"kind": self.kind, "table": self.table, "detail": self.detail}
        if self.policy:
            out["policy"] = self.policy
        return out


GAP_KINDS = (
    "app_role_missing",
    "app_role_superuser",
    "app_role_bypassrls",
    "app_role_owner_without_force",
    "rls_disabled",
    "rls_no_policy",
    "policy_always_true",
    "policy_non_tenant_column",
    "view_without_security_invoker",
)

_ROLE_SQL = "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s"

_COLUMNS_SQL = """
SELECT c.relname, a.attname
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
"""

_VIEWS_SQL = """
SELECT c.relname, coalesce(c.reloptions, '{}'::text[])
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY(%s)
ORDER BY c.relname
"""


def containment_gaps(
    conn: psycopg.Connection[Any],
    *,
    app_role: str = "strata_app",
    tenant_columns: Mapping[str, str] | None = None,
    tenant_settings: Collection[str] | None = None,
    schemas: Sequence[str] = ("public",),
) -> list[Gap]:
    """Gaps that let the app role see rows RLS should hide (or that make RLS meaningless).

    ``tenant_columns`` maps a tenant-owned table to its tenant column; by default every table
    with a ``tenant_id`` column is tenant-owned, keyed by it. ``tenant_settings`` are the
    session settings that carry the tenant (:attr:`policystrata.db.session.Database.
    tenant_settings`); None: any setting a policy compares the tenant column with.
    """
    schemas_list = list(schemas)
    gaps: list[Gap] = []
    facts = live_rls_facts(conn, schemas)
    with conn.cursor(binary=False) as cur:
        cur.execute(_sql(cur, _ROLE_SQL), (app_role,))
        role = cur.fetchone()
        cur.execute(_sql(cur, _TABLES_SQL), (schemas_list,))
        tables = {name: (enabled, forced, owner) for _o, name, enabled, forced, owner in cur}
        cur.execute(_sql(cur, _COLUMNS_SQL), (schemas_list,))
        columns: dict[str, set[str]] = {}
        for t, col in cur.fetchall():
            columns.setdefault(t, set()).add(col)
        cur.execute(_sql(cur, _VIEWS_SQL), (schemas_list,))
        views = list(cur.fetchall())
    if role is None:
        gaps.append(Gap("app_role_missing", "", detail=f"role {app_role} does not exist"))
    else:
        if role[0]:
            gaps.append(Gap("app_role_superuser", "", detail=f"{app_role} is a superuser"))
        if role[1]:
            gaps.append(Gap("app_role_bypassrls", "", detail=f"{app_role} has BYPASSRLS"))
    if tenant_columns is None:
        tenant_columns = {t: "tenant_id" for t, cols in columns.items() if "tenant_id" in cols}
    policies: dict[str, list[str]] = {}
    for f in facts.by_pred("rls_policy"):
        policies.setdefault(str(f.args[0]), []).append(str(f.args[1]))
    for table, (enabled, forced, owner) in sorted(tables.items()):
        if owner == app_role and not forced:
            gaps.append(
                Gap(
                    "app_role_owner_without_force",
                    table,
                    detail=f"{app_role} owns {table} and RLS is not forced: it bypasses RLS",
                )
            )
        tenant_col = tenant_columns.get(table)
        if tenant_col is None:
            continue
        if not enabled:
            gaps.append(Gap("rls_disabled", table, detail="tenant-owned table without RLS"))
        elif not policies.get(table):
            gaps.append(
                Gap(
                    "rls_no_policy",
                    table,
                    detail="RLS enabled but no policy: every non-bypassing role sees no rows",
                )
            )
    for f in facts.by_pred("rls_policy_always_true"):
        table, policy = str(f.args[0]), str(f.args[1])
        gaps.append(Gap("policy_always_true", table, policy, "the policy admits every row"))
    always = {(str(f.args[0]), str(f.args[1])) for f in facts.by_pred("rls_policy_always_true")}
    preds = facts.by_pred("rls_policy_pred")
    for table, names in sorted(policies.items()):
        tenant_col = tenant_columns.get(table)
        if tenant_col is None:
            continue
        for policy in sorted(names):
            if (table, policy) in always:
                continue
            scoped = [
                f
                for f in preds
                if f.args[0] == table
                and f.args[1] == policy
                and f.args[2] == "using"
                and f.args[5] == "setting"
                and (tenant_settings is None or f.args[6] in tenant_settings)
                and f.args[4] == "="
            ]
            wrong = sorted({str(f.args[3]) for f in scoped if f.args[3] != tenant_col})
            keyed = any(f.args[3] == tenant_col and f.args[7] == "guaranteed" for f in scoped)
            if wrong:
                detail = f"scopes by {', '.join(wrong)} instead of the tenant key {tenant_col}"
            elif not keyed:
                setting = " or ".join(sorted(tenant_settings or ())) or "a session setting"
                detail = f"does not compare the tenant key {tenant_col} with {setting}"
            else:
                continue
            gaps.append(Gap("policy_non_tenant_column", table, policy, detail))
    for view, options in views:
        opts = {o.split("=", 1)[0]: o.split("=", 1)[-1] for o in options}
        if opts.get("security_invoker", "false").lower() not in ("true", "on", "1"):
            gaps.append(
                Gap(
                    "view_without_security_invoker",
                    view,
                    detail="runs with its owner's rights: the caller's RLS is not applied",
                )
            )
    return sorted(set(gaps))
