"""Result models: what a scan reports (findings and the scan report), low enough for every
renderer (:mod:`policystrata.report`) to read without the scan that makes them.

A finding wraps a :class:`~policystrata.witness.Witness` (the proof and its supporting facts) and
adds what a CI gate needs: a stable id (rule id + semantic key, never a line number), severity,
confidence, the owning layer, what changed, a probable fix derived from the proof, a minimal
repro record and the exact command that re-checks it (built by :mod:`policystrata.scan.findings`).
``scan.json`` is :class:`ScanReport` (without the per-check outcomes, which go to ``junit.xml``
and are counted in ``summary.json``).

>>> stable_id("compiler.tenant_scope_missing", "traces.jsonl", "t1", "accounts")
'compiler.tenant_scope_missing/traces.jsonl#t1/accounts'
>>> r = ScanReport(version="0", config="policystrata.yaml", domain="support_saas",
...                rules_digest="abc", gate=GateResult(passed=True, exit_code=0))
>>> r.gate.exit_code
0
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policystrata.witness import Confidence, Severity, Witness, witness_id


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


FindingKind = Literal["witness", "record_error"]

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}
#: GitHub code scanning reads ``security-severity`` (0.1-10) to bucket alerts.
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}


class Location(_Model):
    """Where the finding points: a trace file line, or a config/policy line."""

    file: str
    line: int | None = None


class Finding(_Model):
    """One finding of a scan (see the module docstring)."""

    id: str = Field(description="Stable id: rule id + file#record + semantic key.")
    kind: FindingKind
    rule_id: str
    check: str
    key: Any = None
    message: str
    severity: Severity
    confidence: Confidence
    surface: str = Field(description="The layer whose responsibility failed.")
    owner: str = Field(description="Who fixes it: the layer that owns the responsibility.")
    witness_class: str
    evidence_level: Literal["static", "deterministic_fixture", "real_db"] = "static"
    location: Location
    record_id: str | None = None
    principal: str | None = None
    regression_case: str | None = None
    containment_layer: str | None = None
    what_changed: str
    probable_fix: str
    repro: dict[str, Any] | None = None
    recheck: str
    witness: Witness | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    gating: bool = Field(default=True, description="Counts against the gate (else a warning).")
    advisory: bool | None = Field(
        default=None,
        description="Never counts against the gate, whatever its severity: its rule is "
        "annotated `@gate never` (a fuzz survivor measures the detector, not the stack).",
    )
    baseline: Literal["new", "unchanged"] | None = None
    # -- the published finding keys (COMPAT.md section 6), beside ours (see publish()) --
    title: str | None = None
    published_severity: Literal["info", "warning", "high", "critical"] | None = Field(
        default=None,
        description="severity in the published scale (low->info, medium->warning, "
        "high, critical); `severity` keeps ours",
    )
    reasons: list[str] = Field(default_factory=list)
    semantic_ir: dict[str, Any] | None = None
    sql: str | None = None
    source: str | None = None
    mutation: str | None = None
    mutant_status: str | None = None
    reproducible_command: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    witness_path: str | None = None
    minimal_repro_trace: dict[str, Any] | None = None
    ci_gate_command: str | None = None


#: Our severities in the published scale.
PUBLISHED_SEVERITY = {"low": "info", "medium": "warning", "high": "high", "critical": "critical"}


def stable_id(rule_id: str, file: str, record: str, key: Any) -> str:
    """Rule id + the record (file#id) + the semantic key; no line numbers."""
    return witness_id(rule_id, f"{file}#{record}", key)


def content_key(text: str) -> str:
    """A short content hash, for records that have no id (a malformed line)."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:12]


def dumps_finding(f: Finding) -> str:
    """One finding as a compact JSON line (findings.jsonl)."""
    return json.dumps(f.model_dump(mode="json", exclude_none=True), sort_keys=True)


SCAN_SCHEMA_VERSION = 1


class CheckOutcome(_Model):
    """One record x one check (a JUnit testcase)."""

    layer: str
    check: str
    record: str
    location: Location | None = None
    status: Literal["passed", "failed", "skipped"]
    finding_ids: list[str] = Field(default_factory=list)
    message: str | None = None


class GateResult(_Model):
    """The gate's verdict and the thresholds it applied."""

    passed: bool
    exit_code: int
    gating: int = 0
    warnings: int = 0
    thresholds: dict[str, Any] = Field(default_factory=dict)


class BaselineDiff(_Model):
    """New / unchanged / fixed finding ids against ``--baseline PREVIOUS_SCAN.json``."""

    file: str
    new: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    fixed: list[str] = Field(default_factory=list)


class ScanReport(_Model):
    """What ``strata scan`` produces (``scan.json``)."""

    schema_version: int = SCAN_SCHEMA_VERSION
    tool: str = "policystrata"
    version: str
    config: str
    domain: str
    rules_digest: str
    findings: list[Finding] = Field(default_factory=list)
    records: dict[str, int] = Field(default_factory=dict)
    database: dict[str, Any] = Field(default_factory=dict)
    baseline: BaselineDiff | None = None
    gate: GateResult
    inputs: dict[str, bool] = Field(default_factory=dict)  # which gate inputs the config gives
    fuzz: dict[str, Any] = Field(default_factory=dict)  # the fuzz settings and whether it ran
    checks: list[CheckOutcome] = Field(default_factory=list, exclude=True)
    notes: list[str] = Field(default_factory=list, exclude=True)  # printed on stderr

    def dump(self) -> dict[str, Any]:
        """The report as scan.json's data. A scan's report keeps its findings and its fuzz
        records on disk (:mod:`policystrata.scan.store`): they are read in here (the files
        are written from them one at a time instead, :mod:`policystrata.scan.outputs`)."""
        records = self.fuzz.get("records")
        if isinstance(self.findings, list) and (records is None or isinstance(records, list)):
            return self.model_dump(mode="json", exclude_none=True)
        fuzz = self.fuzz if records is None else {**self.fuzz, "records": list(records)}
        update = {"findings": list(self.findings), "fuzz": fuzz}
        return self.model_copy(update=update).model_dump(mode="json", exclude_none=True)
