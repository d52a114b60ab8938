"""The CLI commands of the scanner: ``scan``, ``doctor``, ``init-scan``, ``init-domain``,
``check-integration`` (loaded lazily by :mod:`policystrata.cli`).

stdout carries only the report chosen by ``--format``; progress goes to stderr. Exit codes:
0 pass (or warnings only), 1 gate failure / findings, 2 config or usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from policystrata.cli.common import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    executor_options,
    reports_errors,
    scan_config_option,
)
from policystrata.results import ScanReport

FORMATS = ("table", "json", "jsonl", "sarif", "junit")


def _stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


#: At least this many columns: one row per finding with a column per field; below it each
#: finding's cell stacks its rule id, message and layer (readable at 80 columns).
WIDE_TABLE = 140


#: Findings shown in the terminal table by default (``--max-table-rows``); the files hold all.
MAX_TABLE_ROWS = 50


def render_table(
    report: ScanReport,
    console: Console | None = None,
    *,
    max_rows: int = 0,
    out: Path | None = None,
) -> None:
    """A rich table of findings and a one-line verdict (the default stdout report).

    The ``rule`` shown is the first part of the finding's stable id (the id in ``scan.json``,
    SARIF and the scaffold README), so what the table shows is what the id says. Width: the
    terminal's, or 80 when stdout is not a terminal (``COLUMNS`` overrides both).
    ``max_rows`` > 0 shows the first ``max_rows`` findings (in the order of ``scan.json``)
    and then a line saying how many more there are and where (``out``, the output directory);
    0 shows them all.
    """
    con = console or Console(highlight=False)
    shown = report.findings
    if max_rows > 0 and len(shown) > max_rows:
        shown = shown[:max_rows]
    if shown:
        _print_plain(con, _findings_table(shown, wide=con.width >= WIDE_TABLE))
    more = len(report.findings) - len(shown)
    if more:
        where = "the output files"
        if out is not None:
            where = f"{out / 'report.md'} and {out / 'scan.json'}"
        _print_plain(
            con, Text(f"… and {more} more finding(s): see {where} (--max-table-rows 0: all)")
        )
    g, r = report.gate, report.records
    verdict = Text("PASS", style="green") if g.passed else Text("FAIL", style="red")
    con.print(
        Text.assemble(
            verdict,
            f"  {len(report.findings)} finding(s): {g.gating} gating, {g.warnings} warning(s)",
        )
    )
    con.print(
        f"      {r.get('scanned', 0)} record(s) scanned: {r.get('clean', 0)} clean, "
        f"{r.get('with_findings', 0)} with findings, {r.get('errors', 0)} unreadable, "
        f"{r.get('skipped', 0)} skipped",
        highlight=False,
    )


def _findings_table(findings: list[Any], *, wide: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_lines=not wide, show_edge=False, pad_edge=False)
    table.add_column("severity", no_wrap=True)
    if wide:
        table.add_column("layer", no_wrap=True)
        table.add_column("class", no_wrap=True)
        table.add_column("rule", no_wrap=True, style="bold")
    table.add_column("where", overflow="fold")
    table.add_column("finding", overflow="fold")
    for f in findings:
        where = f.location.file + (f":{f.location.line}" if f.location.line else "")
        severity = Text(f.severity, style=SEVERITY_STYLE.get(f.severity, ""))
        if not f.gating:
            severity.append("\n(warn)", style="dim")
        if f.baseline == "new":
            severity.append("\nnew", style="bold")
        if wide:
            cells = (f.surface, f.witness_class, f.rule_id, where, f.message)
            table.add_row(severity, *(Text(c) for c in cells))  # plain text, never markup
        else:
            finding = Text.assemble(
                (f.rule_id, "bold"),
                "\n",
                f.message,
                "\n",
                (f"{f.surface} · {f.witness_class}", "dim"),
            )
            table.add_row(severity, Text(where), finding)
    return table


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


@click.command()
@scan_config_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write scan.json, findings.jsonl, summary.json, report.md, junit.xml (and scan.sarif "
    "with sarif: true) here. Default: the config's output, else <config dir>/scan-out.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="What goes to stdout.",
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A previous scan.json: only new findings (by stable id) count against the gate.",
)
@click.option(
    "--db",
    "db_spec",
    default=None,
    metavar="auto|none|DSN",
    help="Real database for evidence (default: the config's database section, else none).",
)
@click.option(
    "--fail-on-severity",
    type=click.Choice(["low", "medium", "high", "critical"]),
    help="Override gate.fail_on_severity.",
)
@click.option(
    "--fail-on-confidence",
    type=click.Choice(["low", "medium", "high"]),
    help="Override gate.fail_on_confidence.",
)
@click.option(
    "--max-table-rows",
    type=click.IntRange(min=0),
    default=MAX_TABLE_ROWS,
    show_default=True,
    metavar="N",
    help="With --format table: show the first N findings, then how many more there are "
    "(0: all). The output files always hold every finding.",
)
@executor_options
@click.option(
    "--no-fuzz",
    is_flag=True,
    help="Skip the fuzz stage (mutants of clean records; see fuzz: in the config).",
)
@reports_errors
def scan(
    config_path: Path,
    out: Path | None,
    fmt: str,
    baseline: Path | None,
    db_spec: str | None,
    fail_on_severity: str | None,
    fail_on_confidence: str | None,
    max_table_rows: int,
    jobs: int | None,
    executor: str,
    ray_address: str | None,
    no_fuzz: bool,
) -> None:
    """Scan imported traces (and dbt models, and a real database) against the policy: the CI gate.

    \b
    Examples:
      strata scan --config policystrata.yaml --out scan-out
      strata scan --config policystrata.yaml --format sarif > scan.sarif
      strata scan --config policystrata.yaml --baseline main/scan.json \\
          --out scan-out

    Exit codes: 0 pass (or warnings only), 1 gate failure, 2 config or usage error.
    """
    from policystrata.parallel import default_jobs
    from policystrata.scan.config import load_scan_config
    from policystrata.scan.outputs import write_format, write_outputs
    from policystrata.scan.run import run_scan

    err = _stderr_console()
    cfg = load_scan_config(config_path)
    with err.status("scanning", spinner="dots") as status:
        report = run_scan(
            cfg,
            db_spec=db_spec,
            baseline=baseline,
            progress=lambda msg: status.update(msg),
            fail_on_severity=fail_on_severity,
            fail_on_confidence=fail_on_confidence,
            jobs=jobs or (0 if executor == "ray" and ray_address else default_jobs()),
            ray=(ray_address,) if executor == "ray" else None,
            no_fuzz=no_fuzz,
        )
    sources = sarif_sources(cfg)
    from policystrata import profile

    target = out if out is not None else cfg.output_dir()  # the config's output, --out wins
    db = cfg.model.database
    sarif = cfg.model.sarif or bool(db and db.sarif)
    with profile.stage("io"):
        written = write_outputs(report, target, sarif=sarif, sources=sources)
    err.print(f"wrote {len(written)} file(s) to {target}", style="dim", markup=False)
    for note in report.notes:
        err.print(f"note: {note}", style="yellow", highlight=False, markup=False)
    if report.baseline is not None:
        b = report.baseline
        err.print(
            f"baseline {b.file}: {len(b.new)} new, {len(b.unchanged)} unchanged, "
            f"{len(b.fixed)} fixed",
            style="dim",
            markup=False,
        )
    if fmt == "table":
        render_table(report, max_rows=max_table_rows, out=target)
    else:
        stdout = click.get_text_stream("stdout")
        write_format(report, fmt, stdout, sources)  # a finding at a time, as the files
        stdout.flush()
    sys.exit(report.gate.exit_code)


def sarif_sources(cfg: object) -> dict[str, str]:
    """Provenance names -> repository paths (the domain's files, when it lives in the repo, and
    the dbt files)."""
    from policystrata.scan.config import ScanConfig

    assert isinstance(cfg, ScanConfig)
    out = {cfg.name: cfg.name}
    for rel in cfg.model.dbt.files if cfg.model.dbt else []:
        out[rel] = rel
    domain_dir = cfg.model.domain_path or (
        cfg.model.domain if cfg.model.domain and not cfg.is_builtin_domain() else None
    )
    if domain_dir:
        base = domain_dir.rstrip("/")
        for name in ("policy.yaml", "surfaces.yaml", "schema.sql", "seed.sql"):
            out[name] = f"{base}/{name}"
    return out


@click.command()
@scan_config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="The report's format.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when a required item is missing, partial or invalid.",
)
@reports_errors
def doctor(config_path: Path, fmt: str, out: Path | None, strict: bool) -> None:
    """Say what a scan config wires up and what is missing, without scanning.

    Checks the domain (policy.yaml, surfaces.yaml, schema.sql, seed.sql loading, errors with
    file:line), the trace files (records, unreadable records), dbt files (read by
    dbt-semantic-interfaces), the database (server binaries, a configured DSN answering,
    schema and seed, chdb), outputs and SARIF, the doctor-only inputs (policy_docs,
    prompt_manifests, source_maps, runtime_manifests, runtime_events), gate.required_inputs
    and tenancy. Each item is ok, missing, partial, invalid or not_configured.

    \b
    Examples:
      strata doctor --config policystrata.yaml
      strata doctor --config policystrata.yaml --format json --out doctor.json --strict

    Exit codes: 0 (also when something is missing), 1 with --strict when a required item is
    missing, partial or invalid, 2 when the config does not load.
    """
    from policystrata.scan.config import load_scan_config
    from policystrata.scan.doctor import render, run_doctor, summary_line

    report = run_doctor(load_scan_config(config_path))
    text = _doctor_table(report) if fmt == "table" else render(report, fmt)
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(out)) from None
        _stderr_console().print(f"wrote {out}", style="dim", markup=False)
    else:
        click.echo(text, nl=False)
    if fmt != "table" or out is not None:
        click.echo(summary_line(report), err=True)
    sys.exit(EXIT_FINDINGS if strict and report.strict_failures() else EXIT_CLEAN)


DOCTOR_STYLE = {
    "ok": "green",
    "missing": "red",
    "partial": "yellow",
    "invalid": "bold red",
    "not_configured": "dim",
}


def _doctor_table(report: Any) -> str:
    """The doctor report as a plain-text table (terminal width, 80 columns in a pipe) and its
    summary line."""
    from policystrata.scan.doctor import summary_line

    con = Console(highlight=False)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("item", overflow="fold")
    table.add_column("detail", overflow="fold")
    for item in report.items:
        status = Text(item.status, style=DOCTOR_STYLE[item.status])
        if item.required:
            status.append(" *", style="bold")
        table.add_row(status, Text(item.name), Text(item.detail))
    with con.capture() as captured:
        con.print(table)
        con.print(Text(summary_line(report) + " (* required)"))
    text = captured.get()
    if con.is_terminal:
        return text
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


@click.command("init-scan")
@click.argument("example", required=False, type=click.Choice(["basic", "postgres_dbt"]))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--source-domain",
    default="support_saas",
    show_default=True,
    metavar="NAME",
    help="The built-in domain to copy into the scaffold.",
)
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
@reports_errors
def init_scan(example: str | None, out: Path, source_domain: str, force: bool) -> None:
    """Scaffold a working scan: config, a copy of the domain, example traces.

    \b
      strata init-scan --out scan-demo
          # the first `strata scan` passes
      strata init-scan postgres_dbt --out pg-demo
          # dbt model, real database, a failing and a clean trace file, README
    """
    from policystrata.scan.scaffold import scaffold_scan

    written = scaffold_scan(out, example or "basic", source_domain=source_domain, force=force)
    for path in written:
        click.echo(str(path))
    _stderr_console().print(
        f"next: strata scan --config {out / 'policystrata.yaml'} --out {out / 'out'}",
        style="dim",
        markup=False,
    )


@click.command("init-domain")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
@reports_errors
def init_domain(name: str, out: Path, force: bool) -> None:
    """Copy a built-in domain (policy.yaml, surfaces.yaml, schema.sql, seed.sql, suites/)."""
    from policystrata.scan.scaffold import copy_domain

    for path in copy_domain(name, out, force=force):
        click.echo(str(path))


@click.command("check-integration")
@click.argument("kind", type=click.Choice(["dbt-semantic"]))
@click.option("--domain", default=None, metavar="NAME", help="A built-in domain.")
@click.option(
    "--domain-path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A domain directory.",
)
@click.option(
    "--path",
    "model_paths",
    required=True,
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A dbt YAML file with semantic_models and/or metrics, or a directory of them (e.g. a "
    "dbt project's models/). Repeatable: the files are checked together as one semantic layer.",
)
@click.option(
    "--rules",
    "extra_rules",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Extra rule file (.dl) or directory of rule files. Repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table: one row per finding; json: the witnesses with their proofs (a check report: "
    "`strata explain` re-verifies and renders it).",
)
@click.option(
    "--strict",
    "--fail-on-warning",
    "strict",
    is_flag=True,
    help="Also exit 1 when dbt warns or something was not compared.",
)
@reports_errors
def check_integration(
    kind: str,
    domain: str | None,
    domain_path: Path | None,
    model_paths: tuple[Path, ...],
    extra_rules: tuple[Path, ...],
    fmt: str,
    strict: bool,
) -> None:
    """Compare a dbt Semantic Layer (MetricFlow YAML) with the policy.

    The files are read and validated with dbt-semantic-interfaces, dbt's own parser: what dbt
    rejects is an error at its file and line (exit 2). Then rules/dbt.dl compares them with
    policy.yaml: metrics and dimensions missing on either side, retired aliases, sensitive
    dimensions without `sensitive: true` meta, and what each metric computes (aggregation,
    column, filter). Each finding is a witness with a proof.

    \b
    Examples:
      strata check-integration dbt-semantic --domain-path domain \\
          --path dbt/semantic_models.yml
      strata check-integration dbt-semantic --domain support_saas --path models/ \\
          --format json > dbt.json && strata explain dbt.json

    Exit codes: 0 clean, 1 findings (with --strict also dbt warnings or anything not
    compared), 2 usage or input error.
    """
    from policystrata.check import Checker, build_report
    from policystrata.cli.common import domain_ref, expand_rule_paths
    from policystrata.errors import InputError
    from policystrata.integrations.dbt import (
        check_semantic_layer,
        semantic_layer_case,
        semantic_layer_files,
    )

    checker = Checker.open(
        domain_ref(domain, domain_path), extra_rule_paths=expand_rule_paths(extra_rules)
    )
    files = semantic_layer_files(model_paths)
    if not files:
        raise InputError(
            "no YAML file with semantic_models or metrics under "
            + ", ".join(str(p) for p in model_paths)
        )
    case = semantic_layer_case(files)
    checked = check_semantic_layer(checker, case)
    err = _stderr_console()
    for note in [*checked.notes, *checked.unchecked]:
        err.print(f"note: {note}", style="yellow", highlight=False, markup=False)
    witnesses = checked.result.witnesses
    if fmt == "json":
        click.echo(build_report(checker, [checked.result]).model_dump_json(indent=2))
    else:
        con = Console(highlight=False)
        policy = str(domain_path / "policy.yaml") if domain_path is not None else "policy.yaml"
        if witnesses:
            _print_plain(con, _witness_table(witnesses, [name for _, name in files], policy))
        against = str(domain_path) if domain_path is not None else checker.domain.name
        what = files[0][1] if len(files) == 1 else f"{len(files)} files"
        _print_plain(con, Text(f"{len(witnesses)} finding(s) in {what} against domain {against}"))
    warned = bool(checked.notes or checked.unchecked)
    sys.exit(EXIT_FINDINGS if witnesses or (strict and warned) else EXIT_CLEAN)


def _witness_table(witnesses: list[Any], files: list[str], policy: str) -> Table:
    """Semantic layer witnesses: where (the dbt line, else the policy line) and the finding."""
    from policystrata.integrations.dbt import finding_location

    table = Table(box=box.SIMPLE_HEAD, show_lines=True, show_edge=False, pad_edge=False)
    table.add_column("where", overflow="fold")
    table.add_column("finding", overflow="fold")
    rows = []
    for w in witnesses:
        file, line = finding_location(w, files)
        rows.append((file, line or 0, w))
    for file, line, w in sorted(rows, key=lambda r: (r[0] == "policy.yaml", r[0], r[1])):
        if file == "policy.yaml":
            file = policy
        cell = Text.assemble((w.check, "bold red"), "\n", w.message)
        cell.append(f"\n{w.localized_surface} · {w.witness_class} · {w.rule_id}", style="dim")
        if w.fix:
            cell.append(f"\nfix: {w.fix}", style="green")
        table.add_row(Text(file + (f":{line}" if line else "")), cell)
    return table


def _print_plain(con: Console, renderable: Any) -> None:
    """Print; to a file or a pipe without the cells' trailing padding."""
    if con.is_terminal:
        con.print(renderable)
        return
    with con.capture() as captured:
        con.print(renderable)
    con.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
