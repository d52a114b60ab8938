"""``strata baselines`` and ``strata ablations`` (loaded lazily by the CLI): other checkers,
and our checker with a part taken away, re-run over the artifacts of runs.

stdout carries the report (a table, or JSON with ``--format json``); notes go to stderr.
Exit codes: 0 done, 2 usage or input error (a run directory that is not one, a missing or
edited artifact).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from policystrata.cli.common import domain_options, domain_ref, reports_errors
from policystrata.errors import InputError


def _runs_argument(func: Any) -> Any:
    return click.argument(
        "runs",
        nargs=-1,
        required=True,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
    )(func)


def _format_options(func: Any) -> Any:
    func = click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Also write the JSON report to this file.",
    )(func)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table (terminal) or json (stdout).",
    )(func)


def run_domain(run: Path, domain: str | None, domain_path: Path | None) -> Any:
    """The domain a run was made with (its metadata.json names it; --domain-path for one
    outside the package)."""
    from policystrata.model import load_domain

    meta_path = run / "metadata.json"
    if not (run / "traces.jsonl").is_file() or not meta_path.is_file():
        raise InputError("not a run directory (no traces.jsonl / metadata.json)", file=str(run))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=str(meta_path), line=exc.lineno) from None
    if domain is None and domain_path is None:
        domain = meta.get("domain")
    return load_domain(domain_ref(domain, domain_path))


def _emit(report: dict[str, Any], fmt: str, out: Path | None, render: Any) -> None:
    from policystrata.jsondump import dumps_indented

    text = dumps_indented(report) + "\n"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    if fmt == "json":
        click.echo(text, nl=False)
    else:
        render(report, Console(highlight=False))


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


@click.command()
@_runs_argument
@domain_options
@_format_options
@click.option(
    "--db",
    default="none",
    metavar="none|auto|DSN",
    show_default=True,
    help="A real database for final_answer_only, db_rls_only and random_data_generation "
    "(auto: a throwaway PostgreSQL). Without one they are reported as not run, never as clean.",
)
@reports_errors
def baselines(
    runs: tuple[Path, ...],
    domain: str | None,
    domain_path: Path | None,
    fmt: str,
    out: Path | None,
    db: str,
) -> None:
    """Re-run independent baseline checkers over the artifacts of runs: caught / total /
    catch rate per baseline and the fault operators each misses.

    Each baseline reads only the stored artifacts (SQL, DDL, manifest, grammar, validator and
    release decisions) and the policy files, never the detector's verdicts.

    \b
    Examples:
      strata baselines runs/seeded
      strata baselines runs/seeded runs/gen --format json --out baselines.json
      strata baselines runs/seeded --db auto     # + the three database baselines
    """
    from policystrata.bench.baselines import baseline_report
    from policystrata.db.domain import domain_databases

    report: dict[str, Any] = {"runs": {}}
    for run in runs:
        loaded = run_domain(run, domain, domain_path)
        with domain_databases(db, loaded) as dbs:
            report["runs"][run.name] = baseline_report(run, loaded, dbs)
    from policystrata.bench.baselines import combine

    report["combined"] = combine([r["baselines"] for r in report["runs"].values()])
    report["not_run"] = {
        name: reason for r in report["runs"].values() for name, reason in r["not_run"].items()
    }
    _emit(report, fmt, out, _render_baselines)


def _render_baselines(report: dict[str, Any], con: Console) -> None:
    table = Table(title=f"baselines over {', '.join(report['runs'])}")
    for col in ("baseline", "caught", "total", "catch rate", "false pos.", "operators missed"):
        table.add_column(col, no_wrap=col == "baseline")
    for name, s in report["combined"].items():
        table.add_row(
            name,
            str(s["caught"]),
            str(s["total_failures"]),
            _pct(s["catch_rate"]),
            f"{s['false_positives']}/{s['controls']}",
            f"{len(s['missed_operators'])}/{len(s['per_operator'])}",
        )
    con.print(table)
    for name, s in report["combined"].items():
        if s["missed_operators"]:
            con.print(f"{name} misses: {', '.join(s['missed_operators'])}", soft_wrap=True)
    for name, reason in sorted(report["not_run"].items()):
        con.print(f"not run: {name} ({reason})", soft_wrap=True)


@click.command()
@_runs_argument
@domain_options
@_format_options
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help="Run only this ablation (repeatable; e.g. without_lineage, without_rules:drift.dl).",
)
@click.option(
    "--suite-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The suite file the runs were made from (when it is not one of the domain's).",
)
@reports_errors
def ablations(
    runs: tuple[Path, ...],
    domain: str | None,
    domain_path: Path | None,
    fmt: str,
    out: Path | None,
    only: tuple[str, ...],
    suite_file: Path | None,
) -> None:
    """Re-run each run's cases with a part of the checker taken away (a rule file's checks, a
    layer's responsibilities, the transition obligations, containment, minimization): kill
    rate and localization change per ablation.

    \b
    Examples:
      strata ablations runs/seeded
      strata ablations runs/seeded --only without_lineage --only without_rules:manifest.dl
      strata ablations runs/seeded --format json --out ablations.json
    """
    from policystrata.bench.ablations import ablation_report

    err = Console(stderr=True, highlight=False)
    report: dict[str, Any] = {"runs": {}}
    for run in runs:
        loaded = run_domain(run, domain, domain_path)
        ref = domain_path if domain_path is not None else loaded.name
        report["runs"][run.name] = ablation_report(
            run,
            ref,
            only,
            suite_file,
            progress=_progress(err, run.name),
        )
    _emit(report, fmt, out, _render_ablations)


def _progress(err: Console, run: str) -> Any:
    def note(name: str) -> None:
        if err.is_terminal:
            err.print(f"{run}: {name}", style="dim")

    return note


def _render_ablations(report: dict[str, Any], con: Console) -> None:
    for run, rep in report["runs"].items():
        full = rep["full"]
        table = Table(
            title=f"ablations over {run} ({rep['domain']}, {rep['cases']} cases): full checker "
            f"kill rate {_pct(full['kill_rate'])}, localization "
            f"{_pct(full['localization_accuracy'])}, "
            f"median witness {full['median_witness_facts']} facts"
        )
        for col in ("ablation", "kill", "Δ kill", "loc.", "Δ loc.", "FP", "witness"):
            table.add_column(col, no_wrap=col == "ablation")
        for name, a in rep["ablations"].items():
            table.add_row(
                name,
                _pct(a["kill_rate"]),
                _pct(a["kill_rate_change"]),
                _pct(a["localization_accuracy"]),
                _pct(a["localization_change"]),
                str(a["false_positives"]),
                "-" if a["median_witness_facts"] is None else str(a["median_witness_facts"]),
            )
        con.print(table)
        for name, a in rep["ablations"].items():
            if a["operators_no_longer_killed"]:
                con.print(
                    f"{name} no longer kills: {', '.join(a['operators_no_longer_killed'])}",
                    soft_wrap=True,
                )


def _orders(value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of integers: {value}") from None
    if not out or any(k < 2 for k in out):
        raise click.BadParameter("orders are integers of 2 or more (faults per case)")
    return out


@click.command()
@click.option("--domain", default="support_saas", show_default=True, help="A built-in domain.")
@click.option("--orders", default="2,3", show_default=True, help="Faults per case, e.g. 2,3.")
@click.option("--per-order", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@_format_options
@reports_errors
def compound(
    domain: str, orders: str, per_order: int, seed: int, fmt: str, out: Path | None
) -> None:
    """Cases with 2 and 3 faults in different layers, re-run through the reference stack and
    the detector: is the first failing layer localized, are the later ones reported as
    also_failed (unless an earlier fault masks them: removing one changes no artifact)?

    \b
    Examples:
      strata compound
      strata compound --domain finance_saas --orders 2 --per-order 10 --format json
    """
    from policystrata.bench.studies import compound_study

    report = compound_study(domain, _orders(orders), per_order, seed)
    _emit(report, fmt, out, _render_compound)


def _render_compound(report: dict[str, Any], con: Console) -> None:
    table = Table(title=f"compound faults over {report['domain']} (seed {report['seed']})")
    for col in ("faults", "cases", "first layer localized", "later in also_failed", "masked"):
        table.add_column(col)
    for k, s in report["orders"].items():
        table.add_row(
            k,
            str(s["cases"]),
            str(s["first_layer_localized"]),
            str(s["others_in_also_failed"]),
            str(s["with_masked_faults"]),
        )
    con.print(table)


@click.command()
@click.option("--domain", default="support_saas", show_default=True, help="A built-in domain.")
@click.option("--per-order", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@_format_options
@reports_errors
def counterfactual(domain: str, per_order: int, seed: int, fmt: str, out: Path | None) -> None:
    """Over the compound study's 2- and 3-fault cases, remove each fault in turn: does its
    witness disappear (necessity), and does the fault alone reproduce it (sufficiency)? Every
    answer is a re-run of the reference stack and the detector.

    \b
    Examples:
      strata counterfactual
      strata counterfactual --domain finance_saas --per-order 10 --format json --out cf.json
    """
    from policystrata.bench.studies import counterfactual_study

    _emit(counterfactual_study(domain, per_order, seed), fmt, out, _render_counterfactual)


def _render_counterfactual(report: dict[str, Any], con: Console) -> None:
    table = Table(title=f"counterfactual over {report['domain']} (seed {report['seed']})")
    for col in ("faults removed", "masked", "necessary", "sufficient"):
        table.add_column(col)
    table.add_row(
        *(str(report[k]) for k in ("faults_removed", "masked", "necessary", "sufficient"))
    )
    con.print(table)
