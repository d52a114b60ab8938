"""Baselines: the independent checkers a competent team might deploy instead of PolicyStrata,
re-run over a run's stored artifacts (``strata baselines RUN...``).

Each baseline is a function of one :class:`BaselineCase` (the principal, the request text and
the artifacts the judged stack produced, plus the fault-free stack's artifacts for the
baselines that compare against a reference: a snapshot, a golden answer) and the domain's
policy files, as a team would read them. It answers caught (True) or not. It never sees a
record of the run: :func:`baseline_cases` builds the cases from the artifact digests alone, so
no baseline can read the detector's verdict fields (``witness_class``, ``localized_surface``,
``classes``, ``verdict``, ``accounting_status``...). Scoring (:func:`score`) uses the labels:
a *failure* is a faulted case whose fault changed an artifact (its digests differ from the
fault-free stack's; an equivalent mutant changes none and is no failure), and a flag on a
fault-free case is a false positive.

The baselines (the published names, COMPAT.md §6):

- ``sql_snapshot``: the compiled SQL (sqlglot-normalized) and its parameters vs the canonical
  compiler's for the same request;
- ``validator_only``: the validator's decision vs the policy's, authorized from the policy file
  (roles, metrics, dimensions, time ranges, row and cost budgets);
- ``sql_ast_policy_checker``: AST rules over the SQL alone: a tenant predicate on a tenant
  column of a table read, bound to the principal's tenants; a LIMIT within the role's row
  budget; no sensitive column the role may not see;
- ``release_filter_only``: the release decision vs the policy's decision (release only what the
  policy authorizes);
- ``grammar_only``: the generated grammar, probed with one intent per policy metric, alias and
  dimension: it must accept exactly what the manifest exposes;
- ``lineage_only``: the SQL's aggregates (function, DISTINCT, columns) vs the metric's
  expression in the policy;
- ``naive_surface_equality``: every layer decides the same (manifest exposes the request,
  grammar accepts it, validator allows it, SQL was produced, the result released);
- ``conventional_test_suite``: fixed assertions written from the policy docs (the manifest
  shows only the role's metrics and dimensions, sensitive dimensions are denied to roles
  without them, the SQL mentions the principal's tenant, nothing denied is released);
- ``property_differential``: properties of the judged run vs the fault-free run (decisions,
  tables read, aggregates, filtered columns, LIMIT);
- ``defense_in_depth_stack``: the union of the point checks (grammar, validator, SQL AST,
  release; plus ``db_rls_only`` when a database ran).

With a database (``--db``): ``final_answer_only`` (the released answer vs the canonical answer,
both executed on real rows under the case's tenant, each in a database holding its DDL) and
``db_rls_only`` (every table probed per tenant under the DDL in force vs the canonical DDL)
and ``random_data_generation`` (a randomized-data test: seeded random rows for the domain's
tables, :mod:`policystrata.bench.random_data`, from the run's seed; the judged SQL under the
DDL in force and the fault-free SQL under its DDL, both run on those rows under the case's
tenant; flagged when the rows differ, or when one side has SQL and the other none). What it
can see: faults that change the SQL's result or the row security on some random data (a
dropped tenant predicate, a wrong aggregate, a lost filter, a missing policy). What it cannot:
faults that leave the SQL and DDL alone (a manifest, grammar or release fault: it never looks
at what is released), and differences its random rows do not exercise (text values come from a
small pool of tenant ids and tokens, so an equality filter on a domain value usually matches
no row on either side). One data set per run (from the run's ``seed``, 0 for a seeded suite),
not one per case: a team loads its test database once.

>>> from policystrata.model import load_domain
>>> from policystrata.ir import parse_ir
>>> from policystrata.stack.pipeline import Request, run_stack
>>> from policystrata.stack.faults import OPERATORS
>>> d = load_domain("support_saas")
>>> req = Request("acme_analyst", parse_ir("ticket_count by region during last_month limit 100"))
>>> ref = run_stack(d, req)
>>> bad = run_stack(d, req, OPERATORS["compiler_drops_tenant_predicate"].knobs(d, req))
>>> case = BaselineCase("c", "acme_analyst", bad.artifacts(), ref.artifacts())
>>> Baselines(d).flags(case)["sql_ast_policy_checker"], Baselines(d).flags(case)["validator_only"]
(True, False)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from policystrata.bench.artifacts import ArtifactStore
from policystrata.ir import SemanticQuery, parse_ir
from policystrata.lalr import lalr_parser
from policystrata.model import Domain
from policystrata.sql.adapter import parse_one, tokenize

ALL = (
    "final_answer_only",
    "sql_snapshot",
    "validator_only",
    "db_rls_only",
    "sql_ast_policy_checker",
    "release_filter_only",
    "grammar_only",
    "lineage_only",
    "naive_surface_equality",
    "defense_in_depth_stack",
    "conventional_test_suite",
    "property_differential",
    "random_data_generation",
)
NEEDS_DATABASE = ("final_answer_only", "db_rls_only", "random_data_generation")
#: Published baselines not implemented here (reported as not run, never as clean).
NOT_IMPLEMENTED = (
    "semantic_validator_only",
    "db_policy_only",
    "policy_as_code_precheck",
    "defense_in_depth_stack_v2",
)
DEFENCE_UNION = ("grammar_only", "validator_only", "sql_ast_policy_checker", "release_filter_only")


def _released(artifacts: dict[str, Any]) -> bool:
    """Did the release layer release the result? (A release with a record, e.g. a cohort
    threshold's, is stored as ``[decision, record]``.)"""
    value = artifacts.get("release")
    if isinstance(value, list):
        value = value[0] if value else None
    return value == "release"


@dataclass(frozen=True)
class BaselineCase:
    """What a baseline sees: the principal and the artifacts (judged and fault-free)."""

    case: str  # the opaque case id (case_00042)
    principal: str
    artifacts: dict[str, Any]
    reference: dict[str, Any]


def baseline_cases(run_dir: Path) -> Iterator[tuple[dict[str, Any], BaselineCase | None]]:
    """(labels, case) per trace record: the labels (task, fault, did the fault change an
    artifact) for scoring only, and the case built from the artifact store (None when the
    record has no artifacts: the stack could not build it)."""
    store = ArtifactStore(run_dir)
    path = run_dir / "traces.jsonl"
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                from policystrata.errors import InputError

                raise InputError(f"not JSON: {exc.msg}", file=str(path), line=lineno) from None
            digests, ref_digests = rec.get("artifacts"), rec.get("reference_artifacts")
            labels = {
                "task": rec.get("task"),
                "mutation": rec.get("mutation") or "none",
                "differs": bool(digests and ref_digests and digests != ref_digests),
            }
            arts, ref = store.all(digests), store.all(ref_digests)
            if arts is None or ref is None:
                yield labels, None
                continue
            yield labels, BaselineCase(rec.get("case") or "", rec.get("principal") or "", arts, ref)


# ---- what the baselines read from artifacts --------------------------------------------------


def _request(case: BaselineCase) -> SemanticQuery | None:
    try:
        return parse_ir(case.artifacts["request"])
    except Exception:
        return None


@dataclass
class Sql:
    """A compiled SQL artifact, parsed (sqlglot): table aliases and CTE names resolved to the
    tables they read, placeholders to their parameters."""

    tree: exp.Expr
    params: dict[str, Any]
    aliases: dict[str, str]

    def col(self, c: exp.Column) -> str:
        return f"{self.aliases.get(c.table, c.table)}.{c.name}" if c.table else c.name

    def value(self, node: exp.Expr) -> list[str]:
        if isinstance(node, exp.Literal):
            return [node.name]
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            v = self.params.get(node.sql("postgres"), self.params.get(node.name))
            return [str(v)] if v is not None else []
        return []


def _tree(sql_artifact: dict[str, Any] | None, dialect: str) -> Sql | None:
    if not sql_artifact or not sql_artifact.get("sql"):
        return None
    try:
        tree = parse_one(sql_artifact["sql"], dialect)
    except Exception:
        return None
    aliases: dict[str, str] = {}
    for cte in tree.find_all(exp.CTE):
        inner = next(iter(cte.this.find_all(exp.Table)), None)
        if inner is not None:
            aliases[cte.alias_or_name] = inner.name
    for t in tree.find_all(exp.Table):
        if t.alias:
            aliases[t.alias] = aliases.get(t.name, t.name)
        elif t.name in aliases:
            pass
    return Sql(tree, dict(sql_artifact.get("params") or {}), aliases)


def _tables(s: Sql) -> set[str]:
    return {s.aliases.get(t.name, t.name) for t in s.tree.find_all(exp.Table)}


def _aggregates(s: Sql) -> set[tuple[str, bool, tuple[str, ...]]]:
    """(function, distinct, columns) of each aggregate call."""
    out = set()
    for agg in s.tree.find_all(exp.AggFunc):
        distinct = agg.find(exp.Distinct) is not None
        cols = tuple(sorted({s.col(c) for c in agg.find_all(exp.Column)}))
        out.add((agg.key, distinct, cols))
    return out


def _limit(s: Sql) -> int | None:
    lim = s.tree.find(exp.Limit, exp.Fetch)
    if lim is None:
        return None
    node = lim.expression if isinstance(lim, exp.Limit) else lim.args.get("count")
    values = s.value(node) if node is not None else []
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def _predicates(s: Sql) -> list[tuple[str, list[str]]]:
    """(column, values) of each ``column = value`` / ``column IN (...)`` predicate."""
    out = []
    for node in s.tree.find_all(exp.EQ, exp.In):
        col = node.this if isinstance(node.this, exp.Column) else None
        other = node.expression if isinstance(node, exp.EQ) else None
        if col is None and isinstance(node, exp.EQ) and isinstance(node.expression, exp.Column):
            col, other = node.expression, node.this
        if col is None:
            continue
        if isinstance(node, exp.In):
            values = [v for e in node.expressions for v in s.value(e)]
        else:
            values = s.value(other) if other is not None else []
        if values:
            out.append((s.col(col), values))
    return out


# ---- the baselines ---------------------------------------------------------------------------


@dataclass
class Baselines:
    """The baselines for one domain (its policy, read as a team would)."""

    domain: Domain
    database: Any = None  # policystrata.db.domain.DomainDatabases, for the database baselines
    seed: int = 0  # the random rows' seed (random_data_generation)
    _memo: dict[Any, Any] = field(default_factory=dict)
    #: why random_data_generation could not run (its rows did not load), once known
    random_failure: str | None = None

    def __post_init__(self) -> None:
        if self.database is not None:  # sessions set what each DDL's policies read
            schema = self.database.schema
            self.database.use_tenant_settings(
                lambda ddl: ddl_settings(schema if ddl is None else ddl, self.dialect)
            )

    def names(self) -> list[str]:
        return [n for n in ALL if n not in NEEDS_DATABASE or self.database is not None]

    def flags(self, case: BaselineCase) -> dict[str, bool]:
        """Each baseline's answer for one case (True: it flags the case)."""
        out: dict[str, bool] = {}
        for name in self.names():
            if name == "defense_in_depth_stack":
                continue
            out[name] = bool(getattr(self, name)(case))
        union = [*DEFENCE_UNION, *(["db_rls_only"] if self.database is not None else [])]
        out["defense_in_depth_stack"] = any(out[n] for n in union)
        return {n: out[n] for n in self.names()}

    # -- the policy, as its documentation states it ------------------------------------------

    @property
    def dialect(self) -> str:
        return str(getattr(self.domain, "dialect", None) or "postgres")

    def policy_allows(self, principal: str, q: SemanticQuery | None) -> bool:
        """The policy's decision on a request, read from policy.yaml."""
        pol = self.domain.policy
        p = pol.principals.get(principal)
        role = pol.roles.get(p.role) if p is not None else None
        if q is None or p is None or role is None:
            return False
        metric = pol.resolve_metric(q.metric)
        if metric is None or metric not in role.allowed_metrics:
            return False
        roles = pol.metrics[metric].allowed_roles
        if roles is not None and p.role not in roles:
            return False
        for dim in [*q.dimensions, *(f.dimension for f in q.filters)]:
            d = pol.dimensions.get(dim)
            if d is None or dim not in role.allowed_dimensions:
                return False
            if d.allowed_roles is not None and p.role not in d.allowed_roles:
                return False
        if q.time_range is not None and q.time_range not in role.allowed_time_ranges:
            return False
        if role.max_rows is not None and q.limit is not None and q.limit > role.max_rows:
            return False
        cost = pol.query_cost(q.metric, list(q.dimensions), q.limit)
        return role.max_cost is None or cost <= role.max_cost

    def _role(self, principal: str) -> Any:
        p = self.domain.policy.principals.get(principal)
        return (p, self.domain.policy.roles.get(p.role) if p is not None else None)

    def _grammar_accepts(self, grammar: str, text: str) -> bool:
        key = ("grammar", grammar, text)
        if key not in self._memo:
            parser, _err = lalr_parser(grammar)
            ok = False
            if parser is not None:
                try:
                    parser.parse(text)
                    ok = True
                except Exception:
                    ok = False
            self._memo[key] = ok
        return bool(self._memo[key])

    # -- point checks ------------------------------------------------------------------------

    def sql_snapshot(self, case: BaselineCase) -> bool:
        a, b = case.artifacts.get("sql"), case.reference.get("sql")
        ta, tb = _tree(a, self.dialect), _tree(b, self.dialect)
        text_a = ta.tree.sql(self.dialect) if ta is not None else (a or {}).get("sql")
        text_b = tb.tree.sql(self.dialect) if tb is not None else (b or {}).get("sql")
        params_a = (a or {}).get("params") or {}
        params_b = (b or {}).get("params") or {}
        return bool(text_a != text_b or params_a != params_b)

    def validator_only(self, case: BaselineCase) -> bool:
        decided = (case.artifacts.get("validator") or {}).get("decision") == "allow"
        return decided != self.policy_allows(case.principal, _request(case))

    def release_filter_only(self, case: BaselineCase) -> bool:
        released = _released(case.artifacts)
        return released and not self.policy_allows(case.principal, _request(case))

    def sql_ast_policy_checker(self, case: BaselineCase) -> bool:
        tree = _tree(case.artifacts.get("sql"), self.dialect)
        if tree is None:
            return False
        p, role = self._role(case.principal)
        if p is None:
            return True
        tenant_cols = {f"{t}.{c}" for t, c in self.domain.tenant_columns().items()}
        read = _tables(tree)
        scoped = False
        for column, values in _predicates(tree):
            if column in tenant_cols and column.split(".")[0] in read:
                if not set(values) <= set(p.tenant_ids):
                    return True  # bound to another tenant
                scoped = True
        if not scoped:
            return True
        limit = _limit(tree)
        if (
            role is not None
            and role.max_rows is not None
            and (limit is None or limit > role.max_rows)
        ):
            return True
        sensitive = {
            d.column: name
            for name, d in self.domain.policy.dimensions.items()
            if d.sensitive and role is not None and name not in role.allowed_dimensions
        }
        selected = {tree.col(c) for s in tree.tree.find_all(exp.Select) for c in _projected(s)}
        return bool(selected & set(sensitive))

    def grammar_only(self, case: BaselineCase) -> bool:
        grammar, manifest = case.artifacts.get("grammar"), case.artifacts.get("manifest") or {}
        if not grammar:
            return False
        pol = self.domain.policy
        shown_metrics = set()
        for m in manifest.get("metrics") or []:
            shown_metrics.add(m.get("name"))
            shown_metrics.update(m.get("aliases") or [])
        shown_dims = set(manifest.get("dimensions") or [])
        names = {n for name, m in pol.metrics.items() for n in [name, *m.aliases]}
        for name in sorted(names):
            if self._grammar_accepts(grammar, name) != (name in shown_metrics):
                return True
        probe = next(iter(sorted(shown_metrics)), None)
        if probe is None:
            return False
        for dim in sorted(pol.dimensions):
            if self._grammar_accepts(grammar, f"{probe} by {dim}") != (dim in shown_dims):
                return True
        return False

    def lineage_only(self, case: BaselineCase) -> bool:
        tree = _tree(case.artifacts.get("sql"), self.dialect)
        q = _request(case)
        if tree is None or q is None:
            return False
        metric = self.domain.policy.resolve_metric(q.metric)
        if metric is None:
            return False
        m = self.domain.policy.metrics[metric]
        expr = _tree({"sql": f"select {m.expression} from {m.table}"}, self.dialect)
        if expr is None:
            return False
        expected = {
            (f, d, tuple(c if "." in c else f"{m.table}.{c}" for c in cols))
            for f, d, cols in _aggregates(expr)
        }
        return not expected <= _aggregates(tree)

    def naive_surface_equality(self, case: BaselineCase) -> bool:
        q = _request(case)
        manifest = case.artifacts.get("manifest") or {}
        shown = {m.get("name") for m in manifest.get("metrics") or []}
        dims = set(manifest.get("dimensions") or [])
        metric = self.domain.policy.resolve_metric(q.metric) if q is not None else None
        exposed = q is not None and metric in shown and set(q.dimensions) <= dims
        decisions = {
            exposed,
            self._grammar_accepts(case.artifacts.get("grammar") or "", case.artifacts["request"]),
            (case.artifacts.get("validator") or {}).get("decision") == "allow",
            bool((case.artifacts.get("sql") or {}).get("sql")),
            _released(case.artifacts),
        }
        return len(decisions) > 1

    def conventional_test_suite(self, case: BaselineCase) -> bool:
        p, role = self._role(case.principal)
        if p is None or role is None:
            return True
        manifest = case.artifacts.get("manifest") or {}
        # test_manifest_shows_only_role_capabilities
        for m in manifest.get("metrics") or []:
            if m.get("name") not in role.allowed_metrics or m.get("aliases"):
                return True
        if not set(manifest.get("dimensions") or []) <= set(role.allowed_dimensions):
            return True
        q = _request(case)
        allowed = (case.artifacts.get("validator") or {}).get("decision") == "allow"
        # test_sensitive_dimensions_denied_to_roles_without_them
        if q is not None and allowed:
            for dim in [*q.dimensions, *(f.dimension for f in q.filters)]:
                d = self.domain.policy.dimensions.get(dim)
                if d is not None and d.sensitive and dim not in role.allowed_dimensions:
                    return True
        # test_sql_is_scoped_to_the_tenant (a string assertion, as such suites write it)
        sql = (case.artifacts.get("sql") or {}).get("sql")
        if sql and not any(f"'{t}'" in sql for t in p.tenant_ids):
            return True
        # test_nothing_denied_is_released
        return _released(case.artifacts) and not allowed

    def property_differential(self, case: BaselineCase) -> bool:
        a, b = case.artifacts, case.reference
        for key in ("release",):
            if a.get(key) != b.get(key):
                return True
        if (a.get("validator") or {}).get("decision") != (b.get("validator") or {}).get("decision"):
            return True
        ta, tb = _tree(a.get("sql"), self.dialect), _tree(b.get("sql"), self.dialect)
        if (ta is None) != (tb is None):
            return True
        if ta is None or tb is None:
            return False
        props: list[Callable[[Sql], Any]] = [
            _tables,
            _aggregates,
            _limit,
            lambda t: sorted({c for c, _v in _predicates(t)}),
        ]
        return any(f(ta) != f(tb) for f in props)

    # -- with a database ---------------------------------------------------------------------

    def _db_rows(
        self, ddl: str, sql: dict[str, Any] | None, tenant: str | None, random: bool = False
    ) -> Any:
        """Sorted rows of ``sql`` as the application role under ``tenant``, in a database
        holding ``ddl`` and the domain's seed rows (``random``: the random rows) (an error's
        kind when it fails or is refused)."""
        if not sql or not sql.get("sql"):
            return None
        key = ("rows", random, ddl, json.dumps(sql, sort_keys=True, default=str), tenant)
        if key not in self._memo:
            from policystrata.db.session import QueryFailed
            from policystrata.db.vet import UnvettedSQL, vet_sql

            db = (self._random_databases() if random else self.database).for_ddl(ddl)
            params = list((sql.get("params") or {}).values())
            try:
                vetted = vet_sql(sql["sql"], relations=db.relations)
                res = db.run_app(vetted, tenant, params)
                self._memo[key] = sorted(json.dumps(r, default=str) for r in res.rows)
            except (UnvettedSQL, QueryFailed) as exc:
                self._memo[key] = f"not executed: {type(exc).__name__}"
        return self._memo[key]

    def final_answer_only(self, case: BaselineCase) -> bool:
        p, _role = self._role(case.principal)
        tenant = p.tenant_ids[0] if p is not None and p.tenant_ids else None

        def answer(arts: dict[str, Any]) -> Any:
            if not _released(arts):
                return "withheld"
            return self._db_rows(arts["ddl"], arts.get("sql"), tenant)

        return bool(answer(case.artifacts) != answer(case.reference))

    def db_rls_only(self, case: BaselineCase) -> bool:
        ddl, ref = str(case.artifacts.get("ddl") or ""), str(case.reference.get("ddl") or "")
        if ddl == ref:
            return False
        key = ("rls", ddl, ref)
        if key not in self._memo:
            differs = False
            tenants = sorted(
                {t for p in self.domain.policy.principals.values() for t in p.tenant_ids}
            )
            for table in sorted(self.domain.schema.tables):
                probe = {"sql": f"select count(*) from {table}", "params": {}}
                for tenant in tenants:
                    if self._db_rows(ddl, probe, tenant) != self._db_rows(ref, probe, tenant):
                        differs = True
            self._memo[key] = differs
        return bool(self._memo[key])

    def _random_databases(self) -> Any:
        if "random_dbs" not in self._memo:
            from policystrata.bench.random_data import random_rows_sql

            rows = random_rows_sql(self.domain, self.seed)
            if self.dialect == "clickhouse":
                from policystrata.db.clickhouse import ClickHouseDatabases

                dbs: Any = ClickHouseDatabases(
                    self.domain, schema_sql=self.database.schema, seed_sql=rows
                )
                schema = self.database.schema
                dbs.use_tenant_settings(
                    lambda ddl: ddl_settings(schema if ddl is None else ddl, self.dialect)
                )
            else:
                dbs = self.database.reseeded(rows)
            self._memo["random_dbs"] = dbs
        return self._memo["random_dbs"]

    def random_data_generation(self, case: BaselineCase) -> bool:
        if self.random_failure is not None:
            return False
        from policystrata.db.domain import DatabaseSetupFailed, NoDatabase

        p, _role = self._role(case.principal)
        tenant = p.tenant_ids[0] if p is not None and p.tenant_ids else None
        try:
            mine = self._db_rows(case.artifacts["ddl"], case.artifacts.get("sql"), tenant, True)
            ref = self._db_rows(case.reference["ddl"], case.reference.get("sql"), tenant, True)
        except (DatabaseSetupFailed, NoDatabase) as exc:
            self.random_failure = f"its random rows did not load: {exc}"
            return False
        return bool(mine != ref)

    def close(self) -> None:
        """Release what the random rows' databases hold (PostgreSQL ones close with theirs)."""
        dbs = self._memo.pop("random_dbs", None)
        if dbs is not None and self.dialect == "clickhouse":
            dbs.close()


def _projected(select: exp.Select) -> Iterable[exp.Column]:
    for e in select.expressions:
        yield from e.find_all(exp.Column)


# ---- scoring ---------------------------------------------------------------------------------


def score(
    baselines: Baselines, cases: Iterable[tuple[dict[str, Any], BaselineCase | None]]
) -> dict[str, Any]:
    """Per baseline: the published ``{caught, total_failures, missed, catch_rate}``, plus ours:
    ``false_positives`` (flags on fault-free cases), ``controls``, and per operator the
    failures it caught and missed (``missed_operators``: every operator it missed at least
    once)."""
    names = baselines.names()
    per: dict[str, dict[str, Any]] = {
        n: {"caught": 0, "total_failures": 0, "false_positives": 0, "controls": 0, "ops": {}}
        for n in names
    }
    for labels, case in cases:
        if case is None:
            continue
        fault = labels["mutation"] != "none"
        if fault and not labels["differs"]:
            continue  # equivalent or stillborn: no failure to catch
        flags = baselines.flags(case)
        for n in names:
            s = per[n]
            if not fault:
                s["controls"] += 1
                s["false_positives"] += int(flags[n])
                continue
            op = s["ops"].setdefault(labels["mutation"], {"caught": 0, "failures": 0})
            op["failures"] += 1
            op["caught"] += int(flags[n])
            s["total_failures"] += 1
            s["caught"] += int(flags[n])
    out: dict[str, Any] = {}
    for n in names:
        s = per[n]
        total = s["total_failures"]
        out[n] = {
            "caught": s["caught"],
            "total_failures": total,
            "missed": total - s["caught"],
            "catch_rate": round(s["caught"] / total, 4) if total else None,
            "false_positives": s["false_positives"],
            "controls": s["controls"],
            "per_operator": {k: s["ops"][k] for k in sorted(s["ops"])},
            "missed_operators": sorted(
                k for k, v in s["ops"].items() if v["caught"] < v["failures"]
            ),
        }
    return out


def ddl_settings(ddl: str | None, dialect: str = "postgres") -> tuple[str, ...]:
    """The settings a DDL text's row security policies read (``current_setting('x', ...)``,
    found in the dialect's tokens: sqlglot keeps ``CREATE POLICY`` as an unparsed command):
    what the application sets to the tenant, as a team reads it off its own DDL.

    >>> ddl_settings("create policy p on t using (t.tenant_id = current_setting('app.t', true))")
    ('app.t',)
    """
    try:
        toks = tokenize(ddl or "", dialect)
    except Exception:
        return ()
    found = {
        toks[i + 2].text
        for i in range(len(toks) - 2)
        if toks[i].text.lower() == "current_setting"
        and toks[i + 1].type == "L_PAREN"
        and toks[i + 2].type == "STRING"
    }
    return tuple(sorted(found))


def baseline_report(run_dir: Path, domain: Domain, database: Any = None) -> dict[str, Any]:
    """The baselines' scores over one run, and the published baselines not run (with why)."""
    seed = _run_seed(run_dir)
    b = Baselines(domain, database, seed=seed)
    not_run = {n: "not implemented here" for n in NOT_IMPLEMENTED}
    if database is None:
        for n in NEEDS_DATABASE:
            not_run[n] = "needs a database (--db auto or a DSN)"
    try:
        scores = score(b, baseline_cases(run_dir))
    finally:
        b.close()
    if b.random_failure is not None:  # not run, never clean
        scores.pop("random_data_generation", None)
        not_run["random_data_generation"] = b.random_failure
    return {
        "domain": domain.name,
        "baselines": scores,
        "not_run": dict(sorted(not_run.items())),
    }


def _run_seed(run_dir: Path) -> int:
    """The run's seed (metadata.json ``seed``; 0 when it has none: a seeded suite)."""
    try:
        meta = json.loads((run_dir / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    seed = meta.get("seed") if isinstance(meta, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def combine(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' baseline scores summed (baselines in the order first seen)."""
    out: dict[str, Any] = {}
    for rep in reports:
        for name, s in rep.items():
            c = out.setdefault(
                name,
                {"caught": 0, "total_failures": 0, "false_positives": 0, "controls": 0, "ops": {}},
            )
            for k in ("caught", "total_failures", "false_positives", "controls"):
                c[k] += s[k]
            for op, v in s["per_operator"].items():
                o = c["ops"].setdefault(op, {"caught": 0, "failures": 0})
                o["caught"] += v["caught"]
                o["failures"] += v["failures"]
    for c in out.values():
        ops = c.pop("ops")
        total = c["total_failures"]
        c["missed"] = total - c["caught"]
        c["catch_rate"] = round(c["caught"] / total, 4) if total else None
        c["per_operator"] = {k: ops[k] for k in sorted(ops)}
        c["missed_operators"] = sorted(k for k, v in ops.items() if v["caught"] < v["failures"])
    return out
