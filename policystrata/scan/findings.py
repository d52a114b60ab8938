"""What a finding says beyond its witness, read off the proof: what changed, a probable fix, a
minimal repro record, the command that re-checks it, and the published keys (the model is
:class:`policystrata.results.Finding`).

Which layer faults become findings: the *localized* violation of each record (the first layer
whose responsibility failed), plus a finding for every failed *defence* layer (``database``,
``release``): their job is to stop upstream faults, so their failure is a separate regression
with a separate owner. Other downstream faults (e.g. a compiler fault under a principal the
validator should have refused) are listed on the localized finding as ``also_failed``.

>>> recheck_command("--domain support_saas", {"id": "t1", "principal": "acme_analyst",
...                 "sql": "select 1"})
"strata check --domain support_saas --case-id t1 --principal acme_analyst --sql 'select 1'"
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

from policystrata.ir import SemanticQuery
from policystrata.prooftree import ProofNode
from policystrata.results import PUBLISHED_SEVERITY, Finding
from policystrata.witness import Witness


def publish(f: Finding, config_name: str, meta: dict[str, Any] | None = None) -> None:
    """Fill the published keys of a finding from what it already holds (``meta``: the trace
    record's pass-through fields: source, regression_case...). Our keys are unchanged; only
    ``regression_case`` gets the published default ``unclassified``.

    >>> from policystrata.results import Location
    >>> f = Finding(id="x", kind="witness", rule_id="compiler.tenant_scope_missing",
    ...     check="tenant_scope_missing", key="accounts", message="m", severity="medium",
    ...     confidence="high", surface="compiler", owner="compiler", witness_class="w",
    ...     location=Location(file="t.jsonl", line=3), what_changed="c", probable_fix="p",
    ...     recheck="strata check ...")
    >>> publish(f, "policystrata.yaml")
    >>> f.title, f.published_severity, f.regression_case
    ('tenant scope missing: accounts', 'warning', 'unclassified')
    >>> f.ci_gate_command
    'strata scan --config policystrata.yaml'
    """
    meta = meta or {}
    w = f.witness
    f.title = f"{f.check.replace('_', ' ')}: {f.key}" if f.key not in (None, "") else f.check
    f.published_severity = PUBLISHED_SEVERITY[f.severity]  # type: ignore[assignment]
    f.reasons = [f.message, *(a.message for a in (w.also_failed if w else []))]
    f.regression_case = f.regression_case or str(meta.get("regression_case") or "unclassified")
    f.source = str(meta.get("source") or "imported_trace")
    if w is not None:
        f.sql = w.case.sql
        if w.case.ir:
            from policystrata.bench.published import semantic_ir_dict

            try:
                f.semantic_ir = semantic_ir_dict(_ir(w.case.ir).to_dict())
            except ValueError:
                f.semantic_ir = None
    elif f.repro:
        f.sql = f.repro.get("sql")
    f.reproducible_command = f.recheck
    f.minimal_repro_trace = f.repro
    f.ci_gate_command = f"strata scan --config {config_name}"
    f.metadata = {
        "rule_id": f.rule_id,
        "kind": f.kind,
        "record_id": f.record_id,
        "location": f.location.model_dump(mode="json", exclude_none=True),
        **{k: meta[k] for k in ("timestamp", "evidence_level", "expected_policy") if k in meta},
    }


@functools.lru_cache(maxsize=1024)
def _ir(text: str) -> SemanticQuery:
    """The witness's IR text parsed, remembered by text (a scan's findings repeat few IR texts;
    the query is immutable; a text that does not parse raises each time)."""
    from policystrata.ir import parse_ir

    return parse_ir(text)


# ------------------------------------------------------------------------------ proof reading


def record_leaves(witness: Witness, trace_file: str | None) -> list[ProofNode]:
    """Fact leaves of the fault step that came from the record (its trace line or its SQL)."""
    if witness.proof is None:
        return []
    out = []
    for node in witness.proof.fault_step().nodes("fact"):
        sources = {p.source for p in node.provenance}
        if trace_file in sources or "sql" in sources or "ir" in sources:
            out.append(node)
    return out


def absent_leaves(witness: Witness) -> list[ProofNode]:
    """Closed-world leaves of the fault step: what is missing for the layer to be right."""
    return witness.proof.fault_step().nodes("absent") if witness.proof else []


def what_changed(witness: Witness, trace_file: str | None, where: str) -> str:
    """The layer's artifact that breaks its contract, in the proof's own facts."""
    seen = [n.atom_text() for n in record_leaves(witness, trace_file)]
    missing = [n.atom_text().lstrip("!") for n in absent_leaves(witness)]
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
    if (
        check in ("tenant_scope_missing", "wrong_tenant_column")
        and isinstance(key, str)
        and key in tenant_columns  # a table scoped through its parents: the rule's @fix says how
    ):
        col = tenant_columns[key]
        return f"add `{key}.{col} = :tenant` to {site}" + (
            " (and drop the filter on the legacy column)" if check == "wrong_tenant_column" else ""
        )
    base = witness.fix or witness.message
    # Only the record's own artifacts are candidates: adding a policy fact (a role grant) to make
    # the app's behaviour legal is not a fix. Derived bookkeeping atoms are skipped too.
    case_id = witness.case.id
    missing = [
        n.atom_text().lstrip("!")
        for n in absent_leaves(witness)
        if (n.args or (None,))[0] == case_id and n.pred not in ("fault_before",)
    ]
    present = [n.atom_text() for n in record_leaves(witness, trace_file)]
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
    used = {n.pred for n in witness.proof.nodes("fact")} if witness.proof else set()
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
