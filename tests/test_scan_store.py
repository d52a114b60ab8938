"""A scan keeps what grows with its records on disk (:mod:`policystrata.scan.store`): the files
it writes from there, a finding at a time, are the bytes the in-memory renderers give for the
same report; the temporary files go on every exit; and peak memory does not grow with the
number of records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench_traces import make_traces
from hypothesis import given, settings
from hypothesis import strategies as st

from policystrata.jsondump import dumps_indented
from policystrata.report.junit import to_junit
from policystrata.report.markdown import to_markdown
from policystrata.report.sarif import to_sarif
from policystrata.results import ScanReport, dumps_finding
from policystrata.scan.config import load_scan_config
from policystrata.scan.outputs import render, summary, write_outputs
from policystrata.scan.run import run_scan
from policystrata.scan.store import CheckStore, FindingStore, Spill


def _export(directory: Path, count: int, distinct: int) -> Path:
    mt = make_traces()
    traces = mt.write_traces(directory / "traces.jsonl", count, distinct=distinct)
    first = [json.loads(line) for line in traces.read_text(encoding="utf-8").splitlines()[:6]]
    with traces.open("a", encoding="utf-8") as handle:
        handle.write("{broken\n")  # a record error
        for record in first:  # their ids again
            handle.write(json.dumps({**record, "source": "elsewhere.py"}) + "\n")
    cfg: Path = mt.write_config(directory, "traces.jsonl")
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "sarif: true\nfuzz: {max_cases_per_trace: 3}\n",
        encoding="utf-8",
    )
    return cfg


def _in_memory(report: ScanReport) -> ScanReport:
    """The same report with its findings, checks and fuzz records as lists."""
    fuzz = {**report.fuzz, "records": list(report.fuzz["records"])}
    update = {"findings": list(report.findings), "checks": list(report.checks), "fuzz": fuzz}
    return report.model_copy(update=update)


def test_streamed_outputs_are_the_in_memory_renderers(tmp_path: Path) -> None:
    """A scan with findings, record errors, a duplicated record id, fuzzing and a baseline:
    every file, and every --format on stdout, is what the renderers give for the report held
    in memory; with --jobs 2 the same bytes."""
    from click.testing import CliRunner

    from policystrata.cli import main

    base_cfg = _export(tmp_path / "base", 30, distinct=8)
    baseline = tmp_path / "base-out" / "scan.json"
    write_outputs(run_scan(load_scan_config(base_cfg), db_spec="none"), baseline.parent)
    cfg = _export(tmp_path / "now", 60, distinct=12)
    report = run_scan(load_scan_config(cfg), db_spec="none", baseline=baseline)
    assert isinstance(report.findings, FindingStore) and isinstance(report.checks, CheckStore)
    assert isinstance(report.fuzz["records"], Spill) and report.fuzz["records"]
    assert report.baseline is not None
    assert report.baseline.new and report.baseline.unchanged and report.baseline.fixed
    assert any(f.id.endswith("~2") for f in report.findings)  # the duplicated id
    assert any(r.get("mutants") for r in report.fuzz["records"])  # fuzzed, judged
    assert {f.kind for f in report.findings} == {"witness", "record_error"}
    mem = _in_memory(report)
    sources = {"policy.yaml": "domain/policy.yaml"}
    expected = {
        "scan.json": dumps_indented(mem.dump()) + "\n",
        "findings.jsonl": "".join(dumps_finding(f) + "\n" for f in mem.findings),
        "summary.json": dumps_indented(summary(mem)) + "\n",
        "report.md": to_markdown(mem),
        "junit.xml": to_junit(mem),
        "scan.sarif": dumps_indented(to_sarif(mem, sources)) + "\n",
    }
    assert json.loads(expected["summary.json"])["findings"] == len(mem.findings) > 0
    write_outputs(report, tmp_path / "out", sources=sources)
    for name, text in expected.items():
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == text, name
    for fmt, name in (("json", "scan.json"), ("jsonl", "findings.jsonl"), ("junit", "junit.xml")):
        assert render(report, fmt, sources) == expected[name], fmt
    assert report.dump() == mem.dump()
    assert [f.id for f in report.findings[:5]] == [f.id for f in mem.findings[:5]]
    assert report.findings[-1] == mem.findings[-1]
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"cli{jobs}"
        args = ["scan", "--config", str(cfg), "--db", "none", "--jobs", jobs]
        args += ["--baseline", str(baseline), "--out", str(out), "--format", "json"]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1, res.output
        outs.append((res.stdout, {p.name: p.read_bytes() for p in sorted(out.iterdir())}))
    assert outs[0] == outs[1]
    assert outs[0][0] == expected["scan.json"]
    assert outs[0][1]["junit.xml"].decode() == expected["junit.xml"]


def _open_files() -> set[tuple[str, str]]:
    """The open files of this process that have no name on disk any more (fd, target)."""
    out = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # the directory's own descriptor, closed by now
            continue
        if target.endswith("(deleted)"):
            out.add((fd.name, target))
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc/self/fd")
def test_the_temporary_files_go_when_the_scan_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted (^C in the fuzz stage) or finished and dropped: no temporary file is left
    open (they have no name on disk: closed, they are gone)."""
    import gc

    import policystrata.scan.run as run_mod
    import policystrata.scan.store as store_mod

    # written at once, a batch of check outcomes per outcome: every store has its file(s)
    monkeypatch.setattr(store_mod, "_WRITE", 1)
    monkeypatch.setattr(store_mod.CheckStore, "BATCH", 1)
    cfg = _export(tmp_path / "t", 20, distinct=5)
    gc.collect()
    before = _open_files()
    report = run_scan(load_scan_config(cfg), db_spec="none")
    assert isinstance(report.checks, CheckStore)
    # on disk: the findings and their briefs, the fuzz records, and the check outcomes (a
    # file per layer)
    assert len(_open_files() - before) == 3 + len(report.checks.by_layer) > 3
    del report
    gc.collect()
    assert _open_files() == before

    def interrupted(state: Any) -> None:
        assert state.findings and state.checks and state.cases  # on disk by now
        raise KeyboardInterrupt

    stages = tuple(interrupted if s is run_mod.scan_fuzz else s for s in run_mod.STAGES)
    monkeypatch.setattr(run_mod, "STAGES", stages)
    with pytest.raises(KeyboardInterrupt):
        run_scan(load_scan_config(cfg), db_spec="none")
    assert _open_files() == before


RSS_SCRIPT = r"""
import resource, sys
from pathlib import Path
from policystrata.scan.config import load_scan_config
from policystrata.scan.outputs import write_outputs
from policystrata.scan.run import run_scan
report = run_scan(load_scan_config(Path(sys.argv[1])), db_spec="none", jobs=1)
write_outputs(report, Path(sys.argv[2]))
print(len(report.findings), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
"""


def test_peak_rss_does_not_grow_with_the_record_count(tmp_path: Path) -> None:
    """Findings, check outcomes, fuzz records and the records to fuzz are on disk, the summary
    counted as the scan goes: a scan of 4x the records (and 4x the findings) has about the
    same peak RSS, each measured in a fresh process (the repeated records keep the bounded
    memos small in both; both have more than report.md's 200 findings). Before the spill,
    80 -> 640 records added ~100 MB; now 200 -> 800 add ~6 MB (the memos' last entries and
    the offsets, ids and record metas kept in memory)."""
    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    peaks = {}
    for n in (200, 800):
        cfg = _export(tmp_path / str(n), n, distinct=10)
        out = subprocess.run(
            [sys.executable, str(script), str(cfg), str(tmp_path / f"out{n}")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        peaks[n] = (int(out[0]), int(out[1]))  # findings, KB
    (few, small), (many, large) = peaks[200], peaks[800]
    assert many > 3 * few > 600
    assert large - small < 16 * 1024, peaks


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["input", "compiler", "release"]),
            st.sampled_from(["passed", "failed", "skipped"]),
            st.one_of(st.none(), st.integers(1, 9)),
            st.lists(st.sampled_from(["f1", "f2"]), max_size=2),
            st.one_of(st.none(), st.text(max_size=4)),
        ),
        max_size=40,
    ),
    st.integers(1, 5),
)
def test_check_store_is_the_list_it_was_given(rows: list[Any], batch: int) -> None:
    """Check outcomes kept a batch at a time per layer read back as they were appended: in
    order, by index (negative too), by slice, one layer at a time, as rows; equal to the
    originals; an outcome read back is a new object."""
    from policystrata.results import CheckOutcome, Location
    from policystrata.scan.store import check_row

    outcomes = [
        CheckOutcome(
            layer=layer,
            check=f"{layer}.c",
            record=f"r{n}",
            location=None if line is None else Location(file="t.jsonl", line=line),
            status=status,
            finding_ids=ids,
            message=message,
        )
        for n, (layer, status, line, ids, message) in enumerate(rows)
    ]
    store = CheckStore()
    store.BATCH = batch
    store.extend(outcomes)
    assert len(store) == len(outcomes)
    assert list(store) == outcomes
    assert [store[i] for i in range(-len(outcomes), len(outcomes))] == outcomes + outcomes
    assert store[1:4] == outcomes[1:4]
    for layer in {"input", "compiler", "release", "other"}:
        mine = [c for c in outcomes if c.layer == layer]
        assert list(store.layer(layer)) == mine == store.layer(layer)[:]
        assert list(store.rows(layer)) == [check_row(c) for c in mine]
    if outcomes:
        store[0].finding_ids.append("changed")
        assert store[0] == outcomes[0]
    store.close()
    assert len(store) == 0 and list(store) == []
