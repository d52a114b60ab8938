"""The scan's work remembered by content (clean records, fuzz plans, mutant verdicts) and the
fuzz stage judged in the worker processes: the outputs are the same bytes as a scan that
remembers nothing, in one process or two; and the memo does save the repeated work."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path
from typing import Any

import pytest
from bench_traces import make_traces
from click.testing import CliRunner

from policystrata.case import Case
from policystrata.check import Checker
from policystrata.cli import main
from policystrata.engine.engine import Engine
from policystrata.facts import Provenance
from policystrata.scan.fuzz import FuzzContext, content_key, plan
from policystrata.scan.run import CleanMemo


def _same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def _export(tmp_path: Path, count: int, distinct: int, fuzz: str = "") -> Path:
    mt = make_traces()
    traces = mt.write_traces(tmp_path / "t" / "traces.jsonl", count, distinct=distinct)
    with traces.open("a", encoding="utf-8") as handle:
        handle.write("{broken\n")
        handle.write('{"id": "bad_sql", "principal": "acme_analyst", "sql": "select from"}\n')
    cfg: Path = mt.write_config(tmp_path / "t", "traces.jsonl")
    if fuzz:
        cfg.write_text(cfg.read_text(encoding="utf-8") + fuzz, encoding="utf-8")
    return cfg


def _scan(cfg: Path, out: Path, jobs: str) -> Any:
    res = CliRunner().invoke(
        main, ["scan", "--config", str(cfg), "--db", "none", "--jobs", jobs, "--out", str(out)]
    )
    assert res.exit_code == 1, res.output
    return json.loads((out / "scan.json").read_text(encoding="utf-8"))


def _count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = Engine.evaluate

    def counted(self: Engine, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "evaluate", counted)
    return calls


def test_memo_and_workers_give_the_fresh_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export whose records repeat (as a production export does), fuzz on: the memo on and
    off, in one process and in two (fuzz judged in the workers), write the same bytes; with the
    memo the engine evaluates far fewer fact sets (each distinct record and mutant once)."""
    cfg = _export(tmp_path, 30, 6)
    calls = _count_evaluations(monkeypatch)
    monkeypatch.setenv("STRATA_SCAN_MEMO", "0")
    fresh = _scan(cfg, tmp_path / "fresh", "1")
    fresh_calls = calls[0]
    monkeypatch.delenv("STRATA_SCAN_MEMO")
    calls[0] = 0
    _scan(cfg, tmp_path / "memo", "1")
    memo_calls = calls[0]
    _scan(cfg, tmp_path / "workers", "2")
    _same_tree(tmp_path / "fresh", tmp_path / "memo")
    _same_tree(tmp_path / "fresh", tmp_path / "workers")
    fuzz = fresh["fuzz"]
    assert fuzz["ran"] and fuzz["records_fuzzed"] > 6
    assert fuzz["totals"]["killed"] + fuzz["totals"]["stillborn"] > 0
    assert 0 < memo_calls < fresh_calls / 2


def test_a_random_draw_by_record_id_with_and_without_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer cases per record than mutation points: the draw is seeded by the record id, so a
    remembered plan is only reused for the same id; --jobs 1 with the memo and --jobs 2
    without write the same bytes, and the fuzz section lists the drawn mutants."""
    cfg = _export(tmp_path, 20, 5, "fuzz: {max_cases_per_trace: 2}\n")
    one = _scan(cfg, tmp_path / "one", "1")
    monkeypatch.setenv("STRATA_SCAN_MEMO", "0")
    _scan(cfg, tmp_path / "two", "2")
    _same_tree(tmp_path / "one", tmp_path / "two")
    records = one["fuzz"]["records"]
    assert records and all(0 < len(r["mutants"]) <= 2 for r in records)


def test_a_repeated_clean_record_is_not_evaluated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """CleanMemo: the second record with the same content (another id, another line) gets a
    clean result for its own id without an engine evaluation; a record with findings is
    always checked in full."""
    checker = Checker.open("support_saas")
    sql = (
        "select count(*) as value from support_tickets join accounts on accounts.id = "
        "support_tickets.account_id where accounts.tenant_id = 'acme'"
    )
    clean = Case(id="a", principal="acme_analyst", sql=sql, tenant_ids=("acme",))
    memo = CleanMemo()
    assert memo.enabled
    first = memo.check(checker, clean)
    fresh = checker.check(Case(id="b", principal="acme_analyst", sql=sql, tenant_ids=("acme",)))
    calls = _count_evaluations(monkeypatch)
    again = memo.check(
        checker, Case(id="b", principal="acme_analyst", sql=sql, tenant_ids=("acme",))
    )
    assert first.verdict == "clean", [w.check for w in first.witnesses]
    assert calls[0] == 0
    assert again.model_dump() == fresh.model_dump()


def _at(case_id: str, sql: str, line: int) -> Case:
    return Case(
        id=case_id,
        principal="acme_analyst",
        sql=sql,
        tenant_ids=("acme",),
        origin=Provenance("traces.jsonl", line=line),
    )


def test_a_repeated_record_with_findings_is_its_first_ones_result_rebased(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CleanMemo: a record with findings is kept with its facts and checked proofs; a record
    with the same content under another id and line gets them renamed to its id and moved to
    its line, without an engine evaluation, and that result is exactly what a checker that
    never saw the first record gives it."""
    unscoped = "select count(*) as value from support_tickets"
    checker = Checker.open("support_saas")
    memo = CleanMemo()
    first = memo.check(checker, _at("c", unscoped, 3))
    assert first.witnesses
    assert len(memo.found) == 1
    calls = _count_evaluations(monkeypatch)
    again = memo.check(checker, _at("record_d", unscoped, 41))
    assert calls[0] == 0
    fresh = Checker.open("support_saas").check(_at("record_d", unscoped, 41), defence=True)
    assert again.model_dump() == fresh.model_dump()
    leaves = {str(p) for w in again.witnesses for n in w.proof.walk() for p in n.provenance}
    assert any(p.startswith("traces.jsonl:41[") for p in leaves), leaves
    assert "traces.jsonl:3" not in json.dumps(again.model_dump(mode="json"))
    # another file: not the same origin up to its line, so checked in full
    other = Case(
        id="e",
        principal="acme_analyst",
        sql=unscoped,
        tenant_ids=("acme",),
        origin=Provenance("other.jsonl", line=3),
    )
    named = _at("support_tickets", unscoped, 5)
    expected = [
        Checker.open("support_saas").check(c, defence=True).model_dump() for c in (other, named)
    ]
    calls[0] = 0
    assert memo.check(checker, other).model_dump() == expected[0]
    assert calls[0] == 1
    # an id that is an argument of the kept facts (here a table name): checked in full
    calls[0] = 0
    assert memo.check(checker, named).model_dump() == expected[1]
    assert calls[0] == 1


def test_a_remembered_plan_is_made_for_the_records_own_ids() -> None:
    """A record planned again (same content, another id) gets the same mutants with its own
    ids, as planning it afresh gives them."""
    checker = Checker.open("support_saas")
    sql = (
        "select accounts.region, count(*) as value from support_tickets join accounts on "
        "accounts.id = support_tickets.account_id where accounts.tenant_id = 'acme' "
        "group by accounts.region limit 100"
    )
    a = Case(id="a", principal="acme_analyst", sql=sql, tenant_ids=("acme",))
    b = Case(id="b", principal="acme_analyst", sql=sql, tenant_ids=("acme",))
    assert content_key(a) == content_key(b)
    ctx = FuzzContext(checker.domain)
    plan(a, ctx, seed=1, max_cases=50)
    remembered = plan(b, ctx, seed=1, max_cases=50)
    fresh = plan(b, FuzzContext(checker.domain, memo=False), seed=1, max_cases=50)
    assert remembered.mutants and remembered.mutants == fresh.mutants
    assert remembered.stillborn == fresh.stillborn
    assert all(m.case.id.startswith("b#fuzz.") for m in remembered.mutants)


def test_streamed_scan_json_is_the_rendered_document(tmp_path: Path) -> None:
    """write_outputs writes scan.json and findings.jsonl piece by piece (findings and fuzz
    records one at a time): the same bytes as rendering the whole report."""
    from policystrata.scan.config import load_scan_config
    from policystrata.scan.outputs import render, write_outputs
    from policystrata.scan.run import run_scan

    cfg = _export(tmp_path, 12, 6)
    report = run_scan(load_scan_config(cfg), db_spec="none")
    assert report.findings and report.fuzz["records"]
    write_outputs(report, tmp_path / "out")
    for name, fmt in (("scan.json", "json"), ("findings.jsonl", "jsonl")):
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == render(report, fmt)
