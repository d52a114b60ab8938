"""The witness model: what a violation is, where it was localized, and its proof.

Every renderer (terminal tree, JSON, Markdown, SARIF, JUnit) reads this one model. The JSON form
is a public contract: ``strata schema witness`` prints its JSON Schema, and ``strata explain``
re-renders a saved witness.

>>> w = Witness(id="w1", case=CaseInfo(id="c1", principal="acme_analyst"),
...             witness_class="lowering_violation", localized_surface="compiler",
...             check="tenant_scope_missing", key="accounts", rule_id="compiler.tenant_scope",
...             message="query reads accounts without a tenant filter",
...             atom='violation("c1", "compiler", ...)')
>>> Witness.model_validate_json(w.model_dump_json()) == w
True
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from policystrata.layers import Layer
from policystrata.prooftree import PROOF_NODE_SCHEMA, ProofNode

WITNESS_CLASSES = (
    "clean",
    "over_permissive",
    "over_restrictive",
    "lowering_violation",
    "semantic_drift",
    "unsafe_release",
)
EVIDENCE_LEVELS = ("static", "deterministic_fixture", "real_db")
SEVERITIES = ("low", "medium", "high", "critical")
CONFIDENCES = ("low", "medium", "high")

WitnessClass = Literal[
    "clean",
    "over_permissive",
    "over_restrictive",
    "lowering_violation",
    "semantic_drift",
    "unsafe_release",
]
Severity = Literal["low", "medium", "high", "critical"]
Confidence = Literal["low", "medium", "high"]

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _proof_in(value: Any) -> ProofNode | None:
    if value is None or isinstance(value, ProofNode):
        return value
    if isinstance(value, dict):
        if not value:
            return None
        try:
            return ProofNode.from_json(value)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a proof node: missing {exc}") from None
    raise ValueError("a proof is a JSON object (see `strata schema witness`)")


def _proof_out(node: ProofNode | None) -> dict[str, Any] | None:
    return None if node is None else node.to_json()


#: The typed proof of a witness: a :class:`~policystrata.prooftree.ProofNode` in Python, its
#: stable JSON form in files.
Proof = Annotated[
    ProofNode | None,
    PlainValidator(_proof_in),
    PlainSerializer(_proof_out),
    WithJsonSchema({"type": ["object", "null"], "title": "Proof"}),  # -> ProofNode, below
]


class SourceRef(_Model):
    """Where a case came from: a trace file line, a suite task, or the command line."""

    file: str | None = None
    line: int | None = None
    note: str | None = None


class CaseInfo(_Model):
    """The case as the detector saw it (artifacts only, never fault labels)."""

    id: str
    principal: str | None = None
    ir: str | None = Field(default=None, description="The semantic IR in canonical text form.")
    sql: str | None = None
    tenant_ids: list[str] | None = Field(
        default=None, description="Tenants the application bound (evidence, never a grant)."
    )
    release_decision: Literal["release", "withhold"] | None = None
    source: SourceRef | None = None


class FaultRef(_Model):
    """A layer fault (``layer_fault`` atom) other than the localized one."""

    surface: Layer
    witness_class: WitnessClass
    check: str
    key: Any
    rule_id: str
    message: str


class SupportingFact(_Model):
    """A leaf of the proof: a fact that must hold (or be absent) for the violation."""

    atom: str
    kind: Literal["fact", "absent", "builtin"]
    provenance: list[str] = Field(default_factory=list)


class Evidence(_Model):
    """Concrete evidence beyond the proof (real rows when a database is configured)."""

    level: Literal["static", "deterministic_fixture", "real_db"] = "static"
    details: dict[str, Any] = Field(default_factory=dict)


class Witness(_Model):
    """One violation with its proof. ``witness_class`` is never ``clean`` here."""

    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="Stable id: rule id + case id + semantic key (no line numbers).")
    case: CaseInfo
    witness_class: WitnessClass
    localized_surface: Layer
    containment_layer: Layer | None = None
    containment_message: str | None = None
    check: str
    key: Any = Field(description="The object the check is about (a table, a metric, ...).")
    rule_id: str
    message: str
    fix: str | None = None
    severity: Severity = Field(
        default="medium",
        description="The check rule's @severity; a contained violation is at most medium.",
    )
    confidence: Confidence = Field(
        default="high",
        description="The lowest @confidence of any rule the proof applies (default high).",
    )
    defence: bool = Field(
        default=False,
        description="A fault of a defence layer (database, release) that an earlier layer's "
        "violation outranked; its proof is rooted at the layer_fault step.",
    )
    atom: str
    also_failed: list[FaultRef] = Field(default_factory=list)
    proof: Proof = None
    supporting_facts: list[SupportingFact] = Field(default_factory=list)
    evidence: Evidence = Field(default_factory=Evidence)


class RecordError(_Model):
    """A record that could not be judged (malformed line, missing field): a proof-less finding."""

    kind: str
    message: str
    source: SourceRef | None = None
    case_id: str | None = None


class CaseResult(_Model):
    """The verdict on one case: clean, violation(s), or an input error for that record."""

    @classmethod
    def from_error(cls, error: RecordError) -> CaseResult:
        """The result of a record that could not be judged: the error, at its file:line."""
        src = error.source
        case_id = error.case_id or (f"{src.file}:{src.line}" if src else "record")
        return cls(case=CaseInfo(id=case_id, source=src), verdict="error", errors=[error])

    case: CaseInfo
    verdict: Literal["clean", "violation", "error"]
    witnesses: list[Witness] = Field(default_factory=list)
    errors: list[RecordError] = Field(default_factory=list)
    evidence: Evidence | None = Field(
        default=None,
        description="The case's real-row evidence when a database was attached (what ran, or "
        "why it did not), also when the case is clean.",
    )


class CheckReport(_Model):
    """What ``strata check --format json`` prints."""

    schema_version: int = SCHEMA_VERSION
    tool: str = "policystrata"
    version: str
    domain: str
    rules_digest: str
    results: list[CaseResult]
    counts: dict[str, int]


def witness_id(rule_id: str, case_id: str, key: Any) -> str:
    """A stable witness id from the rule, the case and the semantic key.

    >>> witness_id("compiler.tenant_scope_missing", "t1", "accounts")
    'compiler.tenant_scope_missing/t1/accounts'
    """
    text = key if isinstance(key, str) else json.dumps(key)
    out = f"{rule_id}/{case_id}/{text}"
    if len(out) > 160:
        out = f"{rule_id}/{case_id}/" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def witness_json_schema(proof_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The published JSON Schema of a witness (``strata schema witness``)."""
    schema = Witness.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://policystrata.dev/schemas/witness-v1.json"
    _add_proof_schema(schema, schema, proof_schema)
    return schema


def _add_proof_schema(
    schema: dict[str, Any], witness: dict[str, Any], proof_schema: dict[str, Any] | None
) -> None:
    """Point the witness's ``proof`` at the ProofNode schema (a definition of ``schema``)."""
    defs = schema.setdefault("$defs", {})
    node = proof_schema if proof_schema is not None else json.loads(json.dumps(PROOF_NODE_SCHEMA))
    defs.update(node.pop("$defs", {}))
    defs["ProofNode"] = node
    witness["properties"]["proof"] = {
        "anyOf": [{"$ref": "#/$defs/ProofNode"}, {"type": "null"}],
        "default": None,
    }


def check_report_json_schema(proof_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON Schema of ``strata check --format json`` output."""
    schema = CheckReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    _add_proof_schema(schema, schema["$defs"]["Witness"], proof_schema)
    return schema


def read_witnesses(path: Path) -> list[Witness]:
    """Witnesses of a file: one witness, a list of them, a run's witnesses/<task_id>.json, a
    check report, a scan's scan.json (its findings' witnesses) or findings.jsonl."""
    from policystrata.errors import InputError
    from policystrata.jsonfile import read_json_documents

    items = read_json_documents(path)
    out: list[Witness] = []
    for line, data in items:
        try:
            if isinstance(data, dict) and "results" in data:
                out += [w for r in CheckReport.model_validate(data).results for w in r.witnesses]
            elif isinstance(data, dict) and "findings" in data and "gate" in data:
                findings = data["findings"] if isinstance(data["findings"], list) else []
                out += [Witness.model_validate(f["witness"]) for f in findings if f.get("witness")]
            elif isinstance(data, dict) and isinstance(data.get("witnesses"), list):
                # a run's witnesses/<task_id>.json (published keys + our witnesses)
                out += [Witness.model_validate(w) for w in data["witnesses"]]
            elif isinstance(data, dict) and "kind" in data and "rule_id" in data:  # a finding
                if data.get("witness"):
                    out.append(Witness.model_validate(data["witness"]))
            elif isinstance(data, list):
                out += [Witness.model_validate(w) for w in data]
            else:
                out.append(Witness.model_validate(data))
        except ValueError as exc:
            raise InputError(
                f"not a PolicyStrata witness, check report or scan report: {_first_problem(exc)}",
                file=str(path),
                line=line,
            ) from None
    return out


def _first_problem(exc: ValueError) -> str:
    """One line from a pydantic ValidationError: the first field and what is wrong with it."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        kind = "missing" if first.get("type") == "missing" else first.get("msg", "invalid")
        count = len(errors())
        more = f" (and {count - 1} more)" if count > 1 else ""
        return f"{where}: {kind}{more}" if where else f"{kind}{more}"
    return str(exc).splitlines()[0]
