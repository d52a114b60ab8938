"""The scan report: findings, per-record check outcomes, counts and the gate verdict.

``scan.json`` is this model (without the per-check outcomes, which go to ``junit.xml`` and are
counted in ``summary.json``). Every renderer (table, Markdown, SARIF, JUnit) reads it.

>>> r = ScanReport(version="0", config="policystrata.yaml", domain="support_saas",
...                rules_digest="abc", gate=GateResult(passed=True, exit_code=0))
>>> r.gate.exit_code
0
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policystrata.scan.findings import Finding, Location

SCAN_SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
        return self.model_dump(mode="json", exclude_none=True)
