"""``strata explain``: re-verify and re-render saved witnesses."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from policystrata.cli.common import (
    EXIT_USAGE,
    expand_rule_paths,
    reports_errors,
    rules_option,
    stderr,
)


@click.command()
@rules_option
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
    from policystrata.check import load_rules, verify_witness
    from policystrata.engine import ProofError
    from policystrata.report.terminal import render_witness
    from policystrata.witness import read_witnesses

    witnesses = read_witnesses(witness_file)
    program = load_rules(extra_rule_paths=expand_rule_paths(extra_rules))
    bad = 0
    for w in witnesses:
        try:
            verify_witness(w, program)
        except ProofError as exc:
            bad += 1
            stderr(f"error: {witness_file.name}: witness {w.id}: the proof does not check: {exc}")
            continue
        render_witness(w)
    if not witnesses:
        stderr("no witnesses in this file (clean)")
    if bad:
        sys.exit(EXIT_USAGE)
