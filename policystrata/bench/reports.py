"""Reports over a run directory: ``strata artifact-report`` and ``strata minimization-report``.

The artifact report reads the stored artifacts (``artifacts/<kind>/<digest>.json``) and checks
each one against its digest: per kind how many distinct artifacts and bytes, how many records
name one and how many of those differ from the fault-free stack's (per fault operator too),
and every file that is missing or does not match its digest (a problem, never skipped).

The minimization report puts each witness beside its minimized one: facts and bytes before and
after, the dimensions and filters removed, the reduction steps, and whether the minimized
request is 1-minimal (no single further reduction keeps the violation), checked by re-running
the stack with the same fault and re-deriving with the rules.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from policystrata.bench.artifacts import ARTIFACT_DIR, KINDS, artifact_path, decode_artifact
from policystrata.bench.rundir import RunDir
from policystrata.errors import InputError

# ---- artifact report -------------------------------------------------------------------------


def artifact_report(run: RunDir) -> dict[str, Any]:
    """Per artifact kind: distinct artifacts, bytes, records naming one, records whose
    artifact differs from the fault-free stack's; per operator the kinds its faults changed;
    and the problems (missing files, digest mismatches, files no record names)."""
    kinds: dict[str, dict[str, Any]] = {
        k: {"distinct": 0, "bytes": 0, "records": 0, "differs_from_reference": 0} for k in KINDS
    }
    per_op: dict[str, dict[str, int]] = {}
    named: set[tuple[str, str]] = set()
    without = 0
    for rec in run.traces:
        digests = rec.get("artifacts") or {}
        ref = rec.get("reference_artifacts") or {}
        if not digests:
            without += 1
            continue
        op = per_op.setdefault(str(rec.get("mutation") or "none"), {})
        for kind, digest in sorted(digests.items()):
            named.add((kind, digest))
            if kind not in kinds:
                kinds[kind] = {"distinct": 0, "bytes": 0, "records": 0, "differs_from_reference": 0}
            kinds[kind]["records"] += 1
            if ref and ref.get(kind) != digest:
                kinds[kind]["differs_from_reference"] += 1
                op[kind] = op.get(kind, 0) + 1
        for kind, digest in ref.items():
            named.add((kind, digest))
    problems: list[dict[str, str]] = []
    verified = 0
    for kind, digest in sorted(named):
        rel = artifact_path(kind, digest)
        path = run.path / rel
        if not path.is_file():
            problems.append({"file": rel, "problem": "missing"})
            continue
        text = path.read_text(encoding="utf-8")
        try:
            decode_artifact(text, kind, digest, source=rel)
        except InputError as exc:
            problems.append({"file": rel, "problem": exc.message})
            continue
        verified += 1
        kinds.setdefault(kind, {"distinct": 0, "bytes": 0, "records": 0})
        kinds[kind]["distinct"] += 1
        kinds[kind]["bytes"] += len(text.encode("utf-8"))
    root = run.path / ARTIFACT_DIR
    if root.is_dir():
        for path in sorted(root.glob("*/*.json")):
            if (path.parent.name, path.stem) not in named:
                rel = path.relative_to(run.path).as_posix()
                problems.append({"file": rel, "problem": "no record names this artifact"})
    return {
        "run": run.name,
        "domain": run.metadata.get("domain"),
        "records": len(run.traces),
        "records_without_artifacts": without,
        "artifacts_verified": verified,
        "kinds": {k: kinds[k] for k in sorted(kinds)},
        "changed_by_operator": {op: dict(sorted(v.items())) for op, v in sorted(per_op.items())},
        "problems": problems,
    }


def artifact_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Artifacts of run `{report['run']}` ({report['domain']})",
        "",
        f"{report['records']} records ({report['records_without_artifacts']} without artifacts: "
        f"the stack could not build them); {report['artifacts_verified']} artifact files "
        "checked against their digests.",
        "",
        "| kind | distinct | bytes | records | differ from fault-free |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, k in report["kinds"].items():
        lines.append(
            f"| {kind} | {k['distinct']} | {k['bytes']} | {k['records']} | "
            f"{k['differs_from_reference']} |"
        )
    lines += ["", "| operator | artifacts its faults changed (records) |", "|---|---|"]
    for op, kinds in report["changed_by_operator"].items():
        changed = ", ".join(f"{k} ({n})" for k, n in kinds.items()) or "none"
        lines.append(f"| {op} | {changed} |")
    lines.append("")
    if report["problems"]:
        lines += ["## Problems", ""]
        lines += [f"- `{p['file']}`: {p['problem']}" for p in report["problems"]]
    else:
        lines.append(
            "No problems: every artifact a record names is present and matches its digest."
        )
    return "\n".join(lines) + "\n"


# ---- minimization report ---------------------------------------------------------------------


def _ir_parts(ir: Any) -> tuple[list[str], list[str]]:
    """(dimensions, filter dimensions) of a request in IR text."""
    from policystrata.ir import parse_ir

    q = parse_ir(str(ir))
    return list(q.dimensions), [f.dimension for f in q.filters]


def _size(run: RunDir, rel: str | None) -> int | None:
    if not rel:
        return None
    path = run.path / rel
    return path.stat().st_size if path.is_file() else None


def minimization_rows(run: RunDir) -> list[dict[str, Any]]:
    """One row per minimized witness, from the run's records and witness files."""
    rows = []
    for rec in run.traces:
        m = rec.get("minimized")
        if not m:
            continue
        dims, filters = _ir_parts(rec.get("ir"))
        dims_after, filters_after = _ir_parts(m["ir"])
        rows.append(
            {
                "task": rec.get("task_id"),
                "mutation": rec.get("mutation"),
                "ir_before": rec.get("ir"),
                "ir_after": m["ir"],
                "facts_before": m["facts_before"],
                "facts_after": m["facts_after"],
                "fact_reduction": m["fact_reduction"],
                "bytes_before": _size(run, rec.get("witness_path")),
                "bytes_after": _size(run, m.get("witness")),
                "dimensions_removed": [d for d in dims if d not in dims_after],
                "filters_removed": [f for f in filters if f not in filters_after],
                "steps": m["steps"],
                "evaluations": m["evaluations"],
                "one_minimal": None,
                "one_minimal_note": "not checked",
            }
        )
    return rows


def check_one_minimal(
    run: RunDir,
    rows: list[dict[str, Any]],
    domain_ref: str | Path,
    suite_file: Path | None,
    db: str = "none",
) -> None:
    """Fill ``one_minimal`` of each row: re-run every single reduction of the minimized request
    through the stack with the case's fault and the rules; 1-minimal when none keeps the
    witness's violation (layer, class, check). ``db``: as ``strata run --db`` (the run's own
    setting by default, so that violations from real rows are re-derived the same way)."""
    from policystrata.bench.ablations import run_cases
    from policystrata.bench.runner import Runner
    from policystrata.check import Checker
    from policystrata.db.domain import domain_databases
    from policystrata.model import load_domain

    domain = load_domain(domain_ref)
    cases = {c.task_id: c for c in run_cases(run.path, domain, suite_file)}

    checker = Checker(domain)
    with domain_databases(db, domain) as databases:
        if databases is not None:
            checker.attach_databases(databases)
        _check_rows(run, rows, domain, cases, Runner(checker, minimize=False))


def _check_rows(
    run: RunDir, rows: list[dict[str, Any]], domain: Any, cases: dict[str, Any], runner: Any
) -> None:
    import json

    from policystrata.bench.minimize import domain_orders, reductions
    from policystrata.ir import parse_ir

    by_task = {r.get("task_id"): r for r in run.traces}
    for row in rows:
        rec = by_task[row["task"]]
        case = cases.get(row["task"])
        # without a minimized witness file the request could not be reduced: its witness is the
        # case's own
        wpath = run.path / str(rec["minimized"].get("witness") or rec.get("witness_path") or "")
        if case is None or not wpath.is_file():
            row["one_minimal_note"] = "not checked: no witness file"
            continue
        witnesses = json.loads(wpath.read_text(encoding="utf-8")).get("witnesses") or []
        if not witnesses:
            row["one_minimal_note"] = "not checked: the minimized witness file has no witness"
            continue
        w = witnesses[0]
        signature = (w["localized_surface"], w["witness_class"], w["check"])
        query = parse_ir(row["ir_after"])
        metrics, spans = domain_orders(domain, case.principal)
        options = [r for r in reductions(query, metrics, spans) if r.apply(query) != query]
        survives = runner.survives(case, signature, str(rec.get("case")) + "_1min")
        kept = [r.label for r in options if survives(r.apply(query))]
        row["one_minimal"] = not kept
        row["one_minimal_note"] = (
            f"{len(options)} single reductions re-run, none keeps the violation"
            if not kept
            else "still violates after: " + ", ".join(kept)
        )


def _median(values: Iterable[int | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def minimization_report(run: RunDir, rows: list[dict[str, Any]]) -> dict[str, Any]:
    checked = [r for r in rows if r["one_minimal"] is not None]
    return {
        "run": run.name,
        "domain": run.metadata.get("domain"),
        "witnesses": len(rows),
        "median_facts_before": _median(r["facts_before"] for r in rows),
        "median_facts_after": _median(r["facts_after"] for r in rows),
        "median_bytes_before": _median(r["bytes_before"] for r in rows),
        "median_bytes_after": _median(r["bytes_after"] for r in rows),
        "one_minimal_checked": len(checked),
        "one_minimal": sum(1 for r in checked if r["one_minimal"]),
        "not_one_minimal": [r["task"] for r in checked if not r["one_minimal"]],
        "per_witness": rows,
    }


def _num(v: Any) -> str:
    """A median as written in the Markdown: an integer without ``.0``."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return _dash(v)


def _dash(v: Any) -> str:
    return "-" if v is None else str(v)


def minimization_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Minimization of run `{report['run']}` ({report['domain']})",
        "",
        f"{report['witnesses']} minimized witnesses; median facts "
        f"{_num(report['median_facts_before'])} -> {_num(report['median_facts_after'])}, median "
        f"witness bytes {_num(report['median_bytes_before'])} -> "
        f"{_num(report['median_bytes_after'])}; 1-minimal: "
        f"{report['one_minimal']} of {report['one_minimal_checked']} checked.",
        "",
        "| task | facts | bytes | dimensions removed | filters removed | steps | 1-minimal |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for r in report["per_witness"]:
        one = {True: "yes", False: "no"}.get(r["one_minimal"], "not checked")
        lines.append(
            f"| {r['task']} | {r['facts_before']} -> {r['facts_after']} | "
            f"{_dash(r['bytes_before'])} -> {_dash(r['bytes_after'])} | "
            f"{', '.join(r['dimensions_removed']) or '-'} | "
            f"{', '.join(r['filters_removed']) or '-'} | {'; '.join(r['steps']) or '-'} | {one} |"
        )
    if report["not_one_minimal"]:
        lines += ["", "Not 1-minimal: " + ", ".join(report["not_one_minimal"])]
    return "\n".join(lines) + "\n"
