"""SARIF 2.1.0 renderer for scan findings (what GitHub code scanning ingests).

Each rule that produced a finding becomes a ``tool.driver.rules`` entry (id, short and full
description, help, ``security-severity``). Each finding becomes a result with a physical
location (the trace line, or the config/policy line), ``partialFingerprints`` from its stable id,
and a ``codeFlows`` thread flow that walks the proof path layer by layer: the record, then each
rule step of the proof with the file:line of the facts it rests on.

>>> from policystrata.results import GateResult, ScanReport
>>> report = ScanReport(version="0", config="policystrata.yaml", domain="d", rules_digest="x",
...                     gate=GateResult(passed=True, exit_code=0))
>>> to_sarif(report)["version"]
'2.1.0'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from policystrata.prooftree import ProofNode
from policystrata.results import SECURITY_SEVERITY, Finding, ScanReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
INFO_URI = "https://policystrata.dev/docs/scanner"


def _artifact_location(file: str) -> dict[str, Any]:
    loc: dict[str, Any] = {"uri": file}
    if not file.startswith(("rules/", "/")):
        loc["uriBaseId"] = "%SRCROOT%"
    return loc


def _physical(file: str, line: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"artifactLocation": _artifact_location(file)}
    if line is not None and line >= 1:
        out["region"] = {"startLine": line}
    return out


def _location(file: str, line: int | None, message: str | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {"physicalLocation": _physical(file, line)}
    if message:
        loc["message"] = {"text": message}
    return loc


def _fact_location(node: ProofNode, sources: dict[str, str]) -> tuple[str, int | None] | None:
    """The file:line a fact leaf came from, mapped onto paths relative to the config."""
    for prov in node.provenance:
        if prov.source in sources and prov.line:
            return sources[prov.source], prov.line
    return None


def _flow_steps(f: Finding, sources: dict[str, str]) -> list[dict[str, Any]]:
    """The proof path as thread-flow locations: the record, then each rule step top-down (the
    localization, the layer's fault, the oracle's reasons), each at the file:line of the fact it
    rests on (trace line, policy.yaml/surfaces.yaml line) or of the rule itself."""
    steps = [
        {
            "location": _location(
                f.location.file, f.location.line, f"record {f.record_id or ''}".strip()
            ),
            "nestingLevel": 0,
            "kinds": ["acquire"],
        }
    ]
    if f.witness is None:
        for i, step in enumerate(f.details.get("trail", [])[1:], start=1):
            steps.append(
                {
                    "location": _location(step["file"], step.get("line"), step.get("message")),
                    "nestingLevel": i,
                    "kinds": ["use"],
                }
            )
        return steps

    def visit(node: ProofNode, depth: int) -> None:
        if node.kind == "fact":
            where = _fact_location(node, sources)
            if where is not None:
                steps.append(
                    {
                        "location": _location(where[0], where[1], f"✓ {node.atom_text()}"),
                        "nestingLevel": depth,
                        "kinds": ["use"],
                    }
                )
            return
        if node.kind != "rule":
            return
        where = None
        for p in node.premises:
            if p.kind == "fact":
                where = _fact_location(p, sources)
                if where:
                    break
        file, line = where or (node.file or f.location.file, node.line)
        text = node.atom_text()
        if node.message:
            text = f"{node.message}  [{node.rule}]"
        steps.append(
            {
                "location": _location(file, line, text),
                "nestingLevel": depth,
                "kinds": ["call"] if depth else ["return"],
            }
        )
        for p in node.premises:
            visit(p, depth + 1)

    if f.witness.proof is not None:
        visit(f.witness.proof, 1)
    return steps


def _rule_entry(f: Finding) -> dict[str, Any]:
    text = f.message.split(" (")[0] if f.message else f.check
    help_text = f"{f.probable_fix}\n\nRe-check: {f.recheck}"
    return {
        "id": f.rule_id,
        "name": f.check,
        "shortDescription": {"text": f"{f.surface}: {f.check}"},
        "fullDescription": {"text": text},
        "help": {"text": help_text, "markdown": f"{f.probable_fix}\n\n```\n{f.recheck}\n```"},
        "helpUri": INFO_URI,
        "defaultConfiguration": {"level": LEVEL[f.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[f.severity],
            "tags": ["security", "policystrata", f.surface, f.witness_class],
            "precision": "very-high" if f.confidence == "high" else "high",
        },
    }


def to_sarif(report: ScanReport, sources: dict[str, str] | None = None) -> dict[str, Any]:
    """The SARIF log. ``sources`` maps provenance names (``policy.yaml``) to paths relative to
    the repository (``domain/policy.yaml``)."""
    log, results = sarif_parts(report, sources)
    log["runs"][0]["results"] = list(results)
    return log


def sarif_parts(
    report: ScanReport, sources: dict[str, str] | None = None
) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The SARIF log without its results (``runs[0].results`` empty), and the results one at
    a time (:func:`policystrata.scan.outputs.write_sarif` writes them so). Reads the findings
    twice: the rules and the files first, then each finding's result."""
    sources = dict(sources or {})
    rules: dict[str, dict[str, Any]] = {}
    index_of: dict[str, int] = {}
    for f in report.findings:
        sources.setdefault(f.location.file, f.location.file)
        if f.rule_id not in rules:
            rules[f.rule_id] = _rule_entry(f)
            index_of[f.rule_id] = len(index_of)

    def results() -> Iterator[dict[str, Any]]:
        for f in report.findings:
            yield _result(f, index_of[f.rule_id], sources)

    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "PolicyStrata",
                        "informationUri": INFO_URI,
                        "version": report.version,
                        "rules": list(rules.values()),
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "scan config dir"}}},
                "results": [],
                "properties": {"gate": report.gate.model_dump(mode="json")},
            }
        ],
    }
    return log, results()


def _result(f: Finding, index: int, sources: dict[str, str]) -> dict[str, Any]:
    fingerprint = hashlib.sha256(f.id.encode()).hexdigest()[:32]
    return {
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "level": LEVEL[f.severity],
        "message": {"text": f"{f.message} — fix: {f.probable_fix}"},
        "locations": [_location(f.location.file, f.location.line)],
        "partialFingerprints": {"policystrataFindingId/v1": fingerprint},
        "codeFlows": [
            {
                "message": {"text": f"proof: {f.surface} ({f.witness_class})"},
                "threadFlows": [{"locations": _flow_steps(f, sources)}],
            }
        ],
        "properties": {
            "findingId": f.id,
            "severity": f.severity,
            "confidence": f.confidence,
            "surface": f.surface,
            "witnessClass": f.witness_class,
            "evidenceLevel": f.evidence_level,
            "gating": f.gating,
            **({"baseline": f.baseline} if f.baseline else {}),
        },
        **({"baselineState": f.baseline} if f.baseline else {}),
    }
