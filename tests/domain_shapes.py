"""Generated domains of many shapes, for the domain-shape property test.

A :class:`Shape` describes a multi-tenant schema nobody here wrote by hand: a root table that
carries the tenant column, a chain of 1-3 child tables below it (each scoped through its parent
by EXISTS row security, or carrying its own tenant column), a sibling of the chain (fan-out), a
leaf with a composite primary key, integer / text / uuid tenant keys, schema-qualified tables,
nullable foreign keys, a sensitive tenant dimension, policies reading one of several session
settings. :func:`write_domain` writes policy.yaml, surfaces.yaml, schema.sql and seed.sql for it;
:func:`shapes` draws shapes with hypothesis.

Table and column names come from word lists, so no rule can lean on one domain's names.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

from policystrata.paths import domains_dir

ENTITIES = ("workspaces", "clients", "stores", "projects", "fleets", "clinics")
CHILDREN = ("orders", "visits", "shipments", "devices", "campaigns", "contracts", "tasks")
GRANDCHILDREN = ("line_items", "readings", "payments", "events", "parcels", "notes")
TENANT_COLUMNS = ("tenant_id", "org_id", "account_key", "customer_ref")
#: The session setting the row security policies read (the rules derive it from them).
SETTINGS = ("app.tenant_id", "policystrata.firm_id", "app.current_org", "request.jwt.claims.org")
CATEGORIES = ("kind", "status", "channel", "tier", "segment", "category")
AMOUNTS = ("amount_cents", "value_cents", "units", "weight_grams")
DATES = ("created_on", "booked_on", "recorded_at", "happened_at")
UUIDS = ("3f2b8c1e-6d4a-4e8b-9a71-2c5d9e0f1a2b", "7c9e6679-7425-40de-944b-e07fc1f90ae7")
TENANTS = {"text": ("north", "south"), "integer": ("4821", "7310"), "uuid": UUIDS}
SQL_TYPE = {"text": "text", "integer": "integer", "uuid": "uuid"}


@dataclass(frozen=True)
class Table:
    name: str
    parent: str | None  # the table its parent_fk references (None for the root)
    parent_fk: str | None
    nullable_fk: bool
    tenant_column: bool  # carries its own tenant column
    category: str
    amount: str
    date: str
    date_type: str  # date | timestamptz
    flag: bool  # has a boolean column (for a FILTER metric)
    role: str = "chain"  # root | chain | sibling | leaf
    composite_key: bool = False  # PRIMARY KEY (parent_fk, line_no) instead of id


@dataclass(frozen=True)
class Shape:
    key_type: str  # text | integer | uuid
    tenant_col: str
    every_table: bool  # every table carries the tenant column (else only the root)
    qualified: bool  # tables created as app.<name>
    legacy: bool  # the root keeps an old ownership column legacy_<tenant column>
    sensitive_tenant: bool  # the tenant column is a (sensitive) dimension for admins
    exists_style: str  # join | nested | in: how a deep child's policy reaches the root
    tables: tuple[Table, ...] = field(default_factory=tuple)
    setting: str = "app.tenant_id"  # current_setting('<setting>', true) in every policy

    @property
    def root(self) -> Table:
        return self.tables[0]

    def tenants(self) -> tuple[str, str]:
        a, b = TENANTS[self.key_type]
        return a, b


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    key_type = draw(st.sampled_from(("text", "integer", "uuid")))
    tenant_col = draw(st.sampled_from(TENANT_COLUMNS))
    depth = draw(st.integers(1, 3))
    names = [draw(st.sampled_from(ENTITIES))]
    pools = [CHILDREN, GRANDCHILDREN, CHILDREN]
    for i in range(depth):
        pool = [n for n in pools[i] if n not in names]
        names.append(draw(st.sampled_from(pool)))
    every = draw(st.booleans())
    tables = []
    for i, name in enumerate(names):
        parent = names[i - 1] if i else None
        tables.append(
            Table(
                name=name,
                parent=parent,
                parent_fk=f"{parent[:-1]}_id" if parent else None,
                nullable_fk=bool(i) and draw(st.booleans()) and draw(st.booleans()),
                tenant_column=every or i == 0,
                category=draw(st.sampled_from(CATEGORIES)),
                amount=draw(st.sampled_from(AMOUNTS)),
                date=draw(st.sampled_from(DATES)),
                date_type=draw(st.sampled_from(("date", "timestamptz"))),
                flag=draw(st.booleans()),
                role="chain" if i else "root",
            )
        )
    # a sibling of the chain under the root (a one-to-many table nothing asks for)
    sibling = next(n for n in CHILDREN + GRANDCHILDREN if n not in names)
    tables.append(
        Table(
            name=sibling,
            parent=names[0],
            parent_fk=f"{names[0][:-1]}_id",
            nullable_fk=False,
            tenant_column=every,
            category=draw(st.sampled_from(CATEGORIES)),
            amount=draw(st.sampled_from(AMOUNTS)),
            date=draw(st.sampled_from(DATES)),
            date_type="date",
            flag=False,
            role="sibling",
        )
    )
    if draw(st.booleans()):  # a leaf keyed by (parent, line_no)
        leaf = next(n for n in GRANDCHILDREN + CHILDREN if n not in {t.name for t in tables})
        last = names[-1]
        tables.append(
            Table(
                name=leaf,
                parent=last,
                parent_fk=f"{last[:-1]}_id",
                nullable_fk=False,
                tenant_column=every,
                category=draw(st.sampled_from(CATEGORIES)),
                amount=draw(st.sampled_from(AMOUNTS)),
                date=draw(st.sampled_from(DATES)),
                date_type="date",
                flag=False,
                role="leaf",
                composite_key=True,
            )
        )
    return Shape(
        key_type=key_type,
        tenant_col=tenant_col,
        every_table=every,
        qualified=draw(st.booleans()),
        legacy=draw(st.booleans()),
        sensitive_tenant=draw(st.booleans()),
        exists_style=draw(st.sampled_from(("join", "nested", "in"))),
        tables=tuple(tables),
        setting=draw(st.sampled_from(SETTINGS)),
    )


# ---- writing a domain --------------------------------------------------------------------------


def _q(shape: Shape, table: str) -> str:
    return f"app.{table}" if shape.qualified else table


def _setting(shape: Shape) -> str:
    cast = "" if shape.key_type == "text" else f"::{SQL_TYPE[shape.key_type]}"
    return f"current_setting('{shape.setting}', true){cast}"


def _chain(shape: Shape, table: Table) -> list[Table]:
    """table's ancestors, nearest first, up to (and including) the root."""
    by_name = {t.name: t for t in shape.tables}
    out = []
    t = table
    while t.parent is not None:
        t = by_name[t.parent]
        out.append(t)
    return out


def _policy_using(shape: Shape, table: Table) -> str:
    col = shape.tenant_col
    if table.tenant_column:
        return f"{col} = {_setting(shape)}"
    chain = _chain(shape, table)
    outer = _q(shape, table.name)
    if shape.exists_style == "in" and len(chain) == 1:
        p = chain[0]
        parent = _q(shape, p.name)
        return f"{table.parent_fk} IN (SELECT id FROM {parent} WHERE {col} = {_setting(shape)})"
    if shape.exists_style == "nested" and len(chain) > 1:
        text = ""
        prev_alias, prev_fk = outer, table.parent_fk
        for i, p in enumerate(chain, start=1):
            alias = f"p{i}"
            cond = f"{alias}.id = {prev_alias}.{prev_fk}"
            if p.parent is None:
                cond += f" AND {alias}.{col} = {_setting(shape)}"
            text += f"EXISTS (SELECT 1 FROM {_q(shape, p.name)} {alias} WHERE {cond}"
            if p.parent is not None:
                text += " AND "
            prev_alias, prev_fk = alias, p.parent_fk
        return text + ")" * len(chain)
    # one EXISTS with the chain joined inside
    aliases = [f"p{i}" for i in range(1, len(chain) + 1)]
    frm = f"{_q(shape, chain[0].name)} {aliases[0]}"
    for i in range(1, len(chain)):
        frm += (
            f" JOIN {_q(shape, chain[i].name)} {aliases[i]} "
            f"ON {aliases[i]}.id = {aliases[i - 1]}.{chain[i - 1].parent_fk}"
        )
    return (
        f"EXISTS (SELECT 1 FROM {frm} WHERE {aliases[0]}.id = {outer}.{table.parent_fk} "
        f"AND {aliases[-1]}.{col} = {_setting(shape)})"
    )


def schema_sql(shape: Shape) -> str:
    ktype = SQL_TYPE[shape.key_type]
    lines = ["-- generated domain shape (tests/domain_shapes.py)"]
    if shape.qualified:
        lines.append("CREATE SCHEMA IF NOT EXISTS app;")
    for t in shape.tables:
        cols = []
        if t.composite_key:
            cols.append(f"    {t.parent_fk} integer NOT NULL REFERENCES {_q(shape, t.parent)} (id)")
            cols.append("    line_no integer NOT NULL")
        else:
            cols.append("    id serial PRIMARY KEY")
        if t.tenant_column:
            cols.append(f"    {shape.tenant_col} {ktype} NOT NULL")
        if t.parent_fk and not t.composite_key:
            null = "" if t.nullable_fk else " NOT NULL"
            cols.append(f"    {t.parent_fk} integer{null} REFERENCES {_q(shape, t.parent)} (id)")
        if t.parent is None:
            if shape.legacy:
                cols.append(f"    legacy_{shape.tenant_col} {ktype}")
            cols.append("    contact_email text NOT NULL")
        cols.append(f"    {t.category} text NOT NULL")
        cols.append(f"    {t.amount} integer NOT NULL")
        cols.append(f"    {t.date} {t.date_type} NOT NULL")
        if t.flag:
            cols.append("    flagged boolean NOT NULL DEFAULT false")
        if t.composite_key:
            cols.append(f"    PRIMARY KEY ({t.parent_fk}, line_no)")
        lines.append(f"CREATE TABLE {_q(shape, t.name)} (\n" + ",\n".join(cols) + "\n);")
    for t in shape.tables:
        q = _q(shape, t.name)
        lines.append(f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;")
        lines.append(f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY;")
        lines.append(
            f"CREATE POLICY {t.name}_isolation ON {q}\n    USING ({_policy_using(shape, t)});"
        )
        lines.append(f"GRANT SELECT ON {q} TO strata_app;")
    return "\n".join(lines) + "\n"


def policy_yaml(shape: Shape) -> str:
    a, b = shape.tenants()
    facts = [t for t in shape.tables if t.role in ("chain", "leaf")]
    first = facts[0]
    metric_lines: list[str] = []
    metrics: list[str] = []
    for t in facts:
        m = f"{t.name}_total"
        metrics.append(m)
        metric_lines += [
            f"  {m}:",
            f"    expression: sum({t.name}.{t.amount})",
            f"    table: {t.name}",
            "    allowed_roles: [analyst, admin]",
            "    cost: 10",
            f"    time_column: {t.name}.{t.date}",
        ]
        if not t.composite_key:
            m2 = f"{t.name}_count"
            metrics.append(m2)
            flt = f" filter (where {t.name}.flagged)" if t.flag else ""
            metric_lines += [
                f"  {m2}:",
                f"    expression: count(distinct {t.name}.id){flt}",
                f"    table: {t.name}",
                "    allowed_roles: [analyst, admin]",
                f"    aliases: [{t.name}_volume]",
                "    cost: 10",
                f"    time_column: {t.name}.{t.date}",
            ]
    restricted = "average_value"
    metric_lines += [
        f"  {restricted}:",
        f"    expression: avg({first.name}.{first.amount})",
        f"    table: {first.name}",
        "    allowed_roles: [admin]",
        "    aliases: [retired_average]",
        "    cost: 10",
    ]
    dims: list[str] = []
    dim_lines: list[str] = []
    for t in shape.tables:
        d = f"{t.name}_{t.category}"
        dims.append(d)
        dim_lines.append(
            f"  {d}: {{column: {t.name}.{t.category}, allowed_roles: [analyst, admin], cost: 2}}"
        )
    dims.append("period")
    dim_lines.append(
        f"  period: {{column: {first.name}.{first.date}, allowed_roles: [analyst, admin], cost: 2}}"
    )
    admin_dims = [*dims, "contact"]
    dim_lines.append(
        f"  contact: {{column: {shape.root.name}.contact_email, allowed_roles: [admin], "
        "sensitive: true, cost: 2}"
    )
    if shape.sensitive_tenant:
        admin_dims.append("tenant")
        dim_lines.append(
            f"  tenant: {{column: {shape.root.name}.{shape.tenant_col}, allowed_roles: [admin], "
            "sensitive: true, cost: 2}"
        )
    lines = [
        "version: v1",
        "as_of: 2026-06-01",
        "principals:",
        f"  a_analyst: {{id: a_analyst, role: analyst, tenant_ids: ['{a}']}}",
        f"  b_analyst: {{id: b_analyst, role: analyst, tenant_ids: ['{b}']}}",
        f"  a_admin: {{id: a_admin, role: admin, tenant_ids: ['{a}']}}",
        "roles:",
        "  analyst:",
        f"    allowed_metrics: [{', '.join(metrics)}]",
        f"    allowed_dimensions: [{', '.join(dims)}]",
        "    allowed_time_ranges: [last_month, last_fiscal_month]",
        "    max_rows: 1000",
        "    max_cost: 60",
        "  admin:",
        f"    allowed_metrics: [{', '.join([*metrics, restricted])}]",
        f"    allowed_dimensions: [{', '.join(admin_dims)}]",
        "    allowed_time_ranges: [last_month, last_fiscal_month, fiscal_ytd]",
        "    max_rows: 5000",
        "    max_cost: 200",
        "metrics:",
        *metric_lines,
        "dimensions:",
        *dim_lines,
    ]
    if shape.tenant_col != "tenant_id":
        lines.append("tenancy:")
        lines += [f"  {t.name}: {shape.tenant_col}" for t in shape.tables if t.tenant_column]
    return "\n".join(lines) + "\n"


def write_domain(shape: Shape, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "schema.sql").write_text(schema_sql(shape))
    (path / "policy.yaml").write_text(policy_yaml(shape))
    (path / "seed.sql").write_text("-- no rows: the shape test judges artifacts only\n")
    shutil.copy(domains_dir() / "support_saas" / "surfaces.yaml", path / "surfaces.yaml")
    return path
