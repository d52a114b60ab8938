"""The scan's ``fuzz`` stage: the published fuzz operators over each clean imported record,
judged by our detector.

A record the detector judges clean is a *pass-to-pass* example of the application: the fuzz
stage asks whether the gate would notice if that record regressed. Each operator is a real
transform of one layer's artifact — the SQL (on its sqlglot tree, never its text), the
semantic IR, or the record's release decision — at one *mutation point* of the record:

===============================  =========  ================  ================================
operator                         layer      class             mutation point -> mutant
===============================  =========  ================  ================================
``tenant_predicate_removed``     compiler   lowering_violat.  a SELECT (any scope) with
                                                              conjuncts comparing tenant columns
                                                              with a value (WHERE, JOIN ON) ->
                                                              those conjuncts dropped
``join_path_fanout``             compiler   semantic_drift    a table read by a scope with a
                                                              duplicate-sensitive aggregate
                                                              (sum, count, avg) and a child
                                                              table by a foreign key -> LEFT
                                                              JOIN the child on that key
``time_bounds_shifted``          compiler   semantic_drift    a column compared with date /
                                                              timestamp literals -> every such
                                                              bound one day earlier
``sensitive_dimension_added``    compiler   over_permissive   a sensitive dimension the role
                                                              may not use whose table the query
                                                              reads -> its column selected (and
                                                              grouped by)
``metric_alias_replaced``        manifest   over_permissive   the IR's metric with a retired
                                                              alias -> the IR names the alias
                                                              (equivalent when policy.yaml
                                                              resolves it to the same metric)
``limit_expanded``               compiler   over_permissive   the outer LIMIT n -> max(10 n,
                                                              role max_rows + 1)
``release_unauthorized_result``  release    unsafe_release    another principal of the same
                                                              tenants, with another role (else
                                                              a metric outside the role) ->
                                                              that request, released
===============================  =========  ================  ================================

An operator with no mutation point in a record is *stillborn* for it (with why). Points with
the same key are one mutation point (the first is kept): one mutant per (operator, key). Mutants
are drawn deterministically: every (operator, point) is a candidate; when there are more than
``fuzz.max_cases_per_trace``, a ``random.Random`` seeded with ``"<fuzz.seed>:<record id>"``
takes them round-robin over the operators (each operator once before any twice).

Each mutant is then classified:

- ``equivalent``: its artifacts are byte-identical to the record's after normalisation (SQL:
  parsed, identifiers normalised, simplified by sqlglot's boolean/constant simplifier, printed;
  the IR in canonical text, its metric named as policy.yaml resolves it — the published oracle
  takes a metric by name or alias; principal, bound tenants and release decision as given). An
  equivalent mutant changes nothing the detector could see, so it is not checked;
- otherwise it goes through the check pipeline like a record — the lowering passes of
  :meth:`policystrata.check.Checker.artifact_facts` and the checker's engine, rules loaded
  once — from its artifacts alone (it is never executed against a database: the SQL is the
  fuzzer's, not the application's), with facts saying what it is (``fuzz_mutant``,
  ``fuzz_changed``) beside its own. ``killed``: a ``violation`` holds for it (the atom a
  witness is made of; kills are counted, ``killed_by`` lists each ``layer.check``, and no
  witness is rendered for them). ``stillborn``: the rules say the mutation point was not
  live (``fuzz_stillborn``: e.g. policy allows the swapped principal's request, so no
  unauthorized result was released; every tenant-owned table the mutant reads is still scoped,
  so the dropped tenant predicate was redundant). ``survived``: the rules derive
  ``fuzz_survived`` — the mutant changed an artifact and no violation holds for it
  (rules/fuzz.dl) — and its proof is the finding's witness (low severity, never gating: it
  measures the detector, not the stack).

>>> from policystrata.check import Checker
>>> from policystrata.case import Case
>>> from policystrata.ir import parse_ir
>>> checker = Checker.open("support_saas")
>>> case = Case(id="r1", principal="acme_analyst",
...     ir=parse_ir("net_revenue by region during last_month limit 100"),
...     sql="select a.region, sum(i.net_amount_cents) as value from invoices i "
...         "join subscriptions s on s.id = i.subscription_id join accounts a "
...         "on a.id = s.account_id where a.tenant_id = 'acme' and i.invoice_date >= "
...         "'2026-05-01' and i.invoice_date < '2026-06-01' group by a.region limit 100")
>>> for m in derive(case, FuzzContext(checker.domain))[:3]:
...     print(m.operator, "|", m.point)
tenant_predicate_removed | a.tenant_id = 'acme'
join_path_fanout | subscriptions <- invoices.subscription_id
join_path_fanout | accounts <- subscriptions.account_id
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from policystrata.case import Case
from policystrata.errors import StrataError
from policystrata.facts import Fact, FactSet, Provenance
from policystrata.layers import Layer
from policystrata.sql.adapter import (
    SqlglotError,
    exp,
    ident_name,
    normalize_identifiers,
    parse_one,
    simplify,
    table_name,
)

if TYPE_CHECKING:
    from policystrata.check import Checker
    from policystrata.model import Domain
    from policystrata.model.policy import Policy
    from policystrata.results import Finding

DIALECT = "postgres"
STATUSES = ("killed", "survived", "equivalent", "stillborn")


@dataclass
class FuzzContext:
    """What the operators read besides the record: the domain (policy, schema, tenancy)."""

    domain: Domain
    tenant_columns: dict[str, str] = field(default_factory=dict)
    memo: bool = field(default_factory=lambda: memo_enabled())
    #: remembered plans and mutant verdicts, by content (see :func:`plan` and :func:`judge`)
    plans: OrderedDict[Any, Any] = field(default_factory=OrderedDict)
    verdicts: OrderedDict[Any, Any] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if not self.tenant_columns:
            self.tenant_columns = self.domain.tenant_columns()


#: Remembered plans and mutant verdicts per process (least recently used first out).
MEMO_SIZE = 4096


def memo_enabled() -> bool:
    """Whether the scan remembers repeated work by content (``STRATA_SCAN_MEMO=0`` turns it
    off, e.g. to compare a scan with and without: the outputs are the same bytes)."""
    return os.environ.get("STRATA_SCAN_MEMO", "1") != "0"


def _remember(table: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    table[key] = value
    if len(table) > MEMO_SIZE:
        table.popitem(last=False)


def _recall(table: OrderedDict[Any, Any], key: Any) -> Any:
    hit = table.get(key)
    if hit is not None:
        table.move_to_end(key)
    return hit


def content_key(case: Case) -> str:
    """What the detector sees of a case, up to its ids: every field but its id and origin (the
    origin is provenance, never a premise), its pass-through meta without the ``fuzz`` note
    (which names ids). Two cases with the same key get the same facts up to the case id.

    >>> a = Case(id="a", principal="p", sql="select 1", meta={"fuzz": {"record": "r1"}})
    >>> content_key(a) == content_key(replace(a, id="b", meta={"fuzz": {"record": "r2"}}))
    True
    >>> content_key(a) == content_key(replace(a, sql="select 2"))
    False
    """
    parts: list[Any] = []
    for f in fields(case):
        if f.name in ("id", "origin"):
            continue
        value = getattr(case, f.name)
        if f.name == "meta":
            value = {k: v for k, v in value.items() if k != "fuzz"}
        parts.append(value)
    return repr(parts)


@dataclass(frozen=True)
class Mutant:
    """One mutant of a record: its operator, mutation point and artifacts (a Case)."""

    operator: str
    point: str
    case: Case


#: A mutation point: its key and how to build the mutant's changed fields.
Point = tuple[str, Callable[[], dict[str, Any]]]
#: An operator's search: the record's mutation points, or why it has none (stillborn).
Find = Callable[[Case, FuzzContext], "list[Point] | str"]


@dataclass(frozen=True)
class Operator:
    id: str
    layer: Layer  # whose artifact the operator changes
    witness_class: str  # the regression it simulates
    description: str
    find: Find


# ------------------------------------------------------------------------------ SQL helpers

#: A transform of a freshly parsed tree (in place).
Transform = Callable[[exp.Expr], None]
Finder = Callable[[exp.Expr, Case, FuzzContext], "list[tuple[str, Transform]] | str"]


def _parse(sql: str) -> exp.Expr:
    return parse_one(sql, DIALECT)


def sql_points(finder: Finder) -> Find:
    """An operator over the SQL tree: ``finder`` lists (key, transform) pairs on a parsed tree
    in a deterministic walk order (it only reads the tree); mutant *i* copies the record's tree,
    finds the points again on the copy and applies the *i*-th transform to it, so mutants never
    share nodes."""

    def find(case: Case, ctx: FuzzContext) -> list[Point] | str:
        if case.sql is None:
            return "the record has no SQL"
        try:
            base = _parse(case.sql)
            found = finder(base, case, ctx)
        except (SqlglotError, RecursionError):
            return "the SQL does not parse"
        if isinstance(found, str):
            return found
        points: list[Point] = []
        for i, (key, _t) in enumerate(found):
            points.append((key, _sql_maker(finder, base, case, ctx, i)))
        return points

    return find


def _sql_maker(
    finder: Finder, base: exp.Expr, case: Case, ctx: FuzzContext, i: int
) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        tree = base.copy()
        found = finder(tree, case, ctx)
        assert not isinstance(found, str)
        found[i][1](tree)
        return {"sql": tree.sql(dialect=DIALECT, copy=False)}  # the tree is this call's own

    return make


def _selects(tree: exp.Expr) -> list[exp.Select]:
    """Every SELECT of the statement (CTEs, subqueries, set-operation branches), in walk order."""
    return [n for n in tree.walk() if isinstance(n, exp.Select)]


def _sources(select: exp.Select) -> dict[str, tuple[str, exp.Table]]:
    """Alias (or name) -> (base table, its node) of the tables a SELECT reads directly."""
    out: dict[str, tuple[str, exp.Table]] = {}
    nodes = []
    frm = select.args.get("from_") or select.args.get("from")
    if frm is not None:
        nodes.append(frm.this)
    nodes += [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            alias = ident_name(node.args["alias"].this) if node.args.get("alias") else None
            out[alias or table_name(node)] = (table_name(node), node)
    return out


def _resolve(column: exp.Column, sources: dict[str, tuple[str, exp.Table]]) -> str | None:
    """The base table of a column reference in a SELECT (None: not one of its tables)."""
    qual = column.args.get("table")
    if qual is not None:
        hit = sources.get(ident_name(qual))
        return hit[0] if hit else None
    tables = {t for t, _ in sources.values()}
    return next(iter(tables)) if len(tables) == 1 else None


def _conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _has_column(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.Column) for n in node.walk())


# --------------------------------------------------------------------------- the operators


def _tenant_predicates(
    tree: exp.Expr, case: Case, ctx: FuzzContext
) -> list[tuple[str, Transform]] | str:
    """``tenant_predicate_removed``: each SELECT (the statement, a CTE, a subquery, a set
    operation's branch) whose WHERE or JOIN ON conjuncts compare a table's tenant column with a
    value (``=``, ``IN``, a bound parameter) is a mutation point; the mutant drops those
    conjuncts — the compiler no longer scopes that query to the tenant (dropping one of two
    redundant predicates would change nothing the tenancy depends on).

    >>> t = _parse("select count(*) from accounts a join agents g "
    ...     "on g.tenant_id = 'acme' where a.tenant_id = 'acme' and a.region = 'emea'")
    >>> from policystrata.model import load_domain
    >>> pts = _tenant_predicates(t, Case(id="x"), FuzzContext(load_domain("support_saas")))
    >>> [k for k, _ in pts]
    ["a.tenant_id = 'acme' and g.tenant_id = 'acme'"]
    >>> pts[0][1](t); t.sql()
    "SELECT COUNT(*) FROM accounts AS a JOIN agents AS g ON TRUE WHERE a.region = 'emea'"
    """
    out: list[tuple[str, Transform]] = []
    for si, select in enumerate(_selects(tree)):
        sources = _sources(select)
        holders: list[tuple[str, int]] = [("where", -1)]
        holders += [("on", j) for j in range(len(select.args.get("joins") or []))]
        found = [
            (where, j, ci, c)
            for where, j in holders
            for ci, c in enumerate(_conjuncts(_condition(select, where, j)))
            if _is_tenant_predicate(c, sources, ctx)
        ]
        if found:
            key = " and ".join(c.sql(dialect=DIALECT) for *_, c in found)
            out.append((key, _dropper(si, [(w, j, ci) for w, j, ci, _ in found])))
    return out or "no conjunct compares a tenant column with a value"


def _condition(select: exp.Select, where: str, j: int) -> exp.Expr | None:
    if where == "where":
        w = select.args.get("where")
        return w.this if w is not None else None
    return select.args["joins"][j].args.get("on")


def _is_tenant_predicate(
    c: exp.Expr, sources: dict[str, tuple[str, exp.Table]], ctx: FuzzContext
) -> bool:
    if not isinstance(c, exp.EQ | exp.In):
        return False
    sides = [c.this, c.expression] if isinstance(c, exp.EQ) else [c.this]
    for i, side in enumerate(sides):
        if not isinstance(side, exp.Column):
            continue
        table = _resolve(side, sources)
        if table is None or ctx.tenant_columns.get(table) != ident_name(side.this):
            continue
        others = sides[1 - i : 2 - i] if isinstance(c, exp.EQ) else list(c.expressions)
        if others and not any(_has_column(o) for o in others):
            return True
    return False


def _dropper(si: int, drops: list[tuple[str, int, int]]) -> Transform:
    def drop(tree: exp.Expr) -> None:
        select = _selects(tree)[si]
        holders = dict.fromkeys((where, j) for where, j, _ in drops)
        for where, j in holders:
            gone = {ci for w, jj, ci in drops if (w, jj) == (where, j)}
            parts = _conjuncts(_condition(select, where, j))
            rest = [p for k, p in enumerate(parts) if k not in gone]
            if where == "where":
                select.set("where", exp.Where(this=exp.and_(*rest)) if rest else None)
            else:
                select.args["joins"][j].set("on", exp.and_(*rest) if rest else exp.true())

    return drop


#: Aggregates whose value changes when rows are duplicated (DISTINCT ones do not).
DUPLICATE_SENSITIVE = (exp.Sum, exp.Count, exp.Avg)


def _fanout_joins(
    tree: exp.Expr, case: Case, ctx: FuzzContext
) -> list[tuple[str, Transform]] | str:
    """``join_path_fanout``: in a SELECT whose projections aggregate with a duplicate-sensitive
    aggregate (``sum``, ``count``, ``avg`` without DISTINCT), each table it reads that a child
    table references by a foreign key is a mutation point; the mutant LEFT JOINs the child on
    that key (each parent row repeated once per child row).

    >>> from policystrata.model import load_domain
    >>> t = _parse("select sum(accounts.id) from accounts where accounts.tenant_id = 'acme'")
    >>> pts = _fanout_joins(t, Case(id="x"), FuzzContext(load_domain("support_saas")))
    >>> keys = [k for k, _ in pts]; i = keys.index("accounts <- subscriptions.account_id")
    >>> pts[i][1](t); print(t.sql(pretty=True))
    SELECT
      SUM(accounts.id)
    FROM accounts
    LEFT JOIN subscriptions AS fuzz_fanout
      ON fuzz_fanout.account_id = accounts.id
    WHERE
      accounts.tenant_id = 'acme'
    """
    schema = ctx.domain.schema
    if not schema.known:
        return "no foreign keys are known (the domain has no schema.sql)"
    children: dict[str, list[tuple[str, str, str]]] = {}
    for name, table in schema.tables.items():
        for fk in table.foreign_keys:
            if fk.ref_table != name:
                children.setdefault(fk.ref_table, []).append((name, fk.column, fk.ref_column))
    out: list[tuple[str, Transform]] = []
    found_aggregate = False
    for si, select in enumerate(_selects(tree)):
        aggs = [
            a
            for p in select.expressions
            for a in p.find_all(*DUPLICATE_SENSITIVE)
            if not isinstance(a.this, exp.Distinct)
        ]
        if not aggs:
            continue
        found_aggregate = True
        for alias, (table, _node) in _sources(select).items():
            for child, col, ref in sorted(children.get(table, [])):
                key = f"{table} <- {child}.{col}"
                out.append((key, _joiner(si, alias, child, col, ref)))
    if out:
        return out
    if not found_aggregate:
        return "no duplicate-sensitive aggregate (sum, count, avg without DISTINCT)"
    return "no table the aggregate reads has a child table by a foreign key"


def _joiner(si: int, alias: str, child: str, col: str, ref: str) -> Transform:
    def join(tree: exp.Expr) -> None:
        select = _selects(tree)[si]
        on = exp.EQ(this=exp.column(col, "fuzz_fanout"), expression=exp.column(ref, alias))
        select.append(
            "joins", exp.Join(this=exp.to_table(child).as_("fuzz_fanout"), side="LEFT", on=on)
        )

    return join


COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ)
#: How far the shifted window moves (an off-by-one-day or time zone regression).
SHIFT = dt.timedelta(days=-1)


def _date_literal(node: exp.Expr) -> exp.Literal | None:
    """The one string literal of a bound that reads as an ISO date or timestamp (bare, cast, or
    inside a function such as ``toDateTime('…', 'zone')``), else None."""
    if _has_column(node):
        return None
    for lit in node.find_all(exp.Literal):
        if lit.is_string and _as_datetime(lit.this) is not None:
            return lit
    return None


def _as_datetime(text: str) -> dt.datetime | None:
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _shifted(text: str) -> str:
    """``text`` moved by :data:`SHIFT`, in its own format.

    >>> _shifted("2026-05-01"), _shifted("2026-06-17 00:00:00")
    ('2026-04-30', '2026-06-16 00:00:00')
    """
    value = _as_datetime(text)
    assert value is not None
    moved = value + SHIFT
    if len(text) == 10:
        return moved.date().isoformat()
    return moved.isoformat(sep=text[10]) if len(text) > 10 else moved.isoformat()


def _time_bounds(tree: exp.Expr, case: Case, ctx: FuzzContext) -> list[tuple[str, Transform]] | str:
    """``time_bounds_shifted``: each column compared with date / timestamp literals (``>=``,
    ``<``, ``=``, ``BETWEEN``; cast or wrapped in a function) is a mutation point; the mutant
    moves every such bound of that column one day earlier (the window keeps its length).

    >>> t = _parse("select 1 from invoices where invoices.invoice_date >= date '2026-05-01' "
    ...     "and invoices.invoice_date < '2026-06-01'")
    >>> pts = _time_bounds(t, Case(id="x"), None)
    >>> pts[0][0]; pts[0][1](t); print(t.sql(pretty=True))
    'invoices.invoice_date'
    SELECT
      1
    FROM invoices
    WHERE
      invoices.invoice_date >= CAST('2026-04-30' AS DATE)
      AND invoices.invoice_date < '2026-05-31'
    """
    columns: dict[str, None] = {}
    for column, _lit in _bounds(tree):
        columns.setdefault(column, None)
    return [(c, _shifter(c)) for c in columns] or "no column is compared with a date literal"


def _bounds(tree: exp.Expr) -> list[tuple[str, exp.Literal]]:
    out = []
    for node in tree.walk():
        pairs: list[tuple[exp.Expr, exp.Expr]] = []
        if isinstance(node, COMPARISONS):
            pairs = [(node.this, node.expression), (node.expression, node.this)]
        elif isinstance(node, exp.Between):
            pairs = [(node.this, node.args["low"]), (node.this, node.args["high"])]
        for col, bound in pairs:
            if isinstance(col, exp.Column) and bound is not None:
                lit = _date_literal(bound)
                if lit is not None:
                    out.append((col.sql(dialect=DIALECT), lit))
    return out


def _shifter(column: str) -> Transform:
    def shift(tree: exp.Expr) -> None:
        for col, lit in _bounds(tree):
            if col == column:
                lit.set("this", _shifted(lit.this))

    return shift


def _sensitive_dimensions(
    tree: exp.Expr, case: Case, ctx: FuzzContext
) -> list[tuple[str, Transform]] | str:
    """``sensitive_dimension_added``: each sensitive dimension the principal's role may not use,
    whose column's table the outer SELECT reads and does not already select, is a mutation
    point; the mutant selects that column (and groups by it when the query aggregates).

    >>> from policystrata.model import load_domain
    >>> t = _parse("select count(*) as value from accounts a where a.tenant_id = 'acme'")
    >>> pts = _sensitive_dimensions(t, Case(id="x", principal="acme_analyst"),
    ...                              FuzzContext(load_domain("support_saas")))
    >>> keys = [k for k, _ in pts]; i = keys.index("customer_email")
    >>> pts[i][1](t); print(t.sql(pretty=True))
    SELECT
      COUNT(*) AS value,
      a.customer_email AS customer_email
    FROM accounts AS a
    WHERE
      a.tenant_id = 'acme'
    GROUP BY
      a.customer_email
    """
    policy = ctx.domain.policy
    principal = policy.principals.get(case.principal or "")
    role = policy.roles.get(principal.role) if principal else None
    if principal is None or role is None:
        return "the principal or its role is not in policy.yaml"
    if not isinstance(tree, exp.Select):
        return "the outer statement is not a plain SELECT"
    sources = _sources(tree)
    selected = {
        (_resolve(c, sources), ident_name(c.this))
        for p in tree.expressions
        for c in p.find_all(exp.Column)
    }
    out: list[tuple[str, Transform]] = []
    for name, dim in sorted(policy.dimensions.items()):
        may_use = name in role.allowed_dimensions and (
            dim.allowed_roles is None or principal.role in dim.allowed_roles
        )
        base = ctx.domain.dimension_base(name)
        if not dim.sensitive or may_use or base is None or base in selected:
            continue
        alias = next((a for a, (t, _) in sorted(sources.items()) if t == base[0]), None)
        if alias is not None:
            out.append((name, _adder(name, alias, base[1])))
    return out or "no sensitive dimension the role may not use reads a table the query reads"


def _adder(name: str, alias: str, column: str) -> Transform:
    def add(tree: exp.Expr) -> None:
        assert isinstance(tree, exp.Select)
        col = exp.column(column, alias)
        aggregated = tree.args.get("group") is not None or any(
            isinstance(n, exp.AggFunc) for p in tree.expressions for n in p.walk()
        )
        tree.select(exp.alias_(col, name), copy=False)
        if aggregated:
            tree.group_by(col.copy(), copy=False)

    return add


def _limit(tree: exp.Expr, case: Case, ctx: FuzzContext) -> list[tuple[str, Transform]] | str:
    """``limit_expanded``: the outer LIMIT n (a number) is the mutation point; the mutant asks
    for max(10 n, max_rows + 1) rows (past the role's row budget when it has one).

    >>> from policystrata.model import load_domain
    >>> t = _parse("select 1 from accounts limit 100")
    >>> pts = _limit(t, Case(id="x", principal="acme_analyst"),
    ...              FuzzContext(load_domain("support_saas")))
    >>> pts[0][0]; pts[0][1](t); t.sql()
    '100 -> 1001'
    'SELECT 1 FROM accounts LIMIT 1001'
    """
    limit = tree.args.get("limit")
    if limit is None:
        return "the SQL has no LIMIT"
    value = limit.expression
    if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
        return "the LIMIT is not a number (a parameter or an expression)"
    n = int(value.this)
    principal = ctx.domain.policy.principals.get(case.principal or "")
    role = ctx.domain.policy.roles.get(principal.role) if principal else None
    budget = role.max_rows if role is not None else None
    new = max(10 * n, budget + 1) if budget is not None else 10 * n

    def expand(t: exp.Expr) -> None:
        t.args["limit"].set("expression", exp.Literal.number(new))

    return [(f"{n} -> {new}", expand)]


def _alias_points(case: Case, ctx: FuzzContext) -> list[Point] | str:
    """``metric_alias_replaced``: each retired alias of the IR's metric is a mutation point; the
    mutant's IR names the alias (as a model shown a stale manifest would ask). policy.yaml maps
    the alias to the same metric and the published oracle resolves a metric by name or alias,
    so with the SQL unchanged the mutant is *equivalent* (:func:`normalise`); the fault of a
    stale manifest is the manifest's, which a trace does not carry.

    >>> from policystrata.ir import parse_ir
    >>> from policystrata.model import load_domain
    >>> pts = _alias_points(Case(id="x", ir=parse_ir("net_revenue limit 5")),
    ...                     FuzzContext(load_domain("support_saas")))
    >>> [(k, make()["ir"].to_text()) for k, make in pts]
    [('recognized_revenue', 'recognized_revenue limit 5')]
    """
    if case.ir is None:
        return "the record has no semantic IR"
    ir = case.ir
    metric = ctx.domain.policy.resolve_metric(ir.metric)
    if metric is None:
        return f"the IR's metric {ir.metric} is not in policy.yaml"
    aliases = [a for a in ctx.domain.policy.metrics[metric].aliases if a != ir.metric]
    if not aliases:
        return f"metric {metric} has no retired alias"
    return [(a, _ir_maker(ir, metric=a)) for a in aliases]


def _ir_maker(ir: Any, **changes: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"ir": ir.model_copy(update=changes)}


def _release_points(case: Case, ctx: FuzzContext) -> list[Point] | str:
    """``release_unauthorized_result``: the same request by another principal who holds the
    record's tenants under another role (else: the record's request for a metric outside the
    principal's role), with the result released. Whether policy denies that request is the
    rules' call (``fuzz_stillborn`` when it does not).

    >>> from policystrata.ir import parse_ir
    >>> from policystrata.model import load_domain
    >>> case = Case(id="x", principal="acme_finance_admin",
    ...             ir=parse_ir("gross_revenue limit 5"), release_decision="withhold")
    >>> pts = _release_points(case, FuzzContext(load_domain("support_saas")))
    >>> [(k, sorted(make().items())) for k, make in pts]
    [('principal acme_analyst', [('principal', 'acme_analyst'), ('release_decision', 'release')])]
    """
    if case.ir is None:
        return "the record has no semantic IR (what policy says of the request is unknown)"
    policy = ctx.domain.policy
    me = policy.principals.get(case.principal or "")
    if me is None:
        return "the principal is not in policy.yaml"
    tenants = set(case.tenant_ids or me.tenant_ids)
    others = [
        name
        for name, p in sorted(policy.principals.items())
        if name != case.principal and p.role != me.role and tenants <= set(p.tenant_ids)
    ]
    if others:
        return [
            (f"principal {o}", _fields(principal=o, release_decision="release")) for o in others
        ]
    role = policy.roles.get(me.role)
    outside = sorted(m for m in policy.metrics if role is None or m not in role.allowed_metrics)
    points: list[Point] = [(f"metric {m}", _ir_release(case.ir, m)) for m in outside]
    return points or "no other principal of the same tenants and no metric outside the role"


def _fields(**changes: Any) -> Callable[[], dict[str, Any]]:
    return lambda: dict(changes)


def _ir_release(ir: Any, metric: str) -> Callable[[], dict[str, Any]]:
    return lambda: {"ir": ir.model_copy(update={"metric": metric}), "release_decision": "release"}


#: The published operators (COMPAT.md section 4), in the published order.
OPERATORS: tuple[Operator, ...] = (
    Operator(
        "tenant_predicate_removed",
        "compiler",
        "lowering_violation",
        "the compiler drops a tenant predicate",
        sql_points(_tenant_predicates),
    ),
    Operator(
        "join_path_fanout",
        "compiler",
        "semantic_drift",
        "the compiler joins a child table, repeating rows under the aggregate",
        sql_points(_fanout_joins),
    ),
    Operator(
        "time_bounds_shifted",
        "compiler",
        "semantic_drift",
        "the compiler shifts the time window by a day",
        sql_points(_time_bounds),
    ),
    Operator(
        "sensitive_dimension_added",
        "compiler",
        "over_permissive",
        "the compiler selects a sensitive column the role may not see",
        sql_points(_sensitive_dimensions),
    ),
    Operator(
        "metric_alias_replaced",
        "manifest",
        "over_permissive",
        "the request names a retired alias of its metric",
        _alias_points,
    ),
    Operator(
        "limit_expanded",
        "compiler",
        "over_permissive",
        "the compiler raises the row limit past the role's budget",
        sql_points(_limit),
    ),
    Operator(
        "release_unauthorized_result",
        "release",
        "unsafe_release",
        "the release layer releases the result of a request policy denies",
        _release_points,
    ),
)
BY_ID = {op.id: op for op in OPERATORS}


# ---------------------------------------------------------------------- drawing and judging


@dataclass
class RecordPlan:
    """A record's mutants (drawn) and the operators stillborn for it (with why)."""

    mutants: list[Mutant] = field(default_factory=list)
    stillborn: dict[str, str] = field(default_factory=dict)
    by_id: bool = False  # drawn at random, seeded by the record id


def plan(case: Case, ctx: FuzzContext, *, seed: int, max_cases: int) -> RecordPlan:
    """Every operator's mutation points on the record, drawn down to ``max_cases``
    deterministically (seeded by ``seed`` and the record id; round-robin over operators).

    A record with the same content as an earlier one (:func:`content_key`) has the same
    mutation points and the same changes: they are remembered (the draw, when there are more
    points than ``max_cases``, also by the record id, which seeds it) and each mutant is made
    again with this record's ids."""
    key = None
    if ctx.memo:
        key = (content_key(case), seed, max_cases)
        hit = _recall(ctx.plans, key) or _recall(ctx.plans, (*key, case.id))
        if hit is not None:
            return _planned(case, hit)
    planned = _draw(case, ctx, seed=seed, max_cases=max_cases)
    if key is not None:
        _remember(ctx.plans, (*key, case.id) if planned[2] else key, planned)
    return _planned(case, planned)


def _planned(
    case: Case,
    planned: tuple[list[tuple[str, int, str, dict[str, Any]]], dict[str, str], bool],
) -> RecordPlan:
    """The record's mutants from its drawn (operator, index, point, changes)."""
    drawn, stillborn, by_id = planned
    out = RecordPlan(stillborn=dict(stillborn), by_id=by_id)
    for op_id, i, key, changes in drawn:
        mutant = replace(
            case,
            id=f"{case.id}#fuzz.{op_id}.{i + 1}",
            sql=changes.get("sql", case.sql),
            ir=changes.get("ir", case.ir),
            principal=changes.get("principal", case.principal),
            release_decision=changes.get("release_decision", case.release_decision),
            reference_sql=None,
            reference_params={},
            meta={**case.meta, "fuzz": {"record": case.id, "operator": op_id, "point": key}},
        )
        out.mutants.append(Mutant(op_id, key, mutant))
    return out


def _draw(
    case: Case, ctx: FuzzContext, *, seed: int, max_cases: int
) -> tuple[list[tuple[str, int, str, dict[str, Any]]], dict[str, str], bool]:
    """The drawn (operator, index, point, changes), the stillborn operators, and whether the
    draw was random (more points than ``max_cases``: then it depends on the record id)."""
    out = RecordPlan()
    points: dict[str, list[Point]] = {}
    for op in OPERATORS:
        found = op.find(case, ctx)
        if isinstance(found, str):
            out.stillborn[op.id] = found
        else:
            points[op.id] = found
    for op_id, pts in points.items():  # one mutant per distinct mutation point (the first)
        unique: dict[str, Point] = {}
        for p in pts:
            unique.setdefault(p[0], p)
        points[op_id] = list(unique.values())
    chosen: list[tuple[str, int]] = [(op, i) for op, pts in points.items() for i in range(len(pts))]
    many = len(chosen) > max_cases
    if many:
        rng = random.Random(f"{seed}:{case.id}")
        order = sorted(points)
        rng.shuffle(order)
        queues = {o: rng.sample(range(len(points[o])), len(points[o])) for o in order}
        picked: list[tuple[str, int]] = []
        while len(picked) < max_cases:
            for o in order:
                if queues[o] and len(picked) < max_cases:
                    picked.append((o, queues[o].pop(0)))
        rank = {operator.id: n for n, operator in enumerate(OPERATORS)}
        chosen = sorted(picked, key=lambda p: (rank[p[0]], p[1]))
    drawn = []
    for op_id, i in chosen:
        key, make = points[op_id][i]
        drawn.append((op_id, i, key, make()))
    return drawn, out.stillborn, many


def derive(case: Case, ctx: FuzzContext, *, seed: int = 1729, max_cases: int = 50) -> list[Mutant]:
    """The record's mutants (see :func:`plan`)."""
    return plan(case, ctx, seed=seed, max_cases=max_cases).mutants


def normalise(case: Case, policy: Policy | None = None) -> dict[str, Any]:
    """A case's artifacts in normal form: what *equivalent* compares. Given the policy, the IR's
    metric is named as the policy resolves it (a name or any of its aliases: the published
    oracle accepts both), so a request that names an alias of the same metric normalises like
    one that names the metric.

    >>> a = Case(id="a", principal="p", sql="SELECT X FROM T WHERE t.a = 1 AND t.a = 1")
    >>> b = Case(id="b", principal="p", sql="select x from t where t.a = 1")
    >>> normalise(a) == normalise(b)
    True
    >>> from policystrata.ir import parse_ir
    >>> from policystrata.model import load_domain
    >>> policy = load_domain("support_saas").policy
    >>> alias = Case(id="c", ir=parse_ir("recognized_revenue limit 5"))
    >>> normalise(alias, policy)["semantic_ir"], normalise(alias)["semantic_ir"]
    ('net_revenue limit 5', 'recognized_revenue limit 5')
    """
    ir = case.ir
    if ir is not None and policy is not None:
        metric = policy.resolve_metric(ir.metric)
        if metric is not None and metric != ir.metric:
            ir = ir.model_copy(update={"metric": metric})
    return {
        "sql": _normal_sql(case.sql) if case.sql is not None else None,
        "semantic_ir": ir.to_text() if ir is not None else None,
        "principal": case.principal,
        "tenant_ids": sorted(case.tenant_ids) if case.tenant_ids is not None else None,
        "release_allowed": case.release_decision,
    }


@functools.lru_cache(maxsize=4096)
def _normal_sql(sql: str) -> str:
    """SQL in normal form: parsed, identifiers normalised, simplified, printed (as written when
    it does not parse). Cached: a record's SQL is compared with each of its mutants'."""
    try:
        tree = normalize_identifiers(_parse(sql), DIALECT)
        # the tree is this call's own: the generator need not copy it first
        return simplify(tree).sql(dialect=DIALECT, copy=False)
    except (SqlglotError, RecursionError):
        return sql


@dataclass
class Judged:
    """A mutant's verdict: its status, the checks that killed it, the survivor's witness."""

    mutant: Mutant
    status: str
    changed: list[str] = field(default_factory=list)
    killed_by: list[str] = field(default_factory=list)
    why: str | None = None
    witness: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.mutant.case.id,
            "operator": self.mutant.operator,
            "point": self.mutant.point,
            "status": self.status,
        }
        if self.changed:
            out["changed"] = self.changed
        if self.killed_by:
            out["killed_by"] = self.killed_by
        if self.why:
            out["why"] = self.why
        if self.status != "equivalent":
            out["sql"] = self.mutant.case.sql
        return out


def fuzz_facts(mutant: Mutant, changed: list[str], seed: int) -> FactSet:
    """What the mutant is, for rules/fuzz.dl: ``fuzz_mutant`` and one ``fuzz_changed`` per
    artifact that differs from the record's."""
    op = BY_ID[mutant.operator]
    case = mutant.case
    origin = case.origin
    prov = Provenance(
        origin.source if origin else "fuzz",
        line=origin.line if origin else None,
        note=f"fuzz {op.id}, seed {seed}",
    )
    facts = FactSet()
    record = str(case.meta.get("fuzz", {}).get("record", case.id))
    facts.add(
        "fuzz_mutant", case.id, record, op.id, mutant.point, op.layer, op.witness_class, prov=prov
    )
    for artifact in changed:
        facts.add("fuzz_changed", case.id, artifact, prov=prov)
    return facts


def judge(
    checker: Checker,
    mutant: Mutant,
    original: dict[str, Any],
    seed: int,
    ctx: FuzzContext | None = None,
) -> Judged:
    """Classify one mutant (see the module docstring). The checker's databases are the
    caller's business: the fuzz stage detaches them (mutants are judged statically).

    With ``ctx`` (its memo on), a killed or stillborn verdict is remembered by what the
    detector sees of the mutant up to its ids (:func:`content_key`, the operator, the point and
    the changed artifacts: exactly what its facts are made of, the mutant and record ids
    aside): the rules decided it on those facts, and the same facts give the same rule
    evaluation, so a mutant equal to an earlier one up to its ids takes that verdict instead
    of evaluating the same rules on the same facts again. A survivor is always evaluated: its
    witness is proved and checked for its own ids."""
    policy = checker.domain.policy
    now = normalise(mutant.case, policy)
    changed = [k for k in now if now[k] != original[k]]
    if not changed:
        why = None
        ir = mutant.case.ir
        if ir is not None and policy.resolve_metric(ir.metric) not in (None, ir.metric):
            metric = policy.resolve_metric(ir.metric)
            why = f"policy.yaml resolves {ir.metric} to {metric}: the request is unchanged"
        return Judged(mutant, "equivalent", why=why)
    case = mutant.case
    key = None
    if ctx is not None and ctx.memo:
        key = (content_key(case), mutant.operator, mutant.point, tuple(changed))
        hit = _recall(ctx.verdicts, key)
        if hit is not None:
            status, killed_by, why = hit
            return Judged(mutant, status, changed, killed_by=list(killed_by), why=why)
    facts = checker.artifact_facts(case)
    facts.update(fuzz_facts(mutant, changed, seed))
    result = checker.engine.evaluate(facts)
    void = [a for a in result.atoms("fuzz_stillborn") if a[0] == case.id]
    if void:
        if key is not None:
            _remember(ctx.verdicts, key, ("stillborn", (), str(void[0][1])))  # type: ignore[union-attr]
        return Judged(mutant, "stillborn", changed, why=str(void[0][1]))
    violations = [a for a in result.atoms("violation") if a[0] == case.id]
    if violations:  # what Checker.check builds witnesses from; a kill is counted, not reported
        checks = sorted({f"{a[1]}.{a[3]}" for a in violations})
        if key is not None:
            _remember(ctx.verdicts, key, ("killed", tuple(checks), None))  # type: ignore[union-attr]
        return Judged(mutant, "killed", changed, killed_by=checks)
    survived = [a for a in result.atoms("fuzz_survived") if a[0] == case.id]
    if not survived:  # pragma: no cover - rules/fuzz.dl derives it for every clean mutant
        raise StrataError(f"fuzz mutant {case.id}: clean but rules/fuzz.dl derives no verdict")
    from policystrata.engine import check_proof

    atom = Fact("fuzz_survived", tuple(survived[0]))
    proof = result.prove(atom)
    check_proof(proof, checker.program, result.fact_lookup)
    witness = checker._witness(case, atom, proof)
    return Judged(mutant, "survived", changed, witness=witness)


# ------------------------------------------------------------------------------ the stage


@dataclass
class RecordFuzz:
    """A clean record's fuzzing: its judged mutants and the operators stillborn for it (with
    why), or why its mutants could not be judged."""

    judged: list[Judged] = field(default_factory=list)
    stillborn: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    by_id: bool = False  # its mutants were drawn at random, seeded by the record id

    def reusable(self) -> bool:
        """Whether another record with the same content has this fuzzing up to its ids: the
        mutants were not drawn by the record id, none could not be judged, and none survived
        (a survivor's witness is proved for its own ids)."""
        return self.error is None and not self.by_id and all(j.witness is None for j in self.judged)

    def rebased(self, case: Case) -> RecordFuzz:
        """This fuzzing for ``case``, a record with the same content (:func:`content_key`):
        each mutant made again with its ids and origin, the same verdicts (see
        :meth:`reusable`)."""
        judged = []
        for j in self.judged:
            m = j.mutant
            n = m.case.id.rsplit(".", 1)[1]
            note = {"record": case.id, "operator": m.operator, "point": m.point}
            mutant = replace(
                m.case,
                id=f"{case.id}#fuzz.{m.operator}.{n}",
                origin=case.origin,
                meta={**case.meta, "fuzz": note},
            )
            judged.append(replace(j, mutant=Mutant(m.operator, m.point, mutant)))
        return RecordFuzz(judged, dict(self.stillborn))


def fuzz_record(
    checker: Checker, ctx: FuzzContext, case: Case, seed: int, max_cases: int
) -> RecordFuzz:
    """Plan and judge one clean record's mutants: what the fuzz stage reports for it. Run where
    the record is checked (the scan's worker processes and Ray actors, whose checkers have no
    database) or, in one process, by the stage itself with the databases detached."""
    try:
        drawn = plan(case, ctx, seed=seed, max_cases=max_cases)
        original = normalise(case, checker.domain.policy)
        judged = [judge(checker, m, original, seed, ctx) for m in drawn.mutants]
    except StrataError as exc:
        return RecordFuzz(error=str(exc))
    return RecordFuzz(judged, drawn.stillborn, by_id=drawn.by_id)


def counts_template() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def not_fuzzed_why(settings: Any, no_fuzz: bool) -> str | None:
    """Why the fuzz stage does not run (``--no-fuzz``, the config's ``fuzz:``), or None."""
    if no_fuzz:
        return "--no-fuzz"
    if not settings.enabled:
        return "fuzz.enabled: false"
    if settings.max_cases_per_trace == 0:
        return "fuzz.max_cases_per_trace: 0"
    return None


def scan_fuzz(state: Any) -> None:
    """The scan stage: every clean record's mutants, judged; survivors become findings
    (non-gating); ``state.fuzz`` gets the report section."""
    from policystrata.scan.run import witness_finding

    cfg, checker = state.config, state.checker
    settings = cfg.model.fuzz
    section: dict[str, Any] = {
        "enabled": settings.enabled,
        "seed": settings.seed,
        "max_cases_per_trace": settings.max_cases_per_trace,
    }
    why = not_fuzzed_why(settings, state.no_fuzz)
    if why is not None:
        state.fuzz = {**section, "ran": False, "reason": why}
        return
    from policystrata.scan.store import Spill

    ctx = FuzzContext(checker.domain)
    operators = {op.id: counts_template() for op in OPERATORS}
    records: Spill[dict[str, Any]] = Spill()  # one entry per record, on disk (scan.json's)
    skipped = state.cases_with_findings  # a mutant of a failing record proves nothing
    saved = (checker.context.databases, checker.context.probes)
    checker.attach_databases(None)  # mutants are judged from their artifacts
    try:
        for case, fuzzed in state.cases:  # the clean records, in order
            rel = case.origin.source if case.origin else ""
            entry: dict[str, Any] = {
                "record": case.id,
                "file": rel,
                "line": case.origin.line if case.origin else None,
            }
            if fuzzed is None:  # not fuzzed where it was checked (one process): here
                state.progress(f"fuzzing {rel}#{case.id}")
                fuzzed = fuzz_record(
                    checker, ctx, case, settings.seed, settings.max_cases_per_trace
                )
            if fuzzed.error is not None:  # this record's mutants could not be judged
                entry["error"] = fuzzed.error
                records.append(entry)
                continue
            for op_id in fuzzed.stillborn:
                operators[op_id]["stillborn"] += 1
            for j in fuzzed.judged:
                operators[j.mutant.operator][j.status] += 1
                if j.witness is not None:
                    state.findings.append(_survivor(state, j, rel, witness_finding))
            entry["mutants"] = [j.to_json() for j in fuzzed.judged]
            entry["stillborn"] = dict(sorted(fuzzed.stillborn.items()))
            records.append(entry)
    finally:
        checker.context.databases, checker.context.probes = saved
    totals = counts_template()
    for c in operators.values():
        for k, v in c.items():
            totals[k] += v
    tried = totals["killed"] + totals["survived"]
    state.fuzz = {
        **section,
        "ran": True,
        "judged": "static (mutants are never executed against a database)",
        "records_fuzzed": len(records),
        "records_not_fuzzed": skipped,
        "operators": operators,
        "totals": totals,
        "kill_rate": round(totals["killed"] / tried, 4) if tried else None,
        "records": records,
    }


def _survivor(state: Any, j: Judged, rel: str, witness_finding: Any) -> Finding:
    """A survivor as a finding: the survivor's witness (its proof is rules/fuzz.dl's), at the
    record's line, its repro the mutant; never gating (``@gate never`` on the rule)."""
    from policystrata.scan.findings import recheck_command

    finding: Finding = witness_finding(state, j.mutant.case, j.witness, rel)
    case, cfg = j.mutant.case, state.config
    repro: dict[str, Any] = {"id": case.id, "principal": case.principal}
    if case.ir is not None:
        repro["semantic_ir"] = case.ir.to_text()
    if case.tenant_ids is not None:
        repro["tenant_ids"] = list(case.tenant_ids)
    if case.release_decision is not None:
        repro["release_allowed"] = case.release_decision == "release"
    repro["sql"] = case.sql
    rules_arg = " ".join(f"--rules {cfg.relative(p)}" for p in cfg.rule_paths())
    finding.repro = repro
    finding.recheck = recheck_command(cfg.domain_display(), repro, rules_arg)
    where = f"{rel}:{case.origin.line}" if case.origin and case.origin.line else rel
    finding.probable_fix = f"{j.witness.fix} (record at {where}; the repro is the mutant)"
    rule = state.checker.program.rule(finding.rule_id)
    finding.advisory = rule.annotations.get("gate") == "never"
    finding.owner = "PolicyStrata rules (detector coverage)"
    finding.mutation = j.mutant.operator
    finding.mutant_status = "survived"
    finding.record_id = str(j.mutant.case.meta["fuzz"]["record"])
    finding.details = {
        "published_id": f"fuzz_survived_{j.mutant.operator}_{finding.record_id}",
        "fuzz": j.to_json(),
    }
    return finding
