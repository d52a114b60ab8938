"""`strata doctor`: what a scan config wires up and what is missing, on a scaffolded config
(`strata init-scan`) with every kind of item present, missing, partial and invalid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from policystrata.cli import main
from policystrata.scan.config import DOCTOR_INPUTS, load_scan_config
from policystrata.scan.doctor import STATUSES, run_doctor


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def scaffold(tmp_path: Path) -> Path:
    out = tmp_path / "scan"
    assert run("init-scan", "--out", str(out)).exit_code == 0
    return out


def doctor_json(config: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run("doctor", "--config", str(config), "--format", "json", *extra)
    return result.exit_code, json.loads(result.stdout)


def items(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in report["items"]}


def test_the_scaffold_is_wired(scaffold: Path) -> None:
    code, report = doctor_json(scaffold / "policystrata.yaml", "--strict")
    assert code == 0, report["strict_failures"]
    got = items(report)
    for name in (
        "config",
        "rules",
        "domain",
        "domain: policy.yaml",
        "domain: surfaces.yaml",
        "domain: schema.sql",
        "domain: seed.sql",
        "sql_traces",
        "sql_traces: traces.jsonl",
        "output",
        "sarif",
        "junit",
        "gate",
    ):
        assert got[name]["status"] == "ok", got[name]
    assert got["domain"]["required"] and got["domain: policy.yaml"]["required"]
    schema = (scaffold / "domain" / "schema.sql").read_text().upper()
    enabled = schema.count("ENABLE ROW LEVEL SECURITY")
    assert enabled > 0
    assert got["domain: schema.sql"]["detail"].endswith(f"row level security on {enabled}")
    # the record counts come from the scan's own reader
    lines = (scaffold / "traces.jsonl").read_text().splitlines()
    skipped = sum('"agent_session"' in line for line in lines)
    assert got["sql_traces: traces.jsonl"]["detail"] == (
        f"{len(lines) - skipped} record(s), 0 unreadable, {skipped} skipped"
    )
    for key in (*DOCTOR_INPUTS, "dbt", "database", "tenancy", "gate.required_inputs"):
        assert got[key]["status"] == "not_configured", got[key]
    assert report["strict_failures"] == []
    assert set(report["counts"]) == set(STATUSES)
    assert sum(report["counts"].values()) == len(report["items"])


def broken(scaffold: Path) -> Path:
    """The scaffold with one item of every kind present, missing, partial or invalid."""
    (scaffold / "docs").mkdir()
    (scaffold / "docs" / "policy.md").write_text("# who may see what\n")
    (scaffold / "prompts.json").write_text('{"system": "you are"')  # invalid JSON
    (scaffold / "events.jsonl").write_text('{"a": 1}\n{"b": 2}\n')
    (scaffold / "manifest.yaml").write_text("tools: [a, b\n")  # invalid YAML
    with (scaffold / "traces.jsonl").open("a") as f:
        f.write("{not json\n")
    (scaffold / "models.yml").write_text(
        "metrics:\n  - name: orphan_metric\n    type: simple\n"
        "    type_params: {measure: no_such_measure}\n"
    )
    (scaffold / "policystrata.yaml").write_text(
        "version: 1\n"
        "domain: support_saas\n"
        "domain_path: domain\n"
        "sql_traces: {files: [traces.jsonl, gone.jsonl]}\n"  # 5
        "dbt: {files: [models.yml]}\n"  # 6
        "policy_docs: {files: [docs/policy.md, docs/gone.md], required: true}\n"  # 7
        "prompt_manifests: {files: [prompts.json]}\n"  # 8
        "source_maps: {files: [], required: true}\n"  # 9
        "runtime_manifests: {files: [manifest.yaml], required: true}\n"  # 10
        "runtime_events: {files: [events.jsonl]}\n"  # 11
        "tenancy:\n"
        "  tenant_columns: [accounts.tenant_id, nosuch.tenant_id]\n"
        "database:\n"
        "  admin_url: postgresql://strata:s3cret@127.0.0.1:9/none\n"
        "  seed: no_seed.sql\n"
        "gate: {required_inputs: [sql_traces, state_assertions]}\n"
    )
    (scaffold / "domain" / "seed.sql").unlink()
    return scaffold / "policystrata.yaml"


def test_every_kind_of_item(scaffold: Path) -> None:
    code, report = doctor_json(broken(scaffold))
    assert code == 0  # without --strict: a report, not a verdict
    got = items(report)

    def status(name: str) -> str:
        return str(got[name]["status"])

    # traces: one unreadable record (a finding in the scan), one listed file absent
    assert status("sql_traces") == "partial" and got["sql_traces"]["required"]
    assert status("sql_traces: traces.jsonl") == "partial"
    assert "unreadable (traces.jsonl:" in got["sql_traces: traces.jsonl"]["detail"]
    assert status("sql_traces: gone.jsonl") == "missing"
    assert got["sql_traces: gone.jsonl"]["where"] == "policystrata.yaml:4"
    # dbt: read with dbt-semantic-interfaces, which rejects a metric over no measure
    assert status("dbt") == "invalid" and status("dbt: models.yml") == "invalid"
    assert got["dbt"]["problems"][0].startswith("models.yml:")
    # the doctor-only inputs
    assert status("policy_docs") == "partial" and got["policy_docs"]["required"]
    assert status("policy_docs: docs/policy.md") == "ok"
    assert status("policy_docs: docs/gone.md") == "missing"
    assert status("prompt_manifests: prompts.json") == "invalid"
    assert "not valid JSON" in got["prompt_manifests: prompts.json"]["detail"]
    assert status("source_maps") == "missing" and got["source_maps"]["required"]
    assert status("runtime_manifests: manifest.yaml") == "invalid"
    assert "manifest.yaml:" in got["runtime_manifests: manifest.yaml"]["detail"]
    assert status("runtime_events") == "ok" and not got["runtime_events"]["required"]
    # database: the DSN does not answer (and its password is never shown)
    assert status("database.admin_url") == "invalid"
    assert "127.0.0.1:9" in got["database.admin_url"]["detail"]
    assert "s3cret" not in json.dumps(report)
    assert status("database.seed") == "missing"
    assert status("domain: seed.sql") == "missing" and not got["domain: seed.sql"]["required"]
    # the gate requires an input the config does not give
    assert status("gate.required_inputs: sql_traces") == "ok"
    missing = got["gate.required_inputs: state_assertions"]
    assert missing["status"] == "missing" and missing["required"]
    assert "missing_required_state_assertions" in missing["detail"]
    # tenancy: one column resolves, one names a table the domain does not have
    assert status("tenancy") == "partial"
    assert any("nosuch" in p for p in got["tenancy"]["problems"])
    # --strict: exit 1 naming the required items that are not ok
    code, report = doctor_json(scaffold / "policystrata.yaml", "--strict")
    assert code == 1
    assert set(report["strict_failures"]) >= {
        "sql_traces",
        "policy_docs",
        "source_maps",
        "runtime_manifests",
        "gate.required_inputs: state_assertions",
        "tenancy",
    }
    assert "runtime_events" not in report["strict_failures"]  # not required
    assert "chdb" not in report["strict_failures"]


def test_a_domain_that_does_not_load_is_an_item_with_file_and_line(scaffold: Path) -> None:
    policy = scaffold / "domain" / "policy.yaml"
    policy.write_text(policy.read_text().replace("allowed_metrics:", "allowed_metricz:", 1))
    code, report = doctor_json(scaffold / "policystrata.yaml")
    assert code == 0
    got = items(report)
    assert got["domain"]["status"] == "invalid"
    assert got["domain: policy.yaml"]["status"] == "invalid"
    assert got["domain: policy.yaml"]["problems"][0].startswith("policy.yaml:")
    assert "allowed_metricz" in got["domain"]["detail"]
    assert got["tenancy"]["status"] == "not_configured"
    code, _ = doctor_json(scaffold / "policystrata.yaml", "--strict")
    assert code == 1


def test_extra_rules_that_do_not_load(scaffold: Path) -> None:
    (scaffold / "extra.dl").write_text("this is not a rule\n")
    cfg = scaffold / "policystrata.yaml"
    cfg.write_text(cfg.read_text() + "rules: [extra.dl]\n")
    code, report = doctor_json(cfg, "--strict")
    assert code == 1
    rules = items(report)["rules"]
    assert rules["status"] == "invalid" and "extra.dl:1:" in rules["problems"][0]
    assert items(report)["domain"]["status"] == "ok"  # still checked, with the shipped rules


def test_usage_errors_exit_2(scaffold: Path, tmp_path: Path) -> None:
    result = run("doctor", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "scan config not found" in result.stderr
    bad = scaffold / "policystrata.yaml"
    bad.write_text("version: 1\ndomain: support_saas\nsql_trace: {}\n")
    result = run("doctor", "--config", str(bad))
    assert result.exit_code == 2
    assert "policystrata.yaml:3: sql_trace: unknown key" in result.stderr
    assert run("doctor", "--config", str(bad), "--format", "yaml").exit_code == 2


def test_outputs_are_deterministic_and_go_where_asked(scaffold: Path) -> None:
    cfg = broken(scaffold)
    a, b = scaffold / "a.json", scaffold / "b.json"
    assert run("doctor", "--config", str(cfg), "--format", "json", "--out", str(a)).stdout == ""
    run("doctor", "--config", str(cfg), "--format", "json", "--out", str(b))
    assert a.read_bytes() == b.read_bytes()
    md = run("doctor", "--config", str(cfg), "--format", "markdown").stdout
    assert md.startswith("## PolicyStrata doctor: `policystrata.yaml`")
    assert "| partial | sql_traces | yes |" in md
    table = run("doctor", "--config", str(cfg)).stdout
    assert "sql_traces: gone.jsonl" in table and "--strict fails on" in table
    assert str(scaffold) not in a.read_text()  # no absolute paths of the user's tree


def test_the_api_without_contacting_servers(scaffold: Path) -> None:
    report = run_doctor(load_scan_config(broken(scaffold)), connect=False)
    dsn = next(i for i in report.items if i.name == "database.admin_url")
    assert dsn.status == "ok" and "not contacted" in dsn.detail
