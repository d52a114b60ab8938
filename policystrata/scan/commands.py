"""The CLI commands of the scanner: ``scan``, ``init-scan``, ``init-domain``,
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

from policystrata.cli import EXIT_CLEAN, EXIT_FINDINGS, reports_errors
from policystrata.scan.model import ScanReport

FORMATS = ("table", "json", "jsonl", "sarif", "junit")


def _stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


#: At least this many columns: one row per finding with a column per field; below it each
#: finding's cell stacks its rule id, message and layer (readable at 80 columns).
WIDE_TABLE = 140


def render_table(report: ScanReport, console: Console | None = None) -> None:
    """A rich table of findings and a one-line verdict (the default stdout report).

    The ``rule`` shown is the first part of the finding's stable id (the id in ``scan.json``,
    SARIF and the scaffold README), so what the table shows is what the id says. Width: the
    terminal's, or 80 when stdout is not a terminal (``COLUMNS`` overrides both).
    """
    con = console or Console(highlight=False)
    if report.findings:
        _print_plain(con, _findings_table(report, wide=con.width >= WIDE_TABLE))
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


def _findings_table(report: ScanReport, *, wide: bool) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_lines=not wide, show_edge=False, pad_edge=False)
    table.add_column("severity", no_wrap=True)
    if wide:
        table.add_column("layer", no_wrap=True)
        table.add_column("class", no_wrap=True)
        table.add_column("rule", no_wrap=True, style="bold")
    table.add_column("where", overflow="fold")
    table.add_column("finding", overflow="fold")
    for f in report.findings:
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
@click.option(
    "--config",
    "config_path",
    default="policystrata.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The scan config (published policystrata.yaml format).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write scan.json, findings.jsonl, summary.json, report.md, scan.sarif, junit.xml here.",
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
@reports_errors
def scan(
    config_path: Path,
    out: Path | None,
    fmt: str,
    baseline: Path | None,
    db_spec: str | None,
    fail_on_severity: str | None,
    fail_on_confidence: str | None,
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
    from policystrata.scan.config import load_scan_config
    from policystrata.scan.outputs import render, write_outputs
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
        )
    sources = sarif_sources(cfg)
    from policystrata import profile

    if out is not None:
        with profile.stage("io"):
            written = write_outputs(report, out, sarif=cfg.model.sarif, sources=sources)
        err.print(f"wrote {len(written)} file(s) to {out}", style="dim", markup=False)
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
        render_table(report)
    else:
        click.echo(render(report, fmt, sources), nl=False)
    sys.exit(report.gate.exit_code)


def sarif_sources(cfg: object) -> dict[str, str]:
    """Provenance names -> repository paths (the domain's files, when it lives in the repo)."""
    from policystrata.scan.config import ScanConfig

    assert isinstance(cfg, ScanConfig)
    out = {cfg.name: cfg.name}
    if cfg.model.domain_path:
        base = cfg.model.domain_path.rstrip("/")
        for name in ("policy.yaml", "surfaces.yaml", "schema.sql", "seed.sql"):
            out[name] = f"{base}/{name}"
    return out


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
    "model_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A MetricFlow semantic_models/metrics YAML file.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@reports_errors
def check_integration(
    kind: str, domain: str | None, domain_path: Path | None, model_path: Path, fmt: str
) -> None:
    """Compare a dbt Semantic Layer model with the policy: missing or stale metrics and
    dimensions, sensitive columns without metadata, expression and aggregation mismatches."""
    import json

    from policystrata.cli import domain_ref
    from policystrata.integrations.dbt import compare, load_semantic_file
    from policystrata.model import load_domain

    dom = load_domain(domain_ref(domain, domain_path))
    model = load_semantic_file(model_path, display=model_path.name)
    issues = compare(dom, model)
    if fmt == "json":
        click.echo(json.dumps([i.to_json() for i in issues], indent=2, sort_keys=True))
    else:
        con = Console(highlight=False)
        if issues:
            _print_plain(con, _issues_table(issues))
        against = str(domain_path) if domain_path is not None else dom.name
        con.print(
            Text(f"{len(issues)} issue(s) in {model_path.name} against domain {against}"),
        )
    sys.exit(EXIT_FINDINGS if issues else EXIT_CLEAN)


def _issues_table(issues: list[Any]) -> Table:
    """dbt issues: where (the dbt line, else the policy line), the kind and the message."""
    table = Table(box=box.SIMPLE_HEAD, show_lines=True, show_edge=False, pad_edge=False)
    table.add_column("where", overflow="fold")
    table.add_column("issue", overflow="fold")
    for i in issues:
        where = i.location() if i.line or not i.policy_line else f"policy.yaml:{i.policy_line}"
        cell = Text.assemble((i.kind, "bold red"), "\n", i.message)
        if i.line and i.policy_line:
            cell.append(f"\npolicy: policy.yaml:{i.policy_line}", style="dim")
        table.add_row(Text(where), cell)
    return table


def _print_plain(con: Console, renderable: Any) -> None:
    """Print; to a file or a pipe without the cells' trailing padding."""
    if con.is_terminal:
        con.print(renderable)
        return
    with con.capture() as captured:
        con.print(renderable)
    con.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
