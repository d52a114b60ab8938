"""A domain: policy.yaml + surfaces.yaml + schema.sql, loaded and cross-checked.

``load_domain`` validates each file against its pydantic model (errors carry file:line), parses
schema.sql with :func:`policystrata.lower.schema.parse_schema`, then checks every reference and
reports *all* broken ones at once as :class:`~policystrata.errors.InputErrors`.

>>> d = load_domain("support_saas")
>>> d.name, sorted(d.policy.principals)[:2], str(d.where("policy", "roles", "analyst", "max_rows"))
('support_saas', ['acme_analyst', 'acme_finance_admin'], 'policy.yaml:19')
>>> d.metric_agg("ticket_count")
('count', True, 'support_tickets', 'id')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlglot
from sqlglot import exp

from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.facts import Provenance
from policystrata.model.calendar import default_time_ranges
from policystrata.model.policy import Policy
from policystrata.model.surfaces import Surfaces
from policystrata.model.yamlsrc import (
    YamlDoc,
    format_path,
    load_yaml_file,
    read_text_file,
    validate,
)
from policystrata.paths import domains_dir

FileKind = Literal["policy", "surfaces", "schema"]
FILE_NAMES: dict[str, str] = {
    "policy": "policy.yaml",
    "surfaces": "surfaces.yaml",
    "schema": "schema.sql",
}
Names = Iterable[str] | Callable[[], Iterable[str]] | None


@dataclass(frozen=True)
class MetricAgg:
    """A metric's aggregate: function, DISTINCT, argument table and column (``*`` for count(*))."""

    func: str
    distinct: bool
    table: str
    column: str

    def as_tuple(self) -> tuple[str, bool, str, str]:
        return (self.func, self.distinct, self.table, self.column)


@dataclass
class Domain:
    """A loaded, cross-checked domain."""

    name: str
    path: Path
    policy: Policy
    surfaces: Surfaces
    schema: Any  # policystrata.lower.schema.SchemaInfo
    sources: dict[str, Path] = field(default_factory=dict)
    docs: dict[str, YamlDoc] = field(default_factory=dict)
    aggs: dict[str, MetricAgg] = field(default_factory=dict)

    def line(self, kind: str, *path: str | int) -> int | None:
        doc = self.docs.get(kind)
        return doc.line(path) if doc is not None else None

    def where(self, kind: str, *path: str | int) -> Provenance:
        """Provenance of a model object: ``where("policy", "roles", "analyst")`` ->
        ``policy.yaml:<line>``. ``kind`` is ``policy`` or ``surfaces``."""
        return Provenance(FILE_NAMES.get(kind, kind), line=self.line(kind, *path))

    def schema_table_line(self, table: str) -> int | None:
        t = self.schema.tables.get(table)
        return t.line if t is not None else None

    def metric_agg(self, metric: str) -> tuple[str, bool, str, str] | None:
        agg = self.aggs.get(metric)
        return agg.as_tuple() if agg else None

    def metric_time_column(self, metric: str) -> tuple[str, str] | None:
        """(table, column) a time range applies to: the metric's ``time_column``, else the first
        date/timestamp column of its table."""
        m = self.policy.metrics[metric]
        if m.time_column:
            return split_column(m.time_column, m.table)
        table = self.schema.tables.get(m.table)
        if table is None:
            return None
        for col, typ in table.columns.items():
            if typ.startswith("date") or typ.startswith("timestamp"):
                return (m.table, col)
        return None

    def time_ranges(self) -> dict[str, tuple[str, str, str]]:
        """Label -> (start, end, calendar): the default calendar at ``as_of`` overridden by the
        policy's ``time_ranges``."""
        out = default_time_ranges(self.policy.as_of)
        for label, tr in self.policy.time_ranges.items():
            out[label] = (tr.start.isoformat(), tr.end.isoformat(), tr.calendar)
        return out

    def tenant_columns(self) -> dict[str, str]:
        """Table -> tenant column: ``tenancy`` entries, else a column named ``tenant_id``."""
        out: dict[str, str] = {}
        for name, table in self.schema.tables.items():
            if name in self.policy.tenancy:
                col = self.policy.tenancy[name]
                if col:
                    out[name] = col
            elif "tenant_id" in table.columns:
                out[name] = "tenant_id"
        return out


def split_column(ref: str, default_table: str | None = None) -> tuple[str, str]:
    """``"invoices.net_amount_cents"`` -> ``("invoices", "net_amount_cents")``."""
    if "." in ref:
        table, col = ref.rsplit(".", 1)
        return table, col
    if default_table is None:
        raise ValueError(f"column '{ref}' needs a table (table.column)")
    return default_table, ref


def parse_metric_agg(expression: str, default_table: str) -> MetricAgg:
    """Parse a metric expression's aggregate with sqlglot.

    >>> parse_metric_agg("sum(invoices.net_amount_cents)", "invoices").as_tuple()
    ('sum', False, 'invoices', 'net_amount_cents')
    >>> parse_metric_agg("count(*) filter (where t.x)", "t").as_tuple()
    ('count', False, 't', '*')
    """
    try:
        tree = sqlglot.parse_one(expression, dialect="postgres")
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(f"cannot parse metric expression: {str(exc).splitlines()[0]}") from None
    if isinstance(tree, exp.Filter):
        tree = tree.this
    if isinstance(tree, exp.AggFunc):
        func = tree.key.lower()
        arg = tree.this
    elif isinstance(tree, exp.Anonymous):
        func = str(tree.name).lower()
        arg = tree.expressions[0] if tree.expressions else exp.Star()
    else:
        raise ValueError(
            f"metric expression must be one aggregate call, e.g. sum(t.c); got {expression!r}"
        )
    distinct = isinstance(arg, exp.Distinct)
    if distinct:
        arg = arg.expressions[0] if arg.expressions else exp.Star()
    if isinstance(arg, exp.Star) or arg is None:
        return MetricAgg(func, distinct, default_table, "*")
    if isinstance(arg, exp.Column):
        return MetricAgg(func, distinct, arg.table or default_table, arg.name)
    cols = list(arg.find_all(exp.Column))
    if len(cols) == 1:
        return MetricAgg(func, distinct, cols[0].table or default_table, cols[0].name)
    raise ValueError(f"metric aggregate argument must be one column, got {arg.sql()!r}")


def _names(names: Names) -> set[str] | None:
    if names is None:
        return None
    if callable(names):
        names = names()
    return set(names)


def resolve_domain_path(name_or_path: str | Path) -> Path:
    """A bare name is a built-in domain; anything with a path separator (or existing) is a path."""
    p = Path(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and "\\" not in name_or_path:
        builtin = domains_dir() / name_or_path
        if builtin.is_dir() or not p.is_dir():
            if not builtin.is_dir():
                known = sorted(d.name for d in domains_dir().iterdir() if d.is_dir())
                raise InputError(
                    f"unknown domain '{name_or_path}'{did_you_mean(name_or_path, known)}"
                    f" (built-in: {', '.join(known)}; or give a directory path)"
                )
            return builtin
    if not p.is_dir():
        raise InputError(f"domain directory not found: {p}")
    return p


def load_domain(
    name_or_path: str | Path,
    known_responsibilities: Names = None,
    known_obligations: Names = None,
) -> Domain:
    """Load and cross-check a domain (a built-in name or a directory).

    ``known_responsibilities`` / ``known_obligations`` are the names the rule program uses
    (an iterable, or a callable returning one); surfaces.yaml names outside them are errors.
    ``None`` skips that check.
    """
    from policystrata.lower.schema import parse_schema

    path = resolve_domain_path(name_or_path)
    sources = {kind: path / fname for kind, fname in FILE_NAMES.items()}
    for kind, src in sources.items():
        if not src.is_file():
            raise InputError(f"missing {FILE_NAMES[kind]} in domain {path}", file=str(src))
    docs: dict[str, YamlDoc] = {}
    errors: list[InputError] = []
    models: dict[str, Any] = {}
    for kind, model in (("policy", Policy), ("surfaces", Surfaces)):
        try:
            doc = load_yaml_file(sources[kind], FILE_NAMES[kind])
            docs[kind] = doc
            models[kind] = validate(model, doc)
        except InputErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    try:
        schema = parse_schema(read_text_file(sources["schema"], "schema.sql"), source="schema.sql")
    except InputError as exc:
        errors.append(exc)
        schema = None
    if errors:
        raise InputErrors(errors)
    domain = Domain(
        name=path.name,
        path=path,
        policy=models["policy"],
        surfaces=models["surfaces"],
        schema=schema,
        sources={k: v for k, v in sources.items()},
        docs=docs,
    )
    check_domain(domain, _names(known_responsibilities), _names(known_obligations))
    return domain


def check_domain(
    domain: Domain,
    known_responsibilities: set[str] | None = None,
    known_obligations: set[str] | None = None,
) -> None:
    """Referential integrity; raises :class:`InputErrors` with every problem found."""
    pol, pdoc = domain.policy, domain.docs["policy"]
    errors: list[InputError] = []

    def err(path: tuple[str | int, ...], msg: str, doc: YamlDoc = pdoc) -> None:
        errors.append(doc.error(path, msg))

    tables = domain.schema.tables

    def check_column(
        path: tuple[str | int, ...], ref: str, default_table: str | None = None
    ) -> None:
        try:
            table, col = split_column(ref, default_table)
        except ValueError as exc:
            err(path, str(exc))
            return
        if table not in tables:
            err(path, f"table '{table}' is not in schema.sql{did_you_mean(table, tables)}")
        elif col != "*" and col not in tables[table].columns:
            err(
                path,
                f"column '{col}' is not a column of table '{table}' in schema.sql"
                f"{did_you_mean(col, tables[table].columns)}",
            )

    def check_condition(path: tuple[str | int, ...], text: str, table: str) -> None:
        """A declared filter must be a SQL condition on known columns."""
        from policystrata.lower.sql.adapter import SqlglotError, exp, ident_name, parse_expression

        try:
            tree = parse_expression(text)
        except SqlglotError as exc:
            err(path, f"cannot parse filter {text!r}: {str(exc).splitlines()[0]}")
            return
        for col in tree.find_all(exp.Column):
            qual = ident_name(col.args.get("table")) or table
            check_column(path, f"{qual}.{ident_name(col.this)}")

    roles, metrics, dims = pol.roles, pol.metrics, pol.dimensions
    labels = domain.time_ranges()
    alias_owner: dict[str, str] = {}

    for pname, principal in pol.principals.items():
        if principal.id != pname:
            err(
                ("principals", pname, "id"),
                f"principal key '{pname}' and id '{principal.id}' differ",
            )
        if principal.role not in roles:
            err(
                ("principals", pname, "role"),
                f"unknown role '{principal.role}'{did_you_mean(principal.role, roles)}",
            )

    for rname, role in roles.items():
        for i, m in enumerate(role.allowed_metrics):
            if m not in metrics:
                canon = pol.resolve_metric(m)
                hint = (
                    f" ('{m}' is an alias of '{canon}'; list the canonical name)"
                    if canon
                    else did_you_mean(m, metrics)
                )
                err(("roles", rname, "allowed_metrics", i), f"unknown metric '{m}'{hint}")
        for i, d in enumerate(role.allowed_dimensions):
            if d not in dims:
                err(
                    ("roles", rname, "allowed_dimensions", i),
                    f"unknown dimension '{d}'{did_you_mean(d, dims)}",
                )
        for i, t in enumerate(role.allowed_time_ranges):
            if t not in labels:
                err(
                    ("roles", rname, "allowed_time_ranges", i),
                    f"unknown time range '{t}'{did_you_mean(t, labels)}",
                )

    for mname, metric in metrics.items():
        for i, r in enumerate(metric.allowed_roles or ()):
            if r not in roles:
                err(
                    ("metrics", mname, "allowed_roles", i),
                    f"unknown role '{r}'{did_you_mean(r, roles)}",
                )
        if metric.table not in tables:
            err(
                ("metrics", mname, "table"),
                f"table '{metric.table}' is not in schema.sql{did_you_mean(metric.table, tables)}",
            )
        for i, c in enumerate(metric.columns or ()):
            check_column(("metrics", mname, "columns", i), c, metric.table)
        if metric.time_column:
            check_column(("metrics", mname, "time_column"), metric.time_column, metric.table)
        try:
            agg = parse_metric_agg(metric.expression, metric.table)
            domain.aggs[mname] = agg
            if metric.table in tables:
                check_column(("metrics", mname, "expression"), f"{agg.table}.{agg.column}")
        except ValueError as exc:
            err(("metrics", mname, "expression"), str(exc))
        for i, alias in enumerate(metric.aliases):
            if alias in metrics:
                err(
                    ("metrics", mname, "aliases", i),
                    f"alias '{alias}' collides with metric '{alias}'",
                )
            elif alias in alias_owner and alias_owner[alias] != mname:
                err(
                    ("metrics", mname, "aliases", i),
                    f"alias '{alias}' is already an alias of metric '{alias_owner[alias]}'",
                )
            alias_owner.setdefault(alias, mname)

    for dname, dim in dims.items():
        for i, r in enumerate(dim.allowed_roles or ()):
            if r not in roles:
                err(
                    ("dimensions", dname, "allowed_roles", i),
                    f"unknown role '{r}'{did_you_mean(r, roles)}",
                )
        check_column(("dimensions", dname, "column"), dim.column)

    for table, col in pol.tenancy.items():
        if table not in tables:
            err(
                ("tenancy", table),
                f"table '{table}' is not in schema.sql{did_you_mean(table, tables)}",
            )
        elif col is not None and col not in tables[table].columns:
            err(
                ("tenancy", table),
                f"column '{col}' is not a column of table '{table}' in schema.sql",
            )
    for mname, metric in metrics.items():
        for i, text in enumerate(metric.filters):
            check_condition(("metrics", mname, "filters", i), text, metric.table)
    for table, spec in pol.tables.items():
        if table not in tables:
            err(
                ("tables", table),
                f"table '{table}' is not in schema.sql{did_you_mean(table, tables)}",
            )
            continue
        for i, text in enumerate(spec.filters):
            check_condition(("tables", table, "filters", i), text, table)
    for i, join in enumerate(pol.joins):
        check_column(("joins", i, "from"), join.from_)
        check_column(("joins", i, "to"), join.to)

    sdoc = domain.docs["surfaces"]
    for sname, contract in domain.surfaces.contracts.items():
        if known_responsibilities is not None:
            for i, r in enumerate(contract.responsibilities):
                if r not in known_responsibilities:
                    err(
                        ("contracts", sname, "responsibilities", i),
                        f"unknown responsibility '{r}' (no rule uses it)"
                        f"{did_you_mean(r, known_responsibilities)}",
                        sdoc,
                    )
        if known_obligations is not None:
            for key in ("accepts_obligations", "emits_obligations"):
                for i, o in enumerate(getattr(contract, key)):
                    if o not in known_obligations:
                        err(
                            ("contracts", sname, key, i),
                            f"unknown obligation '{o}'{did_you_mean(o, known_obligations)}",
                            sdoc,
                        )
    if known_obligations is not None:
        for i, o in enumerate(domain.surfaces.transition_obligations):
            if o not in known_obligations:
                err(
                    ("transition_obligations", i),
                    f"unknown obligation '{o}'{did_you_mean(o, known_obligations)}",
                    sdoc,
                )
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0))
        raise InputErrors(errors)


__all__ = [
    "Domain",
    "MetricAgg",
    "check_domain",
    "format_path",
    "load_domain",
    "parse_metric_agg",
    "resolve_domain_path",
    "split_column",
]
