"""Benchmark runs: seeded kills, honest accounting, determinism, suites and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policystrata.bench.generate import GenStats, generate
from policystrata.bench.runner import Runner, write_run
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.paths import domains_dir
from policystrata.stack.faults import OPERATORS


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open("support_saas")


@pytest.fixture(scope="module")
def operators(checker: Checker) -> set[str]:
    """The operators that fit support_saas (the ClickHouse ones act on row policies, views and
    release thresholds it does not have: stillborn there, tested in tests/test_clickhouse.py)."""
    fitting = {op_id for op_id, op in OPERATORS.items() if op.fits(checker.domain)}
    # only an operator that declares a feature the domain lacks is left out
    assert all(op.feature is not None for i, op in OPERATORS.items() if i not in fitting)
    assert "compiler_drops_tenant_predicate" in fitting
    return fitting


@pytest.fixture(scope="module")
def seeded(checker: Checker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("seeded")
    src = resolve_suite(checker.domain, "seeded")
    summary = write_run(Runner(checker, minimize=True), src.cases(), out, {"suite": "seeded"})
    return out, summary


def test_seeded_kills_every_operator_at_its_own_layer(
    seeded: tuple[Path, dict], operators: set[str]
) -> None:
    _out, summary = seeded
    c = summary["counts"]
    assert c["cases"] >= 60
    assert c["survived"] == 0 and c["false_positive"] == 0 and c["error"] == 0
    assert c["kill_rate"] == 1.0
    assert c["localization_accuracy"] == 1.0 and c["class_accuracy"] == 1.0
    for op in sorted(operators):
        assert summary["per_operator"][op]["killed"] >= 1, op
    # the hand-written equivalent mutant is reported apart, with its reason
    assert [e["task"] for e in summary["equivalents"]] == ["s16_sensitive_equivalent"]
    assert "same artifact" in summary["equivalents"][0]["reason"]
    assert summary["minimization"]["witnesses"] == c["killed"]


def test_runs_are_byte_identical(
    checker: Checker, seeded: tuple[Path, dict], tmp_path: Path
) -> None:
    first, _ = seeded
    src = resolve_suite(checker.domain, "seeded")
    write_run(Runner(checker, minimize=True), src.cases(), tmp_path, {"suite": "seeded"})
    for name in ("traces.jsonl", "summary.json", "metadata.json"):
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name
    a = sorted(p.name for p in (first / "witnesses").iterdir())
    assert a == sorted(p.name for p in (tmp_path / "witnesses").iterdir())
    for name in a:
        assert (first / "witnesses" / name).read_bytes() == (
            tmp_path / "witnesses" / name
        ).read_bytes()
    text = (first / "summary.json").read_text() + (first / "traces.jsonl").read_text()
    assert str(Path.cwd()) not in text and "/tmp" not in text


def test_generated_is_distinct_and_disjoint_from_heldout(
    checker: Checker, operators: set[str]
) -> None:
    stats = GenStats()
    gen = list(generate(checker.domain, "generated", 120, 1729, stats=stats))
    held = list(generate(checker.domain, "heldout_v1", 120))
    assert len({c.key() for c in gen}) == len(gen) == stats.produced
    assert not {c.key() for c in gen} & {c.key() for c in held}
    assert {c.mutation for c in gen} == operators


def test_cli_run_suite_file_domain_path_and_summarize(tmp_path: Path) -> None:
    domain = tmp_path / "dom"
    shutil.copytree(domains_dir() / "support_saas", domain)
    suite = tmp_path / "mine.yaml"
    suite.write_text(
        "suite: mine\n"
        "tasks:\n"
        "  - {id: a, principal: acme_analyst, mutation: compiler_drops_tenant_predicate,\n"
        "     semantic_query: 'ticket_count by region during last_month limit 100',\n"
        "     expected_localized_surface: compiler}\n"
        "  - {id: b, principal: acme_analyst, semantic_query: 'ticket_count during last_month'}\n"
    )
    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(
        main,
        ["run", "--domain-path", str(domain), "--suite-file", str(suite), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert (out / "witnesses" / "a.json").is_file()
    res = runner.invoke(main, ["summarize", str(out)])
    assert res.exit_code == 0 and "kill rate" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("suite: x\ntasks:\n  - {id: a, principal: p, nope: 1}\n")
    res = runner.invoke(main, ["run", "--suite-file", str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "bad.yaml:3" in res.output


def test_generated_draws_live_mutation_points_for_every_operator(
    checker: Checker, operators: set[str]
) -> None:
    """Every operator gets cases where its fault really changes an artifact (not only
    equivalent mutants), and the sensitive-column fault is exercised where it matters."""
    runner = Runner(checker, minimize=False)
    live: dict[str, int] = {}
    for case in generate(checker.domain, "generated", 160, 1729):
        _canonical, outcome = runner.stack_runs(case, case.query)
        if not isinstance(outcome, str):
            live[case.mutation] = live.get(case.mutation, 0) + 1
    assert set(live) == operators, operators - set(live)
    assert min(live.values()) >= 5, live


def test_unknown_operator_in_a_suite_is_an_error_at_its_line(tmp_path: Path) -> None:
    suite = tmp_path / "typo.yaml"
    suite.write_text(
        "suite: typo\n"
        "tasks:\n"
        "  - id: a\n"
        "    principal: acme_analyst\n"
        "    mutation: compiler_drops_tenant_predicat\n"
        "    semantic_query: 'ticket_count during last_month'\n"
        "  - id: b\n"
        "    principal: acme_analyst\n"
        "    mutation: distributed_table_policy_gap\n"  # another domain's: stillborn, not an error
        "    semantic_query: 'ticket_count during last_month'\n"
    )
    res = CliRunner().invoke(
        main, ["run", "--suite-file", str(suite), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2, res.output
    assert "typo.yaml:5" in res.output and "did you mean 'compiler_drops_tenant_predicate'" in (
        res.output
    )
    assert "distributed_table_policy_gap" not in res.output


def test_domain_suite_provenance_names_the_suites_directory(checker: Checker) -> None:
    case = next(iter(resolve_suite(checker.domain, "seeded").cases()))
    assert case.source == "suites/seeded.yaml" and case.line is not None


def test_a_domain_without_schema_sql_counts_what_it_could_not_run(tmp_path: Path) -> None:
    """No schema.sql: the stack has no DDL and no foreign keys; the cases it cannot build are
    `invalid` in the summary (and the published `invalid` count), never silently dropped."""
    import json

    domain = tmp_path / "dom"
    shutil.copytree(domains_dir() / "support_saas", domain)
    (domain / "schema.sql").unlink()
    (domain / "seed.sql").unlink()
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main, ["run", "--domain-path", str(domain), "--suite", "seeded", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    invalid = [r for r in records if r["accounting_status"] == "invalid"]
    reasons = {r["accounting_reason"] for r in invalid}
    assert not any("FileNotFoundError" in reason for reason in reasons), reasons
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total"] == len(records)
    assert summary["invalid"] == len(invalid)
    judged = sum(summary[k] for k in ("killed", "survived", "equivalent", "clean_controls"))
    assert judged + summary["false_positives"] + summary["invalid"] == len(records)
    assert "invalid" in res.output and "cases not judged" in res.output
