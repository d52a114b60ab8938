"""``strata check``: one request, or every record of a trace file, against the policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from policystrata.cli.common import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    domain_options,
    domain_ref,
    expand_rule_paths,
    reports_errors,
    rules_option,
    stderr,
)


@click.command()
@domain_options
@rules_option
@click.argument(
    "traces", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--principal", metavar="ID", help="The principal the request ran as.")
@click.option(
    "--ir",
    "ir_text",
    metavar="TEXT",
    help='Semantic IR text, e.g. "ticket_count by region during last_month limit 100".',
)
@click.option("--sql", metavar="SQL", help="The SQL the stack emitted for the request.")
@click.option(
    "--tenant", "tenants", multiple=True, metavar="ID", help="A tenant the app bound (evidence)."
)
@click.option(
    "--release/--withhold",
    "released",
    default=None,
    help="The release layer's decision, if known.",
)
@click.option("--case-id", default="cli", show_default=True, help="Case id for a single check.")
@click.option(
    "--db",
    "db_spec",
    default=None,
    metavar="auto|none|DSN",
    help="Real-row evidence: auto (default; a private throwaway PostgreSQL, started when first "
    "needed, when binaries exist), none, or a postgresql:// DSN of an admin that can create "
    "roles. Default from $STRATA_DATABASE_URL, else auto. Only SQL the read-only guard and the "
    "execution allow-list accept is executed, logged in as a non-privileged role with RLS in "
    "force; SQL that was not executed is a not_executed finding (docs/database.md).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: a proof tree per violation; json: witness objects (see `strata schema witness`).",
)
@reports_errors
def check(
    domain: str | None,
    domain_path: Path | None,
    extra_rules: tuple[Path, ...],
    traces: Path | None,
    principal: str | None,
    ir_text: str | None,
    sql: str | None,
    tenants: tuple[str, ...],
    released: bool | None,
    case_id: str,
    db_spec: str | None,
    fmt: str,
) -> None:
    """Check one request, or every record of a trace file, against the policy.

    Give either TRACES (a JSONL file of imported trace records) or --principal with --ir and/or
    --sql. Each record is judged on its own: a broken line or unparseable SQL is a finding for
    that record and every other record is still checked.

    \b
    Examples:
      strata check --domain support_saas --principal acme_analyst \\
          --ir "ticket_count by region during last_month limit 100" \\
          --sql "select a.region, count(distinct t.id) from accounts a
                 join support_tickets t on t.account_id = a.id
                 where a.tenant_id = 'acme'
                   and t.opened_at >= date '2026-05-01'
                   and t.opened_at < date '2026-06-01'
                 group by a.region limit 100"
      strata check --domain support_saas traces.jsonl --format json > w.json
    """
    from policystrata.check import Checker
    from policystrata.db.domain import domain_databases
    from policystrata.report.terminal import render_check

    if traces is not None and (principal or ir_text or sql):
        raise click.UsageError("give a TRACES file or --principal/--ir/--sql, not both")
    if traces is None and not principal:
        raise click.UsageError("give a TRACES file, or --principal with --ir and/or --sql")
    if traces is None and not (ir_text or sql):
        raise click.UsageError("give --ir and/or --sql for the principal's request")

    checker = Checker.open(
        domain_ref(domain, domain_path), extra_rule_paths=expand_rule_paths(extra_rules)
    )
    for warning in checker.domain.warnings:  # published forms the domain holds, read as noted
        stderr(f"warning: {warning}")
    with domain_databases(db_spec, checker.domain) as dbs:
        checker.attach_databases(dbs)
        report = _check_cases(checker, traces, principal, ir_text, sql, tenants, released, case_id)
    if fmt == "json":
        click.echo(report.model_dump_json(indent=2))
    else:
        render_check(report)
    sys.exit(EXIT_FINDINGS if report.counts["violation"] or report.counts["error"] else EXIT_CLEAN)


def _check_cases(
    checker: Any,
    traces: Path | None,
    principal: str | None,
    ir_text: str | None,
    sql: str | None,
    tenants: tuple[str, ...],
    released: bool | None,
    case_id: str,
) -> Any:
    from policystrata.case import Case
    from policystrata.check import build_report
    from policystrata.facts import Provenance
    from policystrata.ir import parse_ir
    from policystrata.traces import Skipped, read_traces
    from policystrata.witness import CaseResult

    results: list[CaseResult] = []
    skipped = 0
    if traces is None:
        ir = parse_ir(ir_text, source="--ir") if ir_text else None
        for note in checker.domain.request_notes(principal, ir, ir_text or ""):
            stderr(f"note: {note}")
        case = Case(
            id=case_id,
            principal=principal,
            ir=ir,
            sql=sql,
            tenant_ids=tenants or None,
            release_decision=None if released is None else ("release" if released else "withhold"),
            origin=Provenance("command line"),
        )
        results.append(checker.check(case))
        if sql is None and released is None:
            stderr(f"note: {checker.policy_verdict(case)}")
    else:
        for item in read_traces(traces):
            if isinstance(item, Skipped):
                skipped += 1
            elif isinstance(item, Case):
                results.append(checker.check_record(item))
            else:
                results.append(CaseResult.from_error(item))
        if skipped:
            stderr(
                f"note: skipped {skipped} non-query record(s) "
                "(agent_session, tool_execution, mutation)"
            )

    return build_report(checker, results)
