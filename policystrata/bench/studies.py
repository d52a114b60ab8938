"""Compound-fault study (``strata compound``): cases with 2 and 3 faults in different layers,
re-run through the reference stack (:func:`policystrata.stack.faults.fault_knobs`) and the
detector. Is the first failing layer the one the detector localizes, and are the others among
the layers it also reports (``also_failed``)? Computed from the detector's witnesses on the
faulted artifacts, never from labels: the "first failing layer" is the earliest layer (in
:data:`policystrata.layers.LAYERS` order) among the faults' layers, and only faults the
detector kills on their own in the same case are combined (a fault it cannot see alone says
nothing about compounding).

Deterministic: requests from the domain's seeded suite, combinations enumerated in a fixed
order and drawn with ``random.Random(seed)``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

from policystrata.bench.cases import BenchCase
from policystrata.bench.runner import Runner, _rank
from policystrata.bench.suites import resolve_suite
from policystrata.check import Checker
from policystrata.layers import LAYERS
from policystrata.stack.faults import OPERATORS, fault_knobs
from policystrata.stack.pipeline import (
    KnobConflict,
    Request,
    StackRun,
    changed_artifacts,
    run_stack,
)


def _surfaces(runner: Runner, case: BenchCase, run: StackRun, canonical: StackRun) -> list[str]:
    """The layers of the detector's witnesses on ``run`` and of the faults each lists as
    ``also_failed``, first the localized one."""
    assert case.query is not None
    dc = runner._case(case, run, case.query, f"case_{case.index:05d}")
    dc.reference_sql = canonical.sql
    dc.reference_params = dict(canonical.params)
    witnesses = sorted(runner.checker.check(dc).witnesses, key=_rank)
    out: list[str] = []
    for w in witnesses:
        for surface in [w.localized_surface, *(f.surface for f in w.also_failed)]:
            if surface not in out:
                out.append(surface)
    return out


def compound_study(
    domain: str,
    orders: Sequence[int] = (2, 3),
    per_order: int = 20,
    seed: int = 0,
    requests: int | None = None,
) -> dict[str, Any]:
    """Per order: the drawn combinations, each with its faults, their layers, the detector's
    localized layer, the layers it also reported and the faults the others mask (removing it
    changes no artifact of the combined run: an earlier layer stopped the request before it);
    and the rates (``others_in_also_failed`` counts cases whose every unmasked later fault is
    reported). ``requests``: only the first N distinct requests of the seeded suite."""
    checker = Checker.open(domain)
    runner = Runner(checker, minimize=False)
    d = checker.domain
    seen: set[tuple[str, str, str]] = set()
    pool: list[tuple[BenchCase, dict[str, str]]] = []  # (case, killed-alone op -> its layer)
    for case in resolve_suite(d, "seeded").cases():
        if case.query is None or case.invalid is not None:
            continue
        key = (case.principal, case.query.to_text(), case.style)
        if key in seen:
            continue
        seen.add(key)
        if requests is not None and len(seen) > requests:
            break
        req = Request(case.principal, case.query, case.style)
        try:
            canonical = run_stack(d, req)
        except Exception:
            continue
        alone: dict[str, str] = {}
        for op_id in sorted(OPERATORS):
            op = OPERATORS[op_id]
            if not op.fits(d) or not op.applies(d, req, canonical):
                continue
            run = run_stack(d, req, op.knobs(d, req))
            if changed_artifacts(canonical, run) and op.surface in _surfaces(
                runner, case, run, canonical
            ):
                alone[op_id] = op.surface
        pool.append((case, alone))
    rng = random.Random(seed)
    out: dict[str, Any] = {"domain": d.name, "seed": seed, "orders": {}}
    for k in orders:
        combos = [
            (case, ops)
            for case, alone in pool
            for ops in itertools.combinations(sorted(alone), k)
            if len({alone[o] for o in ops}) == k  # k faults in k different layers
        ]
        rng.shuffle(combos)
        rows: list[dict[str, Any]] = []
        for case, ops in combos:
            if len(rows) == per_order:
                break
            assert case.query is not None
            req = Request(case.principal, case.query, case.style)
            try:
                knobs = fault_knobs(ops, d, req)
            except KnobConflict:
                continue
            canonical = run_stack(d, req)
            combined = run_stack(d, req, knobs)
            surfaces = _surfaces(runner, case, combined, canonical)
            layers = sorted({OPERATORS[o].surface for o in ops}, key=LAYERS.index)
            localized = surfaces[0] if surfaces else None
            masked = [
                o
                for o in ops
                if not changed_artifacts(
                    run_stack(d, req, fault_knobs([x for x in ops if x != o], d, req)), combined
                )
            ]
            later = [
                OPERATORS[o].surface
                for o in ops
                if o not in masked and OPERATORS[o].surface != layers[0]
            ]
            rows.append(
                {
                    "task": case.task_id,
                    "faults": list(ops),
                    "layers": layers,
                    "localized": localized,
                    "also_failed": surfaces[1:],
                    "masked": masked,
                    "first_localized": localized == layers[0],
                    "others_reported": all(s in surfaces[1:] for s in later),
                }
            )
        n = len(rows)
        out["orders"][str(k)] = {
            "cases": n,
            "first_layer_localized": sum(r["first_localized"] for r in rows),
            "others_in_also_failed": sum(r["others_reported"] for r in rows),
            "with_masked_faults": sum(bool(r["masked"]) for r in rows),
            "rows": rows,
        }
    return out


def _signatures(runner: Runner, case: BenchCase, run: StackRun, canonical: StackRun) -> set[str]:
    """``layer.check`` of every witness on ``run`` and of the faults each lists as also failed."""
    assert case.query is not None
    dc = runner._case(case, run, case.query, f"case_{case.index:05d}")
    dc.reference_sql = canonical.sql
    dc.reference_params = dict(canonical.params)
    out: set[str] = set()
    for w in runner.checker.check(dc).witnesses:
        out.add(f"{w.localized_surface}.{w.check}")
        out.update(f"{f.surface}.{f.check}" for f in w.also_failed)
    return out


def counterfactual_study(
    domain: str, per_order: int = 20, seed: int = 0, requests: int | None = None
) -> dict[str, Any]:
    """Over the compound study's 2- and 3-fault cases: remove each fault in turn. Its witness
    (the ``layer.check`` signatures the detector reports for it alone, in its layer) is
    *necessary* when removing the fault makes them disappear from the combined run's, and
    *sufficient* when the fault alone reproduces those it has in the combined run. Every
    number is a re-run of the stack and the detector."""
    comp = compound_study(domain, (2, 3), per_order, seed, requests)
    checker = Checker.open(domain)
    runner = Runner(checker, minimize=False)
    d = checker.domain
    cases = {c.task_id: c for c in resolve_suite(d, "seeded").cases()}
    rows: list[dict[str, Any]] = []
    for order in comp["orders"].values():
        for row in order["rows"]:
            case = cases[row["task"]]
            assert case.query is not None
            req = Request(case.principal, case.query, case.style)
            canonical = run_stack(d, req)
            ops = list(row["faults"])
            combined = _signatures(
                runner, case, run_stack(d, req, fault_knobs(ops, d, req)), canonical
            )
            for o in ops:
                layer = OPERATORS[o].surface
                alone = {
                    s
                    for s in _signatures(
                        runner, case, run_stack(d, req, fault_knobs([o], d, req)), canonical
                    )
                    if s.startswith(layer + ".")
                }
                rest = [x for x in ops if x != o]
                without = _signatures(
                    runner, case, run_stack(d, req, fault_knobs(rest, d, req)), canonical
                )
                mine = {s for s in combined if s.startswith(layer + ".")}
                rows.append(
                    {
                        "task": row["task"],
                        "faults": ops,
                        "removed": o,
                        "masked": o in row["masked"],
                        "necessary": bool(mine) and not (mine & without),
                        "sufficient": bool(mine) and mine <= alone,
                    }
                )
    live = [r for r in rows if not r["masked"]]
    return {
        "domain": d.name,
        "seed": seed,
        "faults_removed": len(rows),
        "masked": len(rows) - len(live),
        "necessary": sum(r["necessary"] for r in live),
        "sufficient": sum(r["sufficient"] for r in live),
        "rows": rows,
    }
