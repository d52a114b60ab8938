"""junit.xml parses with a JUnit reader: one testsuite per layer, a testcase per record x check."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from junitparser import Failure, JUnitXml

from policystrata.cli import main
from policystrata.results import ScanReport

FIXTURES = Path(__file__).parent / "fixtures" / "scan"


def test_junit_parses_with_one_suite_per_layer(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "mixed", tmp_path / "mixed")
    out = tmp_path / "mixed" / "out"
    CliRunner().invoke(
        main, ["scan", "--config", str(tmp_path / "mixed" / "policystrata.yaml"), "--out", str(out)]
    )
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    suites = {s.name: s for s in xml}
    assert list(suites) == ["input", "validator", "compiler", "database", "release"]
    failed = {
        (s.name, c.classname.split(".", 1)[1], c.name)
        for s in xml
        for c in s
        if any(isinstance(r, Failure) for r in c.result)
    }
    assert ("input", "traces.jsonl:1", "input.trace_record") in failed
    assert ("validator", "who_001", "validator.unauthorized_query_allowed") in failed
    assert ("compiler", "typo_001", "input.sql_rejected") in failed
    assert ("compiler", "write_001", "input.sql_rejected") in failed
    # the clean record: every check of every layer it exercised ran and passed
    clean = [c for s in xml for c in s if c.classname.endswith(".ticket_count_by_region")]
    assert len(clean) > 20 and not any(c.result for c in clean)
    assert {c.classname.split(".")[0] for c in clean} == {
        "input",
        "validator",
        "compiler",
        "database",
        "release",
    }
    total = sum(s.tests for s in xml)
    assert total == len([c for s in xml for c in s])


def _whole_tree_junit(report: ScanReport) -> str:
    """junit.xml as it was built before it was streamed: the whole ElementTree, indented and
    serialized at once (the reference the streamed writer must match byte for byte)."""
    from xml.etree import ElementTree as ET

    from policystrata.report.junit import LAYER_ORDER

    by_layer: dict[str, list[Any]] = {}
    for c in report.checks:
        by_layer.setdefault(c.layer, []).append(c)
    findings = {f.id: f for f in report.findings}
    root = ET.Element("testsuites", name="policystrata scan")
    total = failures = skipped = 0
    layers = sorted(by_layer, key=lambda s: (LAYER_ORDER.index(s) if s in LAYER_ORDER else 99, s))
    for layer in layers:
        cases = by_layer[layer]
        n_fail = sum(c.status == "failed" for c in cases)
        n_skip = sum(c.status == "skipped" for c in cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=layer,
            tests=str(len(cases)),
            failures=str(n_fail),
            errors="0",
            skipped=str(n_skip),
            time="0",
        )
        for c in cases:
            attrs = {"classname": f"{layer}.{c.record}", "name": c.check, "time": "0"}
            if c.location is not None:
                attrs["file"] = c.location.file
                if c.location.line is not None:
                    attrs["line"] = str(c.location.line)
            case = ET.SubElement(suite, "testcase", attrs)
            if c.status == "failed":
                msgs = [findings[i].message for i in c.finding_ids if i in findings]
                message = c.message or ("; ".join(msgs)) or f"{c.check} failed"
                fail = ET.SubElement(case, "failure", message=message[:500], type=c.check)
                lines = []
                for i in c.finding_ids:
                    f = findings.get(i)
                    if f is not None:
                        lines.append(
                            f"{f.id} [{f.severity}/{f.confidence}] {f.message}\n"
                            f"  fix: {f.probable_fix}\n  re-check: {f.recheck}"
                        )
                fail.text = "\n".join(lines) or message
            elif c.status == "skipped":
                ET.SubElement(case, "skipped", message=c.message or "not run")
        total += len(cases)
        failures += n_fail
        skipped += n_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def test_streamed_junit_is_the_whole_tree_document(tmp_path: Path) -> None:
    """write_junit writes one testcase at a time: the same bytes as building, indenting and
    serializing the whole tree (failures with markup-like text, skipped checks, several
    layers, and a report without any check)."""
    from policystrata.report.junit import to_junit, write_junit
    from policystrata.results import CheckOutcome, GateResult, Location
    from policystrata.scan.config import load_scan_config
    from policystrata.scan.outputs import write_outputs
    from policystrata.scan.run import run_scan

    shutil.copytree(FIXTURES / "mixed", tmp_path / "mixed")
    report = run_scan(load_scan_config(tmp_path / "mixed" / "policystrata.yaml"), db_spec="none")
    report.checks.append(
        CheckOutcome(
            layer="zz_custom",
            check='odd "check" <&>',
            record="r\t1",
            location=Location(file="a&b.jsonl", line=3),
            status="failed",
            message="  \n",
        )
    )
    report.checks.append(
        CheckOutcome(layer="compiler", check="compiler.x", record="r2", status="skipped")
    )
    assert {c.status for c in report.checks} >= {"passed", "failed", "skipped"}
    assert any(c.finding_ids for c in report.checks)
    expected = _whole_tree_junit(report)
    buf = io.StringIO()
    write_junit(report, buf)
    assert buf.getvalue() == expected == to_junit(report)
    write_outputs(report, tmp_path / "out")
    assert (tmp_path / "out" / "junit.xml").read_text(encoding="utf-8") == expected
    empty = ScanReport(
        version="0",
        config="c",
        domain="d",
        rules_digest="x",
        gate=GateResult(passed=True, exit_code=0),
    )
    assert to_junit(empty) == _whole_tree_junit(empty)


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["input", "compiler", "zz"]),
            _TEXT,
            _TEXT,
            st.one_of(st.none(), st.tuples(_TEXT, st.one_of(st.none(), st.integers(0, 99)))),
            st.sampled_from(["passed", "failed", "skipped"]),
            st.one_of(st.none(), _TEXT),
            st.lists(st.sampled_from(["f1", "f2", "gone"]), max_size=2),
        ),
        max_size=6,
    ),
    _TEXT,
)
def test_testcases_written_as_text_are_what_elementtree_writes(rows: list[Any], msg: str) -> None:
    """Each testcase is written as text: the same bytes as ElementTree's serialization of the
    whole indented tree, for any text in any attribute or message (markup, quotes, tabs,
    carriage returns, newlines, empty strings)."""
    from policystrata.report.junit import to_junit
    from policystrata.results import CheckOutcome, Finding, GateResult, Location

    findings = [
        Finding(
            id=fid,
            kind="witness",
            rule_id="compiler.x",
            check="x",
            message=msg + fid,
            severity="high",
            confidence="high",
            surface="compiler",
            owner="compiler",
            witness_class="x",
            location=Location(file="t.jsonl", line=1),
            what_changed="-",
            probable_fix='<fix & "go">',
            recheck="strata check\t'x'\r",
        )
        for fid in ("f1", "f2")
    ]
    checks = [
        CheckOutcome(
            layer=layer,
            check=check,
            record=record,
            location=Location(file=loc[0], line=loc[1]) if loc is not None else None,
            status=status,
            finding_ids=ids,
            message=message,
        )
        for layer, check, record, loc, status, message, ids in rows
    ]
    report = ScanReport(
        version="0",
        config="c",
        domain="d",
        rules_digest="x",
        gate=GateResult(passed=True, exit_code=0),
        checks=checks,
        findings=findings,
    )
    assert to_junit(report) == _whole_tree_junit(report)
