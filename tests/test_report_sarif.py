"""scan.sarif: valid SARIF 2.1.0 (vendored schema), a location and a proof code flow per result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from policystrata.cli import main

SCHEMA = Path(__file__).parent / "schemas" / "sarif-2.1.0.json"
FIXTURES = Path(__file__).parent / "fixtures" / "scan"


def _scan(tmp_path: Path, name: str, *extra: str) -> dict:
    shutil.copytree(FIXTURES / name, tmp_path / name)
    out = tmp_path / name / "out"
    CliRunner().invoke(
        main,
        ["scan", "--config", str(tmp_path / name / "policystrata.yaml"), "--out", str(out), *extra],
    )
    return json.loads((out / "scan.sarif").read_text())


def _validate(doc: dict) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_sarif_validates_and_every_result_has_location_and_code_flow(tmp_path: Path) -> None:
    doc = _scan(tmp_path, "mixed")
    _validate(doc)
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert len(run["results"]) == 4
    for result in run["results"]:
        rule = rules[result["ruleId"]]
        assert rule["fullDescription"]["text"] and rule["help"]["text"]
        assert float(rule["properties"]["security-severity"]) > 0
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "traces.jsonl"
        assert loc["region"]["startLine"] >= 1
        flow = result["codeFlows"][0]["threadFlows"][0]["locations"]
        assert flow and all("physicalLocation" in step["location"] for step in flow)
        assert result["partialFingerprints"]["policystrataFindingId/v1"]


def test_code_flow_walks_the_proof_layer_by_layer(tmp_path: Path) -> None:
    doc = _scan(tmp_path, "mixed")
    result = next(
        r for r in doc["runs"][0]["results"] if "unknown_principal" in r["message"]["text"]
    )
    texts = [
        s["location"]["message"]["text"]
        for s in result["codeFlows"][0]["threadFlows"][0]["locations"]
    ]
    assert texts[0].startswith("record who_001")
    assert any("[localize.first_failing_layer]" in t for t in texts)
    assert any("[validator.unauthorized_query_allowed]" in t for t in texts)
    assert any("[oracle.unknown_principal]" in t for t in texts)
    uris = {
        s["location"]["physicalLocation"]["artifactLocation"]["uri"]
        for s in result["codeFlows"][0]["threadFlows"][0]["locations"]
    }
    assert "traces.jsonl" in uris and "rules/validator.dl" in uris


def test_invalid_sarif_is_rejected_by_the_vendored_schema(tmp_path: Path) -> None:
    doc = _scan(tmp_path, "mixed")
    doc["runs"][0]["results"][0]["level"] = "fatal"
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(doc))


def test_code_flow_of_rejected_sql_reaches_the_parser_finding_at_its_trace_line(
    tmp_path: Path,
) -> None:
    doc = _scan(tmp_path, "mixed")
    result = next(r for r in doc["runs"][0]["results"] if "unparseable_sql" in r["message"]["text"])
    steps = result["codeFlows"][0]["threadFlows"][0]["locations"]
    leaf = next(s for s in steps if "sql_finding(" in s["location"]["message"]["text"])
    where = leaf["location"]["physicalLocation"]
    assert where["artifactLocation"]["uri"] == "traces.jsonl"
    assert where["region"]["startLine"] == 3
    assert "line 1, column 14" in result["message"]["text"]
