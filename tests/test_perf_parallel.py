"""Parallel and distributed runs and scans give byte-identical outputs, and memory stays flat:
--jobs 1 vs 2, --executor ray, a record a worker cannot judge, peak RSS by case count."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from bench_traces import make_traces

from policystrata.bench.runner import Runner, write_run
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker


def _same_tree(a: Path, b: Path) -> None:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


@pytest.mark.parametrize(("suite", "count", "minimize"), [("generated", 24, True)])
def test_jobs_give_byte_identical_runs(
    tmp_path: Path, suite: str, count: int | None, minimize: bool
) -> None:
    outs = []
    for jobs in (1, 2):
        checker = Checker.open("support_saas")
        src = resolve_suite(checker.domain, suite, None, count, 1729 if count else None)
        out = tmp_path / f"jobs{jobs}"
        write_run(Runner(checker, minimize=minimize), src.cases(), out, {"suite": suite}, jobs=jobs)
        outs.append(out)
    _same_tree(*outs)


def test_cli_run_jobs_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policystrata.cli import main

    args = ["run", "--suite", "generated", "--count", "12", "--db", "none", "--no-minimize"]
    one = CliRunner().invoke(main, [*args, "--jobs", "1", "--out", str(tmp_path / "a")])
    two = CliRunner().invoke(main, [*args, "-j", "2", "--out", str(tmp_path / "b")])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    _same_tree(tmp_path / "a", tmp_path / "b")
    bad = CliRunner().invoke(main, [*args, "--jobs", "0", "--out", str(tmp_path / "c")])
    assert bad.exit_code == 2


def test_scan_jobs_give_byte_identical_outputs(tmp_path: Path) -> None:
    """strata scan --jobs 1 and --jobs 2 write the same files (records repeat, as in an export;
    one record is broken and one has SQL that does not parse)."""
    from click.testing import CliRunner

    from policystrata.cli import main

    mt = make_traces()
    traces = mt.write_traces(tmp_path / "t" / "traces.jsonl", 45, distinct=20)
    with traces.open("a", encoding="utf-8") as handle:
        handle.write("{broken\n")
        handle.write('{"id": "bad_sql", "principal": "acme_analyst", "sql": "select from"}\n')
    cfg = mt.write_config(tmp_path / "t", "traces.jsonl")
    codes = []
    for jobs in ("1", "2"):
        res = CliRunner().invoke(
            main,
            [
                "scan",
                "--config",
                str(cfg),
                "--db",
                "none",
                "--jobs",
                jobs,
                "--out",
                str(tmp_path / f"out{jobs}"),
                "--format",
                "json",
            ],
        )
        codes.append((res.exit_code, res.stdout))
    assert codes[0] == codes[1] and codes[0][0] == 1
    _same_tree(tmp_path / "out1", tmp_path / "out2")


RSS_SCRIPT = r"""
import resource, sys, tempfile
from pathlib import Path
import policystrata.bench.runner as runner_mod
import policystrata.check as check_mod
import policystrata.engine.engine as engine_mod
# every cross-case memo is bounded; small bounds make the plateau come early
engine_mod.WHOLE_MEMO_SIZE = 24
engine_mod._MEMO_SIZE = 16
check_mod.SQL_CACHE_SIZE = 48
runner_mod.STACK_MEMO_SIZE = 48
from policystrata.bench.runner import Runner, write_run
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
checker = Checker.open("support_saas")
src = resolve_suite(checker.domain, "generated", None, int(sys.argv[1]), 1729)
done = [0]
def progress():
    done[0] += 1
    if done[0] in (300, int(sys.argv[1]) - 50):
        print(done[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
write_run(Runner(checker, minimize=False), src.cases(), Path(tempfile.mkdtemp()), {"suite": "g"},
          progress=progress)
"""


def test_peak_rss_does_not_grow_with_the_case_count(tmp_path: Path) -> None:
    """Cases are generated lazily, results written as they come, the summary kept as running
    counters and every cross-case memo bounded: after the memos are full, peak RSS stays flat
    (measured in a fresh process, between case 300 and case 470)."""
    import subprocess
    import sys

    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), "520"], capture_output=True, text=True, check=True
    ).stdout.split()
    early, late = int(out[1]), int(out[3])  # KB
    assert late - early < 12 * 1024, (early, late)


def test_a_record_a_worker_cannot_judge_is_its_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine timeout inside a worker process is that record's record_not_judged finding,
    exactly as in one process; every other record is still checked."""
    import json

    from click.testing import CliRunner

    from policystrata.cli import main
    from policystrata.engine import EvaluationTimeout

    mt = make_traces()
    mt.write_traces(tmp_path / "t" / "traces.jsonl", 30, distinct=10)
    cfg = mt.write_config(tmp_path / "t", "traces.jsonl")
    real, recalled = Checker.check, Checker.recalled

    def slow(self, case, **kw):  # type: ignore[no-untyped-def]
        if case.id == "trace_000007":
            raise EvaluationTimeout("evaluation exceeded its time limit")
        return real(self, case, **kw)

    def slow_recalled(self, recall, case):  # type: ignore[no-untyped-def]
        if case.id == "trace_000007":  # a repeat is answered from the memo: it times out too
            raise EvaluationTimeout("evaluation exceeded its time limit")
        return recalled(self, recall, case)

    monkeypatch.setattr(Checker, "check", slow)  # inherited by the forked workers
    monkeypatch.setattr(Checker, "recalled", slow_recalled)
    outs = []
    for jobs in ("1", "2"):
        res = CliRunner().invoke(
            main,
            ["scan", "--config", str(cfg), "--db", "none", "--jobs", jobs, "--format", "json"],
        )
        assert res.exit_code == 1, res.output
        outs.append(res.stdout)
    assert outs[0] == outs[1]
    findings = json.loads(outs[0])["findings"]
    assert [f["record_id"] for f in findings if f["check"] == "record_not_judged"] == [
        "trace_000007"
    ]
    assert len({f["record_id"] for f in findings}) > 1


def _need_ray() -> None:
    import os

    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and Ray is not installed (the dev group installs it)")
        pytest.skip("Ray is not installed (uv sync installs the dev group)")


def test_ray_executor_gives_the_local_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--executor ray on a local Ray runtime (two actors) writes what --jobs 1 writes, for a
    run and for a scan."""
    # Ray's uv hook off: under `uv run pytest` it would start each Ray worker through `uv run`
    # with the checkout as its working_dir. Ray reads the variable when it is first imported, so
    # it is set before that, and the constant too in case this process imported Ray already.
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    _need_ray()
    # one local runtime for the whole test (the commands join it instead of starting their own)
    import ray
    from ray._private import ray_constants

    monkeypatch.setattr(ray_constants, "RAY_ENABLE_UV_RUN_RUNTIME_ENV", False)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        _ray_run_and_scan(tmp_path)
    finally:
        ray.shutdown()


def _ray_run_and_scan(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policystrata.cli import main

    args = ["run", "--suite", "generated", "--count", "16", "--seed", "7", "--db", "none"]
    local = CliRunner().invoke(main, [*args, "--jobs", "1", "--out", str(tmp_path / "a")])
    remote = CliRunner().invoke(
        main, [*args, "--executor", "ray", "--jobs", "2", "--out", str(tmp_path / "b")]
    )
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    _same_tree(tmp_path / "a", tmp_path / "b")
    db = CliRunner().invoke(
        main,
        [*args[:-2], "--db", "postgresql://x", "--executor", "ray", "--out", str(tmp_path / "c")],
    )
    assert db.exit_code == 2 and "--db none" in db.output
    mt = make_traces()
    mt.write_traces(tmp_path / "t" / "traces.jsonl", 40, distinct=12)
    cfg = mt.write_config(tmp_path / "t", "traces.jsonl")
    scans = []
    for extra in (["--jobs", "1"], ["--executor", "ray", "--jobs", "2"]):
        out = tmp_path / f"scan{len(scans)}"
        res = CliRunner().invoke(
            main, ["scan", "--config", str(cfg), "--db", "none", "--out", str(out), *extra]
        )
        assert res.exit_code == 1, res.output
        scans.append(out)
    _same_tree(*scans)
