"""The scan config's ``tenancy`` section as tenancy facts (COMPAT.md §4).

The published scanner takes a query's tenant scope from the config: ``canonical_predicates``
first, else ``table_tenant_columns`` for the table, else ``tenant_columns``. Here each becomes a
fact the rules read, with the config's file:line as provenance:

- ``table_tenant_columns: {orders: [org_id]}`` -> ``tenant_column(orders, org_id)`` (the config
  wins over policy.yaml ``tenancy`` and the default ``tenant_id`` column for that table);
- ``tenant_columns: [accounts.tenant_id]`` -> ``tenant_column(accounts, tenant_id)``; a bare
  name (``tenant_id``) applies to every known table that has such a column;
- a canonical predicate comparing a column with the principal's tenant (``c_custkey =
  :principal.tenant_id``, ``accounts.tenant_id in (:principal.tenant_ids)``) says which column
  is the tenant column: ``tenant_column`` again, so rules/tenancy.dl requires it; an unqualified
  column no known table has becomes ``canonical_predicate(P, "*", Col, Op, tenant, "")``;
- any other canonical predicate (``orders.status = 'completed'``) ->
  ``canonical_predicate(P, Table, Column, Op, literal, Value)``, which rules/canonical.dl
  requires of every query reading the table.

The predicates are parsed with the SQL parser (the placeholders are recognised in the parsed
tree, never by matching text). A predicate that does not parse, or has a part that is not a
comparison with a literal or the principal's tenant, is a note naming its line.

>>> from policystrata.model import load_domain
>>> d = load_domain("support_saas")
>>> t = ScanTenancy.read(
...     ["accounts.tenant_id in (:principal.tenant_ids)", "subscriptions.plan = 'pro'"],
...     [], {}, d, lambda key, i: Provenance("policystrata.yaml", line=7 + i))
>>> [(c, str(p)) for c, p in t.tenant_columns["accounts"]], [p.key for p in t.canonical]
([('tenant_id', 'policystrata.yaml:7')], ["subscriptions.plan = 'pro'"])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policystrata.facts import Const, Provenance
from policystrata.lower.sql.predicate_extract import GUARANTEED, extract_predicates
from policystrata.sql.adapter import SqlglotError, exp, ident_name, parse_expression

if TYPE_CHECKING:
    from policystrata.model import Domain

Where = Callable[[str, "str | int"], Provenance]


@dataclass(frozen=True)
class Canonical:
    """One required predicate: ``key`` is its text (the finding's key)."""

    key: str
    table: str  # "*" for an unqualified column no known table has
    column: str
    op: str
    vkind: str  # literal | tenant
    value: Const
    where: Provenance


@dataclass
class ScanTenancy:
    """Tenant columns per table (with where each was declared) and required predicates."""

    tenant_columns: dict[str, list[tuple[str, Provenance]]] = field(default_factory=dict)
    canonical: list[Canonical] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add_column(self, table: str, column: str, where: Provenance) -> None:
        cols = self.tenant_columns.setdefault(table, [])
        if column not in [c for c, _ in cols]:
            cols.append((column, where))

    @classmethod
    def read(
        cls,
        canonical_predicates: list[str],
        tenant_columns: list[str],
        table_tenant_columns: dict[str, list[str]],
        domain: Domain,
        at: Where,
    ) -> ScanTenancy:
        """Read the three keys; ``at(key, index_or_table)`` is where an item was written
        (``policystrata.yaml:12``)."""
        out = cls()
        tables = domain.schema.tables

        def having(column: str) -> list[str]:
            return sorted(t for t, info in tables.items() if column in info.columns)

        for table, cols in table_tenant_columns.items():
            for col in cols:
                out.add_column(table, col, at("table_tenant_columns", table))
        for i, ref in enumerate(tenant_columns):
            where = at("tenant_columns", i)
            if "." in ref:
                table, col = ref.rsplit(".", 1)
                out.add_column(table, col, where)
            else:
                found = having(ref)
                for table in found:
                    out.add_column(table, ref, where)
                if not found:
                    out.notes.append(
                        f"{where}: tenant column '{ref}': no known table has it (give table.column)"
                    )
        for i, text in enumerate(canonical_predicates):
            out._canonical(text, at("canonical_predicates", i), having)
        return out

    def _canonical(self, text: str, at: Provenance, having: Callable[[str], list[str]]) -> None:
        try:
            tree = parse_expression(text)
        except SqlglotError as exc:
            first = str(exc).splitlines()[0] if str(exc) else "cannot parse it"
            self.notes.append(f"{at}: canonical predicate not read ({first}): not required")
            return
        preds = [p for p in extract_predicates(tree) if p.strength == GUARANTEED]
        if not preds:
            self.notes.append(
                f"{at}: canonical predicate {text!r} has no comparison a query could keep"
            )
        for p in preds:
            qual = p.column.args.get("table")
            table = ident_name(qual) if qual is not None else None
            column = ident_name(p.column.this)
            key = p.node.sql(dialect="postgres")
            if _tenant_placeholder(p.value_node):
                targets = [table] if table else having(column)
                for t in targets:
                    self.add_column(t, column, at)
                if not targets:
                    self.canonical.append(Canonical(key, "*", column, p.op, "tenant", "", at))
            elif p.vkind in ("literal", "null"):
                for t in [table] if table else (having(column) or ["*"]):
                    self.canonical.append(
                        Canonical(key, t, column, p.op, "literal", _const(p.value), at)
                    )
            else:
                self.notes.append(
                    f"{at}: canonical predicate part {key!r} compares with neither a literal nor "
                    "the principal's tenant: not required"
                )


def _tenant_placeholder(node: Any) -> bool:
    """``:principal.tenant_id`` / ``:principal.tenant_ids`` (the published placeholders)."""
    nodes = [node] if node is not None else []
    if isinstance(node, exp.Tuple):
        nodes = list(node.expressions)
    for n in nodes:
        if (
            isinstance(n, exp.Dot)
            and isinstance(n.this, exp.Placeholder)
            and n.this.name.lower() == "principal"
            and n.name.lower() in ("tenant_id", "tenant_ids")
        ):
            return True
    return False


def _const(value: Any) -> Const:
    return value if isinstance(value, str | int | float | bool) else str(value)


__all__ = ["Canonical", "ScanTenancy"]
