"""The check pipeline: a case's artifacts -> facts -> rules -> witnesses.

The pipeline is one visible tuple of lowering passes (:data:`CASE_PASSES`); each pass turns one
artifact of the case into facts. Policy facts and rules are loaded once per :class:`Checker` and
reused for every case.

>>> checker = Checker.open("support_saas")
>>> case = Case(id="c1", principal="acme_analyst",
...             sql="select count(*) from accounts where accounts.tenant_id = 'acme' limit 10")
>>> [w.check for w in checker.check(case).witnesses]
[]
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from policystrata import __version__, profile
from policystrata.case import Case
from policystrata.contracts import contract_names
from policystrata.engine import Engine, Program, ProofNode, Result, check_proof, load_program
from policystrata.engine.backend import ORDER_WATCH
from policystrata.engine.proof import renamed_proof, render_message
from policystrata.errors import StrataError, debugging
from policystrata.facts import SOURCE_SLOT, Const, Fact, FactSet, Provenance
from policystrata.layers import DEFENCE_LAYERS, LAYER_RANK
from policystrata.lower.ir import lower_ir
from policystrata.lower.policy import compile_domain
from policystrata.lower.schema import parse_schema
from policystrata.lower.sql import lower_sql
from policystrata.lower.sql.policy_query import RLS_QUERY_FACTS
from policystrata.model import Domain, load_domain
from policystrata.paths import rule_files
from policystrata.witness import (
    CaseResult,
    CheckReport,
    Evidence,
    FaultRef,
    RecordError,
    SourceRef,
    SupportingFact,
    Witness,
    witness_id,
)

if TYPE_CHECKING:  # the database modules (psycopg) load only when a database is used
    from policystrata.db.domain import DomainDatabases
    from policystrata.db.evidence import RowProbe
    from policystrata.db.session import Database

#: Schema facts whose per-case copy (``db_*``, case id first) is the DDL in force.
DDL_FACTS = {
    "rls_enabled": "db_rls_enabled",
    "rls_forced": "db_rls_forced",
    "rls_policy": "db_policy",
    "rls_policy_role": "db_policy_role",
    "rls_policy_pred": "db_policy_pred",
    "rls_policy_always_true": "db_policy_always_true",
    "table_grant": "db_grant",
    **RLS_QUERY_FACTS,
}


@dataclass
class LoweringContext:
    """What the passes may read besides the case: the domain, its reference DDL, and (when a
    database is configured) the domain's databases. ``evidence`` keeps the last case's real-row
    evidence for its witnesses."""

    domain: Domain
    reference_ddl: FactSet
    ddl_cache: dict[str, FactSet] = field(default_factory=dict)
    sql_cache: dict[tuple[str, str], FactSet] = field(default_factory=dict)
    #: per DDL text (None: schema.sql): its db_* case facts for the placeholder case id
    ddl_templates: dict[str | None, FactSet] = field(default_factory=dict)
    databases: DomainDatabases | None = None
    probes: dict[str, RowProbe] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    def row_probe(self, ddl: str | None) -> RowProbe | None:
        """The probe of the database whose DDL is the case's (one database per DDL variant);
        None without a database, or once ``--db auto`` found no server to start (said once)."""
        if self.databases is None:
            return None
        from policystrata.db.domain import NoDatabase

        try:
            db = self.databases.for_ddl(ddl)
        except NoDatabase:
            self.databases = None
            return None
        if db.name not in self.probes:
            from policystrata.db.evidence import RowProbe

            self.probes[db.name] = RowProbe(db, self.domain.tenant_columns())
        return self.probes[db.name]


#: A lowering pass: the case, the context, and the facts earlier passes produced.
Pass = Callable[[Case, LoweringContext, FactSet], FactSet]


def lower_case_identity(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The case, its principal, the tenants and parameters the application bound.

    Bound tenants are evidence of what the application did, never a grant.
    """
    facts = FactSet()
    origin = case.origin
    facts.add("case", case.id, prov=origin)
    if case.principal is not None:
        facts.add("case_principal", case.id, case.principal, prov=origin)
    for tenant in case.tenant_ids or ():
        facts.add("case_bound_tenant", case.id, tenant, prov=origin)
    for name, value in sorted(case.params.items()):
        facts.add("case_param", case.id, name, value, prov=origin)
    return facts


def lower_semantic_ir(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The semantic IR, through :func:`policystrata.lower.ir.lower_ir`."""
    if case.ir is None:
        return FactSet()
    prov = Provenance("ir", snippet=case.ir.to_text())
    return lower_ir(case.id, case.ir, ctx.domain, prov)


MAX_SQL_CHARS = 50_000
"""SQL longer than this is not lowered (``unanalysable_sql``): one record's budget, so one huge
statement cannot stall the check of a whole trace file."""


def lower_sql_text(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The SQL, through :func:`policystrata.lower.sql.lower_sql`. A rejected or unparseable
    statement yields a ``sql_finding`` fact (so a finding with a proof), never an exception.

    A SQL text is lowered once per run whatever record it came from: its facts are made for a
    placeholder case and source (:data:`~policystrata.facts.SOURCE_SLOT`), remembered by text
    (bounded, least recently used first out), and re-based onto each record's case id and
    source, so every fact still points at its own record's file and line."""
    if case.sql is None:
        return FactSet()
    source = case.origin if case.origin is not None else Provenance("sql")
    if len(case.sql) > MAX_SQL_CHARS:  # a per-record budget: lowering is superlinear in size
        facts = FactSet()
        facts.add("sql_present", case.id, prov=source)
        reason = (
            f"the SQL is {len(case.sql)} characters long; at most {MAX_SQL_CHARS} are analysed "
            "per record"
        )
        facts.add("sql_finding", case.id, "unanalysable_sql", reason, prov=source)
        return facts
    key = (case.sql, ctx.domain.dialect)
    hit = ctx.sql_cache.get(key)
    if hit is None:
        hit = lower_sql(
            _SLOT_CASE,
            case.sql,
            ctx.domain.dialect,
            source=SOURCE_SLOT,
            schema=ctx.domain.schema,
        ).facts
        ctx.sql_cache[key] = hit
        if len(ctx.sql_cache) > SQL_CACHE_SIZE:
            ctx.sql_cache.pop(next(iter(ctx.sql_cache)))
    else:
        ctx.sql_cache[key] = ctx.sql_cache.pop(key)  # most recently used last
    return hit.rebased(_SLOT_CASE, case.id, case.origin)


#: SQL texts whose facts a run remembers (a scan's exports repeat a few hundred queries).
SQL_CACHE_SIZE = 1024
_SLOT_CASE = "\x00case"


def lower_release(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The release layer's decision (a trace's ``release_allowed``)."""
    facts = FactSet()
    if case.release_decision is not None:
        facts.add("release_decision", case.id, case.release_decision, prov=case.origin)
    if case.release_cohort_threshold is not None:
        facts.add(
            "release_cohort_threshold", case.id, case.release_cohort_threshold, prov=case.origin
        )
    for kind in case.release_disclosures or ():
        facts.add("release_disclosed", case.id, kind, prov=case.origin)
    return facts


def lower_database(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The DDL in force: the case's own DDL text (a rewritten or live schema) or the domain's
    schema.sql. Parsed DDL is cached by text, since many cases share one variant."""
    template = ctx.ddl_templates.get(case.ddl)
    if template is None:  # made once per DDL variant, renamed per case
        ddl = ctx.reference_ddl if case.ddl is None else _ddl_facts(ctx, case.ddl)
        template = ctx.ddl_templates[case.ddl] = ddl_case_facts(_SLOT_CASE, ddl)
    return template.renamed_case(_SLOT_CASE, case.id)


def _ddl_facts(ctx: LoweringContext, ddl: str) -> FactSet:
    """The schema facts of a DDL text (parsed once per text)."""
    facts = ctx.ddl_cache.get(ddl)
    if facts is None:
        facts = parse_schema(ddl, source="ddl", dialect=ctx.domain.dialect).facts
        ctx.ddl_cache[ddl] = facts
    return facts


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def lower_manifest_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The manifest JSON a model was shown, through
    :func:`policystrata.lower.artifacts.lower_manifest`."""
    from policystrata.lower.artifacts import lower_manifest

    if case.manifest is None:
        return FactSet()
    return lower_manifest(case.id, case.manifest, Provenance("manifest"))


def lower_grammar_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The generated grammar and its decision on the request's IR text, through
    :func:`policystrata.lower.artifacts.lower_grammar`."""
    from policystrata.lower.artifacts import lower_grammar

    if case.grammar is None:
        return FactSet()
    return lower_grammar(case.id, case.grammar, case.request_text, Provenance("grammar"))


def lower_validator_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The validator's decision and obligations, through
    :func:`policystrata.lower.artifacts.lower_validator`."""
    from policystrata.lower.artifacts import lower_validator

    if case.validator is None:
        return FactSet()
    return lower_validator(case.id, case.validator, Provenance("validator"))


def lower_cost_estimate_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The compiler's cost estimate, through
    :func:`policystrata.lower.artifacts.lower_cost_estimate`."""
    from policystrata.lower.artifacts import lower_cost_estimate

    if case.cost_estimate is None:
        return FactSet()
    return lower_cost_estimate(case.id, case.cost_estimate, Provenance("compiler cost estimate"))


def lower_semantic_layer_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """The dbt Semantic Layer files, read with dbt-semantic-interfaces, through
    :func:`policystrata.lower.dbt.lower_semantic_layer` (what dbt rejects raises InputErrors)."""
    if case.semantic_layer is None:
        return FactSet()
    from policystrata.lower.dbt import lower_semantic_layer

    return lower_semantic_layer(case.id, case.semantic_layer)


def lower_real_rows(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """Real rows, when a database is configured: the case's SQL and a containment probe of each
    tenant-owned table it reads, run under the case's tenant (see :mod:`policystrata.lower.rows`).

    Only SQL the read-only guard accepted (``sql_read_only``) and the execution allow-list
    accepts is executed. Whatever was not executed is a ``db_not_executed`` fact (the guard's
    or the allow-list's refusal with its span, the server's timeout or error, no tenant), so a
    rule makes it a finding: not checked is never clean."""
    ctx.evidence = {}
    if case.db_check is not None:
        return _db_check_rows(case, ctx)
    probe = ctx.row_probe(case.ddl)
    if probe is None or case.sql is None:
        return FactSet()
    source = case.origin if case.origin is not None else Provenance("sql")
    if not so_far.by_pred("sql_read_only"):
        return _not_executed_by_guard(case, ctx, so_far)
    tenant = case_tenant(case, ctx.domain)
    if tenant is None:
        reason = "the principal has no tenant to run the SQL under"
        ctx.evidence = {"level": "real_db", "executed": False, "reason": reason}
        facts = FactSet()
        facts.add("db_not_executed", case.id, "no_tenant", reason, prov=source)
        return facts
    evidence = probe.case_evidence(
        case.sql,
        tenant,
        positional_params(case.params),
        case.reference_sql,
        positional_params(case.reference_params),
    )
    # name the DDL in force, not the throwaway database (its name differs run to run)
    evidence["database"] = "schema.sql" if case.ddl is None else f"ddl {_digest(case.ddl)}"
    tables = sorted({str(f.args[3]) for f in so_far.by_pred("sql_reads")})
    probes = {t: probe.table_probe(t, tenant) for t in tables if t in probe.tenant_columns}
    evidence["probes"] = probes
    cohort = _cohort_column(case, ctx.domain)
    if cohort is not None and case.release_decision == "release":
        evidence["cohorts"] = probe.cohort_probe(
            case.sql, tenant, cohort, case.release_cohort_threshold
        )
    ctx.evidence = evidence
    from policystrata.lower.rows import rows_facts

    return rows_facts(case.id, evidence, probes, sql=case.sql, source=source)


def lower_db_check_artifact(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """A scan config's database check: what its rows must be, through
    :func:`policystrata.lower.dbcheck.lower_db_check` (its rows are read by
    :func:`lower_real_rows`)."""
    if case.db_check is None:
        return FactSet()
    from policystrata.lower.dbcheck import lower_db_check

    return lower_db_check(case.id, case.db_check, case.origin)


def _db_check_rows(case: Case, ctx: LoweringContext) -> FactSet:
    """The rows of a database check's query, read from the base database as the app role under
    the check's tenant (only what the gate vets runs); or why they could not be read."""
    from policystrata.db.domain import NoDatabase
    from policystrata.db.session import QueryFailed
    from policystrata.db.vet import UnvettedSQL
    from policystrata.lower.dbcheck import db_check_not_run_facts, db_check_rows_facts

    check = case.db_check
    assert check is not None
    ctx.evidence = {"level": "real_db", "tenant": check.tenant, "sql": check.sql}
    why: tuple[str, str] | None = None
    if ctx.databases is None:
        why = ("no_database", "the scan has no database (--db none, or none could be started)")
    else:
        try:
            db = ctx.databases.for_ddl(None)
            result = db.run_app(db.vet(check.sql), check.tenant)
        except NoDatabase as exc:
            why = ("no_database", str(exc))
        except UnvettedSQL as exc:
            why = ("not_read_only" if exc.kind == "not_read_only" else "refused", exc.reason)
        except QueryFailed as exc:
            why = (exc.kind, str(exc))
        else:
            ctx.evidence["rows"] = result.to_json()
            return db_check_rows_facts(case.id, check, list(result.columns), result.rows)
    ctx.evidence.update(executed=False, reason=f"{why[0]}: {why[1]}")
    return db_check_not_run_facts(case.id, *why)


def _not_executed_by_guard(case: Case, ctx: LoweringContext, so_far: FactSet) -> FactSet:
    """SQL the read-only guard rejected (or the parser could not read) is never sent: one
    ``db_not_executed`` fact per finding of the lowering, at the finding's span."""
    facts = FactSet()
    reasons = []
    for finding in so_far.by_pred("sql_finding"):
        _, kind, reason = finding.args
        reasons.append(str(reason))
        why = "not_read_only" if kind == "not_read_only" else "unparseable"
        provs: list[Provenance | None] = [*so_far.provenance(finding)] or [None]
        for prov in provs:
            facts.add("db_not_executed", case.id, why, str(reason), prov=prov)
    if not reasons:  # no finding says why: still not executed, and still said
        reason = "the read-only guard did not accept the statement"
        facts.add("db_not_executed", case.id, "not_read_only", reason, prov=case.origin)
        reasons.append(reason)
    ctx.evidence = {
        "level": "real_db",
        "executed": False,
        "reason": f"rejected by the read-only guard ({'; '.join(reasons)})",
    }
    return facts


def _cohort_column(case: Case, domain: Domain) -> tuple[str, str] | None:
    """The (table, column) whose distinct values are a group's cohort for the case's metric
    (policy.yaml release.cohort_column), when the domain has release thresholds."""
    rel = domain.policy.release
    metric = domain.policy.resolve_metric(case.ir.metric) if case.ir is not None else None
    if rel is None or not rel.cohort_column or metric is None:
        return None
    from policystrata.model.domain import split_column

    return split_column(rel.cohort_column, domain.policy.metrics[metric].table)


def positional_params(params: dict[str, Any]) -> list[Any]:
    """The ``$1``, ``$2``, ... bindings in position order (``$10`` after ``$9``).

    >>> positional_params({"$10": "j", "$2": "b", "$1": "a", "tenant": "x"})[:2]
    ['a', 'b']
    """
    numbered = [(int(k[1:]), v) for k, v in params.items() if k[:1] == "$" and k[1:].isdigit()]
    return [v for _, v in sorted(numbered)]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def case_tenant(case: Case, domain: Domain) -> str | None:
    """The tenant whose session the case runs under: the tenant the application bound, else the
    principal's first tenant from policy.yaml."""
    if case.tenant_ids:
        return sorted(case.tenant_ids)[0]
    principal = domain.policy.principals.get(case.principal or "")
    return sorted(principal.tenant_ids)[0] if principal and principal.tenant_ids else None


CASE_PASSES: tuple[Pass, ...] = (
    lower_case_identity,
    lower_semantic_ir,
    lower_manifest_artifact,
    lower_grammar_artifact,
    lower_validator_artifact,
    lower_sql_text,
    lower_cost_estimate_artifact,
    lower_release,
    lower_database,
    lower_semantic_layer_artifact,
    lower_db_check_artifact,
    lower_real_rows,
)


def ddl_case_facts(case_id: str, ddl: FactSet) -> FactSet:
    """Copy schema-level RLS/grant facts into per-case ``db_*`` facts.

    >>> ddl = FactSet(); _ = ddl.add("rls_enabled", "accounts")
    >>> ddl_case_facts("c1", ddl).to_lines()
    'db_rls_enabled("c1", "accounts")\\n'
    """
    out = FactSet()
    for fact in ddl:
        target = DDL_FACTS.get(fact.pred)
        if target is None:
            continue
        provs: list[Provenance | None] = [*ddl.provenance(fact)] or [None]
        for prov in provs:
            out.add(target, case_id, *fact.args, prov=prov)
    return out


def load_rules(
    rule_paths: Sequence[Path] | None = None, extra_rule_paths: Sequence[Path] = ()
) -> Program:
    """Parse and statically check the shipped rules (or ``rule_paths``) plus extra rule files."""
    paths = list(rule_paths) if rule_paths is not None else rule_files()
    program = load_program([*paths, *extra_rule_paths])
    _require_messages(program)
    return program


def case_free(program: Program) -> set[str]:
    """The input predicates the shipped rules declare with a first argument other than the case
    id (``rules/decl_policy.dl``, ``decl_rls.dl``...: policy, schema, vocabulary): the same for
    every case. A predicate of a user's rule file is never assumed so (a case bringing facts of
    one assumed so would still be judged right, on the engine's slower full backend).

    >>> sorted(case_free(load_rules()))[:3]
    ['canonical_predicate', 'column_not_null', 'dimension']
    """
    from policystrata.engine.parser import display_name
    from policystrata.paths import rule_files

    shipped = {display_name(p) for p in rule_files()}
    return {
        p
        for p, d in program.decls.items()
        if d.loc.file in shipped and not program.is_idb(p) and d.arg_names[:1] != ("case",)
    }


#: Predicates whose rules become witnesses: each such rule must say what it found.
WITNESS_PREDICATES = ("layer_fault", "violation", "contained")


def _require_messages(program: Program) -> None:
    """A rule deriving a witness predicate without ``@message`` would give a witness (or an
    "also failed" line) that explains nothing: a load error at the rule, like a static check."""
    from policystrata.engine.errors import RuleError, RuleErrors
    from policystrata.witness import CONFIDENCES, SEVERITIES

    errors = [
        RuleError(
            f"a rule deriving {r.head.pred}/{len(r.head.args)} needs an @message "
            "(what the witness says)",
            file=r.file,
            line=r.line,
            rule_id=r.id,
        )
        for r in program.rules
        if r.head.pred in WITNESS_PREDICATES and r.body and not r.message
    ]
    for r in program.rules:
        for key, allowed in (("severity", SEVERITIES), ("confidence", CONFIDENCES)):
            value = r.annotations.get(key)
            if value is not None and value not in allowed:
                errors.append(
                    RuleError(
                        f"@{key} {value!r} is not one of {', '.join(allowed)}",
                        file=r.file,
                        line=r.line,
                        rule_id=r.id,
                    )
                )
    if errors:
        raise RuleErrors(errors)


def _reference_ddl(policy_facts: FactSet) -> FactSet:
    ddl = FactSet()
    for fact in policy_facts:
        if fact.pred in DDL_FACTS:
            provs: list[Provenance | None] = [*policy_facts.provenance(fact)] or [None]
            for prov in provs:
                ddl.add_fact(fact, prov)
    return ddl


class Checker:
    """Policy facts and rules loaded once; :meth:`check` judges one case at a time."""

    def __init__(
        self,
        domain: Domain,
        rule_paths: Sequence[Path] | None = None,
        extra_rule_paths: Sequence[Path] = (),
        timeout: float = 10.0,
        program: Program | None = None,
    ) -> None:
        self.domain = domain
        self.program: Program = program or load_rules(rule_paths, extra_rule_paths)
        self.policy_facts = compile_domain(domain)
        self.engine = Engine(
            self.program, self.policy_facts, timeout=timeout, fixed=case_free(self.program)
        )
        self.context = LoweringContext(domain, _reference_ddl(self.policy_facts))
        self._tenant_settings: dict[str | None, tuple[str, ...]] = {}
        self._verdicts: OrderedDict[Any, tuple[str, list[WitnessParts]]] = OrderedDict()
        self.last_artifact_fact_count = 0
        """Number of artifact facts (all but real rows) of the case :meth:`check` judged last."""
        # what check() proved last, kept cheaply (a Recall is made of it on request)
        self._last_recall: tuple[str, Provenance | None, FactSet, list[WitnessParts], bool] | None
        self._last_recall = None
        self._last_parts: tuple[str, list[WitnessParts]] | None = None

    @classmethod
    def open(
        cls,
        domain: str | Path,
        rule_paths: Sequence[Path] | None = None,
        extra_rule_paths: Sequence[Path] = (),
        timeout: float = 10.0,
        prepare: Callable[[Domain], None] | None = None,
    ) -> Checker:
        """Load the rules, then the domain, checking the domain's layer contracts (surfaces.yaml)
        against the
        responsibility and obligation names the rules know (an unknown name is a load error).
        ``prepare`` adds to the loaded domain before its facts are compiled (the scan config's
        tenancy)."""
        program = load_rules(rule_paths, extra_rule_paths)
        responsibilities, obligations = contract_names(program)
        dom = load_domain(
            domain, known_responsibilities=responsibilities, known_obligations=obligations
        )
        if prepare is not None:
            prepare(dom)
        return cls(dom, program=program, timeout=timeout)

    def attach_databases(self, databases: DomainDatabases | None) -> None:
        """Collect real-row evidence for every following case from the database whose DDL is
        the case's DDL in force (None: no database). Each database's sessions set the settings
        its DDL's policies read (:meth:`tenant_settings`)."""
        if databases is not None:
            databases.use_tenant_settings(self.tenant_settings)
        self.context.databases = databases
        self.context.probes = {}

    def tenant_settings(self, ddl: str | None = None) -> tuple[str, ...]:
        """The session settings that carry the tenant under ``ddl`` (None: the domain's
        schema.sql): the ``tenant_setting`` atoms the rules (``rules/database.dl``) derive from
        its row security policies, which the database sessions set to the case's tenant.

        >>> Checker.open("support_saas").tenant_settings()
        ('app.tenant_id',)
        """
        schema = self.domain.sources.get("schema")
        key = None if ddl is None or (schema is not None and ddl == _read(schema)) else ddl
        hit = self._tenant_settings.get(key)
        if hit is None:
            ddl_facts = self.context.reference_ddl if key is None else _ddl_facts(self.context, key)
            probe = "tenant_settings"
            result = self.engine.evaluate(
                ddl_case_facts(probe, ddl_facts), predicates=("tenant_setting",)
            )
            atoms = result.atoms("tenant_setting")
            hit = tuple(sorted({str(a[1]) for a in atoms if a[0] == probe}))
            self._tenant_settings[key] = hit
        return hit

    def attach_database(self, database: Database) -> None:
        """Collect real-row evidence from this one database, whatever a case's DDL (tests)."""
        from policystrata.db.domain import DomainDatabases

        self.attach_databases(DomainDatabases.of(database, self.domain))

    @property
    def has_database(self) -> bool:
        """Real rows were collected from a database (one was set up for some case)."""
        return self.context.databases is not None and self.context.databases.started

    @property
    def rules_digest(self) -> str:
        return self.program.digest()

    def case_facts(self, case: Case, real_rows: bool = True) -> FactSet:
        """All facts of the case (``real_rows=False`` skips the database, e.g. while
        minimizing)."""
        facts = self.artifact_facts(case)
        if real_rows:
            facts.update(lower_real_rows(case, self.context, facts))
        return facts

    def artifact_facts(self, case: Case) -> FactSet:
        """The facts of the case's artifacts alone (every pass but the real-row probe): what
        :meth:`check` lowers besides real rows, e.g. to reuse for a case checked again."""
        facts = FactSet()
        with profile.stage("lowering"):
            for lowering in CASE_PASSES:
                if lowering is not lower_real_rows:
                    facts.update(lowering(case, self.context, facts))
        return facts

    def check(
        self,
        case: Case,
        *,
        artifact_facts: FactSet | None = None,
        evaluated: Result | None = None,
        keep: Callable[[tuple[Const, ...]], bool] | None = None,
        defence: bool = False,
        extra_facts: FactSet | None = None,
    ) -> CaseResult:
        """Judge the case. ``artifact_facts`` (from :meth:`artifact_facts` for this very case)
        skips lowering the artifacts again, and ``evaluated`` (the engine's evaluation of
        exactly those facts) skips the evaluation when real rows add no fact; ``keep``
        selects the violation atoms that become witnesses (default: all); ``defence`` adds the
        witnesses of outranked defence-layer faults (see :meth:`_witnesses`). ``extra_facts``:
        evidence gathered outside the pipeline (the scan's real-database stage), judged with
        the case's own facts."""
        self._last_recall = self._last_parts = None
        if artifact_facts is None:
            facts = self.artifact_facts(case)
            evaluated = None
        else:  # a copy: the caller's facts stay as they were
            facts = artifact_facts.copy()
        self.last_artifact_fact_count = len(facts)
        with profile.stage("database"):
            rows = lower_real_rows(case, self.context, facts)
        if extra_facts is not None:
            rows.update(extra_facts)
        facts.update(rows)
        if evaluated is not None and len(rows) == 0:
            result = evaluated
        else:
            result = self.engine.evaluate(facts)
        witnesses = self._witnesses(case, result, keep, defence)
        evidence = None
        if self.context.evidence:
            evidence = Evidence(level="real_db", details=self.context.evidence)
            for w in witnesses:
                w.evidence = evidence
        errors = []
        if "ir_error" in case.meta:
            src = case.origin
            errors.append(
                RecordError(
                    kind="invalid_semantic_ir",
                    message=str(case.meta["ir_error"]),
                    source=SourceRef(file=src.source, line=src.line) if src else None,
                    case_id=case.id,
                )
            )
        verdict: Literal["clean", "violation", "error"] = (
            "error" if errors else ("violation" if witnesses else "clean")
        )
        last = self._last_parts
        if (
            last is not None
            and last[0] == case.id
            and keep is None
            and extra_facts is None
            and evidence is None
            and not errors
            and self.context.databases is None
        ):
            self._last_recall = (case.id, case.origin, facts, last[1], defence)
        self._last_parts = None
        return CaseResult(
            case=case.info(),
            verdict=verdict,
            witnesses=witnesses,
            errors=errors,
            evidence=evidence,
        )

    # -- a case judged again for another case with the same content -------------------------

    def recall_of(self, case: Case) -> Recall | None:
        """What :meth:`check` just proved for ``case`` (the last case it checked), kept to make
        the same result for another case whose artifacts are the same but its id and line
        (:meth:`recalled`); None when that would not be the same result.

        It is kept only when the engine and the checker would themselves answer such a case
        by renaming (its evaluation and proofs do not order the case id against another
        string: ``Result.memo_key``), with no database, no ``keep`` and no extra facts, and
        when the case's facts are seen to move with its id and line: the same artifacts
        lowered for another id and line (a probe) are this case's facts with that id and
        that line, fact for fact and provenance for provenance."""
        last = self._last_recall
        if last is None or last[0] != case.id or "fuzz" in case.meta:
            return None
        if "ir_error" in case.meta or self.context.databases is not None:
            return None
        recall = Recall(*last)
        origin = case.origin
        if origin is not None and origin.line is not None:
            origin = replace(origin, line=origin.line + _PROBE_LINES)
        probe = replace(case, id=_PROBE_CASE, origin=origin)
        if not recall.moves_to(probe.origin):
            return None
        got = self.case_facts(probe)
        want = recall.facts_for(_PROBE_CASE, probe.origin)
        if list(got._facts.items()) != list(want._facts.items()):
            return None
        return recall

    def recalled(self, recall: Recall, case: Case) -> CaseResult | None:
        """``check(case, defence=...)`` for a case with the artifacts of the case ``recall``
        was kept for (:meth:`recall_of`) under another id and line, without lowering,
        evaluating or proving again: its witnesses are the kept proofs renamed to ``case``'s
        id (:class:`Renamer`, as the checker renames a remembered case's proofs), each fact
        leaf's provenance moved to ``case``'s line, built as :meth:`check` builds them. None
        when ``case`` cannot be answered so (its id is a constant of the rules or the policy,
        or an argument of the kept facts; its origin differs by more than its line; a
        database is attached)."""
        if self.context.databases is not None or "fuzz" in case.meta or "ir_error" in case.meta:
            return None
        new = case.id
        if new != recall.case_id and (
            new in recall.strings or (str, new) in self.engine._all_constants()
        ):
            return None
        if not recall.moves_to(case.origin):
            return None
        view = _RecalledFacts(recall, case, self.engine.policy_facts)
        rename = Renamer(recall.case_id, new, view, self.program)
        witnesses = [self._build(case, rename.parts(p)) for p in recall.parts]
        return CaseResult(
            case=case.info(),
            verdict="violation" if witnesses else "clean",
            witnesses=witnesses,
            errors=[],
            evidence=None,
        )

    def check_record(self, case: Case) -> CaseResult:
        """One record of a trace file, isolated: whatever goes wrong while judging it (the
        engine's time budget, a proof that does not check, a bug) is an error result for this
        record at its file:line, and the other records are still checked. Ctrl-C still stops
        the run."""
        from policystrata.db.domain import DatabaseSetupFailed
        from policystrata.witness import RecordError, SourceRef

        try:
            return self.check(case)
        except (
            DatabaseSetupFailed
        ):  # the run's problem (a schema that does not load), not the record's
            raise
        except Exception as exc:  # one record's problem, never the file's
            src = case.origin
            kind = "record_not_judged" if isinstance(exc, StrataError) else "internal_error"
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if not isinstance(exc, StrataError):
                message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
                if debugging():
                    traceback.print_exc()
            return CaseResult.from_error(
                RecordError(
                    kind=kind,
                    message=f"the record could not be judged: {message}",
                    source=SourceRef(file=src.source, line=src.line) if src else None,
                    case_id=case.id,
                )
            )

    def policy_verdict(self, case: Case) -> str:
        """What policy says about a request given with no layer artifact (no --sql, no
        decision): nothing shows a layer let it through, so no layer can be at fault; say what
        policy decides."""
        result = self.engine.evaluate(self.case_facts(case))
        reasons = sorted({f"{r[1]}: {r[2]}" for r in result.atoms("deny_reason")})
        verdict = "policy allows this request"
        if reasons:
            verdict = f"policy denies this request ({'; '.join(reasons)})"
        return (
            f"{verdict}; with no --sql and no --release/--withhold there is no layer output to "
            "judge, so no layer is at fault"
        )

    # -- witnesses ---------------------------------------------------------------------------

    def _witnesses(
        self,
        case: Case,
        result: Any,
        keep: Callable[[tuple[Const, ...]], bool] | None = None,
        defence: bool = False,
    ) -> list[Witness]:
        """One witness per violation atom (``keep`` selects them); with ``defence``, also one per
        fault of a defence layer (database, release) that an earlier layer's violation outranked:
        their job is to stop upstream faults, so their failure is a regression of its own.

        A case whose facts equal an earlier case's up to the case id (``Result.memo_key``) gets
        that case's checked proofs, renamed to its own case id, with each fact leaf's provenance
        taken from its own facts (:func:`~policystrata.engine.proof.renamed_proof`): a
        consistent renaming of a constant that occurs in no rule and no policy fact maps a
        valid proof to a valid proof of the renamed atom over the renamed facts."""
        memo = None
        if keep is None and self.context.databases is None and result.memo_key is not None:
            cid, key = result.memo_key
            memo = (key, defence)
            hit = self._verdicts.get(memo)
            if hit is not None:
                self._verdicts.move_to_end(memo)
                old, parts = hit
                rename = Renamer(old, cid, result, self.program)
                renamed = [rename.parts(p) for p in parts]
                self._last_parts = (case.id, renamed) if cid == case.id else None
                return [self._build(case, p) for p in renamed]
        watch = ORDER_WATCH
        saved = watch.cid, watch.seen
        watch.cid, watch.seen = (result.memo_key[0] if memo is not None else None), False
        try:
            parts = self._parts(result, keep, defence)
        finally:
            ordered = watch.seen
            watch.cid, watch.seen = saved
        if memo is not None and not ordered:
            self._verdicts[memo] = (result.memo_key[0], parts)
            if len(self._verdicts) > VERDICT_MEMO_SIZE:
                self._verdicts.popitem(last=False)
            self._last_parts = (case.id, parts) if result.memo_key[0] == case.id else None
        return [self._build(case, p) for p in parts]

    def _parts(
        self,
        result: Any,
        keep: Callable[[tuple[Const, ...]], bool] | None,
        defence: bool,
    ) -> list[WitnessParts]:
        """The proved (and independently checked) parts of each witness of the case."""
        violations = result.atoms("violation")
        if keep is not None:
            violations = [v for v in violations if keep(v)]
        if not violations:
            return []
        faults = result.atoms("layer_fault")
        contained = result.atoms("contained")
        rank = LAYER_RANK
        lookup = result.fact_lookup  # one independent model per case, shared by its proofs
        out: list[WitnessParts] = []
        for atom in violations:
            _, layer, _class, check, key = atom
            proof = result.prove(Fact("violation", tuple(atom)))
            check_proof(proof, self.program, lookup)
            containers = sorted(
                (c for c in contained if c[2] == check and _same(c[3], key)),
                key=lambda c: rank.get(str(c[1]), 99),
            )
            containment: tuple[str, ProofNode] | None = None
            if containers:
                c_atom = containers[0]
                containment = (str(c_atom[1]), result.prove(Fact("contained", tuple(c_atom))))
            also = []
            for f in faults:
                if f[1] == layer and f[3] == check and _same(f[4], key):
                    continue
                also.append(result.prove(Fact("layer_fault", tuple(f))))
            out.append(WitnessParts(Fact("violation", tuple(atom)), proof, containment, also))
        if defence:
            seen = {
                (str(p.atom.args[1]), str(p.atom.args[3]), json.dumps(p.atom.args[4])) for p in out
            }
            for f in faults:
                sig = (f[1], str(f[3]), json.dumps(f[4]))
                if f[1] not in DEFENCE_LAYERS or sig in seen:
                    continue
                seen.add(sig)
                atom = Fact("layer_fault", tuple(f))
                proof = result.prove(atom)
                check_proof(proof, self.program, lookup)
                out.append(WitnessParts(atom, proof, None, [], defence=True))
        return out

    def _build(self, case: Case, parts: WitnessParts) -> Witness:
        also = [
            FaultRef(
                surface=f.args[1],  # type: ignore[arg-type]
                witness_class=f.args[2],  # type: ignore[arg-type]
                check=str(f.args[3]),
                key=f.args[4],
                rule_id=f.rule or "",
                message=f.message or "",
            )
            for f in parts.also
        ]
        layer, c_proof = parts.containment or (None, None)
        return self._witness(
            case,
            parts.atom,
            parts.proof,
            containment_layer=layer,
            containment_message=c_proof.message if c_proof is not None else None,
            also_failed=also,
            defence=parts.defence,
        )

    def _witness(
        self,
        case: Case,
        atom: Fact,
        proof: ProofNode,
        *,
        containment_layer: str | None = None,
        containment_message: str | None = None,
        also_failed: list[FaultRef] | None = None,
        defence: bool = False,
    ) -> Witness:
        """The witness of one proved ``violation`` (or defence-layer ``layer_fault``) atom."""
        _, layer, wclass, check, key = atom.args
        step = proof.fault_step()
        severity, confidence = grade(self.program, proof, contained=containment_layer is not None)
        return Witness(
            id=witness_id(step.rule or "", case.id, key),
            case=case.info(),
            witness_class=wclass,  # type: ignore[arg-type]
            localized_surface=layer,  # type: ignore[arg-type]
            containment_layer=containment_layer,  # type: ignore[arg-type]
            containment_message=containment_message,
            check=str(check),
            key=key,
            rule_id=step.rule or "",
            message=step.message or "",
            fix=self._fix(step),
            severity=severity,  # type: ignore[arg-type]
            confidence=confidence,  # type: ignore[arg-type]
            defence=defence,
            atom=atom.render(),
            also_failed=also_failed or [],
            proof=proof,
            supporting_facts=_supporting(proof),
            evidence=Evidence(level="static"),
        )

    def _fix(self, step: ProofNode) -> str | None:
        template = self.program.rule(step.rule).fix if step.rule else None
        return render_message(template, step.bindings) if template else None


#: Cases whose checked witness proofs are remembered, up to the case id (see ``_witnesses``).
VERDICT_MEMO_SIZE = 512


@dataclass
class WitnessParts:
    """What a witness is built from: its atom and checked proof, the containment layer and the
    proof of its ``contained`` atom, the proofs of the other layer faults (``also failed``)."""

    atom: Fact
    proof: ProofNode
    containment: tuple[str, ProofNode] | None
    also: list[ProofNode]
    defence: bool = False


class Renamer:
    """Parts of one case's witnesses for another case with the same facts up to the case id."""

    def __init__(self, old: str, new: str, result: Any, program: Program) -> None:
        self.old, self.new, self.result, self.program = old, new, result, program
        self.done: dict[int, ProofNode] = {}

    def proof(self, node: ProofNode) -> ProofNode:
        return renamed_proof(node, self.old, self.new, self.result, self.program, self.done)

    def parts(self, p: WitnessParts) -> WitnessParts:
        old, new = self.old, self.new
        args = tuple(new if type(a) is str and a == old else a for a in p.atom.args)
        containment = None
        if p.containment is not None:
            containment = (p.containment[0], self.proof(p.containment[1]))
        return WitnessParts(
            Fact(p.atom.pred, args),
            self.proof(p.proof),
            containment,
            [self.proof(f) for f in p.also],
            p.defence,
        )


#: The probe of :meth:`Checker.recall_of`: an id no record has, and a line this far below.
_PROBE_CASE, _PROBE_LINES = "\x00recall-probe", 7919


@dataclass
class Recall:
    """A checked case kept to answer another case with the same artifacts under another id
    and line (:meth:`Checker.recall_of`, :meth:`Checker.recalled`): its id and origin, its facts
    (with their provenance), the checked parts of its witnesses, and whether defence-layer
    witnesses were asked for."""

    case_id: str
    origin: Provenance | None
    facts: FactSet
    parts: list[WitnessParts]
    defence: bool
    strings: set[str] = field(default_factory=set)  # every string argument of the facts

    def __post_init__(self) -> None:
        self.strings = {a for f in self.facts for a in f.args if type(a) is str}

    def moves_to(self, origin: Provenance | None) -> bool:
        """Whether ``origin`` differs from the kept case's origin at most by its line."""
        if self.origin is None or origin is None:
            return self.origin is None and origin is None
        if (self.origin.line is None) != (origin.line is None):
            return False
        return replace(origin, line=self.origin.line) == self.origin

    def moved(self, prov: Provenance, origin: Provenance | None) -> Provenance:
        """``prov`` of a kept fact for a case at ``origin``: pointing at the kept case's file
        and line, it points at ``origin``'s line instead."""
        o = self.origin
        if o is None or origin is None or o.line is None:
            return prov
        if prov.source == o.source and prov.line == o.line:
            return replace(prov, line=origin.line)
        return prov

    def facts_for(self, case_id: str, origin: Provenance | None) -> FactSet:
        """The kept facts renamed to ``case_id`` with their provenance moved to ``origin``."""
        out: dict[Fact, list[Provenance]] = {}
        old = self.case_id
        for fact, provs in self.facts._facts.items():
            args = fact.args
            if args and type(args[0]) is str and args[0] == old:
                fact = Fact(fact.pred, (case_id, *args[1:]))
            out[fact] = [self.moved(p, origin) for p in provs]
        return FactSet(out)


class _RecalledFacts:
    """What :class:`Renamer` reads of a case's evaluation (``provenance``), for a case answered
    from a :class:`Recall`: a case fact's provenance is the kept fact's, moved to the case's
    line; any other fact's is the policy's."""

    def __init__(self, recall: Recall, case: Case, policy: FactSet) -> None:
        self.recall, self.case, self.policy = recall, case, policy

    def provenance(self, fact: Fact) -> list[Provenance]:
        old, new = self.recall.case_id, self.case.id
        args = tuple(old if type(a) is str and a == new else a for a in fact.args)
        provs = self.recall.facts.provenance(Fact(fact.pred, args))
        if provs:
            return [self.recall.moved(p, self.case.origin) for p in provs]
        return self.policy.provenance(fact)


#: What a rule says when it carries no ``@severity`` / ``@confidence`` annotation.
DEFAULT_SEVERITY, DEFAULT_CONFIDENCE = "medium", "high"
#: A violation a later layer contained is at most this severe: its effect was blocked.
CONTAINED_SEVERITY = "medium"


def grade(program: Program, proof: ProofNode, *, contained: bool) -> tuple[str, str]:
    """(severity, confidence) of a witness, read off the rules its proof applies.

    Severity is the ``@severity`` of the check's own rule (the fault step), capped at
    :data:`CONTAINED_SEVERITY` when a later layer contained the violation. Confidence is the
    lowest ``@confidence`` of any rule in the proof: a step that rests on an inferred decision
    or an unknown key weakens everything built on it.

    >>> from policystrata.engine import parse_program
    >>> prog = parse_program('''
    ... .decl q(c)
    ... @confidence medium
    ... p(C) :- q(C).
    ... @severity critical
    ... r(C) :- p(C).
    ... ''', source="g.dl")
    >>> from policystrata.prooftree import ProofNode
    >>> leaf = ProofNode("fact", pred="q", args=("c",))
    >>> proof = ProofNode("rule", pred="r", args=("c",), rule="g.r.1",
    ...     premises=[ProofNode("rule", pred="p", args=("c",), rule="g.p.1", premises=[leaf])])
    >>> grade(prog, proof, contained=False), grade(prog, proof, contained=True)
    (('critical', 'medium'), ('medium', 'medium'))
    """
    from policystrata.witness import CONFIDENCES, SEVERITIES

    step = proof.fault_step()
    severity = DEFAULT_SEVERITY
    if step.rule:
        severity = program.rule(step.rule).annotations.get("severity", DEFAULT_SEVERITY)
    if contained and SEVERITIES.index(severity) > SEVERITIES.index(CONTAINED_SEVERITY):
        severity = CONTAINED_SEVERITY
    confidence = min(
        (
            program.rule(r).annotations.get("confidence", DEFAULT_CONFIDENCE)
            for r in proof.rule_ids()
        ),
        key=CONFIDENCES.index,
        default=DEFAULT_CONFIDENCE,
    )
    return severity, confidence


def _same(a: Const, b: Const) -> bool:
    return type(a) is type(b) and a == b


def _supporting(proof: ProofNode) -> list[SupportingFact]:
    """The proof's leaves (the minimal supporting fact set), deduplicated, in proof order."""
    out = []
    seen = set()
    for leaf in proof.leaves():
        text = leaf.atom_text().lstrip("!") if leaf.kind == "absent" else leaf.atom_text()
        if (leaf.kind, text) in seen or leaf.kind == "rule":
            continue
        seen.add((leaf.kind, text))
        out.append(
            SupportingFact(
                atom=text,
                kind=leaf.kind,  # type: ignore[arg-type]
                provenance=[str(p) for p in leaf.provenance],
            )
        )
    return out


def verify_witness(witness: Witness, program: Program) -> None:
    """Re-verify a saved witness's proof with the independent proof checker against
    ``program``, from what the witness cites: every rule step must instantiate its rule at the
    cited file:line, every fact leaf must be a cited fact, every comparison must hold (absent
    leaves are checked against the witness's own facts: the case's full fact set is not part of
    a witness). Raises :class:`~policystrata.engine.ProofError`."""
    from policystrata.engine import FactLookup, ProofError

    if witness.proof is None:
        raise ProofError("the witness carries no proof")
    proof = witness.proof
    lookup = FactLookup(
        [n.fact for n in proof.nodes("fact")], derived=[n.fact for n in proof.nodes("rule")]
    )
    check_proof(proof, program, lookup)


def summarize(results: Iterable[CaseResult]) -> dict[str, int]:
    counts = {"cases": 0, "clean": 0, "violation": 0, "error": 0, "witnesses": 0}
    for r in results:
        counts["cases"] += 1
        counts[r.verdict] += 1
        counts["witnesses"] += len(r.witnesses)
    return counts


def build_report(checker: Checker, results: list[CaseResult]) -> CheckReport:
    return CheckReport(
        version=__version__,
        domain=checker.domain.name,
        rules_digest=checker.rules_digest,
        results=results,
        counts=summarize(results),
    )
