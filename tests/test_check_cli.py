"""`strata check` end to end: the acceptance commands of the core issue, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from policystrata.cli import main

GOOD_SQL = (
    "select count(distinct support_tickets.id) as value, accounts.region from accounts "
    "join support_tickets on support_tickets.account_id = accounts.id "
    "where accounts.tenant_id = 'acme' and support_tickets.opened_at >= date '2026-05-01' "
    "and support_tickets.opened_at < date '2026-06-01' group by accounts.region limit 100"
)
IR = "ticket_count by region during last_month limit 100"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def check(sql: str, *extra: str, ir: str = IR, principal: str = "acme_analyst") -> Result:
    return run(
        "check",
        "--domain",
        "support_saas",
        "--principal",
        principal,
        "--ir",
        ir,
        "--sql",
        sql,
        *extra,
    )


def check_json(sql: str, *extra: str, ir: str = IR, principal: str = "acme_analyst") -> dict:
    result = check(sql, "--format", "json", *extra, ir=ir, principal=principal)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def witnesses(report: dict) -> list[dict]:
    return [w for r in report["results"] for w in r["witnesses"]]


def test_clean_query_exits_0() -> None:
    result = check(GOOD_SQL)
    assert result.exit_code == 0, result.output


def test_missing_tenant_predicate_is_a_compiler_lowering_violation() -> None:
    sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    result = check(sql)
    assert result.exit_code == 1, result.output
    report = check_json(sql)
    ws = witnesses(report)
    assert ws, "expected a witness"
    w = next(w for w in ws if w["key"] == "accounts")
    assert w["localized_surface"] == "compiler"
    assert w["witness_class"] == "lowering_violation"
    assert w["proof"]["atom"]["pred"] == "violation"
    absent = [f for f in w["supporting_facts"] if f["kind"] == "absent"]
    assert any("accounts" in f["atom"] for f in absent), absent
    # the terminal tree shows the same root and the absent leaf
    assert "violation" in result.output
    assert "absent" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        GOOD_SQL.replace("'acme'", "'beta'"),
        GOOD_SQL.replace("accounts.tenant_id = 'acme'", "accounts.tenant_id = 'acme' or 1=1"),
        GOOD_SQL.replace(
            "where accounts.tenant_id = 'acme' ", "/* where accounts.tenant_id = 'acme' */ "
        ),
        GOOD_SQL.replace(
            "where accounts.tenant_id = 'acme' ", "-- where accounts.tenant_id = 'acme'\n"
        ),
        GOOD_SQL.replace("accounts.tenant_id", "accounts.legacy_tenant_id"),
    ],
    ids=["cross_tenant", "or_true", "block_comment", "line_comment", "legacy_column"],
)
def test_tenant_scope_bypasses_exit_1(sql: str) -> None:
    result = check(sql)
    assert result.exit_code == 1, result.output


def test_table_aliases_are_resolved() -> None:
    sql = (
        "select count(distinct t.id) as value, a.region from accounts a "
        "join support_tickets t on t.account_id = a.id where a.tenant_id = 'acme' "
        "and t.opened_at >= date '2026-05-01' and t.opened_at < date '2026-06-01' "
        "group by a.region limit 100"
    )
    result = check(sql)
    assert result.exit_code == 0, result.output


def test_unauthorized_metric_reaching_sql_is_a_validator_fault() -> None:
    sql = (
        "select sum(invoices.gross_amount_cents) as value from invoices "
        "join subscriptions on subscriptions.id = invoices.subscription_id "
        "join accounts on subscriptions.account_id = accounts.id where accounts.tenant_id = 'acme' "
        "and invoices.invoice_date >= date '2026-05-01' "
        "and invoices.invoice_date < date '2026-06-01' limit 100"
    )
    report = check_json(sql, ir="gross_revenue during last_month limit 100")
    ws = witnesses(report)
    assert any(
        w["localized_surface"] == "validator" and w["witness_class"] == "over_permissive"
        for w in ws
    ), ws


def test_limit_above_budget_is_denied() -> None:
    sql = GOOD_SQL.replace("limit 100", "limit 5000")
    report = check_json(sql, ir=IR.replace("limit 100", "limit 5000"))
    checks = {w["check"] for w in witnesses(report)}
    assert "row_budget_exceeded" in checks, checks


def test_sensitive_column_for_analyst_is_a_violation() -> None:
    sql = (
        "select count(distinct support_tickets.id) as value, accounts.customer_email from accounts "
        "join support_tickets on support_tickets.account_id = accounts.id "
        "where accounts.tenant_id = 'acme' group by accounts.customer_email limit 100"
    )
    result = check(sql)
    assert result.exit_code == 1, result.output


def test_release_of_denied_result_is_reported() -> None:
    sql = (
        "select sum(invoices.gross_amount_cents) as value from invoices "
        "where exists (select 1 from subscriptions s join accounts a on a.id = s.account_id "
        "where s.id = invoices.subscription_id and a.tenant_id = 'acme') limit 100"
    )
    report = check_json(sql, "--release", ir="gross_revenue during last_month limit 100")
    ws = witnesses(report)
    fails = {(f["surface"], f["witness_class"]) for w in ws for f in w["also_failed"]}
    fails |= {(w["localized_surface"], w["witness_class"]) for w in ws}
    assert ("release", "unsafe_release") in fails, fails


def test_json_output_validates_against_published_schema() -> None:
    sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    report = check_json(sql)
    schema_out = run("schema", "witness")
    assert schema_out.exit_code == 0
    schema = json.loads(schema_out.stdout)
    for w in witnesses(report):
        jsonschema.validate(w, schema)
    full = json.loads(run("schema", "check-report").stdout)
    jsonschema.validate(report, full)


def test_every_emitted_proof_passes_the_independent_checker() -> None:
    from policystrata.case import Case
    from policystrata.check import Checker
    from policystrata.engine import check_proof
    from policystrata.ir import parse_ir
    from policystrata.model import load_domain

    checker = Checker(load_domain("support_saas"))
    sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    case = Case(id="p1", principal="acme_analyst", ir=parse_ir(IR), sql=sql)
    facts = checker.case_facts(case)
    result = checker.engine.evaluate(facts)
    res = checker.check(case)
    assert res.witnesses
    for w in res.witnesses:
        check_proof(w.proof, checker.program, result.fact_lookup)


def test_explain_rerenders_a_saved_witness(tmp_path: Path) -> None:
    sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    report = check_json(sql)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(witnesses(report)[0]))
    result = run("explain", str(path))
    assert result.exit_code == 0, result.output
    assert "violation" in result.output


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("bad(C, X) :- case(C).\n", "unsafe"),
        ("p(C) :- case(C), !q(C).\nq(C) :- case(C), !p(C).\n", "negation"),
        (
            "layer_fault(C, compiler, semantic_drift, silent, C) :- case(C).\n",
            "needs an @message",
        ),
    ],
    ids=["unsafe_variable", "negation_through_recursion", "witness_rule_without_message"],
)
def test_broken_rule_file_exits_2_with_location(tmp_path: Path, rule: str, needle: str) -> None:
    path = tmp_path / "broken.dl"
    path.write_text(rule)
    result = check(GOOD_SQL, "--rules", str(path))
    assert result.exit_code == 2, result.output
    assert "broken.dl:" in result.stderr
    assert needle in result.stderr.lower()


def test_trace_file_checks_each_record(tmp_path: Path) -> None:
    bad_sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    records = [
        {
            "id": "ok",
            "principal": "acme_analyst",
            "tenant_ids": ["acme"],
            "sql": GOOD_SQL,
            "semantic_ir": {
                "metric": "ticket_count",
                "dimensions": ["region"],
                "time_range": "last_month",
                "limit": 100,
            },
        },
        {"id": "leak", "principal": "acme_analyst", "sql": bad_sql},
    ]
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n{not json\n")
    result = run("check", "--domain", "support_saas", "--db", "none", str(path), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    verdicts = {r["case"]["id"]: r["verdict"] for r in report["results"]}
    assert verdicts["ok"] == "clean"
    assert verdicts["leak"] == "violation"
    errors = [e for r in report["results"] for e in r["errors"]]
    assert [(e["kind"], e["source"]["line"]) for e in errors] == [("malformed_trace_line", 3)]


def test_malformed_policy_yaml_is_one_line_exit_2(tmp_path: Path) -> None:
    import shutil

    from policystrata.paths import domains_dir

    dom = tmp_path / "dom"
    shutil.copytree(domains_dir() / "support_saas", dom)
    (dom / "policy.yaml").write_text("version: v7\nroles: [\n")
    result = run(
        "check", "--domain-path", str(dom), "--principal", "acme_analyst", "--sql", GOOD_SQL
    )
    assert result.exit_code == 2
    assert "policy.yaml:" in result.stderr
    assert "Traceback" not in result.output


def test_formats_md_example_trace_loads_and_its_drift_is_reported(tmp_path: Path) -> None:
    """The example record of FORMATS.md (published contract) loads unchanged; its SQL is scoped
    to acme, but it neither groups by region nor bounds last_month, which its IR asks for:
    semantic drift, and nothing else."""
    record = {
        "id": "ticket_count_001",
        "principal": "acme_analyst",
        "tenant_ids": ["acme"],
        "release_allowed": True,
        "semantic_ir": {
            "metric": "ticket_count",
            "dimensions": ["region"],
            "time_range": "last_month",
            "grain": "month",
            "limit": 100,
        },
        "sql": "select count(distinct support_tickets.id) as value from accounts join "
        "support_tickets on support_tickets.account_id = accounts.id where "
        "accounts.tenant_id in ('acme') limit 100",
        "regression_case": "pass_to_pass",
        "source": "sqlalchemy",
        "timestamp": "2026-06-24T12:00:00Z",
    }
    session = {"id": "s1", "record_type": "agent_session", "principal": "acme_analyst"}
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(session) + "\n")
    result = run("check", "--domain", "support_saas", "--db", "none", str(path))
    assert result.exit_code == 1, result.output
    assert "skipped 1 non-query record" in result.stderr
    report = json.loads(
        run(
            "check", "--domain", "support_saas", "--db", "none", str(path), "--format", "json"
        ).stdout
    )
    found = {(w["witness_class"], w["check"], w["key"]) for w in witnesses(report)}
    assert found == {
        ("semantic_drift", "dimension_missing", "region"),
        ("semantic_drift", "time_window_missing", "last_month"),
    }


def test_count_star_reads_no_column() -> None:
    """count(*) counts rows: it neither outputs nor reads customer_email (a sensitive column)."""
    sql = "select count(*) as n from accounts where accounts.tenant_id = 'acme' limit 100"
    report = check_json(sql, ir="ticket_count during last_month limit 100")
    checks = {w["check"] for w in witnesses(report)}
    assert not checks & {"sensitive_column_output", "sensitive_column_read"}, checks


@pytest.mark.parametrize(
    ("sql", "reason", "token"),
    [
        (
            "select cont(((",
            "cannot parse the SQL at line 1, column 14: incomplete parenthesis after '(' "
            "(the SQL ends there)",
            "(",
        ),
        (
            "select count(* from accounts limit 5",
            "cannot parse the SQL at line 1, column 16: expected ')' near 'from'",
            "from",
        ),
        (
            "select count(*)\nfrom accounts\nwhere accounts.tenant_id = 'acme",
            "cannot parse the SQL at line 3, column 28: the string opened here is never closed "
            "(missing ')",
            "'acme",
        ),
    ],
)
def test_unparseable_sql_says_where_and_what_with_a_caret(
    sql: str, reason: str, token: str
) -> None:
    report = check_json(sql, "--db", "none")
    (w,) = witnesses(report)
    assert w["check"] == "unparseable_sql"
    assert w["key"] == reason
    assert w["message"].endswith(reason)
    table = check(sql, "--db", "none").stdout
    for internal in ("sqlglot", "<class", "Required keyword", "<Token"):
        assert internal not in table
    lines = [line.strip("│ ") for line in table.splitlines()]
    at = lines.index(f"at   line {reason.split('line ')[1].split(':')[0]}:")
    excerpt, caret = table.splitlines()[at + 1], table.splitlines()[at + 2]
    start = caret.index("^")
    assert excerpt[start : start + len(token)] == token
    assert caret.count("^") == len(token)


def test_ir_parse_error_shows_line_column_and_what_was_expected() -> None:
    result = run("check", "--principal", "acme_analyst", "--ir", "ticket_count by", "--db", "none")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --ir:1:16: unexpected end of input; expected a dimension name\n"
    )
    assert result.stdout == ""


def test_typod_names_in_the_ir_are_noted_with_position_and_suggestion() -> None:
    result = run(
        "check",
        "--principal",
        "acme_analyst",
        "--ir",
        "ticket_cnt by regio during last_mnth limit 100",
        "--db",
        "none",
    )
    assert result.exit_code == 0, result.output  # checked as given: no layer output to fault
    notes = result.stderr.splitlines()
    assert notes[:3] == [
        "note: --ir:1:1: 'ticket_cnt' is not a metric of policy.yaml "
        "(did you mean 'ticket_count'?)",
        "note: --ir:1:15: 'regio' is not a dimension of policy.yaml (did you mean 'region'?)",
        "note: --ir:1:28: 'last_mnth' is not a time range of policy.yaml "
        "(did you mean 'last_month'?)",
    ]
    assert notes[3].startswith("note: policy denies this request (")
    assert "unknown_metric: ticket_cnt" in notes[3]
    assert "note:" not in result.stdout


def test_ir_alone_says_what_policy_decides() -> None:
    denied = run(
        "check",
        "--principal",
        "acme_analyst",
        "--ir",
        "ticket_count by customer_email during last_month limit 100",
        "--db",
        "none",
    )
    assert denied.exit_code == 0
    assert "policy denies this request (dimension_not_allowed: customer_email)" in denied.stderr
    allowed = run("check", "--principal", "acme_analyst", "--ir", IR, "--db", "none")
    assert "note: policy allows this request" in allowed.stderr
    with_sql = check(GOOD_SQL, "--db", "none")
    assert "policy allows" not in with_sql.stderr


def test_trace_with_bad_ir_text_reports_its_column_and_is_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    record = {"id": "a", "principal": "acme_analyst", "semantic_ir": "ticket_count by"}
    unscoped = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    path.write_text(json.dumps({**record, "sql": unscoped}) + "\n")
    result = run("check", "--db", "none", str(path), "--format", "json")
    assert result.exit_code == 1
    (res,) = json.loads(result.stdout)["results"]
    assert {w["check"] for w in res["witnesses"]} >= {"tenant_scope_missing"}  # SQL still judged
    (err,) = res["errors"]
    assert err["kind"] == "invalid_semantic_ir" and err["source"]["line"] == 1
    assert err["message"] == (
        "semantic_ir 'ticket_count by' at column 16: unexpected end of input; "
        "expected a dimension name"
    )


def test_explain_refuses_a_witness_whose_proof_does_not_check(tmp_path: Path) -> None:
    sql = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    good, other = witnesses(check_json(sql, "--db", "none"))[:2]
    tampered = json.loads(json.dumps(good))
    tampered["proof"]["premises"][0]["atom"]["args"][-1] = "invoices"  # claim another table
    path = tmp_path / "w.json"
    path.write_text(json.dumps([tampered, other]))
    result = run("explain", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: w.json: witness {good['id']}: the proof does not check: proof step violation("
    )
    # the valid one is still rendered; the tampered one is not
    assert other["key"] in result.stdout and result.stdout.count("╭─") == 1


def test_explain_reads_a_scan_report_and_its_findings_jsonl(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(Path(__file__).parent / "fixtures" / "scan" / "mixed", tmp_path / "m")
    out = tmp_path / "m" / "out"
    run("scan", "--config", str(tmp_path / "m" / "policystrata.yaml"), "--out", str(out))
    for name in ("scan.json", "findings.jsonl"):
        result = run("explain", str(out / name))
        assert result.exit_code == 0, result.output
        assert result.stdout.count("╭─") == 3  # the three witness findings; record errors have none
        assert "validator.unauthorized_query_allowed" in result.stdout


def test_explain_of_a_json_file_that_is_not_a_witness_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    result = run("explain", str(path))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {path}: not a PolicyStrata witness, check report or scan report: "
        "id: missing (and 9 more)\n"
    )


@pytest.mark.postgres
def test_readme_worked_example_is_what_the_command_prints(  # type: ignore[no-untyped-def]
    pg_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## A worked example", 1)[1]
    command, rest = section.split("```sh\n", 1)[1].split("```\n", 1)
    pasted = rest.split("```\n", 1)[1].split("```", 1)[0]
    import shlex

    args = shlex.split(command.replace("\\\n", " "))
    assert args[:4] == ["uv", "run", "strata", "check"]
    monkeypatch.setenv("COLUMNS", "100")
    result = run(*args[3:], "--db", pg_server.dsn("postgres"))
    assert result.exit_code == 1
    first = result.stdout[: result.stdout.index("╯") + 1] + "\n"
    assert first == pasted


def test_trace_file_with_mixed_records_reports_each_at_file_line_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    unscoped = GOOD_SQL.replace("where accounts.tenant_id = 'acme' ", "")
    lines = [
        '{"id": "broken_001", "principal": "acme_analyst", "sql": "select 1"',
        json.dumps({"id": "ok", "principal": "acme_analyst", "sql": GOOD_SQL}),
        "[1, 2]",
        json.dumps({"id": "leak", "principal": "acme_analyst", "sql": unscoped}),
        json.dumps({"id": "nosql", "principal": "acme_analyst"}),
        json.dumps({"id": "typo", "principal": "acme_analyst", "sql": "select cont((("}),
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run("check", "--db", "none", str(path))
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert max(len(line) for line in out) <= 80 and all(x == x.rstrip() for x in out)
    errors = [line for line in out if line.startswith("✗ t.jsonl:")]
    assert [e.split(":")[1] for e in errors] == ["1", "3", "5"]
    assert errors[0].startswith("✗ t.jsonl:1: malformed_trace_line: not valid JSON: Expecting")
    assert "t.jsonl:1:" not in result.stderr  # the report is on stdout
    assert out.index(errors[0]) + 1 < len(out) and out[out.index(errors[0]) + 1].startswith("  ")
    assert "must be a JSON object, got an array" in " ".join(result.stdout.split())
    assert "case leak · principal acme_analyst · t.jsonl:4" in result.stdout
    assert "case typo · principal acme_analyst · t.jsonl:6" in result.stdout
    assert out[-2] == "6 case(s): 1 clean, 2 with violations, 3 input error(s)"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["check"],
        ["explain"],
        ["schema"],
        ["scan"],
        ["init-scan"],
        ["init-domain"],
        ["check-integration"],
    ],
    ids=lambda c: " ".join(c) or "strata",
)
def test_help_fits_80_columns(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=80)
    assert result.exit_code == 0
    too_long = [line for line in result.stdout.splitlines() if len(line) > 80]
    assert not too_long


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "policy.yaml",
            "tenancy:\n  tenants: id\n",
            "tenancy:\n  - tenants: id\n",
            "error: policy.yaml:88: tenancy: expected a mapping, got a list",
        ),
        (
            "surfaces.yaml",
            "  manifest:\n    mode: capability_exposure\n    responsibilities: [",
            "  manifest:\n    - mode: capability_exposure\n      responsibilities: [",
            "error: surfaces.yaml:6: contracts.manifest: expected a mapping, got a list",
        ),
        (
            "suites/seeded.yaml",
            "suite_metadata: {",
            "suite_metadata: [{",
            "error: suites/seeded.yaml:9:",
        ),
    ],
)
def test_a_list_where_a_mapping_is_expected_is_one_line_exit_2(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    dom = tmp_path / "d"
    assert run("init-domain", "support_saas", "--out", str(dom)).exit_code == 0
    text = (dom / file).read_text()
    assert old in text
    text = text.replace(old, new, 1)
    if file == "surfaces.yaml":  # the rest of the manifest contract moves into the list item
        for key in ("accepts_obligations: []", "emits_obligations: [capability_scope]"):
            text = text.replace(f"    {key}\n", f"      {key}\n", 1)
    if file.startswith("suites/"):  # close the flow list opened around suite_metadata
        text = text.replace("false}", "false}]", 1)
    (dom / file).write_text(text)
    if file.startswith("suites/"):
        args = ["run", "--domain-path", str(dom), "--suite-file", str(dom / file)]
        result = run(*args, "--out", str(tmp_path / "r"), "--db", "none")
    else:
        result = run("check", "--domain-path", str(dom), "--principal", "p", "--sql", "select 1")
    assert result.exit_code == 2
    assert result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert result.stdout == ""


def test_principal_id_differing_from_its_key_is_a_warning(tmp_path: Path) -> None:
    """The published format never checks a principal's id (lookups use the key): the check
    runs, and stderr says where the two differ."""
    dom = tmp_path / "d"
    assert run("init-domain", "support_saas", "--out", str(dom)).exit_code == 0
    text = (dom / "policy.yaml").read_text()
    (dom / "policy.yaml").write_text(
        text.replace("beta_analyst: {id: beta_analyst,", "beta_analyst: {id: beta_analyts,")
    )
    result = run("check", "--domain-path", str(dom), "--principal", "acme_analyst", "--ir", IR)
    assert result.exit_code == 0, result.output
    assert (
        "warning: policy.yaml:12: principals.beta_analyst.id: principal key 'beta_analyst' and "
        "id 'beta_analyts' differ (lookups use the key)" in result.stderr
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "policy.yaml",
            "allowed_metrics: [ticket_count, escalated_tickets, net_revenue, average_",
            "allowed_metrics: [ticket_cnt, escalated_tickets, net_revenue, average_",
            "policy.yaml:16: roles.analyst.allowed_metrics[0]: unknown metric 'ticket_cnt' "
            "(did you mean 'ticket_count'?)",
        ),
        (
            "policy.yaml",
            "    allowed_roles: [finance_admin]\n",
            "    allowed_roles: [finance_admn]\n",
            "policy.yaml:61: metrics.gross_revenue.allowed_roles[0]: unknown role 'finance_admn' "
            "(did you mean 'finance_admin'?)",
        ),
        (
            "policy.yaml",
            "region: {column: accounts.region,",
            "region: {column: accounts.regoin,",
            "policy.yaml:76: dimensions.region.column: column 'regoin' is not a column of table "
            "'accounts' in schema.sql (did you mean 'region'?)",
        ),
        (
            "surfaces.yaml",
            "      - preserve_join_grain\n",
            "      - preserve_join_grains\n",
            "surfaces.yaml:28: contracts.compiler.responsibilities[4]: unknown responsibility "
            "'preserve_join_grains' (no rule uses it) (did you mean 'preserve_join_grain'?)",
        ),
        (
            "surfaces.yaml",
            "    emits_obligations: [release_decision]",
            "    emits_obligations: [release_decisions]",
            "surfaces.yaml:42: contracts.release.emits_obligations[0]: unknown obligation "
            "'release_decisions' (did you mean 'release_decision'?)",
        ),
    ],
    ids=[
        "role_metric",
        "metric_role",
        "dimension_column",
        "responsibility",
        "obligation",
    ],
)
def test_broken_references_in_a_domain_copy_name_file_line_and_key(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    dom = tmp_path / "d"
    assert run("init-domain", "support_saas", "--out", str(dom)).exit_code == 0
    text = (dom / file).read_text()
    assert text.count(old) == 1, old
    (dom / file).write_text(text.replace(old, new))
    result = run(
        "check",
        "--domain-path",
        str(dom),
        "--principal",
        "acme_analyst",
        "--ir",
        IR,
        "--db",
        "none",
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {expected}\n"
    assert result.stdout == ""
