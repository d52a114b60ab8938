"""``strata export``: a run's records in the published shapes of other harnesses (COMPAT §6).

- ``inspect`` (JSONL, one sample per trace): ``id``, ``input`` (the request), ``target`` (the
  expected witness class, layer and containment layer) and ``metadata`` (adapter
  ``policystrata.inspect.v1``, the scenario, the compiled SQL, what the detector ``observed``
  and the ``scorer``).
- ``benchflow`` (one JSON document): an ``environment`` and per trace a ``scenario``, the
  stack's ``rollout`` (SQL, rows, release decision) and a ``verifier`` (expected, observed).
- ``policystrata-json`` (one JSON document): the run's metadata, summary, counts and every trace
  with its expected and observed verdicts, accounting, decisions, artifacts and metrics.

Everything comes from the run directory's files; nothing is re-run. Output is deterministic:
keys sorted, the run named by its directory name (no absolute path, no clock).

>>> rec = {"task_id": "t1", "domain": "d", "request": "How many?", "principal": "p",
...        "mutation": "none", "expected_witness_class": "clean", "witness_class": "clean",
...        "release_decision": "release"}
>>> sample = inspect_sample(rec)
>>> observed = sample["metadata"]["observed"]
>>> sample["id"], sample["target"]["witness_class"], observed["release_allowed"]
('t1', 'clean', True)
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from policystrata.bench.rundir import RunDir
from policystrata.jsondump import dumps_indented

FORMATS = ("inspect", "benchflow", "policystrata-json")

#: What is checked, and against what: the detector's rules over the stack's artifacts, judged
#: against the domain's policy; the stack calls no model.
AUTHORIZATION_BOUNDARY = "semantic_layer_policy"

SUMMARY_KEYS = (
    "total",
    "killed",
    "survived",
    "equivalent",
    "invalid",
    "clean_controls",
    "false_positives",
    "mutant_kill_rate",
    "over_permissive_rate",
    "over_restrictive_rate",
    "lowering_violation_rate",
    "semantic_drift_rate",
    "unsafe_release_rate",
    "containment_rate",
    "localization_accuracy",
    "expected_class_accuracy",
    "minimized_witness_count",
    "avg_latency_ms",
    "cost",
)


def _released(rec: dict[str, Any]) -> bool | None:
    decision = rec.get("release_decision")
    return None if decision is None else decision == "release"


def _expected(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "witness_class": rec.get("expected_witness_class"),
        "localized_surface": rec.get("expected_localized_surface"),
        "containment_layer": rec.get("expected_containment_layer"),
    }


def _observed(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        "witness_class": rec.get("witness_class"),
        "localized_surface": rec.get("localized_surface"),
        "containment_layer": rec.get("containment_layer"),
        "release_allowed": _released(rec),
    }


def inspect_sample(rec: dict[str, Any]) -> dict[str, Any]:
    """One trace record as an Inspect sample."""
    return {
        "id": rec.get("task_id"),
        "input": rec.get("request"),
        "target": _expected(rec),
        "metadata": {
            "adapter": "policystrata.inspect.v1",
            "domain": rec.get("domain"),
            "principal": rec.get("principal"),
            "mutation": rec.get("mutation"),
            "policy_version": rec.get("policy_version"),
            "surface_versions": rec.get("surface_versions"),
            "semantic_ir": rec.get("semantic_ir"),
            "compiled_sql": rec.get("compiled_sql"),
            "observed": _observed(rec),
            "scorer": "policystrata.witness_match",
        },
    }


def _environment(run: RunDir) -> dict[str, Any]:
    return {
        "name": f"policystrata/{run.metadata.get('domain')}",
        "kind": "deterministic_reference_stack",
        "requires_llm_api_key": False,
        "authorization_boundary": AUTHORIZATION_BOUNDARY,
    }


def benchflow_task(rec: dict[str, Any]) -> dict[str, Any]:
    """One trace record as a BenchFlow task."""
    return {
        "id": rec.get("task_id"),
        "scenario": {
            "domain": rec.get("domain"),
            "principal": rec.get("principal"),
            "request": rec.get("request"),
            "semantic_ir": rec.get("semantic_ir"),
            "surface_versions": rec.get("surface_versions"),
        },
        "rollout": {
            "compiled_sql": rec.get("compiled_sql"),
            "db_result": rec.get("db_result"),
            "release_decision": rec.get("release_decision"),
        },
        "verifier": {
            "type": "policystrata.witness_match",
            "expected": _expected(rec),
            "observed": _observed(rec),
        },
    }


def json_trace(rec: dict[str, Any]) -> dict[str, Any]:
    """One trace record in the policystrata-json export (camelCase keys)."""
    exp, obs = _expected(rec), _observed(rec)
    return {
        "id": rec.get("task_id"),
        "domain": rec.get("domain"),
        "principal": rec.get("principal"),
        "mutation": rec.get("mutation"),
        "policyVersion": rec.get("policy_version"),
        "surfaceVersions": rec.get("surface_versions"),
        "semanticIr": rec.get("semantic_ir"),
        "expected": {
            "witnessClass": exp["witness_class"],
            "localizedSurface": exp["localized_surface"],
            "containmentLayer": exp["containment_layer"],
        },
        "observed": {
            "witnessClass": obs["witness_class"],
            "localizedSurface": obs["localized_surface"],
            "containmentLayer": obs["containment_layer"],
            "releaseAllowed": obs["release_allowed"],
            "reasons": rec.get("reasons") or [],
        },
        "accounting": {
            "status": rec.get("accounting_status"),
            "reason": rec.get("accounting_reason"),
            "semanticDifference": rec.get("semantic_difference"),
        },
        "decisions": {
            "canonical": rec.get("canonical_decision"),
            "surfaces": rec.get("surface_decisions"),
            "contracts": rec.get("contract_decisions"),
            "transitionObligations": rec.get("transition_obligations"),
        },
        "artifacts": {
            "compiledSql": rec.get("compiled_sql"),
            "dbResult": rec.get("db_result"),
            "releaseDecision": rec.get("release_decision"),
            "digests": rec.get("artifacts"),
            "witnessPath": rec.get("witness_path"),
        },
        "metrics": {"latencyMs": rec.get("latency_ms"), "cost": rec.get("cost")},
    }


def export_run(run: RunDir, fmt: str) -> str:
    """The run in format ``fmt`` (one of :data:`FORMATS`), as the text of the output file."""
    traces = run.traces
    if fmt == "inspect":
        return "".join(
            json.dumps(inspect_sample(r), sort_keys=True, ensure_ascii=False) + "\n" for r in traces
        )
    if fmt == "benchflow":
        doc: dict[str, Any] = {
            "version": "policystrata.benchflow.adapter.v1",
            "environment": _environment(run),
            "tasks": [benchflow_task(r) for r in traces],
        }
        return dumps_indented(doc) + "\n"
    if fmt == "policystrata-json":
        meta = run.metadata
        doc = {
            "version": "policystrata.evidence_export.v1",
            "metadata": {
                "adapter": "policystrata.json.v1",
                "source": run.name,
                "requires_llm_api_key": False,
                "authorization_boundary": AUTHORIZATION_BOUNDARY,
                "run": {
                    k: meta.get(k)
                    for k in (
                        "domain",
                        "suite",
                        "generated_count",
                        "generated_seed",
                        "policy_version",
                        "evidence_level",
                        "suite_provenance",
                        "detector_frozen",
                        "detector_freeze_id",
                        "package_version",
                        "rules_digest",
                    )
                },
            },
            "summary": {k: run.summary.get(k) for k in SUMMARY_KEYS},
            "counts": {
                "witnessClasses": dict(
                    sorted(Counter(_s(r, "witness_class") for r in traces).items())
                ),
                "accountingStatuses": dict(
                    sorted(Counter(_s(r, "accounting_status") for r in traces).items())
                ),
                "domains": dict(sorted(Counter(_s(r, "domain") for r in traces).items())),
            },
            "traces": [json_trace(r) for r in traces],
        }
        return dumps_indented(doc) + "\n"
    raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")


def _s(rec: dict[str, Any], key: str) -> str:
    v = rec.get(key)
    return "none" if v is None else str(v)
