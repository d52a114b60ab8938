"""junit.xml parses with a JUnit reader: one testsuite per layer, a testcase per record x check."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner
from junitparser import Failure, JUnitXml

from policystrata.cli import main

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
