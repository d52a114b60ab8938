"""The published keys of a run's outputs (COMPAT.md §6), written beside ours.

Tooling written against published runs reads ``traces.jsonl`` records, ``summary.json``,
``metadata.json`` and ``witnesses/<task_id>.json`` by the published key names; our own keys
(``task``, ``classes``, ``localized``, ``counts``...) stay as they are. Each published key has
its published meaning, computed from what the run really did:

- trace record: ``task_id``, ``domain``, ``request``, ``principal``, ``mutation``,
  ``semantic_ir`` (the six IR keys), ``policy_version``, ``surface_versions``,
  ``canonical_decision`` (the policy's decision: ``allowed`` and the deny ``reasons``),
  ``surface_decisions`` (what each layer of the run decided), ``surface_contracts``,
  ``contract_decisions`` (per surface: did its contract hold, i.e. no check of it failed),
  ``transition_obligations``, ``compiled_sql``, ``db_result`` (real rows when a database ran),
  ``release_decision``, ``witness_class`` / ``localized_surface`` / ``containment_layer`` (the
  first witness; ``clean`` and null when none), the ``expected_*`` labels,
  ``accounting_status`` (killed, survived, equivalent, invalid, clean_control, false_positive)
  and ``accounting_reason``, ``semantic_difference`` (the fault changed an artifact),
  ``witness_path``, ``latency_ms`` (null: runs are byte-identical, no wall-clock time is
  recorded), ``cost`` (the policy's cost estimate; no tokens or money: the stack calls no model)
  and ``reasons`` (the witnesses' messages, or the deny reasons);
- summary: ``total``, ``killed``, ``survived``, ``equivalent``, ``invalid``, ``clean_controls``,
  ``false_positives``, ``mutant_kill_rate``, the five ``<class>_rate`` (share of cases whose
  first witness has that class), ``containment_rate`` (share of kills a later layer contained),
  ``localization_accuracy``, ``expected_class_accuracy``, ``minimized_witness_count``,
  ``avg_latency_ms`` (null) and ``cost``;
- metadata: see :func:`metadata_keys`.

>>> accounting_status("stillborn"), accounting_status("clean")
('invalid', 'clean_control')
>>> semantic_ir_dict({"metric": "m", "dimensions": [], "filters": [{"dimension": "plan",
...     "op": "=", "value": "pro"}], "time_range": None, "grain": None, "limit": 5})["filters"]
{'plan': 'pro'}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policystrata.layers import LAYERS

if TYPE_CHECKING:
    from policystrata.bench.cases import BenchCase
    from policystrata.model import Domain
    from policystrata.stack.pipeline import StackRun
    from policystrata.witness import Witness

STATUS = {
    "killed": "killed",
    "survived": "survived",
    "equivalent": "equivalent",
    "stillborn": "invalid",
    "error": "invalid",
    "clean": "clean_control",
    "false_positive": "false_positive",
}
CLASSES = ("over_permissive", "over_restrictive", "lowering_violation", "semantic_drift")


def accounting_status(status: str) -> str:
    """Our case status in the published accounting vocabulary."""
    return STATUS.get(status, "invalid")


def semantic_ir_dict(ir: dict[str, Any] | None) -> dict[str, Any] | None:
    """The IR with the published filter shape (``{dimension: value}``, a list for ``in``,
    ``{op: value}`` for other operators)."""
    if ir is None:
        return None
    filters: dict[str, Any] = {}
    for f in ir.get("filters") or []:
        dim, op, value = f["dimension"], f["op"], f["value"]
        filters[dim] = value if op in ("=", "in") else {op: value}
    return {**ir, "filters": filters}


def surface_contracts(domain: Domain) -> dict[str, Any]:
    """The domain's contracts as written in surfaces.yaml."""
    return {
        name: c.model_dump(mode="json")
        for name, c in sorted(domain.surfaces.contracts.items(), key=lambda kv: kv[0])
    }


def _failed_surfaces(witnesses: list[Witness]) -> set[str]:
    out: set[str] = set()
    for w in witnesses:
        out.add(w.localized_surface)
        out |= {f.surface for f in w.also_failed}
    return out


def contract_decisions(domain: Domain, witnesses: list[Witness]) -> dict[str, Any]:
    """Per surface: its responsibilities and whether its contract held (no check failed)."""
    failed = _failed_surfaces(witnesses)
    out = {}
    for s in LAYERS:
        c = domain.surfaces.contracts.get(s)  # type: ignore[call-overload]
        out[s] = {
            "responsibilities": list(c.responsibilities) if c else [],
            "held": s not in failed,
        }
    return out


def surface_decisions(run: StackRun | None) -> dict[str, Any]:
    """What each layer of the judged run decided (its artifact, in brief)."""
    if run is None:
        return {}
    return {
        "manifest": {
            "metrics": [m.get("name") for m in run.manifest.get("metrics", [])],
            "dimensions": list(run.manifest.get("dimensions", [])),
            "time_ranges": list(run.manifest.get("time_ranges", [])),
        },
        "grammar": run.grammar_decision,
        "validator": run.validator.get("decision"),
        "compiler": "sql" if run.sql is not None else "no_sql",
        "database": "schema" if run.ddl_is_schema else "rewritten_ddl",
        "release": run.release,
    }


def db_result(evidence: dict[str, Any], witness: Witness | None) -> dict[str, Any]:
    """Real rows of the case (a database ran) or nulls: ``intended_value`` the canonical SQL's
    rows, ``actual_value`` the judged SQL's, ``blocked_by_database`` whether row level security
    removed rows (else whether the database layer contained the witness), ``rows`` the row
    count of the judged SQL."""
    layer: dict[str, Any] = evidence.get("layer") or {}
    canonical: dict[str, Any] = evidence.get("canonical") or {}
    containment: dict[str, Any] = evidence.get("containment") or {}
    blocked = containment.get("contained") if containment.get("checked") else None
    if blocked is None:
        blocked = witness is not None and witness.containment_layer == "database"
    return {
        "intended_value": canonical.get("rows"),
        "actual_value": layer.get("rows"),
        "blocked_by_database": bool(blocked),
        "rows": layer.get("row_count"),
    }


def trace_keys(
    domain: Domain,
    case: BenchCase,
    rec: dict[str, Any],
    run: StackRun | None,
    witnesses: list[Witness],
    evidence: dict[str, Any],
    canonical: tuple[bool, list[str]] | None,
    cost: int | None,
) -> dict[str, Any]:
    """The published keys of one trace record."""
    first = witnesses[0] if witnesses else None
    ir = case.query.to_dict() if case.query is not None else None
    if first is not None:
        reasons = [w.message for w in witnesses]
    elif canonical is not None and not canonical[0]:
        reasons = list(canonical[1])
    else:
        reasons = []
    status = rec.get("status", "")
    return {
        "task_id": case.task_id,
        "domain": domain.name,
        "request": case.request,
        "semantic_ir": semantic_ir_dict(ir),
        "policy_version": case.policy_version or domain.policy.version,
        "surface_versions": dict(case.surface_versions),
        "canonical_decision": (
            {"allowed": canonical[0], "reasons": list(canonical[1])} if canonical else None
        ),
        "surface_decisions": surface_decisions(run),
        "surface_contracts": surface_contracts(domain),
        "contract_decisions": contract_decisions(domain, witnesses),
        "transition_obligations": list(domain.surfaces.transition_obligations),
        "compiled_sql": run.sql if run is not None else None,
        "db_result": db_result(evidence, first),
        "release_decision": run.release if run is not None else None,
        "witness_class": first.witness_class if first else "clean",
        "expected_witness_class": case.expected_class,
        "localized_surface": first.localized_surface if first else None,
        "expected_localized_surface": case.expected_surface,
        "containment_layer": first.containment_layer if first else None,
        "expected_containment_layer": case.expected_containment,
        "accounting_status": accounting_status(status),
        "accounting_reason": rec.get("reason") or status,
        "semantic_difference": bool(rec.get("changed")),
        "witness_path": rec.get("witness"),
        "latency_ms": None,
        "cost": {"estimated": cost, "tokens": 0, "usd": 0.0},
        "reasons": reasons,
    }


def witness_document(
    domain: Domain, rec: dict[str, Any], witnesses: list[Witness]
) -> dict[str, Any]:
    """``witnesses/<task_id>.json``: the published keys, then our witnesses (what ``strata
    explain`` re-verifies)."""
    return {
        "task_id": rec["task_id"],
        "witness_class": rec["witness_class"],
        "localized_surface": rec["localized_surface"],
        "containment_layer": rec["containment_layer"],
        "principal": rec.get("principal"),
        "request": rec.get("request"),
        "semantic_ir": rec.get("semantic_ir"),
        "surface_versions": rec.get("surface_versions"),
        "surface_responsibilities": {
            s: list(c.responsibilities)
            for s, c in sorted(domain.surfaces.contracts.items(), key=lambda kv: kv[0])
        },
        "contract_decisions": rec.get("contract_decisions"),
        "transition_obligations": rec.get("transition_obligations"),
        "compiled_sql": rec.get("compiled_sql"),
        "db_result": rec.get("db_result"),
        "release_allowed": rec.get("release_decision") == "release",
        "reasons": rec.get("reasons"),
        "witnesses": [w.model_dump(mode="json") for w in witnesses],
    }


def summary_keys(records: dict[str, int], acc: Any) -> dict[str, Any]:
    """The published summary keys, from the accumulated run."""
    s = acc.status
    mutants = s["killed"] + s["survived"]
    total = acc.cases

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    counts = acc.case_classes
    return {
        "total": total,
        "killed": s["killed"],
        "survived": s["survived"],
        "equivalent": s["equivalent"],
        "invalid": s["stillborn"] + s["invalid"] + s["error"],
        "clean_controls": s["clean"],
        "false_positives": s["false_positive"],
        "mutant_kill_rate": rate(s["killed"], mutants),
        **{f"{c}_rate": rate(counts.get(c, 0), total) for c in CLASSES},
        "unsafe_release_rate": rate(counts.get("unsafe_release", 0), total),
        "containment_rate": rate(acc.contained_kills, s["killed"]),
        "localization_accuracy": rate(acc.localized["correct"], acc.localized["scored"]),
        "expected_class_accuracy": rate(acc.classified["correct"], acc.classified["scored"]),
        "minimized_witness_count": len(acc.minimization),
        "avg_latency_ms": None,
        "cost": {"estimated": acc.cost_estimated, "tokens": 0, "usd": 0.0},
    }


def metadata_keys(
    domain: Domain, meta: dict[str, Any], options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The published metadata keys: the suite's labels (provenance, freeze fields), the
    generated count and seed, the contracts and obligations, the operator ids, and the run's
    release identification (``--release-candidate``, ``--commit-sha``, ``--environment``,
    ``--project-id``, ``--organization-id``; null when not given)."""
    sm = meta.get("suite_metadata") or {}
    generated = meta.get("provenance") == "generated" or "generator_stream" in meta
    opts = options or {}
    return {
        "generated_count": meta.get("count") if generated else None,
        "generated_seed": meta.get("seed") if generated else None,
        "policy_version": meta.get("policy_version") or domain.policy.version,
        "default_surface_versions": meta.get("default_surface_versions")
        or dict(domain.surfaces.versions),
        "suite_metadata": sm,
        "suite_provenance": sm.get("provenance") or meta.get("provenance"),
        # a run verified against a freeze manifest is frozen by it (``--freeze-manifest``)
        "detector_frozen": bool(sm.get("detector_frozen") or meta.get("benchmark_manifest_id")),
        "detector_freeze_id": sm.get("detector_freeze_id") or meta.get("benchmark_manifest_id"),
        "authored_after_detector_freeze": bool(sm.get("authored_after_detector_freeze", False)),
        "surface_contracts": surface_contracts(domain),
        "transition_obligations": list(domain.surfaces.transition_obligations),
        "mutation_operator_ids": list(meta.get("operators", [])),
        **{
            k: opts.get(k)
            for k in (
                "release_candidate",
                "commit_sha",
                "environment",
                "project_id",
                "organization_id",
            )
        },
    }
