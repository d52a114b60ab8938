"""Findings: what ``strata scan`` reports, one per layer fault it can prove (or per bad record).

A finding wraps a :class:`~policystrata.witness.Witness` (the proof and its supporting facts) and
adds what a CI gate needs: a stable id (rule id + semantic key, never a line number), severity,
confidence, the owning layer, what changed, a probable fix derived from the proof, a minimal
repro record and the exact command that re-checks it.

Which layer faults become findings: the *localized* violation of each record (the first layer
whose responsibility failed), plus a finding for every failed *defence* layer (``database``,
``release``): their job is to stop upstream faults, so their failure is a separate regression
with a separate owner. Other downstream faults (e.g. a compiler fault under a principal the
validator should have refused) are listed on the localized finding as ``also_failed``.

>>> severity_of("unsafe_release", "released_denied_result", contained=False)
'high'
>>> severity_of("lowering_violation", "tenant_scope_missing", contained=True)
'medium'
>>> stable_id("compiler.tenant_scope_missing", "traces.jsonl", "t1", "accounts")
'compiler.tenant_scope_missing/traces.jsonl#t1/accounts'
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policystrata.witness import Witness, witness_id

Severity = Literal["low", "medium", "high", "critical"]
Confidence = Literal["low", "medium", "high"]
FindingKind = Literal["witness", "record_error", "real_db", "database_check", "integration"]

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
CONFIDENCE_RANK = {"low": 0, "medium": 1, "high": 2}
#: GitHub code scanning reads ``security-severity`` (0.1-10) to bucket alerts.
SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
#: Layers whose job is to contain upstream faults: their own faults are separate findings.
DEFENCE_LAYERS = ("database", "release")
TENANT_CHECKS = ("tenant_scope_missing", "wrong_tenant_column", "cross_tenant_literal")
CROSS_TENANT_CHECKS = ("cross_tenant_binding", "foreign_tenant_obligation", "cross_tenant_rows")
#: A proof step that infers the validator's decision from the mere presence of SQL.
INFERRED_DECISION_RULES = ("validator.validator_allowed.2",)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    baseline: Literal["new", "unchanged"] | None = None


def stable_id(rule_id: str, file: str, record: str, key: Any) -> str:
    """Rule id + the record (file#id) + the semantic key; no line numbers."""
    return witness_id(rule_id, f"{file}#{record}", key)


def content_key(text: str) -> str:
    """A short content hash, for records that have no id (a malformed line)."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:12]


def severity_of(witness_class: str, check: str, *, contained: bool) -> Severity:
    """Severity from the witness class, the check and whether a later layer contained it."""
    if check == "not_read_only":
        return "high"
    if check in ("unparseable_sql", "unanalysable_sql"):
        return "medium"
    if check in CROSS_TENANT_CHECKS or check in TENANT_CHECKS:
        return "medium" if contained else "critical"
    if witness_class == "unsafe_release":
        return "high"
    if witness_class == "over_permissive":
        return "medium" if contained else "high"
    if witness_class == "lowering_violation":
        return "medium" if contained else "high"
    if witness_class == "semantic_drift":
        return "medium"
    return "low"


def confidence_of(witness: Witness) -> Confidence:
    """``high`` when every step is observed; ``medium`` when the localization rests on an
    inferred layer decision (a trace records no validator decision: SQL was produced, so the
    validator is taken to have allowed the request); never above the witness's own confidence
    (the lowest ``@confidence`` of its proof's rules, e.g. a fan-out through a keyless table)."""

    def rules(node: dict[str, Any]) -> set[str]:
        out = {str(node.get("rule"))} if node.get("kind") == "rule" else set()
        for p in node.get("premises", []):
            out |= rules(p)
        return out

    inferred: Confidence = (
        "medium" if rules(witness.proof) & set(INFERRED_DECISION_RULES) else "high"
    )
    order = ("low", "medium", "high")
    return min(inferred, witness.confidence, key=order.index)


# ------------------------------------------------------------------------------ proof reading


def _fault_node(proof: dict[str, Any]) -> dict[str, Any]:
    if proof.get("atom", {}).get("pred") == "layer_fault":
        return proof
    for p in proof.get("premises", []):
        if p.get("kind") == "rule" and p.get("atom", {}).get("pred") == "layer_fault":
            return p
    return proof


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for p in node.get("premises", []):
        out.extend(_walk(p))
    return out


def record_leaves(witness: Witness, trace_file: str | None) -> list[dict[str, Any]]:
    """Fact leaves of the fault step that came from the record (its trace line or its SQL)."""
    out = []
    for node in _walk(_fault_node(witness.proof)):
        if node.get("kind") != "fact":
            continue
        sources = {p.get("source") for p in node.get("provenance", [])}
        if trace_file in sources or "sql" in sources or "ir" in sources:
            out.append(node)
    return out


def absent_leaves(witness: Witness) -> list[dict[str, Any]]:
    """Closed-world leaves of the fault step: what is missing for the layer to be right."""
    return [n for n in _walk(_fault_node(witness.proof)) if n.get("kind") == "absent"]


def what_changed(witness: Witness, trace_file: str | None, where: str) -> str:
    """The layer's artifact that breaks its contract, in the proof's own facts."""
    seen = [n["text"] for n in record_leaves(witness, trace_file)]
    missing = [n["text"].lstrip("!") for n in absent_leaves(witness)]
    text = f"{witness.localized_surface}: {witness.message} (observed at {where})"
    if seen:
        text += "; the record yields " + ", ".join(dict.fromkeys(seen[:4]))
    if missing:
        text += "; absent: " + ", ".join(dict.fromkeys(missing[:3]))
    return text


def probable_fix(
    witness: Witness,
    *,
    where: str,
    built_at: str | None,
    tenant_columns: dict[str, str],
    trace_file: str | None,
) -> str:
    """A fix read off the proof: the absent leaf to add, or the record's fact to remove.

    Tenant-scope faults name the exact predicate to add; the rule's ``@fix`` template fills in
    the rest.
    """
    site = f"the query built at {built_at} ({where})" if built_at else f"the query at {where}"
    check, key = witness.check, witness.key
    if check in ("tenant_scope_missing", "wrong_tenant_column") and isinstance(key, str):
        col = tenant_columns.get(key, "tenant_id")
        return f"add `{key}.{col} = :tenant` to {site}" + (
            " (and drop the filter on the legacy column)" if check == "wrong_tenant_column" else ""
        )
    base = witness.fix or witness.message
    # Only the record's own artifacts are candidates: adding a policy fact (a role grant) to make
    # the app's behaviour legal is not a fix. Derived bookkeeping atoms are skipped too.
    case_id = witness.case.id
    missing = [
        n["text"].lstrip("!")
        for n in absent_leaves(witness)
        if (n.get("atom", {}).get("args") or [None])[0] == case_id
        and n.get("atom", {}).get("pred") not in ("fault_before",)
    ]
    present = [n["text"] for n in record_leaves(witness, trace_file)]
    if witness.localized_surface == "release":
        hint = next((p for p in present if p.startswith("release_decision")), None)
        tail = f"; remove `{hint}` (the record released it)" if hint else ""
        return f"{base} at {where}{tail}"
    if missing:
        return f"{base} ({site}; per the proof, make `{missing[0]}` hold)"
    if present:
        return f"{base} ({site}; per the proof, remove `{present[0]}`)"
    return f"{base} ({site})"


def repro_record(witness: Witness, case_meta: dict[str, Any]) -> dict[str, Any]:
    """The smallest trace record that reproduces the finding: the required fields, plus the
    optional ones whose facts the proof uses."""
    case = witness.case
    used = {n.get("atom", {}).get("pred") for n in _walk(witness.proof) if n.get("kind") == "fact"}
    record: dict[str, Any] = {"id": case.id, "principal": case.principal}
    if case.ir is not None and any(p and p.startswith("ir_") for p in used):
        record["semantic_ir"] = case.ir
    if case.tenant_ids is not None and "case_bound_tenant" in used:
        record["tenant_ids"] = case.tenant_ids
    if case.release_decision is not None and "release_decision" in used:
        record["release_allowed"] = case.release_decision == "release"
    record["sql"] = case.sql
    if "regression_case" in case_meta:
        record["regression_case"] = case_meta["regression_case"]
    return record


def recheck_command(domain_args: str, repro: dict[str, Any], rule_args: str = "") -> str:
    """The exact ``strata check`` command that re-judges the repro record (run it in the
    directory of the scan config)."""
    parts = ["strata", "check", *shlex.split(domain_args), *shlex.split(rule_args)]
    parts += ["--case-id", str(repro["id"]), "--principal", str(repro["principal"])]
    if "semantic_ir" in repro:
        parts += ["--ir", str(repro["semantic_ir"])]
    if repro.get("sql") is not None:
        parts += ["--sql", str(repro["sql"])]
    for t in repro.get("tenant_ids") or []:
        parts += ["--tenant", t]
    if "release_allowed" in repro:
        parts.append("--release" if repro["release_allowed"] else "--withhold")
    return shlex.join(parts)


def dumps_finding(f: Finding) -> str:
    """One finding as a compact JSON line (findings.jsonl)."""
    return json.dumps(f.model_dump(mode="json", exclude_none=True), sort_keys=True)
