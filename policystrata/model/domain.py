"""A domain: policy.yaml + surfaces.yaml + schema.sql, loaded and cross-checked.

``load_domain`` validates each file against its pydantic model (errors carry file:line), parses
schema.sql with :func:`policystrata.sql.ddl.read_ddl`, then checks every reference and
reports *all* broken ones at once as :class:`~policystrata.errors.InputErrors`.

Domains as users have them (COMPAT.md §8) load too, with :attr:`Domain.warnings` (``file:line:
message``, printed on stderr) instead of errors where the published tool accepted the file:

- no schema.sql: tables and columns come from the policy (``SchemaInfo.known`` is false; every
  table is partial); references cannot be checked and checks that need keys or RLS say so;
- a migration-style schema.sql: tables it only refers to are partial (their columns are not
  all known), and a policy reference to a table it never mentions is a warning;
- a metric expression or dimension column that is not understood (COMPAT.md §2 lists the
  forms that are: :mod:`policystrata.model.expressions`): a warning, never an error;
- a principal whose ``id`` differs from its key (the key is what lookups use).

>>> d = load_domain("support_saas")
>>> d.name, sorted(d.policy.principals)[:2], str(d.where("policy", "roles", "analyst", "max_rows"))
('support_saas', ['acme_analyst', 'acme_finance_admin'], 'policy.yaml:19')
>>> d.metric_agg("ticket_count")
('count', True, 'support_tickets', 'id')
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from policystrata.errors import InputError, InputErrors, did_you_mean
from policystrata.facts import Provenance
from policystrata.model.calendar import (
    PUBLISHED_AS_OF,
    PUBLISHED_TIMEZONES,
    PUBLISHED_TO_DATE,
    UNBOUNDED_LABELS,
    default_time_ranges,
)
from policystrata.model.expressions import ExprInfo, read_dimension, read_metric
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
from policystrata.sql.adapter import SqlglotError, exp, ident_name, parse_expression

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
    schema: Any  # policystrata.sql.ddl.SchemaInfo
    sources: dict[str, Path] = field(default_factory=dict)
    docs: dict[str, YamlDoc] = field(default_factory=dict)
    aggs: dict[str, MetricAgg] = field(default_factory=dict)
    metric_exprs: dict[str, ExprInfo] = field(default_factory=dict)
    dimension_exprs: dict[str, ExprInfo] = field(default_factory=dict)
    warnings: list[InputError] = field(default_factory=list)
    #: the scan config's tenancy (policystrata.scan.tenancy.ScanTenancy), set by the scan
    scan_tenancy: Any = None
    #: facts a caller adds to the policy facts (the scan config's gate inputs), with provenance
    extra_facts: Any = None

    @property
    def schema_known(self) -> bool:
        """The domain has a schema.sql (tables, keys and RLS come from DDL)."""
        return bool(self.schema.known)

    def metric_unknown(self, metric: str) -> str | None:
        """Why the metric's expression gives its semantic checks nothing to compare with (not
        SQL, or no aggregate and no other metric), or None when it is understood."""
        info = self.metric_exprs.get(metric)
        if info is None:
            return None
        if info.problem is not None:
            return info.problem
        if info.aggregates == 0 and not self.metric_refs(metric):
            return "it has no aggregate and names no other metric"
        return None

    def metric_refs(self, metric: str) -> list[str]:
        """Other metrics a derived metric's expression names outside any aggregate
        (``(bookings - ref_bookings) * 1.0 / bookings``, ``c.booking_value_sub_instant + 10``)."""
        info = self.metric_exprs.get(metric)
        return _metric_refs(info, self.policy.metrics, metric) if info else []

    def metric_columns(self, metric: str) -> list[tuple[str, str]]:
        """The (table, column) pairs a metric's expression reads (other metrics excluded;
        unqualified columns are the metric table's)."""
        info = self.metric_exprs.get(metric)
        if info is None:
            return []
        return _metric_columns(info, self.policy.metrics, metric, self.policy.metrics[metric].table)

    def dimension_base(self, name: str) -> tuple[str, str] | None:
        """The (table, column) a dimension reads: its column, or the first column its expression
        reads (``date_trunc('month', invoices.invoice_date)`` -> invoices.invoice_date); None for
        a ``query_token`` or an expression that is not understood."""
        info = self.dimension_exprs.get(name) or read_dimension(self.policy.dimensions[name].column)
        for table, column in info.columns:
            if table is not None:
                return table, column
        return None

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

    @property
    def published_calendar(self) -> bool:
        """The policy sets no ``as_of``: labels it does not define get the published calendar's
        bounds (:mod:`policystrata.model.calendar`)."""
        return "as_of" not in self.policy.model_fields_set

    def time_ranges(self) -> dict[str, tuple[str, str, str]]:
        """Label -> (start, end, calendar) of every *bounded* label: the default calendar at
        ``as_of`` overridden by the policy's ``time_ranges`` (unbounded labels such as
        ``all_time`` are in :meth:`time_range_labels` only)."""
        as_of = self.policy.as_of
        to_date = PUBLISHED_TO_DATE if self.published_calendar else as_of
        if self.published_calendar and as_of != PUBLISHED_AS_OF:  # pragma: no cover - defensive
            to_date = as_of
        out = default_time_ranges(as_of, to_date)
        for label, tr in self.policy.time_ranges.items():
            out[label] = (tr.start.isoformat(), tr.end.isoformat(), tr.calendar)
        return out

    def unbounded_time_ranges(self) -> list[str]:
        """Labels without bounds (``all_time``): a query over them has no time predicate."""
        return [label for label in UNBOUNDED_LABELS if label not in self.policy.time_ranges]

    def time_range_labels(self) -> list[str]:
        """Every time range label the policy knows: bounded and unbounded."""
        return [*self.time_ranges(), *self.unbounded_time_ranges()]

    def time_range_timezone(self, label: str) -> str | None:
        """The time zone a label's bounds are local to: the policy's ``time_ranges`` entry, else
        the published calendar's (``last_7_days``: America/Los_Angeles), else None."""
        tr = self.policy.time_ranges.get(label)
        if tr is not None:
            return tr.timezone
        return PUBLISHED_TIMEZONES.get(label) if self.published_calendar else None

    def tenant_columns(self) -> dict[str, str]:
        """Table -> tenant column: the scan config's tenancy (it wins), ``tenancy`` entries,
        else a column named ``tenant_id``."""
        out: dict[str, str] = {}
        scan = self.scan_tenancy.tenant_columns if self.scan_tenancy is not None else {}
        for name, cols in scan.items():
            out[name] = cols[0][0]
        for name, table in self.schema.tables.items():
            if name in out:
                continue
            if name in self.policy.tenancy:
                col = self.policy.tenancy[name]
                if col:
                    out[name] = col
            elif "tenant_id" in table.columns:
                out[name] = "tenant_id"
        return out

    def request_notes(self, principal: str | None, ir: Any, ir_text: str) -> list[str]:
        """Names in a command-line request that policy.yaml does not know, with the closest known
        name. They are notes, not errors: the request is checked as given (an unknown metric that
        reached SQL is exactly what the validator must deny), but a typo should not pass unnoticed.

        >>> from policystrata.ir import parse_ir
        >>> from policystrata.model import load_domain
        >>> for n in load_domain("support_saas").request_notes("acme_analyts",
        ...         parse_ir("ticket_cnt by regio during last_month"),
        ...         "ticket_cnt by regio during last_month"):
        ...     print(n)
        --principal: 'acme_analyts' is not a principal of policy.yaml (did you mean 'acme_analyst'?)
        --ir:1:1: 'ticket_cnt' is not a metric of policy.yaml (did you mean 'ticket_count'?)
        --ir:1:15: 'regio' is not a dimension of policy.yaml (did you mean 'region'?)
        """
        import re

        from policystrata.errors import did_you_mean

        pol = self.policy
        notes = []
        if principal and principal not in pol.principals:
            notes.append(
                f"--principal: '{principal}' is not a principal of policy.yaml"
                + did_you_mean(principal, pol.principals)
            )
        if ir is None:
            return notes

        def at(name: str) -> str:
            m = re.search(rf"(?<![\w\"]){re.escape(name)}(?![\w\"])", ir_text)
            if m is None:
                return "--ir"
            line = ir_text.count("\n", 0, m.start()) + 1
            column = m.start() - (ir_text.rfind("\n", 0, m.start()) + 1) + 1
            return f"--ir:{line}:{column}"

        metrics = [*pol.metrics, *(a for m in pol.metrics.values() for a in m.aliases)]
        checks = [("metric", ir.metric, pol.resolve_metric(ir.metric) is not None, metrics)]
        dims = list(pol.dimensions)
        checks += [("dimension", d, d in pol.dimensions, dims) for d in ir.dimensions]
        checks += [
            ("dimension", f.dimension, f.dimension in pol.dimensions, dims) for f in ir.filters
        ]
        if ir.time_range is not None:
            labels = list(self.time_range_labels())
            checks.append(("time range", ir.time_range, ir.time_range in labels, labels))
        seen = set()
        for kind, name, known, candidates in checks:
            if not known and (kind, name) not in seen:
                seen.add((kind, name))
                notes.append(
                    f"{at(name)}: '{name}' is not a {kind} of policy.yaml"
                    + did_you_mean(name, candidates)
                )
        return notes


def _metric_refs(info: ExprInfo, metrics: Iterable[str], name: str) -> list[str]:
    names = set(metrics) - {name}
    return list(dict.fromkeys(c for _t, c in info.outside if c in names))


def _metric_columns(
    info: ExprInfo, metrics: Iterable[str], name: str, table: str
) -> list[tuple[str, str]]:
    refs = set(_metric_refs(info, metrics, name))
    out = []
    for t, c in info.columns:
        if (t, c) in info.outside and c in refs:
            continue
        if (t or table, c) not in out:
            out.append((t or table, c))
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
    """The first aggregate of a metric expression (any form of
    :mod:`policystrata.model.expressions`, read in its canonical SQL): function, DISTINCT and
    the one column it aggregates (``*`` for rows). Raises ``ValueError`` when the expression is
    not understood or aggregates no single column.

    >>> parse_metric_agg("sum(invoices.net_amount_cents)", "invoices").as_tuple()
    ('sum', False, 'invoices', 'net_amount_cents')
    >>> parse_metric_agg("count(*) filter (where t.x)", "t").as_tuple()
    ('count', False, 't', '*')
    >>> parse_metric_agg("uniqExact(events.user_id)", "events").as_tuple()
    ('count', True, 'events', 'user_id')
    >>> parse_metric_agg(", COALESCE(SUM(1), 0)", "bookings").as_tuple()
    ('sum', False, 'bookings', '*')
    """
    info = read_metric(expression)
    if info.sql is None:
        raise ValueError(f"cannot read metric expression: {info.problem}")
    try:
        tree = parse_expression(info.sql)
    except SqlglotError as exc:  # pragma: no cover - canonical SQL always parses
        raise ValueError(f"cannot parse metric expression: {exc}") from None
    agg = next(iter(tree.find_all(exp.AggFunc)), None)
    if agg is None:
        raise ValueError(f"metric expression has no aggregate call: {expression!r}")
    func = _AGG_NAMES.get(type(agg), agg.key.lower())
    arg = agg.this
    distinct = isinstance(arg, exp.Distinct)
    if isinstance(arg, exp.Distinct):
        arg = arg.expressions[0] if arg.expressions else exp.Star()
    if arg is None or isinstance(arg, exp.Star) or not arg.find(exp.Column):
        return MetricAgg(func, distinct, default_table, "*")
    cols = list(arg.find_all(exp.Column))
    if len(cols) == 1 or isinstance(arg, exp.Column):
        qual = cols[0].args.get("table")
        table = ident_name(qual) if qual is not None else default_table
        return MetricAgg(func, distinct, table, ident_name(cols[0].this))
    raise ValueError(f"metric aggregate argument must be one column, got {arg.sql()!r}")


_AGG_NAMES: dict[type, str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}


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
    from policystrata.sql.ddl import read_ddl

    path = resolve_domain_path(name_or_path)
    sources = {kind: path / fname for kind, fname in FILE_NAMES.items()}
    for kind, src in sources.items():
        if not src.is_file() and kind != "schema":  # published example domains ship none
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
    schema = None
    if sources["schema"].is_file():
        try:
            text = read_text_file(sources["schema"], "schema.sql")
            schema = read_ddl(text, source="schema.sql")
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise InputErrors(errors)
    if schema is None:
        schema = policy_schema(models["policy"], docs["policy"])
    domain = Domain(
        name=path.name,
        path=path,
        policy=models["policy"],
        surfaces=models["surfaces"],
        schema=schema,
        sources={k: v for k, v in sources.items() if v.is_file()},
        docs=docs,
        warnings=list(schema.notes),
    )
    check_domain(domain, _names(known_responsibilities), _names(known_obligations))
    return domain


def policy_schema(policy: Policy, doc: YamlDoc) -> Any:
    """A domain without schema.sql: the tables and columns the policy names (metric tables,
    columns and expressions, dimension columns, tenancy, join overrides), every table partial
    and every type ``unknown``; ``known`` is false. Facts carry the policy's lines."""
    from policystrata.facts import FactSet
    from policystrata.sql.ddl import SchemaInfo, TableInfo

    tables: dict[str, TableInfo] = {}
    facts = FactSet()

    def add(table: str | None, column: str | None, *path: str | int) -> None:
        if not table:
            return
        line = doc.line(path) or 0
        info = tables.setdefault(table, TableInfo(table, line=line, partial=True))
        prov = Provenance("policy.yaml", line=line, note="from policy.yaml (no schema.sql)")
        facts.add("table", table, prov=prov)
        facts.add("table_partial", table, prov=prov)
        if column and column != "*" and column not in info.columns:
            info.columns[column] = "unknown"
            facts.add("table_column", table, column, "unknown", prov=prov)

    metric_names = set(policy.metrics)
    for name, m in policy.metrics.items():
        add(m.table, None, "metrics", name, "table")
        for i, ref in enumerate(m.columns or ()):
            t, c = split_column(ref, m.table)
            add(t, c, "metrics", name, "columns", i)
        for t, c in _metric_columns(read_metric(m.expression), metric_names, name, m.table):
            add(t, c, "metrics", name, "expression")
        if m.time_column:
            add(*split_column(m.time_column, m.table), "metrics", name, "time_column")
    for name, dim in policy.dimensions.items():
        for dtable, dcol in read_dimension(dim.column).columns:
            add(dtable, dcol, "dimensions", name, "column")
    for table, col in policy.tenancy.items():
        add(table, col, "tenancy", table)
    for i, join in enumerate(policy.joins):
        for key, ref in (("from", join.from_), ("to", join.to)):
            if "." in ref:
                add(*split_column(ref), "joins", i, key)
    return SchemaInfo(tables=tables, facts=facts, source="policy.yaml", known=False)


def check_domain(
    domain: Domain,
    known_responsibilities: set[str] | None = None,
    known_obligations: set[str] | None = None,
) -> None:
    """Referential integrity; raises :class:`InputErrors` with every problem found (and records
    :attr:`Domain.warnings` for what the published format accepts, see the module doc)."""
    pol, pdoc = domain.policy, domain.docs["policy"]
    errors: list[InputError] = []

    def err(path: tuple[str | int, ...], msg: str, doc: YamlDoc = pdoc) -> None:
        errors.append(doc.error(path, msg))

    def warn(path: tuple[str | int, ...], msg: str) -> None:
        domain.warnings.append(pdoc.error(path, msg))

    schema = domain.schema
    tables = schema.tables
    # a migration-style schema (it refers to tables it never creates) does not list every
    # table: a policy reference to a table it never mentions is a warning there, not an error
    migration = bool(schema.partial)

    def check_table(path: tuple[str | int, ...], table: str) -> bool:
        """Is the table known (created or referred to by schema.sql)?"""
        if not schema.known or table in tables:
            return True
        msg = f"table '{table}' is not in schema.sql{did_you_mean(table, tables)}"
        if migration:
            warn(path, msg + " (a migration-style schema.sql: its columns are unknown)")
        else:
            err(path, msg)
        return False

    def check_column(
        path: tuple[str | int, ...], ref: str, default_table: str | None = None
    ) -> None:
        try:
            table, col = split_column(ref, default_table)
        except ValueError as exc:
            err(path, str(exc))
            return
        if not check_table(path, table) or not schema.complete(table):
            return
        if col != "*" and col not in tables[table].columns:
            err(
                path,
                f"column '{col}' is not a column of table '{table}' in schema.sql"
                f"{did_you_mean(col, tables[table].columns)}",
            )

    def check_condition(path: tuple[str | int, ...], text: str, table: str) -> None:
        """A declared filter must be a SQL condition on known columns."""
        from policystrata.sql.adapter import SqlglotError, exp, ident_name, parse_expression

        try:
            tree = parse_expression(text)
        except SqlglotError as exc:
            err(path, f"cannot parse filter {text!r}: {str(exc).splitlines()[0]}")
            return
        for col in tree.find_all(exp.Column):
            qual = ident_name(col.args.get("table")) or table
            check_column(path, f"{qual}.{ident_name(col.this)}")

    roles, metrics, dims = pol.roles, pol.metrics, pol.dimensions
    labels = domain.time_range_labels()
    alias_owner: dict[str, str] = {}

    for pname, principal in pol.principals.items():
        if principal.id != pname:
            warn(
                ("principals", pname, "id"),
                f"principal key '{pname}' and id '{principal.id}' differ (lookups use the key)",
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
        table_ok = check_table(("metrics", mname, "table"), metric.table)
        for i, c in enumerate(metric.columns or ()):
            check_column(("metrics", mname, "columns", i), c, metric.table)
        if metric.time_column:
            check_column(("metrics", mname, "time_column"), metric.time_column, metric.table)
        info = read_metric(metric.expression)
        domain.metric_exprs[mname] = info
        if table_ok:
            for t, c in domain.metric_columns(mname):
                check_column(("metrics", mname, "expression"), f"{t}.{c}")
        unknown = domain.metric_unknown(mname)
        if unknown is not None:
            warn(
                ("metrics", mname, "expression"),
                f"metric expression not understood ({unknown}): the checks of {mname}'s "
                "semantics have nothing to compare the SQL with",
            )
        with contextlib.suppress(ValueError):  # no single aggregate: the stack cannot lower it
            domain.aggs[mname] = parse_metric_agg(metric.expression, metric.table)
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
        dinfo = read_dimension(dim.column)
        domain.dimension_exprs[dname] = dinfo
        if dinfo.problem is not None:
            warn(
                ("dimensions", dname, "column"),
                f"dimension column not understood ({dinfo.problem}): no column is known for "
                f"{dname}",
            )
        elif dinfo.token is None and not dinfo.columns:
            warn(("dimensions", dname, "column"), f"dimension {dname} reads no column")
        for dtable, dcol in dinfo.columns:
            if dtable is None:
                warn(
                    ("dimensions", dname, "column"),
                    f"column '{dcol}' needs a table (table.column): it is not checked",
                )
            else:
                check_column(("dimensions", dname, "column"), f"{dtable}.{dcol}")

    for table, col in pol.tenancy.items():
        if not check_table(("tenancy", table), table) or not schema.complete(table):
            continue
        if col is not None and col not in tables[table].columns:
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
