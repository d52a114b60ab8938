"""``strata export``, ``strata artifact-report`` and ``strata minimization-report`` over a run
directory: the published export shapes, artifacts checked against their digests (an edited or
missing one is named, exit 1), and a 1-minimality check that really re-runs the stack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.bench.export import benchflow_task, inspect_sample, json_trace
from policystrata.bench.reports import check_one_minimal, minimization_rows
from policystrata.bench.rundir import read_run
from policystrata.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "seeded"
    res = CliRunner().invoke(main, ["run", "--suite", "seeded", "--out", str(out), "--db", "none"])
    assert res.exit_code == 0, res.output
    return out


def _traces(run_dir: Path) -> list[dict]:
    lines = (run_dir / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_export_formats_have_the_published_shapes(run_dir: Path, tmp_path: Path) -> None:
    traces = _traces(run_dir)
    r = CliRunner()
    for fmt in ("inspect", "benchflow", "policystrata-json"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        for out in (a, b):
            res = r.invoke(main, ["export", str(run_dir), "--format", fmt, "--out", str(out)])
            assert res.exit_code == 0, res.output
        assert a.read_bytes() == b.read_bytes()  # deterministic
        assert str(run_dir.parent) not in a.read_text()  # no absolute path
    samples = [json.loads(line) for line in (tmp_path / "a.inspect").read_text().splitlines()]
    assert len(samples) == len(traces)
    for s, t in zip(samples, traces, strict=True):
        assert set(s) == {"id", "input", "target", "metadata"}
        assert s["id"] == t["task_id"] and s["input"] == t["request"]
        assert s["target"] == {
            "witness_class": t["expected_witness_class"],
            "localized_surface": t["expected_localized_surface"],
            "containment_layer": t["expected_containment_layer"],
        }
        assert s["metadata"]["adapter"] == "policystrata.inspect.v1"
        assert s["metadata"]["observed"]["witness_class"] == t["witness_class"]
        assert s["metadata"]["observed"]["release_allowed"] == (t["release_decision"] == "release")
    bf = json.loads((tmp_path / "a.benchflow").read_text())
    assert bf["version"] == "policystrata.benchflow.adapter.v1"
    assert bf["environment"]["requires_llm_api_key"] is False
    assert set(bf["environment"]) == {
        "name",
        "kind",
        "requires_llm_api_key",
        "authorization_boundary",
    }
    assert [t["id"] for t in bf["tasks"]] == [t["task_id"] for t in traces]
    assert set(bf["tasks"][0]) == {"id", "scenario", "rollout", "verifier"}
    assert bf["tasks"][0]["rollout"]["compiled_sql"] == traces[0]["compiled_sql"]
    pj = json.loads((tmp_path / "a.policystrata-json").read_text())
    assert pj["version"] == "policystrata.evidence_export.v1"
    assert pj["metadata"]["adapter"] == "policystrata.json.v1"
    assert pj["metadata"]["source"] == "seeded"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert pj["summary"]["killed"] == summary["killed"]
    assert sum(pj["counts"]["accountingStatuses"].values()) == len(traces)
    assert pj["counts"]["domains"] == {"support_saas": len(traces)}
    assert set(pj["traces"][0]) == {
        "id",
        "domain",
        "principal",
        "mutation",
        "policyVersion",
        "surfaceVersions",
        "semanticIr",
        "expected",
        "observed",
        "accounting",
        "decisions",
        "artifacts",
        "metrics",
    }


_value = st.one_of(st.none(), st.text(max_size=8), st.integers(), st.booleans())


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "task_id",
                "request",
                "domain",
                "principal",
                "mutation",
                "witness_class",
                "release_decision",
                "expected_witness_class",
                "compiled_sql",
                "semantic_ir",
                "reasons",
            ]
        ),
        _value,
    )
)
def test_export_of_any_record_shape_keeps_every_published_key(rec: dict) -> None:
    """A record missing keys (an older run, a stillborn case) exports with nulls, never a crash."""
    assert set(inspect_sample(rec)["metadata"]["observed"]) == {
        "witness_class",
        "localized_surface",
        "containment_layer",
        "release_allowed",
    }
    assert set(benchflow_task(rec)["verifier"]) == {"type", "expected", "observed"}
    assert json_trace(rec)["id"] == rec.get("task_id")


def test_export_names_file_and_line_of_a_broken_record(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    with (bad / "traces.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    n = len(_traces(run_dir)) + 1
    res = CliRunner().invoke(
        main, ["export", str(bad), "--format", "inspect", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 2
    assert f"traces.jsonl:{n}" in res.output
    res = CliRunner().invoke(main, ["artifact-report", str(tmp_path)])
    assert res.exit_code == 2 and "not a run directory" in res.output


def test_artifact_report_checks_every_artifact_against_its_digest(
    run_dir: Path, tmp_path: Path
) -> None:
    r = CliRunner()
    res = r.invoke(main, ["artifact-report", str(run_dir), "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["problems"] == []
    traces = _traces(run_dir)
    assert rep["records"] == len(traces)
    stored = list((run_dir / "artifacts").glob("*/*.json"))
    assert rep["artifacts_verified"] == len(stored)
    assert sum(k["distinct"] for k in rep["kinds"].values()) == len(stored)
    differs = sum(
        1
        for t in traces
        if t.get("artifacts") and t["artifacts"]["sql"] != t["reference_artifacts"]["sql"]
    )
    assert rep["kinds"]["sql"]["differs_from_reference"] == differs > 0
    assert "sql" in rep["changed_by_operator"]["compiler_drops_tenant_predicate"]
    assert rep["changed_by_operator"]["none"] == {}  # a clean control changes nothing
    md = r.invoke(main, ["artifact-report", str(run_dir)])
    assert md.exit_code == 0 and "| sql |" in md.output and "No problems" in md.output

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    edited, gone = sorted((bad / "artifacts" / "sql").glob("*.json"))[:2]
    edited.write_text(edited.read_text().replace("select", "selecT", 1))
    gone.unlink()
    res = r.invoke(main, ["artifact-report", str(bad), "--format", "json"])
    assert res.exit_code == 1
    problems = {p["file"]: p["problem"] for p in json.loads(res.output)["problems"]}
    assert problems[f"artifacts/sql/{gone.name}"] == "missing"
    assert "does not match its digest" in problems[f"artifacts/sql/{edited.name}"]


def test_minimization_report_rows_and_one_minimality(run_dir: Path, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(main, ["minimization-report", str(run_dir), "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    killed = [t for t in _traces(run_dir) if t["accounting_status"] == "killed"]
    assert rep["witnesses"] == len(killed) > 0
    assert rep["one_minimal_checked"] == rep["one_minimal"] == rep["witnesses"]
    for row in rep["per_witness"]:
        assert row["facts_after"] <= row["facts_before"]
        assert row["bytes_before"] > 0
        assert row["one_minimal"] is True
        dropped = [s.removeprefix("drop dimension ") for s in row["steps"] if "dimension" in s]
        assert row["dimensions_removed"] == dropped
    assert any(row["bytes_after"] for row in rep["per_witness"])

    # the check re-runs the stack: the unreduced request of a reduced witness is not 1-minimal
    run = read_run(run_dir)
    rows = [row for row in minimization_rows(run) if row["steps"]][:3]
    assert rows
    for row in rows:
        row["ir_after"] = row["ir_before"]
    check_one_minimal(run, rows, "support_saas", None, db="none")
    for row in rows:
        assert row["one_minimal"] is False, row
        assert row["one_minimal_note"].startswith("still violates after: ")

    skipped = r.invoke(main, ["minimization-report", str(run_dir), "--skip-minimality-check"])
    assert skipped.exit_code == 0
    assert "1-minimal: 0 of 0 checked" in skipped.output and "not checked" in skipped.output


def test_evidence_tables_from_runs_baselines_and_ablations(run_dir: Path, tmp_path: Path) -> None:
    r = CliRunner()
    bl, ab = tmp_path / "bl.json", tmp_path / "ab.json"
    res = r.invoke(main, ["baselines", str(run_dir), "--format", "json", "--out", str(bl)])
    assert res.exit_code == 0, res.output
    res = r.invoke(
        main,
        ["ablations", str(run_dir), "--only", "without_rules:compiler.dl", "--out", str(ab)],
    )
    assert res.exit_code == 0, res.output
    frozen = tmp_path / "frozen"
    shutil.copytree(run_dir, frozen)
    meta = json.loads((frozen / "metadata.json").read_text())
    meta.update(detector_frozen=True, benchmark_manifest_id="psf-0123456789abcdef0123")
    (frozen / "metadata.json").write_text(json.dumps(meta))
    args = ["evidence", f"hand={run_dir}", str(frozen), "--baselines", str(bl)]
    args += ["--ablations", str(ab)]
    outs = []
    for name in ("a.md", "b.md"):
        res = r.invoke(main, [*args, "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]  # deterministic
    md = outs[0].decode()
    assert str(tmp_path) not in md
    summary = json.loads((run_dir / "summary.json").read_text())
    c = summary["counts"]
    mutants = c["non_equivalent_mutants"] + c["equivalent"]
    row = (
        f"| hand | support_saas | seeded | {summary['total']} | {mutants} | {summary['killed']} | "
        f"{summary['survived']} | {summary['equivalent']} | {c['stillborn']} | "
        f"{summary['clean_controls']} | {summary['false_positives']} |"
    )
    assert row in md
    assert "| frozen |" in md and "yes (psf-0123456789abcdef0123)" in md
    assert "| hand | " in md and "| no |" in md  # the unfrozen run
    lines = md.splitlines()
    ours = next(line for line in lines if line.startswith("| **policystrata (detector)**"))
    assert f"| {summary['killed']} |" in ours
    baseline_rows = [
        line for line in lines if line.startswith(("| sql_snapshot ", "| release_filter_only "))
    ]
    assert len(baseline_rows) == 2
    assert any(not line.endswith("| none |") for line in baseline_rows)  # a baseline misses one
    abl = next(line for line in lines if line.startswith("| without_rules:compiler.dl "))
    assert "| -" in abl and "compiler_" in abl  # the kill rate drops, compiler operators lost
    assert "## Ablations over seeded" in md

    # a bare run twice is ambiguous; a broken report is named
    res = r.invoke(main, ["evidence", str(run_dir), str(run_dir)])
    assert res.exit_code == 2 and "NAME=RUN" in res.output
    broken = tmp_path / "broken.json"
    broken.write_text("{\n")
    res = r.invoke(main, ["evidence", str(run_dir), "--baselines", str(broken)])
    assert res.exit_code == 2 and "broken.json" in res.output


def test_evidence_shows_cases_the_stack_could_not_build(tmp_path: Path) -> None:
    """A run whose stack failed on some cases (summary counts ``error``) says so beside the
    stillborn, and has no witness to measure (``-``), never a made-up number."""
    run = tmp_path / "broken"
    run.mkdir()
    (run / "metadata.json").write_text(json.dumps({"domain": "d", "suite": "s"}))
    summary = {"total": 3, "killed": 0, "survived": 0, "equivalent": 0, "clean_controls": 1}
    summary["counts"] = {"stillborn": 0, "error": 2, "non_equivalent_mutants": 0, "equivalent": 0}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "traces.jsonl").write_text("")
    res = CliRunner().invoke(main, ["evidence", str(run)])
    assert res.exit_code == 0, res.output
    assert "| broken | d | s | 3 | 0 | 0 | 0 | 0 | 0 (+2 not built) | 1 |" in res.output
    assert "| broken | 0 | - | - |" in res.output


def test_evidence_plots_are_deterministic_pngs_of_the_runs(run_dir: Path, tmp_path: Path) -> None:
    from policystrata.bench.plots import (
        DETECTOR,
        NOT_KILLED,
        PLOTS,
        confusion,
        detector_by_operator,
        rate_matrix,
        witness_sizes,
    )

    r = CliRunner()
    bl = tmp_path / "bl.json"
    res = r.invoke(main, ["baselines", str(run_dir), "--format", "json", "--out", str(bl)])
    assert res.exit_code == 0, res.output
    renders = []
    for name in ("p1", "p2"):
        args = ["evidence", f"seeded={run_dir}", "--baselines", str(bl), "--plot"]
        res = r.invoke(main, [*args, str(tmp_path / name), "--out", str(tmp_path / "e.md")])
        assert res.exit_code == 0, res.output
        renders.append({p: (tmp_path / name / p).read_bytes() for p in PLOTS})
    assert renders[0] == renders[1]  # byte-identical
    for data in renders[0].values():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
        assert b"Software" not in data and b"matplotlib" not in data  # no version in metadata

    # the plotted data is the run's: the detector column is its accounting per operator,
    # every baseline of the report is a column, the confusion matrix counts every mutant
    run = read_run(run_dir)
    traces = _traces(run_dir)
    det = detector_by_operator([run])
    assert sum(v["killed"] for v in det.values()) == sum(
        t["accounting_status"] == "killed" for t in traces
    )
    report = json.loads(bl.read_text())
    ops, checkers, rows = rate_matrix(det, report["combined"])
    assert checkers == [DETECTOR, *sorted(report["combined"])]
    assert set(det) <= set(ops) and len(rows) == len(ops)
    sizes = witness_sizes([("seeded", run)])
    assert all(after <= before for _, _, before, after in sizes) and sizes
    layers, cols, counts = confusion([run])
    mutants = [t for t in traces if t["accounting_status"] in ("killed", "survived")]
    assert sum(map(sum, counts)) == len(mutants)
    assert set(layers) <= set(cols) and (NOT_KILLED in cols) == any(
        t["accounting_status"] == "survived" for t in mutants
    )


def test_evidence_plot_without_matplotlib_is_exit_2_naming_the_extra(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    res = CliRunner().invoke(main, ["evidence", str(run_dir), "--plot", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert "policystrata[plots]" in res.output
    assert not (tmp_path / "p").exists()
