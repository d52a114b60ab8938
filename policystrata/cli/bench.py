"""``strata run``, ``strata summarize`` and ``strata demo`` (loaded lazily by the CLI).

stdout carries the report (summary table, demo walk-through); the progress bar and notes go to
stderr. Exit codes: 0 done, 1 (``run --strict`` only) survivors or false positives, 2 usage or
input error.
"""

from __future__ import annotations

import difflib
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from policystrata.cli.common import (
    EXIT_FINDINGS,
    domain_options,
    executor_options,
    expand_rule_paths,
    reports_errors,
    rules_option,
)
from policystrata.errors import InputError, StrataError
from policystrata.parallel import default_jobs

STATUS_ORDER = (
    "killed",
    "survived",
    "equivalent",
    "stillborn",
    "invalid",
    "clean",
    "false_positive",
    "error",
)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _partition(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise click.BadParameter("use K/N, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise click.BadParameter("K/N needs 0 <= K < N")
    return k, n


def execute_run(
    domain: str | None,
    domain_path: Path | None,
    suite: str | None,
    suite_file: Path | None,
    out: Path,
    count: int | None,
    seed: int | None,
    minimize: bool,
    extra_rules: tuple[Path, ...] = (),
    partition: tuple[int, int] | None = None,
    db: str | None = "none",
    quiet: bool = False,
    jobs: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    options: dict[str, Any] | None = None,
    frozen: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    """Run a suite and write ``out``; returns (summary, elapsed seconds). ``frozen``: the
    (verified) freeze manifest, copied into the run and its fields into metadata.json."""
    from policystrata.bench.runner import Runner, write_run
    from policystrata.bench.suites import resolve_suite
    from policystrata.check import Checker
    from policystrata.db.domain import domain_databases

    if domain and domain_path:
        raise click.UsageError("give --domain or --domain-path, not both")
    if suite and suite_file:
        raise click.UsageError("give --suite or --suite-file, not both")
    if executor == "ray":  # the actors judge from the artifacts alone
        if db not in (None, "none"):
            raise click.UsageError("--executor ray runs without a database: use --db none")
        db = "none"
    started = time.perf_counter()
    checker = Checker.open(
        domain_path if domain_path is not None else (domain or "support_saas"),
        extra_rule_paths=expand_rule_paths(extra_rules),
    )
    for warning in checker.domain.warnings:
        _stderr().print(f"warning: {warning}", markup=False, soft_wrap=True)
    source = resolve_suite(checker.domain, suite, suite_file, count, seed)
    metadata: dict[str, Any] = {
        "suite": source.name,
        "seed": seed if seed is not None else source.meta.get("seed"),
        "count": count,
        "db": db or "auto",
        **source.meta,
    }
    if frozen is not None:
        from policystrata.bench.freeze import metadata_fields
        from policystrata.jsondump import dumps_indented

        metadata.update(metadata_fields(frozen))
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmark_manifest.json").write_text(
            dumps_indented(frozen) + "\n", encoding="utf-8"
        )
    runner = Runner(checker, minimize=minimize)
    err = _stderr()
    for warning in source.meta.get("suite_warnings", []):
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)
    with (
        domain_databases(db, checker.domain) as databases,
        Progress(
            TextColumn(f"[bold]{source.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=quiet or not err.is_terminal,
        ) as bar,
    ):
        ray = None
        if executor == "ray":
            from policystrata.distributed import RunnerSpec

            ref = domain_path if domain_path is not None else (domain or "support_saas")
            spec = RunnerSpec(
                domain=str(Path(ref).resolve()) if domain_path is not None else str(ref),
                extra_rules=tuple(str(p.resolve()) for p in expand_rule_paths(extra_rules)),
                minimize=minimize,
            )
            ray = (spec, ray_address)
        if databases is not None:
            checker.attach_databases(databases)
            if jobs > 1:  # database sessions are not shared across processes
                err.print(
                    "note: --jobs is 1 with a database (--db none runs in parallel)",
                    style="yellow",
                    markup=False,
                )
                jobs = 1
        task = bar.add_task("cases", total=source.total)
        try:
            summary = write_run(
                runner,
                source.cases(),
                out,
                metadata,
                progress=lambda: bar.advance(task),
                partition=partition,
                jobs=jobs,
                ray=ray,
                options=options,
            )
        except StrataError:
            raise
        except Exception as exc:  # a failure of the whole run (a case alone is `invalid`): exit 2
            lines = str(exc).strip().splitlines()
            raise StrataError(
                f"the run failed: {type(exc).__name__}: {lines[0] if lines else ''}"
            ) from exc
    if source.stats is not None:
        st = source.stats
        summary["generator"] = {
            "draws": st.draws,
            "distinct_cases": st.produced,
            "duplicates_skipped": st.duplicates,
            "no_mutation_point": st.no_mutation_point,
        }
        (out / "summary.json").write_text(
            json.dumps(summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
    return summary, time.perf_counter() - started


@click.command()
@domain_options
@rules_option
@click.option(
    "--suite",
    metavar="NAME",
    help="seeded, a suite file name under the domain's suites/ or tasks/, or a reserved "
    "generated suite: generated (500 draws, seed 1729), generated_alt_seed / held_out (50, "
    "8675309), heldout_v1 (500, 260626), clean_controls (80, 260627), "
    "adversarial_clean_controls (1000, 260628). Default: seeded.",
)
@click.option(
    "--suite-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Run any suite YAML in the FORMATS.md format.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: runs/<suite>).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Generated suites: number of draws (duplicates are not repeated; the published CLI "
    "takes 1..10000, we take any positive count: cases are drawn lazily and results "
    "streamed, so memory does not grow with it).",
)
@click.option("--seed", type=int, default=None, help="Generated suites: the seed.")
@click.option(
    "--minimize/--no-minimize",
    default=True,
    show_default=True,
    help="Delta-debug every witness's case to a minimal one.",
)
@click.option(
    "--partition",
    metavar="K/N",
    default=None,
    help="Evaluate only cases whose index is K modulo N (run partitions in parallel).",
)
@click.option(
    "--db",
    "db",
    default=None,
    metavar="auto|none|DSN",
    help="Real-row evidence: auto (start a throwaway PostgreSQL when binaries exist), none, or a "
    "postgresql:// DSN. Default: $STRATA_DATABASE_URL, else auto. Each case's SQL and the "
    "canonical SQL run under the case's tenant in a database holding the DDL in force. A "
    "ClickHouse domain (dialect: clickhouse) gets embedded ClickHouse (chdb) for auto.",
)
@executor_options
@click.option(
    "--freeze-manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A manifest from `strata freeze-benchmark`: verified before running (exit 1 naming "
    "each mismatch, nothing run), copied to OUT/benchmark_manifest.json, its fields recorded in "
    "metadata.json. Suite, count and seed default to the manifest's.",
)
@click.option("--strict", is_flag=True, help="Exit 1 when a mutant survived or a control failed.")
@click.option("--release-candidate", default=None, help="Recorded in metadata.json.")
@click.option("--commit-sha", default=None, help="Recorded in metadata.json.")
@click.option("--environment", default=None, help="Recorded in metadata.json.")
@click.option("--project-id", default=None, help="Recorded in metadata.json.")
@click.option("--organization-id", default=None, help="Recorded in metadata.json.")
@reports_errors
def run(
    domain: str | None,
    domain_path: Path | None,
    extra_rules: tuple[Path, ...],
    suite: str | None,
    suite_file: Path | None,
    out: Path | None,
    count: int | None,
    seed: int | None,
    minimize: bool,
    partition: str | None,
    db: str | None,
    jobs: int | None,
    executor: str,
    ray_address: str | None,
    freeze_manifest: Path | None,
    strict: bool,
    release_candidate: str | None,
    commit_sha: str | None,
    environment: str | None,
    project_id: str | None,
    organization_id: str | None,
) -> None:
    """Run a benchmark suite through the reference stack with fault injection and the detector.

    Writes OUT/traces.jsonl (one record per case), OUT/witnesses/<task>.json, OUT/summary.json
    and OUT/metadata.json. Same inputs and seed give byte-identical files.

    \b
    Examples:
      strata run --domain support_saas --suite seeded --out runs/seeded
      strata run --suite generated --count 500 --seed 1729 --out runs/gen
      strata run --suite clean_controls --count 200 --out runs/controls
      strata run --suite-file my_suite.yaml --domain-path ./domain --out runs/mine
      strata run --domain analytics_clickhouse --suite seeded --out runs/ch
    """
    frozen = None
    if freeze_manifest is not None:
        from policystrata.cli.freeze import check_run_manifest

        frozen, selection = check_run_manifest(
            freeze_manifest, (domain, domain_path, suite, suite_file, count, seed), extra_rules
        )
        domain, domain_path, suite, suite_file, count, seed = selection
    name = suite or (suite_file.stem if suite_file else "seeded")
    target = out or Path("runs") / name
    summary, elapsed = execute_run(
        domain,
        domain_path,
        suite,
        suite_file,
        target,
        count,
        seed,
        minimize,
        extra_rules,
        _partition(partition),
        db,
        jobs=jobs or (0 if executor == "ray" and ray_address else default_jobs()),
        executor=executor,
        ray_address=ray_address,
        options={
            "release_candidate": release_candidate,
            "commit_sha": commit_sha,
            "environment": environment,
            "project_id": project_id,
            "organization_id": organization_id,
        },
        frozen=frozen,
    )
    c = summary["counts"]
    rate = c["cases"] / elapsed if elapsed else 0.0
    _stderr().print(f"{c['cases']} cases in {elapsed:.1f}s ({rate:.1f} cases/s) -> {target}")
    print_summary(summary)
    if strict and (c["survived"] or c["false_positive"] or c["error"]):
        sys.exit(EXIT_FINDINGS)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """The summary table (stdout)."""
    con = console or Console(highlight=False)
    c = summary["counts"]
    head = Table(
        title=f"suite {summary.get('suite')} · domain {summary.get('domain')}", show_header=False
    )
    head.add_column("metric")
    head.add_column("value", justify="right")
    for key in (
        "cases",
        "distinct_cases",
        "non_equivalent_mutants",
        "killed",
        "survived",
        "equivalent",
        "stillborn",
        "invalid",
        "controls",
        "clean",
        "false_positive",
        "error",
        "kill_rate",
        "localization_accuracy",
        "class_accuracy",
        "containment_accuracy",
    ):
        head.add_row(key.replace("_", " "), _fmt(c.get(key)))
    gen = summary.get("generator")
    if gen:
        head.add_row("generator draws", str(gen["draws"]))
        head.add_row("duplicates skipped", str(gen["duplicates_skipped"]))
    mini = summary.get("minimization", {})
    if mini.get("witnesses"):
        head.add_row("minimized witnesses", str(mini["witnesses"]))
        head.add_row("mean fact reduction", _fmt(mini.get("mean_fact_reduction")))
    con.print(head)
    con.print(_operator_table(summary.get("per_operator", {})))
    classes = summary.get("case_classes", {})
    if classes:
        con.print("witness classes (cases): " + ", ".join(f"{k} {v}" for k, v in classes.items()))
    stillborn = summary.get("stillborn") or {}
    if stillborn:
        con.print(f"[bold]stillborn cases[/bold] ({sum(stillborn.values())}), by reason:")
        for reason, n in stillborn.items():
            con.print(f"  {n:>4}  {reason}")
    errors = summary.get("errors") or []
    if isinstance(errors, list) and errors:
        by_reason: dict[str, int] = {}
        for item in errors:
            reason = f"{item.get('status')}: {item.get('reason', '')}"
            by_reason[reason] = by_reason.get(reason, 0) + 1
        con.print(f"[bold]cases not judged[/bold] ({len(errors)}), by reason:")
        for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:20]:
            con.print(f"  {n:>4}  {reason}")
    for title, key in (
        ("equivalent mutants", "equivalents"),
        ("survivors", "survivors"),
        ("false positives", "false_positives"),
    ):
        items = summary.get(key) or []
        if isinstance(items, list) and items:  # (published keys of the same name are counts)
            con.print(f"[bold]{title}[/bold] ({len(items)}):")
            for item in items[:20]:
                detail = item.get("reason") or item.get("ir") or ""
                con.print(f"  {item['task']} [{item['mutation']}] {detail}")
            if len(items) > 20:
                con.print(f"  ... {len(items) - 20} more in summary.json")


# per-operator columns: (summary key, header); a column of zeros is left out unless it is core
_OP_COLUMNS = (
    ("cases", "cases"),
    ("killed", "kill"),
    ("survived", "surv"),
    ("equivalent", "equiv"),
    ("stillborn", "still"),
    ("invalid", "inval"),
    ("clean", "clean"),
    ("false_positive", "fp"),
    ("error", "err"),
    ("localized_ok", "loc"),
    ("class_ok", "cls"),
)
_OP_CORE = {"cases", "killed", "survived"}
_OP_LEGEND = {
    "surv": "survived",
    "equiv": "equivalent",
    "still": "stillborn",
    "inval": "invalid (the reference stack could not run it)",
    "fp": "false positive",
    "err": "error",
    "loc": "localized to the expected layer",
    "cls": "expected witness class",
}


def _operator_table(per_operator: dict[str, dict[str, int]]) -> Table:
    """One row per fault operator, full names, fitting 80 columns (zero columns left out; the
    fault-free controls are counted in the head table)."""
    per_operator = {k: v for k, v in per_operator.items() if k != "none"}
    cols = [
        (key, head)
        for key, head in _OP_COLUMNS
        if key in _OP_CORE or any(row.get(key) for row in per_operator.values())
    ]
    legend = [f"{head} = {_OP_LEGEND[head]}" for _key, head in cols if head in _OP_LEGEND]
    ops = Table(
        title="per operator",
        box=box.SIMPLE_HEAD,
        padding=(0, 0, 0, 1),
        pad_edge=False,
        caption="; ".join(legend) or None,
        caption_justify="left",
    )
    ops.add_column("operator", no_wrap=True, overflow="fold")
    for _key, head in cols:
        ops.add_column(head, justify="right", no_wrap=True, min_width=len(head))
    for name, row in per_operator.items():
        ops.add_row(name, *(str(row.get(key, 0)) for key, _head in cols))
    return ops


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@reports_errors
def summarize(run_dir: Path, fmt: str) -> None:
    """Print the summary of a finished run (RUN_DIR written by `strata run`)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        raise InputError("no summary.json here (did the run finish?)", file=str(run_dir))
    summary = json.loads(path.read_text(encoding="utf-8"))
    if fmt == "json":
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print_summary(summary)


def builtin_domains() -> list[str]:
    """The built-in domains (each a directory of ``domains/`` with a policy.yaml)."""
    from policystrata.paths import domains_dir

    return sorted(p.name for p in domains_dir().iterdir() if (p / "policy.yaml").is_file())


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
)
@click.option(
    "--domain",
    metavar="NAME",
    default="support_saas",
    show_default=True,
    help="The built-in domain whose seeded suite the demo runs (e.g. finance_saas).",
)
@reports_errors
def demo(out: Path, domain: str) -> None:
    """Run the seeded benchmark and walk through one witness.

    Runs every seeded case of a built-in domain (each a fault injected into one layer of the
    reference stack, plus fault-free controls), prints the witness classes found, then explains
    one witness: its proof tree, the SQL with the faulty span highlighted, and what the
    fault-free layer produced. `--domain finance_saas` runs the wealth-management domain (firms
    as tenants, a 4-4-5 fiscal calendar); every built-in domain is listed at the end.
    """
    from policystrata.report.terminal import render_witness
    from policystrata.witness import Witness

    con = Console(highlight=False)
    known = builtin_domains()
    if domain not in known:
        from policystrata.errors import did_you_mean

        raise InputError(
            f"unknown built-in domain '{domain}'{did_you_mean(domain, known)} "
            f"(built-in: {', '.join(known)})"
        )
    summary, elapsed = execute_run(domain, None, "seeded", None, out, None, None, False, quiet=True)
    c = summary["counts"]
    con.print(
        f"[bold]PolicyStrata demo[/bold]: {domain} seeded suite, {c['cases']} cases in "
        f"{elapsed:.1f}s -> {out}"
    )
    con.print(
        f"killed {c['killed']} of {c['non_equivalent_mutants']} injected faults "
        f"(kill rate {_fmt(c['kill_rate'])}), equivalent {c['equivalent']}, "
        f"false positives {c['false_positive']} of {c['controls']} clean controls"
    )
    con.print("[bold]witness classes found[/bold] (cases by their first witness):")
    for name, n in summary.get("case_classes", {}).items():
        con.print(f"  {name:<20} {n}")
    pick = _demo_pick(out)
    if pick is not None:
        rec, witness_data = pick
        w = Witness.model_validate(witness_data)
        con.rule(f"one witness: task {rec['task']} (fault injected: {rec['mutation']})")
        render_witness(w, con)
        _show_canonical(con, rec, domain)
    from policystrata.model import load_domain

    principal = next(iter(load_domain(domain).policy.principals), "<principal>")
    flag = f"--domain {domain} "
    con.rule("next")
    steps = [
        ("the full table, per operator", f"strata summarize {out}"),
        ("any witness's proof", f"strata explain {out}/witnesses/<task>.json"),
        ("generated faults", f"strata run {flag}--suite generated --count 500 --seed 1729"),
        ("clean controls", f"strata run {flag}--suite clean_controls --count 200"),
        ("your own SQL", f'strata check {flag}--principal {principal} --ir "..." --sql "..."'),
    ]
    steps += [
        (f"the {name} domain", f"strata demo --domain {name} --out runs/demo_{name}")
        for name in known
        if name != domain
    ]
    for what, command in steps:
        con.print(f"  [dim]{what}:[/dim]")
        con.print(f"    {command}", markup=False, soft_wrap=True)


def _demo_pick(out: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The first killed compiler fault with a SQL span (the most instructive), else any kill."""
    best = None
    with (out / "traces.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("status") != "killed" or not rec.get("witness"):
                continue
            data = json.loads((out / rec["witness"]).read_text(encoding="utf-8"))["witnesses"][0]
            if rec.get("localized") == "compiler" and rec.get("containment"):
                return rec, data
            best = best or (rec, data)
    return best


def _show_canonical(con: Console, rec: dict[str, Any], domain: str) -> None:
    from policystrata.ir import parse_ir
    from policystrata.model import load_domain
    from policystrata.stack.faults import OPERATORS
    from policystrata.stack.pipeline import Request, run_stack

    op = OPERATORS.get(rec["mutation"])
    if op is None or rec.get("ir") is None:
        return
    d = load_domain(domain)
    req = Request(rec["principal"], parse_ir(rec["ir"]), rec.get("style", "plain"))
    canonical = run_stack(d, req)
    faulted = run_stack(d, req, op.knobs(d, req))
    con.print(
        f"[bold]what the fault-free {op.surface} layer would have produced[/bold] "
        f"(the fault: {op.description}):"
    )
    a, b = _artifact_text(canonical, op.surface), _artifact_text(faulted, op.surface)
    for line in difflib.unified_diff(
        b.splitlines(), a.splitlines(), "faulty", "fault-free", lineterm="", n=1
    ):
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
        con.print(line, style=style, markup=False)


def _artifact_text(run: Any, surface: str) -> str:
    if surface == "compiler":
        return f"{run.sql or ''}\n-- cost estimate: {run.cost_estimate}"
    if surface == "database":
        return run.ddl
    if surface == "manifest":
        return json.dumps(run.manifest, indent=2, sort_keys=True)
    if surface == "grammar":
        return run.grammar
    if surface == "validator":
        return json.dumps(run.validator, indent=2, sort_keys=True)
    return run.release
