"""`strata scan` end to end: the acceptance commands of issue #6, through the CLI."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policystrata.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "scan"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "mixed", tmp_path / "mixed")
    return tmp_path / "mixed"


def test_one_finding_per_broken_record_and_the_clean_record_is_clean(mixed: Path) -> None:
    out = mixed / "out"
    result = run("scan", "--config", str(mixed / "policystrata.yaml"), "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    report = json.loads((out / "scan.json").read_text())
    got = sorted((f["location"]["line"], f["check"]) for f in report["findings"])
    assert got == [
        (1, "malformed_trace_line"),
        (2, "unknown_principal"),
        (3, "unparseable_sql"),
        (4, "not_read_only"),
    ]
    assert report["records"] == {
        "scanned": 4,
        "clean": 1,
        "with_findings": 3,
        "errors": 1,
        "skipped": 0,
    }
    for f in report["findings"]:
        assert f["location"]["file"] == "traces.jsonl"
        assert f["id"] and str(f["location"]["line"]) not in f["id"].split("/")[-1]
        assert f["probable_fix"] and f["recheck"].startswith("strata check")
        if f["kind"] == "witness":
            assert f["witness"]["proof"]["kind"] == "rule"
            assert f["repro"]["id"] == f["record_id"]
    junit = (out / "junit.xml").read_text()
    assert 'classname="compiler.ticket_count_by_region"' in junit


def test_stdout_carries_only_the_report(mixed: Path) -> None:
    result = run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert len(data["findings"]) == 4
    lines = run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "jsonl").stdout
    assert [json.loads(x)["location"]["line"] for x in lines.splitlines()] == [1, 2, 3, 4]
    sarif = json.loads(
        run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "sarif").stdout
    )
    assert sarif["version"] == "2.1.0"
    assert run(
        "scan", "--config", str(mixed / "policystrata.yaml"), "--format", "junit"
    ).stdout.startswith("<?xml")


def test_outputs_are_deterministic(mixed: Path) -> None:
    a, b = mixed / "a", mixed / "b"
    run("scan", "--config", str(mixed / "policystrata.yaml"), "--out", str(a))
    run("scan", "--config", str(mixed / "policystrata.yaml"), "--out", str(b))
    for name in (
        "scan.json",
        "findings.jsonl",
        "summary.json",
        "report.md",
        "scan.sarif",
        "junit.xml",
    ):
        text = (a / name).read_text()
        assert text == (b / name).read_text(), name
        assert str(mixed) not in text, name


def test_baseline_unchanged_rerun_has_no_new_findings(mixed: Path) -> None:
    cfg = str(mixed / "policystrata.yaml")
    run("scan", "--config", cfg, "--out", str(mixed / "first"))
    result = run(
        "scan",
        "--config",
        cfg,
        "--out",
        str(mixed / "second"),
        "--baseline",
        str(mixed / "first" / "scan.json"),
    )
    assert result.exit_code == 0, result.output
    second = json.loads((mixed / "second" / "scan.json").read_text())
    assert second["baseline"]["new"] == []
    assert len(second["baseline"]["unchanged"]) == 4
    assert "0 new" in result.stderr
    # a new broken record is new; fixing one is reported as fixed
    traces = mixed / "traces.jsonl"
    lines = traces.read_text().splitlines()
    fixed_sql = (
        "select count(accounts.id) as n from accounts where accounts.tenant_id = 'acme' limit 10"
    )
    lines[2] = lines[2].replace("select cont(((", fixed_sql)
    lines.append('{"id": "w2", "principal": "acme_analyst", "sql": "drop table accounts"}')
    traces.write_text("\n".join(lines) + "\n")
    result = run(
        "scan",
        "--config",
        cfg,
        "--format",
        "json",
        "--baseline",
        str(mixed / "first" / "scan.json"),
    )
    assert result.exit_code == 1
    diff = json.loads(result.stdout)["baseline"]
    assert [i.split("/")[1] for i in diff["new"]] == ["traces.jsonl#w2"]
    assert [i.split("/")[1] for i in diff["fixed"]] == ["traces.jsonl#typo_001"]


def test_recheck_command_reproduces_the_finding(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "json")
    f = next(x for x in json.loads(result.stdout)["findings"] if x["check"] == "not_read_only")
    argv = shlex.split(f["recheck"])
    assert argv[:2] == ["strata", "check"]
    monkeypatch.chdir(mixed)
    again = run(*argv[1:], "--format", "json")
    assert again.exit_code == 1
    witnesses = [w for r in json.loads(again.stdout)["results"] for w in r["witnesses"]]
    # with a database (--db auto finds the server binaries) the rejected SQL is also reported
    # as not executed against it
    from policystrata.db.server import find_bindir

    expected = ["not_read_only"] if find_bindir() is None else ["not_executed", "not_read_only"]
    assert [w["check"] for w in witnesses] == expected


def test_gate_thresholds_turn_findings_into_warnings(mixed: Path) -> None:
    cfg = str(mixed / "policystrata.yaml")
    result = run("scan", "--config", cfg, "--format", "json", "--fail-on-severity", "critical")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["gate"]["warnings"] == 4 and not any(f["gating"] for f in data["findings"])
    high = run("scan", "--config", cfg, "--format", "json", "--fail-on-severity", "high")
    assert high.exit_code == 1
    # unknown principal, unparseable SQL, a write and the malformed line are high: input that
    # could not be analysed gates, as invalid trace input does in the published line
    gating = sorted(f["check"] for f in json.loads(high.stdout)["findings"] if f["gating"])
    assert gating == [
        "malformed_trace_line",
        "not_read_only",
        "unknown_principal",
        "unparseable_sql",
    ]


def test_unknown_config_key_is_an_error_with_line(tmp_path: Path) -> None:
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: []}\ngate:\n  fail_on: x\n"
    )
    result = run("scan", "--config", str(cfg))
    assert result.exit_code == 2
    assert "policystrata.yaml:5: gate.fail_on: unknown key" in result.stderr
    assert "Traceback" not in result.output


def test_paths_must_stay_inside_the_config_directory(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "policystrata.yaml"
    cfg.parent.mkdir()
    (tmp_path / "t.jsonl").write_text("")
    cfg.write_text("version: 1\ndomain: support_saas\nsql_traces:\n  files: [../t.jsonl]\n")
    result = run("scan", "--config", str(cfg))
    assert result.exit_code == 2
    assert (
        "policystrata.yaml:4: sql_traces.files[0]: path '../t.jsonl' leaves the config"
        in result.stderr
    )


def test_published_config_format_loads_unchanged(tmp_path: Path) -> None:
    from policystrata.scan.config import load_scan_config

    (tmp_path / "traces.jsonl").write_text("")
    shutil.copy(FIXTURES / "published" / "policystrata.yaml", tmp_path / "policystrata.yaml")
    cfg = load_scan_config(tmp_path / "policystrata.yaml")
    assert cfg.dbt_paths() == []  # not required, missing: skipped
    assert cfg.model.database is not None and cfg.model.database.rls_checks[0].id == "a"


def test_skipped_records_are_counted(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(
        '{"id": "s", "record_type": "tool_execution", "principal": "acme_analyst"}\n'
        '{"id": "q", "principal": "acme_analyst", "query": {"sql": "select count(accounts.id) '
        "as n from accounts where accounts.tenant_id = 'acme' limit 10\"}}\n"
    )
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n"
    )
    result = run("scan", "--config", str(tmp_path / "policystrata.yaml"), "--format", "json")
    data = json.loads(result.stdout)
    assert data["records"]["skipped"] == 1 and data["records"]["scanned"] == 1
    assert result.exit_code == 0, data["findings"]


def test_cross_tenant_binding_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(
        '{"id": "x", "principal": "acme_analyst", "tenant_ids": ["beta"], '
        '"sql": "select count(*) from accounts where accounts.tenant_id = \'acme\'"}\n'
    )
    (tmp_path / "policystrata.yaml").write_text(
        "version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n"
    )
    result = run("scan", "--config", str(tmp_path / "policystrata.yaml"), "--format", "json")
    assert result.exit_code == 1
    checks = [f["check"] for f in json.loads(result.stdout)["findings"]]
    assert checks == ["cross_tenant_binding"]


def test_init_scan_first_scan_passes(tmp_path: Path) -> None:
    out = tmp_path / "scan-demo"
    assert run("init-scan", "--out", str(out)).exit_code == 0
    result = run("scan", "--config", str(out / "policystrata.yaml"), "--out", str(out / "out"))
    assert result.exit_code == 0, result.output
    assert (out / "out" / "scan.sarif").is_file()
    assert run("init-scan", "--out", str(out)).exit_code == 2  # not empty


def test_init_scan_postgres_dbt_failing_example_matches_its_readme(tmp_path: Path) -> None:
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    readme = (out / "README.md").read_text()
    expected = sorted(
        line.split("`")[1]
        for line in readme.splitlines()
        if line.startswith("| ") and "`" in line and line.split("|")[1].strip().isdigit()
    )
    result = run(
        "scan", "--config", str(out / "policystrata.yaml"), "--db", "none", "--format", "json"
    )
    assert result.exit_code == 1
    # the README lists the failing example's findings; the fuzz stage's survivors (low,
    # non-gating, of the clean records) are tested in tests/test_fuzz.py
    findings = [f for f in json.loads(result.stdout)["findings"] if f.get("mutation") is None]
    assert sorted(f["id"] for f in findings) == expected
    assert all(f["witness"]["proof"]["premises"] for f in findings)
    clean = run("scan", "--config", str(out / "policystrata.clean.yaml"), "--db", "none")
    assert clean.exit_code == 0, clean.output


def test_init_domain_copies_a_builtin_domain(tmp_path: Path) -> None:
    result = run("init-domain", "support_saas", "--out", str(tmp_path / "d"))
    assert result.exit_code == 0
    assert (tmp_path / "d" / "policy.yaml").is_file() and (tmp_path / "d" / "schema.sql").is_file()
    assert run("init-domain", "nope", "--out", str(tmp_path / "e")).exit_code == 2


def test_a_record_the_engine_cannot_judge_is_a_finding_and_the_scan_goes_on(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from policystrata.engine import EvaluationTimeout
    from policystrata.scan import run as scan_run

    real = scan_run.judge_case

    def flaky(state, case, rel, *checked):  # type: ignore[no-untyped-def]
        if case.id == "typo_001":
            raise EvaluationTimeout("evaluation exceeded 10.0s")
        return real(state, case, rel, *checked)

    monkeypatch.setattr(scan_run, "judge_case", flaky)
    result = run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "json")
    assert result.exit_code == 1
    checks = sorted(
        (f["location"]["line"], f["check"]) for f in json.loads(result.stdout)["findings"]
    )
    assert (3, "record_not_judged") in checks and (4, "not_read_only") in checks


def test_truncated_and_non_utf8_lines_are_findings_with_the_real_column(mixed: Path) -> None:
    traces = mixed / "traces.jsonl"
    traces.write_bytes(traces.read_bytes() + b'\xff{"id": "latin1_\xe9"}\n')
    result = run("scan", "--config", str(mixed / "policystrata.yaml"), "--format", "json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = {
        f["location"]["line"]: f["message"]
        for f in json.loads(result.stdout)["findings"]
        if f["kind"] == "record_error"
    }
    assert errors == {
        1: "not valid JSON: Expecting ',' delimiter at column 68 "
        "(the line ends before the record is closed)",
        6: "not UTF-8 text: byte 0xff at byte 1 of the line",
    }


def _readme_ids(out: Path) -> list[str]:
    readme = (out / "README.md").read_text()
    return [
        line.split("`")[1]
        for line in readme.splitlines()
        if line.startswith("| ") and "`" in line and line.split("|")[1].strip().isdigit()
    ]


def test_scan_table_at_80_columns_shows_each_findings_rule_as_in_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: rich's 80 columns
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    result = run("scan", "--config", str(out / "policystrata.yaml"), "--db", "none")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)
    cells = [line.split()[-1] for line in lines if line.strip()]
    for finding_id in _readme_ids(out):
        rule = finding_id.split("/")[0]
        assert rule in cells, (rule, result.stdout)
    # the deny reason is part of the message, never shown as if it were the rule
    assert "metric_not_allowed" not in cells


def test_scan_table_on_a_wide_terminal_is_one_row_per_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "pg"
    assert run("init-scan", "postgres_dbt", "--out", str(out)).exit_code == 0
    result = run("scan", "--config", str(out / "policystrata.yaml"), "--db", "none")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["severity", "layer", "class", "rule", "where", "finding"]
    for finding_id in _readme_ids(out):
        rule, rest = finding_id.split("/", 1)
        file = rest.split("#")[0]
        assert any(rule in line and f"{file}:" in line for line in lines), (rule, result.stdout)
    assert max(len(line) for line in lines) <= 200


def test_unknown_builtin_domain_in_the_config_names_the_config_line(tmp_path: Path) -> None:
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\ndomain: support_sas\nsql_traces: {files: []}\n")
    result = run("scan", "--config", str(cfg))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: policystrata.yaml:2: domain: unknown domain 'support_sas' "
        "(did you mean 'support_saas'?)"
    )


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("b.json", "{\n", "b.json:2:1: not valid JSON: Expecting property name"),
        ("b.json", '{"x": 1}', "b.json: not a PolicyStrata scan.json (no 'findings' list)"),
        ("b.jsonl", '{"id": "a"}\n{"x": 1}\n', "b.jsonl:2: a baseline finding without an 'id'"),
    ],
)
def test_a_bad_baseline_is_one_line_naming_file_and_line(
    mixed: Path, name: str, text: str, error: str
) -> None:
    baseline = mixed / name
    baseline.write_text(text)
    cfg = str(mixed / "policystrata.yaml")
    result = run("scan", "--config", cfg, "--baseline", str(baseline))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {mixed}/{error}")
    assert len(result.stderr.splitlines()) == 1


def test_notes_on_duplicate_ids_unknown_regression_case_and_an_empty_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    rec = {"id": "a", "principal": "acme_analyst", "sql": "select 1 limit 1"}
    lines = [rec, {**rec, "regression_case": "pass_2_pass"}, {**rec, "id": "b"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    (tmp_path / "e.jsonl").write_text("")
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n")
    result = run("scan", "--config", str(cfg), "--format", "json")
    assert result.exit_code == 0  # notes never change the verdict
    assert "notes" not in json.loads(result.stdout)  # scan.json is unchanged
    # the outputs go to the published default, <config dir>/scan-out (no --out, no output:)
    assert result.stderr.splitlines()[0] == f"wrote 5 file(s) to {tmp_path / 'scan-out'}"
    assert (tmp_path / "scan-out" / "scan.json").is_file()
    assert result.stderr.splitlines()[1:] == [
        "note: t.jsonl:2: record id 'a' is also used at t.jsonl:1; ids should be unique "
        "(duplicates get ~2, ~3 finding ids, which follow record order)",
        "note: t.jsonl:2: regression_case 'pass_2_pass' is not one of fail_to_pass, "
        "pass_to_pass, contain_to_contain, deny_to_deny, allow_to_allow, unclassified "
        "(did you mean 'pass_to_pass'?)",
    ]
    cfg.write_text("version: 1\ndomain: support_saas\nsql_traces: {files: [e.jsonl]}\n")
    empty = run("scan", "--config", str(cfg))
    assert empty.exit_code == 0
    assert "note: no trace records were scanned" in empty.stderr


def test_a_missing_config_says_how_to_get_one(tmp_path: Path) -> None:
    result = run("scan", "--config", str(tmp_path / "policystrata.yaml"))
    assert result.exit_code == 2
    assert "scan config not found" in result.stderr
    assert "strata init-scan --out DIR" in result.stderr


@pytest.mark.parametrize("columns", ["80", "200"])
def test_the_table_prints_record_text_verbatim_never_as_markup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"id": "x", "principal": "[bold]eve", "sql": "select 1 limit 1"}) + "\n"
    )
    cfg = tmp_path / "policystrata.yaml"
    cfg.write_text("version: 1\ndomain: support_saas\nsql_traces: {files: [t.jsonl]}\n")
    result = run("scan", "--config", str(cfg))
    assert result.exit_code == 1
    assert "(unknown_principal: [bold]eve)" in " ".join(result.stdout.split())


def test_the_terminal_table_is_capped_and_the_files_are_not(
    mixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-table-rows N: the table shows the first N findings (in scan.json's order) and says
    how many more there are and where; the output files are the same bytes as with all rows."""
    monkeypatch.setenv("COLUMNS", "200")
    cfg = str(mixed / "policystrata.yaml")
    capped, full = mixed / "capped", mixed / "full"
    few = run("scan", "--config", cfg, "--out", str(capped), "--max-table-rows", "2")
    every = run("scan", "--config", cfg, "--out", str(full), "--max-table-rows", "0")
    assert few.exit_code == every.exit_code == 1, few.output
    checks = [f["check"] for f in json.loads((full / "scan.json").read_text())["findings"]]
    assert len(checks) == 4

    def rows(stdout: str) -> list[str]:
        return [c for c in checks if any(c in line for line in stdout.splitlines())]

    assert rows(every.stdout) == checks
    assert rows(few.stdout) == checks[:2]
    said = f"… and 2 more finding(s): see {capped / 'report.md'} and {capped / 'scan.json'}"
    assert said in " ".join(few.stdout.split())  # (wrapped at the terminal's width)
    assert "more finding(s)" not in every.stdout
    assert "4 finding(s)" in few.stdout  # the verdict counts every finding
    for name in ("scan.json", "findings.jsonl", "summary.json", "report.md", "junit.xml"):
        assert (capped / name).read_bytes() == (full / name).read_bytes(), name


def test_tenant_checks_are_skipped_when_no_tenant_column_is_known(tmp_path: Path) -> None:
    """A domain with no schema.sql and no tenancy in the config: no table is known to be
    tenant-owned, so the tenant checks cannot judge a record; they are reported as skipped
    with why (never as passed), and a note says so. With schema.sql the same record fails.
    A column the domain knows only from its policy (type ``unknown``) is judged by its value
    like a column of no known type: its date bounds are time bounds."""
    import sys
    import xml.etree.ElementTree as ET

    sys.path.insert(0, str(Path(__file__).parent))
    from domain_shapes import Shape, Table, write_domain

    def table(name: str, parent: str | None, fk: str | None, role: str) -> Table:
        return Table(
            name, parent, fk, False, role == "root", "kind", "amount_cents", "created_on",
            "date", False, role,
        )  # fmt: skip

    shape = Shape(
        "integer", "tenant_id", False, False, False, False, "join",
        (table("workspaces", None, None, "root"),
         table("orders", "workspaces", "workspace_id", "chain")),
    )  # fmt: skip
    record = {
        "id": "r1",
        "principal": "a_analyst",
        "release_allowed": True,
        "semantic_ir": {"metric": "orders_total", "dimensions": ["orders_kind"], "filters": {},
                        "time_range": "last_month", "limit": 100},
        "sql": "select orders.kind as orders_kind, sum(orders.amount_cents) as value from orders "
        "where orders.created_on >= date '2026-05-01' and orders.created_on < date '2026-06-01' "
        "group by orders.kind limit 100",
    }  # fmt: skip

    def scan(base: Path, rec: dict[str, Any]) -> tuple[dict[str, ET.Element], str]:
        """Scan the one record: its JUnit testcases by check, and the CLI's output."""
        (base / "traces.jsonl").write_text(json.dumps(rec) + "\n")
        res = CliRunner().invoke(
            main,
            ["scan", "--config", str(base / "policystrata.yaml"), "--out", str(base / "out"),
             "--db", "none", "--no-fuzz"],
        )  # fmt: skip
        assert res.exit_code in (0, 1), res.output
        testcases = ET.parse(base / "out" / "junit.xml").getroot().iter("testcase")
        return {str(c.get("name")): c for c in testcases}, res.output

    outcome = {}
    for with_schema in (True, False):
        base = tmp_path / ("with" if with_schema else "without")
        write_domain(shape, base / "dom")
        if not with_schema:
            (base / "dom" / "schema.sql").unlink()
        (base / "policystrata.yaml").write_text(
            "version: 1\ndomain_path: dom\nsql_traces:\n  files: [traces.jsonl]\n"
        )
        cases, output = scan(base, record)
        case = cases["compiler.tenant_scope_missing"]
        outcome[with_schema] = (case, output)
        # the date bounds on orders.created_on are seen with or without the column's type
        assert cases["drift.time_window_missing"].find("failure") is None, with_schema
    failed, _ = outcome[True]
    assert failed.find("failure") is not None
    skipped, output = outcome[False]
    assert skipped.find("failure") is None
    reason = skipped.find("skipped")
    assert reason is not None and "no table is known to be tenant-owned" in reason.get("message")
    assert "no tenant column is known" in " ".join(output.split())
    # with no tenant column known, a pin to the principal's own tenant (4821) is the record's
    # tenant scope, not a filter the IR did not ask for; any other extra filter still is one
    base = tmp_path / "without"
    scoped = record["sql"].replace(
        "from orders where",
        "from orders join workspaces on workspaces.id = orders.workspace_id"
        " where workspaces.tenant_id = {} and",
    )
    for value, extra in (("4821", False), ("7310", True), ("4821 and orders.kind = 'x'", True)):
        cases, output = scan(base, {**record, "sql": scoped.format(value)})
        assert (cases["drift.filter_extra"].find("failure") is not None) == extra, (value, output)
