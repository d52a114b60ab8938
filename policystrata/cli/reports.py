"""``strata export``, ``strata artifact-report``, ``strata minimization-report`` and
``strata evidence`` (loaded lazily by the CLI): reports and exports over run directories.

The report goes to stdout (or ``--out``); notes to stderr. Exit codes: 0 done, 1 the report
found problems (artifact-report: a missing or edited artifact; minimization-report: a witness
that is not 1-minimal), 2 usage or input error (a directory that is not a run, a malformed file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from policystrata.cli.common import EXIT_FINDINGS, domain_options, domain_ref, reports_errors


def _run_argument(func: Any) -> Any:
    return click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))(
        func
    )


def _write(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)


def _out_option(func: Any) -> Any:
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the report to this file (default: stdout).",
    )(func)


@click.command("export")
@_run_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["inspect", "benchflow", "policystrata-json"]),
    required=True,
    help="inspect (JSONL samples), benchflow (adapter document) or policystrata-json.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write.",
)
@reports_errors
def export(run: Path, fmt: str, out: Path) -> None:
    """Export a run's records in the published shapes of other harnesses (Inspect samples,
    a BenchFlow adapter document, or the policystrata-json evidence export).

    \b
    Examples:
      strata export runs/seeded --format inspect --out seeded.inspect.jsonl
      strata export runs/seeded --format policystrata-json --out seeded.json
    """
    from policystrata.bench.export import export_run
    from policystrata.bench.rundir import read_run

    _write(export_run(read_run(run), fmt), out)


@click.command("artifact-report")
@_run_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
@_out_option
@reports_errors
def artifact_report(run: Path, fmt: str, out: Path | None) -> None:
    """The artifacts a run judged, each checked against its digest: per kind how many, how
    large, how many records name one and how many differ from the fault-free stack's; per
    fault operator which artifacts it changed. Exit 1 when an artifact is missing or edited.

    \b
    Examples:
      strata artifact-report runs/seeded
      strata artifact-report runs/seeded --format json --out artifacts.json
    """
    from policystrata.bench.reports import artifact_markdown
    from policystrata.bench.reports import artifact_report as build
    from policystrata.bench.rundir import read_run
    from policystrata.jsondump import dumps_indented

    report = build(read_run(run))
    text = artifact_markdown(report) if fmt == "markdown" else dumps_indented(report) + "\n"
    _write(text, out)
    if report["problems"]:
        sys.exit(EXIT_FINDINGS)


@click.command("minimization-report")
@_run_argument
@domain_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
@_out_option
@click.option(
    "--db",
    default=None,
    metavar="none|auto|DSN",
    help="The database for the 1-minimality re-runs (default: what the run used).",
)
@click.option(
    "--skip-minimality-check",
    is_flag=True,
    help="Do not re-run the stack: 1-minimality is reported as not checked.",
)
@click.option(
    "--suite-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The suite file the run was made from (when it is not one of the domain's).",
)
@reports_errors
def minimization_report(
    run: Path,
    domain: str | None,
    domain_path: Path | None,
    fmt: str,
    out: Path | None,
    db: str | None,
    skip_minimality_check: bool,
    suite_file: Path | None,
) -> None:
    """Per minimized witness: facts and bytes before and after, the dimensions and filters
    removed, the steps, and whether it is 1-minimal (every single further reduction re-run
    through the stack with the same fault and the rules: none keeps the violation). Exit 1 when
    a witness is not 1-minimal.

    \b
    Examples:
      strata minimization-report runs/seeded
      strata minimization-report runs/seeded --format json --out minimization.json
    """
    from policystrata.bench.reports import (
        check_one_minimal,
        minimization_markdown,
        minimization_rows,
    )
    from policystrata.bench.reports import (
        minimization_report as build,
    )
    from policystrata.bench.rundir import read_run
    from policystrata.jsondump import dumps_indented

    loaded = read_run(run)
    rows = minimization_rows(loaded)
    if not skip_minimality_check and rows:
        name = domain if domain is not None or domain_path is not None else None
        ref = domain_ref(name or loaded.metadata.get("domain"), domain_path)
        check_one_minimal(
            loaded,
            rows,
            ref,
            suite_file,
            db if db is not None else loaded.metadata.get("db") or "none",
        )
    report = build(loaded, rows)
    text = minimization_markdown(report) if fmt == "markdown" else dumps_indented(report) + "\n"
    _write(text, out)
    if report["not_one_minimal"]:
        sys.exit(EXIT_FINDINGS)


@click.command("evidence")
@click.argument("runs", nargs=-1, required=True, metavar="NAME=RUN|RUN...")
@click.option(
    "--baselines",
    "baseline_reports",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A `strata baselines --format json --out` report: its table (repeatable).",
)
@click.option(
    "--ablations",
    "ablation_reports",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A `strata ablations --out` report: its table (repeatable).",
)
@_out_option
@reports_errors
def evidence(
    runs: tuple[str, ...],
    baseline_reports: tuple[Path, ...],
    ablation_reports: tuple[Path, ...],
    out: Path | None,
) -> None:
    """Markdown tables of the evidence runs give: per run the suite, mutants, killed, survived,
    equivalent, stillborn, clean controls, false positives, median witness bytes and proof
    height, evidence level, provenance and freeze; and the baseline and ablation tables of the
    reports given.

    \b
    Examples:
      strata evidence seeded=runs/seeded generated=runs/gen
      strata baselines runs/seeded --out bl.json && strata ablations runs/seeded --out ab.json
      strata evidence runs/seeded --baselines bl.json --ablations ab.json --out evidence.md
    """
    from policystrata.bench.evidence import evidence_markdown, parse_named
    from policystrata.errors import InputError

    named = [parse_named(arg) for arg in runs]
    for _name, path in named:
        if not path.is_dir():
            raise InputError("not a run directory", file=str(path))
    seen = [n for n, _ in named]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise InputError(f"two runs are named {', '.join(dupes)}: name them NAME=RUN")
    _write(evidence_markdown(named, baseline_reports, ablation_reports), out)
