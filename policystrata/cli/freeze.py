"""``strata freeze-benchmark`` and ``strata verify-freeze`` (loaded lazily by the CLI).

stdout carries the report (the manifest id, or each mismatching field); notes go to stderr.
Exit codes: 0 frozen / verified, 1 the benchmark no longer matches its manifest, 2 usage or
input error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from policystrata.cli.common import (
    EXIT_FINDINGS,
    domain_options,
    domain_ref,
    expand_rule_paths,
    reports_errors,
    rules_option,
)

Selection = tuple[str | None, Path | None, str | None, Path | None, int | None, int | None]


def with_manifest_defaults(frozen: dict[str, Any], selection: Selection) -> Selection:
    """(domain, domain_path, suite, suite_file, count, seed): the options given, the others
    the manifest's (its domain, suite, generated count and seed)."""
    domain, domain_path, suite, suite_file, count, seed = selection
    if domain is None and domain_path is None:
        domain = frozen.get("domain")
    if suite is None and suite_file is None:
        suite = frozen.get("suite")
    if frozen.get("generated_count") is not None:
        count = count if count is not None else frozen["generated_count"]
        seed = seed if seed is not None else frozen.get("generated_seed")
    return domain, domain_path, suite, suite_file, count, seed


def mismatches(
    frozen: dict[str, Any], selection: Selection, extra_rules: tuple[Path, ...]
) -> list[str]:
    """The lines naming each field of ``frozen`` that the benchmark selected by ``selection``
    no longer matches (empty: verified)."""
    from policystrata.bench.freeze import freeze_manifest, verify_manifest
    from policystrata.model import load_domain

    domain, domain_path, suite, suite_file, count, seed = selection
    loaded = load_domain(domain_ref(domain, domain_path))
    current = freeze_manifest(
        loaded, suite, suite_file, count, seed, expand_rule_paths(extra_rules)
    )
    return [m.line() for m in verify_manifest(frozen, current)]


def _suite_options(func: Any) -> Any:
    for opt in reversed(
        [
            click.option("--suite", metavar="NAME", default=None, help="The suite (seeded)."),
            click.option(
                "--suite-file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="A suite YAML file instead of a named suite.",
            ),
            click.option(
                "--count",
                type=click.IntRange(min=1, max=10000),
                default=None,
                help="Generated suites: number of draws.",
            ),
            click.option("--seed", type=int, default=None, help="Generated suites: the seed."),
        ]
    ):
        func = opt(func)
    return func


@click.command("freeze-benchmark")
@domain_options
@rules_option
@_suite_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the manifest (JSON).",
)
@reports_errors
def freeze_benchmark(
    domain: str | None,
    domain_path: Path | None,
    extra_rules: tuple[Path, ...],
    suite: str | None,
    suite_file: Path | None,
    count: int | None,
    seed: int | None,
    out: Path,
) -> None:
    """Freeze a benchmark: write a manifest of digests of the rules, grammars, detector and
    lowering code, fault operators, generator, domain files and the materialized suite.

    The same checkout and options give a byte-identical manifest (created_at is
    $SOURCE_DATE_EPOCH or the git HEAD's commit date, never the clock).

    \b
    Examples:
      strata freeze-benchmark --domain support_saas --suite generated --count 200 \\
          --seed 7 --out frozen.json
      strata verify-freeze frozen.json
      strata run --freeze-manifest frozen.json --out runs/frozen
    """
    from policystrata.bench.freeze import freeze_manifest
    from policystrata.jsondump import dumps_indented
    from policystrata.model import load_domain

    loaded = load_domain(domain_ref(domain, domain_path))
    manifest = freeze_manifest(
        loaded, suite, suite_file, count, seed, expand_rule_paths(extra_rules)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps_indented(manifest) + "\n", encoding="utf-8")
    click.echo(
        f"{manifest['benchmark_manifest_id']}  {manifest['domain']}/{manifest['suite']} "
        f"({manifest['task_count']} tasks) -> {out}"
    )


@click.command("verify-freeze")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@domain_options
@rules_option
@_suite_options
@reports_errors
def verify_freeze(
    manifest: Path,
    domain: str | None,
    domain_path: Path | None,
    extra_rules: tuple[Path, ...],
    suite: str | None,
    suite_file: Path | None,
    count: int | None,
    seed: int | None,
) -> None:
    """Check that the benchmark still matches a freeze manifest: exit 0 when every field
    holds, 1 naming each field that does not (and the files behind it).

    The domain, suite, count and seed default to the manifest's.
    """
    from policystrata.bench.freeze import read_manifest

    frozen = read_manifest(manifest)
    selection = (domain, domain_path, suite, suite_file, count, seed)
    lines = mismatches(frozen, with_manifest_defaults(frozen, selection), extra_rules)
    if not lines:
        click.echo(f"verified {frozen['benchmark_manifest_id']} ({manifest})")
        return
    click.echo(f"NOT verified {frozen.get('benchmark_manifest_id')} ({manifest}):")
    for line in lines:
        click.echo(f"  {line}")
    sys.exit(EXIT_FINDINGS)


def check_run_manifest(
    path: Path, selection: Selection, extra_rules: tuple[Path, ...]
) -> tuple[dict[str, Any], Selection]:
    """``strata run --freeze-manifest``: the manifest and the run's selection (the manifest's
    suite, count and seed where the run gives none), verified before anything runs (exit 1
    naming each mismatch)."""
    from policystrata.bench.freeze import read_manifest

    frozen = read_manifest(path)
    selection = with_manifest_defaults(frozen, selection)
    lines = mismatches(frozen, selection, extra_rules)
    if lines:
        click.echo(
            f"error: the benchmark does not match its freeze manifest {path} "
            f"({frozen.get('benchmark_manifest_id')}); nothing was run:",
            err=True,
        )
        for line in lines:
            click.echo(f"  {line}", err=True)
        sys.exit(EXIT_FINDINGS)
    return frozen, selection
