"""Performance work must not change a verdict: the SQL lowering cache, the engine's
whole-evaluation memo, remembered witnesses, the rule cache and the JSON writer, each against the
plain path, and every built-in suite with every memo off (parallel runs: test_perf_parallel.py;
the goal-directed proof checker: test_engine_differential.py)."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from bench_traces import make_traces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policystrata.bench.runner import Runner, write_run
from policystrata.bench.suites import resolve_suite
from policystrata.case import Case
from policystrata.check import Checker, lower_sql_text
from policystrata.engine import Engine, check_proof
from policystrata.engine import engine as engine_mod
from policystrata.facts import Fact, Provenance
from policystrata.lower.sql import lower_sql


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker.open("support_saas")


def _same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


SQLS = [
    "select count(*) from accounts where accounts.tenant_id = 'acme' limit 10",
    "select a.region, count(distinct t.id) from accounts a join support_tickets t "
    "on t.account_id = a.id group by a.region",
    "select * from accounts; delete from accounts",
    "select from where",
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sql=st.sampled_from(SQLS),
    first=st.tuples(st.sampled_from(["a.jsonl", "b.jsonl"]), st.integers(1, 9)),
    second=st.one_of(
        st.none(),
        st.tuples(st.sampled_from(["a.jsonl", "c.jsonl"]), st.integers(1, 9), st.integers(0, 3)),
    ),
)
def test_sql_cache_rebases_each_record(checker: Checker, sql, first, second) -> None:
    """A SQL text lowered once serves every record: the re-based facts (case id and provenance)
    equal lowering it afresh for that record."""
    origin1 = Provenance(first[0], line=first[1])
    origin2 = None if second is None else Provenance(second[0], line=second[1], column=second[2])
    for cid, origin in (("r1", origin1), ("r2", origin2), ("r1", origin1)):
        case = Case(id=cid, principal="acme_analyst", sql=sql, origin=origin)
        got = lower_sql_text(case, checker.context, None)  # type: ignore[arg-type]
        fresh = lower_sql(
            cid,
            sql,
            source=origin if origin is not None else Provenance("sql"),
            schema=checker.domain.schema,
        ).facts
        assert list(got) == list(fresh)
        for fact in fresh:
            assert got.provenance(fact) == fresh.provenance(fact), fact


def test_whole_evaluation_memo_is_the_fresh_model_renamed(
    checker: Checker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every seeded case evaluated with the memo (under two case ids, the second a hit) derives
    exactly what an engine without the memo derives, and its proofs check."""
    src = resolve_suite(checker.domain, "seeded")
    runner = Runner(checker, minimize=False)
    fresh_engine = Engine(checker.program, checker.policy_facts)
    monkeypatch.setattr(engine_mod, "WHOLE_MEMO_SIZE", 10_000)
    checked = 0
    for bc in src.cases():
        if bc.query is None:
            continue
        _canonical, run = runner.stack_runs(bc, bc.query)
        if isinstance(run, str):
            continue
        for cid in ("memo_a", "memo_b"):
            case = run.to_case(cid, bc.principal, bc.query, Provenance("seeded.yaml", line=1))
            facts = checker.artifact_facts(case)
            memo = checker.engine.evaluate(facts)
            fresh_engine._whole.clear()
            plain = fresh_engine.evaluate(facts)
            for pred in checker.program.idb_predicates():
                assert memo.atoms(pred) == plain.atoms(pred), (bc.task_id, pred)
            lookup = memo.fact_lookup
            for atom in memo.atoms("violation"):
                check_proof(memo.prove(Fact("violation", atom)), checker.program, lookup)
                checked += 1
    assert checked > 50


def test_rule_cache_is_used_and_tamper_safe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program read back from the cache is the one parsed from the texts; a cache file that
    is not exactly what we wrote (another digest, other classes inside) is ignored, never run."""
    import os
    import pickle

    from policystrata.engine import cache
    from policystrata.engine.parser import load_program
    from policystrata.paths import rule_files

    monkeypatch.setenv("STRATA_CACHE_DIR", str(tmp_path / "c"))
    first = load_program(rule_files())
    files = list((tmp_path / "c").glob("rules-*.pickle"))
    assert len(files) == 1
    again = load_program(rule_files())
    assert again.digest() == first.digest() and again.checked
    assert [str(r) for r in again.rules] == [str(r) for r in first.rules]
    assert again.strata == first.strata and again.compiled_order == first.compiled_order

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    files[0].write_bytes(pickle.dumps((files[0].stem.removeprefix("rules-"), Boom())))
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in rule_files()]
    assert cache.load([(f"rules/{n}", t) for n, t in texts]) is None
    reloaded = load_program(rule_files())  # parsed again (and the cache rewritten)
    assert reloaded.digest() == first.digest()
    assert not (tmp_path / "pwned").exists()
    monkeypatch.setenv("STRATA_CACHE_DIR", "off")
    assert load_program(rule_files()).digest() == first.digest()


def test_order_comparisons_on_the_case_id_are_never_remembered() -> None:
    """A model that orders the case id against another string differs by case id: it is not
    remembered up to the case id (nor are its witnesses)."""
    from policystrata.engine import parse_program
    from policystrata.facts import FactSet

    prog = parse_program(
        '.decl seen(c, x)\nearly(C) :- seen(C, _), C < "m".\nlate(C) :- seen(C, _), C > "m".',
        source="o.dl",
    )
    engine = Engine(prog, FactSet())
    for cid, want in (("a", "early"), ("z", "late"), ("b", "early"), ("y", "late")):
        facts = FactSet()
        facts.add("seen", cid, "x")
        result = engine.evaluate(facts)
        assert [p for p in ("early", "late") if result.atoms(p)] == [want], cid
        assert result.memo_key is None


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers(-5, 5), inner, max_size=3)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(data=_json)
def test_indented_json_is_what_json_dumps_writes(data) -> None:
    import json

    from policystrata.jsondump import dumps_indented

    assert dumps_indented(data) == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize(
    ("suite", "count"),
    [("seeded", None), ("clean_controls", 20), ("generated", 20), ("heldout_v1", 20)],
)
def test_every_built_in_suite_is_judged_the_same_without_any_memo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite: str, count: int | None
) -> None:
    """Each built-in suite's run (verdicts, witness ids, classes, localization, proofs,
    minimized witnesses) is byte-identical with every cross-case memo off: the memos change
    how fast, never what."""
    import policystrata.bench.runner as runner_mod
    import policystrata.check as check_mod

    outs = []
    for memo in (True, False):
        with monkeypatch.context() as m:
            if not memo:
                m.setattr(engine_mod, "WHOLE_MEMO_SIZE", -1)
                m.setattr(engine_mod, "_MEMO_SIZE", -1)
                m.setattr(check_mod, "VERDICT_MEMO_SIZE", -1)
                m.setattr(check_mod, "SQL_CACHE_SIZE", -1)
                m.setattr(runner_mod, "STACK_MEMO_SIZE", -1)
            checker = Checker.open("support_saas")
            src = resolve_suite(checker.domain, suite, None, count, None)
            out = tmp_path / f"memo_{memo}"
            write_run(Runner(checker, minimize=True), src.cases(), out, {"suite": suite})
            outs.append(out)
    _same_tree(*outs)


def _forget(checker: Checker) -> None:
    """Every cross-case memo of the checker emptied."""
    checker._verdicts.clear()
    checker.context.sql_cache.clear()
    eng = checker.engine
    eng._whole.clear()
    for table in [*eng._memo.values(), *eng._rule_memo.values(), *eng._comp_memo.values()]:
        table.clear()


def test_repeated_records_get_the_first_ones_proofs_renamed(tmp_path: Path) -> None:
    """A repeated record's witnesses (remembered proofs, renamed) equal a fresh check of it by
    a checker that has seen nothing, and they pass the independent proof checker."""
    from policystrata.traces import read_traces

    mt = make_traces()
    path = mt.write_traces(tmp_path / "traces.jsonl", 30, distinct=6)
    warm = Checker.open("support_saas")
    plain = Checker.open("support_saas")
    cases = [c for c in read_traces(path) if isinstance(c, Case)]
    hits = 0
    for case in cases:
        got = warm.check(case, defence=True)
        _forget(plain)  # it has seen nothing
        fresh = plain.check(case, defence=True)
        assert got.model_dump(mode="json") == fresh.model_dump(mode="json"), case.id
        facts = warm.artifact_facts(case)
        lookup = warm.engine.evaluate(facts).fact_lookup
        for w in got.witnesses:
            check_proof(w.proof, warm.program, lookup)
        hits += bool(got.witnesses)
    assert hits and len(warm._verdicts) <= 2 * 6
