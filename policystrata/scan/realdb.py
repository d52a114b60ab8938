"""Real-database evidence for a scan (``database:`` in the config, or ``--db``).

The domain's schema.sql and seed.sql (or the config's ``database.schema``/``seed``) are loaded
into a throwaway server (or the given one). For each record that policy authorizes and whose SQL
the gate accepts (read-only guard and execution allow-list), the imported SQL runs logged in as
the non-privileged app role under RLS in a read-only, rolled-back transaction with timeouts,
beside the reference compiler's canonical SQL for the same IR under the same tenant
(:func:`policystrata.db.collect_evidence`). When no canonical SQL exists (no IR, or the reference
compiler cannot build it) the imported SQL runs alone and rows with RLS bypassed are compared
with app rows (containment, cross-tenant rows). A record whose SQL was refused or stopped gets
the ``execution.not_executed`` finding (the rule, with its proof); the counts say how many
records were executed, refused and failed.

Row differences become ``real_db`` findings; the evidence is attached to the record's static
finding when there is one. ``rls_checks`` and ``state_assertions`` run and are reported (JUnit,
summary) whether they pass or fail.

>>> check_rls_rows(["acme", "acme"], ["acme"], None)
(True, 'rows of tenants [acme], expected [acme]')
>>> check_state_rows([["beta"]], expected_rows=None, expect_empty=True, forbidden=None)[0]
False
>>> check_state_rows([["acme", "x@acme"]], expected_rows=None, expect_empty=False,
...     forbidden={"tenant_id": ["beta"]}, columns=["tenant_id", "email"],
...     forbidden_columns=["email"], allowed={"tenant_id": ["acme"]})
(False, 'forbidden column(s) present: email')
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from policystrata.errors import InputError, StrataError
from policystrata.scan.findings import Finding, Location, stable_id
from policystrata.scan.model import CheckOutcome
from policystrata.witness import Evidence

if TYPE_CHECKING:
    from policystrata.case import Case
    from policystrata.scan.run import ScanState

UPSTREAM_LAYERS = ("manifest", "grammar", "validator")


def check_rls_rows(
    tenants: list[Any], expected: list[str] | None, expected_rows: int | None
) -> tuple[bool, str]:
    """Did an RLS check see only the expected tenants (and row count)?"""
    seen = sorted({str(t) for t in tenants})
    ok = True
    if expected is not None and not set(seen) <= set(expected):
        ok = False
    if expected_rows is not None and len(tenants) != expected_rows:
        ok = False
    text = f"rows of tenants [{', '.join(seen)}]"
    if expected is not None:
        text += f", expected [{', '.join(expected)}]"
    if expected_rows is not None:
        text += f"; {len(tenants)} row(s), expected {expected_rows}"
    return ok, text


def check_state_rows(
    rows: list[list[Any]],
    *,
    expected_rows: int | None,
    expect_empty: bool | None,
    forbidden: list[Any] | dict[str, list[Any]] | None,
    columns: list[str] | None = None,
    require_columns: list[str] | None = None,
    forbidden_columns: list[str] | None = None,
    allowed: dict[str, list[Any]] | None = None,
) -> tuple[bool, str]:
    """Does a state assertion's result hold? ``forbidden`` / ``allowed`` map a result column to
    values (a bare ``forbidden`` list applies to every column); ``None`` in a list is SQL NULL."""
    problems = []
    cols = list(columns or [])
    if expect_empty and rows:
        problems.append(f"expected no rows, got {len(rows)}")
    if expected_rows is not None and len(rows) != expected_rows:
        problems.append(f"expected {expected_rows} row(s), got {len(rows)}")
    missing = [c for c in require_columns or () if c not in cols]
    if missing:
        problems.append(f"required column(s) missing: {', '.join(missing)}")
    present = [c for c in forbidden_columns or () if c in cols]
    if present:
        problems.append(f"forbidden column(s) present: {', '.join(present)}")

    def values(column: str) -> list[Any]:
        i = cols.index(column) if column in cols else None
        return [r[i] for r in rows] if i is not None else []

    def member(v: Any, options: list[Any]) -> bool:
        return v in options or (
            v is not None and str(v) in [str(o) for o in options if o is not None]
        )

    if isinstance(forbidden, dict):
        bad = sorted(
            {str(v) for c, opts in forbidden.items() for v in values(c) if member(v, opts)}
        )
    elif forbidden:
        bad = sorted({str(c) for r in rows for c in r if member(c, list(forbidden))})
    else:
        bad = []
    if bad:
        problems.append(f"forbidden value(s) present: {', '.join(bad)}")
    outside = sorted(
        {str(v) for c, opts in (allowed or {}).items() for v in values(c) if not member(v, opts)}
    )
    if outside:
        problems.append(f"value(s) outside the allowed ones: {', '.join(outside)}")
    return (not problems), ("; ".join(problems) or f"{len(rows)} row(s), as expected")


def _canonical_sql(state: ScanState, case: Case, tenants: list[str]) -> tuple[str | None, str]:
    """The reference stack's SQL for the record's IR, or None with the reason."""
    if case.ir is None:
        return None, "the record has no semantic IR"
    try:
        from policystrata.stack.compiler import compile_query
    except ImportError as exc:  # the reference stack is optional for the scanner
        return None, f"reference compiler unavailable ({exc})"
    try:
        compiled = compile_query(state.checker.domain, tenants, case.ir)
    except Exception as exc:
        return None, f"reference compiler could not compile it ({exc})"
    if compiled.params:
        return None, "reference SQL has named parameters"
    return compiled.sql, "reference stack compiler"


def _params(case: Case) -> list[Any]:
    keys = sorted((k for k in case.params if k.startswith("$")), key=lambda k: int(k[1:] or 0))
    return [case.params[k] for k in keys]


def _db_finding(
    state: ScanState,
    case: Case,
    rel: str,
    rule: str,
    message: str,
    severity: str,
    ev: dict[str, Any],
) -> Finding:
    cfg = state.config
    line = case.origin.line if case.origin else None
    where = f"{rel}:{line}" if line else rel
    return Finding(
        id=stable_id(rule, rel, case.id, rule.split(".")[-1]),
        kind="real_db",
        rule_id=rule,
        check=rule.split(".")[-1],
        key=case.id,
        message=message,
        severity=severity,  # type: ignore[arg-type]
        confidence="high",
        surface="compiler" if rule.endswith("result_mismatch") else "database",
        owner="compiler" if rule.endswith("result_mismatch") else "database",
        witness_class="semantic_drift" if rule.endswith("result_mismatch") else "over_permissive",
        evidence_level="real_db",
        location=Location(file=rel, line=line),
        record_id=case.id,
        principal=case.principal,
        regression_case=case.meta.get("regression_case"),
        what_changed=f"{message} (record at {where})",
        probable_fix=(
            "make the query return the rows the canonical compiler's SQL returns for this IR "
            f"under the same tenant ({where})"
            if rule.endswith("result_mismatch")
            else "scope the query and the RLS policy to the session's tenant so no other "
            f"tenant's rows are visible ({where})"
        ),
        repro={"id": case.id, "principal": case.principal, "sql": case.sql},
        recheck=f"strata scan --config {cfg.name} --db auto",
        details={"evidence": ev},
    )


def run_real_db(state: ScanState) -> None:
    """Load the database, execute authorized imported SQL, run RLS checks / state assertions."""
    from policystrata.db.server import resolve_db

    cfg = state.config
    dbcfg = cfg.model.database
    spec = state.db_spec or (dbcfg.admin_url if dbcfg and dbcfg.admin_url else "auto")
    if spec == "none":
        state.database = {"mode": "none", "ran": False, "reason": "--db none"}
        return
    if cfg.db_file("schema") is None and "schema" not in state.checker.domain.sources:
        reason = "no schema to load: the domain has no schema.sql and database.schema is not set"
        if dbcfg is not None and dbcfg.required:
            raise cfg.doc.error(("database", "required"), f"database required: {reason}")
        state.database = {"mode": "none", "ran": False, "reason": reason}
        state.notes.append(f"database evidence not collected: {reason}")
        return
    state.progress("starting the database")
    choice = None
    try:
        choice = resolve_db(spec)
        reason = choice.reason
    except StrataError as exc:
        reason = str(exc)
    if choice is None or choice.server is None:
        if dbcfg is not None and dbcfg.required:
            raise cfg.doc.error(("database", "required"), f"database required: {reason}")
        state.database = {"mode": "none", "ran": False, "reason": reason}
        return
    try:
        _run_with_server(state, choice)
    finally:
        choice.close()


def _run_with_server(state: ScanState, choice: Any) -> None:
    from policystrata.db.evidence import collect_evidence
    from policystrata.db.session import Cluster

    cfg, domain = state.config, state.checker.domain
    dbcfg = cfg.model.database
    schema_path = cfg.db_file("schema") or domain.path / "schema.sql"
    seed_path = cfg.db_file("seed") or domain.path / "seed.sql"
    schema_sql = schema_path.read_text(encoding="utf-8")
    seed_sql = seed_path.read_text(encoding="utf-8") if seed_path.is_file() else ""
    cluster = Cluster(choice.server, app_dsn=dbcfg.app_url if dbcfg else None)
    sources = (cfg.relative(schema_path), cfg.relative(seed_path))
    try:
        db = cluster.fresh_database(schema_sql, seed_sql, sources=sources)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"cannot load schema/seed into PostgreSQL: {exc}", file=cfg.relative(schema_path)
        ) from None
    state.notes.extend(n for n in cluster.notes if n not in state.notes)
    info: dict[str, Any] = {
        "mode": choice.mode,
        "ran": True,
        "executed": 0,
        "refused": 0,
        "failed": 0,
        "skipped_unauthorized": 0,
        "canonical": {},
    }
    tenant_cols = list(domain.tenant_columns().items())
    try:
        if dbcfg is None or dbcfg.execute_imported_sql:
            for case, findings in state.cases:
                _execute_case(state, db, case, findings, tenant_cols, info, collect_evidence)
        if dbcfg is not None:
            _config_checks(state, db, info)
    finally:
        with contextlib.suppress(Exception):
            db.drop()
    info["summary"] = (
        f"{info['executed']} imported quer(ies) executed, {info['refused']} refused by the "
        f"gate (read-only guard, execution allow-list), {info['failed']} failed on the server "
        f"(timeout, denied, error), {info['skipped_unauthorized']} unauthorized not executed"
    )
    state.database = info


def _execute_case(
    state: ScanState,
    db: Any,
    case: Case,
    findings: list[Finding],
    tenant_cols: list[tuple[str, str]],
    info: dict[str, Any],
    collect_evidence: Any,
) -> None:
    pol = state.checker.domain.policy
    rel = case.origin.source if case.origin else "traces"
    principal = pol.principals.get(case.principal or "")
    if principal is None or any(f.surface in UPSTREAM_LAYERS for f in findings):
        info["skipped_unauthorized"] += 1
        return
    if any(f.rule_id == "input.sql_rejected" for f in findings):
        info["refused"] += 1
        return
    tenants = list(principal.tenant_ids or [])
    tenant = tenants[0] if tenants else None
    canonical, why = _canonical_sql(state, case, tenants)
    info["canonical"][why] = info["canonical"].get(why, 0) + 1
    ev = collect_evidence(
        db, canonical, case.sql or "", tenant, params=_params(case), tenant_columns=tenant_cols
    )
    ev["canonical_source"] = why
    layer = ev.get("layer", {})
    loc = Location(file=rel, line=case.origin.line if case.origin else None)
    if "refused" in layer or "error" in layer:
        info["refused" if "refused" in layer else "failed"] += 1
    else:
        info["executed"] += 1
    _not_executed(state, case, rel, findings, ev, loc)
    if "rows" not in layer:
        return
    for f in findings:
        if f.kind == "witness" and f.witness is not None:
            f.evidence_level = "real_db"
            f.witness.evidence = Evidence(level="real_db", details=ev)
    new: list[Finding] = []
    if ev.get("values_match") is False:
        new.append(
            _db_finding(
                state,
                case,
                rel,
                "real_db.result_mismatch",
                f"the imported SQL returned other rows than the canonical SQL for tenant {tenant} "
                f"({ev['layer'].get('row_count')} vs {ev['canonical'].get('row_count')} row(s))",
                "medium",
                ev,
            )
        )
    cross = ev.get("cross_tenant", {})
    if cross.get("visible"):
        new.append(
            _db_finding(
                state,
                case,
                rel,
                "real_db.cross_tenant_rows",
                f"rows of tenant(s) {', '.join(cross.get('foreign_tenants', []))} were visible to "
                f"{case.principal} under tenant {tenant}",
                "critical",
                ev,
            )
        )
    state.findings.extend(new)
    findings.extend(new)
    ids = {f.check: f.id for f in new}
    for check, rule in (
        ("result_mismatch", "real_db.result_matches_canonical"),
        ("cross_tenant_rows", "real_db.no_cross_tenant_rows"),
    ):
        ran = check != "result_mismatch" or canonical is not None
        state.checks.append(
            CheckOutcome(
                layer="database",
                check=rule,
                record=case.id,
                location=loc,
                status="failed" if check in ids else ("passed" if ran else "skipped"),
                finding_ids=[ids[check]] if check in ids else [],
                message=None if ran else why,
            )
        )


def _not_executed(
    state: ScanState,
    case: Case,
    rel: str,
    findings: list[Finding],
    ev: dict[str, Any],
    loc: Location,
) -> None:
    """What did not run (refused by the gate, cancelled, denied, failed) is a finding on the
    record, derived by the rule ``execution.not_executed`` with its proof: a record whose SQL
    was not executed is never clean."""
    from policystrata.lower.rows import rows_facts
    from policystrata.scan.run import witness_finding

    facts = rows_facts(case.id, ev, {}, sql=case.sql, source=case.origin)
    if not facts.by_pred("db_not_executed"):
        return
    result = state.checker.check(case, extra_facts=facts)
    new = [
        witness_finding(state, case, w, rel) for w in result.witnesses if w.check == "not_executed"
    ]
    for f in new:
        f.evidence_level = "real_db"
        if f.witness is not None:
            f.witness.evidence = Evidence(level="real_db", details=ev)
    if new and not findings:
        state.records["clean"] -= 1
        state.records["with_findings"] += 1
    state.findings.extend(new)
    findings.extend(new)
    state.checks.append(
        CheckOutcome(
            layer="database",
            check="execution.not_executed",
            record=case.id,
            location=loc,
            status="failed",
            finding_ids=[f.id for f in new],
            message="; ".join(f.message for f in new) or None,
        )
    )


def _config_checks(state: ScanState, db: Any, info: dict[str, Any]) -> None:
    from policystrata.db.session import QueryFailed
    from policystrata.db.vet import UnvettedSQL

    cfg = state.config
    dbcfg = cfg.model.database
    assert dbcfg is not None
    counts = {
        "rls_checks": {"ran": 0, "passed": 0, "failed": 0},
        "state_assertions": {"ran": 0, "passed": 0, "failed": 0},
    }
    items: list[tuple[str, int, Any]] = [
        ("rls_checks", i, c) for i, c in enumerate(dbcfg.rls_checks)
    ]
    items += [("state_assertions", i, c) for i, c in enumerate(dbcfg.state_assertions)]
    for section, i, item in items:
        line = cfg.line("database", section, i)
        loc = Location(file=cfg.name, line=line)
        broken = False  # the check itself could not run: a config problem, not a database fault
        try:
            res = db.run_app(db.vet(item.sql), item.tenant_id or None)
        except (UnvettedSQL, QueryFailed) as exc:
            ok, text, rows, broken = False, f"could not run: {exc}", [], True
        else:
            rows = res.rows
            if section == "rls_checks":
                col = item.tenant_column or "tenant_id"
                tenants = res.column(col) if col in res.columns else [r[0] for r in rows]
                expected = list(item.expected_tenant_ids) or None
                ok, text = check_rls_rows(tenants, expected, item.expected_rows)
            else:
                ok, text = check_state_rows(
                    rows,
                    expected_rows=item.expected_rows,
                    expect_empty=item.expect_empty,
                    forbidden=item.forbidden_values or None,
                    columns=list(res.columns),
                    require_columns=item.require_columns,
                    forbidden_columns=item.forbidden_columns,
                    allowed=item.allowed_values,
                )
        counts[section]["ran"] += 1
        counts[section]["passed" if ok else "failed"] += 1
        fid: list[str] = []
        if not ok:
            rule = f"database.{section[:-1]}"
            f = Finding(
                id=stable_id(rule, cfg.name, item.id, section),
                kind="database_check",
                rule_id=rule,
                check=item.id,
                key=item.id,
                message=f"{section[:-1].replace('_', ' ')} {item.id} failed: {text}",
                severity="medium"
                if broken
                else ("critical" if section == "rls_checks" else "high"),
                confidence="high",
                surface="database",
                owner="scan config" if broken else "database",
                witness_class="input_error" if broken else "over_permissive",
                evidence_level="real_db",
                location=loc,
                what_changed=f"{item.id} under tenant {item.tenant_id!r}: {text}",
                probable_fix=(
                    f"fix the check's read-only SELECT in {cfg.name}:{line}; the database was "
                    "not judged by it"
                    if broken
                    else "fix the RLS policy / grants so the app role sees only the "
                    f"session tenant's rows ({cfg.name}:{line})"
                ),
                recheck=f"strata scan --config {cfg.name} --db auto",
                details={"sql": item.sql, "tenant": item.tenant_id, "rows": rows[:20]},
            )
            state.findings.append(f)
            fid = [f.id]
        state.checks.append(
            CheckOutcome(
                layer="database",
                check=f"{section}.{item.id}",
                record=item.id,
                location=loc,
                status="passed" if ok else "failed",
                finding_ids=fid,
                message=text,
            )
        )
    info.update(counts)
