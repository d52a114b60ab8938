"""The Node/TypeScript recorder (packages/node): its own tests (`npm test`: tsc, then node's test
runner), and the round trip — a small Node program writes records with the recorder, and
`strata scan` reads them: the record that dropped its tenant filter is a finding, the
parameterized Drizzle query is clean, tool and session records are skipped, and a record whose
principal the default redaction hashed is reported as unreadable, not as clean.

Needs node and npm (.ci/run installs them); without them the tests skip, except under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "packages" / "node"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def node_package() -> dict[str, str]:
    """npm ci + tsc in packages/node; the node and npm executables."""
    tools = {name: shutil.which(name) for name in ("node", "npm")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install nodejs npm)"
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    npm = tools["npm"]
    assert npm is not None
    for cmd in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        proc = _run(cmd, cwd=PACKAGE)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return {k: v for k, v in tools.items() if v is not None}


def test_npm_test(node_package: dict[str, str]) -> None:
    """The package's own tests, through node's test runner."""
    proc = _run([node_package["npm"], "test"], cwd=PACKAGE)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    passed = re.search(r"^# pass (\d+)$", proc.stdout, flags=re.M)
    failed = re.search(r"^# fail (\d+)$", proc.stdout, flags=re.M)
    assert passed and failed, out
    assert int(failed[1]) == 0, out
    assert int(passed[1]) >= 20, out


RECORD_PROGRAM = r"""
import { readFileSync } from "node:fs";
import { createPolicyStrataRecorder } from "@policystrata/node";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const context = {
  principal: spec.principal,
  tenantIds: spec.tenantIds,
  semanticIr: spec.semanticIr,
  releaseAllowed: true,
};

// Configured for scanning: the principal and tenant ids kept, parameters recorded.
const recorder = createPolicyStrataRecorder({
  service: "support-api",
  environment: "test",
  out: spec.out,
  redaction: { safeFields: ["principal", "tenant_ids"], includeParams: true },
  tenancy: { tenantColumns: ["tenant_id"], tenantTables: spec.tenantTables },
});

// A Drizzle query, as .toSQL() gives it: placeholders and params.
const drizzleQuery = { toSQL: () => ({ sql: spec.cleanSql, params: spec.cleanParams }) };
recorder.captureQuery(drizzleQuery, { ...context, id: "clean_drizzle_query" });

// The same request, compiled without its tenant filter.
recorder.recordQuery({ ...context, id: "dropped_tenant_filter", sql: spec.badSql });

// A tool call and an agent session: no SQL, skipped by the scan.
const lookup = recorder.wrapTool("accounts.lookup", async (args) => [{ region: "emea" }], {
  kind: "read",
  scope: "accounts",
  principal: spec.principal,
});
await lookup({ tenantId: spec.tenantIds[0], region: "emea" });
recorder.recordSession({ sessionId: "session-1", agentSession: { turns: 2 } });

// The default redaction hashes the principal: the scan cannot check this record.
const hashing = createPolicyStrataRecorder({ service: "support-api", out: spec.out });
hashing.recordQuery({ ...context, id: "hashed_principal", sql: spec.literalSql });
"""


def _scaffold(tmp_path: Path) -> Path:
    scan_dir = tmp_path / "scan"
    cmd = [sys.executable, "-m", "policystrata", "init-scan", "--out", str(scan_dir)]
    proc = _run(cmd, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return scan_dir


def _spec(scan_dir: Path, out: Path) -> dict[str, Any]:
    """The scaffold's first (clean) trace, as a Drizzle query with placeholders and as the
    same query without its tenant predicates."""
    first = json.loads((scan_dir / "traces.jsonl").read_text(encoding="utf-8").splitlines()[0])
    tenants = first["tenant_ids"]
    assert len(tenants) == 1
    literal = f"'{tenants[0]}'"
    sql = first["sql"]
    params = [tenants[0]] * sql.count(literal)
    assert params, sql
    placeholders = iter(range(1, len(params) + 1))
    clean = re.sub(re.escape(literal), lambda _m: f"${next(placeholders)}", sql)
    bad = re.sub(rf"\w+\.tenant_id = {re.escape(literal)} and ", "", sql)
    assert bad != sql and "tenant_id" not in bad.split(" where ", 1)[1], bad
    return {
        "out": str(out),
        "principal": first["principal"],
        "tenantIds": tenants,
        "semanticIr": first["semantic_ir"],
        "cleanSql": clean,
        "cleanParams": params,
        "badSql": bad,
        "literalSql": sql,
        "tenantTables": ["accounts"],
    }


def test_recorded_traces_scan_with_the_expected_findings(
    node_package: dict[str, str], tmp_path: Path
) -> None:
    scan_dir = _scaffold(tmp_path)
    traces = scan_dir / "node-traces.jsonl"
    spec = _spec(scan_dir, traces)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")

    app = tmp_path / "app"
    (app / "node_modules" / "@policystrata").mkdir(parents=True)
    (app / "node_modules" / "@policystrata" / "node").symlink_to(PACKAGE)
    (app / "package.json").write_text('{"type": "module", "private": true}\n')
    (app / "record.mjs").write_text(RECORD_PROGRAM, encoding="utf-8")
    proc = _run([node_package["node"], "record.mjs", str(spec_file)], cwd=app, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    records = [json.loads(line) for line in traces.read_text(encoding="utf-8").splitlines()]
    assert [r["record_type"] for r in records] == [
        "sql_trace",
        "sql_trace",
        "tool_execution",
        "agent_session",
        "sql_trace",
    ]
    for r in records:
        assert r["version"] == "policystrata.node.trace.v1"
        assert r["source"] == "policystrata.node"
        assert r["service"] == "support-api"
    drizzle = records[0]
    assert drizzle["params"] == spec["cleanParams"]
    assert "$1" in drizzle["sql"]
    assert "accounts.tenant_id" in drizzle["query"]["tenant_predicates"]
    assert records[1]["query"]["warnings"][0]["code"] == "missing_tenant_predicate"
    assert records[2]["tenant_ids"] == spec["tenantIds"]
    hashed = records[4]
    assert "principal" not in hashed and "tenant_ids" not in hashed
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{24}", hashed["redacted_principal"])

    config_path = scan_dir / "policystrata.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["sql_traces"] = {"files": [traces.name], "required": True}
    node_config = scan_dir / "node.yaml"
    node_config.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "policystrata", "scan", "--config", str(node_config)]
    scan = _run([*cmd, "--out", str(out), "--db", "none"], cwd=tmp_path)
    assert scan.returncode == 1, scan.stdout + scan.stderr

    findings = [
        json.loads(line)
        for line in (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    # the fuzz stage's survivors of the clean records are low and never gate (tests/test_fuzz.py)
    assert all(f["advisory"] for f in findings if f.get("mutation") is not None)
    findings = [f for f in findings if f.get("mutation") is None]
    by_record: dict[str, set[str]] = {}
    for f in findings:
        record = re.search(r"#([\w.-]+)", f["id"])
        line = re.search(r"node-traces\.jsonl:(\d+)", json.dumps(f))
        key = record[1] if record else f"line {line[1] if line else '?'}"
        by_record.setdefault(key, set()).add(f["id"].split("/")[0])
    assert "compiler.tenant_scope_missing" in by_record.pop("dropped_tenant_filter"), by_record
    assert "clean_drizzle_query" not in by_record, by_record
    # The record whose principal was hashed could not be checked, and says so.
    assert by_record == {"hashed_principal": {"input.invalid_trace_record"}}, by_record
    (unreadable,) = [f for f in findings if "hashed_principal" in f["id"]]
    assert "principal" in json.dumps(unreadable), unreadable
    result = json.loads((out / "scan.json").read_text(encoding="utf-8"))
    summary_line = scan.stdout + scan.stderr
    assert "2 skipped" in summary_line, summary_line
    assert result["gate"]["passed"] is False
