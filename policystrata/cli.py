"""Command-line interface: one click group, installed as ``strata`` and ``policystrata``.

stdout carries only the report; progress and notes go to stderr. Exit codes CI can trust: 0
clean, 1 findings, 2 usage or input error, and also 2 for an unexpected internal error (one
line; ``strata --debug ...`` or ``STRATA_DEBUG=1`` shows the traceback), never 1. Ctrl-C exits
130 after cleaning up (a throwaway database server is stopped).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from policystrata import __version__
from policystrata.errors import InputError, StrataError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT): 128 + 2, as shells report it."""
ENV_DEBUG = "STRATA_DEBUG"

_debug = False


def debugging() -> bool:
    """``strata --debug`` or ``STRATA_DEBUG=1``: show the traceback of an internal error."""
    return _debug or os.environ.get(ENV_DEBUG, "").strip().lower() in ("1", "true", "yes")


def _stderr(message: str) -> None:
    click.echo(message, err=True)


def os_error_line(exc: OSError) -> str:
    """An operating-system error in one line, naming the file.

    >>> os_error_line(OSError(30, "Read-only file system", "/out/scan.json"))
    '/out/scan.json: Read-only file system'
    """
    what = exc.strerror or str(exc)
    name = exc.filename
    return f"{name}: {what}" if name else what


def reports_errors(func: F) -> F:
    """Turn StrataError (bad input: YAML, rules, IR, arguments) and an OS error (an unwritable
    or full --out, an unreadable file) into one line on stderr + exit 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StrataError as exc:
            for line in str(exc).splitlines():
                _stderr(f"error: {line}")
            sys.exit(exc.exit_code)
        except OSError as exc:
            _stderr(f"error: {os_error_line(exc)}")
            if debugging():
                traceback.print_exc()
            sys.exit(EXIT_USAGE)
        except ValueError as exc:
            if "null byte" not in str(exc):
                raise
            _stderr("error: a path contains a NUL byte")
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


#: Commands that live with the code they drive, imported only when used (fast startup).
LAZY_COMMANDS = {
    "demo": "policystrata.bench.commands:demo",
    "run": "policystrata.bench.commands:run",
    "summarize": "policystrata.bench.commands:summarize",
    "scan": "policystrata.scan.commands:scan",
    "doctor": "policystrata.scan.commands:doctor",
    "init-scan": "policystrata.scan.commands:init_scan",
    "init-domain": "policystrata.scan.commands:init_domain",
    "check-integration": "policystrata.scan.commands:check_integration",
}


class StrataGroup(click.Group):
    """Keeps command order as declared; loads the commands of LAZY_COMMANDS on demand.
    Usage errors exit 2 (click's default); an unexpected error is one line and exit 2, Ctrl-C
    is exit 130 (:meth:`main`)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's ``main`` with exit codes CI can trust: click turns Ctrl-C into an ``Abort``
        that it reports as exit 1, which CI reads as "findings"; here it is 130, and an
        exception no command expected is exit 2 with one line (the traceback with --debug)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _stderr("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except SystemExit:
            raise
        except OSError as exc:  # before a command ran (click reading an argument)
            _stderr(f"error: {os_error_line(exc)}")
            sys.exit(EXIT_USAGE)
        except ValueError as exc:
            if "null byte" not in str(exc):
                _internal_error(exc, args)
            _stderr("error: a path contains a NUL byte")
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # a bug, not a finding: never exit 1
            _internal_error(exc, args)
        sys.exit(rv if isinstance(rv, int) else EXIT_CLEAN)

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name in LAZY_COMMANDS if self._load(name) is not None]
        return [*lazy, *(n for n in self.commands if n not in lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self._load(cmd_name)

    def _load(self, name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # that area is not installed in this build
            raise
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


def _internal_error(exc: BaseException, args: Sequence[str] | None) -> NoReturn:
    """One line for an exception no command expected, exit 2 (the traceback with --debug)."""
    where = f" in `strata {' '.join(_command_words(args))}`".rstrip()
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    _stderr(
        f"error: internal error{where}: {type(exc).__name__}"
        + (f": {first}" if first else "")
        + ("" if debugging() else " (run `strata --debug ...` for the traceback)")
    )
    if debugging():
        traceback.print_exception(exc)
    sys.exit(EXIT_USAGE)


def _command_words(args: Sequence[str] | None) -> list[str]:
    """The command (and subcommand) a user ran, without options: ``['scan']``."""
    argv = list(sys.argv[1:] if args is None else args)
    return [a for a in argv[:2] if not a.startswith("-") and "/" not in a][:1]


@click.group(cls=StrataGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strata")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show the traceback of an internal error (also ${ENV_DEBUG}=1).",
)
def main(debug: bool) -> None:
    """PolicyStrata: a regression gate for LLM data-agent stacks.

    Checks whether the layers of a data-agent stack (manifest, grammar, validator, SQL compiler,
    database row security, release filter) still agree about policy, localizes the first layer
    that broke, and proves it with a proof tree.

    \b
    Start here:
      strata demo              # the seeded benchmark, then one witness explained
      strata check --domain support_saas --principal acme_analyst \\
          --ir "ticket_count by region during last_month limit 100" \\
          --sql "select ..."
      strata check --domain support_saas traces.jsonl
      strata explain witness.json

    Exit codes: 0 clean, 1 findings, 2 usage, input or internal error, 130 interrupted.
    """
    global _debug
    _debug = debug


def _domain_options(func: F) -> F:
    func = click.option(
        "--domain-path",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="A domain directory outside the package (policy.yaml, surfaces.yaml, schema.sql).",
    )(func)
    func = click.option(
        "--domain",
        default=None,
        metavar="NAME",
        help="A built-in domain (e.g. support_saas). Default: support_saas.",
    )(func)
    return func


def _rules_option(func: F) -> F:
    return click.option(
        "--rules",
        "extra_rules",
        multiple=True,
        type=click.Path(exists=True, path_type=Path),
        help="Extra rule file (.dl) or directory of rule files, checked and loaded with the "
        "shipped rules. Repeatable.",
    )(func)


def domain_ref(domain: str | None, domain_path: Path | None) -> str | Path:
    """The domain to load: a built-in name (--domain) or a directory (--domain-path)."""
    if domain and domain_path:
        raise click.UsageError("give --domain or --domain-path, not both")
    return domain_path if domain_path is not None else (domain or "support_saas")


def expand_rule_paths(paths: tuple[Path, ...]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.dl")) if p.is_dir() else [p])
    return out


@main.command()
@_domain_options
@_rules_option
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
        _stderr(f"warning: {warning}")
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
        for note in request_notes(checker.domain, principal, ir, ir_text or ""):
            _stderr(f"note: {note}")
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
            _stderr(f"note: {_policy_verdict(checker, case)}")
    else:
        for item in read_traces(traces):
            if isinstance(item, Skipped):
                skipped += 1
            elif isinstance(item, Case):
                results.append(check_record(checker, item))
            else:
                results.append(_error_result(item))
        if skipped:
            _stderr(
                f"note: skipped {skipped} non-query record(s) "
                "(agent_session, tool_execution, mutation)"
            )

    return build_report(checker, results)


def check_record(checker: Any, case: Any) -> Any:
    """One record of a trace file, isolated: whatever goes wrong while judging it (the engine's
    time budget, a proof that does not check, a bug) is an error result for this record at its
    file:line, and the other records are still checked. Ctrl-C still stops the run."""
    from policystrata.db.domain import DatabaseSetupFailed
    from policystrata.witness import RecordError, SourceRef

    try:
        return checker.check(case)
    except DatabaseSetupFailed:  # the run's problem (a schema that does not load), not the record's
        raise
    except Exception as exc:  # one record's problem, never the file's
        src = case.origin
        kind = "record_not_judged" if isinstance(exc, StrataError) else "internal_error"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not isinstance(exc, StrataError):
            message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            if debugging():
                traceback.print_exc()
        return _error_result(
            RecordError(
                kind=kind,
                message=f"the record could not be judged: {message}",
                source=SourceRef(file=src.source, line=src.line) if src else None,
                case_id=case.id,
            )
        )


def request_notes(domain: Any, principal: str | None, ir: Any, ir_text: str) -> list[str]:
    """Names in a command-line request that policy.yaml does not know, with the closest known
    name. They are notes, not errors: the request is checked as given (an unknown metric that
    reached SQL is exactly what the validator must deny), but a typo should not pass unnoticed.

    >>> from policystrata.ir import parse_ir
    >>> from policystrata.model import load_domain
    >>> for n in request_notes(load_domain("support_saas"), "acme_analyts",
    ...                        parse_ir("ticket_cnt by regio during last_month"),
    ...                        "ticket_cnt by regio during last_month"):
    ...     print(n)
    --principal: 'acme_analyts' is not a principal of policy.yaml (did you mean 'acme_analyst'?)
    --ir:1:1: 'ticket_cnt' is not a metric of policy.yaml (did you mean 'ticket_count'?)
    --ir:1:15: 'regio' is not a dimension of policy.yaml (did you mean 'region'?)
    """
    import re

    from policystrata.errors import did_you_mean

    pol = domain.policy
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
    checks += [("dimension", f.dimension, f.dimension in pol.dimensions, dims) for f in ir.filters]
    if ir.time_range is not None:
        labels = list(domain.time_range_labels())
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


def _policy_verdict(checker: Any, case: Any) -> str:
    """What policy says about a request given with no layer artifact (no --sql, no decision):
    nothing shows a layer let it through, so no layer can be at fault; say what policy decides."""
    result = checker.engine.evaluate(checker.case_facts(case))
    reasons = sorted({f"{r[1]}: {r[2]}" for r in result.atoms("deny_reason")})
    verdict = "policy allows this request"
    if reasons:
        verdict = f"policy denies this request ({'; '.join(reasons)})"
    return (
        f"{verdict}; with no --sql and no --release/--withhold there is no layer output to "
        "judge, so no layer is at fault"
    )


def _error_result(error: Any) -> Any:
    from policystrata.witness import CaseInfo, CaseResult

    src = error.source
    case_id = error.case_id or (f"{src.file}:{src.line}" if src else "record")
    return CaseResult(case=CaseInfo(id=case_id, source=src), verdict="error", errors=[error])


@main.command()
@_rules_option
@click.argument("witness_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def explain(extra_rules: tuple[Path, ...], witness_file: Path) -> None:
    """Re-render saved witnesses as proof trees: one witness, a `check --format json` report,
    or a scan's scan.json / findings.jsonl.

    Each proof is re-verified first by the independent proof checker against the rules (the
    shipped ones plus --rules) and the facts the witness cites: every rule step must instantiate
    its rule at the cited file:line, every fact leaf must be a cited fact, every comparison must
    hold. (Absent leaves are checked against the witness's own facts; the case's full fact set
    is not part of a witness.) A witness whose proof does not check is reported on stderr, not
    rendered, and the exit code is 2.
    """
    from policystrata.check import load_rules
    from policystrata.engine import FactLookup, ProofError, check_proof
    from policystrata.report.terminal import render_witness

    witnesses = _saved_witnesses(witness_file)
    program = load_rules(extra_rule_paths=expand_rule_paths(extra_rules))
    bad = 0
    for w in witnesses:
        if w.proof is None:
            bad += 1
            _stderr(f"error: {witness_file.name}: witness {w.id} carries no proof")
            continue
        lookup = FactLookup(
            [n.fact for n in w.proof.nodes("fact")], derived=[n.fact for n in w.proof.nodes("rule")]
        )
        try:
            check_proof(w.proof, program, lookup)
        except ProofError as exc:
            bad += 1
            _stderr(f"error: {witness_file.name}: witness {w.id}: the proof does not check: {exc}")
            continue
        render_witness(w)
    if not witnesses:
        _stderr("no witnesses in this file (clean)")
    if bad:
        sys.exit(EXIT_USAGE)


def _saved_witnesses(path: Path) -> list[Any]:
    """Witnesses of a file: one witness, a list of them, a run's witnesses/<task_id>.json, a
    check report, a scan's scan.json (its findings' witnesses) or findings.jsonl."""
    from policystrata.jsonfile import read_json_documents
    from policystrata.witness import CheckReport, Witness

    items = read_json_documents(path)
    out: list[Witness] = []
    for line, data in items:
        try:
            if isinstance(data, dict) and "results" in data:
                out += [w for r in CheckReport.model_validate(data).results for w in r.witnesses]
            elif isinstance(data, dict) and "findings" in data and "gate" in data:
                findings = data["findings"] if isinstance(data["findings"], list) else []
                out += [Witness.model_validate(f["witness"]) for f in findings if f.get("witness")]
            elif isinstance(data, dict) and isinstance(data.get("witnesses"), list):
                # a run's witnesses/<task_id>.json (published keys + our witnesses)
                out += [Witness.model_validate(w) for w in data["witnesses"]]
            elif isinstance(data, dict) and "kind" in data and "rule_id" in data:  # a finding
                if data.get("witness"):
                    out.append(Witness.model_validate(data["witness"]))
            elif isinstance(data, list):
                out += [Witness.model_validate(w) for w in data]
            else:
                out.append(Witness.model_validate(data))
        except ValueError as exc:
            raise InputError(
                f"not a PolicyStrata witness, check report or scan report: {_first_problem(exc)}",
                file=str(path),
                line=line,
            ) from None
    return out


def _first_problem(exc: ValueError) -> str:
    """One line from a pydantic ValidationError: the first field and what is wrong with it."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        kind = "missing" if first.get("type") == "missing" else first.get("msg", "invalid")
        count = len(errors())
        more = f" (and {count - 1} more)" if count > 1 else ""
        return f"{where}: {kind}{more}" if where else f"{kind}{more}"
    return str(exc).splitlines()[0]


@main.group()
def schema() -> None:
    """Print the JSON Schemas PolicyStrata publishes."""


@schema.command("witness")
def schema_witness() -> None:
    """The JSON Schema of one witness object."""
    from policystrata.engine import proof_node_schema
    from policystrata.witness import witness_json_schema

    click.echo(json.dumps(witness_json_schema(proof_node_schema()), indent=2, sort_keys=True))


@schema.command("check-report")
def schema_check_report() -> None:
    """The JSON Schema of `strata check --format json` output."""
    from policystrata.engine import proof_node_schema
    from policystrata.witness import check_report_json_schema

    click.echo(json.dumps(check_report_json_schema(proof_node_schema()), indent=2, sort_keys=True))


if __name__ == "__main__":  # pragma: no cover
    main()
