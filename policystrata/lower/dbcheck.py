"""A scan config's database check -> facts: what its rows must be, and what they are.

Pure: the rows are read by the check pipeline through :mod:`policystrata.db` (the query vetted
by the gate, run logged in as the app role under the check's tenant, read-only, rolled back);
this module lowers the check's expectations (provenance: the config's line) and the rows (or
why they could not be read) to the facts of ``rules/decl_db_checks.dl``. Values are compared as
text; SQL NULL has facts of its own.

>>> from policystrata.case import DbCheck
>>> check = DbCheck("rls_check", "acme_accounts", "select tenant_id from accounts", "acme",
...                 expected_tenants=("acme",))
>>> print(lower_db_check("c", check).to_lines(), end="")
db_check("c", "rls_check", "acme_accounts")
db_check_expected_tenant("c", "acme")
db_check_expects_tenants("c")
db_check_tenant("c", "acme")
>>> print(db_check_rows_facts("c", check, ["tenant_id"], [["acme"], ["beta"]]).to_lines(), end="")
db_check_column("c", "tenant_id")
db_check_ran("c")
db_check_row_count("c", 2)
db_check_row_tenant("c", "acme")
db_check_row_tenant("c", "beta")
db_check_value("c", "tenant_id", "acme")
db_check_value("c", "tenant_id", "beta")
"""

from __future__ import annotations

from typing import Any

from policystrata.case import DbCheck
from policystrata.facts import FactSet, Provenance

#: At most this many distinct values per column become facts (the rest are not needed to judge
#: a check: a forbidden or disallowed value among them is still found when it is in the first).
MAX_VALUES = 1000

ROWS = Provenance("database", note="rows of the check's query, app role, the check's tenant")


def text(value: Any) -> str:
    """A result or expected value as the text both sides are compared in.

    >>> [text(v) for v in (True, 3, 2.5, "acme")]
    ['true', '3', '2.5', 'acme']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def lower_db_check(case_id: str, check: DbCheck, prov: Provenance | None = None) -> FactSet:
    """The check itself: which check it is, its tenant and what its rows must be."""
    facts = FactSet()
    facts.add("db_check", case_id, check.kind, check.name, prov=prov)
    if check.tenant is not None:
        facts.add("db_check_tenant", case_id, check.tenant, prov=prov)
    if check.required:
        facts.add("db_check_required", case_id, prov=prov)
    if check.expected_rows is not None:
        facts.add("db_check_expected_rows", case_id, int(check.expected_rows), prov=prov)
    if check.expected_tenants:
        facts.add("db_check_expects_tenants", case_id, prov=prov)
        for t in check.expected_tenants:
            facts.add("db_check_expected_tenant", case_id, text(t), prov=prov)
    if check.expect_empty:
        facts.add("db_check_expect_empty", case_id, prov=prov)
    for col in check.require_columns:
        facts.add("db_check_required_column", case_id, col, prov=prov)
    for col in check.forbidden_columns:
        facts.add("db_check_forbidden_column", case_id, col, prov=prov)
    for col, values in check.allowed_values:
        facts.add("db_check_restricts_values", case_id, col, prov=prov)
        for v in values:
            if v is None:
                facts.add("db_check_allows_null", case_id, col, prov=prov)
            else:
                facts.add("db_check_allowed_value", case_id, col, text(v), prov=prov)
    for col, values in check.forbidden_values:
        for v in values:
            if v is None:
                facts.add("db_check_forbids_null", case_id, col, prov=prov)
            else:
                facts.add("db_check_forbidden_value", case_id, col, text(v), prov=prov)
    return facts


def db_check_rows_facts(
    case_id: str, check: DbCheck, columns: list[str], rows: list[list[Any]]
) -> FactSet:
    """What the check's query returned."""
    facts = FactSet()
    facts.add("db_check_ran", case_id, prov=ROWS)
    facts.add("db_check_row_count", case_id, len(rows), prov=ROWS)
    for col in columns:
        facts.add("db_check_column", case_id, col, prov=ROWS)
    for i, col in enumerate(columns):
        seen: set[str] = set()
        for row in rows:
            value = row[i]
            if value is None:
                facts.add("db_check_null_value", case_id, col, prov=ROWS)
            elif len(seen) < MAX_VALUES:
                seen.add(text(value))
        for v in sorted(seen):
            facts.add("db_check_value", case_id, col, v, prov=ROWS)
    if check.kind == "rls_check" and columns:
        i = columns.index(check.tenant_column) if check.tenant_column in columns else 0
        for t in sorted({text(r[i]) for r in rows if r[i] is not None}):
            facts.add("db_check_row_tenant", case_id, t, prov=ROWS)
    return facts


def db_check_not_run_facts(case_id: str, kind: str, detail: str) -> FactSet:
    """The check's query did not run: why."""
    facts = FactSet()
    prov = Provenance("database", note="the check's query was not run")
    facts.add("db_check_not_run", case_id, kind, detail, prov=prov)
    return facts
